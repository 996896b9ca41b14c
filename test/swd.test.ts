import { describe, it, expect } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { holeSwd, laplacianPyramid, pyrDown, pyrUp, slicedWasserstein, swdDirections, SWD_DEFAULTS } from '../src/eval/swd.js';
import { holeL1, imageMetrics } from '../src/eval/metrics.js';
import { baselineMethod, evaluate, parseRatioList } from '../src/eval/index.js';
import { writeReport } from '../src/eval/report.js';
import { SeededNoise } from '../src/util/noise.js';

const S = 128;
// a 40×40 square hole in the middle
const HOLE = { x0: 44, y0: 44, x1: 84, y1: 84 };
const inHole = (x: number, y: number) => x >= HOLE.x0 && x < HOLE.x1 && y >= HOLE.y0 && y < HOLE.y1;
const holes = new Uint8Array(S * S);
for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) holes[y * S + x] = inHole(x, y) ? 1 : 0;

/**
 * A deterministic colour texture on an (S+16)² canvas: crossed sinusoids at a few scales plus
 * seeded noise, so every pyramid level has content. `dx, dy` read it displaced (the same texture, moved).
 */
function texture(noiseSeed = 1): (x: number, y: number, c: number) => number {
  const N = S + 16;
  const rng = new SeededNoise(noiseSeed);
  const noise = Float64Array.from({ length: N * N }, () => rng.gauss());
  return (x, y, c) => {
    const v = 128 + 40 * Math.sin(x / 2.3 + c) * Math.cos(y / 3.1) + 30 * Math.sin((x + 2 * y) / 5.7 + 2 * c) + 12 * noise[y * N + x]!;
    return Math.max(0, Math.min(255, Math.round(v)));
  };
}

function image(fn: (x: number, y: number, c: number) => number): Uint8Array {
  const d = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) d[(y * S + x) * 3 + c] = fn(x, y, c);
  return d;
}

const tex = texture();
const gt = image(tex);
const px = (img: Uint8Array, x: number, y: number, c: number) => img[(Math.min(S - 1, Math.max(0, y)) * S + Math.min(S - 1, Math.max(0, x))) * 3 + c]!;
/** gt with the hole's pixels replaced by fn (what eval's composite does). */
const fillHole = (fn: (x: number, y: number, c: number) => number) => image((x, y, c) => (inHole(x, y) ? fn(x, y, c) : px(gt, x, y, c)));

// the hole: 5×5 box blur of the truth / the same texture moved by (3, 2) px / the known pixels' mean colour
const blurred = fillHole((x, y, c) => {
  let s = 0;
  for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) s += px(gt, x + dx, y + dy, c);
  return Math.round(s / 25);
});
const shifted = fillHole((x, y, c) => tex(x + 3, y + 2, c));
const meanColour = [0, 1, 2].map((c) => {
  let s = 0;
  let n = 0;
  for (let i = 0; i < S * S; i++) if (!holes[i]) (s += gt[i * 3 + c]!), n++;
  return Math.round(s / n);
});
const flat = fillHole((_x, _y, c) => meanColour[c]!);

const swd = (a: Uint8Array, b = gt) => holeSwd(a, b, holes, S, S);
const l1 = (a: Uint8Array) => holeL1({ width: S, height: S, channels: 3, data: a }, { width: S, height: S, channels: 3, data: gt }, holes);

describe('building blocks', () => {
  it('pyrDown / pyrUp keep constants and the Laplacian of a constant image is 0', () => {
    const img = { w: 21, h: 13, c: 3, d: new Float64Array(21 * 13 * 3).fill(0.4) };
    const down = pyrDown(img);
    expect([down.w, down.h]).toEqual([11, 7]);
    for (const v of down.d) expect(v).toBeCloseTo(0.4, 14);
    const up = pyrUp(down, 21, 13);
    for (const v of up.d) expect(v).toBeCloseTo(0.4, 14);
    for (const lvl of laplacianPyramid(img, 3)) for (const v of lvl.d) expect(Math.abs(v)).toBeLessThan(1e-14);
  });

  it('pyrDown is the binomial blur at even pixels; pyrUp interpolates (1,6,1)/8 and (1,1)/2', () => {
    // one row: an impulse at x = 4
    const row = { w: 9, h: 1, c: 1, d: Float64Array.from([0, 0, 0, 0, 16, 0, 0, 0, 0]) };
    expect([...pyrDown(row).d]).toEqual([0, 1, 6, 1, 0]);
    const coarse = { w: 3, h: 1, c: 1, d: Float64Array.from([0, 8, 0]) };
    expect([...pyrUp(coarse, 6, 1).d]).toEqual([1, 4, 6, 4, 1, 0]);
  });

  it('sliced Wasserstein: 1-D hand values, quantile resampling, fixed unit directions', () => {
    const one = Float64Array.from([1]);
    // W1({0,1,2}, {1,2,3}) = 1; order within a set does not matter
    expect(slicedWasserstein(Float64Array.from([2, 0, 1]), 3, Float64Array.from([3, 1, 2]), 3, 1, one)).toBeCloseTo(1, 14);
    // {0, 1} against 4 points resampled at quantiles 1/4 and 3/4: {0, 0.5, 1, 1.5} -> 0.25 and 1.25
    expect(slicedWasserstein(Float64Array.from([0, 1]), 2, Float64Array.from([0, 0.5, 1, 1.5]), 4, 1, one)).toBeCloseTo((0.25 + 0.25) / 2, 14);
    const dirs = swdDirections(147, 8, 3);
    for (let r = 0; r < 8; r++) expect(dirs.subarray(r * 147, (r + 1) * 147).reduce((a, v) => a + v * v, 0)).toBeCloseTo(1, 12);
    expect([...swdDirections(147, 8, 3)]).toEqual([...dirs]);
    expect(swdDirections(147, 8, 4)[0]).not.toBe(dirs[0]);
  });
});

describe('hole SWD on a textured image with a 40×40 hole', () => {
  it('(a) identical images give 0', () => {
    expect(swd(gt.slice())).toBe(0);
  });

  it('(b) a blurred hole scores worse than the shifted texture, although its L1 is far lower', () => {
    const b = swd(blurred);
    const s = swd(shifted);
    expect(b).toBeGreaterThan(0);
    // L1/PSNR prefer the blur (it is close to every pixel); SWD sees that the detail is gone
    expect(l1(blurred)).toBeLessThan(l1(shifted) / 2);
    expect(b).toBeGreaterThan(2 * s);
  });

  it('(c) the same texture moved by a few pixels scores better than a flat mean-colour fill', () => {
    const s = swd(shifted);
    const f = swd(flat);
    expect(s).toBeGreaterThan(0);
    expect(l1(flat)).toBeLessThan(l1(shifted));
    expect(f).toBeGreaterThan(3 * s);
    // and the flat fill, with no detail at all, is the worst of the three
    expect(f).toBeGreaterThan(swd(blurred));
  });

  it('a fresh sample of the same texture is closer than any of the degraded fills', () => {
    const fresh = texture(2);
    expect(swd(fillHole(fresh))).toBeLessThan(swd(shifted));
  });

  it('(d) deterministic: same inputs, same value (pinned), independent of calls in between', () => {
    const v = swd(blurred);
    holeSwd(flat, gt, holes, S, S, { directions: 12, maxPatches: 50, seed: 9 });
    expect(swd(blurred)).toBe(v);
    // pins the recipe (directions, patch order, normalisation); update only on purpose
    expect(v).toBeCloseTo(181.7028127, 6);
    // symmetric in its two images (one shared normalisation)
    expect(holeSwd(gt, blurred, holes, S, S)).toBeCloseTo(v, 9);
  });

  it('(e) only the hole neighbourhood counts: far pixels change nothing, pixels within the margin do', () => {
    const ref = swd(blurred);
    const m = SWD_DEFAULTS.margin;
    const far = (img: Uint8Array) => image((x, y, c) => (x < HOLE.x0 - m || x >= HOLE.x1 + m || y < HOLE.y0 - m || y >= HOLE.y1 + m ? 255 - px(img, x, y, c) : px(img, x, y, c)));
    // inverted outside the box + margin, in the result only, and in both
    expect(swd(far(blurred))).toBe(ref);
    expect(holeSwd(far(blurred), far(gt), holes, S, S)).toBe(ref);
    // the same edit reaching 2 px inside the margin does change the value
    const near = image((x, y, c) => (x < HOLE.x0 - m + 2 ? 255 - px(blurred, x, y, c) : px(blurred, x, y, c)));
    expect(swd(near)).not.toBe(ref);
  });

  it('no hole gives NaN; mismatched inputs are errors', () => {
    expect(holeSwd(gt, gt, new Uint8Array(S * S), S, S)).toBeNaN();
    expect(() => holeSwd(gt, gt, new Uint8Array(10), S, S)).toThrow(/hole map/);
    expect(() => holeSwd(gt.subarray(3), gt, holes, S, S)).toThrow(/samples/);
  });
});

// a real photograph (mate-backgrounds), when installed: grass, where L1 prefers the flat fill
const MEADOW = '/usr/share/backgrounds/mate/nature/GreenMeadow.jpg';
describe.skipIf(!existsSync(MEADOW))('hole SWD on a photograph', () => {
  it('ranks shifted texture < blur < flat while L1 ranks flat above the shifted texture', async () => {
    const photo = Uint8Array.from(await sharp(MEADOW).resize(S, S, { fit: 'cover' }).removeAlpha().raw().toBuffer());
    const fill = (fn: (x: number, y: number, c: number) => number) => image((x, y, c) => (inHole(x, y) ? fn(x, y, c) : px(photo, x, y, c)));
    const blur = fill((x, y, c) => {
      let s = 0;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) s += px(photo, x + dx, y + dy, c);
      return Math.round(s / 25);
    });
    const shift = fill((x, y, c) => px(photo, x + 3, y + 2, c));
    const mean = [0, 1, 2].map((c) => Math.round(photo.filter((_, i) => i % 3 === c && !holes[(i - c) / 3]).reduce((a, v) => a + v, 0) / (S * S - 40 * 40)));
    const flatFill = fill((_x, _y, c) => mean[c]!);
    const d = (a: Uint8Array) => holeSwd(a, photo, holes, S, S);
    const e = (a: Uint8Array) => holeL1({ width: S, height: S, channels: 3, data: a }, { width: S, height: S, channels: 3, data: photo }, holes);
    expect(d(photo)).toBe(0);
    expect(d(shift)).toBeLessThan(d(blur));
    expect(d(blur)).toBeLessThan(d(flatFill));
    expect(e(flatFill)).toBeLessThan(e(shift));
  });
});

describe('eval wiring', () => {
  it('imageMetrics carries holeSwd', () => {
    const p = (data: Uint8Array) => ({ width: S, height: S, channels: 3, data });
    expect(imageMetrics(p(gt), p(gt), holes).holeSwd).toBe(0);
    expect(imageMetrics(p(blurred), p(gt), holes).holeSwd).toBe(swd(blurred));
  });

  it('evaluate() aggregates it per bucket and the reports show it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'eval-swd-'));
    const images = join(root, 'images');
    mkdirSync(images);
    for (let k = 0; k < 2; k++) {
      const f = texture(5 + k);
      await sharp(Buffer.from(image((x, y, c) => f(x, y, c))), { raw: { width: S, height: S, channels: 3 } }).resize(48, 48).png().toFile(join(images, `t${k}.png`));
    }
    const out = join(root, 'report');
    const res = await evaluate({ images, ratios: parseRatioList('0.1-0.2'), count: 2, seed: 3, size: 48, methods: [baselineMethod('mean')], outDir: out, gridSamples: 0, warn: () => {} });
    writeReport(res, out);
    const row = res.rows[0]!;
    const per = res.pairs.map((p) => (p.results.mean as { holeSwd: number }).holeSwd);
    for (const v of per) expect(v).toBeGreaterThan(0);
    expect(row.holeSwd).toBeCloseTo((per[0]! + per[1]!) / 2, 9);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('| hole L1 | hole SWD | s/img |');
    expect(md).toContain(`| ${row.holeL1.toFixed(4)} | ${row.holeSwd.toFixed(2)} |`);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<th>hole SWD</th>');
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as typeof res;
    expect(json.rows[0]!.holeSwd).toBeCloseTo(row.holeSwd, 9);
  });
});
