/**
 * The library's front door: `loadModel()` once, then `model.inpaint(image, mask)` as often as
 * needed (the onnxruntime sessions are created once and reused), or the one-shot `inpaint()`.
 * Images come as a file path, the bytes of an encoded file (PNG, JPEG, WebP, TIFF, GIF) or raw
 * interleaved pixels; the result can be saved or encoded without another import.
 *
 * Mask convention, as in the CLI: white (or opaque, for a mask with alpha) marks the hole.
 */
import { DEFAULT_MAX_MEGAPIXELS, encodeImage, readImageBuffer, writeImageAtomic, type ImageFormat, type RasterImage } from '../image/io.js';
import { describeValue, StrDiffusionError } from '../util/errors.js';
import { checkpointDirs } from '../model/checkpoints.js';
import { inpaint as inpaintRaster, loadInpaintModel, releaseInpaintModel, type InpaintOptions, type InpaintResult } from './index.js';

/** Raw interleaved pixels (HWC). `bitDepth` defaults to the sample type: 8 for Uint8Array, 16 for Uint16Array. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray | Uint16Array;
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
  channels: 1 | 2 | 3 | 4;
  bitDepth?: 8 | 16;
}

/** A file path, the bytes of an encoded image file, or raw pixels. */
export type ImageSource = string | Uint8Array | RawImage;

/** Fixed when a model is loaded: they decide which sessions are built. */
export type ModelOptions = Pick<InpaintOptions, 'T' | 'executor' | 'precision'>;

/** Per call: everything else (seed, sampler, progress callback, mask handling, limits…). */
export type RunOptions = Omit<InpaintOptions, 'checkpoints' | keyof ModelOptions>;

/** What `inpaint` returns: the image (same size, channels and bit depth as the input; only hole
 * pixels changed) plus ways to write it. */
export interface Inpainting extends InpaintResult {
  /** write the image; the format follows the extension (.png, .jpg/.jpeg, .webp, .tif/.tiff), atomically */
  save(path: string): Promise<void>;
  /** the encoded bytes (default PNG) */
  encode(format?: ImageFormat): Promise<Buffer>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** A path or a raster as the inner pipeline takes them; encoded bytes are decoded here (header checked first). */
async function toRaster(src: ImageSource, what: 'image' | 'mask', maxMegapixels: number): Promise<string | RasterImage> {
  if (typeof src === 'string') return src;
  if (src instanceof Uint8Array) {
    if (src.length === 0) throw new StrDiffusionError('BAD_INPUT', `${what} is an empty byte array`);
    return readImageBuffer(src, what, { maxMegapixels });
  }
  if (!isObject(src) || !ArrayBuffer.isView((src as RawImage).data)) {
    throw new StrDiffusionError('BAD_INPUT', `${what} must be a file path, the bytes of an image file, or raw pixels {data, width, height, channels} (got ${describeValue(src)})`);
  }
  const raw = src as RawImage;
  const data = raw.data instanceof Uint8ClampedArray ? new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length) : raw.data;
  const bitDepth = raw.bitDepth ?? (data instanceof Uint16Array ? 16 : 8);
  // the inner entry checks it (fields, data type, pixel limit) before any work
  return { width: raw.width, height: raw.height, channels: raw.channels, bitDepth, data } as RasterImage;
}

function withWriters(r: InpaintResult): Inpainting {
  return { ...r, save: (path) => writeImageAtomic(path, r.image), encode: (format = 'png') => encodeImage(r.image, format) };
}

async function run(image: ImageSource, mask: ImageSource, options: InpaintOptions): Promise<Inpainting> {
  if (!isObject(options)) throw new StrDiffusionError('BAD_OPTION', `options must be an object (got ${describeValue(options)})`);
  const max = typeof options.maxMegapixels === 'number' && options.maxMegapixels > 0 ? options.maxMegapixels : DEFAULT_MAX_MEGAPIXELS;
  const [img, m] = [await toRaster(image, 'image', max), await toRaster(mask, 'mask', max)];
  return withWriters(await inpaintRaster(img, m, options));
}

/** A loaded model: its three networks' sessions stay alive between calls until `dispose()`. */
export class InpaintModel {
  private disposed = false;

  /** use `loadModel()` */
  constructor(
    /** the model folder(s) */
    readonly checkpoints: string[],
    readonly options: ModelOptions,
    /** diffusion steps per run */
    readonly T: number,
    /** the model window (pixels) the hole is inpainted in */
    readonly size: number,
  ) {}

  /** Fill the hole(s) of `image` marked white in `mask` (same size as the image unless options.resizeMask). */
  async inpaint(image: ImageSource, mask: ImageSource, options: RunOptions = {}): Promise<Inpainting> {
    if (this.disposed) throw new StrDiffusionError('BAD_OPTION', 'this model was disposed: load it again with loadModel()');
    if (isObject(options)) {
      for (const k of ['checkpoints', 'T', 'executor', 'precision']) {
        if (k in options) throw new StrDiffusionError('BAD_OPTION', `options.${k} is fixed when the model is loaded: pass it to loadModel()`);
      }
    }
    return run(image, mask, { ...options, checkpoints: this.checkpoints, ...this.options });
  }

  /** Release the onnxruntime sessions (a later inpaint() on this object is refused). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await releaseInpaintModel({ checkpoints: this.checkpoints, ...this.options });
  }
}

/**
 * Load a model folder (default: the bundled model) and create its sessions. Checkpoint problems
 * (missing files, wrong shapes, non-finite weights) surface here as StrDiffusionError
 * `BAD_CHECKPOINT`-style errors rather than on the first image.
 */
export async function loadModel(dir?: string | string[], options: ModelOptions = {}): Promise<InpaintModel> {
  if (dir !== undefined && typeof dir !== 'string' && !(Array.isArray(dir) && dir.every((d) => typeof d === 'string'))) {
    throw new StrDiffusionError('BAD_OPTION', `loadModel: the model folder must be a path or an array of paths (got ${describeValue(dir)})`);
  }
  if (!isObject(options)) throw new StrDiffusionError('BAD_OPTION', `loadModel: options must be an object (got ${describeValue(options)})`);
  for (const k of Object.keys(options)) {
    if (!['T', 'executor', 'precision'].includes(k)) throw new StrDiffusionError('BAD_OPTION', `loadModel: options.${k} is not a model option (model options: T, executor, precision; the rest go to model.inpaint())`);
  }
  const checkpoints = checkpointDirs(dir);
  const { model } = await loadInpaintModel({ checkpoints, ...options });
  return new InpaintModel(checkpoints, { ...options }, model.T, model.size ?? 256);
}

/** One-shot: load (cached per model folder and options) and inpaint. */
export async function inpaint(image: ImageSource, mask: ImageSource, options: InpaintOptions = {}): Promise<Inpainting> {
  return run(image, mask, options);
}
