import { describe, it, expect } from 'vitest';
import { IRSDE } from '../src/sde/irsde.js';
import { SeededNoise } from '../src/util/noise.js';
import { presetConfigs } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import type { ObjectiveBatch } from '../src/train/objectives.js';
import type { NetInputs, NetRunner } from '../src/exec/types.js';
import type { F32Tensor } from '../src/util/tensor.js';
import {
  defaultLevels,
  diagnoseUNet,
  diagnosticsSvg,
  discriminatorAccuracy,
  holeMAE,
  type DiagnosticsEntry,
} from '../src/train/diagnostics.js';

const T = 12;
const sde = new IRSDE({ T, maxSigma: 30, eps: 0.005, schedule: 'cosine' });
const cfg = presetConfigs('tiny');

/** Smooth random images in [0,1], a box hole per sample (mask 1 = known, 0 = hole). */
function makeBatch(B: number, S: number, seed = 3): ObjectiveBatch {
  const rng = new SeededNoise(seed);
  const hw = S * S;
  const GT = new Float32Array(B * 3 * hw);
  const gray = new Float32Array(B * hw);
  const edge = new Float32Array(B * hw);
  const mask = new Float32Array(B * hw).fill(1);
  for (let b = 0; b < B; b++) {
    const ph = Array.from({ length: 6 }, () => rng.uniform() * 6);
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const p = y * S + x;
        let g = 0;
        for (let c = 0; c < 3; c++) {
          const v = 0.5 + 0.35 * Math.sin(x / (3 + c) + ph[c]!) * Math.cos(y / (4 + c) + ph[c + 3]!);
          GT[(b * 3 + c) * hw + p] = Math.fround(v);
          g += v / 3;
        }
        gray[b * hw + p] = Math.fround(g);
        edge[b * hw + p] = (x + y + b) % 7 === 0 ? 1 : 0;
        const o = 6 + 3 * b;
        if (y >= o && y < o + 14 && x >= 8 && x < 22) mask[b * hw + p] = 0;
      }
    }
  }
  return {
    GT: { shape: [B, 3, S, S], data: GT },
    gray: { shape: [B, 1, S, S], data: gray },
    edge: { shape: [B, 1, S, S], data: edge },
    mask: { shape: [B, 1, S, S], data: mask },
  };
}

/** A runner whose ε̂ is the exact noise of its input given the true x0: (x − mu_bar(x0, t)) / σ̄_t. */
function oracle(kind: 'structure' | 'texture', x0: F32Tensor): NetRunner & { calls: number } {
  const r = {
    kind,
    calls: 0,
    dispose() {},
    async run(inp: NetInputs): Promise<F32Tensor> {
      r.calls++;
      if (kind === 'texture') expect(inp.S).toBeDefined();
      const { x, mu, t } = inp;
      const mb = sde.muBar(x0.data, mu!.data, t, x.shape);
      const sb = sde.sigmaBarBatch(t);
      const per = x.data.length / t.length;
      const eps = Float32Array.from(x.data, (v, i) => (v - mb[i]!) / sb[Math.floor(i / per)]!);
      return { shape: [...x.shape], data: eps };
    },
  };
  return r;
}

describe('diagnoseUNet', () => {
  const batch = makeBatch(2, 32);

  it('default levels spread over 1..T', () => {
    expect(defaultLevels(50)).toEqual([1, 8, 15, 22, 29, 36, 43, 50]);
    expect(defaultLevels(3)).toEqual([1, 2, 3]);
    expect(defaultLevels(T)).toHaveLength(8);
  });

  it.each(['structure', 'texture'] as const)('%s: tiny random weights give finite, deterministic numbers', async (kind) => {
    const weights = initWeights(kind, cfg[kind], 7);
    const a = await diagnoseUNet(kind, cfg[kind], weights, sde, batch, { seed: 5 });
    const levels = defaultLevels(T);
    expect(a.levels).toEqual(levels);
    for (const k of ['marginal', 'trajectory', 'muBaseline', 'meanFill'] as const) {
      expect(a[k]).toHaveLength(levels.length);
      for (const v of a[k]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
    }
    expect(a.netCalls).toBe(T + levels.length);
    expect(a.output.shape).toEqual(kind === 'structure' ? [2, 1, 32, 32] : [2, 3, 32, 32]);
    const b = await diagnoseUNet(kind, cfg[kind], weights, sde, batch, { seed: 5 });
    expect(b.marginal).toEqual(a.marginal);
    expect(b.trajectory).toEqual(a.trajectory);
    expect(b.meanFill).toEqual(a.meanFill);
    const c = await diagnoseUNet(kind, cfg[kind], weights, sde, batch, { seed: 6, levels: [T, 2, 2] });
    expect(c.levels).toEqual([2, T]);
    expect(c.marginal).not.toEqual([a.marginal[1], a.marginal[7]]);
  });

  it.each(['structure', 'texture'] as const)('%s: an oracle network has ~0 x0 error on the marginal and along its trajectory', async (kind) => {
    const x0 = kind === 'structure' ? batch.gray : batch.GT;
    const runner = oracle(kind, x0);
    const d = await diagnoseUNet(kind, cfg[kind], new Map(), sde, batch, { runner, levels: [1, 2, 5, 9, T] });
    expect(runner.calls).toBe(T + 5);
    for (const v of d.marginal) expect(v).toBeLessThan(1e-4);
    for (const v of d.trajectory) expect(v).toBeLessThan(1e-4);
    expect(d.trajectory[0]).toBeLessThan(1e-5); // the output
    expect(holeMAE(d.output.data, x0.data, x0.shape, batch.mask)).toBeLessThan(1e-5);
    // the baselines are real errors, not ~0
    expect(d.muBaseline[0]).toBeGreaterThan(0.1);
    expect(d.meanFill[0]).toBeGreaterThan(0.01);
    expect(d.meanFill[0]).toBeLessThan(d.muBaseline[0]!);
  });

  it('texture: mu option replaces the SDE mean; the baseline follows it', async () => {
    const x0 = batch.GT;
    const mu = { shape: [...x0.shape], data: Float32Array.from(x0.data, (v, i) => (batch.mask.data[Math.floor(i / (3 * 1024)) * 1024 + (i % 1024)]! ? v : 0.5)) };
    const d = await diagnoseUNet('texture', cfg.texture, new Map(), sde, batch, { runner: oracle('texture', x0), mu, levels: [1, T] });
    expect(d.muBaseline[0]).toBeCloseTo(holeMAE(mu.data, x0.data, x0.shape, batch.mask), 6);
    expect(d.trajectory[0]).toBeLessThan(1e-5);
    await expect(diagnoseUNet('texture', cfg.texture, new Map(), sde, batch, { runner: oracle('texture', x0), mu: batch.gray })).rejects.toThrow(/mu/);
    await expect(diagnoseUNet('structure', cfg.structure, new Map(), sde, batch, { runner: oracle('structure', batch.gray), levels: [0] })).rejects.toThrow(/outside/);
  });
});

describe('discriminatorAccuracy', () => {
  const t = (v: number[]): F32Tensor => ({ shape: [v.length], data: Float32Array.from(v) });
  it('counts D_real > D_fake', () => {
    expect(discriminatorAccuracy([t([1, 2, 3, 4]), t([0, 3, 2, 4]), t([0, 0, 0, 0])])).toBe(0.5);
    expect(discriminatorAccuracy([t([5]), t([-5]), t([0])])).toBe(1);
    expect(discriminatorAccuracy([t([-1, -2]), t([0, 0]), t([0, 0])])).toBe(0);
    expect(discriminatorAccuracy([t([]), t([]), t([])])).toBeNaN();
    expect(() => discriminatorAccuracy([t([1])])).toThrow();
    expect(() => discriminatorAccuracy([t([1, 2]), t([1]), t([1])])).toThrow();
  });
});

describe('diagnosticsSvg', () => {
  const entry = (step: number, s: number): DiagnosticsEntry => {
    const levels = [1, 8, 15, 22, 29, 36, 43, 50];
    return {
      step,
      levels,
      marginal: levels.map((l) => s * (0.02 + l / 300)),
      trajectory: levels.map((l) => s * (0.05 + l / 250)),
      muBaseline: levels.map(() => 0.45),
      meanFill: levels.map(() => 0.2),
    };
  };
  const count = (svg: string, tag: string) => (svg.match(new RegExp(`<${tag}[ >]`, 'g')) ?? []).length;

  it('draws 4 lines for the latest entry and 2 per earlier entry (at most 3 earlier)', () => {
    for (const n of [1, 2, 4, 6]) {
      const hist = Array.from({ length: n }, (_, i) => entry(100 * (i + 1), 1 - 0.1 * i));
      const svg = diagnosticsSvg(hist, 'texture <net>');
      expect(count(svg, 'polyline')).toBe(4 + 2 * Math.min(3, n - 1));
      expect(count(svg, 'path')).toBe(0);
      expect(svg).toContain('texture &lt;net&gt;');
      expect(svg).toContain(`step ${100 * n}`);
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    }
  });

  it('handles an empty history and non-finite values', () => {
    expect(diagnosticsSvg([], 'x')).toContain('no diagnostics yet');
    const e = entry(5, 1);
    e.marginal[3] = NaN;
    const svg = diagnosticsSvg([e], 'x');
    expect(svg).not.toMatch(/NaN|Infinity/);
    expect(count(svg, 'polyline')).toBe(5); // the marginal line is broken in two
  });
});
