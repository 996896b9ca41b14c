/**
 * The `bridge` fill (src/sde/bridge.ts): straight edges that run into a hole and continue each other
 * are joined across it; everything else keeps the Navier–Stokes fill.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { findBridges, bridgeFill } from '../src/sde/bridge.js';
import { holeFill, prepareFill } from '../src/sde/fill.js';
import type { F32Tensor } from '../src/util/tensor.js';
import { SeededNoise } from '../src/util/noise.js';

const S = 64;
const HW = S * S;
const BG = [0.2, 0.4, 0.2];
const STEM = [0.7, 0.9, 0.5];
/** the stem's centre line y = SLOPE·x + Y0, half width HALF; the hole a disc on it */
const SLOPE = 0.4;
const Y0 = 14;
const HALF = 3;
const CX = 32;
const CY = SLOPE * CX + Y0;
const R = 12;

/** Signed distance of (x, y) from the stem's centre line. */
const across = (x: number, y: number) => (y - SLOPE * x - Y0) / Math.hypot(1, SLOPE);

/**
 * A planar [3,S,S] photo: background BG, the stem (colour `left` for x < CX, `right` beyond; a
 * lighter top half so it has a profile) moved by `shift` px down on the right.
 */
function scene(opts: { left?: number[]; right?: number[]; shift?: number; stem?: boolean } = {}): Float32Array {
  const { left = STEM, right = STEM, shift = 0, stem = true } = opts;
  const x = new Float32Array(3 * HW);
  for (let yy = 0; yy < S; yy++) for (let xx = 0; xx < S; xx++) {
    const d = across(xx, yy - (xx >= CX ? shift : 0));
    const onStem = stem && Math.abs(d) <= HALF;
    const col = onStem ? (xx < CX ? left : right) : BG;
    for (let c = 0; c < 3; c++) x[c * HW + yy * S + xx] = col[c]! + (onStem && d < 0 ? 0.08 : 0) + (stem ? 0 : 0.3 * (xx / S));
  }
  return x;
}

function discMask(): Float32Array {
  const m = new Float32Array(HW).fill(1);
  for (let yy = 0; yy < S; yy++) for (let xx = 0; xx < S; xx++) if (Math.hypot(xx - CX, yy - CY) <= R) m[yy * S + xx] = 0;
  return m;
}

const tensor = (x: Float32Array): F32Tensor => ({ shape: [1, 3, S, S], data: x });
const maskTensor = (m: Float32Array): F32Tensor => ({ shape: [1, 1, S, S], data: m });
const ns = (x: Float32Array, m: Float32Array) => holeFill('ns', tensor(x), maskTensor(m));

/** Mean absolute error per channel against `col` over the hole pixels that pass `where`. */
function holeError(F: Float32Array, m: Float32Array, col: number[], where: (x: number, y: number) => boolean): number {
  let e = 0, n = 0;
  for (let p = 0; p < HW; p++) {
    const xx = p % S, yy = (p / S) | 0;
    if (m[p]! >= 0.5 || !where(xx, yy)) continue;
    for (let c = 0; c < 3; c++) e += Math.abs(F[c * HW + p]! - col[c]!);
    n += 3;
  }
  expect(n).toBeGreaterThan(0);
  return e / n;
}

beforeAll(async () => {
  await prepareFill('bridge');
});

describe('bridge fill', () => {
  it('joins a stem across a disc: both of its edges, parallel to it; the hole gets the stem and the background on their sides', () => {
    const x = scene();
    const m = discMask();
    const bridges = findBridges(x, ns(x, m), m, 3, S, S);
    expect(bridges).toHaveLength(2);
    const stemAngle = Math.atan(SLOPE);
    for (const b of bridges) {
      const a = Math.atan2(b.by - b.ay, b.bx - b.ax);
      const diff = Math.abs(Math.atan(Math.tan(a)) - stemAngle);
      expect(diff).toBeLessThan((4 * Math.PI) / 180);
      // the two edges of the stem: one on each side of its centre line, at its half width
      expect(Math.abs(Math.abs(across((b.ax + b.bx) / 2, (b.ay + b.by) / 2)) - HALF)).toBeLessThan(1.5);
    }
    const F = holeFill('bridge', tensor(x), maskTensor(m));
    const lower = STEM; // the stem's lower half (d > 0) has its own colour, the upper half is lighter
    const onStem = (xx: number, yy: number) => { const d = across(xx, yy); return d > 0.5 && d < HALF - 1; };
    const offStem = (xx: number, yy: number) => Math.abs(across(xx, yy)) > HALF + 4;
    expect(holeError(F, m, BG, offStem)).toBeLessThan(0.05);
    // the cut links keep the stem's colour out of the background beside it (uncut: 0.009)
    expect(holeError(F, m, BG, (xx, yy) => { const d = Math.abs(across(xx, yy)); return d > HALF + 5 && d < HALF + 10; })).toBeLessThan(0.002);
    // its shading carried across: the upper half stays lighter inside the hole too
    const upperHalf = (xx: number, yy: number) => { const d = across(xx, yy); return d < -0.5 && d > -HALF + 1; };
    expect(holeError(F, m, STEM.map((v) => v + 0.08), upperHalf)).toBeLessThan(0.025);
    expect(holeError(F, m, lower, onStem)).toBeLessThan(0.025);
    // what it fixes: Navier–Stokes leaves the middle of the stem far from its colour
    expect(holeError(ns(x, m), m, lower, (xx, yy) => onStem(xx, yy) && Math.abs(xx - CX) < 4)).toBeGreaterThan(0.08);
  });

  it('stays within the known range and writes only the hole', () => {
    const x = scene();
    const m = discMask();
    const F = holeFill('bridge', tensor(x), maskTensor(m));
    for (let c = 0; c < 3; c++) {
      let lo = Infinity, hi = -Infinity;
      for (let p = 0; p < HW; p++) if (m[p]! >= 0.5) { lo = Math.min(lo, x[c * HW + p]!); hi = Math.max(hi, x[c * HW + p]!); }
      for (let p = 0; p < HW; p++) {
        const v = F[c * HW + p]!;
        if (m[p]! >= 0.5) expect(v).toBe(0);
        else { expect(v).toBeGreaterThanOrEqual(lo); expect(v).toBeLessThanOrEqual(hi); }
      }
    }
  });

  it.each([
    ['no edge (a smooth ramp)', { stem: false }],
    ['the stem changes colour across the hole', { right: [0.9, 0.3, 0.3] }],
    ['the stem is offset across the hole (parallel, not collinear)', { shift: 14 }],
  ])('leaves the Navier–Stokes fill exactly as it is when nothing continues: %s', (_, opts) => {
    const x = scene(opts);
    const m = discMask();
    const base = ns(x, m);
    expect(findBridges(x, base, m, 3, S, S)).toEqual([]);
    const r = bridgeFill(x, m, base, 3, S, S);
    expect(r.fill).toBe(base);
    expect(holeFill('bridge', tensor(x), maskTensor(m))).toEqual(base);
  });

  it('bridges each sample of a batch on its own', () => {
    const a = scene();
    const b = scene({ stem: false });
    const m = discMask();
    const batch: F32Tensor = { shape: [2, 3, S, S], data: Float32Array.from([...a, ...b]) };
    const masks: F32Tensor = { shape: [2, 1, S, S], data: Float32Array.from([...m, ...m]) };
    const F = holeFill('bridge', batch, masks);
    expect(F.subarray(0, 3 * HW)).toEqual(holeFill('bridge', tensor(a), maskTensor(m)));
    expect(F.subarray(3 * HW)).toEqual(ns(b, m));
  });

  it('any size from 1 px and any hole shape: finite values within the known range, no throw', () => {
    const n = new SeededNoise(5);
    for (let k = 0; k < 60; k++) {
      const H = 1 + Math.floor(n.uniform() * 24), W = 1 + Math.floor(n.uniform() * 24);
      // stripes (edges everywhere) under a random blob or scattered hole pixels
      const x = Float32Array.from({ length: 3 * H * W }, (_, i) => (((i % (H * W)) % W) % 4 < 2 ? 0.9 : 0.1));
      const m = Float32Array.from({ length: H * W }, () => (n.uniform() < (k % 3) / 3 ? 0 : 1));
      const t: F32Tensor = { shape: [1, 3, H, W], data: x };
      const F = holeFill('bridge', t, { shape: [1, 1, H, W], data: m });
      for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) {
        const v = F[c * H * W + p]!;
        expect(Number.isFinite(v)).toBe(true);
        if (m[p] === 0 && m.some((mv) => mv === 1)) { expect(v).toBeGreaterThanOrEqual(0.1 - 1e-6); expect(v).toBeLessThanOrEqual(0.9 + 1e-6); }
      }
    }
  });
});
