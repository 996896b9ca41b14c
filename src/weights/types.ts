import type { F32Tensor } from '../util/tensor.js';

/** A state_dict: official PyTorch key -> float32 tensor (shape in PyTorch's order, e.g. OIHW). */
export type StateDict = Map<string, F32Tensor>;

/** What a network expects: key -> shape, in registration order. */
export type ParamSpec = Map<string, number[]>;
