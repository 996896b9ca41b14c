import type { F32Tensor } from '../util/tensor.js';

/** A state_dict: official PyTorch key -> float32 tensor (shape in PyTorch's order, e.g. OIHW). */
export type StateDict = Map<string, F32Tensor>;

/** What a network expects: key -> shape, in registration order. */
export type ParamSpec = Map<string, number[]>;

/** What a checkpoint declares about one tensor, known before its data is read. */
export interface TensorHeader {
  shape: number[];
  /** the stored type, e.g. 'float32' (.pth) or 'F32' (.safetensors); read() returns float32 */
  dtype: string;
}

/**
 * An opened checkpoint whose declarations (names, shapes, sizes) are read and checked, but none of
 * whose tensor data has been read, inflated or allocated yet: a caller that knows what it expects
 * checks `headers` first, so a wrong or hostile file is refused at the cost of its header.
 */
export interface CheckpointReader {
  readonly label: string;
  /** tensor name -> shape and dtype, in the file's order */
  readonly headers: Map<string, TensorHeader>;
  /** reads every tensor as float32; refuses non-finite values naming the tensor; closes the file */
  read(): StateDict;
  /** releases the file without reading; idempotent */
  close(): void;
}
