/**
 * The fixed (image, mask) pairs of an evaluation. Everything is derived from the seed and the
 * bucket's own range (not its position in the list), so adding a bucket or raising --count
 * leaves the existing pairs unchanged and runs stay comparable.
 */
import sharp from 'sharp';
import { relative } from 'node:path';
import { checkMegapixels, DEFAULT_MAX_MEGAPIXELS, ImageTooLargeError, type RasterImage } from '../image/io.js';
import { listImageFiles, toRgb8 } from '../data/images.js';
import { generateMask, holeRatio, MaskFolder, parseRatio, RATIO_BUCKETS, type RatioRange } from '../data/masks.js';
import { SeededNoise } from '../util/noise.js';

export interface Bucket {
  range: RatioRange;
  /** "10-20%" */
  label: string;
  /** file-name safe: "10-20" */
  key: string;
}

export interface EvalPair {
  bucket: Bucket;
  /** position within the bucket */
  index: number;
  /** image path, and the same relative to the images folder (for reports) */
  imagePath: string;
  image: string;
  /** "generated" or the mask file relative to the masks folder */
  mask: string;
  /** 1 = hole, size×size */
  holes: Uint8Array;
  holeRatio: number;
  /** seed handed to stochastic methods for this pair */
  seed: number;
}

const pct = (v: number): string => String(Number((v * 100).toFixed(2)));

export function makeBucket(range: RatioRange): Bucket {
  const key = `${pct(range[0])}-${pct(range[1])}`;
  return { range, label: `${key}%`, key };
}

/** "0.1-0.2,0.2-0.3" → ranges; one-line errors for anything else. */
export function parseRatioList(s: string): RatioRange[] {
  const parts = s.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  if (parts.length === 0) throw new Error(`--mask-ratios: empty list (expected e.g. 0.1-0.2,0.2-0.3)`);
  const out: RatioRange[] = [];
  for (const p of parts) {
    try {
      out.push(parseRatio(p));
    } catch (e) {
      throw new Error(`--mask-ratios "${s}": ${(e as Error).message}`);
    }
  }
  return out;
}

export const DEFAULT_BUCKETS: readonly RatioRange[] = RATIO_BUCKETS;

/** 32-bit FNV-1a over the numbers' decimal text: a stable seed for (run seed, bucket, slot). */
export function mixSeed(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('|')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function seededShuffle<T>(items: readonly T[], rng: SeededNoise): T[] {
  const p = items.slice();
  for (let i = p.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** Centre-cropped square, resized to size×size, 8-bit RGB (alpha dropped, grey expanded). Images over
 * `maxMegapixels` are refused from their header, before decoding. */
export async function loadEvalImage(path: string, size: number, maxMegapixels: number = DEFAULT_MAX_MEGAPIXELS): Promise<RasterImage> {
  let meta;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new Error(`image ${path} could not be read (${(e as Error).message})`);
  }
  if (meta.width !== undefined && meta.height !== undefined) checkMegapixels(meta.width, meta.height, `image ${path}`, maxMegapixels);
  let raw;
  try {
    raw = await sharp(path, { limitInputPixels: Math.max(1, Math.floor(maxMegapixels * 1e6)) }).rotate().resize(size, size, { fit: 'cover', position: 'centre' }).removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`image ${path} could not be read (${(e as Error).message})`);
  }
  const rgb = toRgb8({ data: new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.length), width: raw.info.width, height: raw.info.height, channels: raw.info.channels });
  return { width: size, height: size, channels: 3, bitDepth: 8, data: rgb.data };
}

export interface PairOptions {
  images: string;
  masks?: string;
  ratios?: readonly RatioRange[];
  count: number;
  seed: number;
  size: number;
  /** mask files over this many megapixels are skipped (with a warning) before decoding (default DEFAULT_MAX_MEGAPIXELS) */
  maxMegapixels?: number;
  warn?: (msg: string) => void;
}

export interface PairPlan {
  buckets: Bucket[];
  pairs: EvalPair[];
  imageFiles: string[];
  /** masks folder only: masks per bucket and those outside every bucket */
  maskStats?: { total: number; perBucket: Record<string, number>; outside: number; unreadable: number };
}

function bucketOf(r: number, buckets: readonly Bucket[]): Bucket | undefined {
  // half-open [lo, hi) so a ratio on a shared edge lands in one bucket; hi itself still counts
  // where no other bucket starts there
  return buckets.find((b) => r >= b.range[0] && r < b.range[1]) ?? buckets.find((b) => r === b.range[1]);
}

export async function planPairs(o: PairOptions): Promise<PairPlan> {
  if (!Number.isInteger(o.count) || o.count < 1) throw new Error(`--count must be a positive integer (got ${o.count})`);
  if (!Number.isInteger(o.size) || o.size < 16) throw new Error(`--size must be an integer >= 16 (got ${o.size})`);
  const warn = o.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  const imageFiles = listImageFiles(o.images, undefined, 'image');
  const buckets = (o.ratios ?? DEFAULT_BUCKETS).map(makeBucket);
  if (buckets.length === 0) throw new Error('no hole-ratio buckets');
  const order = seededShuffle(imageFiles, new SeededNoise(mixSeed(o.seed, 'images')));
  const rel = (p: string, root: string) => relative(root, p).split('\\').join('/');
  const pairs: EvalPair[] = [];
  let maskStats: PairPlan['maskStats'];

  if (o.masks) {
    const folder = await MaskFolder.open(o.masks, { size: o.size, flip: false, maxMegapixels: o.maxMegapixels });
    const byBucket = new Map<string, { file: string; holes: Uint8Array; ratio: number }[]>(buckets.map((b) => [b.key, []]));
    let outside = 0;
    let unreadable = 0;
    for (let i = 0; i < folder.files.length; i++) {
      let holes: Uint8Array;
      try {
        holes = await folder.holes(i);
      } catch (e) {
        unreadable++;
        // a mask over the limit is refused from its header, never decoded
        const why = e instanceof ImageTooLargeError ? `${e.width}x${e.height} is over the --max-megapixels limit of ${e.maxMegapixels}` : (e as Error).message;
        warn(`skipped mask ${folder.files[i]}: ${why}`);
        continue;
      }
      const ratio = holeRatio(holes);
      const b = bucketOf(ratio, buckets);
      if (b) byBucket.get(b.key)!.push({ file: folder.files[i]!, holes, ratio });
      else outside++;
    }
    if (unreadable === folder.files.length) throw new Error(`no readable masks in ${o.masks}`);
    maskStats = { total: folder.files.length, perBucket: {}, outside, unreadable };
    for (const b of buckets) {
      const list = byBucket.get(b.key)!;
      maskStats.perBucket[b.key] = list.length;
      if (list.length === 0) {
        warn(`no mask of ${o.masks} has a hole ratio in ${b.label}: that bucket is empty`);
        continue;
      }
      const masks = seededShuffle(list, new SeededNoise(mixSeed(o.seed, 'masks', b.range[0], b.range[1])));
      for (let j = 0; j < o.count; j++) {
        const img = order[j % order.length]!;
        const m = masks[j % masks.length]!;
        pairs.push({ bucket: b, index: j, imagePath: img, image: rel(img, o.images), mask: rel(m.file, o.masks), holes: m.holes, holeRatio: m.ratio, seed: mixSeed(o.seed, 'pair', b.range[0], b.range[1], j) });
      }
    }
    if (pairs.length === 0) throw new Error(`no mask in ${o.masks} falls into any hole-ratio bucket (${buckets.map((b) => b.label).join(', ')})`);
  } else {
    for (const b of buckets) {
      const rng = new SeededNoise(mixSeed(o.seed, 'masks', b.range[0], b.range[1]));
      for (let j = 0; j < o.count; j++) {
        const holes = generateMask(o.size, b.range, rng);
        const img = order[j % order.length]!;
        pairs.push({ bucket: b, index: j, imagePath: img, image: rel(img, o.images), mask: 'generated', holes, holeRatio: holeRatio(holes), seed: mixSeed(o.seed, 'pair', b.range[0], b.range[1], j) });
      }
    }
  }
  return { buckets, pairs, imageFiles, maskStats };
}
