/**
 * The Adam update as a WebAssembly SIMD kernel, four float32 lanes at a time: in JavaScript every
 * element goes through scalar double-precision divisions and square roots (≈ 10 ns each, 8 % of a
 * training step of the small nets), here through f32x4 ones.
 *
 * Bit-identical to the scalar code in ./adam.ts: each of its operations on float32 values, done in
 * double and rounded once (Math.fround), equals the correctly rounded float32 operation (double
 * has more than 2·24 + 2 bits, so the double rounding is harmless for +, −, ×, ÷ and √). The one
 * exception is m ← β1·m + (1−β1)·g, which rounds the sum of an exact double product once (PyTorch's
 * fused multiply-add); that sum is done in f64x2 lanes, as the scalar code does it. A test checks
 * the two paths bit for bit.
 *
 * The module is assembled here from its bytes (no build step, no file); memory is owned by the
 * module and sized once by `reserve` (growing it later would detach every view handed out).
 */

// WebAssembly opcodes used below (core + the fixed-width SIMD proposal, now standard)
const SIMD = 0xfd;
const op = {
  localGet: 0x20, localSet: 0x21, i32Const: 0x41, i32Add: 0x6a, i32LtU: 0x49, i32Shl: 0x74,
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, i32Eqz: 0x45, void: 0x40,
};
// SIMD sub-opcodes (LEB128 u32)
const simd = {
  load: 0x00, store: 0x0b, shuffle: 0x0d, f32x4Splat: 0x13, f64x2Splat: 0x14,
  demote: 0x5e, promoteLow: 0x5f,
  f32Sqrt: 0xe3, f32Add: 0xe4, f32Mul: 0xe6, f32Div: 0xe7,
  f64Add: 0xf0, f64Mul: 0xf2,
};

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

const I32 = 0x7f;
const F32 = 0x7d;
const F64 = 0x7c;
const V128 = 0x7b;

/**
 * adam(p, g, m, v, n, b1, omb1, b2, omb2, bc2, step, eps): in place over n float32 elements (n a
 * multiple of 4, byte addresses 16-aligned), with b1, b2, omb2 = fr(1−β2), bc2 = fr(√(1−β2^k)),
 * step = fr(−lr/(1−β1^k)), eps as float32 values and omb1 = fr(1−β1) as a double.
 */
function moduleBytes(): Uint8Array<ArrayBuffer> {
  // params: 0 p, 1 g, 2 m, 3 v, 4 n (i32) | 5 b1 (f32) 6 omb1 (f64) 7 b2 (f32) 8 omb2 (f32) 9 bc2 (f32) 10 step (f32) 11 eps (f32)
  // locals: 12 i (i32 byte offset), 13 end (i32), 14..20 splats (v128), 21 g, 22 mi, 23 vi (v128)
  const P = { p: 0, g: 1, m: 2, v: 3, n: 4, b1: 5, omb1: 6, b2: 7, omb2: 8, bc2: 9, step: 10, eps: 11 };
  const L = { i: 12, end: 13, b1: 14, omb1: 15, b2: 16, omb2: 17, bc2: 18, step: 19, eps: 20, g: 21, mi: 22, vi: 23 };
  const s = (sub: number) => [SIMD, ...uleb(sub)];
  const get = (i: number) => [op.localGet, i];
  const set = (i: number) => [op.localSet, i];
  const memarg = [4, 0]; // align 2^4, offset 0
  const load = (base: number) => [...get(base), ...get(L.i), op.i32Add, ...s(simd.load), ...memarg];
  const storeTo = (base: number, value: number[]) => [...get(base), ...get(L.i), op.i32Add, ...value, ...s(simd.store), ...memarg];
  // lanes 2,3 of a local moved to lanes 0,1 (for promote_low), and two demoted halves joined
  const high = (local: number) => [...get(local), ...get(local), ...s(simd.shuffle), 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const join = [...s(simd.shuffle), 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  // half of m: demote( promote(t) + promote(g)·omb1 ), t = fr(m·b1) already in f32 lanes
  const mHalf = (tExpr: number[], gExpr: number[]) => [
    ...tExpr, ...s(simd.promoteLow), ...gExpr, ...s(simd.promoteLow), ...get(L.omb1), ...s(simd.f64Mul), ...s(simd.f64Add), ...s(simd.demote),
  ];
  const body = [
    // g = load(g + i); t = fr(m·b1) (kept in mi until mi itself is known)
    ...load(P.g), ...set(L.g),
    ...load(P.m), ...get(L.b1), ...s(simd.f32Mul), ...set(L.mi),
    // mi = join(mHalf(t, g), mHalf(high(t), high(g)))
    ...mHalf(get(L.mi), get(L.g)),
    ...mHalf(high(L.mi), high(L.g)),
    ...join, ...set(L.mi),
    // vi = fr(v·b2) + fr(fr(omb2·g)·g)
    ...load(P.v), ...get(L.b2), ...s(simd.f32Mul),
    ...get(L.omb2), ...get(L.g), ...s(simd.f32Mul), ...get(L.g), ...s(simd.f32Mul),
    ...s(simd.f32Add), ...set(L.vi),
    ...storeTo(P.m, get(L.mi)),
    ...storeTo(P.v, get(L.vi)),
    // p += (step·mi) / (√vi / bc2 + eps)
    ...storeTo(P.p, [
      ...load(P.p),
      ...get(L.step), ...get(L.mi), ...s(simd.f32Mul),
      ...get(L.vi), ...s(simd.f32Sqrt), ...get(L.bc2), ...s(simd.f32Div), ...get(L.eps), ...s(simd.f32Add),
      ...s(simd.f32Div),
      ...s(simd.f32Add),
    ]),
    // i += 16
    ...get(L.i), op.i32Const, 16, op.i32Add, ...set(L.i),
  ];
  const code = [
    // end = n << 2; splats
    ...get(P.n), op.i32Const, 2, op.i32Shl, ...set(L.end),
    ...get(P.b1), ...s(simd.f32x4Splat), ...set(L.b1),
    ...get(P.omb1), ...s(simd.f64x2Splat), ...set(L.omb1),
    ...get(P.b2), ...s(simd.f32x4Splat), ...set(L.b2),
    ...get(P.omb2), ...s(simd.f32x4Splat), ...set(L.omb2),
    ...get(P.bc2), ...s(simd.f32x4Splat), ...set(L.bc2),
    ...get(P.step), ...s(simd.f32x4Splat), ...set(L.step),
    ...get(P.eps), ...s(simd.f32x4Splat), ...set(L.eps),
    // block { loop { if !(i < end) break; body; continue } }
    op.block, op.void, op.loop, op.void,
    ...get(L.i), ...get(L.end), op.i32LtU, op.i32Eqz, op.brIf, 1,
    ...body,
    op.br, 0,
    op.end, op.end,
    op.end,
  ];
  const locals = [3, 2, I32, 7, V128, 3, V128]; // 3 groups: 2×i32, 7×v128, 3×v128
  const fn = [...locals, ...code];
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
  const name = (str: string) => [...uleb(str.length), ...[...str].map((c) => c.charCodeAt(0))];
  const type = [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [F32], [F64], [F32], [F32], [F32], [F32], [F32]]), 0];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([type])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, 1]])), // one memory, min 1 page
    ...section(7, vec([[...name('adam'), 0x00, 0], [...name('mem'), 0x02, 0]])),
    ...section(10, vec([[...uleb(fn.length), ...fn]])),
  ]);
}

type AdamFn = (p: number, g: number, m: number, v: number, n: number, b1: number, omb1: number, b2: number, omb2: number, bc2: number, step: number, eps: number) => void;

/** Scalars of one Adam step, as ./adam.ts computes them (float32 values; omb1 used in double). */
export interface AdamScalars {
  b1: number;
  omb1: number;
  b2: number;
  omb2: number;
  bc2: number;
  step: number;
  eps: number;
}

/** A region of the kernel's memory: float32 arrays for p, m, v per key, plus a scratch area for g. */
export class AdamSimd {
  private readonly memory: WebAssembly.Memory;
  private readonly fn: AdamFn;
  private reserved = false;
  private scratch = 0;
  private scratchLength = 0;

  private constructor(instance: WebAssembly.Instance) {
    this.memory = instance.exports.mem as WebAssembly.Memory;
    this.fn = instance.exports.adam as AdamFn;
  }

  /** The kernel, or null where WebAssembly SIMD is unavailable (the scalar code then runs). */
  static create(): AdamSimd | null {
    try {
      const bytes = moduleBytes();
      if (typeof WebAssembly === 'undefined' || !WebAssembly.validate(bytes)) return null;
      return new AdamSimd(new WebAssembly.Instance(new WebAssembly.Module(bytes)));
    } catch {
      return null;
    }
  }

  /** True for an array that lives in this kernel's memory. */
  owns(a: Float32Array): boolean {
    return a.buffer === this.memory.buffer;
  }

  /**
   * Lay out p, m, v for every key once (16-byte aligned, lengths padded to 4) and return the
   * views, p filled from `params`, m and v zero. One call per kernel: growing the memory later
   * would detach the views.
   */
  reserve(params: Map<string, Float32Array>): { p: Map<string, Float32Array>; m: Map<string, Float32Array>; v: Map<string, Float32Array> } {
    if (this.reserved) throw new Error('AdamSimd.reserve: already reserved');
    this.reserved = true;
    const pad = (n: number) => (n + 3) & ~3;
    let floats = 0;
    let largest = 0;
    for (const a of params.values()) {
      floats += 3 * pad(a.length);
      largest = Math.max(largest, pad(a.length));
    }
    floats += largest;
    const bytes = floats * 4;
    const pages = Math.ceil(bytes / 65536) + 1;
    const have = this.memory.buffer.byteLength / 65536;
    if (pages > have) this.memory.grow(pages - have);
    const buf = this.memory.buffer;
    let off = 0;
    const take = (n: number) => {
      const view = new Float32Array(buf, off, n);
      off += pad(n) * 4;
      return view;
    };
    const p = new Map<string, Float32Array>();
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const [k, a] of params) {
      const pv = take(a.length);
      pv.set(a);
      p.set(k, pv);
      m.set(k, take(a.length));
      v.set(k, take(a.length));
    }
    this.scratch = off;
    this.scratchLength = largest;
    return { p, m, v };
  }

  /** One update of one tensor in place: p, m and v are this kernel's (reserved), g is copied in. */
  update(p: Float32Array, g: ArrayLike<number>, m: Float32Array, v: Float32Array, k: AdamScalars): void {
    const n = p.length;
    if (!this.owns(p) || !this.owns(m) || !this.owns(v)) throw new Error('AdamSimd.update: p, m and v must be reserved arrays');
    if (n > this.scratchLength) throw new Error(`AdamSimd: a tensor of ${n} values is larger than the reserved scratch (${this.scratchLength})`);
    new Float32Array(this.memory.buffer, this.scratch, n).set(g);
    // the padding lanes (up to a multiple of 4) are updated too: they belong to no tensor
    this.fn(p.byteOffset, this.scratch, m.byteOffset, v.byteOffset, (n + 3) & ~3, k.b1, k.omb1, k.b2, k.omb2, k.bc2, k.step, k.eps);
  }
}
