/**
 * `split` (not in the official code): the `one-call` estimate's low frequencies with a sample's
 * detail above them. Both start from the same terminal states (the same seed): the estimate is the
 * texture network's x̂0 at T (the highest PSNR, smooth), the sample is the `SPLIT_BASE` trajectory
 * (texture, and colour specks the truth does not have). In the hole the result is
 *   sample + G_σ ∗ (estimate − sample) / G_σ ∗ (1 − m)
 * (the difference low-passed over the hole alone, see splitBands); the known pixels are the
 * image's. One network call more than the sample. σ = 1.3 px was chosen on the validation split
 * (docs/training.md, "Measured in session 10"): a smaller σ keeps more of the estimate (PSNR up,
 * texture down), a larger one more of the sample; 1.3 has the largest smallest margin over OpenCV
 * Telea and Navier–Stokes on both measures.
 */
import type { GuidedVariant } from '../../options.js';

/** The trajectory whose detail the split keeps (the bundled model's default sampler before `split`). */
export const SPLIT_BASE = 'no-resampling' satisfies GuidedVariant;
/** The Gaussian's standard deviation in window pixels: the estimate below it, the sample above. */
export const SPLIT_SIGMA = 1.3;

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

/**
 * sample + the low-pass of (estimate − sample) over the hole, planar [C,H,W], mask [H,W] (1 known,
 * 0 hole): the estimate's low frequencies, the sample's high ones. The low-pass is normalised over
 * the hole, G_σ ∗ d / G_σ ∗ (1 − m), because d is zero outside it: a plain blur would dilute it with
 * those zeros and hand a thin hole (a 2 px scratch) the sample's noise almost unchanged.
 */
export function splitBands(estimate: Float32Array, sampled: Float32Array, mask: Float32Array, C: number, H: number, W: number, sigma = SPLIT_SIGMA): Float32Array {
  const hw = H * W;
  const diff = Float32Array.from(estimate, (v, i) => (mask[i % hw]! < 1 ? v - sampled[i]! : 0));
  const low = gaussianBlur(diff, C, H, W, sigma);
  const weight = gaussianBlur(Float32Array.from(mask, (m) => 1 - m), 1, H, W, sigma);
  return Float32Array.from(sampled, (v, i) => (mask[i % hw]! < 1 ? v + low[i]! / weight[i % hw]! : v));
}
