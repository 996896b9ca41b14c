/**
 * Host-side tensors: a flat typed array plus a shape. All image tensors in this project are
 * NCHW (batch, channel, height, width), values in [0, 1]; masks are [B, 1, H, W] with
 * m = 1 for a known pixel and m = 0 for a hole (the official convention, see docs/design.md §2.3 and §7).
 */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

export interface HostTensor<A extends ArrayLike<number> = Float32Array> {
  shape: number[];
  data: A;
}

export type F32Tensor = HostTensor<Float32Array>;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function f32(shape: number[], data?: ArrayLike<number>): F32Tensor {
  const n = numel(shape);
  const out = new Float32Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`tensor data has ${data.length} values, shape ${shapeStr(shape)} needs ${n}`);
    out.set(data);
  }
  return { shape: [...shape], data: out };
}

/** Max-abs difference between two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
