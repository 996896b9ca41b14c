/**
 * Image-quality metrics, written to match the official helpers in `utils/img_utils.py`
 * (`calculate_psnr`, `calculate_ssim`, docs/design.md §8) so numbers are comparable with papers that used
 * them, plus hole-only variants for inpainting and a texture measure around the hole (./swd.ts).
 *
 * Images are interleaved HWC samples in [0, 255] (any typed array; computed in float64 as the
 * official code casts with `astype(np.float64)`).
 */
import { holeSwd } from './swd.js';

export { holeSwd, SWD_DEFAULTS, SWD_SCALE, type SwdOptions } from './swd.js';

export type Samples = ArrayLike<number>;

export interface Plane {
  width: number;
  height: number;
  channels: number;
  data: Samples;
}

/** What reports show instead of +Infinity (identical images): JSON and tables cannot hold ∞. */
export const PSNR_CAP = 100;

export function capPsnr(p: number): number {
  return Math.min(p, PSNR_CAP);
}

/** `cv2.getGaussianKernel(n, sigma)` for sigma > 0 (float64): exp(-(i-(n-1)/2)²/(2σ²)), normalised to sum 1. */
export function gaussianKernel1D(n = 11, sigma = 1.5): Float64Array {
  const k = new Float64Array(n);
  const c = (n - 1) / 2;
  const s2 = -0.5 / (sigma * sigma);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - c;
    k[i] = Math.exp(s2 * x * x);
    sum += k[i]!;
  }
  for (let i = 0; i < n; i++) k[i]! /= sum;
  return k;
}

/** `np.outer(k, k.T)`: the 2-D SSIM window, row-major n×n. */
export function gaussianWindow(n = 11, sigma = 1.5): Float64Array {
  const k = gaussianKernel1D(n, sigma);
  const w = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) w[i * n + j] = k[i]! * k[j]!;
  return w;
}

function checkSame(a: Plane, b: Plane): void {
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new Error(`metrics: shapes differ (${a.width}x${a.height}x${a.channels} vs ${b.width}x${b.height}x${b.channels})`);
  }
  const n = a.width * a.height * a.channels;
  if (a.data.length !== n || b.data.length !== n) throw new Error(`metrics: sample count does not match ${a.width}x${a.height}x${a.channels}`);
}

function psnrOfMse(mse: number): number {
  if (mse === 0) return Infinity;
  return 20 * Math.log10(255 / Math.sqrt(mse));
}

/** Official `calculate_psnr`: whole image, all channels; +Infinity when identical. */
export function calculatePsnr(a: Plane, b: Plane): number {
  checkSame(a, b);
  let s = 0;
  const n = a.data.length;
  for (let i = 0; i < n; i++) {
    const d = a.data[i]! - b.data[i]!;
    s += d * d;
  }
  return psnrOfMse(s / n);
}

/**
 * Official single-image `ssim` on one channel `c` of an HWC array: the filter2D results are
 * cropped `[5:-5, 5:-5]`, so only windows entirely inside the image count and the border mode
 * of cv2.filter2D never matters; computing exactly those windows is therefore equivalent.
 */
function ssimChannel(a: Plane, b: Plane, c: number, win: Float64Array, n: number): { sum: number; count: number } {
  const { width: W, height: H, channels: C } = a;
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  const r = (n - 1) / 2;
  let sum = 0;
  let count = 0;
  for (let y = r; y < H - r; y++) {
    for (let x = r; x < W - r; x++) {
      let m1 = 0;
      let m2 = 0;
      let s11 = 0;
      let s22 = 0;
      let s12 = 0;
      for (let dy = 0; dy < n; dy++) {
        const row = ((y - r + dy) * W + (x - r)) * C + c;
        for (let dx = 0; dx < n; dx++) {
          const w = win[dy * n + dx]!;
          const p = a.data[row + dx * C]!;
          const q = b.data[row + dx * C]!;
          m1 += w * p;
          m2 += w * q;
          s11 += w * p * p;
          s22 += w * q * q;
          s12 += w * p * q;
        }
      }
      const mu11 = m1 * m1;
      const mu22 = m2 * m2;
      const mu12 = m1 * m2;
      const v1 = s11 - mu11;
      const v2 = s22 - mu22;
      const v12 = s12 - mu12;
      sum += ((2 * mu12 + C1) * (2 * v12 + C2)) / ((mu11 + mu22 + C1) * (v1 + v2 + C2));
      count++;
    }
  }
  return { sum, count };
}

/**
 * Official `calculate_ssim`: 11×11 Gaussian (σ 1.5) window, valid region only; for several
 * channels the mean of the per-channel maps (what the official 3-channel call computes, since
 * cv2.filter2D filters channels independently and every channel map has the same size).
 */
export function calculateSsim(a: Plane, b: Plane): number {
  checkSame(a, b);
  const n = 11;
  if (a.width < n || a.height < n) throw new Error(`ssim: image ${a.width}x${a.height} is smaller than the ${n}x${n} window`);
  const win = gaussianWindow(n, 1.5);
  let sum = 0;
  let count = 0;
  for (let c = 0; c < a.channels; c++) {
    const r = ssimChannel(a, b, c, win, n);
    sum += r.sum;
    count += r.count;
  }
  return sum / count;
}

/** 1 = hole, one entry per pixel. */
function holeSamples(a: Plane, b: Plane, holes: Uint8Array): { sq: number; abs: number; n: number } {
  checkSame(a, b);
  if (holes.length !== a.width * a.height) throw new Error(`metrics: hole map has ${holes.length} pixels, image has ${a.width * a.height}`);
  const C = a.channels;
  let sq = 0;
  let abs = 0;
  let n = 0;
  for (let i = 0; i < holes.length; i++) {
    if (!holes[i]) continue;
    for (let c = 0; c < C; c++) {
      const d = a.data[i * C + c]! - b.data[i * C + c]!;
      sq += d * d;
      abs += Math.abs(d);
      n++;
    }
  }
  return { sq, abs, n };
}

/** PSNR over the hole pixels (all channels); NaN when there is no hole, +Infinity when identical. */
export function holePsnr(a: Plane, b: Plane, holes: Uint8Array): number {
  const { sq, n } = holeSamples(a, b, holes);
  return n === 0 ? NaN : psnrOfMse(sq / n);
}

/** Mean absolute error over the hole pixels, in [0, 1] units (samples / 255). */
export function holeL1(a: Plane, b: Plane, holes: Uint8Array): number {
  const { abs, n } = holeSamples(a, b, holes);
  return n === 0 ? NaN : abs / n / 255;
}

export interface ImageMetrics {
  /** dB, capped at PSNR_CAP */
  psnr: number;
  ssim: number;
  /** dB, capped at PSNR_CAP */
  holePsnr: number;
  holeL1: number;
  /** sliced Wasserstein distance of Laplacian patches around the hole, ×1e3 (./swd.ts); lower is better */
  holeSwd: number;
  /** true when a PSNR was +Infinity before capping */
  capped: boolean;
}

export function imageMetrics(out: Plane, gt: Plane, holes: Uint8Array): ImageMetrics {
  const p = calculatePsnr(out, gt);
  const hp = holePsnr(out, gt, holes);
  return {
    psnr: capPsnr(p),
    ssim: calculateSsim(out, gt),
    holePsnr: capPsnr(hp),
    holeL1: holeL1(out, gt, holes),
    holeSwd: holeSwd(out.data, gt.data, holes, out.width, out.height),
    capped: p === Infinity || hp === Infinity,
  };
}
