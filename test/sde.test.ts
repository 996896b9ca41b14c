import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runParity } from '../src/parity/runner.js';
import { IRSDE, matchingLoss, SeededNoise, TapeNoise } from '../src/sde/index.js';
import { tapeFromDir } from '../src/parity/tape.js';
import { writeNpy } from '../src/weights/npy.js';
import { fixture } from './fixtures.js';

const FIXTURES = fixture('parity');

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('sde parity (official fixtures)', () => {
  it('schedule_* and sde_ops_* pass', async () => {
    const r = await runParity(FIXTURES, { filter: /^(schedule|sde_ops)/ });
    const failed = r.results.filter((x) => !x.pass).map((x) => `${x.name}: ${x.error} > ${x.tolerance} ${x.detail ?? ''}`);
    expect(failed).toEqual([]);
    expect(r.skipped).toEqual([]);
    // 2 schedules × 6 checks + 2 op cases × (5 levels × 7 + noise_state + generate_states + tape + 4 tb + 2 loss)
    expect(r.passed).toBe(2 * 6 + 2 * (5 * 7 + 2 + 1 + 4 + 2));
    expect(r.failed).toBe(0);
  });
});

describe('IRSDE schedule (docs/design.md §1.2 reference numbers)', () => {
  const ref = {
    100: { dt: 0.1040938, th1: 1.69456e-3, thbarT: 50.899448, sbT: 0.11764559, sb1: 2.209574e-3, sT: 0.16635865 },
    400: { dt: 0.02621934, th1: 2.533197e-4, thbarT: 202.07672, sbT: 0.11764559, sb1: 4.289173e-4, sT: 0.16637681 },
  } as const;
  for (const T of [100, 400] as const) {
    it(`T=${T}`, () => {
      const s = new IRSDE({ T, maxSigma: 30, eps: 0.005, schedule: 'cosine' });
      const r = ref[T];
      expect(s.thetas.length).toBe(T + 1);
      expect(rel(s.dt, r.dt)).toBeLessThan(1e-6);
      expect(rel(s.thetas[1]!, r.th1)).toBeLessThan(1e-5);
      expect(rel(s.thetasCumsum[T]!, r.thbarT)).toBeLessThan(1e-6);
      expect(rel(s.sigmaBars[T]!, r.sbT)).toBeLessThan(1e-6);
      expect(rel(s.sigmaBars[1]!, r.sb1)).toBeLessThan(1e-5);
      expect(rel(s.sigmas[T]!, r.sT)).toBeLessThan(1e-6);
      expect(s.thetasCumsum[0]).toBe(0);
      expect(rel(s.thetas[T / 2]!, 0.50615633)).toBeLessThan(1e-6);
      expect(s.lambda).toBe(Math.fround(30 / 255));
      expect(Math.abs(Math.exp(-s.thetasCumsum[T]! * s.dt) - 0.005)).toBeLessThan(1e-8);
    });
  }
});

function randArray(n: number, rng: SeededNoise, lo = 0, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());
}

describe('IRSDE operators', () => {
  const shape = [2, 3, 4, 4];
  const n = 96;
  const rng = new SeededNoise(7);
  const x0 = randArray(n, rng);
  const xt = randArray(n, rng);
  const mu = randArray(n, rng);
  const eps = rng.normal(shape);

  for (const T of [100, 400]) {
    const sde = new IRSDE({ T });
    it(`T=${T}: predictX0 inverts the marginal sample; posterior variance = σ̄²_{t−1} − A²σ̄²_t`, () => {
      for (const t of [1, 2, Math.round(T / 4), Math.round(T / 2)]) {
        const xtm = sde.generateStates(x0, mu, t, eps, shape);
        const back = sde.predictX0(xtm, mu, eps, t, shape);
        // dividing by exp(−θ̄_t dt) scales the float32 rounding of x_t by 1/meanFactor
        const tol = 4e-7 / sde.meanFactor(t);
        for (let i = 0; i < n; i++) expect(Math.abs(back[i]! - x0[i]!)).toBeLessThan(tol);
        const clamped = sde.predictX0(xtm, mu, eps, t, shape, [0.2, 0.6]);
        for (let i = 0; i < n; i++) expect(clamped[i]).toBeCloseTo(Math.min(0.6, Math.max(0.2, back[i]!)), 6);
        // law of total variance for the OU posterior q(x_{t−1} | x_t, x0)
        const A = sde.optimumCoefs(t).A;
        const expected = sde.sigmaBar(t - 1) ** 2 - A * A * sde.sigmaBar(t) ** 2;
        expect(Math.abs(sde.posteriorStd(t) ** 2 - expected)).toBeLessThan(1e-6 * sde.sigmaBar(t - 1) ** 2 + 1e-9);
      }
      expect(sde.posteriorStd(1)).toBe(0);
      const z = new Float32Array(n).fill(1);
      const p = sde.posteriorStep(xt, x0, mu, 3, z, shape);
      const m = sde.reverseOptimumStep(xt, x0, mu, 3, shape);
      for (let i = 0; i < n; i++) expect(p[i]! - m[i]!).toBeCloseTo(sde.posteriorStd(3), 6);
    });
    it(`T=${T}: optimum step at t=1 returns x0 (coefficients exactly 0 and 1)`, () => {
      expect(sde.optimumCoefs(1)).toEqual({ A: 0, B: 1 });
      // The official float32 evaluates (x0 − μ)·1 + 0 + μ, so x0 comes back up to that one rounding.
      const y = sde.reverseOptimumStep(xt, x0, mu, 1, shape);
      for (let i = 0; i < n; i++) {
        expect(y[i]).toBe(Math.fround(Math.fround(x0[i]! - mu[i]!) + mu[i]!));
        expect(Math.abs(y[i]! - x0[i]!)).toBeLessThanOrEqual(6e-8);
      }
    });

    it(`T=${T}: docs/design.md §1.6 posterior coefficients`, () => {
      const c2 = sde.optimumCoefs(2);
      const cT = sde.optimumCoefs(T);
      const want = T === 100 ? [0.34334, 0.65661, 0.90116, 0.0010426] : [0.37248, 0.62751, 0.97412, 0.00026223];
      expect(c2.A).toBeCloseTo(want[0]!, 4);
      expect(c2.B).toBeCloseTo(want[1]!, 4);
      expect(cT.A).toBeCloseTo(want[2]!, 4);
      expect(rel(cT.B, want[3]!)).toBeLessThan(1e-4);
    });

    it(`T=${T}: coefficient helpers agree with the element-wise functions`, () => {
      for (const t of [1, 2, 3, T >> 1, T - 1, T]) {
        const score = sde.scoreFromNoise(eps, t, shape);
        const mean = sde.reverseSdeStepMean(xt, mu, score, t, shape);
        const c = sde.reverseMeanCoefs(t);
        const opt = sde.reverseOptimumStep(xt, x0, mu, t, shape);
        const oc = sde.optimumCoefs(t);
        const mb = sde.muBar(x0, mu, t, shape);
        const mc = sde.marginalCoefs(t);
        for (let i = 0; i < n; i++) {
          const scale = 1 + Math.abs(c.ceps * eps[i]!);
          expect(Math.abs(mean[i]! - (c.cx * xt[i]! + c.cmu * mu[i]! + c.ceps * eps[i]!))).toBeLessThan(1e-6 * scale);
          expect(Math.abs(opt[i]! - (mu[i]! + oc.A * (xt[i]! - mu[i]!) + oc.B * (x0[i]! - mu[i]!)))).toBeLessThan(1e-6);
          expect(Math.abs(mb[i]! - (mu[i]! + mc.mean * (x0[i]! - mu[i]!)))).toBeLessThan(1e-6);
        }
      }
    });

    it(`T=${T}: per-sample levels equal the scalar calls sample by sample`, () => {
      const tb = [2, T];
      const score = sde.scoreFromNoise(eps, tb, shape);
      const per = n / 2;
      for (const [b, t] of tb.entries()) {
        const sl = (a: Float32Array) => Array.from(a.subarray(b * per, (b + 1) * per));
        expect(sl(score)).toEqual(sl(sde.scoreFromNoise(eps, t, shape)));
        expect(sl(sde.muBar(x0, mu, tb, shape))).toEqual(sl(sde.muBar(x0, mu, t, shape)));
        expect(sl(sde.reverseOptimumStep(xt, x0, mu, tb, shape))).toEqual(sl(sde.reverseOptimumStep(xt, x0, mu, t, shape)));
        expect(sl(sde.reverseSdeStepMean(xt, mu, score, tb, shape))).toEqual(sl(sde.reverseSdeStepMean(xt, mu, score, t, shape)));
        expect(sl(sde.generateStates(x0, mu, tb, eps, shape))).toEqual(sl(sde.generateStates(x0, mu, t, eps, shape)));
        expect(sl(sde.forwardStep(xt, mu, tb, eps, shape))).toEqual(sl(sde.forwardStep(xt, mu, t, eps, shape)));
      }
      expect(() => sde.muBar(x0, mu, [2], shape)).toThrow(/per-sample levels/);
      expect(() => sde.muBar(x0, mu, T + 1, shape)).toThrow(/outside/);
    });

    it(`T=${T}: reverse step subtracts the noise term; mean step = step with z = 0`, () => {
      const t = 5;
      const score = sde.scoreFromNoise(eps, t, shape);
      const zero = new Float32Array(n);
      expect(Array.from(sde.reverseSdeStep(xt, mu, score, t, zero, shape))).toEqual(Array.from(sde.reverseSdeStepMean(xt, mu, score, t, shape)));
      const ones = new Float32Array(n).fill(1);
      const a = sde.reverseSdeStep(xt, mu, score, t, ones, shape);
      const m = sde.reverseSdeStepMean(xt, mu, score, t, shape);
      const expected = sde.sigmas[t]! * Math.sqrt(sde.dt);
      for (let i = 0; i < n; i++) expect(m[i]! - a[i]!).toBeCloseTo(expected, 6);
    });

    it(`T=${T}: trainingTimesteps covers exactly {2..T}`, () => {
      const r = new SeededNoise(3);
      const ts = sde.trainingTimesteps(20000, () => r.uniform());
      expect(Math.min(...ts)).toBe(2);
      expect(Math.max(...ts)).toBe(T);
      expect(ts.every((t) => Number.isInteger(t))).toBe(true);
      expect(sde.trainingTimesteps(3, () => 0)).toEqual([2, 2, 2]);
      expect(sde.trainingTimesteps(1, () => 1 - 2 ** -53)).toEqual([T]);
    });
  }

  it('matching loss weights the hole by 10', () => {
    const s = [1, 3, 2, 2];
    const pred = new Float32Array(12).fill(1);
    const tgt = new Float32Array(12).fill(0.5);
    const mask = Float32Array.from([1, 0, 1, 1]); // one hole pixel of four
    // per channel: 3 known × 0.5 + 1 hole × 10 × 0.5 = 6.5 over 4 pixels
    expect(matchingLoss(pred, tgt, mask, s, [1, 1, 2, 2])).toBeCloseTo(6.5 / 4, 6);
    expect(matchingLoss(pred, tgt, new Float32Array(4).fill(1), s, [1, 1, 2, 2])).toBeCloseTo(0.5, 6);
    expect(() => matchingLoss(pred, tgt, mask, s, [1, 1, 4, 1])).toThrow(/broadcast/);
  });
});

describe('noise sources', () => {
  it('SeededNoise is deterministic and roughly N(0,1)', () => {
    const a = new SeededNoise(42).normal([100000]);
    const b = new SeededNoise(42).normal([100000]);
    const c = new SeededNoise(43).normal([16]);
    expect(Array.from(a.subarray(0, 1000))).toEqual(Array.from(b.subarray(0, 1000)));
    expect(Array.from(a.subarray(0, 16))).not.toEqual(Array.from(c));
    let m = 0, v = 0, k = 0;
    for (const x of a) m += x;
    m /= a.length;
    for (const x of a) { v += (x - m) ** 2; k += (x - m) ** 4; }
    v /= a.length;
    k /= a.length * v * v;
    expect(Math.abs(m)).toBeLessThan(0.02);
    expect(Math.abs(v - 1)).toBeLessThan(0.02);
    expect(Math.abs(k - 3)).toBeLessThan(0.1);
    const u = new SeededNoise(1);
    let um = 0;
    for (let i = 0; i < 10000; i++) {
      const x = u.uniform();
      expect(x >= 0 && x < 1).toBe(true);
      um += x;
    }
    expect(Math.abs(um / 10000 - 0.5)).toBeLessThan(0.02);
  });

  it('TapeNoise replays in order and rejects shape mismatch / exhaustion', () => {
    const t = new TapeNoise([
      { shape: [1, 2], data: Float32Array.from([1, 2]) },
      { shape: [3], data: Float32Array.from([3, 4, 5]) },
    ]);
    expect(Array.from(t.normal([1, 2]))).toEqual([1, 2]);
    expect(() => t.normal([1, 3])).toThrow(/draw 1 was recorded with shape \[3\], requested \[1, 3\]/);
    expect(Array.from(t.normal([3]))).toEqual([3, 4, 5]);
    expect(() => t.normal([3])).toThrow(/exhausted/);
  });

  it('tapeFromDir reads NNNNN.npy in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tape-'));
    try {
      for (let i = 0; i < 3; i++) writeNpy(join(dir, `${String(i).padStart(5, '0')}.npy`), { shape: [2], data: Float32Array.from([i, -i]) });
      const t = tapeFromDir(dir);
      expect(t.length).toBe(3);
      expect(Array.from(t.normal([2]))).toEqual([0, -0]);
      expect(Array.from(t.normal([2]))).toEqual([1, -1]);
      expect(tapeFromDir(dir, 2).length).toBe(2);
      expect(() => tapeFromDir(dir, 4)).toThrow(/missing/);
      const real = tapeFromDir(join(FIXTURES, 'sde', 'ops_T100', 'tape'));
      expect(real.length).toBe(12);
      expect(real.normal([2, 3, 4, 4]).length).toBe(96);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
