/**
 * The hole fill of the texture SDE mean (src/sde/fill.ts): `zero` is the official μ = GT ⊙ m bit
 * for bit, `mean` and `telea` fill the hole from the known pixels only; training, the sampler and
 * model.json use it consistently.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FILLS, filledMean, holeFill, isFill, parseFill, prepareFill } from '../src/sde/fill.js';
import { IRSDE } from '../src/sde/irsde.js';
import { SeededNoise } from '../src/util/noise.js';
import { drawTraining, maskMul, prepareObjective, type ObjectiveBatch } from '../src/train/objectives.js';
import { makeContext, type SamplerNets } from '../src/sampler/strdiffusion.js';
import { modelFill } from '../src/model/checkpoints.js';
import { opencvInpaint } from '../src/eval/baselines.js';
import { loadedOpenCv } from '../src/image/opencv.js';
import type { F32Tensor } from '../src/util/tensor.js';

const fr = Math.fround;

/** A [B,C,H,W] image with a hole: rectangle [y0,y1)×[x0,x1) per sample (mask [B,1,H,W], 1 known). */
function rectMask(B: number, H: number, W: number, rect: [number, number, number, number]): F32Tensor {
  const [y0, y1, x0, x1] = rect;
  const data = new Float32Array(B * H * W).fill(1);
  for (let b = 0; b < B; b++) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[(b * H + y) * W + x] = 0;
  return { shape: [B, 1, H, W], data };
}

function randomImage(B: number, C: number, H: number, W: number, seed: number): F32Tensor {
  const n = new SeededNoise(seed);
  return { shape: [B, C, H, W], data: Float32Array.from({ length: B * C * H * W }, () => n.uniform()) };
}

/** the same image with garbage (big, negative, NaN-free) values in the hole */
function withGarbageInHole(x: F32Tensor, m: F32Tensor): F32Tensor {
  const [B, C, H, W] = x.shape as number[] as [number, number, number, number];
  const hw = H * W;
  const data = Float32Array.from(x.data);
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) for (let p = 0; p < hw; p++) if (m.data[b * hw + p] === 0) data[(b * C + c) * hw + p] = ((p * 7919 + c * 31) % 13) - 6;
  return { shape: [...x.shape], data };
}

beforeAll(async () => {
  await prepareFill('telea');
});

describe('fill options', () => {
  it('FILLS / isFill / parseFill', () => {
    expect([...FILLS]).toEqual(['zero', 'mean', 'telea', 'ns', 'bridge']);
    for (const f of FILLS) expect(isFill(f)).toBe(true);
    expect(isFill('black')).toBe(false);
    expect(isFill(undefined)).toBe(false);
    expect(() => parseFill('blur', '--fill')).toThrow(/^--fill must be one of zero, mean, telea, ns, bridge \(got "blur"\)$/);
  });

  it("'zero' is GT ⊙ m bit for bit", () => {
    const x = randomImage(2, 3, 9, 11, 1);
    const m = rectMask(2, 9, 11, [2, 6, 3, 8]);
    const mu = filledMean('zero', x, m);
    expect(Buffer.from(mu.buffer).equals(Buffer.from(maskMul(x, m).buffer))).toBe(true);
    for (let i = 0; i < mu.length; i++) {
      const p = i % 99;
      const b = Math.floor(i / (3 * 99));
      expect(Object.is(mu[i], fr(x.data[i]! * m.data[b * 99 + p]!))).toBe(true);
    }
    expect(holeFill('zero', x, m).every((v) => v === 0)).toBe(true);
  });

  it("'mean' fills the hole with each sample's known mean per channel; known pixels stay bit-identical", () => {
    const [B, C, H, W] = [2, 3, 10, 12];
    const hw = H * W;
    const x = randomImage(B, C, H, W, 2);
    const m = rectMask(B, H, W, [1, 7, 2, 9]);
    const mu = filledMean('mean', x, m);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        const o = (b * C + c) * hw;
        let s = 0;
        let n = 0;
        for (let p = 0; p < hw; p++) if (m.data[b * hw + p] === 1) (s += x.data[o + p]!), n++;
        const mean = fr(s / n);
        for (let p = 0; p < hw; p++) {
          if (m.data[b * hw + p] === 1) expect(Object.is(mu[o + p], x.data[o + p])).toBe(true);
          else expect(mu[o + p]).toBe(mean);
        }
      }
    }
    // the hole pixels of the input are never read
    expect(filledMean('mean', withGarbageInHole(x, m), m)).toEqual(mu);
  });

  it.each(['telea', 'ns'] as const)("'%s' fills a linear ramp close to the ramp, within the known range and continuous at the boundary", (fill) => {
    const [B, C, H, W] = [1, 3, 40, 40];
    const hw = H * W;
    // channel 0: horizontal ramp, 1: vertical ramp, 2: diagonal ramp (values in [0.1, 0.9])
    const ramp = (c: number, y: number, x: number) => 0.1 + 0.8 * (c === 0 ? x / (W - 1) : c === 1 ? y / (H - 1) : (x + y) / (W + H - 2));
    const x: F32Tensor = { shape: [B, C, H, W], data: new Float32Array(B * C * hw) };
    for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) x.data[c * hw + y * W + xx] = ramp(c, y, xx);
    // OpenCV's Navier–Stokes is poor in a hole at the image's corner (measured mean error 0.09,
    // a 0.35 jump at the boundary), so only Telea is held to the corner case.
    const rects: [number, number, number, number][] = fill === 'telea' ? [[12, 26, 14, 28], [0, 10, 30, 40]] : [[12, 26, 14, 28]];
    for (const rect of rects) {
      const m = rectMask(B, H, W, rect);
      const mu = filledMean(fill, x, m);
      const F = holeFill(fill, x, m);
      const meanMu = filledMean('mean', x, m);
      let err = 0;
      let errMean = 0;
      let holes = 0;
      let worst = 0;
      let worstEdge = 0;
      for (let c = 0; c < C; c++) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let p = 0; p < hw; p++) if (m.data[p] === 1) (lo = Math.min(lo, x.data[c * hw + p]!)), (hi = Math.max(hi, x.data[c * hw + p]!));
        for (let y = 0; y < H; y++) {
          for (let xx = 0; xx < W; xx++) {
            const p = y * W + xx;
            const v = mu[c * hw + p]!;
            if (m.data[p] === 1) {
              expect(Object.is(v, x.data[c * hw + p])).toBe(true);
              expect(F[c * hw + p]).toBe(0);
              continue;
            }
            expect(v).toBe(F[c * hw + p]);
            expect(v).toBeGreaterThanOrEqual(fr(lo));
            expect(v).toBeLessThanOrEqual(fr(hi));
            const e = Math.abs(v - ramp(c, y, xx));
            err += e;
            errMean += Math.abs(meanMu[c * hw + p]! - ramp(c, y, xx));
            holes++;
            worst = Math.max(worst, e);
            // continuity: a hole pixel next to a known pixel is close to it
            for (const [dy, dx] of [[0, 1], [0, -1], [1, 0], [-1, 0]]) {
              const yy = y + dy;
              const x2 = xx + dx;
              if (yy < 0 || yy >= H || x2 < 0 || x2 >= W || m.data[yy * W + x2] !== 1) continue;
              worstEdge = Math.max(worstEdge, Math.abs(v - x.data[c * hw + yy * W + x2]!));
            }
          }
        }
      }
      // A ramp step is 0.8/39 ≈ 0.02 per pixel. Telea propagates the boundary inwards and flattens
      // the middle of a large hole somewhat (measured: mean error 0.03 / 0.04, worst 0.11 / 0.16
      // for the centred 14×14 and the corner 10×10 hole), better than the mean colour; next
      // to the boundary it is within about two ramp steps of the known neighbour.
      expect(err / holes).toBeLessThan(0.06);
      expect(err).toBeLessThan(0.7 * errMean); // measured 0.44 and 0.18 of the mean fill's error (Telea)
      expect(worst).toBeLessThan(0.2);
      expect(worstEdge).toBeLessThan(0.045);
      // hole values of the input are never read
      expect(filledMean(fill, withGarbageInHole(x, m), m)).toEqual(mu);
    }
  });

  /** OpenCV's inpaint called directly on each channel of x as 16-bit (the known range stretched over
   * 0…65535) with `under(c)` (a value of x's range) in the hole, then `passes − 1` times more with the
   * hole holding the previous result; mapped back to x's range. */
  function directInpaint(x: F32Tensor, m: F32Tensor, method: 'telea' | 'ns', under: (c: number) => number, passes: number): Float32Array {
    const cv = loadedOpenCv()!;
    const [, C, H, W] = x.shape as [number, number, number, number];
    const hw = H * W;
    const src = new cv.Mat(H, W, cv.CV_16UC1);
    const mask = new cv.Mat(H, W, cv.CV_8UC1);
    const dst = new cv.Mat();
    const out = new Float32Array(C * hw);
    try {
      for (let p = 0; p < hw; p++) mask.data[p] = m.data[p]! < 0.5 ? 255 : 0;
      for (let c = 0; c < C; c++) {
        const known = Array.from(x.data.subarray(c * hw, (c + 1) * hw)).filter((_, p) => m.data[p]! >= 0.5);
        const lo = Math.min(...known);
        const hi = Math.max(...known);
        const to16 = (v: number) => Math.round(((v - lo) * 65535) / (hi - lo));
        for (let p = 0; p < hw; p++) src.data16U[p] = to16(m.data[p]! < 0.5 ? under(c) : x.data[c * hw + p]!);
        for (let pass = 0; pass < passes; pass++) {
          if (pass > 0) for (let p = 0; p < hw; p++) if (m.data[p]! < 0.5) src.data16U[p] = dst.data16U[p]!;
          cv.inpaint(src, mask, dst, 3, method === 'ns' ? cv.INPAINT_NS : cv.INPAINT_TELEA);
        }
        for (let p = 0; p < hw; p++) if (m.data[p]! < 0.5) out[c * hw + p] = Math.fround(lo + (dst.data16U[p]! * (hi - lo)) / 65535);
      }
      return out;
    } finally {
      src.delete();
      mask.delete();
      dst.delete();
    }
  }

  // An 8-bit photo (k/255 values) with a hole touching the top border, where OpenCV reads under its mask.
  const [H, W] = [32, 32];
  const photo: F32Tensor = { shape: [1, 3, H, W], data: Float32Array.from({ length: 3 * H * W }, (_, i) => Math.round(255 * (0.5 + 0.3 * Math.sin((i % W) / 4 + Math.floor(i / W) / 5 + Math.floor(i / (H * W))))) / 255) };
  const borderHole = rectMask(1, H, W, [0, 14, 6, 20]);

  for (const method of ['telea', 'ns'] as const) {
    it(`'${method}' is OpenCV's 16-bit ${method} per channel on the photo with its hole pre-filled by the known mean, then twice on its own result, never by what lies there`, () => {
      const hw = H * W;
      const mean = [0, 1, 2].map((c) => {
        let s = 0;
        let n = 0;
        for (let p = 0; p < hw; p++) if (borderHole.data[p] === 1) (s += photo.data[c * hw + p]!), n++;
        return s / n;
      });
      const F = holeFill(method, photo, borderHole);
      const ref = directInpaint(photo, borderHole, method, (c) => mean[c]!, 3);
      const onePass = directInpaint(photo, borderHole, method, (c) => mean[c]!, 1);
      for (let i = 0; i < F.length; i++) expect(Math.abs(F[i]! - ref[i]!)).toBeLessThan(1e-6);
      // OpenCV itself does read under its mask: black there gives another fill
      const withBlack = directInpaint(photo, borderHole, method, () => 0, 1);
      let differs = 0;
      let refined = 0;
      for (let i = 0; i < F.length; i++) {
        if (Math.abs(withBlack[i]! - onePass[i]!) > 2 / 255) differs++;
        if (onePass[i] !== ref[i]) refined++;
      }
      expect(differs).toBeGreaterThan(0);
      expect(refined).toBeGreaterThan(0);
    });
  }

  it("the eval's telea / ns baselines are exactly the fills of μ and never see the hole's pixels", async () => {
    const hw = H * W;
    const rgb = new Uint8Array(hw * 3);
    for (let p = 0; p < hw; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.round(photo.data[c * hw + p]! * 255);
    const holes = Uint8Array.from({ length: hw }, (_, p) => (borderHole.data[p]! < 0.5 ? 1 : 0));
    const junk = Uint8Array.from(rgb, (v, i) => (holes[Math.floor(i / 3)] ? (i * 37) & 255 : v));
    let dTelea = 0;
    for (const method of ['telea', 'ns'] as const) {
      const a = await opencvInpaint({ width: W, height: H, channels: 3, bitDepth: 8, data: rgb }, holes, method);
      const b = await opencvInpaint({ width: W, height: H, channels: 3, bitDepth: 8, data: junk }, holes, method);
      expect(b.data).toEqual(a.data);
      const F = holeFill(method, photo, borderHole);
      const other = holeFill(method === 'ns' ? 'telea' : 'ns', photo, borderHole);
      for (let p = 0; p < hw; p++) {
        for (let c = 0; c < 3; c++) {
          if (!holes[p]) expect(a.data[p * 3 + c]).toBe(rgb[p * 3 + c]);
          else expect(a.data[p * 3 + c]).toBe(Math.round(F[c * hw + p]! * 255));
          if (holes[p]) dTelea += Math.abs(F[c * hw + p]! - other[c * hw + p]!) / 2;
        }
      }
    }
    expect(dTelea / (3 * 14 * 14)).toBeGreaterThan(0.005); // and Navier–Stokes is another fill than Telea
  });

  it("'telea', 'ns' and 'mean' leave a sample without hole (or without known pixels) at the official μ", () => {
    const x = randomImage(2, 3, 8, 8, 3);
    const m: F32Tensor = { shape: [2, 1, 8, 8], data: new Float32Array(128) };
    m.data.fill(1, 0, 64); // sample 0: no hole; sample 1: all hole
    for (const f of ['mean', 'telea', 'ns', 'bridge'] as const) expect(filledMean(f, x, m)).toEqual(maskMul(x, m));
  });
});

describe('fill in training and sampling', () => {
  const sde = new IRSDE({ T: 20 });
  const [B, H, W] = [2, 16, 16];
  const GT = randomImage(B, 3, H, W, 4);
  const gray = randomImage(B, 1, H, W, 5);
  const edge = randomImage(B, 1, H, W, 6);
  const mask = rectMask(B, H, W, [4, 12, 3, 10]);

  it("prepareObjective: 'zero' (and no fill) is the official preparation; other fills change μ, y_t, y*, the anchor, not the structure side", () => {
    const base: ObjectiveBatch = { GT, gray, edge, mask };
    const draws = drawTraining('discriminator', sde, base, new SeededNoise(7), [2, 15]);
    const off = prepareObjective('discriminator', sde, base, draws);
    const zero = prepareObjective('discriminator', sde, { ...base, fill: 'zero' }, draws);
    expect(zero).toEqual(off);
    expect(off.mu.data).toEqual(maskMul(GT, mask));
    for (const fill of ['mean', 'telea'] as const) {
      const p = prepareObjective('discriminator', sde, { ...base, fill }, draws);
      const mu = filledMean(fill, GT, mask);
      expect(p.mu.data).toEqual(mu);
      expect(p.state.data).toEqual(sde.generateStates(GT.data, mu, draws.t, draws.z, GT.shape));
      expect(p.target.data).toEqual(sde.reverseOptimumStep(p.state.data, GT.data, mu, draws.t, GT.shape));
      const a = maskMul(p.target, mask);
      const b = maskMul(p.state, mask, true);
      expect(p.anchor!.data).toEqual(Float32Array.from(a, (v, i) => fr(v + b[i]!)));
      expect(p.S).toEqual(off.S);
      expect(p.mu.data).not.toEqual(off.mu.data);
    }
    // the structure objective ignores the fill (μS = edge ⊙ m)
    const ds = drawTraining('structure', sde, base, new SeededNoise(8), [3, 9]);
    expect(prepareObjective('structure', sde, { ...base, fill: 'telea' }, ds)).toEqual(prepareObjective('structure', sde, base, ds));
    expect(() => prepareObjective('texture', sde, { ...base, fill: 'blur' as never }, draws)).toThrow(/fill must be one of zero, mean, telea, ns, bridge \(got "blur"\)/);
  });

  it('the sampler builds μ with the fill from the known pixels of the input', () => {
    const nets = { structure: {}, texture: {}, discriminator: {} } as unknown as SamplerNets;
    const inputs = { image: { shape: [1, 3, H, W], data: GT.data.slice(0, 3 * H * W) }, mask: { shape: [1, 1, H, W], data: mask.data.slice(0, H * W) }, gray: { shape: [1, 1, H, W], data: gray.data.slice(0, H * W) }, edge: { shape: [1, 1, H, W], data: edge.data.slice(0, H * W) } };
    const official = makeContext(sde, nets, inputs);
    expect(official.mu).toEqual(maskMul(inputs.image, inputs.mask));
    expect(makeContext(sde, nets, inputs, { fill: 'zero' }).mu).toEqual(official.mu);
    for (const fill of ['mean', 'telea'] as const) {
      const ctx = makeContext(sde, nets, inputs, { fill });
      expect(ctx.mu).toEqual(filledMean(fill, inputs.image, inputs.mask));
      expect(ctx.muS).toEqual(official.muS);
      expect(makeContext(sde, nets, { ...inputs, image: withGarbageInHole(inputs.image, inputs.mask) }, { fill }).mu).toEqual(ctx.mu);
    }
    expect(() => makeContext(sde, nets, inputs, { fill: 'blur' as never })).toThrow(/unknown fill "blur"/);
  });
});

describe('fill in model.json', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fill-'));
    return () => rmSync(dir, { recursive: true, force: true });
  });
  const folder = (name: string, meta: object | null) => {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    if (meta) writeFileSync(join(d, 'model.json'), JSON.stringify(meta));
    return d;
  };

  it("defaults to 'zero', reads the texture / discriminator folders' fill, and rejects a bad value in one line", () => {
    expect(modelFill([folder('none', null)])).toBe('zero');
    expect(modelFill([folder('nofill', { T: 10 })])).toBe('zero');
    expect(modelFill([folder('one', { T: 10, fill: 'telea' })])).toBe('telea');
    // three run folders: the structure run's own value does not count against the texture's
    const s = folder('s', { T: 10, fill: 'zero' });
    const t = folder('t', { T: 10, fill: 'mean' });
    const d = folder('d', { T: 10, fill: 'mean' });
    const files = { structure: join(s, 'structure.safetensors'), texture: join(t, 'texture.safetensors'), discriminator: join(d, 'discriminator.safetensors') };
    expect(modelFill([s, t, d], files)).toBe('mean');
    const d2 = folder('d2', { T: 10, fill: 'telea' });
    expect(() => modelFill([s, t, d2], { ...files, discriminator: join(d2, 'discriminator.safetensors') })).toThrow(/disagree on the fill/);
    const bad = folder('bad', { T: 10, fill: 'blur' });
    let msg = '';
    try {
      modelFill([bad]);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toBe(`${join(bad, 'model.json')}: fill must be one of "zero", "mean", "telea", "ns", "bridge" (got "blur")`);
    expect(msg.includes('\n')).toBe(false);
  });
});
