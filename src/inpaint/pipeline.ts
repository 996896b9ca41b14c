/**
 * The library's front door: `loadModel()` once, then `model.inpaint(image, mask)` as often as
 * needed (the onnxruntime sessions are created once and reused), or the one-shot `inpaint()`.
 * Images come as a file path, the bytes of an encoded file (PNG, JPEG, WebP, TIFF, GIF) or raw
 * interleaved pixels; the result can be saved or encoded without another import.
 *
 * Mask convention, as in the CLI: white marks the hole, or opaque for a mask with alpha that is not
 * opaque everywhere (README "Masks", src/inpaint/mask.ts readsAlpha).
 */
import { DEFAULT_MAX_MEGAPIXELS, encodeImage, readImageBuffer, writeImageAtomic, type ImageFormat, type RasterImage } from '../image/io.js';
import { describeValue, StrDiffusionError } from '../util/errors.js';
import { checkpointDirs } from '../model/checkpoints.js';
import { inpaint as inpaintRaster, ownOptions, type InpaintOptions, type InpaintResult } from './index.js';
import { acquireModel, type ModelRef } from './model-cache.js';
import type { TextureGuideKind } from '../options.js';

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
  /** the encoded bytes (default PNG; a Node Buffer at run time, typed Uint8Array so that the
   * package's types need no @types/node) */
  encode(format?: ImageFormat): Promise<Uint8Array>;
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

async function run(image: ImageSource, mask: ImageSource, options: InpaintOptions, held?: ModelRef): Promise<Inpainting> {
  if (!isObject(options)) throw new StrDiffusionError('BAD_OPTION', `options must be an object (got ${describeValue(options)})`);
  options = ownOptions(options); // each option read once: the value checked is the value used
  const max = typeof options.maxMegapixels === 'number' && options.maxMegapixels > 0 ? options.maxMegapixels : DEFAULT_MAX_MEGAPIXELS;
  const [img, m] = [await toRaster(image, 'image', max), await toRaster(mask, 'mask', max)];
  return withWriters(await inpaintRaster(img, m, options, held));
}

/**
 * A loaded model: its three networks' sessions stay alive between calls until `dispose()`.
 * Handles of the same folder and options share the sessions; each holds them until it is disposed,
 * and each call holds them until it ends, so disposing one handle never breaks another.
 */
export class InpaintModel {
  private disposed = false;
  #ref: ModelRef;

  /** use `loadModel()` */
  constructor(
    /** the model folder(s) */
    readonly checkpoints: string[],
    readonly options: ModelOptions,
    /** diffusion steps per run */
    readonly T: number,
    /** the model window (pixels) the hole is inpainted in */
    readonly size: number,
    /** @internal the reference this handle holds (from loadModel) */
    ref: ModelRef,
    /** the structure process the networks were trained for (model.json `structureKind`; 'none': a
     * texture-only IR-SDE model, run with the `irsde` or `repaint` sampler) */
    readonly structureKind: TextureGuideKind = 'gray2edge',
  ) {
    this.#ref = ref;
  }

  /** Fill the hole(s) of `image` marked white in `mask` (same size as the image unless options.resizeMask). */
  async inpaint(image: ImageSource, mask: ImageSource, options: RunOptions = {}): Promise<Inpainting> {
    if (this.disposed) throw new StrDiffusionError('BAD_OPTION', 'this model was disposed: load it again with loadModel()');
    // this call holds the sessions from now until it ends, whatever is disposed meanwhile
    const ref = this.#ref.share();
    try {
      if (!isObject(options)) throw new StrDiffusionError('BAD_OPTION', `options must be an object (got ${describeValue(options)})`);
      const own = ownOptions(options);
      for (const k of ['checkpoints', 'T', 'executor', 'precision']) {
        if (k in own) throw new StrDiffusionError('BAD_OPTION', `options.${k} is fixed when the model is loaded: pass it to loadModel()`);
      }
      return await run(image, mask, { ...own, checkpoints: this.checkpoints, ...this.options }, ref);
    } finally {
      await ref.release();
    }
  }

  /** Release this handle's hold on the onnxruntime sessions (a later inpaint() on this object is
   * refused); they are released when no other handle of the same model nor running call holds them. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.#ref.release();
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
  options = ownOptions(options);
  for (const k of Object.keys(options)) {
    if (!['T', 'executor', 'precision'].includes(k)) throw new StrDiffusionError('BAD_OPTION', `loadModel: options.${k} is not a model option (model options: T, executor, precision; the rest go to model.inpaint())`);
  }
  const checkpoints = checkpointDirs(dir);
  const ref = acquireModel({ checkpoints, ...options }, { cache: false });
  try {
    const { model } = await ref.loaded;
    return new InpaintModel(checkpoints, { ...options }, model.T, model.size ?? 256, ref, model.structureKind);
  } catch (e) {
    await ref.release();
    throw e;
  }
}

/**
 * One-shot: load and inpaint. The model is cached per model folder and options (T, executor,
 * precision): the cache keeps the models of the last 2 distinct ones used (each holds the weights
 * and three onnxruntime sessions) and releases older ones, never while a call runs on them. To
 * keep a model loaded, or several, use `loadModel()`.
 */
export async function inpaint(image: ImageSource, mask: ImageSource, options: InpaintOptions = {}): Promise<Inpainting> {
  return run(image, mask, options);
}
