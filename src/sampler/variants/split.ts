/**
 * `split` (not in the official code): the `one-call` estimate's low frequencies with a sample's
 * detail above them. Both start from the same terminal states (the same seed): the estimate is the
 * texture network's x̂0 at T (the highest PSNR, smooth), the sample is the `SPLIT_BASE` trajectory
 * (texture, and colour specks the truth does not have). The result is
 *   sample + G_σ ∗ (estimate − sample)
 * on the composited images, so the known pixels cancel and only the hole changes: one network call
 * more than the sample. σ = 1 px was chosen on the validation split in session 9 (docs/training.md,
 * "Measured in session 9"): on the reserved set it is the only setting above OpenCV Telea and
 * Navier–Stokes in both PSNR and hole SWD in every bucket.
 */
import type { GuidedVariant } from '../../options.js';

/** The trajectory whose detail the split keeps (the bundled model's default sampler before `split`). */
export const SPLIT_BASE = 'no-resampling' satisfies GuidedVariant;
/** The Gaussian's standard deviation in window pixels: the estimate below it, the sample above. */
export const SPLIT_SIGMA = 1;

/** Separable Gaussian blur of planar [C,H,W] data, σ in pixels, radius ⌈3σ⌉, borders replicated. */
export function gaussianBlur(data: Float32Array, C: number, H: number, W: number, sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  const w = k.map((v) => v / sum);
  const hw = H * W;
  const tmp = new Float32Array(data.length);
  const out = new Float32Array(data.length);
  for (let c = 0; c < C; c++) {
    const o = c * hw;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let i = -r; i <= r; i++) s += w[i + r]! * data[o + y * W + Math.min(W - 1, Math.max(0, x + i))]!;
        tmp[o + y * W + x] = s;
      }
    }
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let i = -r; i <= r; i++) s += w[i + r]! * tmp[o + Math.min(H - 1, Math.max(0, y + i)) * W + x]!;
        out[o + y * W + x] = s;
      }
    }
  }
  return out;
}

/** sample + G_σ ∗ (estimate − sample), planar [C,H,W]: the estimate's low frequencies, the sample's high ones. */
export function splitBands(estimate: Float32Array, sampled: Float32Array, C: number, H: number, W: number, sigma = SPLIT_SIGMA): Float32Array {
  const diff = Float32Array.from(estimate, (v, i) => v - sampled[i]!);
  const low = gaussianBlur(diff, C, H, W, sigma);
  return Float32Array.from(sampled, (v, i) => v + low[i]!);
}
