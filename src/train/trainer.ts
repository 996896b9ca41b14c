/**
 * One network's trainer, whatever executes it: the host draws t and the noise (official order),
 * prepares the SDE states and targets (./objectives.ts), and the executor runs forward + backward;
 * Adam and the LR schedule step on the host. `onnx` (the only executor) runs a generated training
 * graph on onnxruntime (./onnx-step.ts).
 */
import type { NetConfig, NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { drawTraining, prepareObjective, type ObjectiveBatch, type TrainNoise } from './objectives.js';
import type { NetTrainer, TrainerOptions, TrainStepOptions, TrainStepResult } from './trainer-types.js';
import { unknownExecutor } from '../exec/registry.js';

import { TRAIN_EXECUTORS, type TrainExecutor } from '../options.js';

export { TRAIN_EXECUTORS, type TrainExecutor } from '../options.js';

export function isTrainExecutor(s: string): s is TrainExecutor {
  return (TRAIN_EXECUTORS as readonly string[]).includes(s);
}

export type { NetTrainer, TrainerOptions, TrainStepOptions, TrainStepResult } from './trainer-types.js';

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
