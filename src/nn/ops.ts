/**
 * The operator interface the three networks are written against, once. An executor implements
 * it for one tensor type; today that is symbolic tensors that record an ONNX graph (for inference,
 * and for training, whose graph ../exec/onnx/autodiff.ts differentiates). Everything is NCHW;
 * weights are in PyTorch layout (conv OIHW, linear [out, in]) so state_dict tensors are used as
 * they are.
 *
 * The interface is kept small on purpose: each op here must exist in every executor, and
 * anything expressible with these (LayerNorm, GELU, attention, resizes, padding) lives in
 * ./layers.ts as plain functions.
 */
export interface Conv2dOptions {
  stride?: number;
  /** zero padding: one number for all sides, or [top, left, bottom, right] */
  pad?: number | [number, number, number, number];
  /** groups = in_channels for a depthwise convolution (the FIR filter); 1 otherwise */
  groups?: number;
}

export interface Ops<T> {
  readonly name: string;
  shape(x: T): number[];
  constant(data: Float32Array, shape: number[]): T;
  scalar(v: number): T;

  /** x [B,Cin,H,W], w [Cout,Cin/groups,kh,kw] (PyTorch OIHW), b [Cout] or null */
  conv2d(x: T, w: T, b: T | null, opts?: Conv2dOptions): T;
  /** x [B,I], w [O,I] (PyTorch layout), b [O] or null -> [B,O] */
  linear(x: T, w: T, b: T | null): T;
  /** batched matmul over the leading dims: [.., m, k] x [.., k, n] (with optional transposes) */
  matmul(a: T, b: T, transposeA?: boolean, transposeB?: boolean): T;

  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;

  sqrt(x: T): T;
  abs(x: T): T;
  exp(x: T): T;
  sin(x: T): T;
  cos(x: T): T;
  erf(x: T): T;
  sigmoid(x: T): T;
  relu(x: T): T;
  leakyRelu(x: T, alpha: number): T;
  softplus(x: T): T;

  reduceMean(x: T, axes: number[], keepDims: boolean): T;
  reduceSum(x: T, axes: number[], keepDims: boolean): T;
  softmax(x: T, axis: number): T;

  reshape(x: T, shape: number[]): T;
  transpose(x: T, perm: number[]): T;
  concat(xs: T[], axis: number): T;
  /** contiguous slice: begin and size per axis (size -1 = to the end) */
  slice(x: T, begin: number[], size: number[]): T;
  /** take the given indices along one axis (nearest resizes and reflect padding are built on it) */
  gather(x: T, indices: number[], axis: number): T;
  /** table[i] for every element i of `index` (integer values stored as float; no gradient to `index`) */
  lookup(table: Float32Array, index: T): T;

  /** Memory scope: an eager executor frees intermediates of fn when it returns; others just call fn. */
  scope<R extends T | T[]>(fn: () => R): R;
}

/**
 * Parameters by official state_dict key. `spectralWeight(prefix)` gives the effective weight of a
 * `torch.nn.utils.spectral_norm` conv: W_orig / sigma with sigma = u^T W v. In training mode the
 * store runs one power iteration first and keeps the new u, v (PyTorch's train-mode behaviour);
 * in eval mode u, v are used as stored.
 */
export interface ParamStore<T> {
  get(key: string): T;
  has(key: string): boolean;
  spectralWeight(prefix: string): T;
}

export interface NetContext<T> {
  ops: Ops<T>;
  p: ParamStore<T>;
}
