/**
 * What the texture SDE's mean μ holds in the hole (not in the official code; see
 * docs/design.md §2.5 and docs/training.md, "The hole fill").
 *
 * The official μ is GT ⊙ m (m = 1 known, 0 hole): the hole is black and the networks must turn
 * black into content. With a classical fill F computed from the known pixels only,
 *
 *     μ = GT ⊙ m + F ⊙ (1 − m),
 *
 * the mean-reverting process starts from a plausible fill and the networks learn a residual.
 * - `zero`  (official, default): F = 0, μ = GT ⊙ m exactly (bit for bit the official tensor);
 * - `mean`:  F = the per-channel mean of the sample's known pixels;
 * - `telea`: F = OpenCV's Telea inpainting (fast marching, radius 3) of the known pixels;
 * - `ns`:    F = OpenCV's Navier–Stokes inpainting (radius 3): smoother across large holes than
 *            Telea, and the better of the two classical fills on our validation photos.
 * - `bridge`: F = `ns` with the straight edges that run into the hole and continue each other
 *            joined across it (src/sde/bridge.ts): a stem or a horizon runs through instead of
 *            bending into a V; a hole without such a pair gets exactly `ns`.
 *
 * A model trained with a fill must be sampled with the same one: training records it in the run
 * folder's model.json (`"fill": "telea"`), and the sampler builds μ the same way.
 *
 * Everything is per sample of an NCHW batch x [B,C,H,W] with a mask [B,1,H,W]; a pixel counts
 * as known when m ≥ 0.5 (the project's masks are 0/1). The hole pixels of x are never read
 * (at inference they are unknown). A sample without any known pixel gets F = 0 (the official μ).
 * `telea`, `ns` and `bridge` need OpenCV.js, whose loading is asynchronous: `await prepareFill(fill)` once, then
 * every function here is synchronous.
 */
import type { F32Tensor } from '../util/tensor.js';
import { loadOpenCv, loadedOpenCv, type Cv } from '../image/opencv.js';
import { bridgeFill } from './bridge.js';

const fr = Math.fround;

export { FILLS, type Fill } from '../options.js';
import { FILLS, type Fill } from '../options.js';

export function isFill(v: unknown): v is Fill {
  return (FILLS as readonly unknown[]).includes(v);
}

/** `v` as a Fill, or an error naming the bad value (`what` says where it came from). */
export function parseFill(v: unknown, what = 'fill'): Fill {
  if (isFill(v)) return v;
  throw new Error(`${what} must be one of ${FILLS.join(', ')} (got ${JSON.stringify(v) ?? String(v)})`);
}

/** The classical fills' neighbourhood radius (the eval baselines', OpenCV's usual 3). */
export const TELEA_RADIUS = 3;

/** The fills computed by OpenCV's `inpaint` (`bridge` starts from `ns`). */
function isOpenCvFill(fill: Fill): fill is 'telea' | 'ns' | 'bridge' {
  return fill === 'telea' || fill === 'ns' || fill === 'bridge';
}

/** Makes `fill` usable synchronously: loads OpenCV.js for `telea`, `ns` and `bridge`, nothing otherwise. */
export async function prepareFill(fill: Fill): Promise<void> {
  if (isOpenCvFill(fill)) await loadOpenCv();
}

function requireCv(fill: Fill, cv?: Cv): Cv {
  const c = cv ?? loadedOpenCv();
  if (!c) throw new Error(`the ${fill} fill needs OpenCV.js: call \`await prepareFill('${fill}')\` (or loadOpenCv()) first`);
  return c;
}

function dims(x: F32Tensor, mask: F32Tensor): [number, number, number, number] {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (x.shape.length !== 4) throw new Error(`fill: expected an NCHW tensor, got [${x.shape.join(', ')}]`);
  if (mask.shape.length !== 4 || mask.shape[0] !== B || mask.shape[1] !== 1 || mask.shape[2] !== H || mask.shape[3] !== W) {
    throw new Error(`fill: mask [${mask.shape.join(', ')}] does not broadcast to [${x.shape.join(', ')}]`);
  }
  if (x.data.length !== B * C * H * W || mask.data.length !== B * H * W) throw new Error('fill: tensor data and shape disagree');
  return [B, C, H, W];
}

/**
 * The classical fill F [B,C,H,W] (float32): the fill value in the hole (m < 0.5), 0 at the known
 * pixels (they are taken from x by `filledMean`). `zero` returns all zeros.
 */
export function holeFill(fill: Fill, x: F32Tensor, mask: F32Tensor, cv?: Cv): Float32Array {
  const [B, C, H, W] = dims(x, mask);
  const hw = H * W;
  const F = new Float32Array(x.data.length);
  if (fill === 'zero') return F;
  if (fill !== 'mean' && !isOpenCvFill(fill)) parseFill(fill);
  const c = isOpenCvFill(fill) ? requireCv(fill, cv) : null;
  for (let b = 0; b < B; b++) {
    const m = mask.data.subarray(b * hw, (b + 1) * hw);
    let known = 0;
    for (let p = 0; p < hw; p++) if (m[p]! >= 0.5) known++;
    if (known === 0 || known === hw) continue;
    const xb = x.data.subarray(b * C * hw, (b + 1) * C * hw);
    const Fb = F.subarray(b * C * hw, (b + 1) * C * hw);
    if (fill === 'mean') meanFill(xb, m, C, hw, known, Fb);
    else openCvFill(c!, fill === 'telea' ? c!.INPAINT_TELEA : c!.INPAINT_NS, xb, m, C, H, W, known, Fb);
    if (fill === 'bridge') Fb.set(bridgeFill(xb, m, Fb, C, H, W).fill);
  }
  return F;
}

/** Per-channel mean of the known pixels (float64 sum), written into the hole of F. */
function meanFill(x: Float32Array, m: Float32Array, C: number, hw: number, known: number, F: Float32Array): void {
  for (let ch = 0; ch < C; ch++) {
    const o = ch * hw;
    let s = 0;
    for (let p = 0; p < hw; p++) if (m[p]! >= 0.5) s += x[o + p]!;
    const v = fr(s / known);
    for (let p = 0; p < hw; p++) if (m[p]! < 0.5) F[o + p] = v;
  }
}

const Q = 65535;

/** OpenCV calls per fill; measured on the validation pairs, hole PSNR rises 0.05 (Telea) to 0.1 dB
 * (Navier–Stokes) from 1 to 3 passes and by < 0.01 dB after that. */
const FILL_PASSES = 3;

/**
 * `cv.inpaint(…, method)` (Telea or Navier–Stokes) channel by channel on 16-bit images (this
 * OpenCV.js build returns garbage for CV_32FC1 input, and 8-bit would quantise to 1/255). Each
 * channel's known values are mapped affinely from [lo, hi] onto 0…65535 (resolution (hi − lo)/65535,
 * any value range works), and the result is mapped back and clamped to [lo, hi] (both methods can
 * overshoot the known range). The eval's `telea` and `ns` baselines are this function too, so μ's
 * fill and the baseline a user compares against are the same pixels.
 *
 * What lies under the hole matters: OpenCV's inpaint reads pixels under its mask (opencv/opencv#25389
 * at the image border, and inside as well; measured on the validation pairs, ~40 % of the hole
 * pixels change with it). So the hole is pre-filled with the channel's known mean before the first
 * call, and with the previous call's result before the next ones (a fixed-point iteration, still
 * from the known pixels alone). Measured against the alternatives on the validation pairs (hole
 * PSNR): black under the hole, as this fill had it before, costs 0.5 dB (Telea) to 0.9 dB
 * (Navier–Stokes) with dark patches where a hole touches the border; the ground truth under it
 * (what a baseline handed the whole photo gets) gains 0.05–0.2 dB it has no right to.
 */
function openCvFill(cv: Cv, method: number, x: Float32Array, m: Float32Array, C: number, H: number, W: number, known: number, F: Float32Array): void {
  const hw = H * W;
  const src = new cv.Mat(H, W, cv.CV_16UC1);
  const mask = new cv.Mat(H, W, cv.CV_8UC1);
  const dst = new cv.Mat();
  try {
    for (let p = 0; p < hw; p++) mask.data[p] = m[p]! >= 0.5 ? 0 : 255;
    for (let ch = 0; ch < C; ch++) {
      const o = ch * hw;
      let lo = Infinity;
      let hi = -Infinity;
      let sum = 0;
      for (let p = 0; p < hw; p++) {
        if (m[p]! < 0.5) continue;
        const v = x[o + p]!;
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (!(hi > lo)) {
        // a constant (or non-finite) channel: either fill of a constant is that constant
        const v = Number.isFinite(lo) ? fr(lo) : 0;
        for (let p = 0; p < hw; p++) if (m[p]! < 0.5) F[o + p] = v;
        continue;
      }
      const scale = Q / (hi - lo);
      const prefill = Math.round((sum / known - lo) * scale);
      const s16 = src.data16U;
      for (let p = 0; p < hw; p++) s16[p] = m[p]! >= 0.5 ? Math.round((x[o + p]! - lo) * scale) : prefill;
      for (let pass = 0; pass < FILL_PASSES; pass++) {
        if (pass > 0) {
          // views taken afresh: a call may grow the wasm heap and detach the old ones
          const s = src.data16U;
          const d = dst.data16U;
          for (let p = 0; p < hw; p++) if (m[p]! < 0.5) s[p] = d[p]!;
        }
        cv.inpaint(src, mask, dst, TELEA_RADIUS, method);
      }
      const d16 = dst.data16U;
      const inv = (hi - lo) / Q;
      for (let p = 0; p < hw; p++) {
        if (m[p]! >= 0.5) continue;
        F[o + p] = fr(Math.min(hi, Math.max(lo, lo + d16[p]! * inv)));
      }
    }
  } finally {
    src.delete();
    mask.delete();
    dst.delete();
  }
}

/**
 * The texture SDE mean μ = x ⊙ m + F ⊙ (1 − m) in float32, F = `holeFill(fill, x, mask)`.
 * `zero` computes x ⊙ m only: bit for bit the official μ.
 */
export function filledMean(fill: Fill, x: F32Tensor, mask: F32Tensor, cv?: Cv): Float32Array {
  const [B, C, H, W] = dims(x, mask);
  const hw = H * W;
  const F = fill === 'zero' ? null : holeFill(fill, x, mask, cv);
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const o = (b * C + c) * hw;
      const mo = b * hw;
      for (let k = 0; k < hw; k++) {
        const mv = mask.data[mo + k]!;
        const known = fr(x.data[o + k]! * mv);
        out[o + k] = F ? fr(known + fr(F[o + k]! * fr(1 - mv))) : known;
      }
    }
  }
  return out;
}
