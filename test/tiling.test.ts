/**
 * Holes at the photo's own resolution (issue 21): model-size windows at scale 1 over the holes
 * (src/inpaint/tiling.ts), a scaled window only for a region no window can see at scale 1.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { inpaint } from '../src/inpaint/index.js';
import type { InpaintProgress } from '../src/inpaint/progress.js';
import { planWindow } from '../src/inpaint/window.js';
import { holeBox } from '../src/inpaint/mask.js';
import { contextMargin, holeDepth, maxTiledDepth, planWindows, tileStride } from '../src/inpaint/tiling.js';
import { opencvInpaint } from '../src/eval/baselines.js';
import { writeImage, type RasterImage } from '../src/image/io.js';
import { fixture } from './fixtures.js';

const NETS = fixture('parity/nets');
const FAST = { checkpoints: NETS, T: 10, seed: 7, executor: 'onnx' as const };

function holesOf(W: number, H: number, f: (x: number, y: number) => boolean): Uint8Array {
  const h = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) h[y * W + x] = f(x, y) ? 1 : 0;
  return h;
}

const maskOf = (holes: Uint8Array, W: number, H: number): RasterImage => ({ width: W, height: H, channels: 1, bitDepth: 8, data: holes.map((v) => (v ? 255 : 0)) });

/** a photo-like test image: smooth shading plus texture, any format */
function photo(W: number, H: number, C: 1 | 2 | 3 | 4 = 3, bitDepth: 8 | 16 = 8): RasterImage {
  const max = bitDepth === 16 ? 65535 : 255;
  const data = bitDepth === 16 ? new Uint16Array(W * H * C) : new Uint8Array(W * H * C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < C; c++) {
        const v = c === C - 1 && (C === 2 || C === 4) ? 0.3 + 0.6 * ((x * 7 + y * 3) % 11) / 10 : 0.5 + 0.3 * Math.sin((x + 9 * c) / 11) * Math.cos(y / 7) + 0.1 * Math.sin(x * y / 50);
        data[(y * W + x) * C + c] = Math.round(v * max);
      }
    }
  }
  return { width: W, height: H, channels: C, bitDepth, data };
}

/** samples that differ between a and b, split into hole and known pixels */
function changed(a: RasterImage, b: RasterImage, holes: Uint8Array): { known: number; hole: number } {
  let known = 0, hole = 0;
  const C = a.channels;
  for (let i = 0; i < a.width * a.height; i++) {
    for (let c = 0; c < C; c++) {
      if (a.data[i * C + c] === b.data[i * C + c]) continue;
      if (holes[i] && !(c === C - 1 && (C === 2 || C === 4))) hole++;
      else known++; // a known pixel, or an alpha sample of a hole pixel
    }
  }
  return { known, hole };
}

/** two thin scratches crossing the image, like the portrait */
const scratches = (W: number, H: number) => holesOf(W, H, (x, y) => Math.abs(y - (0.1 * H + 0.6 * x)) < 1.5 || Math.abs(x - (0.8 * W - 0.4 * y)) < 1);

describe('planWindows (the layout alone)', () => {
  it('a small hole in a large photo: one window at scale 1, where the old planner put it', () => {
    const W = 1500, H = 1000;
    const holes = holesOf(W, H, (x, y) => x >= 700 && x < 730 && y >= 400 && y < 430);
    const { windows } = planWindows(holes, W, H, 64);
    expect(windows).toHaveLength(1);
    const [w] = windows;
    expect(w!.kind).toBe('single');
    expect([w!.plan.sw, w!.plan.sh]).toEqual([64, 64]);
    expect([w!.plan.w, w!.plan.h]).toEqual([64, 64]);
    expect(w!.plan).toEqual(planWindow(holeBox(holes, W, H)!, W, H, 64));
    expect(w!.pixels.length).toBe(900);
  });

  it('thin scratches across a photo: scale-1 tiles that write every hole pixel exactly once, with context', () => {
    const W = 512, H = 600, size = 128;
    const holes = scratches(W, H);
    const { windows, regions } = planWindows(holes, W, H, size);
    expect(regions.every((r) => r.kind === 'tile')).toBe(true);
    expect(windows.length).toBeGreaterThan(4);
    const written = new Uint8Array(W * H);
    const m = contextMargin(size);
    let noContext = 0;
    for (const { plan, kind, pixels } of windows) {
      expect(kind).toBe('tile');
      expect([plan.w, plan.h, plan.sw, plan.sh]).toEqual([size, size, size, size]);
      for (const i of pixels) {
        written[i]!++;
        const x = i % W, y = Math.floor(i / W);
        // context on every side that is not the image border
        if ((plan.x > 0 && x - plan.x < m) || (plan.x + plan.w < W && plan.x + plan.w - 1 - x < m) || (plan.y > 0 && y - plan.y < m) || (plan.y + plan.h < H && plan.y + plan.h - 1 - y < m)) noContext++;
      }
    }
    expect(noContext).toBe(0);
    expect(Buffer.from(written).equals(Buffer.from(holes))).toBe(true);
    // the old planner scaled the whole photo down 4.7x
    const old = planWindow(holeBox(holes, W, H)!, W, H, size);
    expect(old.sw / old.w).toBeLessThan(0.25);
  });

  it('a big blob is the only region scaled; specks share windows; a small image is one window', () => {
    const W = 400, H = 300, size = 32;
    const holes = holesOf(W, H, (x, y) => (x - 100) ** 2 + (y - 100) ** 2 < 40 ** 2 || (x % 9 === 0 && y % 9 === 0 && x > 250 && y > 150));
    const { windows, regions } = planWindows(holes, W, H, size);
    const scaled = windows.filter((w) => w.kind === 'scaled');
    expect(scaled).toHaveLength(1);
    expect(scaled[0]!.plan.sw).toBeLessThan(scaled[0]!.plan.w);
    // it writes the blob (left of x = 200), nothing else
    expect(scaled[0]!.pixels.length).toBe(holes.reduce((s, v, i) => s + (v && i % W < 200 ? 1 : 0), 0));
    const specks = regions.filter((r) => r.kind === 'single').length;
    expect(specks).toBeGreaterThan(100);
    expect(windows.length - 1).toBeLessThan(specks / 4);
    // an image no larger than the window: always one window at scale 1, whatever the hole
    const small = holesOf(32, 32, (x, y) => x > 2 && y > 2 && x < 29 && y < 29);
    const one = planWindows(small, 32, 32, 32).windows;
    expect(one.map((w) => [w.kind, w.plan.sw, w.plan.w])).toEqual([['single', 32, 32]]);
  });

  it('depth: chessboard distance to the nearest known pixel; the tile limit is size/4', () => {
    const W = 9, H = 7;
    const d = holeDepth(holesOf(W, H, (x, y) => x >= 1 && x < 8 && y >= 1 && y < 6), W, H);
    expect(Array.from(d.subarray(3 * W, 4 * W))).toEqual([0, 1, 2, 3, 3, 3, 2, 1, 0]);
    // the image border is not known context
    expect(holeDepth(new Uint8Array([1, 1, 1, 0]), 4, 1)[0]).toBe(3);
    expect([contextMargin(128), tileStride(128), maxTiledDepth(128)]).toEqual([16, 96, 32]);
  });
});

describe('inpaint() over several windows', () => {
  it('a 30x30 hole in a 1500x1000 photo: one window at scale 1, nothing outside the hole changes', async () => {
    const W = 1500, H = 1000;
    const img = photo(W, H);
    const holes = holesOf(W, H, (x, y) => x >= 700 && x < 730 && y >= 400 && y < 430);
    const warnings: string[] = [];
    const r = await inpaint(img, maskOf(holes, W, H), { ...FAST, size: 64, warn: (m) => warnings.push(m) });
    expect(r.windows).toHaveLength(1);
    expect(r.windows[0]).toMatchObject({ kind: 'single', pixels: 900 });
    expect(r.window!.plan).toMatchObject({ w: 64, h: 64, sw: 64, sh: 64 });
    const d = changed(img, r.image, holes);
    expect(d.known).toBe(0);
    expect(d.hole).toBeGreaterThan(0);
    expect(warnings).toEqual([]);
  });

  it('a hole region too large for the window at scale 1 falls back to a scaled window and says so once', async () => {
    const W = 200, H = 150;
    const img = photo(W, H);
    const holes = holesOf(W, H, (x, y) => ((x - 90) / 50) ** 2 + ((y - 70) / 35) ** 2 < 1);
    const warnings: string[] = [];
    const r = await inpaint(img, maskOf(holes, W, H), { ...FAST, size: 32, warn: (m) => warnings.push(m) });
    expect(r.windows.map((w) => w.kind)).toEqual(['scaled']);
    const { plan } = r.windows[0]!;
    expect(plan.sw).toBeLessThan(plan.w);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`scaled by ${(plan.sw / plan.w).toFixed(3)}`);
    expect(changed(img, r.image, holes).known).toBe(0);
  });

  it('several windows: same seed, same pixels; another seed differs; known samples (alpha, 16 bit, grey) bit-identical', async () => {
    const W = 120, H = 90;
    const holes = scratches(W, H);
    const mask = maskOf(holes, W, H);
    const img = photo(W, H);
    const seen: InpaintProgress[] = [];
    const states: number[] = [];
    // few network calls per window: 4 posterior steps, no resampling
    const QUICK = { ...FAST, size: 32, steps: 4, solver: 'posterior' as const, sampler: 'no-resampling' as const };
    const a = await inpaint(img, mask, { ...QUICK, onProgress: (p) => seen.push(p), onState: (_t, y, _x, w) => { states.push(w.index); expect(y.length).toBe(3 * 32 * 32); } });
    const n = a.windows.length;
    expect(n).toBeGreaterThan(3);
    expect(a.windows.every((w) => w.kind === 'tile' && w.plan.sw === w.plan.w)).toBe(true);
    expect(a.windows.reduce((s, w) => s + w.pixels, 0)).toBe(a.holePixels);
    // progress counts the steps of all windows: 1..4n for 4 steps per window
    expect(seen.map((p) => p.step)).toEqual(Array.from({ length: 4 * n }, (_, i) => i + 1));
    expect(seen.every((p) => p.T === 4 * n)).toBe(true);
    expect(states).toEqual(Array.from({ length: 4 * n }, (_, i) => Math.floor(i / 4)));
    const d = changed(img, a.image, holes);
    expect(d.known).toBe(0);
    expect(d.hole).toBeGreaterThan(0.9 * 3 * a.holePixels);
    const b = await inpaint(img, mask, QUICK);
    expect(Buffer.from(b.image.data).equals(Buffer.from(a.image.data))).toBe(true);
    const c = await inpaint(img, mask, { ...QUICK, seed: 8 });
    expect(Buffer.from(c.image.data).equals(Buffer.from(a.image.data))).toBe(false);
    for (const [C, depth] of [[4, 16], [2, 8], [1, 16]] as const) {
      const im = photo(W, H, C, depth);
      const r = await inpaint(im, mask, QUICK);
      expect([r.image.channels, r.image.bitDepth, r.windows.length]).toEqual([C, depth, n]);
      const d = changed(im, r.image, holes);
      expect(d.known).toBe(0);
      expect(d.hole).toBeGreaterThan(0);
    }
  });
});

describe('the bundled model', () => {
  it('a thin scratch across a smooth gradient with a fine ripple vanishes (the old scaled window left a line)', async () => {
    // a gradient plus a ripple of period 16 px: smooth at full resolution (a 2-px gap is filled to
    // within a level or two by any sensible fill), but lost when the old planner scaled the whole
    // 320x240 image into the 128 window (its fill there measured 13 levels off at the median)
    const W = 320, H = 240;
    const truth = (x: number, y: number, c: number) => [40 + 0.5 * x + 0.2 * y, 200 - 0.4 * y - 0.15 * x, 90 + 0.3 * x - 0.25 * y][c]! + 20 * Math.sin((2 * Math.PI * (x + 0.5 * y)) / 16) * (c === 1 ? -1 : 1);
    const img: RasterImage = { width: W, height: H, channels: 3, bitDepth: 8, data: new Uint8Array(W * H * 3) };
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) img.data[(y * W + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(truth(x, y, c))));
    const holes = holesOf(W, H, (x, y) => Math.abs(y - (10 + 0.7 * x)) < 1);
    // the hole's pixels hold a brown scratch: no window may read them
    const scratched: RasterImage = { ...img, data: img.data.map((v, i) => (holes[Math.floor(i / 3)] ? [140, 80, 40][i % 3]! : v)) };
    const r = await inpaint(scratched, maskOf(holes, W, H), { steps: 5, solver: 'posterior', seed: 3 });
    expect(r.windows.length).toBeGreaterThan(2);
    expect(r.windows.every((w) => w.kind === 'tile' && w.plan.sw === w.plan.w && w.plan.w === 128)).toBe(true);
    const old = planWindow(holeBox(holes, W, H)!, W, H, 128);
    expect(old.sw / old.w).toBeLessThan(0.5);
    const telea = await opencvInpaint(scratched, holes, 'telea');
    let sum = 0, n = 0, worst = 0;
    const border = { ours: 0, telea: 0, oursWorst: 0, teleaWorst: 0, n: 0 };
    for (let i = 0; i < W * H; i++) {
      if (!holes[i]) continue;
      const x = i % W, y = Math.floor(i / W);
      const atBorder = x < 2 || y < 2 || x >= W - 2 || y >= H - 2;
      for (let c = 0; c < 3; c++) {
        const e = Math.abs(r.image.data[i * 3 + c]! - img.data[i * 3 + c]!);
        sum += e;
        n++;
        if (!atBorder) {
          worst = Math.max(worst, e);
          continue;
        }
        // at the image border the fill the model's texture mean is built from (OpenCV's Telea) is
        // itself off by up to 8 levels: there the model only has to be about as good as Telea
        const et = Math.abs(telea.data[i * 3 + c]! - img.data[i * 3 + c]!);
        border.ours += e;
        border.telea += et;
        border.oursWorst = Math.max(border.oursWorst, e);
        border.teleaWorst = Math.max(border.teleaWorst, et);
        border.n++;
      }
    }
    expect(border.n).toBeGreaterThan(0);
    // measured: mean 3.9 levels against Telea's 4.0, worst 11 against 8
    expect(border.ours / border.n).toBeLessThanOrEqual(border.telea / border.n + 1);
    expect(border.oursWorst).toBeLessThanOrEqual(border.teleaWorst + 4);
    // measured: mean 1.5, worst interior 8 levels (Telea 2.0 and 6; the old planner: mean 11.7, worst 53)
    expect(sum / n).toBeLessThan(2.5);
    expect(worst).toBeLessThanOrEqual(10);
    const out = process.env.STRDIFFUSION_TILING_PNGS;
    if (out) {
      mkdirSync(out, { recursive: true });
      await writeImage(join(out, 'scratch_input.png'), scratched);
      await writeImage(join(out, 'scratch_ours.png'), r.image);
      await writeImage(join(out, 'scratch_telea.png'), telea);
    }
  });
});
