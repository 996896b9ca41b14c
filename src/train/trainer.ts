/**
 * One network's trainer, whatever executes it: the host draws t and the noise (official order),
 * prepares the SDE states and targets (./objectives.ts), and the executor runs forward + backward;
 * Adam and the LR schedule step on the host. `onnx` (the only executor) runs a generated training
 * graph on onnxruntime (./onnx-step.ts).
 */
import type { NetConfig, NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import type { F32Tensor } from '../util/tensor.js';
import type { IRSDE } from '../sde/irsde.js';
import type { Adam, AdamOptions } from './adam.js';
import type { MultiStepLR } from './lr.js';
import { drawTraining, prepareObjective, type ObjectiveBatch, type PreparedObjective, type TrainNoise } from './objectives.js';
import { unknownExecutor } from '../exec/registry.js';

/** The executors a trainer can run on, defined once (CLI, bench, parity). */
export const TRAIN_EXECUTORS = ['onnx'] as const;
export type TrainExecutor = (typeof TRAIN_EXECUTORS)[number];

export function isTrainExecutor(s: string): s is TrainExecutor {
  return (TRAIN_EXECUTORS as readonly string[]).includes(s);
}

export interface TrainerOptions {
  /** SDE steps (the official training yml: 400) */
  T?: number;
  adam?: AdamOptions;
  /** default: constant LR (the discriminator's official behaviour; U-Nets: pass officialUNetSchedule()) */
  schedule?: MultiStepLR;
  /** onnx: intra-op threads (default STRDIFFUSION_THREADS or the number of cores) */
  threads?: number;
}

export interface TrainStepOptions {
  /** inject the levels (parity); otherwise drawn from noise.uniform() */
  t?: number[];
  /** return the gradients (by state_dict key) */
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

export interface NetTrainer {
  readonly executor: TrainExecutor;
  readonly kind: NetKind;
  readonly cfg: NetConfig;
  readonly sde: IRSDE;
  readonly adam: Adam;
  readonly schedule: MultiStepLR;
  /** iterations done */
  iteration: number;
  /** forward + backward on prepared inputs, then (unless noUpdate) Adam and one scheduler step */
  stepPrepared(prep: PreparedObjective, opts?: TrainStepOptions): Promise<TrainStepResult>;
  /** the current parameters (and spectral-norm buffers) by official key */
  toStateDict(): StateDict;
  dispose(): void | Promise<void>;
}

/** A trainer for one network on the chosen executor (weights are copied, strictly as given). */
export async function createTrainer(executor: TrainExecutor, kind: NetKind, cfg: NetConfig, weights: StateDict, opts: TrainerOptions = {}): Promise<NetTrainer> {
  // a guard for callers that bypass the type (JavaScript, names from the command line)
  if (!isTrainExecutor(executor)) throw unknownExecutor(executor, 'training executor', TRAIN_EXECUTORS);
  const { OnnxTrainer } = await import('./onnx-step.js');
  return new OnnxTrainer(kind, cfg, weights, opts);
}

/**
 * One iteration: draw t and the noise (official order), prepare the host inputs, then the
 * executor's step. `kind` must be the trainer's network (a guard against mixing up trainers).
 */
export function trainStep(kind: NetKind, trainer: NetTrainer, batch: ObjectiveBatch, noise: TrainNoise, opts: TrainStepOptions = {}): Promise<TrainStepResult> {
  if (kind !== trainer.kind) throw new Error(`trainStep: the trainer is for the ${trainer.kind} network, not ${kind}`);
  const draws = drawTraining(kind, trainer.sde, batch, noise, opts.t);
  return trainer.stepPrepared(prepareObjective(kind, trainer.sde, batch, draws), opts);
}
