/**
 * Classical inpainting baselines through OpenCV's `cv.inpaint` (the photo module is part of the
 * @techstark/opencv-js 4.5 build): Telea's fast-marching method and Navier–Stokes, radius 3.
 */
import type { RasterImage } from '../image/io.js';
import { createRequire } from 'node:module';
import { loadOpenCv } from '../image/opencv.js';
import type { Method } from './methods.js';

// the loader moved to src/image/opencv.ts (the SDE's `telea` fill uses it too); re-exported for old importers
export { loadOpenCv };

export function openCvVersion(): string {
  try {
    return (createRequire(import.meta.url)('@techstark/opencv-js/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** `cv.inpaint` on an 8-bit RGB image; `holes` 1 = hole per pixel. Channel order does not matter (both methods treat channels alike). */
export async function opencvInpaint(img: RasterImage, holes: Uint8Array, method: 'telea' | 'ns', radius = 3): Promise<RasterImage> {
  if (img.bitDepth !== 8 || img.channels !== 3) throw new Error(`opencv baseline: expects 8-bit RGB, got ${img.channels} channel(s) at ${img.bitDepth} bit`);
  if (holes.length !== img.width * img.height) throw new Error('opencv baseline: hole map and image sizes differ');
  const { cv } = await loadOpenCv();
  const src = new cv.Mat(img.height, img.width, cv.CV_8UC3);
  const mask = new cv.Mat(img.height, img.width, cv.CV_8UC1);
  const dst = new cv.Mat();
  try {
    src.data.set(img.data as Uint8Array);
    for (let i = 0; i < holes.length; i++) mask.data[i] = holes[i] ? 255 : 0;
    cv.inpaint(src, mask, dst, radius, method === 'telea' ? cv.INPAINT_TELEA : cv.INPAINT_NS);
    // copy out: dst.data is a view into the wasm heap, invalid after delete()
    return { width: img.width, height: img.height, channels: 3, bitDepth: 8, data: Uint8Array.from(dst.data) };
  } finally {
    src.delete();
    mask.delete();
    dst.delete();
  }
}

/**
 * The no-learning floor: every hole pixel gets the per-channel mean of the known pixels (rounded).
 * Any useful inpainting method should beat it; PSNR favours it over methods that invent texture.
 */
export function meanFill(img: RasterImage, holes: Uint8Array): RasterImage {
  if (img.bitDepth !== 8 || img.channels !== 3) throw new Error(`mean-fill baseline: expects 8-bit RGB, got ${img.channels} channel(s) at ${img.bitDepth} bit`);
  if (holes.length !== img.width * img.height) throw new Error('mean-fill baseline: hole map and image sizes differ');
  const sum = [0, 0, 0];
  let n = 0;
  for (let p = 0; p < holes.length; p++) {
    if (holes[p]) continue;
    for (let c = 0; c < 3; c++) sum[c]! += img.data[p * 3 + c]!;
    n++;
  }
  if (n === 0) throw new Error('mean-fill baseline: no known pixel');
  const mean = sum.map((v) => Math.round(v / n));
  const data = Uint8Array.from(img.data as Uint8Array);
  for (let p = 0; p < holes.length; p++) if (holes[p]) for (let c = 0; c < 3; c++) data[p * 3 + c] = mean[c]!;
  return { width: img.width, height: img.height, channels: 3, bitDepth: 8, data };
}

export const BASELINES = ['telea', 'ns', 'mean'] as const;
export type BaselineName = (typeof BASELINES)[number];

export function baselineMethod(name: BaselineName, radius = 3): Method {
  if (name === 'mean') {
    return { name, label: 'mean fill (known-pixel mean per channel)', prepare: async () => {}, run: async (img, holes) => meanFill(img, holes), info: () => ({}) };
  }
  return {
    name,
    label: name === 'telea' ? `OpenCV Telea (r=${radius})` : `OpenCV Navier–Stokes (r=${radius})`,
    prepare: async () => {
      await loadOpenCv();
    },
    run: (img, holes) => opencvInpaint(img, holes, name, radius),
    info: () => ({ library: '@techstark/opencv-js', version: openCvVersion(), radius }),
  };
}
