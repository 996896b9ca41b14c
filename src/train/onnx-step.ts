/**
 * Training on onnxruntime: one session per (batch, crop size) runs the training graph of
 * ./graph.ts (objective + generated backward); the parameters, Adam and the LR
 * schedule live on the host as float32 arrays (Adam is PyTorch's, element for element). The
 * spectral-norm power iteration runs on the host before each forward, as PyTorch's pre-forward
 * hook does, and the new u, v are fed to the graph.
 */
import * as ort from 'onnxruntime-node';
import type { NetConfig, NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { IRSDE } from '../sde/irsde.js';
import { isSpectralBuffer } from '../nn/spade.js';
import { withLevelTables } from '../sde/prediction.js';
import { powerIteration } from '../nn/spectral.js';
import { buildTrainGraph, type TrainGraph } from './graph.js';
import { sessionOptions } from '../exec/onnx/executor.js';
import { nchwcBlockSize } from '../exec/onnx/nchwc.js';
import { Adam, ADAM_DISC, ADAM_UNET } from './adam.js';
import { MultiStepLR } from './lr.js';
import type { PreparedObjective } from './objectives.js';
import type { NetTrainer, TrainerOptions, TrainStepOptions, TrainStepResult } from './trainer-types.js';

interface Session {
  graph: TrainGraph;
  session: ort.InferenceSession;
}

export class OnnxTrainer implements NetTrainer {
  readonly executor = 'onnx';
  readonly sde: IRSDE;
  readonly adam: Adam;
  readonly schedule: MultiStepLR;
  iteration = 0;
  /** the parameters and spectral-norm buffers, by state_dict key (updated in place) */
  readonly params = new Map<string, Float32Array>();
  private readonly shapes = new Map<string, number[]>();
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly threads: number | undefined;

  constructor(readonly kind: NetKind, readonly cfg: NetConfig, weights: StateDict, opts: TrainerOptions = {}) {
    for (const [k, t] of weights) {
      this.params.set(k, Float32Array.from(t.data));
      this.shapes.set(k, [...t.shape]);
    }
    const adamOpts = opts.adam ?? (kind === 'discriminator' ? ADAM_DISC : ADAM_UNET);
    this.sde = new IRSDE({ T: opts.T ?? 400 });
    this.adam = new Adam(adamOpts);
    // the trained parameters live in Adam's SIMD kernel memory (the graph reads them from there)
    const trained = new Map([...this.params].filter(([k]) => !isSpectralBuffer(k)));
    for (const [k, a] of this.adam.reserve(trained)) this.params.set(k, a);
    this.schedule = opts.schedule ?? new MultiStepLR(adamOpts.lr);
    this.threads = opts.threads;
  }

  private session(B: number, H: number, W: number): Promise<Session> {
    const key = `${B}x${H}x${W}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = (async () => {
        const options = sessionOptions({ threads: this.threads });
        // the blocked-conv pass is for onnxruntime's CPU kernels; any other provider gets the plain graph
        const cpuOnly = (options.executionProviders ?? []).every((p) => (typeof p === 'string' ? p : p.name) === 'cpu');
        const graph = buildTrainGraph(this.kind, withLevelTables(this.cfg, this.sde), this.shapes, { batch: B, height: H, width: W }, this.sde.dt, {
          nchwcBlockSize: cpuOnly ? await nchwcBlockSize() : 1,
        });
        const session = await ort.InferenceSession.create(graph.bytes, options);
        return { graph, session };
      })();
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Train-mode spectral norm: one power iteration per spectral conv from the current W, u. */
  private powerIterations(buffers: string[]): void {
    for (const k of buffers) {
      if (!k.endsWith('.weight_u')) continue;
      const prefix = k.slice(0, -'.weight_u'.length);
      const w = this.params.get(`${prefix}.weight_orig`)!;
      const rows = this.shapes.get(`${prefix}.weight_orig`)![0]!;
      const { u, v } = powerIteration(w, rows, this.params.get(k)!);
      this.params.set(k, u);
      this.params.set(`${prefix}.weight_v`, v);
    }
  }

  async stepPrepared(prep: PreparedObjective, opts: TrainStepOptions = {}): Promise<TrainStepResult> {
    const [B, , H, W] = prep.state.shape as [number, number, number, number];
    const { graph, session } = await this.session(B, H, W);
    this.powerIterations(graph.buffers);
    const feeds: Record<string, ort.Tensor> = {};
    const tensor = (data: Float32Array, shape: readonly number[]) => new ort.Tensor('float32', data, [...shape]);
    for (const k of [...graph.params, ...graph.buffers]) feeds[k] = tensor(this.params.get(k)!, this.shapes.get(k)!);
    const col = (a: Float32Array) => tensor(a, [B, 1, 1, 1]);
    const host: Record<string, Float32Array | undefined> = {
      t: Float32Array.from(prep.t),
      mask: prep.mask.data,
      state: prep.state.data,
      target: prep.target.data,
      mu: prep.mu?.data,
      S: prep.S?.data,
      anchor: prep.anchor?.data,
      clean: prep.clean?.data,
    };
    for (const [name, shape] of graph.data) {
      if (name === 'theta' || name === 'sigma2' || name === 'sigmaBar') feeds[name] = col(prep.coefs[name]);
      else {
        const d = host[name];
        if (!d) throw new Error(`${this.kind} training step: input "${name}" is missing from the prepared batch`);
        feeds[name] = tensor(d, shape);
      }
    }
    const out = await session.run(feeds);
    const lr = this.schedule.lr;
    const loss = (out.loss!.data as Float32Array)[0]!;
    const grads = new Map<string, Float32Array>();
    for (const k of graph.grads) grads.set(k, out[`grad:${k}`]!.data as Float32Array);
    const result: TrainStepResult = { loss, t: prep.t, lr };
    if (opts.grads) {
      result.grads = new Map();
      for (const [k, shape] of this.shapes) {
        if (isSpectralBuffer(k)) continue;
        // a parameter off the loss' path gets zeros, as PyTorch's zero_grad(set_to_none=False) would
        result.grads.set(k, { shape: [...shape], data: grads.get(k) ?? new Float32Array(this.params.get(k)!.length) });
      }
    }
    if (opts.inspect) {
      result.prepared = prep;
      result.aux = graph.aux.map((a) => ({ shape: [...out[a]!.dims], data: out[a]!.data as Float32Array }));
    }
    if (!opts.noUpdate) {
      this.adam.update(this.params, grads, lr);
      this.schedule.step();
      this.iteration++;
    }
    return result;
  }

  toStateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [k, d] of this.params) sd.set(k, { shape: [...this.shapes.get(k)!], data: d });
    return sd;
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions.values()) {
      try {
        await (await s).session.release();
      } catch {
        /* a failed creation has nothing to release */
      }
    }
    this.sessions.clear();
  }
}

