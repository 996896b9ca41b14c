/**
 * Decoded images as the user gave them: interleaved HWC samples at the file's own bit depth and
 * channel count. Inpainting pastes generated pixels only into the hole and leaves every other
 * sample untouched, so the original representation (grey, RGB, RGBA, 8 or 16 bit) is kept.
 */
import sharp from 'sharp';
import type { Metadata, Sharp } from 'sharp';
import { describeValue, StrDiffusionError } from '../util/errors.js';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { checkReplaceable, removeStaleTemps, replaceAtomically } from '../util/files.js';
import type { RasterImage } from './raster.js';

export { hasAlpha, maxValue, toRgbFloat, type RasterImage } from './raster.js';

export type ImageInput = string | RasterImage;

/** The largest image, in megapixels, that the CLI, the library, eval and the server decode unless told otherwise. */
export const DEFAULT_MAX_MEGAPIXELS = 50;

export interface ReadImageOptions {
  /** refuse an image with more than this many megapixels, read from its header before any pixel is
   * decoded (default DEFAULT_MAX_MEGAPIXELS; a 16000x16000 PNG of 775 KB decodes to gigabytes) */
  maxMegapixels?: number;
}

/** An image over the megapixel limit (thrown before its pixels are decoded). */
export class ImageTooLargeError extends StrDiffusionError {
  override readonly name: string = 'ImageTooLargeError';
  constructor(
    readonly width: number,
    readonly height: number,
    readonly maxMegapixels: number,
    message: string,
  ) {
    super('BAD_INPUT', message);
  }
}

/** Megapixels for messages: one decimal, or two significant digits below 0.1. */
export function formatMegapixels(pixels: number): string {
  const mp = pixels / 1e6;
  return mp >= 0.1 ? mp.toFixed(1) : String(Number(mp.toPrecision(2)));
}

/** The megapixel limit as given (option or flag), checked: a positive finite number. */
export function parseMaxMegapixels(v: unknown, name = 'maxMegapixels'): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of megapixels (got ${typeof v === 'string' ? `"${v}"` : String(v)})`);
  return n;
}

/** Throws ImageTooLargeError when width x height is over the limit; `label` names the image ("image photo.png"). */
export function checkMegapixels(width: number, height: number, label: string, maxMegapixels: number = DEFAULT_MAX_MEGAPIXELS): void {
  const limit = parseMaxMegapixels(maxMegapixels);
  if (width * height <= limit * 1e6) return;
  throw new ImageTooLargeError(
    width,
    height,
    limit,
    `${label} is ${width}x${height} (${formatMegapixels(width * height)} megapixels), over the limit of ${limit} megapixels (raise it with --max-megapixels N, or the maxMegapixels option)`,
  );
}

/** Decode a file; EXIF orientation is applied so the pixels are as a viewer shows them. Images over
 * `maxMegapixels` are refused from their header, before decoding. */
export async function readImage(path: string, what = 'image', opts: ReadImageOptions = {}): Promise<RasterImage> {
  if (!existsSync(path)) throw new StrDiffusionError('BAD_INPUT', `${what} not found: ${path}`);
  if (!statSync(path).isFile()) throw new StrDiffusionError('BAD_INPUT', `${what} is not a file: ${path}`);
  return decode(path, `${what} ${path}`, opts);
}

/** readImage for an encoded image in memory (an upload); `what` names it in errors. */
export async function readImageBuffer(buf: Uint8Array, what = 'image', opts: ReadImageOptions = {}): Promise<RasterImage> {
  return decode(Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), what, opts);
}

async function decode(input: string | Buffer, label: string, opts: ReadImageOptions): Promise<RasterImage> {
  const maxMegapixels = parseMaxMegapixels(opts.maxMegapixels ?? DEFAULT_MAX_MEGAPIXELS);
  let meta: Metadata;
  try {
    // the header only: no pixel limit here, so a huge image is refused below with its size
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new StrDiffusionError('BAD_INPUT', `${label} is not a readable image (${(e as Error).message})`);
  }
  if (meta.width !== undefined && meta.height !== undefined) checkMegapixels(meta.autoOrient?.width ?? meta.width, meta.autoOrient?.height ?? meta.height, label, maxMegapixels);
  // sharp decodes the first frame only: an animation (GIF, WebP) or a multi-page TIFF would lose the rest
  if ((meta.pages ?? 1) > 1) throw new StrDiffusionError('BAD_INPUT', `${label} has ${meta.pages} frames (an animation or a multi-page file): only single-frame images can be inpainted`);
  const sixteen = meta.depth === 'ushort';
  try {
    // libvips enforces the same limit while decoding (for formats whose header did not say)
    const src = () => sharp(input, { limitInputPixels: Math.max(1, Math.floor(maxMegapixels * 1e6)) }).rotate();
    // 16-bit files must be read through the rgb16 space, or sharp scales them to 8 bit first
    const pipe = sixteen ? src().toColourspace('rgb16').raw({ depth: 'ushort' }) : src().raw();
    const { data, info } = await pipe.toBuffer({ resolveWithObject: true });
    const arr = sixteen
      ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const img: RasterImage = { width: info.width, height: info.height, channels: info.channels as 1 | 2 | 3 | 4, bitDepth: sixteen ? 16 : 8, data: arr };
    // sharp hands out grey files as sRGB triplets: keep grey images grey (R = G = B there)
    const fileChannels = meta.channels ?? info.channels;
    return fileChannels <= 2 && info.channels >= 3 ? dropToGrey(img) : img;
  } catch (e) {
    throw new StrDiffusionError('BAD_INPUT', `${label} could not be decoded (${(e as Error).message})`);
  }
}

function dropToGrey(img: RasterImage): RasterImage {
  const C = img.channels;
  const alpha = C === 4;
  const oc = alpha ? 2 : 1;
  const n = img.width * img.height;
  const out = img.bitDepth === 16 ? new Uint16Array(n * oc) : new Uint8Array(n * oc);
  for (let i = 0; i < n; i++) {
    out[i * oc] = img.data[i * C]!;
    if (alpha) out[i * oc + 1] = img.data[i * C + 3]!;
  }
  return { ...img, channels: oc as 1 | 2, data: out };
}

/** A file is decoded (refused over `maxMegapixels`, from its header); a raster is checked as it is. */
export async function loadImage(input: ImageInput, what = 'image', opts: ReadImageOptions = {}): Promise<RasterImage> {
  if (typeof input === 'string') return readImage(input, what, opts);
  validateRaster(input, what);
  return input;
}

/**
 * A raw raster must agree with its own header: positive integer size, 1–4 channels, sample type =
 * bit depth, length = W x H x C. Callers from JavaScript can pass anything, so every field is
 * checked, and a wrong one fails with one line naming it (not as a silently misread input).
 */
export function validateRaster(img: object, name = 'image'): asserts img is RasterImage {
  const bad = (msg: string) => new StrDiffusionError('BAD_INPUT', msg);
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  const { width, height, channels, bitDepth, data } = img as Record<string, unknown>;
  if (!(isInt(width) && isInt(height) && width > 0 && height > 0)) throw bad(`${name}.width and ${name}.height must be positive integers (got ${describeValue(width)} x ${describeValue(height)})`);
  if (!(isInt(channels) && channels >= 1 && channels <= 4)) throw bad(`${name}.channels must be 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) (got ${describeValue(channels)})`);
  if (bitDepth !== 8 && bitDepth !== 16) throw bad(`${name}.bitDepth must be 8 or 16 (got ${describeValue(bitDepth)})`);
  // by tag, not instanceof: typed arrays from another realm (vm, some worker set-ups) count too; a Buffer is a Uint8Array
  const type = bitDepth === 16 ? 'Uint16Array' : 'Uint8Array';
  const tag = ArrayBuffer.isView(data) ? (data as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined;
  if (tag !== type) throw bad(`${name}.data must be a ${type} for bitDepth ${bitDepth} (got ${describeValue(data)})`);
  const n = (data as Uint8Array | Uint16Array).length;
  if (n !== width * height * channels) throw bad(`${name}.data has ${n} samples, but width x height x channels = ${width}x${height}x${channels} needs ${width * height * channels}`);
}

/** The extensions writeImage encodes, and their formats (a path without extension is written as PNG). */
const EXTENSION_FORMATS = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.tif': 'tiff', '.tiff': 'tiff' } as const;
const OUTPUT_EXTENSIONS = Object.keys(EXTENSION_FORMATS) as (keyof typeof EXTENSION_FORMATS)[];

/** Throws unless writeImage can encode `path`'s extension; `what` (e.g. '--out') prefixes the message. */
export function checkOutputExtension(path: string, what?: string): void {
  const ext = extname(path).toLowerCase();
  if (ext === '' || Object.hasOwn(EXTENSION_FORMATS, ext)) return;
  throw new StrDiffusionError('BAD_OPTION', `${what ? `${what}: ` : ''}cannot write ${ext} files: ${path} (use ${OUTPUT_EXTENSIONS.slice(0, -1).join(', ')} or ${OUTPUT_EXTENSIONS.at(-1)})`);
}

/** The formats encodeImage writes (by file extension in writeImage). */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'tiff'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

function formatOfExtension(ext: string): ImageFormat {
  return Object.hasOwn(EXTENSION_FORMATS, ext) ? EXTENSION_FORMATS[ext as keyof typeof EXTENSION_FORMATS] : 'png';
}

/** A sharp pipeline that encodes `img` as `format`; 16 bit stays 16 bit in PNG/TIFF, WebP is lossless. */
function encoder(img: RasterImage, format: ImageFormat): Sharp {
  const raw = { width: img.width, height: img.height, channels: img.channels };
  // sharp infers a 16-bit raw input from a Uint16Array (a Buffer would be read as 8 bit)
  const input = img.bitDepth === 16 ? (img.data as Uint16Array) : Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let s = sharp(input, { raw });
  if (img.channels <= 2) s = s.toColourspace(img.bitDepth === 16 ? 'grey16' : 'b-w');
  else if (img.bitDepth === 16) s = s.toColourspace('rgb16');
  switch (format) {
    case 'jpeg': return s.jpeg({ quality: 95 });
    case 'webp': return s.webp({ lossless: true });
    case 'tiff': return s.tiff();
    case 'png': return s.png();
    default: throw new StrDiffusionError('BAD_OPTION', `cannot encode "${String(format)}" images (formats: ${IMAGE_FORMATS.join(', ')})`);
  }
}

/** The encoded file's bytes (default PNG; a Node Buffer at run time, typed Uint8Array: no @types/node needed). */
export async function encodeImage(img: RasterImage, format: ImageFormat = 'png'): Promise<Uint8Array> {
  return encoder(img, format).toBuffer();
}

/** Encode by the file extension (.png default; .jpg/.jpeg/.webp/.tif/.tiff). */
export async function writeImage(path: string, img: RasterImage): Promise<void> {
  checkOutputExtension(path);
  await encoder(img, formatOfExtension(extname(path).toLowerCase())).toFile(path);
}

/**
 * writeImage to a temporary name next to `path` (same extension, so the same format), then rename:
 * readers never see a partial file, and a failed write (full disk, ...) removes the temporary file
 * and throws one line naming `path`. Only a regular file (or nothing) at `path` is replaced.
 */
export async function writeImageAtomic(path: string, img: RasterImage): Promise<void> {
  const full = resolve(path);
  // a device, FIFO or folder at `path` would be replaced by the renamed file: refuse before encoding
  checkReplaceable(full);
  const ext = extname(full) || '.png';
  mkdirSync(dirname(full), { recursive: true });
  const prefix = `.${basename(full, extname(full))}.tmp-`;
  removeStaleTemps(dirname(full), prefix, ext);
  const tmp = join(dirname(full), `${prefix}${process.pid}${ext}`);
  await replaceAtomically(full, tmp, (t) => writeImage(t, img));
}

