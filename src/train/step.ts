/**
 * The tfjs trainer: the shared objective (./loss-ops.ts) runs eagerly on TensorFlow.js under
 * `tf.variableGrads`, then the official Adam step and LR schedule on host copies.
 */
import * as tf from '@tensorflow/tfjs-core';
import { IRSDE } from '../sde/irsde.js';
import type { NetConfig, NetKind } from '../exec/types.js';
import { initTf, TfOps, TfParams } from '../exec/tfjs.js';
import { registerTfGradients } from '../exec/tfjs-wasm-kernels.js';
import type { StateDict } from '../weights/types.js';
import { Adam, ADAM_DISC, ADAM_UNET } from './adam.js';
import { MultiStepLR } from './lr.js';
import type { PreparedObjective } from './objectives.js';
import { objective, type ObjectiveOut } from './loss-ops.js';
import type { NetTrainer, TrainerOptions, TrainStepOptions, TrainStepResult } from './trainer.js';

const tfT = (x: { data: Float32Array; shape: number[] }) => tf.tensor(x.data, x.shape, 'float32');

/** The objective on tfjs tensors (call inside `tf.variableGrads` or a tidy). */
export function tfObjective(cfg: NetConfig, params: TfParams, prep: PreparedObjective): ObjectiveOut<tf.Tensor> {
  const B = prep.t.length;
  const col = (a: Float32Array) => tf.tensor(a, [B, 1, 1, 1], 'float32');
  return objective({ ops: new TfOps(), p: params }, prep.kind, cfg, {
    t: tf.tensor1d(prep.t, 'float32'),
    mask: tfT(prep.mask),
    state: tfT(prep.state),
    target: tfT(prep.target),
    mu: prep.kind === 'discriminator' ? undefined : tfT(prep.mu),
    S: prep.S && tfT(prep.S),
    anchor: prep.anchor && tfT(prep.anchor),
    coefs: { theta: col(prep.coefs.theta), sigma2: col(prep.coefs.sigma2), sigmaBar: col(prep.coefs.sigmaBar), dt: prep.coefs.dt },
  });
}

export class TfTrainer implements NetTrainer {
  readonly executor = 'tfjs';
  readonly sde: IRSDE;
  readonly adam: Adam;
  readonly schedule: MultiStepLR;
  iteration = 0;

  private constructor(readonly kind: NetKind, readonly cfg: NetConfig, readonly params: TfParams, opts: TrainerOptions) {
    const adamOpts = opts.adam ?? (kind === 'discriminator' ? ADAM_DISC : ADAM_UNET);
    this.sde = new IRSDE({ T: opts.T ?? 400 });
    this.adam = new Adam(adamOpts);
    this.schedule = opts.schedule ?? new MultiStepLR(adamOpts.lr);
  }

  static async create(kind: NetKind, cfg: NetConfig, weights: StateDict, opts: TrainerOptions = {}): Promise<TfTrainer> {
    await initTf();
    registerTfGradients();
    return new TfTrainer(kind, cfg, new TfParams(weights, { trainable: true }), opts);
  }

  async stepPrepared(prep: PreparedObjective, opts: TrainStepOptions = {}): Promise<TrainStepResult> {
    const { params } = this;
    // train mode: each spectral-norm conv runs one power iteration in the forward and keeps u, v
    params.training = true;
    const vars = [...params.variables()];
    const nameToKey = new Map(vars.map(([k, v]) => [v.name, k]));
    let aux: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const out = tfObjective(this.cfg, params, prep);
      if (opts.inspect) aux = out.aux.map((a) => tf.keep(a.clone()));
      return out.loss as tf.Scalar;
    }, vars.map(([, v]) => v));
    const lr = this.schedule.lr;
    const result: TrainStepResult = { loss: value.dataSync()[0]!, t: prep.t, lr };
    value.dispose();
    const hostGrads = new Map<string, Float32Array>();
    for (const [name, g] of Object.entries(grads)) {
      const key = nameToKey.get(name);
      if (!key) throw new Error(`trainStep: gradient for unknown variable ${name}`);
      hostGrads.set(key, Float32Array.from(g.dataSync() as Float32Array));
      g.dispose();
    }
    if (opts.grads) {
      result.grads = new Map();
      for (const [k, v] of vars) {
        // a parameter off the loss' path gets zeros, as PyTorch's zero_grad(set_to_none=False) would
        result.grads.set(k, { shape: [...v.shape], data: hostGrads.get(k) ?? new Float32Array(v.size) });
      }
    }
    if (opts.inspect) {
      result.prepared = prep;
      result.aux = aux.map((a) => ({ shape: [...a.shape], data: Float32Array.from(a.dataSync() as Float32Array) }));
    }
    for (const a of aux) a.dispose();
    if (!opts.noUpdate) {
      this.applyAdam(hostGrads, lr);
      this.schedule.step();
      this.iteration++;
    }
    return result;
  }

  /** Adam on host copies of the parameters, written back into the variables. */
  private applyAdam(grads: Map<string, Float32Array>, lr: number): void {
    const vars = this.params.variables();
    const host = new Map<string, Float32Array>();
    for (const k of grads.keys()) {
      const v = vars.get(k);
      if (!v) throw new Error(`applyAdam: no trainable parameter "${k}"`);
      host.set(k, Float32Array.from(v.dataSync() as Float32Array));
    }
    this.adam.update(host, grads, lr);
    for (const [k, data] of host) {
      const v = vars.get(k)!;
      const t = tf.tensor(data, v.shape, 'float32');
      v.assign(t);
      t.dispose();
    }
  }

  toStateDict(): StateDict {
    return this.params.toStateDict();
  }

  dispose(): void {
    this.params.dispose();
  }
}
