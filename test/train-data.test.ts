import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { Command } from 'commander';
import { SeededNoise } from '../src/util/noise.js';
import { structureOf } from '../src/structure/gray.js';
import { ImageFolderLoader, cropAugment, type TrainBatch } from '../src/train/data.js';
import { decodeRaw, loadImageChw, saveChwPng } from '../src/data/images.js';
import {
  IrregularMaskGenerator,
  MaskFolder,
  RATIO_BUCKETS,
  generateMask,
  holeRatio,
  parseRatio,
  pilTo1Bit,
  resizeNearestPil,
} from '../src/data/masks.js';
import { register, writeMasks } from '../src/cli/commands/masks.js';

let root: string;
let imgDir: string;

/** Smooth colour gradients with a few discs, so Canny finds edges. */
function pattern(W: number, H: number, C: number, seed: number): Buffer {
  const rng = new SeededNoise(seed);
  const discs = Array.from({ length: 4 }, () => ({ x: rng.uniform() * W, y: rng.uniform() * H, r: 5 + rng.uniform() * 20, v: rng.uniform() }));
  const buf = Buffer.alloc(W * H * C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let inDisc = -1;
      discs.forEach((d, k) => {
        if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r ** 2) inDisc = k;
      });
      for (let c = 0; c < C; c++) {
        const base = c === 3 ? 200 : ((x * (c + 1) * 255) / W + (y * 255) / H) / 2;
        buf[(y * W + x) * C + c] = c < 3 && inDisc >= 0 ? Math.round(discs[inDisc]!.v * 255) : Math.round(base) & 255;
      }
    }
  }
  return buf;
}

function raw(W: number, H: number, C: 1 | 2 | 3 | 4, seed: number): Sharp {
  const s = sharp(pattern(W, H, C, seed), { raw: { width: W, height: H, channels: C } });
  return C === 1 ? s.toColourspace('b-w') : s; // else sharp stores it as RGB
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'strdiff-data-'));
  imgDir = join(root, 'images');
  mkdirSync(join(imgDir, 'sub'), { recursive: true });
  await raw(300, 280, 3, 1).png().toFile(join(imgDir, 'a.png'));
  await raw(400, 300, 3, 2).jpeg({ quality: 90 }).toFile(join(imgDir, 'b.jpg'));
  await raw(40, 30, 3, 3).png().toFile(join(imgDir, 'small.png')); // below the crop size
  await raw(90, 90, 1, 4).png().toFile(join(imgDir, 'gray.png'));
  await raw(80, 120, 4, 5).png().toFile(join(imgDir, 'rgba.png'));
  await raw(70, 70, 3, 6).webp({ quality: 90 }).toFile(join(imgDir, 'c.webp'));
  await raw(100, 64, 3, 7).png().toFile(join(imgDir, 'sub', 'd.PNG'));
  writeFileSync(join(imgDir, 'corrupt.jpg'), Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 37) & 255)));
  const full = await raw(200, 200, 3, 8).png({ compressionLevel: 0 }).toBuffer();
  writeFileSync(join(imgDir, 'trunc.png'), full.subarray(0, Math.floor(full.length / 2)));
  writeFileSync(join(imgDir, 'notes.txt'), 'not an image');
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

async function take(l: ImageFolderLoader, n: number): Promise<TrainBatch[]> {
  const out: TrainBatch[] = [];
  for (let i = 0; i < n; i++) out.push(await l.next());
  return out;
}

describe('image folder loader', () => {
  it('lists images recursively, case-insensitively, sorted', async () => {
    const l = await ImageFolderLoader.open({ root: imgDir, size: 64, batchSize: 4, structureWorkers: 0 });
    expect(l.files.map((f) => f.slice(imgDir.length + 1))).toEqual([
      'a.png',
      'b.jpg',
      'c.webp',
      'corrupt.jpg',
      'gray.png',
      'rgba.png',
      'small.png',
      'sub/d.PNG',
      'trunc.png',
    ]);
    await l.close();
  });

  it('yields NCHW batches in range with binary edges, skipping and counting bad files', async () => {
    const skipped: string[] = [];
    const l = await ImageFolderLoader.open({
      root: imgDir,
      size: 64,
      batchSize: 4,
      seed: 1,
      structureWorkers: 0,
      onSkip: (f) => skipped.push(f),
    });
    const batches = await take(l, 5); // 20 samples: more than two epochs of 7 good files
    let edgeOnes = 0;
    const seen = new Set<string>();
    for (const b of batches) {
      expect(b.GT.shape).toEqual([4, 3, 64, 64]);
      expect(b.gray.shape).toEqual([4, 1, 64, 64]);
      expect(b.edge.shape).toEqual([4, 1, 64, 64]);
      expect(b.GT.data.length).toBe(4 * 3 * 64 * 64);
      // aggregate checks: one expect per pixel makes this test take seconds
      expect(b.GT.data.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(b.gray.data.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(b.edge.data.every((v) => v === 0 || v === 1)).toBe(true);
      for (const v of b.edge.data) edgeOnes += v;
      b.files.forEach((f) => seen.add(f.slice(imgDir.length + 1)));
      // structure is that of the GT crop
      const HW = 64 * 64;
      for (let k = 0; k < 4; k++) {
        const s = structureOf(b.GT.data.slice(k * 3 * HW, (k + 1) * 3 * HW), 64, 64, 3);
        expect(b.gray.data.slice(k * HW, (k + 1) * HW)).toEqual(s.gray);
        expect(b.edge.data.slice(k * HW, (k + 1) * HW)).toEqual(s.edge);
        if (b.files[k]!.endsWith('gray.png')) {
          const g = b.GT.data.subarray(k * 3 * HW, (k + 1) * 3 * HW);
          expect(g.subarray(0, HW)).toEqual(g.subarray(HW, 2 * HW));
          expect(g.subarray(0, HW)).toEqual(g.subarray(2 * HW));
        }
      }
    }
    expect(edgeOnes).toBeGreaterThan(0);
    expect(l.skipped).toBe(2);
    expect(skipped.map((f) => f.slice(imgDir.length + 1)).sort()).toEqual(['corrupt.jpg', 'trunc.png']);
    expect([...seen].sort()).toEqual(['a.png', 'b.jpg', 'c.webp', 'gray.png', 'rgba.png', 'small.png', 'sub/d.PNG']);
    await l.close();
  });

  it('is deterministic per seed, also with structure workers', async () => {
    const mk = (seed: number, w: number) => ImageFolderLoader.open({ root: imgDir, size: 48, batchSize: 3, seed, structureWorkers: w, prefetchBatches: 3 });
    const [a, b, c] = await Promise.all([mk(7, 0), mk(7, 1), mk(8, 0)]);
    const A = await take(a, 4);
    const B = await take(b, 4);
    expect(await b.structureInWorkers()).toBe(true);
    expect(await a.structureInWorkers()).toBe(false);
    const C = await take(c, 4);
    for (let i = 0; i < 4; i++) {
      expect(B[i]!.files).toEqual(A[i]!.files);
      expect(B[i]!.GT.data).toEqual(A[i]!.GT.data);
      expect(B[i]!.gray.data).toEqual(A[i]!.gray.data);
      expect(B[i]!.edge.data).toEqual(A[i]!.edge.data);
    }
    const same = A.every((x, i) => x.files.join() === C[i]!.files.join() && x.GT.data.every((v, k) => v === C[i]!.GT.data[k]));
    expect(same).toBe(false);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('centre crop without augmentation reproduces the decoded pixels', async () => {
    const dir = join(root, 'one');
    mkdirSync(dir);
    await raw(90, 70, 3, 11).png().toFile(join(dir, 'x.png'));
    const l = await ImageFolderLoader.open({ root: dir, size: 64, batchSize: 2, augment: false, structureWorkers: 0 });
    const b = await l.next();
    const full = await loadImageChw(join(dir, 'x.png'));
    const top = 3;
    const left = 13;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 64; y += 7) {
        for (let x = 0; x < 64; x += 5) expect(b.GT.data[c * 4096 + y * 64 + x]).toBe(full.data[c * 90 * 70 + (top + y) * 90 + left + x]);
      }
    }
    expect(b.epoch).toBe(0);
    await l.close();
  });

  it('augments in the official order: hflip, vflip, then transpose', () => {
    // 1 channel repeated: value = 10·y + x on a 3×3 image
    const H = 3;
    const src = new Float32Array(27);
    for (let c = 0; c < 3; c++) for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) src[c * 9 + y * 3 + x] = 10 * y + x;
    const d = { ux: 0, uy: 0, hflip: true, vflip: false, transpose: true };
    const out = cropAugment(src, H, 3, 3, d, true);
    // hflip → v(y,x) = 10y + (2−x); transpose → out(y,x) = 10x + (2−y)
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) expect(out[y * 3 + x]).toBe(10 * x + (2 - y));
  });

  it('fails clearly on a missing folder, an empty folder, and all-unreadable files', async () => {
    await expect(ImageFolderLoader.open({ root: join(root, 'nope') })).rejects.toThrow(/image folder not found: .*nope/);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    writeFileSync(join(empty, 'readme.md'), 'x');
    await expect(ImageFolderLoader.open({ root: empty })).rejects.toThrow(new RegExp(`no image files .* in ${empty}`));
    const bad = join(root, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'x.png'), 'garbage');
    writeFileSync(join(bad, 'y.jpg'), 'garbage');
    const l = await ImageFolderLoader.open({ root: bad, size: 32, batchSize: 2, structureWorkers: 0 });
    await expect(l.next()).rejects.toThrow(/no readable images in 2 file/);
    expect(l.skipped).toBe(2);
    await l.close();
  });
});

describe('mask folder', () => {
  it('white in the file is a hole (m = 0); PIL nearest resize samples pixel centres', async () => {
    const dir = join(root, 'masks');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    // 3×3 with a white centre → 7×7: src = floor((i+0.5)·3/7) puts the hole at rows/cols 2..4
    // (torch's floor(i·3/7) would give 3..4)
    await saveChwPng(join(dir, 'a.png'), new Uint8Array([0, 0, 0, 0, 255, 0, 0, 0, 0]), 1, 3, 3);
    // RGB mask, left 2 columns white
    const rgb = Buffer.alloc(4 * 4 * 3);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 2; x++) rgb.fill(255, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
    await sharp(rgb, { raw: { width: 4, height: 4, channels: 3 } }).png().toFile(join(dir, 'sub', 'b.png'));

    const mf = await MaskFolder.open(dir, { size: 7, flip: false });
    expect(mf.files.length).toBe(2);
    const a = await mf.load(0);
    for (let y = 0; y < 7; y++) {
      for (let x = 0; x < 7; x++) {
        const hole = y >= 2 && y <= 4 && x >= 2 && x <= 4;
        expect(a[y * 7 + x]).toBe(hole ? 0 : 1);
      }
    }
    // 4 → 7: src x = floor((x+0.5)·4/7) < 2 ⇔ x ≤ 2
    const b = await mf.load(1);
    for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) expect(b[y * 7 + x]).toBe(x <= 2 ? 0 : 1);
    const bf = await mf.load(1, true);
    for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) expect(bf[y * 7 + x]).toBe(6 - x <= 2 ? 0 : 1);

    // batches: [B,1,S,S], binary, random flips show both orientations
    const mr = await MaskFolder.open(join(dir, 'sub'), { size: 7, seed: 3 });
    const batch = await mr.batch(16);
    expect(batch.shape).toEqual([16, 1, 7, 7]);
    const firstCol = new Set<number>();
    for (let k = 0; k < 16; k++) firstCol.add(batch.data[k * 49]!);
    expect([...firstCol].sort()).toEqual([0, 1]);
    const again = await (await MaskFolder.open(join(dir, 'sub'), { size: 7, seed: 3 })).batch(16);
    expect(again.data).toEqual(batch.data);
  });

  it('thresholds like PIL convert("1"): Floyd–Steinberg dither, 128 maps to black', () => {
    const W = 64;
    const flat = (v: number) => ({ data: new Uint8Array(W * W).fill(v), width: W, height: W, channels: 1 });
    expect(holeRatio(pilTo1Bit(flat(255)))).toBe(1);
    expect(holeRatio(pilTo1Bit(flat(0)))).toBe(0);
    const r = holeRatio(pilTo1Bit(flat(100)));
    expect(Math.abs(r - 100 / 255)).toBeLessThan(0.02);
    expect(resizeNearestPil(new Uint8Array([1, 0]), 1, 2, 1, 5)).toEqual(new Uint8Array([1, 1, 0, 0, 0]));
  });

  it('fails clearly on an empty mask folder', async () => {
    const empty = join(root, 'emptymasks');
    mkdirSync(empty);
    await expect(MaskFolder.open(empty)).rejects.toThrow(new RegExp(`no mask files .* in ${empty}`));
  });
});

function components(hole: Uint8Array, S: number): number {
  const lab = new Int32Array(S * S);
  let n = 0;
  const stack: number[] = [];
  for (let i = 0; i < S * S; i++) {
    if (!hole[i] || lab[i]) continue;
    n++;
    lab[i] = n;
    stack.push(i);
    while (stack.length) {
      const k = stack.pop()!;
      const x = k % S;
      const y = (k - x) / S;
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]] as const) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= S || yy >= S) continue;
        const j = yy * S + xx;
        if (hole[j] && !lab[j]) {
          lab[j] = n;
          stack.push(j);
        }
      }
    }
  }
  return n;
}

function fillsBoundingBox(hole: Uint8Array, S: number): boolean {
  let x0 = S;
  let y0 = S;
  let x1 = -1;
  let y1 = -1;
  let n = 0;
  for (let i = 0; i < S * S; i++) {
    if (!hole[i]) continue;
    n++;
    const x = i % S;
    const y = (i - x) / S;
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  return n === (x1 - x0 + 1) * (y1 - y0 + 1);
}

describe('irregular mask generator', () => {
  it('lands in every ratio bucket, deterministically, with irregular shapes', () => {
    for (const [lo, hi] of RATIO_BUCKETS) {
      const ratios: number[] = [];
      for (let seed = 0; seed < 20; seed++) {
        const m = generateMask(256, [lo, hi], new SeededNoise(seed));
        const r = holeRatio(m);
        ratios.push(r);
        expect(r).toBeGreaterThanOrEqual(lo);
        expect(r).toBeLessThanOrEqual(hi);
        expect(components(m, 256) > 1 || !fillsBoundingBox(m, 256)).toBe(true);
        if (seed < 3) expect(generateMask(256, [lo, hi], new SeededNoise(seed))).toEqual(m);
      }
      // spread over the bucket, not piled at its low end
      expect(Math.max(...ratios) - Math.min(...ratios)).toBeGreaterThan((hi - lo) / 3);
    }
    expect(generateMask(64, [0.3, 0.4], new SeededNoise(1))).not.toEqual(generateMask(64, [0.3, 0.4], new SeededNoise(2)));
  });

  it('produces training batches of m (1 known, 0 hole)', async () => {
    const g = new IrregularMaskGenerator({ size: 32, seed: 5, ratios: [[0.2, 0.3]] });
    const b = await g.batch(4);
    expect(b.shape).toEqual([4, 1, 32, 32]);
    for (let k = 0; k < 4; k++) {
      let holes = 0;
      for (let i = 0; i < 1024; i++) {
        const v = b.data[k * 1024 + i]!;
        expect(v === 0 || v === 1).toBe(true);
        holes += 1 - v;
      }
      expect(holes / 1024).toBeGreaterThanOrEqual(0.2);
      expect(holes / 1024).toBeLessThanOrEqual(0.3);
    }
    const b2 = await new IrregularMaskGenerator({ size: 32, seed: 5, ratios: [[0.2, 0.3]] }).batch(4);
    expect(b2.data).toEqual(b.data);
  });

  it('parses and validates ratio ranges', () => {
    expect(parseRatio('0.3-0.4')).toEqual([0.3, 0.4]);
    expect(parseRatio(' .1 - .2 ')).toEqual([0.1, 0.2]);
    expect(() => parseRatio('0.3')).toThrow(/expected LO-HI/);
    expect(() => parseRatio('0.5-0.3')).toThrow(/low end is above/);
    expect(() => parseRatio('0-0.3')).toThrow(/inside \(0, 1\)/);
    expect(() => parseRatio('0.5-1')).toThrow(/inside \(0, 1\)/);
  });
});

describe('masks CLI', () => {
  it('writes N PNG masks (white = hole) in the ratio range', async () => {
    const out = join(root, 'cli-masks');
    const lines: string[] = [];
    const files = await writeMasks({ out, count: 5, ratio: '0.3-0.4', size: 64, seed: 2, log: (l) => lines.push(l) });
    expect(files.length).toBe(5);
    expect(readdirSync(out).filter((f) => f.endsWith('.png')).length).toBe(5);
    expect(lines.join('\n')).toContain(out);
    for (const f of files) {
      const r = await decodeRaw(f);
      expect((await sharp(f).metadata()).channels).toBe(1);
      expect([r.width, r.height]).toEqual([64, 64]);
      let white = 0;
      for (let i = 0; i < r.data.length; i += r.channels) {
        const v = r.data[i]!;
        expect(v === 0 || v === 255).toBe(true);
        white += v === 255 ? 1 : 0;
      }
      expect(white / 4096).toBeGreaterThanOrEqual(0.3);
      expect(white / 4096).toBeLessThanOrEqual(0.4);
    }
    // read back through the mask loader: white → m = 0
    const mf = await MaskFolder.open(out, { size: 64, flip: false });
    const m = await mf.load(0);
    const px = await decodeRaw(files[0]!);
    for (let i = 0; i < 4096; i++) expect(m[i]).toBe(px.data[i * px.channels] === 255 ? 0 : 1);
  });

  it('registers `masks` and rejects bad arguments', async () => {
    const mk = () => {
      const p = new Command();
      p.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
      register(p);
      return p;
    };
    const out = join(root, 'cli-masks-2');
    const log = console.log;
    console.log = () => undefined;
    try {
      await mk().parseAsync(['node', 'strdiffusion', 'masks', '--out', out, '--count', '3', '--ratio', '0.1-0.2', '--size', '32', '--seed', '4']);
    } finally {
      console.log = log;
    }
    expect(readdirSync(out).sort()).toEqual(['mask_00000.png', 'mask_00001.png', 'mask_00002.png']);
    expect(readFileSync(join(out, 'mask_00000.png')).subarray(1, 4).toString()).toBe('PNG');
    const run = (...a: string[]) => mk().parseAsync(['node', 'strdiffusion', 'masks', '--out', join(root, 'cli-x'), ...a]);
    await expect(run('--count', '0')).rejects.toThrow(/--count must be a positive integer/);
    await expect(run('--count', 'abc')).rejects.toThrow(/--count must be a positive integer/);
    // counts that size loops and images are bounded (issue #14 item 7's class of bug)
    await expect(run('--count', '2000000')).rejects.toThrow(/--count must be at most 1000000/);
    await expect(run('--count', '1', '--size', '5000')).rejects.toThrow(/--size must be at most 4096/);
    await expect(run('--count', '2', '--ratio', '0.4-0.3')).rejects.toThrow(/low end is above/);
    await expect(run('--count', '2', '--ratio', '0.3')).rejects.toThrow(/expected LO-HI/);
    await expect(run('--count', '2', '--ratio', '0.3-1.5')).rejects.toThrow(/inside \(0, 1\)/);
  });

  it('saveChwPng round-trips an RGB float image', async () => {
    const f = join(root, 'rgb.png');
    const d = new Float32Array(3 * 4 * 5).map((_, i) => (i % 256) / 255);
    await saveChwPng(f, d, 3, 4, 5);
    const back = await loadImageChw(f);
    expect([back.width, back.height]).toEqual([5, 4]);
    expect(back.data).toEqual(d);
  });
});
