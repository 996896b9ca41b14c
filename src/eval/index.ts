/**
 * `evaluate`: run every method on the fixed (image, mask) pairs, score the composites with the
 * official metrics and aggregate per hole-ratio bucket. Reports are written by ./report.ts (which
 * imports this module's types; this module does not import it).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { RasterImage } from '../image/io.js';
import { writeImageAtomic } from '../image/io.js';
import type { RatioRange } from '../data/masks.js';
import { imageMetrics, PSNR_CAP, type ImageMetrics } from './metrics.js';
import type { Method } from './methods.js';
import { openCvVersion } from './baselines.js';
import type { AblationPlan } from './ablation.js';
import { loadEvalImage, planPairs, type Bucket, type PairPlan } from './pairs.js';

export type { Method, MethodContext, MethodInput } from './methods.js';
export { modelMethod } from './methods.js';
export { baselineMethod, BASELINES, type BaselineName } from './baselines.js';
export { parseRatioList, DEFAULT_BUCKETS } from './pairs.js';
export { ablationMethods, type AblationPlan, type AblationRow } from './ablation.js';

export interface EvalOptions {
  images: string;
  masks?: string;
  ratios?: readonly RatioRange[];
  /** pairs per bucket (default 10) */
  count?: number;
  seed?: number;
  size?: number;
  methods: Method[];
  /** folder for the sample grid PNGs (the report folder); none written when absent */
  outDir?: string;
  /** pairs per bucket shown in the image grid (default 2) */
  gridSamples?: number;
  /** extra settings recorded in results.json (checkpoints, T, ...) */
  settings?: Record<string, unknown>;
  onProgress?: (done: number, total: number, info: string) => void;
  warn?: (msg: string) => void;
  /** refuse images with more megapixels than this, from their header (default DEFAULT_MAX_MEGAPIXELS) */
  maxMegapixels?: number;
}

export type PairMethodResult = (ImageMetrics & { seconds: number }) | { error: string };

export interface PairRecord {
  bucket: string;
  index: number;
  image: string;
  mask: string;
  holeRatio: number;
  seed: number;
  results: Record<string, PairMethodResult>;
}

export interface Row {
  method: string;
  bucket: string;
  /** images scored */
  n: number;
  /** means over images (PSNRs capped at PSNR_CAP per image first) */
  psnr: number;
  ssim: number;
  holePsnr: number;
  holeL1: number;
  /** mean hole SWD (×1e3, ./swd.ts) */
  holeSwd: number;
  secondsPerImage: number;
  meanHoleRatio: number;
  /** images whose PSNR hit the cap (identical to the ground truth) */
  capped: number;
  errors: number;
}

export interface SampleCell {
  /** column title */
  title: string;
  /** PNG path relative to the report folder */
  file: string;
  caption?: string;
}

export interface SampleRow {
  bucket: string;
  index: number;
  image: string;
  cells: SampleCell[];
}

export interface EvalResults {
  settings: Record<string, unknown>;
  methods: { name: string; label: string; info: Record<string, unknown> }[];
  buckets: { label: string; key: string; range: RatioRange }[];
  rows: Row[];
  pairs: PairRecord[];
  samples: SampleRow[];
  maskStats?: PairPlan['maskStats'];
  psnrCap: number;
  /** `eval --ablation`: which method is which row of the paper's table (./ablation.ts) */
  ablation?: AblationPlan;
  startedAt: string;
  seconds: number;
}

function composite(out: RasterImage, gt: RasterImage, holes: Uint8Array, method: string): RasterImage {
  if (out.width !== gt.width || out.height !== gt.height) throw new Error(`method ${method} returned ${out.width}x${out.height}, expected ${gt.width}x${gt.height}`);
  if (out.channels !== 3 || out.bitDepth !== 8) throw new Error(`method ${method} returned ${out.channels} channel(s) at ${out.bitDepth} bit, expected 8-bit RGB`);
  const data = gt.data.slice() as Uint8Array;
  for (let i = 0; i < holes.length; i++) {
    if (!holes[i]) continue;
    for (let c = 0; c < 3; c++) data[i * 3 + c] = out.data[i * 3 + c]!;
  }
  return { ...gt, data };
}

/** The input as shown in the grid: the hole painted white, as in the paper's figures. */
function showHole(gt: RasterImage, holes: Uint8Array): RasterImage {
  const data = gt.data.slice() as Uint8Array;
  for (let i = 0; i < holes.length; i++) if (holes[i]) data.fill(255, i * 3, i * 3 + 3);
  return { ...gt, data };
}

const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

export function versions(): Record<string, string> {
  const here = dirname(fileURLToPath(import.meta.url));
  let pkg = 'unknown';
  try {
    pkg = (JSON.parse(readFileSync(join(here, '../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* running from a copy without package.json */
  }
  return { strdiffusion: pkg, node: process.version, sharp: sharp.versions.sharp ?? 'unknown', libvips: sharp.versions.vips, opencvJs: openCvVersion() };
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

export async function evaluate(o: EvalOptions): Promise<EvalResults> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const count = o.count ?? 10;
  const seed = o.seed ?? 0;
  const size = o.size ?? 256;
  const warn = o.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  if (o.methods.length === 0) throw new Error('nothing to evaluate: no method selected');
  const names = new Set<string>();
  for (const m of o.methods) {
    if (!/^[A-Za-z0-9_-]+$/.test(m.name)) throw new Error(`method name "${m.name}" must use letters, digits, - and _ only`);
    if (names.has(m.name)) throw new Error(`method "${m.name}" is listed twice`);
    names.add(m.name);
  }
  const plan = await planPairs({ images: o.images, masks: o.masks, ratios: o.ratios, count, seed, size, warn, maxMegapixels: o.maxMegapixels });
  for (const m of o.methods) await m.prepare?.();
  try {
    return await evaluatePairs(o, plan, { t0, startedAt, count, seed, size, warn });
  } finally {
    for (const m of o.methods) await m.dispose?.();
  }
}

async function evaluatePairs(o: EvalOptions, plan: PairPlan, c: { t0: number; startedAt: string; count: number; seed: number; size: number; warn: (msg: string) => void }): Promise<EvalResults> {
  const { t0, startedAt, count, seed, size, warn } = c;

  const gridN = o.gridSamples ?? 2;
  const sampleDir = o.outDir ? join(o.outDir, 'samples') : null;
  if (sampleDir) mkdirSync(sampleDir, { recursive: true });

  const cache = new Map<string, RasterImage>();
  const getImage = async (p: string) => {
    let img = cache.get(p);
    if (!img) {
      img = await loadEvalImage(p, size, o.maxMegapixels);
      // every bucket reuses the first `count` images of the shuffled list: decode them once
      if (cache.size < 512) cache.set(p, img);
    }
    return img;
  };

  if (o.methods.some((m) => m.start)) {
    const inputs = [];
    for (const pair of plan.pairs) inputs.push({ image: await getImage(pair.imagePath), holes: pair.holes, seed: pair.seed });
    for (const m of o.methods) m.start?.(inputs);
  }

  const total = plan.pairs.length * o.methods.length;
  let done = 0;
  const failedOnce = new Set<string>();
  const records: PairRecord[] = [];
  const samples: SampleRow[] = [];
  for (const [index, pair] of plan.pairs.entries()) {
    const gt = await getImage(pair.imagePath);
    const rec: PairRecord = { bucket: pair.bucket.label, index: pair.index, image: pair.image, mask: pair.mask, holeRatio: pair.holeRatio, seed: pair.seed, results: {} };
    const inGrid = sampleDir !== null && pair.index < gridN;
    const stem = `${fileSafe(pair.bucket.key)}_${pair.index}`;
    const cells: SampleCell[] = [];
    if (inGrid) {
      await writeImageAtomic(join(sampleDir, `${stem}_input.png`), showHole(gt, pair.holes));
      cells.push({ title: 'input (hole white)', file: `samples/${stem}_input.png`, caption: `${(pair.holeRatio * 100).toFixed(1)}% hole` });
    }
    for (const m of o.methods) {
      const input = { ...gt, data: gt.data.slice() };
      const s0 = performance.now();
      let out: RasterImage;
      let seconds: number;
      try {
        out = composite(await m.run(input, pair.holes, { seed: pair.seed, index }), gt, pair.holes, m.name);
        seconds = m.secondsOf?.(index) ?? (performance.now() - s0) / 1000;
      } catch (e) {
        // a method broken for every input should stop the run, not fill the table with errors
        if (!failedOnce.has(m.name) && records.every((r) => !(m.name in r.results))) throw new Error(`${m.name} failed on ${pair.image}: ${(e as Error).message}`);
        failedOnce.add(m.name);
        warn(`${m.name} failed on ${pair.image} (${pair.bucket.label} #${pair.index}): ${(e as Error).message}`);
        rec.results[m.name] = { error: (e as Error).message };
        o.onProgress?.(++done, total, `${m.name} ${pair.bucket.label}`);
        continue;
      }
      const met = imageMetrics(out, gt, pair.holes);
      rec.results[m.name] = { ...met, seconds };
      if (inGrid) {
        await writeImageAtomic(join(sampleDir, `${stem}_${fileSafe(m.name)}.png`), out);
        cells.push({ title: m.name, file: `samples/${stem}_${fileSafe(m.name)}.png`, caption: `${met.psnr.toFixed(2)} dB / ${met.ssim.toFixed(3)}` });
      }
      o.onProgress?.(++done, total, `${m.name} ${pair.bucket.label}`);
    }
    if (inGrid) {
      await writeImageAtomic(join(sampleDir, `${stem}_gt.png`), gt);
      cells.push({ title: 'ground truth', file: `samples/${stem}_gt.png` });
      samples.push({ bucket: pair.bucket.label, index: pair.index, image: pair.image, cells });
    }
    records.push(rec);
  }

  const rows: Row[] = [];
  for (const m of o.methods) {
    for (const b of plan.buckets) {
      const recs = records.filter((r) => r.bucket === b.label);
      const ok = recs.map((r) => r.results[m.name]).filter((x): x is ImageMetrics & { seconds: number } => !!x && !('error' in x));
      rows.push({
        method: m.name,
        bucket: b.label,
        n: ok.length,
        psnr: mean(ok.map((x) => x.psnr)),
        ssim: mean(ok.map((x) => x.ssim)),
        holePsnr: mean(ok.map((x) => x.holePsnr)),
        holeL1: mean(ok.map((x) => x.holeL1)),
        holeSwd: mean(ok.map((x) => x.holeSwd)),
        secondsPerImage: mean(ok.map((x) => x.seconds)),
        meanHoleRatio: mean(recs.map((r) => r.holeRatio)),
        capped: ok.filter((x) => x.capped).length,
        errors: recs.length - ok.length,
      });
    }
  }

  return {
    settings: {
      images: resolve(o.images),
      masks: o.masks ? resolve(o.masks) : 'generated (generateMask, seeded)',
      buckets: plan.buckets.map((b) => b.label),
      count,
      seed,
      size,
      imageFiles: plan.imageFiles.length,
      ...o.settings,
      versions: { ...versions(), ...((o.settings?.versions as Record<string, string> | undefined) ?? {}) },
    },
    methods: o.methods.map((m) => ({ name: m.name, label: m.label, info: m.info?.() ?? {} })),
    buckets: plan.buckets.map((b: Bucket) => ({ label: b.label, key: b.key, range: b.range })),
    rows,
    pairs: records,
    samples,
    maskStats: plan.maskStats,
    psnrCap: PSNR_CAP,
    startedAt,
    seconds: (performance.now() - t0) / 1000,
  };
}
