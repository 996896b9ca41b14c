/**
 * Training masks (docs/design.md §2.3). Two sources with one interface: a folder of mask images loaded as
 * the official `Datasetset_mask` does, and a procedural irregular-mask generator in the style of
 * the NVIDIA (partial convolution) irregular masks. Both return m = 1 known / 0 hole.
 */
import { SeededNoise } from '../util/noise.js';
import type { F32Tensor } from '../util/tensor.js';
import { decodeRaw, listImageFiles, type RawImage } from './images.js';

/** A stream of training masks, [size·size] with 1 = known, 0 = hole. */
export interface MaskSource {
  readonly size: number;
  next(): Promise<Float32Array>;
  /** [B,1,size,size] */
  batch(B: number): Promise<F32Tensor>;
}

// ---------------------------------------------------------------------------------------------
// Mask folder
// ---------------------------------------------------------------------------------------------

/**
 * PIL `Image.convert('1')` (default Floyd–Steinberg dither) → 0/1 per pixel, 1 = white. Clean
 * 0/255 masks come out as a plain threshold; anti-aliased edges get PIL's exact dither pattern.
 * RGB uses PIL's `L(rgb)/1000` (299/587/114, truncated); RGBA/LA lose alpha first, as PIL's
 * fallback through the base mode does.
 */
export function pilTo1Bit(img: RawImage): Uint8Array {
  const { data, width: W, height: H, channels: C } = img;
  const out = new Uint8Array(W * H);
  const errors = new Int32Array(W + 1);
  const rgb = C >= 3;
  for (let y = 0; y < H; y++) {
    let l = 0;
    let l0 = 0;
    let l1 = 0;
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * C;
      const v = rgb ? Math.trunc((data[p]! * 299 + data[p + 1]! * 587 + data[p + 2]! * 114) / 1000) : data[p]!;
      // C integer division truncates toward zero
      l = v + Math.trunc((l + errors[x + 1]!) / 16);
      l = l < 0 ? 0 : l > 255 ? 255 : l;
      const o = l > 128 ? 255 : 0;
      out[y * W + x] = o ? 1 : 0;
      l -= o;
      const l2 = l;
      const d2 = l + l;
      l += d2;
      errors[x] = l + l0;
      l += d2;
      l0 = l + l1;
      l1 = l2;
      l += d2;
    }
    errors[W] = l0;
  }
  return out;
}

/** PIL NEAREST resize (pixel centres: src = floor((i + 0.5)·in/out)), any size → out×out. */
export function resizeNearestPil(src: Uint8Array, inH: number, inW: number, outH: number, outW: number): Uint8Array {
  const out = new Uint8Array(outH * outW);
  const sy = inH / outH;
  const sx = inW / outW;
  const xs = new Int32Array(outW);
  for (let x = 0; x < outW; x++) xs[x] = Math.min(inW - 1, Math.floor((x + 0.5) * sx));
  for (let y = 0; y < outH; y++) {
    const yy = Math.min(inH - 1, Math.floor((y + 0.5) * sy));
    for (let x = 0; x < outW; x++) out[y * outW + x] = src[yy * inW + xs[x]!]!;
  }
  return out;
}

/** 1 = hole bits → m (1 known, 0 hole), optionally mirrored left–right. */
export function holeToKnown(hole: Uint8Array, size: number, flip = false): Float32Array {
  const m = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) m[y * size + x] = hole[y * size + (flip ? size - 1 - x : x)] ? 0 : 1;
  }
  return m;
}

export interface MaskFolderOptions {
  size?: number;
  seed?: number;
  /** RandomHorizontalFlip(p=0.5), on in training (default true) */
  flip?: boolean;
  /** keep resized bits in memory; default when all masks fit in 256 MB */
  cache?: boolean;
  /** refuse (skip) mask files over this many megapixels, from their header (default DEFAULT_MAX_MEGAPIXELS) */
  maxMegapixels?: number;
  onSkip?: (file: string, error: Error) => void;
}

/**
 * Mask images of a folder (recursive; sorted so a seed is reproducible, where the official
 * os.walk order is not). White in the file = hole. Sampling reshuffles per epoch like the
 * official shuffled DataLoader.
 */
export class MaskFolder implements MaskSource {
  readonly files: string[];
  readonly size: number;
  private readonly flip: boolean;
  private readonly rng: SeededNoise;
  private readonly cache: Map<number, Uint8Array> | null;
  private readonly bad = new Map<number, string>();
  private readonly onSkip?: (file: string, error: Error) => void;
  private readonly maxMegapixels?: number;
  private perm: number[] = [];
  private pos = 0;

  private constructor(files: string[], o: MaskFolderOptions) {
    this.files = files;
    this.size = o.size ?? 256;
    if (!Number.isInteger(this.size) || this.size <= 0) throw new Error(`mask folder: size must be a positive integer, got ${this.size}`);
    this.flip = o.flip ?? true;
    this.rng = new SeededNoise(o.seed ?? 0);
    const fits = files.length * this.size * this.size <= 256 * 2 ** 20;
    this.cache = (o.cache ?? fits) ? new Map() : null;
    this.onSkip = o.onSkip;
    this.maxMegapixels = o.maxMegapixels;
  }

  static async open(root: string, o: MaskFolderOptions = {}): Promise<MaskFolder> {
    return new MaskFolder(listImageFiles(root, undefined, 'mask'), o);
  }

  get skipped(): number {
    return this.bad.size;
  }

  /** hole bits (1 = hole = white in the file) of mask `i`, resized to size×size; a file over the
   * megapixel limit throws (ImageTooLargeError) before it is decoded */
  async holes(i: number): Promise<Uint8Array> {
    const hit = this.cache?.get(i);
    if (hit) return hit;
    const raw = await decodeRaw(this.files[i]!, { maxMegapixels: this.maxMegapixels, label: `mask ${this.files[i]}` });
    const bits = resizeNearestPil(pilTo1Bit(raw), raw.height, raw.width, this.size, this.size);
    this.cache?.set(i, bits);
    return bits;
  }

  /** mask `i` as m (1 known, 0 hole) */
  async load(i: number, flip = false): Promise<Float32Array> {
    return holeToKnown(await this.holes(i), this.size, flip);
  }

  private draw(): { index: number; flip: boolean } {
    if (this.pos >= this.perm.length) {
      const p = [...Array(this.files.length).keys()];
      for (let i = p.length - 1; i > 0; i--) {
        const j = Math.floor(this.rng.uniform() * (i + 1));
        [p[i], p[j]] = [p[j]!, p[i]!];
      }
      this.perm = p;
      this.pos = 0;
    }
    const index = this.perm[this.pos++]!;
    const flip = this.flip && this.rng.uniform() < 0.5;
    return { index, flip };
  }

  private async tryLoad(d: { index: number; flip: boolean }): Promise<Float32Array | null> {
    if (this.bad.has(d.index)) return null;
    try {
      return await this.load(d.index, d.flip);
    } catch (e) {
      if (!this.bad.has(d.index)) {
        this.bad.set(d.index, this.files[d.index]!);
        this.onSkip?.(this.files[d.index]!, e as Error);
      }
      return null;
    }
  }

  async next(): Promise<Float32Array> {
    return (await this.batch(1)).data;
  }

  async batch(B: number): Promise<F32Tensor> {
    const S = this.size;
    const out = new Float32Array(B * S * S);
    let filled = 0;
    // draws are made in order before loading, and failures are per file, so the result is
    // independent of decode timing
    while (filled < B) {
      if (this.bad.size === this.files.length) throw new Error(`no readable masks among ${this.files.length} file(s) (first: ${this.files[0]})`);
      const draws = Array.from({ length: B - filled }, () => this.draw());
      const got = await Promise.all(draws.map((d) => this.tryLoad(d)));
      for (const m of got) if (m) out.set(m, S * S * filled++);
    }
    return { shape: [B, 1, S, S], data: out };
  }
}

// ---------------------------------------------------------------------------------------------
// Procedural irregular masks
// ---------------------------------------------------------------------------------------------

export type RatioRange = [number, number];

/** The NVIDIA irregular-mask test buckets used in inpainting papers (hole-to-image ratio). */
export const RATIO_BUCKETS: readonly RatioRange[] = [
  [0.1, 0.2],
  [0.2, 0.3],
  [0.3, 0.4],
  [0.4, 0.5],
];

/** "0.3-0.4" → [0.3, 0.4], with 0 < lo ≤ hi < 1. */
export function parseRatio(s: string): RatioRange {
  const m = /^\s*(\d*\.?\d+)\s*-\s*(\d*\.?\d+)\s*$/.exec(s);
  if (!m) throw new Error(`bad ratio "${s}": expected LO-HI, e.g. 0.3-0.4`);
  const r: RatioRange = [Number(m[1]), Number(m[2])];
  checkRatio(r);
  return r;
}

function checkRatio([lo, hi]: RatioRange): void {
  if (!(lo > 0 && hi < 1)) throw new Error(`ratio ${lo}-${hi} must lie inside (0, 1)`);
  if (lo > hi) throw new Error(`ratio ${lo}-${hi}: low end is above the high end`);
}

/** Pixels whose centre lies within `r` of segment (x0,y0)–(x1,y1): a thick line with round caps. */
function drawCapsule(c: Uint8Array, S: number, x0: number, y0: number, x1: number, y1: number, r: number): number {
  const minX = Math.max(0, Math.floor(Math.min(x0, x1) - r));
  const maxX = Math.min(S - 1, Math.ceil(Math.max(x0, x1) + r));
  const minY = Math.max(0, Math.floor(Math.min(y0, y1) - r));
  const maxY = Math.min(S - 1, Math.ceil(Math.max(y0, y1) + r));
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  const r2 = r * r;
  let added = 0;
  for (let y = minY; y <= maxY; y++) {
    const py = y + 0.5;
    for (let x = minX; x <= maxX; x++) {
      const px = x + 0.5;
      let t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
      t = t < 0 ? 0 : t > 1 ? 1 : t;
      const ex = px - (x0 + t * dx);
      const ey = py - (y0 + t * dy);
      if (ex * ex + ey * ey <= r2) {
        const k = y * S + x;
        if (!c[k]) {
          c[k] = 1;
          added++;
        }
      }
    }
  }
  return added;
}

/** Rotated ellipse (box = false) or rectangle (box = true) with half-axes a, b. */
function drawShape(c: Uint8Array, S: number, cx: number, cy: number, a: number, b: number, angle: number, box: boolean): number {
  const R = Math.hypot(a, b);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  let added = 0;
  for (let y = Math.max(0, Math.floor(cy - R)); y <= Math.min(S - 1, Math.ceil(cy + R)); y++) {
    for (let x = Math.max(0, Math.floor(cx - R)); x <= Math.min(S - 1, Math.ceil(cx + R)); x++) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const u = (dx * cos + dy * sin) / a;
      const v = (-dx * sin + dy * cos) / b;
      const inside = box ? Math.abs(u) <= 1 && Math.abs(v) <= 1 : u * u + v * v <= 1;
      if (inside && !c[y * S + x]) {
        c[y * S + x] = 1;
        added++;
      }
    }
  }
  return added;
}

/**
 * One free-form brush stroke: a random walk of `n` segments of fixed width, turning by up to
 * ±70° per vertex and bouncing off the borders, so strokes curl like hand-drawn scribbles.
 */
function drawStroke(c: Uint8Array, S: number, rng: SeededNoise, scale: number, widthFrac: number): number {
  const u = (): number => rng.uniform();
  const n = 2 + Math.floor(u() * 9);
  const r = Math.max(0.5, (S * widthFrac * (0.5 + u())) / 2) * Math.sqrt(scale);
  let x = u() * S;
  let y = u() * S;
  let ang = u() * 2 * Math.PI;
  let added = 0;
  for (let i = 0; i < n; i++) {
    ang += (u() - 0.5) * (Math.PI * 0.78);
    const len = S * (0.04 + 0.16 * u()) * scale;
    let nx = x + len * Math.cos(ang);
    let ny = y + len * Math.sin(ang);
    if (nx < 0 || nx > S) {
      nx = Math.min(S, Math.max(0, nx));
      ang = Math.PI - ang;
    }
    if (ny < 0 || ny > S) {
      ny = Math.min(S, Math.max(0, ny));
      ang = -ang;
    }
    added += drawCapsule(c, S, x, y, nx, ny, r);
    x = nx;
    y = ny;
  }
  return added;
}

/**
 * Irregular hole mask (1 = hole) of size×size whose hole fraction lies in [lo, hi]; the same
 * rng state gives the same mask. Strokes are added until the fraction reaches a target drawn in
 * the range; a stroke that overshoots hi is undone and retried smaller, and as a last resort
 * single pixels next to the hole are added, so every range at least one pixel wide terminates.
 */
export function generateMask(size: number, range: RatioRange, rng: SeededNoise): Uint8Array {
  checkRatio(range);
  if (!Number.isInteger(size) || size < 4) throw new Error(`generateMask: size must be an integer ≥ 4, got ${size}`);
  const [lo, hi] = range;
  const N = size * size;
  const loCount = Math.ceil(lo * N);
  const hiCount = Math.floor(hi * N);
  if (loCount > hiCount) throw new Error(`generateMask: ratio ${lo}-${hi} is narrower than one pixel at ${size}×${size}`);
  const target = lo + (hi - lo) * rng.uniform();
  let c = new Uint8Array(N);
  let count = 0;
  // thicker brushes for larger holes, as in the NVIDIA set
  const widthFrac = 0.02 + 0.08 * target;

  // a few boxes/ellipses, each well under the target so strokes still dominate
  const nShapes = Math.floor(rng.uniform() * 3);
  for (let i = 0; i < nShapes; i++) {
    const area = target * N * (0.05 + 0.15 * rng.uniform());
    const aspect = 0.4 + 1.2 * rng.uniform();
    const box = rng.uniform() < 0.4;
    const a = Math.sqrt(area / (box ? 4 : Math.PI) * aspect);
    const b = Math.sqrt(area / (box ? 4 : Math.PI) / aspect);
    const before = c.slice();
    const added = drawShape(c, size, rng.uniform() * size, rng.uniform() * size, a, b, rng.uniform() * Math.PI, box);
    if (count + added > hiCount) c = before;
    else count += added;
  }

  // aim at a random point of the range so ratios spread over it instead of piling up at lo
  const want = Math.min(hiCount, Math.max(loCount, Math.round(target * N)));
  let scale = 1;
  let fails = 0;
  while (count < want && fails < 40) {
    const before = c.slice();
    // shrink strokes as the target nears so the last one rarely overshoots
    const s = Math.min(scale, Math.max(0.3, (target * N - count) / (0.08 * N)));
    const added = drawStroke(c, size, rng, s, widthFrac);
    if (count + added > hiCount) {
      c = before;
      scale *= 0.6;
      fails++;
    } else count += added;
  }
  if (count < loCount) count = growHoles(c, size, count, loCount);
  return c;
}

/** Add 4-neighbours of the hole in raster order until `want` (deterministic, 1 px at a time). */
function growHoles(c: Uint8Array, S: number, count: number, want: number): number {
  while (count < want) {
    const grown = count;
    for (let k = 0; k < S * S && count < want; k++) {
      if (c[k]) continue;
      const x = k % S;
      const y = (k - x) / S;
      const near = (x > 0 && c[k - 1] === 1) || (x < S - 1 && c[k + 1] === 1) || (y > 0 && c[k - S] === 1) || (y < S - 1 && c[k + S] === 1);
      // an empty canvas (every stroke overshot) has no neighbour to grow from: start anywhere
      if (near || grown === 0) {
        c[k] = 2; // mark so this pass grows by one ring, not a flood
        count++;
      }
    }
    for (let k = 0; k < S * S; k++) if (c[k] === 2) c[k] = 1;
  }
  return count;
}

/** Hole fraction of a 1 = hole mask. */
export function holeRatio(hole: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < hole.length; i++) n += hole[i] ? 1 : 0;
  return n / hole.length;
}

export interface IrregularMaskOptions {
  size?: number;
  /** one range is picked uniformly per mask; default all four NVIDIA buckets */
  ratios?: readonly RatioRange[];
  seed?: number;
}

/** Endless procedural masks for training (m = 1 known, 0 hole). */
export class IrregularMaskGenerator implements MaskSource {
  readonly size: number;
  readonly ratios: readonly RatioRange[];
  private readonly rng: SeededNoise;

  constructor(o: IrregularMaskOptions = {}) {
    this.size = o.size ?? 256;
    this.ratios = o.ratios ?? RATIO_BUCKETS;
    if (this.ratios.length === 0) throw new Error('IrregularMaskGenerator: no ratio ranges');
    for (const r of this.ratios) checkRatio(r);
    this.rng = new SeededNoise(o.seed ?? 0);
  }

  /** next mask as hole bits (1 = hole) */
  nextHoles(): Uint8Array {
    const r = this.ratios[Math.floor(this.rng.uniform() * this.ratios.length)]!;
    return generateMask(this.size, r, this.rng);
  }

  async next(): Promise<Float32Array> {
    return holeToKnown(this.nextHoles(), this.size);
  }

  async batch(B: number): Promise<F32Tensor> {
    const S = this.size;
    const out = new Float32Array(B * S * S);
    for (let b = 0; b < B; b++) out.set(holeToKnown(this.nextHoles(), S), b * S * S);
    return { shape: [B, 1, S, S], data: out };
  }
}
