/** What every training executor implements (./trainer.ts creates one; ./onnx-step.ts is the onnx one). */
import type { NetConfig, NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import type { F32Tensor } from '../util/tensor.js';
import type { IRSDE } from '../sde/irsde.js';
import type { TrainExecutor } from '../options.js';
import type { Adam, AdamOptions } from './adam.js';
import type { MultiStepLR } from './lr.js';
import type { PreparedObjective } from './objectives.js';

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
