/**
 * The model works on a size x size window (256: what it was trained at). A window is a crop of
 * the image (tiling.ts decides where: at scale 1 wherever it can), scaled to the model size when
 * its plan says so (planWindow: a hole region too big for the window), padded when the image is
 * smaller; afterwards the result is mapped back and only hole pixels are pasted into the image.
 */
import { copySamples, maxValue, type RasterImage } from '../image/raster.js';
import { resizeHoles, resizePlanes } from '../image/resize.js';
import { reflectIndices } from '../nn/layers.js';

export interface WindowPlan {
  /** crop rectangle in image pixels */
  x: number;
  y: number;
  w: number;
  h: number;
  /** size of the crop after scaling (<= model size); the rest of the model input is padding */
  sw: number;
  sh: number;
  size: number;
}

/** Context around the hole on each side, as a fraction of the hole box's larger side. */
export const CONTEXT = 0.5;

export function planWindow(box: { x0: number; y0: number; x1: number; y1: number }, W: number, H: number, size: number, context = CONTEXT): WindowPlan {
  const bw = box.x1 - box.x0;
  const bh = box.y1 - box.y0;
  const side = Math.max(size, Math.ceil(Math.max(bw, bh) * (1 + 2 * context)));
  const w = Math.min(side, W);
  const h = Math.min(side, H);
  const cx = (box.x0 + box.x1) / 2;
  const cy = (box.y0 + box.y1) / 2;
  const x = Math.min(Math.max(0, Math.round(cx - w / 2)), W - w);
  const y = Math.min(Math.max(0, Math.round(cy - h / 2)), H - h);
  const scale = Math.min(1, size / side);
  return { x, y, w, h, sw: Math.max(1, Math.round(w * scale)), sh: Math.max(1, Math.round(h * scale)), size };
}

/** Model inputs for a window: RGB [3,size,size] in [0,1] and m [1,size,size] (1 known, 0 hole). */
export function windowInputs(img: RasterImage, holes: Uint8Array, plan: WindowPlan): { rgb: Float32Array; mask: Float32Array } {
  const { x, y, w, h, sw, sh, size } = plan;
  const W = img.width;
  const C = img.channels;
  const max = maxValue(img);
  const grey = C <= 2;
  // the crop's colour channels as toRgbFloat makes them (the same division, so the same float32
  // values), without converting the whole image for every window of a tiled run
  const crop = new Float32Array(3 * w * h);
  const cropHoles = new Uint8Array(w * h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const src = (y + r) * W + x + c;
      for (let k = 0; k < 3; k++) crop[k * w * h + r * w + c] = img.data[src * C + (grey ? 0 : k)]! / max;
      cropHoles[r * w + c] = holes[src]!;
    }
  }
  const scaled = resizePlanes(crop, 3, h, w, sh, sw);
  const scaledHoles = resizeHoles(cropHoles, h, w, sh, sw);
  // pad to the model size by reflection; padding counts as known context
  const ri = reflectIndices(sh, size - sh);
  const ci = reflectIndices(sw, size - sw);
  const rgb = new Float32Array(3 * size * size);
  const mask = new Float32Array(size * size);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const inside = r < sh && c < sw;
      const sr = ri[r]!;
      const sc = ci[c]!;
      for (let k = 0; k < 3; k++) rgb[k * size * size + r * size + c] = scaled[k * sh * sw + sr * sw + sc]!;
      mask[r * size + c] = inside && scaledHoles[sr * sw + sc] ? 0 : 1;
    }
  }
  return { rgb, mask };
}

/** Round half to even, like numpy.round in the official tensor2img. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Paste the model output [3,size,size] back: only hole pixels of the original change; known
 * samples (and every alpha sample) stay bit-identical.
 */
export function pasteResult(img: RasterImage, holes: Uint8Array, plan: WindowPlan, out: Float32Array): RasterImage {
  const result: RasterImage = { ...img, data: copySamples(img.data) };
  const pixels: number[] = [];
  for (let r = 0; r < plan.h; r++) {
    for (let c = 0; c < plan.w; c++) {
      const i = (plan.y + r) * img.width + plan.x + c;
      if (holes[i]) pixels.push(i);
    }
  }
  pastePixels(result, pixels, plan, out);
  return result;
}

/**
 * Write the model output [3,size,size] of window `plan` into `img` (in place) at the listed pixel
 * indices (y·width + x; each inside the window's crop): the colour samples of those pixels change
 * (grey images get the luma), nothing else, alpha included.
 */
export function pastePixels(img: RasterImage, pixels: ArrayLike<number>, plan: WindowPlan, out: Float32Array): void {
  const { x, y, w, h, sw, sh, size } = plan;
  const content = new Float32Array(3 * sh * sw);
  for (let k = 0; k < 3; k++) for (let r = 0; r < sh; r++) for (let c = 0; c < sw; c++) content[k * sh * sw + r * sw + c] = out[k * size * size + r * size + c]!;
  const back = resizePlanes(content, 3, sh, sw, h, w);
  const C = img.channels;
  const max = maxValue(img);
  const q = (v: number) => roundHalfEven(Math.min(1, Math.max(0, v)) * max);
  const plane = w * h;
  for (let n = 0; n < pixels.length; n++) {
    const i = pixels[n]!;
    const r = Math.floor(i / img.width) - y;
    const c = (i % img.width) - x;
    if (r < 0 || r >= h || c < 0 || c >= w) throw new Error(`pastePixels: pixel ${i} is outside the window ${w}x${h} at ${x},${y}`);
    const R = back[r * w + c]!, G = back[plane + r * w + c]!, B = back[2 * plane + r * w + c]!;
    if (C <= 2) img.data[i * C] = q(0.2125 * R + 0.7154 * G + 0.0721 * B);
    else {
      img.data[i * C] = q(R);
      img.data[i * C + 1] = q(G);
      img.data[i * C + 2] = q(B);
    }
  }
}
