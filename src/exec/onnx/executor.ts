/**
 * Inference executor: each network is exported to ONNX once per input size (batch, height,
 * width) and run by an onnxruntime-node session that is kept for the runner's lifetime.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { StateDict } from '../../weights/types.js';
import type { F32Tensor } from '../../util/tensor.js';
import type { Executor, NetConfig, NetInputs, NetKind, NetRunner } from '../types.js';
import { describeModel, exportOnnx, type ExportShape, type Precision, type QuantOptions } from './export.js';

/** Per-runner choices (also accepted by OnnxExecutor as defaults for all its runners). */
export interface OnnxRunnerOptions {
  /** 'fp32' (default) or 'int8' (dynamically quantised convolutions; see exportOnnx) */
  precision?: Precision;
  quant?: QuantOptions;
}

export interface OnnxExecutorOptions extends OnnxRunnerOptions {
  /** intra-op threads; default STRDIFFUSION_THREADS or the number of cores */
  threads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  enableCpuMemArena?: boolean;
  enableMemPattern?: boolean;
}

export function defaultThreads(): number {
  const env = process.env.STRDIFFUSION_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`STRDIFFUSION_THREADS must be a positive integer (got "${env}")`);
    return n;
  }
  return availableParallelism();
}

export function sessionOptions(o: OnnxExecutorOptions = {}): ort.InferenceSession.SessionOptions {
  const threads = o.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer (got ${threads})`);
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    // the graphs are chains of large ops: parallelism within ops is what pays
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: o.graphOptimizationLevel ?? 'all',
    enableCpuMemArena: o.enableCpuMemArena ?? true,
    enableMemPattern: o.enableMemPattern ?? true,
  };
}

function shapeKey(s: ExportShape): string {
  return `${s.batch}x${s.height}x${s.width}`;
}

export class OnnxRunner implements NetRunner {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  /** how many graphs this runner has exported (one per distinct input size) */
  exports = 0;
  private disposed = false;

  constructor(
    readonly kind: NetKind,
    private readonly cfg: NetConfig,
    private readonly weights: StateDict,
    private readonly opts: OnnxExecutorOptions = {},
  ) {
    const p = opts.precision ?? 'fp32';
    if (p !== 'fp32' && p !== 'int8') throw new Error(`unknown precision "${p}" (expected fp32 or int8)`);
  }

  get precision(): Precision {
    return this.opts.precision ?? 'fp32';
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The session for one input size, exported and created on first use. */
  session(shape: ExportShape): Promise<ort.InferenceSession> {
    if (this.disposed) throw new Error(`the ${this.kind} ONNX runner has been disposed`);
    const key = shapeKey(shape);
    let s = this.sessions.get(key);
    if (!s) {
      this.exports++;
      // the exported bytes are only referenced here, so they can be collected once the session owns its copy
      const bytes = exportOnnx(this.kind, this.cfg, this.weights, shape, { precision: this.opts.precision, quant: this.opts.quant });
      s = ort.InferenceSession.create(bytes, sessionOptions(this.opts));
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  async run(inputs: NetInputs): Promise<F32Tensor> {
    const [B, , H, W] = inputs.x.shape as [number, number, number, number];
    if (inputs.x.shape.length !== 4) throw new Error(`${this.kind}: input must be NCHW (got [${inputs.x.shape}])`);
    const shape = { batch: B, height: H, width: W };
    const desc = describeModel(this.kind, this.cfg, shape);
    const session = await this.session(shape);
    const host: Record<string, F32Tensor | undefined> = {
      x: this.kind === 'discriminator' ? undefined : inputs.x,
      y: this.kind === 'discriminator' ? inputs.x : undefined,
      mu: inputs.mu,
      S: inputs.S,
      t: { shape: [inputs.t.length], data: Float32Array.from(inputs.t) },
    };
    const feeds: Record<string, ort.Tensor> = {};
    for (const d of desc.inputs) {
      const v = host[d.name];
      if (!v) throw new Error(`the ${this.kind} network needs input ${d.name}`);
      if (v.shape.length !== d.shape.length || v.shape.some((n, i) => n !== d.shape[i])) {
        throw new Error(`${this.kind}: input ${d.name} has shape [${v.shape}], expected [${d.shape}]`);
      }
      feeds[d.name] = new ort.Tensor('float32', v.data, d.shape);
    }
    const res = await session.run(feeds);
    const out = res.out;
    if (!out) throw new Error(`${this.kind}: the session returned no "out"`);
    // onnxruntime-node hands back outputs in fresh JS-owned arrays: no copy needed
    return { shape: [...out.dims], data: out.data as Float32Array };
  }

  dispose(): void {
    this.disposed = true;
    for (const s of this.sessions.values()) s.then((x) => x.release()).catch(() => {});
    this.sessions.clear();
  }
}

export class OnnxExecutor implements Executor {
  readonly name = 'onnx';
  constructor(readonly options: OnnxExecutorOptions = {}) {}
  /** `opts` overrides the executor's precision for this one runner. */
  async createRunner(kind: NetKind, cfg: NetConfig, weights: StateDict, opts: OnnxRunnerOptions = {}): Promise<NetRunner> {
    const o: OnnxExecutorOptions = { ...this.options };
    if (opts.precision !== undefined) o.precision = opts.precision;
    if (opts.quant !== undefined) o.quant = opts.quant;
    return new OnnxRunner(kind, cfg, weights, o);
  }
}
