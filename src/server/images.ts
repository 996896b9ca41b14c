/**
 * Uploaded image buffers <-> RasterImage. Decoding and encoding go through the same `readImage` /
 * `writeImage` as the CLI (via a temporary file) so the server keeps every pixel format rule of the
 * command line: EXIF orientation, grey stays grey, 16 bit stays 16 bit, alpha is kept.
 */
import sharp, { type Metadata } from 'sharp';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImage, writeImage, type RasterImage } from '../image/io.js';
import { HttpError } from './errors.js';

export const ACCEPTED_FORMATS = ['png', 'jpeg', 'webp'] as const;

let counter = 0;
function tempPath(ext: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'strdiffusion-serve-'));
  return { dir, file: join(dir, `${process.pid}-${counter++}${ext}`) };
}

export interface ImageLimits {
  maxPixels: number;
}

/**
 * Decode an upload, refusing what is not a PNG/JPEG/WebP (415) and what has more than
 * `maxPixels` pixels (413) before the pixels are decoded.
 */
export async function decodeImageBuffer(buf: Buffer, what: string, limits: ImageLimits): Promise<RasterImage> {
  let meta: Metadata;
  try {
    meta = await sharp(buf).metadata();
  } catch {
    throw new HttpError(415, `${what} is not an image (expected PNG, JPEG or WebP)`);
  }
  if (!meta.format || !(ACCEPTED_FORMATS as readonly string[]).includes(meta.format)) {
    throw new HttpError(415, `${what} is ${meta.format ? `a ${meta.format.toUpperCase()} file` : 'not an image'}; expected PNG, JPEG or WebP`);
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w * h > limits.maxPixels) {
    throw new HttpError(413, `${what} is ${w}x${h} = ${(w * h / 1e6).toFixed(1)} megapixels; this server accepts at most ${(limits.maxPixels / 1e6).toFixed(1)} megapixels`);
  }
  const ext = meta.format === 'jpeg' ? '.jpg' : `.${meta.format}`;
  const { dir, file } = tempPath(ext);
  try {
    writeFileSync(file, buf);
    return await readImage(file, what);
  } catch (e) {
    throw new HttpError(415, `${what} could not be decoded: ${(e as Error).message.replace(file, 'upload')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function encodePng(img: RasterImage): Promise<Buffer> {
  const { dir, file } = tempPath('.png');
  try {
    await writeImage(file, img);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Small previews need no format rules: raw 8-bit pixels straight to PNG. */
export async function rawToPngDataUrl(data: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<string> {
  const png = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } })
    .png({ compressionLevel: 3 })
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
