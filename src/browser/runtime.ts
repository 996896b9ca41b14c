/**
 * The networks on onnxruntime-web: each is exported to ONNX in the page (the core's exportOnnx, as
 * the Node executor does) once per input size and run by a kept session. Which onnxruntime-web
 * build is loaded depends on the providers asked for: the wasm-only build (a 14 MB .wasm) unless
 * WebGPU is wanted, then the WebGPU build (which also runs wasm). Its .mjs/.wasm files are served
 * from `ortBase` beside the bundle: nothing is fetched from elsewhere.
 */
import type * as Ort from 'onnxruntime-web';
import type { F32Tensor } from '../util/tensor.js';
import type { NetConfig, NetInputs, NetKind, NetRunner } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { exportOnnx } from '../exec/onnx/export.js';
import { hostFeeds } from '../exec/onnx/feeds.js';

export type ExecutionProvider = 'wasm' | 'webgpu';
export const EXECUTION_PROVIDERS: readonly ExecutionProvider[] = ['wasm', 'webgpu'];

export type OrtModule = typeof Ort;

/**
 * onnxruntime-web, configured: `threads` wasm threads (more than 1 only works when the page is
 * cross-origin isolated, i.e. served with COOP/COEP headers; onnxruntime falls back to 1 otherwise).
 */
export async function loadOrt(webgpu: boolean, ortBase: string, threads: number): Promise<OrtModule> {
  const ort = (webgpu ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm')) as unknown as OrtModule;
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = threads;
  // we already are in a worker: no second proxy worker
  ort.env.wasm.proxy = false;
  ort.env.logLevel = 'error';
  return ort;
}

/** Whether this browser offers a WebGPU adapter, and if not, why (for the page's note). */
export async function webgpuAdapter(): Promise<{ ok: true } | { ok: false; why: string }> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return { ok: false, why: 'this browser has no WebGPU (navigator.gpu is missing)' };
  try {
    const a = await gpu.requestAdapter();
    return a ? { ok: true } : { ok: false, why: 'the browser offers no WebGPU adapter' };
  } catch (e) {
    return { ok: false, why: `WebGPU adapter request failed (${(e as Error).message})` };
  }
}

export class WebRunner implements NetRunner {
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>();
  /** network calls made, and the milliseconds they took (for the benchmark) */
  calls = 0;
  ms = 0;

  constructor(
    readonly kind: NetKind,
    private readonly cfg: NetConfig,
    private readonly weights: StateDict,
    private readonly ort: OrtModule,
    readonly provider: ExecutionProvider,
  ) {}

  session(batch: number, height: number, width: number): Promise<Ort.InferenceSession> {
    const key = `${batch}x${height}x${width}`;
    let s = this.sessions.get(key);
    if (!s) {
      // WebGPU: the first conv split into <= 3-channel convs (onnxruntime issue #29651)
      const bytes = exportOnnx(this.kind, this.cfg, this.weights, { batch, height, width }, { splitFirstConv: this.provider === 'webgpu' });
      s = this.ort.InferenceSession.create(bytes, { executionProviders: [this.provider], graphOptimizationLevel: 'all' });
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  async run(inputs: NetInputs): Promise<F32Tensor> {
    const { shape, feeds } = hostFeeds(this.kind, this.cfg, inputs);
    const session = await this.session(shape.batch, shape.height, shape.width);
    const t0 = performance.now();
    const res = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new this.ort.Tensor('float32', v.data, v.dims)])));
    const out = res.out;
    if (!out) throw new Error(`${this.kind}: the session returned no "out"`);
    // on WebGPU the output may live on the GPU; the sampler's arithmetic needs it on the host
    const data = (out.location === 'cpu' || out.location === undefined ? out.data : await out.getData(true)) as Float32Array;
    this.ms += performance.now() - t0;
    this.calls++;
    return { shape: [...out.dims], data: data.slice() };
  }

  dispose(): void {
    for (const s of this.sessions.values()) s.then((x) => x.release()).catch(() => {});
    this.sessions.clear();
  }
}
