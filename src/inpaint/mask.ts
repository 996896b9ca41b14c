/**
 * User masks -> hole maps. In mask files white (non-zero) marks the hole, or, in a mask with alpha
 * that is not opaque everywhere, opaque marks it (readsAlpha); internally the networks use the
 * official convention m = 1 known, m = 0 hole (see README).
 */
import { maxValue, type RasterImage } from '../image/raster.js';
import { StrDiffusionError } from '../util/errors.js';

export interface MaskOptions {
  /** the mask marks the KNOWN region instead of the hole */
  invertMask?: boolean;
  /** scale a mask of another size to the image (nearest) instead of failing */
  resizeMask?: boolean;
}

/** What pixel `i` of a mask (C interleaved channels) is judged by: its luma when `colour`, else its grey value. */
export function maskValue(data: ArrayLike<number>, i: number, C: number, colour: boolean): number {
  return colour ? 0.299 * data[i * C]! + 0.587 * data[i * C + 1]! + 0.114 * data[i * C + 2]! : data[i * C]!;
}

/**
 * Whether a mask is read by its alpha channel: it has one (grey+alpha or RGBA) and it is not
 * opaque everywhere. Then opaque marks the hole and the colour is ignored (a stroke layer exported
 * from a paint program, black or any colour on transparent); a mask opaque everywhere is read by
 * its colour like one without alpha. The one rule of the library, the CLI, the server and the page.
 */
export function readsAlpha(data: ArrayLike<number>, n: number, C: number, max: number): boolean {
  if (C !== 2 && C !== 4) return false;
  for (let i = 0; i < n; i++) if (data[i * C + C - 1]! < max) return true;
  return false;
}

/** Mask values >= this are hole: a 0/1 mask (peak <= 1) counts non-zero, any other half the range
 * (so anti-aliased or JPEG-compressed 0/255 masks are not full of speckle). */
export function holeThreshold(peak: number, max: number): number {
  return peak <= 1 ? 0.5 : max / 2;
}

/** 1 = hole, by maskValue (or the alpha, when readsAlpha) against holeThreshold. */
export function holesFromRaster(m: RasterImage): Uint8Array {
  const { width: W, height: H, channels: C, data } = m;
  const n = W * H;
  const max = maxValue(m);
  const alpha = readsAlpha(data, n, C, max);
  const colour = C >= 3;
  const luma = new Float64Array(n);
  let peak = 0;
  for (let i = 0; i < n; i++) {
    const v = alpha ? data[i * C + C - 1]! : maskValue(data, i, C, colour);
    luma[i] = v;
    if (v > peak) peak = v;
  }
  const thr = holeThreshold(peak, max);
  const holes = new Uint8Array(n);
  for (let i = 0; i < n; i++) holes[i] = luma[i]! >= thr ? 1 : 0;
  return holes;
}

export function resizeNearestHoles(src: Uint8Array, H: number, W: number, oh: number, ow: number): Uint8Array {
  const out = new Uint8Array(oh * ow);
  for (let y = 0; y < oh; y++) {
    const sy = Math.min(H - 1, Math.floor(((y + 0.5) * H) / oh));
    for (let x = 0; x < ow; x++) out[y * ow + x] = src[sy * W + Math.min(W - 1, Math.floor(((x + 0.5) * W) / ow))]!;
  }
  return out;
}

/** Holes of the decoded mask `m` for an image of W x H, after size checks, resizing and inversion. */
export function loadHoles(m: RasterImage, W: number, H: number, opts: MaskOptions = {}): Uint8Array {
  let holes = holesFromRaster(m);
  if (m.width !== W || m.height !== H) {
    if (!opts.resizeMask) throw new StrDiffusionError('BAD_INPUT', `mask is ${m.width}x${m.height} but the image is ${W}x${H} (use --resize-mask / resizeMask to scale it)`);
    holes = resizeNearestHoles(holes, m.height, m.width, H, W);
  }
  if (opts.invertMask) for (let i = 0; i < holes.length; i++) holes[i] = 1 - holes[i]!;
  return holes;
}

export function holeCount(holes: Uint8Array): number {
  let n = 0;
  for (const h of holes) n += h;
  return n;
}

export function holeBox(holes: Uint8Array, W: number, H: number): { x0: number; y0: number; x1: number; y1: number } | null {
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!holes[y * W + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? null : { x0, y0, x1: x1 + 1, y1: y1 + 1 };
}
