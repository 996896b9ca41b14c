/**
 * Grayscale conversion of the structure pipeline (docs/design.md §2.2 steps 1–2):
 *
 *   float RGB [3,H,W] in [0,1] --torch `mul(255).byte()`--> uint8 --skimage 0.19.3 rgb2gray--> float64 gray
 *
 * `rgb2gray` in skimage 0.19.3 is `img_as_float(rgb) @ [0.2125, 0.7154, 0.0721]`, where
 * `img_as_float` of uint8 multiplies by the double `1/255` (not a division) and the matrix-vector
 * product goes through numpy's matmul → OpenBLAS dgemv. The reference numbers (fixtures) are
 * reproduced bit-for-bit by the dgemv kernel's evaluation order
 * `fma(B, 0.0721, fma(R, 0.2125, G·0.7154))`, which `rgbToGray` emulates with an exact software
 * FMA. (A plain `R·a + G·b + B·c` differs by ≤ 1 ulp in ~15 % of pixels.)
 */

import { canny } from './canny.js';

// ---------------------------------------------------------------------------------------------
// Exact floating-point helpers (error-free transformations and a correctly rounded FMA)
// ---------------------------------------------------------------------------------------------

const SPLITTER = 134217729; // 2^27 + 1 (Dekker/Veltkamp split)

/** Rounding error of `a + b` given `s = fl(a + b)` (Knuth TwoSum): a + b = s + err exactly. */
export function twoSumErr(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

/** Rounding error of `a * b` given `p = fl(a * b)` (Dekker TwoProduct): a·b = p + err exactly
 * (valid while no intermediate over/underflows; callers guard the ranges). */
export function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The neighbouring double of finite, nonzero-direction `x` toward the sign of `dir`. */
function nextToward(x: number, dir: number): number {
  if (x === 0) return dir > 0 ? Number.MIN_VALUE : -Number.MIN_VALUE;
  f64[0] = x;
  const awayFromZero = (x > 0) === (dir > 0);
  u64[0] = awayFromZero ? u64[0]! + 1n : u64[0]! - 1n;
  return f64[0]!;
}

/** Finite double → [integer mantissa, exponent] with x = m · 2^e exactly. */
function decompose(x: number): [bigint, number] {
  f64[0] = x;
  const bits = u64[0]!;
  const neg = bits >> 63n === 1n;
  const bexp = Number((bits >> 52n) & 0x7ffn);
  let m = bits & 0xfffffffffffffn;
  let e: number;
  if (bexp === 0) e = -1074;
  else {
    m |= 1n << 52n;
    e = bexp - 1075;
  }
  return [neg ? -m : m, e];
}

function ldexp(x: number, e: number): number {
  while (e > 1000) {
    x *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    x *= 2 ** -1000;
    e += 1000;
  }
  return x * 2 ** e;
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Round N·2^E (exact big integer N) to the nearest double, ties to even. */
function roundBigToDouble(N: bigint, E: number): number {
  if (N === 0n) return 0;
  const neg = N < 0n;
  let a = neg ? -N : N;
  const L = bitLength(a);
  let shift = Math.max(L - 53, -1074 - E);
  if (shift > 0) {
    const sh = BigInt(shift);
    let q = a >> sh;
    const rem = a - (q << sh);
    const half = 1n << (sh - 1n);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
    a = q;
  } else shift = 0;
  const r = ldexp(Number(a), E + shift);
  return neg ? -r : r;
}

/** Exact a·b + c with one rounding, by big-integer arithmetic (slow path). */
function fmaExact(a: number, b: number, c: number): number {
  if (a === 0 || b === 0) return a * b + c;
  const [ma, ea] = decompose(a);
  const [mb, eb] = decompose(b);
  const [mc, ec] = decompose(c);
  const ep = ea + eb;
  const mp = ma * mb;
  if (mc === 0n) return roundBigToDouble(mp, ep);
  const E = Math.min(ep, ec);
  const N = (mp << BigInt(ep - E)) + (mc << BigInt(ec - E));
  if (N === 0n) return a * b + c; // exact cancellation: sign of zero as IEEE fma (RN) gives
  return roundBigToDouble(N, E);
}

/**
 * Correctly rounded fused multiply-add `a·b + c` (one rounding, like C `fma` / the FMA
 * instructions OpenBLAS uses). Fast error-free path; big-integer fallback for hard cases
 * (cancellation, extreme exponents).
 */
export function fma(a: number, b: number, c: number): number {
  const p = a * b;
  if (!Number.isFinite(p) || !Number.isFinite(c)) return p + c;
  const ap = Math.abs(p);
  if (ap === 0 || ap < 2 ** -900 || ap > 2 ** 900 || Math.abs(a) > 2 ** 995 || Math.abs(b) > 2 ** 995) {
    return fmaExact(a, b, c);
  }
  const e = twoProdErr(a, b, p); // a·b = p + e
  const s = p + c;
  const t = twoSumErr(p, c, s); // p + c = s + t
  const u = t + e;
  const ue = twoSumErr(t, e, u); // exact value X = s + u + ue
  const r = s + u;
  if (ue === 0) return r; // s + u is X exactly: r = RN(X)
  if (r === 0 || Math.abs(u) > Math.abs(r) * 0.125 || Math.abs(r) < 2 ** -900) return fmaExact(a, b, c);
  const re = twoSumErr(s, u, r); // s + u = r + re
  if (re === 0) return r; // |ue| < ulp(u) ≤ ulp(r)/4: cannot cross a midpoint
  const nb = nextToward(r, re);
  if (re !== (nb - r) / 2) return r; // s + u not a tie: X lies on the same side
  // s + u is exactly half-way between r and nb; the residual ue decides
  return (ue > 0) === (re > 0) ? nb : r;
}

// ---------------------------------------------------------------------------------------------
// Pipeline steps
// ---------------------------------------------------------------------------------------------

/**
 * torch `tensor.mul(255).byte()` on float32 values (what torchvision `to_pil_image` does to a
 * float image): float32 product `fround(v·255)`, then the float→uint8 cast, which truncates
 * toward zero. Values in [0, 1] map into [0, 255]; out-of-range values wrap modulo 256 as the
 * x86 conversion (via int32) does; NaN → 0.
 */
export function toUint8Trunc(rgb: Float32Array | ArrayLike<number>): Uint8Array {
  const n = rgb.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = Math.fround(Math.fround(rgb[i]!) * 255);
    if (x !== x) continue; // NaN
    const t = Math.trunc(x);
    out[i] = t >= 0 && t <= 255 ? t : (t | 0) & 255;
  }
  return out;
}

/** skimage 0.19.3 rgb2gray luma coefficients (ITU-R BT.709). */
export const GRAY_COEFFS = [0.2125, 0.7154, 0.0721] as const;

const INV255 = 1 / 255;

/**
 * skimage 0.19.3 `rgb2gray` of a uint8 image stored planar [3,H,W] → float64 [H,W], bit-exact with
 * numpy (`u8 * (1/255)` then the OpenBLAS dgemv order `fma(B,c_B, fma(R,c_R, G·c_G))`).
 */
export function rgbToGray(u8: Uint8Array | ArrayLike<number>, H: number, W: number): Float64Array {
  const HW = H * W;
  if (u8.length < 3 * HW) throw new Error(`rgbToGray: expected ${3 * HW} values ([3,${H},${W}]), got ${u8.length}`);
  // per-channel lookup of the 256 possible products / scaled values
  const vR = new Float64Array(256);
  const vG = new Float64Array(256);
  const vB = new Float64Array(256);
  for (let k = 0; k < 256; k++) {
    const v = k * INV255;
    vR[k] = v;
    vG[k] = v * GRAY_COEFFS[1];
    vB[k] = v;
  }
  const out = new Float64Array(HW);
  for (let i = 0; i < HW; i++) {
    const r = u8[i]! & 255;
    const g = u8[HW + i]! & 255;
    const b = u8[2 * HW + i]! & 255;
    out[i] = fma(vB[b]!, GRAY_COEFFS[2], fma(vR[r]!, GRAY_COEFFS[0], vG[g]!));
  }
  return out;
}

/** Plain float64 luma `R·a + G·b + B·c` (numpy without BLAS); ≤ 1 ulp from `rgbToGray`. */
export function rgbToGrayNaive(u8: Uint8Array | ArrayLike<number>, H: number, W: number): Float64Array {
  const HW = H * W;
  const out = new Float64Array(HW);
  for (let i = 0; i < HW; i++) {
    out[i] =
      (u8[i]! * INV255) * GRAY_COEFFS[0] + (u8[HW + i]! * INV255) * GRAY_COEFFS[1] + (u8[2 * HW + i]! * INV255) * GRAY_COEFFS[2];
  }
  return out;
}

export interface Structure {
  /** float32 of the float64 gray image, [H,W] (the pipeline's `GT_gray` [1,H,W]) */
  gray: Float32Array;
  /** Canny edges as 0/1 floats, [H,W] (the pipeline's `GT_edge` [1,H,W]) */
  edge: Float32Array;
  /** the float64 gray image Canny ran on */
  gray64: Float64Array;
}

/**
 * Official `image_to_edge(GT, sigma)` for one image: float RGB [3,H,W] in [0,1] →
 * gray (float32) and Canny edges ({0,1} float32). sigma = 2 at test time, 3 in training.
 */
export function structureOf(rgb: Float32Array, H: number, W: number, sigma: number): Structure {
  if (rgb.length !== 3 * H * W) throw new Error(`structureOf: expected ${3 * H * W} values ([3,${H},${W}]), got ${rgb.length}`);
  const gray64 = rgbToGray(toUint8Trunc(rgb), H, W);
  const e = canny(gray64, H, W, sigma);
  const edge = new Float32Array(H * W);
  for (let i = 0; i < e.length; i++) edge[i] = e[i]!;
  return { gray: Float32Array.from(gray64), edge, gray64 };
}

/** Batch version: rgb [B,3,H,W] → gray [B,1,H,W], edge [B,1,H,W] (float32). */
export function structureOfBatch(
  rgb: Float32Array,
  B: number,
  H: number,
  W: number,
  sigma: number,
): { gray: Float32Array; edge: Float32Array } {
  const HW = H * W;
  if (rgb.length !== B * 3 * HW) throw new Error(`structureOfBatch: expected ${B * 3 * HW} values ([${B},3,${H},${W}]), got ${rgb.length}`);
  const gray = new Float32Array(B * HW);
  const edge = new Float32Array(B * HW);
  for (let b = 0; b < B; b++) {
    const s = structureOf(rgb.subarray(b * 3 * HW, (b + 1) * 3 * HW), H, W, sigma);
    gray.set(s.gray, b * HW);
    edge.set(s.edge, b * HW);
  }
  return { gray, edge };
}
