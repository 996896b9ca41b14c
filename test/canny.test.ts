import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { runParity } from '../src/parity/runner.js';
import { readNpy } from '../src/weights/npy.js';
import {
  canny,
  expRN,
  fma,
  gaussianKernel1d,
  hypotLibm,
  rgbToGray,
  rgbToGrayNaive,
  structureOf,
  structureOfBatch,
  toUint8Trunc,
} from '../src/structure/index.js';
import { fixture } from './fixtures.js';

const FIXTURES = fixture('parity');

const sum = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
};

describe('canny parity (official fixtures)', () => {
  it('canny_* pass: trunc, gray, edges σ=2 and σ=3 exact', async () => {
    const r = await runParity(FIXTURES, { filter: /^canny/ });
    const failed = r.results.filter((x) => !x.pass).map((x) => `${x.name}: ${x.error} > ${x.tolerance} ${x.detail ?? ''}`);
    expect(failed).toEqual([]);
    expect(r.skipped).toEqual([]);
    expect(r.failed).toBe(0);
    // 4 cases × (trunc + gray + 2 edge maps)
    expect(r.passed).toBe(16);
  });
});

describe('canny unit behaviour', () => {
  it('vertical step edge gives a straight vertical line', () => {
    const H = 32;
    const W = 40;
    const img = new Float64Array(H * W);
    for (let i = 0; i < H; i++) {
      img[i * W + 20] = 0.5; // centre the edge on column 20
      for (let j = 21; j < W; j++) img[i * W + j] = 1;
    }
    for (const sigma of [1, 2, 3]) {
      const e = canny(img, H, W, sigma);
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < W; j++) {
          const inside = i > 0 && i < H - 1 && j === 20; // 1-pixel border always off
          expect(e[i * W + j]).toBe(inside ? 1 : 0);
        }
      }
    }
  });

  it('symmetric step: ties keep both columns, as skimage 0.19.3 does', () => {
    const H = 32;
    const W = 40;
    const img = new Float64Array(H * W);
    for (let i = 0; i < H; i++) for (let j = 20; j < W; j++) img[i * W + j] = 1;
    // per-column edge counts (cols 19, 20) of skimage 0.19.3 with a libm (correctly rounded) exp in
    // the Gaussian kernel; the asymmetry comes from last-bit ties in the NMS comparisons. Such exact
    // ties are sensitive to the kernel's last bits: numpy's AVX-512 exp (4 of the 17 σ=2 weights
    // differ by 1 ulp) gives [28, 28] for σ=2. Real photos (the fixtures) are not affected.
    const want: Record<number, [number, number]> = { 1: [30, 30], 2: [12, 22], 3: [28, 26] };
    for (const sigma of [1, 2, 3]) {
      const e = canny(img, H, W, sigma);
      const perCol = new Array<number>(W).fill(0);
      for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) perCol[j]! += e[i * W + j]!;
      expect([perCol[19], perCol[20]]).toEqual(want[sigma]);
      expect(sum(perCol)).toBe(want[sigma]![0] + want[sigma]![1]);
    }
  });

  it('constant image has no edges; tiny images do not crash', () => {
    const H = 20;
    const W = 17;
    expect(sum(canny(new Float64Array(H * W).fill(0.5), H, W, 2))).toBe(0);
    expect(sum(canny(new Float64Array(1).fill(0.3), 1, 1, 2))).toBe(0);
    expect(sum(canny(Float64Array.from([0, 1, 0, 1, 0]), 1, 5, 1))).toBe(0);
  });

  it('thresholds are validated like skimage', () => {
    expect(() => canny(new Float64Array(9), 3, 3, 1, 0.3, 0.2)).toThrow();
  });

  it('σ=3 gives fewer edge pixels than σ=2 on a real photo', () => {
    const g = readNpy(join(FIXTURES, 'canny/canny_camera_256/gray_f64.npy'));
    const [H, W] = g.shape as [number, number];
    const e2 = sum(canny(g.data as Float64Array, H, W, 2));
    const e3 = sum(canny(g.data as Float64Array, H, W, 3));
    expect(e2).toBe(2466);
    expect(e3).toBe(1643);
    expect(e3).toBeLessThan(e2);
  });

  it('256×256 runs in a few ms', () => {
    const g = readNpy(join(FIXTURES, 'canny/canny_camera_256/gray_f64.npy')).data as Float64Array;
    canny(g, 256, 256, 3); // warm-up
    const t0 = performance.now();
    const reps = 10;
    for (let i = 0; i < reps; i++) canny(g, 256, 256, 3);
    const ms = (performance.now() - t0) / reps;
  });
});

describe('gray conversion', () => {
  it('truncates (torch byte cast), not rounds', () => {
    const v = Float32Array.from([0, 1, 0.5, 0.999, 0.0019, 254.6 / 255, 1 / 255, 0.2]);
    const u = toUint8Trunc(v);
    expect([...u]).toEqual([0, 255, 127, 254, 0, 254, 1, 51]);
    // rounding would give 128 for 0.5 and 255 for 254.6/255
    expect(Math.round(0.5 * 255)).toBe(128);
    // float32 product then trunc: fround(0.2f·255) = 51 exactly
    expect(Math.fround(Math.fround(0.2) * 255)).toBe(51);
    // u8/255 in float32 round-trips exactly
    const all = new Float32Array(256);
    for (let k = 0; k < 256; k++) all[k] = k / 255;
    expect([...toUint8Trunc(all)]).toEqual([...Array(256).keys()]);
  });

  it('rgb2gray = (0.2125 R + 0.7154 G + 0.0721 B)/255 within 1 ulp of the naive form', () => {
    const H = 16;
    const W = 16;
    const u8 = new Uint8Array(3 * H * W);
    for (let i = 0; i < u8.length; i++) u8[i] = (i * 37 + 11) & 255;
    const g = rgbToGray(u8, H, W);
    const n = rgbToGrayNaive(u8, H, W);
    for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - n[i]!)).toBeLessThanOrEqual(2.3e-16);
    expect(rgbToGray(Uint8Array.from([255, 255, 255]), 1, 1)[0]).toBeCloseTo(1, 15);
  });

  it('fixture gray is reproduced bit-exactly from the truncated uint8 (chelsea, float-resized)', () => {
    const dir = join(FIXTURES, 'canny/canny_chelsea_64');
    const rgb = readNpy(join(dir, 'rgb_f32.npy')).data as Float32Array;
    const ref = readNpy(join(dir, 'gray_f64.npy')).data as Float64Array;
    const s = structureOf(rgb, 64, 64, 2);
    expect(s.gray64).toEqual(ref);
    expect(s.gray).toEqual(Float32Array.from(ref));
    const e2 = readNpy(join(dir, 'edge_s2.npy')).data as Uint8Array;
    expect(s.edge).toEqual(Float32Array.from(e2));
    // batch helper: two copies
    const b = new Float32Array(2 * rgb.length);
    b.set(rgb, 0);
    b.set(rgb, rgb.length);
    const sb = structureOfBatch(b, 2, 64, 64, 2);
    expect(sb.edge.subarray(64 * 64)).toEqual(s.edge);
    expect(sb.gray.subarray(0, 64 * 64)).toEqual(s.gray);
  });
});

describe('numeric helpers', () => {
  it('fma rounds once', () => {
    const a = 1 + 2 ** -30;
    // a·a = 1 + 2^-29 + 2^-60: a plain product loses 2^-60
    expect(fma(a, a, -1)).toBe(2 ** -29 + 2 ** -60);
    expect(fma(2, 3, 4)).toBe(10);
    expect(fma(0.1, 10, -1)).toBe(5.551115123125783e-17);
  });

  it('expRN is correctly rounded where Math.exp is not (σ=2 kernel)', () => {
    // exp(-0.125): correctly rounded 0.8824969025845955 (= glibc; numpy's AVX-512 exp gives ...953)
    expect(expRN(-0.125)).toBe(0.8824969025845955);
    expect(expRN(0)).toBe(1);
    const k = gaussianKernel1d(2, 8);
    expect(k.length).toBe(17);
    expect(Math.abs(sum(k) - 1)).toBeLessThan(1e-15);
    for (let i = 0; i < 8; i++) expect(k[i]).toBe(k[16 - i]);
  });

  it('hypotLibm agrees with sqrt for Pythagorean triples and with Math.hypot to 1 ulp', () => {
    expect(hypotLibm(3, 4)).toBe(5);
    expect(hypotLibm(-5, 12)).toBe(13);
    expect(hypotLibm(0, 0.25)).toBe(0.25);
    for (let i = 1; i < 100; i++) {
      const x = Math.sin(i) * 0.7;
      const y = Math.cos(i * 1.3) * 0.2;
      expect(Math.abs(hypotLibm(x, y) - Math.hypot(x, y))).toBeLessThanOrEqual(2.3e-16);
    }
  });
});
