/**
 * Small image I/O helpers over `sharp` shared by the training data pipeline, the mask tools and
 * anything else that needs "file → CHW float" or "CHW → PNG".
 */
import sharp from 'sharp';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkMegapixels, DEFAULT_MAX_MEGAPIXELS, ImageTooLargeError, parseMaxMegapixels, writeImageAtomic } from '../image/io.js';

/** Extensions accepted as training images (matched case-insensitively). */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'bmp', 'tif', 'tiff'] as const;

/**
 * All files under `root` (recursive) whose extension is in `exts`, sorted by full path so that
 * a seed selects the same samples on every machine (readdir order is filesystem-dependent).
 * A missing folder or one without images is a one-line error naming the folder.
 */
export function listImageFiles(root: string, exts: readonly string[] = IMAGE_EXTENSIONS, what = 'image'): string[] {
  if (!existsSync(root)) throw new Error(`${what} folder not found: ${root}`);
  if (!statSync(root).isDirectory()) throw new Error(`${what} folder is not a directory: ${root}`);
  const want = new Set(exts.map((e) => e.toLowerCase()));
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name);
      if (ent.isDirectory()) walk(p);
      else if (ent.isFile() || ent.isSymbolicLink()) {
        const dot = ent.name.lastIndexOf('.');
        if (dot > 0 && want.has(ent.name.slice(dot + 1).toLowerCase())) out.push(p);
      }
    }
  };
  walk(root);
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (out.length === 0) throw new Error(`no ${what} files (${[...want].join('/')}) in ${root}`);
  return out;
}

/**
 * The files a data folder skipped (training images, masks), by reason: over the megapixel limit,
 * or unreadable. `add` returns a line for the first file of each reason (to print when met), and
 * `summary` one line per reason with the count and the first file, so no skip goes unreported.
 */
export class SkippedFiles {
  private readonly tooLarge: string[] = [];
  private readonly unreadable: { file: string; why: string }[] = [];
  private readonly seen = new Set<string>();
  private limit = DEFAULT_MAX_MEGAPIXELS;

  /** `what`: "image" or "mask" */
  constructor(readonly what: string) {}

  get count(): number {
    return this.tooLarge.length + this.unreadable.length;
  }

  add(file: string, e: Error): string | null {
    // two loaders over one folder (training and diagnostics batches) meet the same files
    if (this.seen.has(file)) return null;
    this.seen.add(file);
    const later = 'further ones are counted and reported at the end';
    if (e instanceof ImageTooLargeError) {
      this.limit = e.maxMegapixels;
      this.tooLarge.push(file);
      return this.tooLarge.length === 1 ? `warning: skipped ${this.what} ${file}: ${e.width}x${e.height} is over the limit of ${e.maxMegapixels} megapixels (${later})` : null;
    }
    const why = String(e.message).split('\n')[0]!.trim();
    this.unreadable.push({ file, why });
    return this.unreadable.length === 1 ? `warning: skipped unreadable ${this.what} ${file}: ${why} (${later})` : null;
  }

  summary(): string[] {
    const lines: string[] = [];
    if (this.tooLarge.length) lines.push(`skipped ${this.tooLarge.length} ${this.what}(s) over ${this.limit} megapixels: first ${this.tooLarge[0]}`);
    if (this.unreadable.length) lines.push(`skipped ${this.unreadable.length} unreadable ${this.what}(s): first ${this.unreadable[0]!.file} (${this.unreadable[0]!.why})`);
    return lines;
  }
}

/** Interleaved 8-bit pixels as sharp decodes them. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export interface DecodeRawOptions {
  /** refuse (ImageTooLargeError) an image with more megapixels than this, from its header, before
   * any pixel is decoded (default DEFAULT_MAX_MEGAPIXELS: a 219 KB 15000x15000 PNG decodes to gigabytes) */
  maxMegapixels?: number;
  /** names the image in errors (default "image PATH") */
  label?: string;
}

/**
 * Decode to 8-bit interleaved pixels (sharp returns grey files as 3 equal channels, so callers
 * must not rely on `channels` to tell grey from colour) without EXIF auto-rotation (OpenCV's IMREAD_UNCHANGED,
 * which the official loader uses, ignores orientation too). sharp's default `failOn: 'warning'`
 * makes truncated files throw instead of returning grey padding. The size is checked from the
 * header first, so an image over the megapixel limit costs no memory.
 */
export async function decodeRaw(input: string | Buffer, opts: DecodeRawOptions = {}): Promise<RawImage> {
  const maxMegapixels = parseMaxMegapixels(opts.maxMegapixels ?? DEFAULT_MAX_MEGAPIXELS);
  const label = opts.label ?? (typeof input === 'string' ? `image ${input}` : 'image');
  // the header only (no pixel limit here, so an oversized image is refused below with its size)
  const meta = await sharp(input, { limitInputPixels: false }).metadata();
  if (meta.width !== undefined && meta.height !== undefined) checkMegapixels(meta.width, meta.height, label, maxMegapixels);
  // libvips enforces the same limit while decoding, for formats whose header did not say
  const { data, info } = await sharp(input, { limitInputPixels: Math.max(1, Math.floor(maxMegapixels * 1e6)) }).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
}

/** Drop alpha and expand grey so every image has exactly 3 interleaved channels. */
export function toRgb8(img: RawImage): RawImage {
  const { data, width, height, channels } = img;
  if (channels === 3) return img;
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels >= 3) {
      out[3 * i] = data[channels * i]!;
      out[3 * i + 1] = data[channels * i + 1]!;
      out[3 * i + 2] = data[channels * i + 2]!;
    } else {
      const g = data[channels * i]!;
      out[3 * i] = g;
      out[3 * i + 1] = g;
      out[3 * i + 2] = g;
    }
  }
  return { data: out, width, height, channels: 3 };
}

/** Interleaved 8-bit RGB → planar float32 [3,H,W] in [0,1] (`float32(v) / 255` as numpy does). */
export function rgb8ToChw(img: RawImage): Float32Array {
  const rgb = toRgb8(img);
  const n = rgb.width * rgb.height;
  const out = new Float32Array(3 * n);
  const d = rgb.data;
  for (let i = 0; i < n; i++) {
    out[i] = d[3 * i]! / 255;
    out[n + i] = d[3 * i + 1]! / 255;
    out[2 * n + i] = d[3 * i + 2]! / 255;
  }
  return out;
}

/** Any image file → RGB float32 [3,H,W] in [0,1] plus its size. */
export async function loadImageChw(input: string | Buffer, opts: DecodeRawOptions = {}): Promise<{ data: Float32Array; width: number; height: number }> {
  const raw = await decodeRaw(input, opts);
  return { data: rgb8ToChw(raw), width: raw.width, height: raw.height };
}

/**
 * Planar [C,H,W] (C = 1 or 3) → PNG file. Float input is taken as [0,1] and rounded to 8 bits
 * (clamped); Uint8Array input is written as is.
 */
export async function saveChwPng(path: string, data: Float32Array | Uint8Array, C: number, H: number, W: number): Promise<void> {
  if (C !== 1 && C !== 3) throw new Error(`saveChwPng: C must be 1 or 3, got ${C}`);
  const n = H * W;
  if (data.length !== C * n) throw new Error(`saveChwPng: expected ${C * n} values ([${C},${H},${W}]), got ${data.length}`);
  const buf = Buffer.alloc(C * n);
  const isU8 = data instanceof Uint8Array;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < n; i++) {
      const v = data[c * n + i]!;
      buf[i * C + c] = isU8 ? v : Math.min(255, Math.max(0, Math.round(v * 255)));
    }
  }
  await writeImageAtomic(path, { width: W, height: H, channels: C as 1 | 3, bitDepth: 8, data: buf });
}
