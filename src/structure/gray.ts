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
import { fma } from '../util/float.js';

export { fma, twoProdErr, twoSumErr } from '../util/float.js';

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
