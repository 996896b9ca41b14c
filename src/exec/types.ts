/** What the sampler and the parity runner need from an executor: run a network on host tensors. */
import type { F32Tensor } from '../util/tensor.js';
import type { NetConfig } from '../nn/config.js';
import type { StateDict } from '../weights/types.js';

import type { NetKind } from '../options.js';

export type { NetKind } from '../options.js';

export type { NetConfig } from '../nn/config.js';

/**
 * Inputs of one forward, NCHW host tensors. U-Nets: x = state x_t/y_t, mu = SDE mean, S = structure
 * guide (texture only). Discriminator: x = texture y, S = structure. t: one integer step per sample.
 */
export interface NetInputs {
  x: F32Tensor;
  mu?: F32Tensor;
  S?: F32Tensor;
  t: number[];
}

export interface NetRunner {
  readonly kind: NetKind;
  /** U-Nets: predicted noise, same shape as x; discriminator: scores [B] */
  run(inputs: NetInputs): Promise<F32Tensor>;
  dispose(): void;
}

export interface Executor {
  readonly name: string;
  createRunner(kind: NetKind, cfg: NetConfig, weights: StateDict): Promise<NetRunner>;
}
