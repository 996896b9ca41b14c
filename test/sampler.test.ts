import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runParity } from '../src/parity/runner.js';
import { IRSDE, SeededNoise, type NoiseSource } from '../src/sde/index.js';
import { tapeFromDir } from '../src/parity/tape.js';
import { readNpy } from '../src/weights/npy.js';
import type { NetInputs, NetKind, NetRunner } from '../src/exec/types.js';
import type { F32Tensor } from '../src/util/tensor.js';
import {
  sample,
  toUint8,
  renoiseDepth,
  switchLevel,
  type ForcedDecision,
  type SamplerInputs,
  type SamplerNets,
  type SamplerVariant,
  type StepInfo,
} from '../src/sampler/index.js';
import { makeContext as parityContext } from '../src/parity/types.js';
import { fixtureNet } from '../src/parity/fixture-nets.js';
import { OnnxExecutor } from '../src/exec/onnx/executor.js';
import { fixture } from './fixtures.js';

const FIXTURES = fixture('parity');
const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));
const CASE = manifest.cases.find((c: any) => c.kind === 'sampler' && c.name === 'sampler_T100');
const tapeLog: { i: number; shape: number[] }[] = JSON.parse(readFileSync(path.join(FIXTURES, CASE.tape.log_file), 'utf8'));

function load(key: string): F32Tensor {
  const a = readNpy(path.join(FIXTURES, CASE.files[key].file));
  return { shape: a.shape, data: a.data as Float32Array };
}

const inputs: SamplerInputs = { image: load('GT'), mask: load('mask'), gray: load('gray'), edge: load('edge') };
const sde100 = new IRSDE({ T: 100, maxSigma: 30, eps: 0.005, schedule: 'cosine' });

/** Cheap deterministic stand-ins: the control flow does not depend on what the networks compute. */
function mockNets(counts: Record<NetKind, number>): SamplerNets {
  const mk = (kind: NetKind, f: (inp: NetInputs) => F32Tensor): NetRunner => ({
    kind,
    dispose() {},
    async run(inp) {
      counts[kind]++;
      return f(inp);
    },
  });
  const unet = (inp: NetInputs): F32Tensor => {
    const { x, mu, S } = inp;
    const hw = S ? S.data.length : 0;
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = 0.3 * (x.data[i]! - mu!.data[i]!) + (S ? 0.05 * S.data[i % hw]! : 0);
    return { shape: [...x.shape], data: out };
  };
  return {
    structure: mk('structure', unet),
    texture: mk('texture', unet),
    discriminator: mk('discriminator', ({ x, S, t }) => {
      let s = 0;
      for (let i = 0; i < x.data.length; i++) s += Math.sin(17 * x.data[i]! + i);
      for (let i = 0; i < S!.data.length; i++) s += 0.5 * Math.cos(13 * S!.data[i]! + i);
      return { shape: [1], data: Float32Array.of(s / 100 + 1e-3 * t[0]!) };
    }),
  };
}

class Recorder implements NoiseSource {
  shapes: number[][] = [];
  constructor(private readonly inner: NoiseSource) {}
  normal(shape: number[]): Float32Array {
    this.shapes.push([...shape]);
    return this.inner.normal(shape);
  }
}

const variants: SamplerVariant[] = ['official', 'improved', 'no-resampling', 'no-discriminator'];

const zeroCounts = (): Record<NetKind, number> => ({ structure: 0, texture: 0, discriminator: 0 });

describe('sampler parity (official fixtures, onnx)', () => {
  it('sampler_T100: teacher-forced steps and the free run pass', async () => {
    const r = await runParity(FIXTURES, { filter: /^sampler/, executors: ['onnx'] });
    const bad = r.results.filter((x) => !x.pass).map((x) => `${x.name}: ${x.error} > ${x.tolerance} ${x.detail ?? ''}`);
    expect(bad).toEqual([]);
    expect(r.skipped).toEqual([]);
    expect(r.passed).toBeGreaterThanOrEqual(12);
  });
});

describe('sampler control flow (mock networks)', () => {
  it('schedule of stages and re-noising depths (docs/design.md §5.3)', () => {
    for (const [T, early, resampling] of [[100, 61, 13], [400, 241, 49]] as const) {
      const sw = switchLevel(T, 0.4);
      expect(T - sw + 1).toBe(early);
      let n = 0;
      for (let t = T; t >= sw; t--) if (renoiseDepth(T, t, 5, 5) > 0) n++;
      expect(n).toBe(resampling);
      expect(renoiseDepth(T, T, 5, 5)).toBe(1);
      expect(renoiseDepth(T, T - 5, 5, 5)).toBe(5);
    }
  });

  it('resampling options are bounded (a last guard under the library checks, issue 22)', async () => {
    for (const [options, re] of [
      [{ uMax: 1e9 }, /^sampler: uMax must be an integer from 1 to 100 /],
      [{ uMin: 0 }, /^sampler: uMin must be an integer from 1 to 100 /],
      [{ jump: 10001 }, /^sampler: jump must be an integer from 0 to 10000 /],
      [{ re: Infinity }, /^sampler: re must be an integer from 0 to 10000 /],
    ] as const) {
      await expect(sample({ nets: mockNets(zeroCounts()), sde: sde100, inputs, noise: new SeededNoise(7), options })).rejects.toThrow(re);
    }
    // jump and re beyond T are the official defaults on a short model: no resampling step, or a clamped depth
    const short = new IRSDE({ T: 4 });
    const res = await sample({ nets: mockNets(zeroCounts()), sde: short, inputs, noise: new SeededNoise(7), options: { jump: 5, re: 5 } });
    expect(res.stats.decisions).toEqual({ accept: 0, average: 0, stop: 0 });
  });

  it('with the recorded decisions forced, draws, shapes and calls follow the official run exactly', async () => {
    const forced: ForcedDecision[] = [];
    for (const s of CASE.steps) for (const it of s.iterations ?? []) forced.push({ t: s.t, i: it.i, decision: it.decision });
    const counts = zeroCounts();
    const noise = new Recorder(tapeFromDir(path.join(FIXTURES, CASE.tape.dir)));
    const infos: StepInfo[] = [];
    const res = await sample({ nets: mockNets(counts), sde: sde100, inputs, noise, options: { decisionTape: forced, onStep: (i) => infos.push(i) } });
    expect(noise.shapes).toEqual(tapeLog.map((d) => d.shape));
    expect(infos.map((i) => i.t)).toEqual(CASE.steps.map((s: any) => s.t));
    expect(infos.map((i) => i.stage)).toEqual(CASE.steps.map((s: any) => s.stage));
    expect(infos.map((i) => i.calls)).toEqual(CASE.steps.map((s: any) => s.forwards));
    expect(infos.map((i) => i.draws)).toEqual(CASE.steps.map((s: any) => s.tape_range[1] - s.tape_range[0] + 1));
    expect(infos.filter((i) => i.stage === 'early').map((i) => i.end)).toEqual(CASE.steps.filter((s: any) => s.stage === 'early').map((s: any) => s.end));
    expect(res.stats.calls).toEqual(CASE.config.forwards_total);
    expect(counts).toEqual(CASE.config.forwards_total);
    expect(res.stats.draws).toBe(CASE.tape.n_draws);
    expect(res.stats.forced).toBe(forced.length);
  });

  for (const variant of variants) {
    it(`variant ${variant}: finite output, draws per step as documented, known pixels = GT`, async () => {
      const counts = zeroCounts();
      const noise = new Recorder(new SeededNoise(7));
      const infos: StepInfo[] = [];
      const res = await sample({ nets: mockNets(counts), sde: sde100, inputs, noise, options: { variant, onStep: (i) => infos.push(i) } });
      expect(res.out.every(Number.isFinite)).toBe(true);
      expect(res.y.every(Number.isFinite)).toBe(true);
      expect(infos.length).toBe(100);
      let draws = 2;
      for (const s of infos) {
        const n = s.resampling.length;
        let expected: number;
        if (s.stage === 'late') expected = 1;
        else if (variant === 'improved') expected = 3 + n * (3 * s.k + 1);
        else expected = 3 + n * (2 * s.k + 1);
        expect(s.draws).toBe(expected);
        draws += s.draws;
        if (variant === 'no-resampling') expect(n).toBe(0);
        if (variant === 'no-discriminator') expect(n).toBe(s.k > 0 ? 2 : 0);
      }
      expect(res.stats.draws).toBe(draws);
      expect(noise.shapes.length).toBe(draws);
      if (variant === 'no-resampling' || variant === 'no-discriminator') expect(counts.discriminator).toBe(0);
      else expect(counts.discriminator).toBeGreaterThan(61);
      if (variant === 'no-resampling') expect(counts).toEqual({ structure: 61, texture: 100, discriminator: 0 });
      // known pixels of the composite are the ground truth, bit for bit
      const hw = inputs.mask.data.length;
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < hw; p++) {
          if (inputs.mask.data[p] === 1) expect(res.out[c * hw + p]).toBe(inputs.image.data[c * hw + p]);
          else expect(res.out[c * hw + p]).toBe(res.y[c * hw + p]);
        }
      }
    });
  }

  it('same seed gives the identical output, another seed does not', async () => {
    const run = (seed: number) => sample({ nets: mockNets(zeroCounts()), sde: sde100, inputs, noise: new SeededNoise(seed) });
    const [a, b, c] = await Promise.all([run(3), run(3), run(4)]);
    expect(Array.from(a.out)).toEqual(Array.from(b.out));
    expect(Array.from(a.x!)).toEqual(Array.from(b.x!));
    expect(Array.from(a.out)).not.toEqual(Array.from(c.out));
  });

  it('toUint8 clamps and rounds half to even like tensor2img', () => {
    // 0.5/255·255 etc. are not exact in float32, so test on values whose ×255 is exact
    expect(Array.from(toUint8([-0.1, 0, 1, 1.5, 2.5 / 255, 3.5 / 255, 0.25]))).toEqual([0, 0, 255, 255, 2, 4, 64]);
  });

  it('onState hands out every intermediate state', async () => {
    const seen: [number, boolean][] = [];
    await sample({ nets: mockNets(zeroCounts()), sde: sde100, inputs, noise: new SeededNoise(1), options: { onState: (t, _y, x) => seen.push([t, x !== null]) } });
    expect(seen.length).toBe(100);
    expect(seen[0]).toEqual([100, true]);
    expect(seen[60]).toEqual([40, true]);
    expect(seen[61]).toEqual([39, false]);
    expect(seen[99]).toEqual([1, false]);
  });
});

describe('posterior step rule', () => {
  /** networks that know the ground truth: ε = (x_t − mu_bar(x0, t)) / σ̄_t */
  function oracleNets(sde: IRSDE, calls: { n: number }): SamplerNets {
    const mk = (kind: NetKind, x0: Float32Array): NetRunner => ({
      kind,
      dispose() {},
      async run({ x, mu, t }) {
        calls.n++;
        const mean = sde.muBar(x0, mu!.data, t[0]!, x.shape);
        const sb = sde.sigmaBar(t[0]!);
        return { shape: [...x.shape], data: Float32Array.from(x.data, (v, i) => (v - mean[i]!) / sb) };
      },
    });
    return { structure: mk('structure', inputs.gray.data), texture: mk('texture', inputs.image.data), discriminator: mockNets(zeroCounts()).discriminator };
  }

  it('with exact noise predictions every variant recovers the ground truth in the hole; draws as with sde', async () => {
    const sde = new IRSDE({ T: 20, maxSigma: 30, eps: 0.005, schedule: 'cosine' });
    const m = inputs.mask.data;
    const hw = m.length;
    for (const variant of variants) {
      const calls = { n: 0 };
      const rec = new Recorder(new SeededNoise(3));
      const res = await sample({ nets: oracleNets(sde, calls), sde, inputs, noise: rec, options: { variant, stepRule: 'posterior' } });
      let worst = 0;
      for (let c = 0; c < 3; c++) for (let p = 0; p < hw; p++) if (!m[p]) worst = Math.max(worst, Math.abs(res.out[c * hw + p]! - inputs.image.data[c * hw + p]!));
      expect(worst, variant).toBeLessThan(1e-4);
      const recSde = new Recorder(new SeededNoise(3));
      const sdeRes = await sample({ nets: oracleNets(sde, { n: 0 }), sde, inputs, noise: recSde, options: { variant } });
      // with a discriminator the decisions (and so the draw count) depend on the states
      if (variant === 'no-resampling' || variant === 'no-discriminator') expect(recSde.shapes).toEqual(rec.shapes);
      // the Euler–Maruyama step does not land on x0 exactly (a sanity check that the rules differ)
      expect(sdeRes.out).not.toEqual(res.out);
    }
  });

  it('on coarse grids every jump solver with exact noise predictions recovers the ground truth in the hole, for every variant', async () => {
    const sde = new IRSDE({ T: 20, maxSigma: 30, eps: 0.005, schedule: 'cosine' });
    const m = inputs.mask.data;
    const hw = m.length;
    for (const solver of ['posterior', 'mr-ode-1', 'mr-ode-2', 'mr-sde-2'] as const) {
      for (const variant of variants) {
        for (const [steps, spacing] of [[5, 'uniform'], [7, 'quadratic'], [4, 'logsnr']] as const) {
          const calls = { n: 0 };
          const res = await sample({ nets: oracleNets(sde, calls), sde, inputs, noise: new SeededNoise(3), options: { variant, solver, steps, spacing } });
          let worst = 0;
          for (let c = 0; c < 3; c++) for (let p = 0; p < hw; p++) if (!m[p]) worst = Math.max(worst, Math.abs(res.out[c * hw + p]! - inputs.image.data[c * hw + p]!));
          expect(worst, `${solver} ${variant} ${steps} ${spacing}`).toBeLessThan(1e-4);
          expect(res.stats.steps).toBe(steps);
        }
      }
    }
  });

  it('on a grid: one texture call per step, the structure in the early steps only, no draws for the ODE solvers but the pasted known structure', async () => {
    const sde = new IRSDE({ T: 20, maxSigma: 30, eps: 0.005, schedule: 'cosine' });
    const seen: StepInfo[] = [];
    const rec = new Recorder(new SeededNoise(3));
    const res = await sample({ nets: mockNets(zeroCounts()), sde, inputs, noise: rec, options: { variant: 'no-resampling', solver: 'mr-ode-2', steps: 5, onStep: (i) => seen.push(i) } });
    // uniform grid 20, 16, 12, 8, 4, 0; switch level trunc(0.4·20) = 8: early at 20, 16, 12, 8
    expect(seen.map((i) => [i.t, i.next, i.stage])).toEqual([[20, 16, 'early'], [16, 12, 'early'], [12, 8, 'early'], [8, 4, 'early'], [4, 0, 'late']]);
    expect(res.stats.calls).toEqual({ structure: 4, texture: 5, discriminator: 0 });
    // terminal y, x, then one q(x_t) paste draw per early step
    expect(rec.shapes.length).toBe(2 + 4);
    const recP = new Recorder(new SeededNoise(3));
    await sample({ nets: mockNets(zeroCounts()), sde, inputs, noise: recP, options: { variant: 'no-resampling', solver: 'posterior', steps: 5 } });
    expect(recP.shapes.length).toBe(2 + 4 * 3 + 1);
  });

  it('the official sampler on a grid resamples at grid positions p ≡ 0 (mod jump), k grid levels deep, re-noising by the closed-form jump', async () => {
    const counts = zeroCounts();
    const seen: StepInfo[] = [];
    await sample({ nets: mockNets(counts), sde: sde100, inputs, noise: new SeededNoise(2), options: { solver: 'posterior', steps: 20, onStep: (i) => seen.push(i) } });
    // 20 steps of 5 levels: positions p = 20 − index; resampling where p % 5 == 0 among the early steps (s ≥ 40), k = min(5, index + 1)
    const early = seen.filter((i) => i.stage === 'early');
    expect(early.map((i) => i.t)).toEqual([100, 95, 90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40]);
    expect(early.map((i) => i.k)).toEqual([1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 5, 0, 0]);
    await expect(sample({ nets: mockNets(zeroCounts()), sde: sde100, inputs, noise: new SeededNoise(2), options: { solver: 'sde', steps: 20 } })).rejects.toThrow(/solver sde moves one level per step/);
  });

  it('rejects an unknown step rule', async () => {
    await expect(sample({ nets: mockNets(zeroCounts()), sde: sde100, inputs, noise: new SeededNoise(0), options: { stepRule: 'euler' as never } })).rejects.toThrow(/unknown step rule "euler"/);
  });
});

describe('sampler variants on the fixture networks (onnx, T = 10)', () => {
  it('every variant runs end to end with finite outputs', async () => {
    const ctx = parityContext(FIXTURES, manifest, ['onnx']);
    const exec = new OnnxExecutor();
    const nets: SamplerNets = {} as SamplerNets;
    for (const kind of ['structure', 'texture', 'discriminator'] as const) {
      const { cfg, weights } = fixtureNet(ctx, kind);
      nets[kind] = await exec.createRunner(kind, cfg, weights);
    }
    const sde = new IRSDE({ T: 10, maxSigma: 30, eps: 0.005, schedule: 'cosine' });
    // official is covered by the parity case
    for (const variant of variants.filter((v) => v !== 'official')) {
      const res = await sample({ nets, sde, inputs, noise: new SeededNoise(11), options: { variant } });
      expect(res.out.every(Number.isFinite), variant).toBe(true);
      expect(res.stats.steps).toBe(10);
      if (variant === 'no-resampling') expect(res.stats.calls.discriminator).toBe(0);
    }
  });
});
