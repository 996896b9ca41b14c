/**
 * The fast solvers against closed forms (issue 20): the jump coefficients, the grids, and samples
 * of data whose optimal denoiser is known exactly under the mean-reverting SDE (a point mass, a
 * Gaussian, a two-Gaussian mixture), driven through sampler/process.ts with that denoiser as the
 * "network".
 */
import { describe, it, expect } from 'vitest';
import { IRSDE, SeededNoise } from '../src/sde/index.js';
import { affineStep, forwardJumpCoefs, logSnr, posteriorJumpCoefs } from '../src/sde/jump.js';
import { fullGrid, samplingGrid, SPACINGS } from '../src/sampler/grid.js';
import { solverOf, type SolverDef } from '../src/sampler/solvers/index.js';
import { dataPrediction } from '../src/sampler/solvers/types.js';
import { sampleProcess, type Denoiser } from '../src/sampler/process.js';
import { SOLVERS } from '../src/options.js';
import { samplingOf } from '../src/inpaint/index.js';

const T = 100;
const sde = new IRSDE({ T });
const JUMP_SOLVERS = SOLVERS.filter((s) => s !== 'sde').map(solverOf);
const STEP_COUNTS = [T, 20, 10, 5];
const MU = 0.3;

describe('closed-form jumps', () => {
  it('one level down, the posterior jump is the one-step posterior of the official code', () => {
    for (const s of [1, 2, 37, T]) {
      const j = posteriorJumpCoefs(sde, s, s - 1);
      const o = sde.optimumCoefs(s);
      // the official coefficients are computed in float32 (1 − C² with C near 1 at low levels): agreement to its rounding
      const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-3);
      expect(rel(j.A, o.A)).toBeLessThan(5e-4);
      expect(rel(j.B, o.B)).toBeLessThan(5e-4);
      expect(rel(j.std, sde.posteriorStd(s))).toBeLessThan(5e-4);
    }
    const end = posteriorJumpCoefs(sde, 40, 0);
    expect([end.A, end.B, end.std]).toEqual([0, 1, 0]);
  });

  it('forward jumps compose: t → r → s has the mean factor and variance of t → s', () => {
    const a = forwardJumpCoefs(sde, 10, 35);
    const b = forwardJumpCoefs(sde, 35, 80);
    const c = forwardJumpCoefs(sde, 10, 80);
    expect(a.a * b.a).toBeCloseTo(c.a, 6);
    expect(b.a * b.a * a.std * a.std + b.std * b.std).toBeCloseTo(c.std * c.std, 6);
  });

  it('log-SNR falls with the level and is infinite at 0', () => {
    for (let t = 1; t < T; t++) expect(logSnr(sde, t)).toBeGreaterThan(logSnr(sde, t + 1));
    expect(logSnr(sde, 0)).toBe(Infinity);
    expect(() => posteriorJumpCoefs(sde, 3, 3)).toThrow(/s > t/);
  });
});

describe('sampling grids', () => {
  it('every spacing gives N + 1 distinct levels from T down to 0; N = T is the full grid', () => {
    for (const kind of SPACINGS) {
      for (const N of [1, 2, 5, 10, 20, 99, T]) {
        const g = samplingGrid(sde, N, kind);
        expect(g.length, `${kind} ${N}`).toBe(N + 1);
        expect(g[0]).toBe(T);
        expect(g[N]).toBe(0);
        for (let i = 1; i <= N; i++) expect(g[i]!).toBeLessThan(g[i - 1]!);
      }
      expect(samplingGrid(sde, T, kind)).toEqual(fullGrid(T));
    }
    expect(samplingGrid(sde, 5, 'uniform')).toEqual([100, 80, 60, 40, 20, 0]);
    expect(samplingGrid(sde, 5, 'quadratic')).toEqual([100, 64, 36, 16, 4, 0]);
    // log-SNR puts its last non-zero level at 1 and spends more steps at low noise than uniform
    const l = samplingGrid(sde, 10, 'logsnr');
    expect(l[9]).toBe(1);
    expect(l.filter((t) => t > 0 && t <= 20).length).toBeGreaterThan(2);
    expect(() => samplingGrid(sde, T + 1)).toThrow(/from 1 to T = 100/);
    expect(() => samplingGrid(sde, 0)).toThrow(/from 1 to T/);
  });
});

// ---- analytic data -------------------------------------------------------------------------

interface Component {
  w: number;
  m: number;
  s: number;
}

/** The optimal ε̂ for data x0 ~ Σ w N(m, s²) (per element) under the marginal u_t = e_t d + σ̄_t ε. */
function mixtureDenoiser(comps: Component[]): Denoiser {
  return (x, s) => {
    const e = sde.meanFactor(s);
    const sb = sde.sigmaBar(s);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const u = x[i]! - MU;
      let norm = 0;
      let x0 = 0;
      const logs = comps.map((c) => {
        const V = e * e * c.s * c.s + sb * sb;
        const r = u - e * (c.m - MU);
        return Math.log(c.w) - 0.5 * Math.log(V) - (r * r) / (2 * V);
      });
      const top = Math.max(...logs);
      comps.forEach((c, k) => {
        const V = e * e * c.s * c.s + sb * sb;
        const r = Math.exp(logs[k]! - top);
        norm += r;
        x0 += r * (c.m + ((e * c.s * c.s) / V) * (u - e * (c.m - MU)));
      });
      x0 /= norm;
      out[i] = (u - e * (x0 - MU)) / sb;
    }
    return out;
  };
}

/** n exact draws of the level-T marginal of the mixture (the sampler's start). */
function terminal(comps: Component[], n: number, seed: number): Float32Array {
  const noise = new SeededNoise(seed);
  const z = noise.normal([n]);
  const zx = noise.normal([n]);
  const pick = noise.normal([n]);
  const e = sde.meanFactor(T);
  const sb = sde.sigmaBar(T);
  return Float32Array.from(z, (v, i) => {
    // component by the normal CDF of a standard draw: Φ(pick) is uniform
    const u = 0.5 * (1 + erf(pick[i]! / Math.SQRT2));
    let k = 0;
    for (let acc = comps[0]!.w; u > acc && k < comps.length - 1; acc += comps[++k]!.w);
    const c = comps[k]!;
    return MU + e * (c.m + c.s * zx[i]! - MU) + sb * v;
  });
}

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7): plenty for picking components
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

function moments(a: Float32Array): { mean: number; v: number } {
  let m = 0;
  for (const x of a) m += x;
  m /= a.length;
  let v = 0;
  for (const x of a) v += (x - m) ** 2;
  return { mean: m, v: v / (a.length - 1) };
}

async function run(solver: SolverDef, comps: Component[], grid: number[], n: number, init?: Float32Array): Promise<{ init: Float32Array; out: Float32Array }> {
  const x = init ?? terminal(comps, n, 11);
  const out = await sampleProcess({ sde, denoise: mixtureDenoiser(comps), mu: new Float32Array(n).fill(MU), init: x, grid, solver, noise: new SeededNoise(5), shape: [n] });
  return { init: x, out };
}

/** The posterior solver with its data coefficient B off by 5 %: the tests below must catch it. */
const mutant: SolverDef = {
  ...solverOf('posterior'),
  step(inp) {
    const z = inp.noise.normal([...inp.shape]);
    const x0 = dataPrediction(inp);
    const c = posteriorJumpCoefs(inp.sde, inp.s, inp.t);
    return { x: affineStep(inp.x, inp.mu, x0, { ...c, B: c.B * 1.05 }, z), history: { x0, s: inp.s } };
  },
};

/** Worst z-score of the marginal at the grid level `stop` (mean and variance), for data at one point c. */
async function pointMassZ(solver: SolverDef, N: number, spacing: (typeof SPACINGS)[number], n = 20000): Promise<number> {
  const c = 0.8;
  const full = samplingGrid(sde, N, spacing);
  const grid = full.slice(0, Math.max(2, Math.ceil(full.length / 2)));
  const stop = grid[grid.length - 1]!;
  const { out } = await run(solver, [{ w: 1, m: c, s: 0 }], grid, n);
  const e = sde.meanFactor(stop);
  const sb = sde.sigmaBar(stop);
  const { mean, v } = moments(out);
  const zMean = Math.abs(mean - (MU + e * (c - MU))) / (sb / Math.sqrt(n));
  const zVar = solver.stochastic ? Math.abs(v - sb * sb) / (sb * sb * Math.sqrt(2 / n)) : 0;
  if (!solver.stochastic) {
    // deterministic: every sample follows its exact probability-flow path u_t = e_t d + (σ̄_t/σ̄_T)(u_T − e_T d)
    const { init } = await run(solver, [{ w: 1, m: c, s: 0 }], grid, 256);
    const { out: o } = await run(solver, [{ w: 1, m: c, s: 0 }], grid, 256, init);
    let worst = 0;
    for (let i = 0; i < o.length; i++) {
      const exact = MU + e * (c - MU) + (sb / sde.sigmaBar(T)) * (init[i]! - MU - sde.meanFactor(T) * (c - MU));
      worst = Math.max(worst, Math.abs(o[i]! - exact));
    }
    return worst < 2e-5 ? 0 : Infinity;
  }
  return Math.max(zMean, zVar);
}

describe('solvers on data with a known optimal denoiser', () => {
  it('point mass: every solver lands on the exact marginal (stochastic) or the exact flow path (ODE) at N = T, 20, 10, 5, every spacing', async () => {
    for (const solver of JUMP_SOLVERS) {
      for (const N of STEP_COUNTS) {
        for (const spacing of SPACINGS) expect(await pointMassZ(solver, N, spacing), `${solver.name} N=${N} ${spacing}`).toBeLessThan(4.5);
      }
    }
  });

  it('a solver with one coefficient 5 % off fails the point-mass check', async () => {
    expect(await pointMassZ(mutant, 10, 'uniform')).toBeGreaterThan(4.5);
  });

  const gauss: Component[] = [{ w: 1, m: 0.6, s: 0.15 }];
  const n = 40000;

  it('Gaussian data: the mean is right at every N; the ODE solvers converge to the exact flow map at their order', async () => {
    const c = gauss[0]!;
    const se = c.s / Math.sqrt(n);
    const flowErr: Record<string, number[]> = {};
    for (const solver of JUMP_SOLVERS) {
      flowErr[solver.name] = [];
      for (const N of STEP_COUNTS) {
        const { init, out } = await run(solver, gauss, samplingGrid(sde, N, 'uniform'), n);
        expect(Math.abs(moments(out).mean - c.m) / se, `${solver.name} N=${N}`).toBeLessThan(4);
        // the exact probability-flow map of a Gaussian is the affine map between the two marginals
        const VT = sde.meanFactor(T) ** 2 * c.s * c.s + sde.sigmaBar(T) ** 2;
        let err = 0;
        for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(out[i]! - (c.m + (c.s / Math.sqrt(VT)) * (init[i]! - MU - sde.meanFactor(T) * (c.m - MU)))));
        flowErr[solver.name]!.push(err);
      }
    }
    for (const name of ['mr-ode-1', 'mr-ode-2']) {
      const e = flowErr[name]!; // N = T, 20, 10, 5
      expect(e[0]!).toBeLessThan(e[1]!);
      expect(e[1]!).toBeLessThan(e[2]!);
      expect(e[2]!).toBeLessThan(e[3]!);
    }
    // first order: 5× the steps cut the error ≈ 5×; second order ≈ 25×
    expect(flowErr['mr-ode-1']![1]! / flowErr['mr-ode-1']![0]!).toBeGreaterThan(3);
    expect(flowErr['mr-ode-2']![1]! / flowErr['mr-ode-2']![0]!).toBeGreaterThan(12);
    for (let k = 0; k < STEP_COUNTS.length; k++) expect(flowErr['mr-ode-2']![k]!).toBeLessThan(flowErr['mr-ode-1']![k]!);
  });

  it('Gaussian data: the variance error shrinks with N, and the second-order SDE solver matches it at N = T', async () => {
    const c = gauss[0]!;
    const seV = c.s * c.s * Math.sqrt(2 / n);
    for (const solver of JUMP_SOLVERS) {
      const few = moments((await run(solver, gauss, samplingGrid(sde, 5, 'quadratic'), n)).out).v;
      const all = moments((await run(solver, gauss, fullGrid(T), n)).out).v;
      expect(Math.abs(all - c.s * c.s), solver.name).toBeLessThan(Math.abs(few - c.s * c.s));
      if (solver.name === 'mr-sde-2') expect(Math.abs(all - c.s * c.s) / seV).toBeLessThan(4);
    }
  });

  it('two-Gaussian mixture: every solver keeps the component weights at N = T; mr-sde-2 the mean and variance too', async () => {
    const mix: Component[] = [
      { w: 0.3, m: 0.2, s: 0.05 },
      { w: 0.7, m: 0.75, s: 0.08 },
    ];
    const mean = mix.reduce((a, c) => a + c.w * c.m, 0);
    const v = mix.reduce((a, c) => a + c.w * (c.s * c.s + c.m * c.m), 0) - mean * mean;
    for (const solver of JUMP_SOLVERS) {
      for (const N of [T]) {
        const { out } = await run(solver, mix, samplingGrid(sde, N, 'quadratic'), n);
        const low = out.filter((x) => x < 0.475).length / n;
        expect(Math.abs(low - 0.3) / Math.sqrt((0.3 * 0.7) / n), `${solver.name} N=${N}`).toBeLessThan(4);
        if (solver.name === 'mr-sde-2' && N === T) {
          const m = moments(out);
          expect(Math.abs(m.mean - mean) / Math.sqrt(v / n)).toBeLessThan(4);
          expect(Math.abs(m.v - v) / (v * Math.sqrt(2 / n))).toBeLessThan(5);
        }
      }
    }
  });
});

describe('solvers inside the sampler', () => {
  it('posterior one level down is the step rule posterior bit for bit; sde refuses a jump', () => {
    const n = 64;
    const x = new SeededNoise(1).normal([n]);
    const mu = new Float32Array(n).fill(MU);
    const eps = new SeededNoise(2).normal([n]);
    const a = solverOf('posterior').step({ sde, x, mu, eps, s: 40, t: 39, shape: [n], prev: null, noise: new SeededNoise(3), clamp: [0, 1] });
    const z = new SeededNoise(3).normal([n]);
    expect(a.x).toEqual(sde.posteriorStep(x, sde.predictX0(x, mu, eps, 40, [n], [0, 1]), mu, 40, z, [n]));
    expect(() => solverOf('sde').step({ sde, x, mu, eps, s: 40, t: 30, shape: [n], prev: null, noise: new SeededNoise(3), clamp: null })).toThrow(/one level per step/);
    expect(() => solverOf('heun')).toThrow(/solver must be one of sde, posterior, mr-ode-1, mr-ode-2, mr-sde-2/);
  });
});

describe('sampling settings of a run', () => {
  it("the call's options win over the model's model.json; the official solver runs every level", () => {
    const meta = { solver: 'mr-ode-1', steps: 10 } as const;
    expect(samplingOf({}, meta, 50)).toEqual({ solver: 'mr-ode-1', steps: 10, spacing: 'uniform' });
    expect(samplingOf({ solver: 'sde' }, meta, 50)).toEqual({ solver: 'sde', steps: 50, spacing: 'uniform' });
    expect(samplingOf({ stepRule: 'posterior', steps: 5, spacing: 'logsnr' }, meta, 50)).toEqual({ solver: 'posterior', steps: 5, spacing: 'logsnr' });
    expect(samplingOf({}, {}, 50)).toEqual({ solver: 'sde', steps: 50, spacing: 'uniform' });
    expect(() => samplingOf({ solver: 'sde', steps: 10 }, meta, 50)).toThrow(/sde solver moves one level per step/);
    expect(() => samplingOf({ steps: 60 }, meta, 50)).toThrow(/more than the model's diffusion length T = 50/);
  });
});
