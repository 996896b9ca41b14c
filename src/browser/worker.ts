/**
 * The Web Worker side of the browser API: loads the model and onnxruntime-web, and runs the core's
 * pipeline (inpaint/run.ts: windows, Telea fill, Canny, the sampler and its seeded noise, hole-only
 * pasting), so the page's thread never blocks. One job at a time; `cancel` is honoured between
 * network calls (each call first yields to the event loop so the message can arrive).
 */
import type { FromWorker, LoadedInfo, ToWorker, BrowserRunOptions } from './protocol.js';
import { fetchModel } from './model.js';
import { EXECUTION_PROVIDERS, loadOrt, webgpuAdapter, WebRunner, type ExecutionProvider, type OrtModule } from './runtime.js';
import { inpaintHoles } from '../inpaint/run.js';
import { samplingOf } from '../inpaint/sampling.js';
import { holeCount, loadHoles } from '../inpaint/mask.js';
import type { Model } from '../model/meta.js';
import type { NetInputs, NetKind, NetRunner } from '../exec/types.js';
import { NET_KINDS } from '../nn/models.js';
import { SeededNoise } from '../util/noise.js';
import { StrDiffusionError } from '../util/errors.js';
import { diagnosticGuideRefusal, isDiagnosticOnlyGuide, isOneOf, SAMPLER_VARIANTS, SOLVERS, SPACINGS, STRUCTURE_GUIDES } from '../options.js';
import type { RasterImage } from '../image/raster.js';

class Cancelled extends Error {}

interface State {
  model: Model;
  runners: Record<NetKind, WebRunner>;
}

let state: State | null = null;
/** the running job's id, and whether it was asked to stop */
let running: { id: number; cancelled: boolean } | null = null;

const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as { postMessage(m: unknown, t: Transferable[]): void }).postMessage(m, transfer);
const badOption = (msg: string) => new StrDiffusionError('BAD_OPTION', msg);

/** Every option of a call checked, one line naming the bad one (the Node library's wording). */
function checkRunOptions(o: unknown): BrowserRunOptions {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw badOption(`options must be an object (got ${JSON.stringify(o)})`);
  const checks: Record<keyof BrowserRunOptions, (v: unknown) => string | null> = {
    seed: (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? null : 'must be a non-negative safe integer'),
    steps: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 1 ? null : 'must be an integer >= 1'),
    sampler: (v) => (isOneOf(SAMPLER_VARIANTS, v) ? null : `must be one of ${SAMPLER_VARIANTS.join(', ')}`),
    solver: (v) => (isOneOf(SOLVERS, v) ? null : `must be one of ${SOLVERS.join(', ')}`),
    spacing: (v) => (isOneOf(SPACINGS, v) ? null : `must be one of ${SPACINGS.join(', ')}`),
    structure: (v) => (isOneOf(STRUCTURE_GUIDES, v) ? null : `must be one of ${STRUCTURE_GUIDES.join(', ')}`),
    invertMask: (v) => (typeof v === 'boolean' ? null : 'must be true or false'),
  };
  for (const [k, v] of Object.entries(o)) {
    if (!Object.hasOwn(checks, k)) throw badOption(`options.${k} is not an option of the browser API (options are: ${Object.keys(checks).join(', ')}, onProgress, signal)`);
    if (v === undefined) continue;
    // the page fills holes for real: the diagnostic oracle (eval's) is refused with its own line
    if (k === 'structure' && isDiagnosticOnlyGuide(v)) throw badOption(diagnosticGuideRefusal(`options.structure "${v}"`));
    const problem = checks[k as keyof BrowserRunOptions](v);
    if (problem) throw badOption(`options.${k} ${problem} (got ${JSON.stringify(v)})`);
  }
  return o as BrowserRunOptions;
}

/** The same networks on WebGPU and on wasm, on one seeded input each: onnxruntime issue #29651
 * (a first Conv with more than 3 input channels miscomputed on WebGPU) must not reach the user. */
async function compareProviders(model: Model, ort: OrtModule, keep: Partial<Record<NetKind, WebRunner>>): Promise<{ kind: string; maxAbsDiff: number; maxAbs: number }[]> {
  const s = model.size ?? 256;
  const noise = new SeededNoise(1234);
  const u = (c: number) => ({ shape: [1, c, s, s], data: noise.normal([1, c, s, s]).map((v) => 0.5 + 0.25 * v) });
  const out: { kind: string; maxAbsDiff: number; maxAbs: number }[] = [];
  for (const kind of NET_KINDS) {
    const cfg = model.configs[kind];
    const inputs: NetInputs =
      kind === 'discriminator' ? { x: u(3), S: u(1), t: [Math.ceil(model.T / 2)] } : kind === 'texture' ? { x: u(3), mu: u(3), S: u(1), t: [Math.ceil(model.T / 2)] } : { x: u(1), mu: u(1), t: [Math.ceil(model.T / 2)] };
    const gpu = new WebRunner(kind, cfg, model.weights[kind], ort, 'webgpu');
    const cpu = new WebRunner(kind, cfg, model.weights[kind], ort, 'wasm');
    try {
      const [a, b] = [await gpu.run(inputs), await cpu.run(inputs)];
      let d = 0;
      let m = 0;
      for (let i = 0; i < a.data.length; i++) {
        d = Math.max(d, Math.abs(a.data[i]! - b.data[i]!) || (Number.isNaN(a.data[i]!) ? Infinity : 0));
        m = Math.max(m, Math.abs(b.data[i]!));
      }
      out.push({ kind, maxAbsDiff: d, maxAbs: m });
    } finally {
      // the WebGPU sessions (their shaders compiled) serve the runs if the check passes
      keep[kind] = gpu;
      cpu.dispose();
    }
  }
  return out;
}

/** WebGPU results must agree with wasm to this (relative to the output's scale): float reordering
 * gives ~1e-5; the Conv bug gives errors of the order of the values themselves. */
const WEBGPU_TOLERANCE = 1e-2;

async function load(m: Extract<ToWorker, { type: 'load' }>): Promise<LoadedInfo> {
  const eps = m.executionProviders;
  if (!Array.isArray(eps) || eps.length === 0 || !eps.every((e) => isOneOf(EXECUTION_PROVIDERS, e))) {
    throw badOption(`executionProviders must be a non-empty list of ${EXECUTION_PROVIDERS.join(', ')} (got ${JSON.stringify(eps)})`);
  }
  let bytes = 0;
  let fromCache = true;
  const model = await fetchModel(m.url, {
    cache: m.cache,
    onProgress: (p) => {
      bytes = p.loaded;
      fromCache &&= p.cached;
      post({ type: 'download', id: m.id, progress: p });
    },
  });
  let note: string | null = null;
  let provider: ExecutionProvider = 'wasm';
  let webgpuCheck: LoadedInfo['webgpuCheck'] = null;
  const checked: Partial<Record<NetKind, WebRunner>> = {};
  const wantGpu = eps[0] === 'webgpu';
  let ort: OrtModule;
  if (wantGpu) {
    const adapter = await webgpuAdapter();
    if (!adapter.ok) {
      note = `WebGPU is not available (${adapter.why}): running on wasm`;
      ort = await loadOrt(false, m.ortBase, m.threads);
    } else {
      ort = await loadOrt(true, m.ortBase, m.threads);
      try {
        webgpuCheck = await compareProviders(model, ort, checked);
        const bad = webgpuCheck.find((c) => !(c.maxAbsDiff <= WEBGPU_TOLERANCE * Math.max(1, c.maxAbs)));
        if (bad) note = `WebGPU miscomputes the ${bad.kind} network here (max difference ${bad.maxAbsDiff.toPrecision(3)} from wasm; onnxruntime issue #29651): running on wasm`;
        else provider = 'webgpu';
      } catch (e) {
        note = `WebGPU failed (${(e as Error).message.split('\n')[0]}): running on wasm`;
      }
    }
    if (provider === 'wasm' && !eps.includes('wasm')) throw new StrDiffusionError('BAD_OPTION', `${note}; add 'wasm' to executionProviders to allow the fallback`);
  } else ort = await loadOrt(false, m.ortBase, m.threads);
  if (provider !== 'webgpu') for (const r of Object.values(checked)) r.dispose();
  const runners = Object.fromEntries(NET_KINDS.map((k) => [k, (provider === 'webgpu' ? checked[k] : undefined) ?? new WebRunner(k, model.configs[k], model.weights[k], ort, provider)])) as Record<NetKind, WebRunner>;
  state = { model, runners };
  const meta = model.meta;
  return {
    T: model.T,
    size: model.size ?? 256,
    provider,
    threads: ort.env.wasm.numThreads ?? 1,
    note,
    defaults: { sampler: meta.sampler as string | undefined, solver: meta.solver ?? meta.stepRule, steps: meta.steps, spacing: meta.spacing },
    webgpuCheck,
    modelBytes: bytes,
    fromCache,
  };
}

async function inpaint(m: Extract<ToWorker, { type: 'inpaint' }>): Promise<void> {
  if (!state) throw new StrDiffusionError('BAD_OPTION', 'no model is loaded (call loadModel first, and do not use a disposed model)');
  const options = checkRunOptions(m.options);
  const { model, runners } = state;
  const t0 = performance.now();
  const img: RasterImage = { width: m.width, height: m.height, channels: 4, bitDepth: 8, data: new Uint8Array(m.image.buffer, m.image.byteOffset, m.image.length) };
  const maskImg: RasterImage = { width: m.maskWidth, height: m.maskHeight, channels: 4, bitDepth: 8, data: new Uint8Array(m.mask.buffer, m.mask.byteOffset, m.mask.length) };
  const holes = loadHoles(maskImg, m.width, m.height, { invertMask: options.invertMask });
  const n = holeCount(holes);
  if (n === 0) throw new StrDiffusionError('BAD_INPUT', 'the mask has no hole: paint the region to fill (white or opaque = hole)');
  if (n === holes.length) throw new StrDiffusionError('BAD_INPUT', 'the mask covers the whole image: there is no known pixel to inpaint from');
  // the same rule as the Node library for steps/solver against the model (a one-line BAD_OPTION)
  samplingOf(options, model.meta, model.T);
  const job = running!;
  // between network calls: let a `cancel` message in, then stop if it came
  const checked = Object.fromEntries(
    NET_KINDS.map((k) => [
      k,
      {
        kind: k,
        run: async (inputs: NetInputs) => {
          await new Promise((r) => setTimeout(r, 0));
          if (job.cancelled) throw new Cancelled('cancelled');
          return runners[k].run(inputs);
        },
        dispose: () => {},
      } satisfies NetRunner,
    ]),
  ) as Record<NetKind, NetRunner>;
  const calls0 = NET_KINDS.reduce((s, k) => s + runners[k].calls, 0);
  const ms0 = NET_KINDS.reduce((s, k) => s + runners[k].ms, 0);
  const res = await inpaintHoles({
    img,
    holes,
    holeCount: n,
    model,
    runners: checked,
    options: { ...options, seed: options.seed ?? 0, onProgress: (p) => post({ type: 'progress', id: m.id, progress: p }) },
    warn: (w) => console.warn(`strdiffusion: ${w}`),
    t0,
  });
  const out = new Uint8ClampedArray(res.image.data.buffer, res.image.data.byteOffset, res.image.data.length);
  post(
    {
      type: 'done',
      id: m.id,
      data: out,
      width: m.width,
      height: m.height,
      holePixels: res.holePixels,
      seconds: (performance.now() - t0) / 1000,
      networkCalls: NET_KINDS.reduce((s, k) => s + runners[k].calls, 0) - calls0,
      networkMs: NET_KINDS.reduce((s, k) => s + runners[k].ms, 0) - ms0,
    },
    [out.buffer],
  );
}

/** Installs the message handler (the entry module calls this when it is loaded as our worker). */
export function startWorker(): void {
  self.addEventListener('message', (ev: MessageEvent<ToWorker>) => {
    const m = ev.data;
    const fail = (e: unknown) => {
      const cancelled = e instanceof Cancelled;
      const err = e as { message?: string; code?: string };
      post({ type: 'error', id: m.id, message: cancelled ? 'cancelled' : String(err?.message ?? e), code: err?.code, cancelled });
    };
    switch (m.type) {
      case 'load':
        load(m).then((info) => post({ type: 'loaded', id: m.id, info }), fail);
        break;
      case 'inpaint':
        if (running) {
          fail(new StrDiffusionError('BAD_OPTION', 'another inpaint() of this model is running: wait for it or cancel it'));
          break;
        }
        running = { id: m.id, cancelled: false };
        inpaint(m)
          .catch(fail)
          .finally(() => (running = null));
        break;
      case 'cancel':
        if (running && running.id === m.id) running.cancelled = true;
        break;
      case 'dispose':
        if (state) for (const r of Object.values(state.runners)) r.dispose();
        state = null;
        post({ type: 'disposed', id: m.id });
        break;
    }
  });
}
