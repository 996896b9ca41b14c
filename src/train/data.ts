/**
 * Training data pipeline (docs/design.md §2.1–2.2): a folder of images → shuffled, augmented 256² crops
 * with their grayscale and Canny structure, as NCHW batches.
 *
 * Determinism: the file order of each epoch and every random number of a sample (crop offset,
 * flips) are drawn when the sample is *scheduled*, in stream order, from two seeded streams.
 * Decodes finish in any order, but batches are assembled in stream order, so a seed gives
 * the same batches however sharp's threads interleave. Unreadable files are detected per file
 * (always the same ones), so skipping them is deterministic too.
 */
import sharp from 'sharp';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { SeededNoise } from '../util/noise.js';
import { structureOf } from '../structure/gray.js';
import type { F32Tensor } from '../util/tensor.js';
import { resizePlanes } from '../image/resize.js';
import { decodeRaw, listImageFiles, rgb8ToChw, toRgb8, type RawImage } from '../data/images.js';

export interface TrainBatch {
  /** RGB [B,3,size,size] in [0,1] (the official `GT`, y_0 of the texture SDE) */
  GT: F32Tensor;
  /** grayscale [B,1,size,size] (`GT_gray`) */
  gray: F32Tensor;
  /** Canny edges [B,1,size,size], values {0,1} (`GT_edge`) */
  edge: F32Tensor;
  /** source file of each sample */
  files: string[];
  /** epoch of the first sample (0-based) */
  epoch: number;
}

export interface ImageFolderLoaderOptions {
  /** folder walked recursively for jpg/jpeg/png/webp/bmp/tif/tiff */
  root: string;
  /** crop size (GT_size), default 256 */
  size?: number;
  /** default 16 */
  batchSize?: number;
  /** default 0 */
  seed?: number;
  /** Canny sigma, default 3 (training value, docs/design.md §2.2) */
  sigma?: number;
  /** batches decoded ahead of the consumer, default 2 */
  prefetchBatches?: number;
  /** random crop + flips/transpose; false → centre crop, no flips (for validation). Default true. */
  augment?: boolean;
  /**
   * worker threads for grayscale + Canny (≈65 ms per 256² sample in JS); 0 runs it on the main
   * thread between awaits. Default min(2, cpus − 1). Results are identical either way.
   */
  structureWorkers?: number;
  /**
   * Scale augmentation: with zoom > 1 each sample is a random square of side size·z, z log-uniform
   * in [1, min(zoom, short side / size)], box-filtered down to size. The sampler's window planner
   * shows a whole photo (or a large region) scaled down to the window, so training on native-scale
   * crops alone teaches content at another scale than the one it fills (issue 21). Default 1: no
   * extra draw, the batches of a seed stay what they were.
   */
  zoom?: number;
  /** skip images over this many megapixels, checked from the header before decoding (default
   * DEFAULT_MAX_MEGAPIXELS: a 219 KB 15000x15000 PNG would take gigabytes) */
  maxMegapixels?: number;
  /** called once per unreadable or oversized file, the first time it is met */
  onSkip?: (file: string, error: Error) => void;
}

/** Per-epoch reshuffled, endless index stream; epoch k's order depends only on the seed. */
export class EpochShuffler {
  private perm: Uint32Array;
  private pos: number;
  epoch = -1;

  constructor(readonly n: number, private readonly rng: SeededNoise) {
    if (!(n > 0)) throw new Error('EpochShuffler: nothing to shuffle');
    this.perm = new Uint32Array(n);
    this.pos = n;
  }

  next(): { index: number; epoch: number } {
    if (this.pos >= this.n) {
      for (let i = 0; i < this.n; i++) this.perm[i] = i;
      // Fisher–Yates with a float draw: uniform() has 53 bits, so the modulo bias is nil
      for (let i = this.n - 1; i > 0; i--) {
        const j = Math.floor(this.rng.uniform() * (i + 1));
        const t = this.perm[i]!;
        this.perm[i] = this.perm[j]!;
        this.perm[j] = t;
      }
      this.pos = 0;
      this.epoch++;
    }
    return { index: this.perm[this.pos++]!, epoch: this.epoch };
  }
}

/** Random numbers of one sample, drawn at scheduling time. */
interface SlotDraws {
  ux: number;
  uy: number;
  hflip: boolean;
  vflip: boolean;
  transpose: boolean;
  /** zoom draw in [0, 1) (only drawn when zoom > 1) */
  uz?: number;
}

interface Sample {
  file: string;
  epoch: number;
  rgb: Float32Array;
  gray: Float32Array;
  edge: Float32Array;
}

/**
 * Upscale (keeping aspect) so the short side is ≥ size. Linear filtering: cv2's default, and the
 * official data never needs it (Places2/CelebA images are ≥ 256), so any smooth kernel will do.
 */
async function ensureMinSide(img: RawImage, size: number): Promise<RawImage> {
  const { width: W, height: H } = img;
  if (W >= size && H >= size) return img;
  const s = size / Math.min(W, H);
  const w = Math.max(size, Math.round(W * s));
  const h = Math.max(size, Math.round(H * s));
  const { data, info } = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), {
    raw: { width: W, height: H, channels: img.channels as 1 | 2 | 3 | 4 },
  })
    .resize(w, h, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels };
}

/**
 * Crop + augment on the planar image, in the official order (`util.augment`: hflip, vflip,
 * then transpose H↔W). The crop is square, so the transpose keeps the shape.
 */
export function cropAugment(chw: Float32Array, H: number, W: number, size: number, d: SlotDraws, random: boolean): Float32Array {
  const top = random ? Math.floor(d.uy * (H - size + 1)) : Math.floor((H - size) / 2);
  const left = random ? Math.floor(d.ux * (W - size + 1)) : Math.floor((W - size) / 2);
  const hf = random && d.hflip;
  const vf = random && d.vflip;
  const tr = random && d.transpose;
  const S = size;
  const out = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) {
    const src = c * H * W;
    const dst = c * S * S;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        // output (y, x) after transpose comes from (x, y) before it; undo flips on that
        let sy = tr ? x : y;
        let sx = tr ? y : x;
        if (vf) sy = S - 1 - sy;
        if (hf) sx = S - 1 - sx;
        out[dst + y * S + x] = chw[src + (top + sy) * W + (left + sx)]!;
      }
    }
  }
  return out;
}

/** A random square of side S·z (z log-uniform up to the zoom the photo allows), box-filtered to S, then flipped. */
export function zoomCrop(chw: Float32Array, H: number, W: number, S: number, zoom: number, d: SlotDraws): Float32Array {
  const zMax = Math.min(zoom, Math.min(H, W) / S);
  const side = Math.min(Math.min(H, W), Math.max(S, Math.round(S * Math.exp((d.uz ?? 0) * Math.log(zMax)))));
  const region = cropAugment(chw, H, W, side, { ...d, hflip: false, vflip: false, transpose: false }, true);
  const scaled = side === S ? region : resizePlanes(region, 3, side, side, S, S);
  return cropAugment(scaled, S, S, S, d, true);
}

// Evaluated as CommonJS inside the worker; registers tsx itself when the sources are .ts, since
// loader hooks of the parent thread do not reach workers on Node 20.
const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsxApi) (await import(workerData.tsxApi)).register();
  const m = await import(workerData.structureUrl);
  parentPort.on('message', (job) => {
    try {
      const s = m.structureOf(job.rgb, job.H, job.W, job.sigma);
      parentPort.postMessage({ id: job.id, gray: s.gray, edge: s.edge }, [s.gray.buffer, s.edge.buffer]);
    } catch (e) {
      parentPort.postMessage({ id: job.id, error: String((e && e.message) || e) });
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((e) => parentPort.postMessage({ fatal: String((e && e.stack) || e) }));
`;

type StructureResult = { gray: Float32Array; edge: Float32Array };

/** Round-robin pool of structure workers; falls back to the main thread if a worker cannot start. */
class StructurePool {
  private workers: Worker[] = [];
  private waiting = new Map<number, { resolve: (r: StructureResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private rr = 0;
  readonly ready: Promise<boolean>;

  constructor(count: number) {
    let tsxApi: string | null = null;
    let structureUrl = new URL('../structure/gray.js', import.meta.url).href;
    if (import.meta.url.endsWith('.ts')) {
      structureUrl = new URL('../structure/gray.ts', import.meta.url).href;
      // the ESM build: the CommonJS one fails to register hooks from inside a worker
      let api: string | null = null;
      try {
        api = createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs');
      } catch {
        api = null;
      }
      if (!api || !existsSync(api)) {
        this.ready = Promise.resolve(false);
        return;
      }
      tsxApi = pathToFileURL(api).href;
    }
    const starts: Promise<boolean>[] = [];
    for (let i = 0; i < count; i++) {
      const w = new Worker(WORKER_SRC, { eval: true, workerData: { tsxApi, structureUrl } });
      w.unref();
      this.workers.push(w);
      starts.push(
        new Promise<boolean>((res) => {
          w.once('error', (e) => {
            res(false);
            this.failAll(e instanceof Error ? e : new Error(String(e)));
          });
          w.once('exit', () => this.failAll(new Error('structure worker exited')));
          w.on('message', (msg: { ready?: boolean; fatal?: string; id?: number; error?: string; gray?: Float32Array; edge?: Float32Array }) => {
            if (msg.ready) return res(true);
            if (msg.fatal) return res(false);
            const p = this.waiting.get(msg.id!);
            if (!p) return;
            this.waiting.delete(msg.id!);
            if (msg.error) p.reject(new Error(msg.error));
            else p.resolve({ gray: msg.gray!, edge: msg.edge! });
          });
        }),
      );
    }
    this.ready = Promise.all(starts).then((ok) => {
      if (ok.every(Boolean)) return true;
      void this.close();
      return false;
    });
  }

  async run(rgb: Float32Array, H: number, W: number, sigma: number): Promise<StructureResult> {
    if (!(await this.ready)) return structureOf(rgb, H, W, sigma);
    if (this.workers.length === 0) throw new Error('structure workers are closed');
    const id = this.nextId++;
    const w = this.workers[this.rr++ % this.workers.length]!;
    return new Promise<StructureResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // a copy goes over: the caller keeps `rgb` as the GT sample
      w.postMessage({ id, rgb, H, W, sigma });
    });
  }

  /** a dead worker must not leave a batch waiting forever */
  private failAll(e: Error): void {
    const w = [...this.waiting.values()];
    this.waiting.clear();
    for (const p of w) p.reject(e);
  }

  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/**
 * Endless shuffled batches over an image folder. `await ImageFolderLoader.open({...})`, then
 * `await loader.next()` (or `for await`), and `await loader.close()` to stop the workers.
 */
export class ImageFolderLoader implements AsyncIterable<TrainBatch> {
  readonly files: string[];
  readonly size: number;
  readonly batchSize: number;
  readonly sigma: number;
  private readonly augment: boolean;
  private readonly zoom: number;
  private readonly lookahead: number;
  private readonly order: EpochShuffler;
  private readonly draws: SeededNoise;
  private readonly bad = new Map<number, string>();
  private readonly pending: Promise<Sample | null>[] = [];
  private readonly pool: StructurePool | null;
  private readonly onSkip?: (file: string, error: Error) => void;
  private readonly maxMegapixels?: number;
  private closed = false;

  private constructor(files: string[], o: ImageFolderLoaderOptions) {
    this.files = files;
    this.size = o.size ?? 256;
    this.batchSize = o.batchSize ?? 16;
    this.sigma = o.sigma ?? 3;
    this.augment = o.augment ?? true;
    this.zoom = o.zoom ?? 1;
    if (!(this.zoom >= 1)) throw new Error(`image loader: zoom must be >= 1, got ${this.zoom}`);
    if (!Number.isInteger(this.size) || this.size <= 0) throw new Error(`image loader: size must be a positive integer, got ${this.size}`);
    if (!Number.isInteger(this.batchSize) || this.batchSize <= 0) throw new Error(`image loader: batchSize must be a positive integer, got ${this.batchSize}`);
    this.lookahead = Math.max(1, Math.round((o.prefetchBatches ?? 2) * this.batchSize));
    const seed = o.seed ?? 0;
    // two streams so the file order of an epoch does not depend on how many draws samples use
    this.order = new EpochShuffler(files.length, new SeededNoise(seed));
    this.draws = new SeededNoise((seed ^ 0x5bd1e995) >>> 0);
    this.onSkip = o.onSkip;
    this.maxMegapixels = o.maxMegapixels;
    const nw = o.structureWorkers ?? Math.min(2, Math.max(0, defaultCpus() - 1));
    this.pool = nw > 0 ? new StructurePool(nw) : null;
  }

  static async open(o: ImageFolderLoaderOptions): Promise<ImageFolderLoader> {
    return new ImageFolderLoader(listImageFiles(o.root), o);
  }

  /** whether grayscale + Canny run in worker threads (false: on the main thread) */
  async structureInWorkers(): Promise<boolean> {
    return this.pool ? this.pool.ready : false;
  }

  /** unreadable (or oversized) files met so far */
  get skipped(): number {
    return this.bad.size;
  }

  get skippedFiles(): string[] {
    return [...this.bad.values()];
  }

  private fill(): void {
    while (this.pending.length < this.lookahead) {
      const { index, epoch } = this.order.next();
      const d: SlotDraws = {
        ux: this.draws.uniform(),
        uy: this.draws.uniform(),
        hflip: this.draws.uniform() < 0.5,
        vflip: this.draws.uniform() < 0.5,
        transpose: this.draws.uniform() < 0.5,
        uz: this.zoom > 1 ? this.draws.uniform() : 0,
      };
      const p = this.loadSample(index, epoch, d);
      p.catch(() => undefined); // rejections surface in next(); avoid unhandled warnings meanwhile
      this.pending.push(p);
    }
  }

  private async loadSample(index: number, epoch: number, d: SlotDraws): Promise<Sample | null> {
    if (this.bad.has(index)) return null;
    const file = this.files[index]!;
    let chw: Float32Array;
    let H: number;
    let W: number;
    try {
      const raw = await ensureMinSide(toRgb8(await decodeRaw(file, { maxMegapixels: this.maxMegapixels })), this.size);
      chw = rgb8ToChw(raw);
      H = raw.height;
      W = raw.width;
    } catch (e) {
      if (!this.bad.has(index)) {
        this.bad.set(index, file);
        this.onSkip?.(file, e as Error);
      }
      return null;
    }
    const S = this.size;
    const rgb = this.zoom > 1 && this.augment ? zoomCrop(chw, H, W, S, this.zoom, d) : cropAugment(chw, H, W, S, d, this.augment);
    const st = this.pool ? await this.pool.run(rgb, S, S, this.sigma) : structureOf(rgb, S, S, this.sigma);
    return { file, epoch, rgb, gray: st.gray, edge: st.edge };
  }

  async next(): Promise<TrainBatch> {
    if (this.closed) throw new Error('image loader is closed');
    const B = this.batchSize;
    const S = this.size;
    const HW = S * S;
    const GT = new Float32Array(B * 3 * HW);
    const gray = new Float32Array(B * HW);
    const edge = new Float32Array(B * HW);
    const files: string[] = [];
    let epoch = -1;
    while (files.length < B) {
      if (this.bad.size === this.files.length) {
        throw new Error(`no readable images in ${this.files.length} file(s) under the image folder (first: ${this.files[0]})`);
      }
      this.fill();
      const s = await this.pending.shift()!;
      this.fill();
      if (!s) continue;
      const b = files.length;
      GT.set(s.rgb, b * 3 * HW);
      gray.set(s.gray, b * HW);
      edge.set(s.edge, b * HW);
      files.push(s.file);
      if (epoch < 0) epoch = s.epoch;
    }
    return {
      GT: { shape: [B, 3, S, S], data: GT },
      gray: { shape: [B, 1, S, S], data: gray },
      edge: { shape: [B, 1, S, S], data: edge },
      files,
      epoch,
    };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TrainBatch> {
    while (!this.closed) yield await this.next();
  }

  /** stop the structure workers; pending decodes are left to finish and be dropped */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.length = 0;
    await this.pool?.close();
  }
}

function defaultCpus(): number {
  // availableParallelism respects affinity limits where cpus().length does not
  return typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
}
