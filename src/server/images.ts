/**
 * Uploads on the server's main thread are only inspected, never decoded into JS memory: the header
 * (format, size, the pixel limit) and a streaming libvips pass (the data decodes; the mask has a
 * hole) run asynchronously, so a 49-megapixel upload does not stall the event loop. The model worker
 * decodes the queued upload with the same `readImageBuffer` as the CLI (EXIF orientation, grey stays
 * grey, 16 bit stays 16 bit, alpha is kept) and encodes the result PNG there.
 */
import sharp, { type Metadata } from 'sharp';
import { formatMegapixels } from '../image/io.js';
import { holeThreshold, maskValue, readsAlpha } from '../inpaint/mask.js';
import { HttpError } from './errors.js';

export const ACCEPTED_FORMATS = ['png', 'jpeg', 'webp'] as const;

export interface ImageLimits {
  maxPixels: number;
}

export interface UploadInfo {
  format: string;
  /** as a viewer shows it (EXIF orientation applied) */
  width: number;
  height: number;
  meta: Metadata;
}

/**
 * The header of an upload: refuses what is not a PNG/JPEG/WebP (415) and what has more than
 * `maxPixels` pixels (413), however large, before any pixel is decoded.
 */
export async function inspectUpload(buf: Buffer, what: string, limits: ImageLimits): Promise<UploadInfo> {
  let meta: Metadata;
  try {
    // no pixel limit on the header read: a 400-megapixel image must get its 413, not a decoder error
    meta = await sharp(buf, { limitInputPixels: false }).metadata();
  } catch {
    throw new HttpError(415, `${what} is not an image (expected PNG, JPEG or WebP)`);
  }
  if (!meta.format || !(ACCEPTED_FORMATS as readonly string[]).includes(meta.format)) {
    throw new HttpError(415, `${what} is ${meta.format ? `a ${meta.format.toUpperCase()} file` : 'not an image'}; expected PNG, JPEG or WebP`);
  }
  const w = meta.autoOrient?.width ?? meta.width ?? 0;
  const h = meta.autoOrient?.height ?? meta.height ?? 0;
  if (w * h > limits.maxPixels) {
    throw new HttpError(413, `${what} is ${w}x${h} = ${formatMegapixels(w * h)} megapixels; this server accepts at most ${formatMegapixels(limits.maxPixels)} megapixels (serve --max-megapixels)`);
  }
  if (w === 0 || h === 0) throw new HttpError(415, `${what} has no size in its header`);
  return { format: meta.format, width: w, height: h, meta };
}

const sharpInput = (buf: Buffer, limits: ImageLimits) => sharp(buf, { limitInputPixels: Math.max(1, Math.floor(limits.maxPixels)) });

/** The whole image decodes (a streaming libvips pass off the main thread; nothing is kept). */
export async function checkDecodes(buf: Buffer, what: string, limits: ImageLimits): Promise<void> {
  try {
    await sharpInput(buf, limits).stats();
  } catch (e) {
    throw new HttpError(415, `${what} could not be decoded: ${(e as Error).message.trim()}`);
  }
}

// one mask at a time is decoded for the hole check, so concurrent uploads cannot add up in memory
let maskTurn: Promise<unknown> = Promise.resolve();
const CHUNK = 1 << 20;

/**
 * Whether the mask has a hole and a known pixel, by the rule of `holesFromRaster` (the same
 * maskValue and holeThreshold). The decoded samples are scanned in slices with a yield between
 * them, so the event loop keeps running.
 */
export function maskCoverage(buf: Buffer, info: UploadInfo, limits: ImageLimits): Promise<'none' | 'all' | 'some'> {
  const run = async (): Promise<'none' | 'all' | 'some'> => {
    const sixteen = info.meta.depth === 'ushort';
    let data: Buffer, channels: number;
    try {
      const pipe = sixteen ? sharpInput(buf, limits).toColourspace('rgb16').raw({ depth: 'ushort' }) : sharpInput(buf, limits).raw();
      const out = await pipe.toBuffer({ resolveWithObject: true });
      data = out.data;
      channels = out.info.channels;
    } catch (e) {
      throw new HttpError(415, `mask could not be decoded: ${(e as Error).message.trim()}`);
    }
    const px: Uint8Array | Uint16Array = sixteen
      ? data.byteOffset % 2 === 0
        ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)
        : new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
      : data;
    const C = channels;
    const max = sixteen ? 65535 : 255;
    // readImage keeps a grey file grey (channel 0); holesFromRaster takes the luma of colour ones,
    // or the alpha of a mask with alpha that is not opaque everywhere (readsAlpha)
    const colour = C >= 3 && (info.meta.channels ?? C) >= 3;
    const n = px.length / C;
    const alpha = info.meta.hasAlpha === true && readsAlpha(px, n, C, max);
    let lo = Infinity, hi = -Infinity;
    for (let start = 0; start < n; start += CHUNK) {
      const end = Math.min(n, start + CHUNK);
      for (let i = start; i < end; i++) {
        const v = alpha ? px[i * C + C - 1]! : maskValue(px, i, C, colour);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (end < n) await new Promise((r) => setImmediate(r));
    }
    const thr = holeThreshold(hi, max);
    return hi < thr ? 'none' : lo >= thr ? 'all' : 'some';
  };
  const p = maskTurn.then(run, run);
  maskTurn = p.catch(() => {});
  return p;
}

/** Small previews need no format rules: raw 8-bit pixels straight to PNG. */
export async function rawToPngDataUrl(data: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<string> {
  const png = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } })
    .png({ compressionLevel: 3 })
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
