/**
 * Classical inpainting baselines through OpenCV's `cv.inpaint` (the photo module is part of the
 * @techstark/opencv-js 4.5 build): Telea's fast-marching method and Navier–Stokes, radius 3, fed
 * only the known pixels (see `holeFill`); and `bridge`, Navier–Stokes with straight edges joined
 * across the hole (src/sde/bridge.ts), the fill the bundled model starts from.
 */
import type { RasterImage } from '../image/io.js';
import { createRequire } from 'node:module';
import { loadOpenCv } from '../image/opencv.js';
import { holeFill, prepareFill, TELEA_RADIUS } from '../sde/fill.js';
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

/**
 * OpenCV's Telea or Navier–Stokes fill (or `bridge`) of an 8-bit RGB image; `holes` 1 = hole per pixel. The very
 * fill the texture SDE's μ uses (`holeFill` of src/sde/fill.ts, radius 3), so it never sees the
 * pixels under the hole either: the baseline gets exactly what the model gets.
 */
export async function opencvInpaint(img: RasterImage, holes: Uint8Array, method: 'telea' | 'ns' | 'bridge'): Promise<RasterImage> {
  if (img.bitDepth !== 8 || img.channels !== 3) throw new Error(`opencv baseline: expects 8-bit RGB, got ${img.channels} channel(s) at ${img.bitDepth} bit`);
  if (holes.length !== img.width * img.height) throw new Error('opencv baseline: hole map and image sizes differ');
  await prepareFill(method);
  const hw = img.width * img.height;
  const x = new Float32Array(3 * hw);
  const known = new Float32Array(hw);
  for (let p = 0; p < hw; p++) {
    known[p] = holes[p] ? 0 : 1;
    for (let c = 0; c < 3; c++) x[c * hw + p] = img.data[p * 3 + c]! / 255;
  }
  const shape = [1, 3, img.height, img.width];
  const F = holeFill(method, { shape, data: x }, { shape: [1, 1, img.height, img.width], data: known });
  const data = Uint8Array.from(img.data as Uint8Array);
  for (let p = 0; p < hw; p++) if (holes[p]) for (let c = 0; c < 3; c++) data[p * 3 + c] = Math.round(F[c * hw + p]! * 255);
  return { width: img.width, height: img.height, channels: 3, bitDepth: 8, data };
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

export const BASELINES = ['telea', 'ns', 'bridge', 'mean'] as const;
export type BaselineName = (typeof BASELINES)[number];

const BASELINE_LABELS = {
  telea: (r: number) => `OpenCV Telea (r=${r})`,
  ns: (r: number) => `OpenCV Navier–Stokes (r=${r})`,
  bridge: (r: number) => `Navier–Stokes (r=${r}) + straight edges bridged (the bridge fill, no learning)`,
} as const;

export function baselineMethod(name: BaselineName): Method {
  const radius = TELEA_RADIUS;
  if (name === 'mean') {
    return { name, label: 'mean fill (known-pixel mean per channel)', prepare: async () => {}, run: async (img, holes) => meanFill(img, holes), info: () => ({}) };
  }
  return {
    name,
    label: BASELINE_LABELS[name](radius),
    prepare: async () => {
      await loadOpenCv();
    },
    run: (img, holes) => opencvInpaint(img, holes, name),
    info: () => ({ library: '@techstark/opencv-js', version: openCvVersion(), radius }),
  };
}
