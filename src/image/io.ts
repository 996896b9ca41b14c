/**
 * Decoded images as the user gave them: interleaved HWC samples at the file's own bit depth and
 * channel count. Inpainting pastes generated pixels only into the hole and leaves every other
 * sample untouched, so the original representation (grey, RGB, RGBA, 8 or 16 bit) is kept.
 */
import sharp from 'sharp';
import type { Metadata } from 'sharp';
import { existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';

export interface RasterImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
  channels: 1 | 2 | 3 | 4;
  /** 8 -> Uint8Array, 16 -> Uint16Array; interleaved rows (HWC) */
  bitDepth: 8 | 16;
  data: Uint8Array | Uint16Array;
}

export type ImageInput = string | RasterImage;

export function hasAlpha(img: RasterImage): boolean {
  return img.channels === 2 || img.channels === 4;
}

export function maxValue(img: RasterImage): number {
  return img.bitDepth === 16 ? 65535 : 255;
}

/** Decode a file; EXIF orientation is applied so the pixels are as a viewer shows them. */
export async function readImage(path: string, what = 'image'): Promise<RasterImage> {
  if (!existsSync(path)) throw new Error(`${what} not found: ${path}`);
  if (!statSync(path).isFile()) throw new Error(`${what} is not a file: ${path}`);
  let meta: Metadata;
  try {
    meta = await sharp(path).metadata();
  } catch (e) {
    throw new Error(`${what} ${path} is not a readable image (${(e as Error).message})`);
  }
  const sixteen = meta.depth === 'ushort';
  try {
    // 16-bit files must be read through the rgb16 space, or sharp scales them to 8 bit first
    const pipe = sixteen ? sharp(path).rotate().toColourspace('rgb16').raw({ depth: 'ushort' }) : sharp(path).rotate().raw();
    const { data, info } = await pipe.toBuffer({ resolveWithObject: true });
    const arr = sixteen
      ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const img: RasterImage = { width: info.width, height: info.height, channels: info.channels as 1 | 2 | 3 | 4, bitDepth: sixteen ? 16 : 8, data: arr };
    // sharp hands out grey files as sRGB triplets: keep grey images grey (R = G = B there)
    const fileChannels = meta.channels ?? info.channels;
    return fileChannels <= 2 && info.channels >= 3 ? dropToGrey(img) : img;
  } catch (e) {
    throw new Error(`${what} ${path} could not be decoded (${(e as Error).message})`);
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

export async function loadImage(input: ImageInput, what = 'image'): Promise<RasterImage> {
  if (typeof input === 'string') return readImage(input, what);
  validateRaster(input, what);
  return input;
}

export function validateRaster(img: RasterImage, what = 'image'): void {
  const { width, height, channels, data } = img;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new Error(`${what}: invalid size ${width}x${height}`);
  if (![1, 2, 3, 4].includes(channels)) throw new Error(`${what}: unsupported channel count ${channels}`);
  if (data.length !== width * height * channels) throw new Error(`${what}: has ${data.length} samples, ${width}x${height}x${channels} needs ${width * height * channels}`);
}

/** Encode by the file extension (.png default; .jpg/.jpeg/.webp/.tif/.tiff); 16 bit stays 16 bit in PNG/TIFF. */
export async function writeImage(path: string, img: RasterImage): Promise<void> {
  const ext = extname(path).toLowerCase();
  const raw = { width: img.width, height: img.height, channels: img.channels };
  // sharp infers a 16-bit raw input from a Uint16Array (a Buffer would be read as 8 bit)
  const input = img.bitDepth === 16 ? (img.data as Uint16Array) : Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
  let s = sharp(input, { raw });
  if (img.channels <= 2) s = s.toColourspace(img.bitDepth === 16 ? 'grey16' : 'b-w');
  else if (img.bitDepth === 16) s = s.toColourspace('rgb16');
  switch (ext) {
    case '.jpg': case '.jpeg': await s.jpeg({ quality: 95 }).toFile(path); break;
    case '.webp': await s.webp({ lossless: true }).toFile(path); break;
    case '.tif': case '.tiff': await s.tiff().toFile(path); break;
    default: await s.png().toFile(path);
  }
}

/** RGB float32 CHW in [0,1] of the colour channels (grey replicated, alpha ignored). */
export function toRgbFloat(img: RasterImage): Float32Array {
  const { width: W, height: H, channels: C } = img;
  const n = W * H;
  const out = new Float32Array(3 * n);
  const max = maxValue(img);
  const grey = C <= 2;
  // division (not multiplication by 1/max) so 8-bit values equal the official float32 v/255
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = img.data[i * C + (grey ? 0 : c)]! / max;
  }
  return out;
}
