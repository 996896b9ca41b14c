/**
 * One training iteration of any of the three networks on tfjs: host-side SDE sampling, forward +
 * backward with `tf.variableGrads`, then the official Adam step and LR schedule.
 */
import * as tf from '@tensorflow/tfjs-core';
import { IRSDE } from '../sde/irsde.js';
import type { NetConfig, NetKind } from '../exec/types.js';
import { TfParams } from '../exec/tfjs.js';
import { registerTfGradients } from '../exec/tfjs-wasm-kernels.js';
import type { StateDict } from '../weights/types.js';
import type { F32Tensor } from '../util/tensor.js';
import { Adam, ADAM_DISC, ADAM_UNET, type AdamOptions } from './adam.js';
import { MultiStepLR } from './lr.js';
import { drawTraining, objectiveForward, prepareObjective, type ObjectiveBatch, type PreparedObjective, type TrainNoise } from './objectives.js';

export interface TrainState {
  kind: NetKind;
  cfg: NetConfig;
  /** trainable parameters (variables) plus the spectral-norm buffers of the texture net */
  params: TfParams;
  sde: IRSDE;
  adam: Adam;
  schedule: MultiStepLR;
  /** iterations done */
  iteration: number;
}

export interface TrainStateOptions {
  /** SDE steps (the official training yml: 400) */
  T?: number;
  adam?: AdamOptions;
  /** default: constant LR (the discriminator's official behaviour; U-Nets: pass officialUNetSchedule()) */
  schedule?: MultiStepLR;
}

/** Trainable state for one network from a (strictly checked) state_dict. */
export function createTrainState(kind: NetKind, cfg: NetConfig, weights: StateDict, opts: TrainStateOptions = {}): TrainState {
  registerTfGradients();
  const adamOpts = opts.adam ?? (kind === 'discriminator' ? ADAM_DISC : ADAM_UNET);
  return {
    kind,
    cfg,
    params: new TfParams(weights, { trainable: true }),
    sde: new IRSDE({ T: opts.T ?? 400 }),
    adam: new Adam(adamOpts),
    schedule: opts.schedule ?? new MultiStepLR(adamOpts.lr),
    iteration: 0,
  };
}

export interface TrainStepOptions {
  /** inject the levels (parity); otherwise drawn from noise.uniform() */
  t?: number[];
  /** return the gradients (host copies, by state_dict key) */
  grads?: boolean;
  /** return the prepared host inputs and the network outputs (parity diagnostics) */
  inspect?: boolean;
  /** compute loss and gradients but leave the parameters and optimizer untouched */
  noUpdate?: boolean;
}

export interface TrainStepResult {
  loss: number;
  t: number[];
  /** the LR this step used */
  lr: number;
  grads?: Map<string, F32Tensor>;
  prepared?: PreparedObjective;
  /** U-Nets: [ε̂, x̂]; D: [D_real, D_fake, D_anchor] */
  aux?: F32Tensor[];
}

/** Every trainable variable with its state_dict key. */
function trainables(params: TfParams): [string, tf.Variable][] {
  return [...params.variables()];
}

/**
 * One iteration: draw t and the noise (official order), prepare the host inputs, forward +
 * backward, then (unless `noUpdate`) Adam at the schedule's LR and one scheduler step.
 * `kind` must be the state's network (a guard against passing the wrong state).
 */
export function trainStep(kind: NetKind, state: TrainState, batch: ObjectiveBatch, noise: TrainNoise, opts: TrainStepOptions = {}): TrainStepResult {
  if (kind !== state.kind) throw new Error(`trainStep: state is for the ${state.kind} network, not ${kind}`);
  const draws = drawTraining(kind, state.sde, batch, noise, opts.t);
  const prep = prepareObjective(kind, state.sde, batch, draws);
  return trainStepPrepared(state, prep, opts);
}

/** `trainStep` after the host preparation (parity injects recorded inputs here). */
export function trainStepPrepared(state: TrainState, prep: PreparedObjective, opts: TrainStepOptions = {}): TrainStepResult {
  const { params } = state;
  // train mode: each spectral-norm conv runs one power iteration in the forward and keeps u, v
  params.training = true;
  const vars = trainables(params);
  const nameToKey = new Map(vars.map(([k, v]) => [v.name, k]));
  let aux: tf.Tensor[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const out = objectiveForward(state.cfg, params, prep);
    if (opts.inspect) aux = out.aux.map((a) => tf.keep(a.clone()));
    return out.loss;
  }, vars.map(([, v]) => v));
  const lr = state.schedule.lr;
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
      const g = hostGrads.get(k);
      // a parameter off the loss' path gets zeros, as PyTorch's zero_grad(set_to_none=False) would
      result.grads.set(k, { shape: [...v.shape], data: g ?? new Float32Array(v.size) });
    }
  }
  if (opts.inspect) {
    result.prepared = prep;
    result.aux = aux.map((a) => ({ shape: [...a.shape], data: Float32Array.from(a.dataSync() as Float32Array) }));
  }
  for (const a of aux) a.dispose();
  if (!opts.noUpdate) {
    applyAdam(state, hostGrads, lr);
    state.schedule.step();
    state.iteration++;
  }
  return result;
}

/** Adam on the host copies of the parameters, written back into the variables. */
export function applyAdam(state: TrainState, grads: Map<string, Float32Array>, lr = state.schedule.lr): void {
  const vars = new Map(trainables(state.params));
  const host = new Map<string, Float32Array>();
  for (const k of grads.keys()) {
    const v = vars.get(k);
    if (!v) throw new Error(`applyAdam: no trainable parameter "${k}"`);
    host.set(k, Float32Array.from(v.dataSync() as Float32Array));
  }
  state.adam.update(host, grads, lr);
  for (const [k, data] of host) {
    const v = vars.get(k)!;
    const t = tf.tensor(data, v.shape, 'float32');
    v.assign(t);
    t.dispose();
  }
}

export function disposeTrainState(state: TrainState): void {
  state.params.dispose();
}
