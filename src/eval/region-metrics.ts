/**
 * PSNR and SSIM of one region (the hole, or the known pixels) of a planar float image in [0, 1]
 * against the ground truth: what the discrepancy analysis (./analyze.ts) records at every step.
 * SSIM is the official window (11×11 Gaussian, σ 1.5, C1 = (0.01·255)², C2 = (0.03·255)², on the
 * 0…255 scale), its map averaged over the region's pixels that lie 5 px inside the border (the
 * official "valid" crop), channels averaged.
 */
import { gaussianKernel1D, PSNR_CAP } from './metrics.js';

/** 10·log10(1 / MSE) over the region's pixels of every channel (values clamped to [0, 1]); capped at PSNR_CAP; NaN for an empty region. */
export function regionPsnr(a: ArrayLike<number>, b: ArrayLike<number>, region: Uint8Array, channels: number): number {
  const hw = region.length;
  let se = 0;
  let n = 0;
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < hw; p++) {
      if (!region[p]) continue;
      const d = clamp01(a[c * hw + p]!) - clamp01(b[c * hw + p]!);
      se += d * d;
      n++;
    }
  }
  if (n === 0) return NaN;
  if (se === 0) return PSNR_CAP;
  return Math.min(PSNR_CAP, 10 * Math.log10(n / se));
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** separable Gaussian filter of one plane, "valid" output (H−10)×(W−10) */
function filterValid(x: Float64Array, H: number, W: number, k: Float64Array): Float64Array {
  const r = (k.length - 1) / 2;
  const Wo = W - 2 * r;
  const Ho = H - 2 * r;
  const tmp = new Float64Array(H * Wo);
  for (let y = 0; y < H; y++) {
    for (let x0 = 0; x0 < Wo; x0++) {
      let s = 0;
      for (let j = 0; j < k.length; j++) s += k[j]! * x[y * W + x0 + j]!;
      tmp[y * Wo + x0] = s;
    }
  }
  const out = new Float64Array(Ho * Wo);
  for (let y0 = 0; y0 < Ho; y0++) {
    for (let x0 = 0; x0 < Wo; x0++) {
      let s = 0;
      for (let i = 0; i < k.length; i++) s += k[i]! * tmp[(y0 + i) * Wo + x0]!;
      out[y0 * Wo + x0] = s;
    }
  }
  return out;
}

/** SSIM map mean over the region (see the module comment); NaN when no region pixel lies inside the valid crop. */
export function regionSsim(a: ArrayLike<number>, b: ArrayLike<number>, region: Uint8Array, channels: number, H: number, W: number): number {
  const k = gaussianKernel1D(11, 1.5);
  const r = 5;
  if (H <= 2 * r || W <= 2 * r) return NaN;
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  const hw = H * W;
  const Wo = W - 2 * r;
  const Ho = H - 2 * r;
  let sum = 0;
  let n = 0;
  for (let c = 0; c < channels; c++) {
    const p = new Float64Array(hw);
    const q = new Float64Array(hw);
    for (let i = 0; i < hw; i++) {
      p[i] = clamp01(a[c * hw + i]!) * 255;
      q[i] = clamp01(b[c * hw + i]!) * 255;
    }
    const mp = filterValid(p, H, W, k);
    const mq = filterValid(q, H, W, k);
    const spp = filterValid(p.map((v) => v * v), H, W, k);
    const sqq = filterValid(q.map((v) => v * v), H, W, k);
    const spq = filterValid(p.map((v, i) => v * q[i]!), H, W, k);
    for (let y = 0; y < Ho; y++) {
      for (let x = 0; x < Wo; x++) {
        if (!region[(y + r) * W + x + r]) continue;
        const o = y * Wo + x;
        const m1 = mp[o]!;
        const m2 = mq[o]!;
        const v1 = spp[o]! - m1 * m1;
        const v2 = sqq[o]! - m2 * m2;
        const cv = spq[o]! - m1 * m2;
        sum += ((2 * m1 * m2 + C1) * (2 * cv + C2)) / ((m1 * m1 + m2 * m2 + C1) * (v1 + v2 + C2));
        n++;
      }
    }
  }
  return n ? sum / n : NaN;
}

/** PSNR and SSIM of the hole and of the known region. */
export interface RegionScores {
  holePsnr: number;
  knownPsnr: number;
  holeSsim: number;
  knownSsim: number;
}

/** `holes`: 1 = hole per pixel. */
export function regionScores(a: ArrayLike<number>, gt: ArrayLike<number>, holes: Uint8Array, known: Uint8Array, channels: number, H: number, W: number): RegionScores {
  return {
    holePsnr: regionPsnr(a, gt, holes, channels),
    knownPsnr: regionPsnr(a, gt, known, channels),
    holeSsim: regionSsim(a, gt, holes, channels, H, W),
    knownSsim: regionSsim(a, gt, known, channels, H, W),
  };
}
