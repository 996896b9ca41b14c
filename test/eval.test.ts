import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { calculatePsnr, calculateSsim, capPsnr, gaussianKernel1D, gaussianWindow, holeL1, holePsnr, imageMetrics, PSNR_CAP, type Plane } from '../src/eval/metrics.js';
import { baselineMethod, evaluate, modelMethod, parseRatioList, type EvalResults } from '../src/eval/index.js';
import { writeReport } from '../src/eval/report.js';
import { meanFill } from '../src/eval/baselines.js';
import { planPairs } from '../src/eval/pairs.js';
import { parseBaselines } from '../src/cli/commands/eval.js';
import { fixture } from './fixtures.js';

const NETS = fixture('parity/nets');
const EXECUTOR = 'onnx' as const;

function plane(W: number, H: number, C: number, fn: (x: number, y: number, c: number) => number): Plane {
  const data = new Float64Array(W * H * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) data[(y * W + x) * C + c] = fn(x, y, c);
  return { width: W, height: H, channels: C, data };
}

describe('metrics', () => {
  it('Gaussian window equals cv2.getGaussianKernel(11, 1.5) and its outer product', () => {
    // cv2.getGaussianKernel(11, 1.5).ravel()
    const cv2 = [0.00102838008447911, 0.007598758135239185, 0.03600077212843083, 0.10936068950970002, 0.2130055377112537, 0.26601172486179436, 0.2130055377112537, 0.10936068950970002, 0.03600077212843083, 0.007598758135239185, 0.00102838008447911];
    const k = gaussianKernel1D(11, 1.5);
    for (let i = 0; i < 11; i++) expect(k[i]).toBeCloseTo(cv2[i]!, 14);
    const w = gaussianWindow(11, 1.5);
    expect(w[0 * 11 + 5]).toBeCloseTo(cv2[0]! * cv2[5]!, 15);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('identical images: PSNR = +Infinity (reported capped), SSIM = 1', () => {
    const a = plane(20, 17, 3, (x, y, c) => (x * 7 + y * 13 + c * 29) % 256);
    expect(calculatePsnr(a, a)).toBe(Infinity);
    expect(capPsnr(Infinity)).toBe(PSNR_CAP);
    expect(calculateSsim(a, a)).toBeCloseTo(1, 12);
    const holes = new Uint8Array(20 * 17).fill(1, 30, 80);
    const m = imageMetrics(a, a, holes);
    expect(m).toMatchObject({ psnr: PSNR_CAP, holePsnr: PSNR_CAP, holeL1: 0, capped: true });
    expect(m.ssim).toBeCloseTo(1, 12);
  });

  it('hand-computed values', () => {
    // one sample off by 255 in a 2x2 grey image: MSE = 255²/4 -> 20·log10(2)
    const a = plane(2, 2, 1, () => 0);
    const b = plane(2, 2, 1, (x, y) => (x === 1 && y === 1 ? 255 : 0));
    expect(calculatePsnr(a, b)).toBeCloseTo(20 * Math.log10(2), 12);
    // constant images have zero variance: SSIM = (2pq + C1) / (p² + q² + C1)
    const C1 = (0.01 * 255) ** 2;
    const p = plane(12, 14, 3, () => 100);
    const q = plane(12, 14, 3, () => 110);
    expect(calculateSsim(p, q)).toBeCloseTo((2 * 100 * 110 + C1) / (100 ** 2 + 110 ** 2 + C1), 12);
    // hole metrics see only the hole: one hole pixel off by 51 in every channel
    const holes = new Uint8Array(12 * 14);
    holes[5] = 1;
    const r = plane(12, 14, 3, (x, y) => (x === 5 && y === 0 ? 151 : 100));
    expect(holeL1(p, r, holes)).toBeCloseTo(51 / 255, 12);
    expect(holePsnr(p, r, holes)).toBeCloseTo(20 * Math.log10(5), 12);
    expect(holePsnr(p, r, new Uint8Array(12 * 14))).toBeNaN();
  });

  it('matches an independent numpy implementation on a synthetic 19x16 RGB pair', () => {
    // values from a float64 numpy re-implementation of utils/img_utils.py (explicit valid
    // correlation with np.outer(k, k.T)), run once offline
    const a = plane(19, 16, 3, (x, y, c) => (x * 7 + y * 13 + c * 29) % 256);
    const b = plane(19, 16, 3, (x, y, c) => (x * 11 + y * 5 + c * 17 + ((x * y) % 23)) % 256);
    expect(calculateSsim(a, b)).toBeCloseTo(0.4683075052283135, 12);
    expect(calculatePsnr(a, b)).toBeCloseTo(9.789781935657398, 12);
    const holes = new Uint8Array(19 * 16);
    for (let y = 4; y < 9; y++) for (let x = 3; x < 12; x++) holes[y * 19 + x] = 1;
    expect(holePsnr(a, b, holes)).toBeCloseTo(18.924237737951472, 12);
    expect(holeL1(a, b, holes)).toBeCloseTo(0.0937690631808279, 12);
  });

  it('rejects mismatched shapes and images smaller than the window', () => {
    const a = plane(12, 12, 3, () => 0);
    expect(() => calculatePsnr(a, plane(12, 12, 1, () => 0))).toThrow(/shapes differ/);
    expect(() => calculateSsim(plane(10, 12, 1, () => 0), plane(10, 12, 1, () => 0))).toThrow(/smaller than/);
  });
});

describe('eval inputs', () => {
  it('parses ratio lists and baseline names with one-line errors', () => {
    expect(parseRatioList('0.1-0.2, 0.3-0.4')).toEqual([[0.1, 0.2], [0.3, 0.4]]);
    expect(() => parseRatioList('10-20')).toThrow(/--mask-ratios/);
    expect(() => parseRatioList('0.1:0.2')).toThrow(/expected LO-HI/);
    expect(() => parseRatioList('')).toThrow(/empty/);
    expect(parseBaselines('telea,NS')).toEqual(['telea', 'ns']);
    expect(parseBaselines('none')).toEqual([]);
    expect(() => parseBaselines('telea,patchmatch')).toThrow(/unknown baseline "patchmatch"/);
    expect(parseBaselines('mean')).toEqual(['mean']);
  });

  it('mean fill writes the known pixels\' per-channel mean into the hole only', () => {
    const img = { width: 3, height: 2, channels: 3 as const, bitDepth: 8 as const, data: Uint8Array.from([10, 20, 30, 12, 22, 33, 200, 200, 200, 14, 24, 36, 255, 0, 0, 16, 26, 40]) };
    const holes = Uint8Array.from([0, 0, 1, 0, 1, 0]);
    const out = meanFill(img, holes);
    // known: (10,20,30) (12,22,33) (14,24,36) (16,26,40) -> mean (13, 23, 34.75 -> 35)
    expect([...out.data]).toEqual([10, 20, 30, 12, 22, 33, 13, 23, 35, 14, 24, 36, 13, 23, 35, 16, 26, 40]);
    expect(() => meanFill(img, new Uint8Array(6).fill(1))).toThrow(/no known pixel/);
  });

  it('missing or empty folders are clear errors', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'eval-empty-'));
    await expect(planPairs({ images: join(empty, 'nope'), count: 1, seed: 0, size: 32 })).rejects.toThrow(/image folder not found/);
    await expect(planPairs({ images: empty, count: 1, seed: 0, size: 32 })).rejects.toThrow(/no image files/);
  });
});

describe('eval end to end', () => {
  const root = mkdtempSync(join(tmpdir(), 'eval-e2e-'));
  const images = join(root, 'images');
  const out = join(root, 'report');

  beforeAll(async () => {
    mkdirSync(join(images, 'sub'), { recursive: true });
    for (let k = 0; k < 3; k++) {
      const W = 40 + 8 * k;
      const H = 36;
      const d = Buffer.alloc(W * H * 3);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) d[(y * W + x) * 3 + c] = Math.round(127 + 100 * Math.sin((x + 5 * c + 3 * k) / 7) * Math.cos(y / 9));
      await sharp(d, { raw: { width: W, height: H, channels: 3 } }).png().toFile(join(images, k === 2 ? 'sub' : '', `im${k}.png`));
    }
  });

  it('pairs are fixed by the seed and stable when --count grows', async () => {
    const o = { images, count: 2, seed: 5, size: 32, ratios: [[0.1, 0.2], [0.3, 0.4]] as [number, number][] };
    const a = await planPairs(o);
    const b = await planPairs(o);
    const c = await planPairs({ ...o, count: 4 });
    expect(a.pairs.map((p) => [p.image, p.holeRatio])).toEqual(b.pairs.map((p) => [p.image, p.holeRatio]));
    const firstTwo = (pl: typeof c) => pl.pairs.filter((p) => p.index < 2).map((p) => [p.bucket.key, p.image, Buffer.from(p.holes).toString('base64')]);
    expect(firstTwo(c)).toEqual(firstTwo(a));
    for (const p of c.pairs) expect(p.holeRatio).toBeGreaterThanOrEqual(p.bucket.range[0]);
    for (const p of c.pairs) expect(p.holeRatio).toBeLessThanOrEqual(p.bucket.range[1]);
    // 4 pairs over 3 images cycle through all of them
    expect(new Set(c.pairs.map((p) => p.image))).toEqual(new Set(['im0.png', 'im1.png', 'sub/im2.png']));
  });

  it('model + telea + ns on 2 buckets write report.md/html and results.json', async () => {
    const res: EvalResults = await evaluate({
      images,
      ratios: parseRatioList('0.1-0.2,0.3-0.4'),
      count: 2,
      seed: 1,
      size: 32,
      methods: [modelMethod({ checkpoints: NETS, T: 10, size: 32, executor: EXECUTOR }), baselineMethod('telea'), baselineMethod('ns')],
      outDir: out,
      gridSamples: 1,
      warn: () => {},
    });
    writeReport(res, out);
    expect(res.rows.map((r) => `${r.method} ${r.bucket}`)).toEqual(['strdiffusion 10-20%', 'strdiffusion 30-40%', 'telea 10-20%', 'telea 30-40%', 'ns 10-20%', 'ns 30-40%']);
    for (const r of res.rows) {
      expect(r.n).toBe(2);
      expect(r.errors).toBe(0);
      expect(Number.isFinite(r.ssim)).toBe(true);
    }
    for (const r of res.rows.filter((x) => x.method !== 'strdiffusion')) {
      expect(Number.isFinite(r.psnr) && r.psnr < PSNR_CAP).toBe(true);
      expect(Number.isFinite(r.holePsnr)).toBe(true);
      // smooth synthetic images are easy for diffusion-based baselines
      expect(r.psnr).toBeGreaterThan(20);
    }
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as EvalResults;
    for (const r of res.rows) {
      expect(md).toContain(`| ${r.method} | ${r.bucket} | 2 |`);
      expect(html).toContain(`<td>${r.method}</td><td>${r.bucket}</td>`);
    }
    expect(json.pairs).toHaveLength(4);
    expect(Object.keys(json.pairs[0]!.results).sort()).toEqual(['ns', 'strdiffusion', 'telea']);
    expect(json.settings).toMatchObject({ seed: 1, count: 2, size: 32 });
    expect(json.methods[0]!.info).toMatchObject({ T: 10, sampler: 'official' });
    // the grid's PNGs exist and the HTML references nothing outside the folder
    const srcs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(srcs.length).toBeGreaterThan(0);
    for (const s of srcs) {
      expect(s).not.toMatch(/^(https?:|\/\/|\/)/);
      expect(existsSync(join(out, s))).toBe(true);
    }
    expect(srcs.filter((s) => s.endsWith('.png'))).toHaveLength(2 * 5);
  }, 120_000);

  it('a masks folder is bucketed by actual hole ratio; a folder without masks is an error', async () => {
    const masks = join(root, 'masks');
    mkdirSync(masks, { recursive: true });
    // hole fractions 0.15 and 0.35 at 32x32 (rows of white at the top)
    for (const [name, rows] of [['a', 5], ['b', 11]] as const) {
      const d = Buffer.alloc(32 * 32);
      d.fill(255, 0, rows * 32);
      await sharp(d, { raw: { width: 32, height: 32, channels: 1 } }).png().toFile(join(masks, `${name}.png`));
    }
    const plan = await planPairs({ images, masks, count: 2, seed: 0, size: 32, ratios: [[0.1, 0.2], [0.3, 0.4], [0.4, 0.5]], warn: () => {} });
    expect(plan.maskStats).toMatchObject({ total: 2, perBucket: { '10-20': 1, '30-40': 1, '40-50': 0 }, outside: 0 });
    expect(plan.pairs.filter((p) => p.bucket.key === '10-20').map((p) => p.mask)).toEqual(['a.png', 'a.png']);
    const none = join(root, 'nomasks');
    mkdirSync(none);
    writeFileSync(join(none, 'readme.txt'), 'no images here');
    await expect(planPairs({ images, masks: none, count: 1, seed: 0, size: 32 })).rejects.toThrow(/no mask files/);
  });
});
