/**
 * The `split` sampler variant (src/sampler/variants/split.ts): the one-call estimate's low
 * frequencies with a no-resampling sample's detail, both from the same terminal states, pinned
 * against the two samplers run on their own and a hand-written (non-separable) Gaussian,
 * normalised over the hole.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { IRSDE } from '../src/sde/irsde.js';
import { SeededNoise } from '../src/util/noise.js';
import { prepareFill } from '../src/sde/fill.js';
import { sample, makeContext, step, composite, type SamplerInputs, type SamplerNets, type StepInfo } from '../src/sampler/index.js';
import { gaussianBlur, SPLIT_BASE, SPLIT_SIGMA } from '../src/sampler/variants/split.js';
import type { NetKind, NetRunner, NetInputs } from '../src/exec/types.js';
import type { F32Tensor } from '../src/util/tensor.js';
import { samplingOf } from '../src/inpaint/sampling.js';

const [H, W] = [16, 18];
const hw = H * W;
const sde = new IRSDE({ T: 20 });

function inputs(): SamplerInputs {
  const n = new SeededNoise(5);
  const image: F32Tensor = { shape: [1, 3, H, W], data: Float32Array.from({ length: 3 * hw }, () => n.uniform()) };
  const gray: F32Tensor = { shape: [1, 1, H, W], data: Float32Array.from({ length: hw }, () => n.uniform()) };
  const edge: F32Tensor = { shape: [1, 1, H, W], data: Float32Array.from({ length: hw }, () => (n.uniform() > 0.7 ? 1 : 0)) };
  const mask: F32Tensor = { shape: [1, 1, H, W], data: Float32Array.from({ length: hw }, (_, p) => (Math.floor(p / W) >= 3 && Math.floor(p / W) < 12 && p % W >= 4 && p % W < 14 ? 0 : 1)) };
  return { image, gray, edge, mask };
}

/** Stand-ins whose outputs depend on their inputs (so a wrong state or guide shows), counting calls. */
function nets(calls: Record<NetKind, number>): SamplerNets {
  const mk = (kind: NetKind, f: (inp: NetInputs) => Float32Array): NetRunner => ({
    kind,
    dispose() {},
    async run(inp) {
      calls[kind]++;
      return { shape: [...inp.x.shape], data: f(inp) };
    },
  });
  return {
    structure: mk('structure', ({ x, mu, t }) => Float32Array.from(x.data, (v, i) => Math.fround(0.3 * (v - mu!.data[i]!) + 0.002 * t[0]!))),
    texture: mk('texture', ({ x, mu, S, t }) => Float32Array.from(x.data, (v, i) => Math.fround(0.4 * (v - mu!.data[i]!) + 0.3 * S!.data[i % hw]! - 0.005 * t[0]!))),
    discriminator: mk('discriminator', () => {
      throw new Error('split must not call the discriminator');
    }),
  };
}

const zero = () => ({ structure: 0, texture: 0, discriminator: 0 });
const options = { fill: 'telea' as const, solver: 'mr-ode-1' as const, steps: 5 };

/** The 2-D Gaussian written out: Σ_ij w_i w_j d[clamp(y+j), clamp(x+i)], radius ⌈3σ⌉. */
function blur2d(d: Float32Array, C: number, sigma: number): Float64Array {
  const r = Math.ceil(3 * sigma);
  const w: number[] = [];
  for (let i = -r; i <= r; i++) w.push(Math.exp(-(i * i) / (2 * sigma * sigma)));
  const s = w.reduce((a, b) => a + b, 0);
  const out = new Float64Array(d.length);
  const cl = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
  for (let c = 0; c < C; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    let acc = 0;
    for (let j = -r; j <= r; j++) for (let i = -r; i <= r; i++) acc += (w[i + r]! * w[j + r]! / (s * s)) * d[c * hw + cl(y + j, H) * W + cl(x + i, W)]!;
    out[c * hw + y * W + x] = acc;
  }
  return out;
}

beforeAll(async () => {
  await prepareFill('telea');
});

describe('split sampler', () => {
  it('is sample + G_σ ∗ (estimate − sample), the estimate and the no-resampling sample from the same seed', async () => {
    const inp = inputs();
    const cs = zero(), ce = zero(), cb = zero();
    const split = await sample({ nets: nets(cs), sde, inputs: inp, noise: new SeededNoise(11), options: { ...options, variant: 'split' } });
    const est = await sample({ nets: nets(ce), sde, inputs: inp, noise: new SeededNoise(11), options: { ...options, variant: 'one-call' } });
    const smp = await sample({ nets: nets(cb), sde, inputs: inp, noise: new SeededNoise(11), options: { ...options, variant: SPLIT_BASE } });
    expect(SPLIT_BASE).toBe('no-resampling');
    expect(SPLIT_SIGMA).toBe(1.3);
    // the difference low-passed over the hole alone: G ∗ d / G ∗ (1 − m)
    const low = blur2d(Float32Array.from(est.out, (v, i) => v - smp.out[i]!), 3, SPLIT_SIGMA);
    const weight = blur2d(Float32Array.from(inp.mask.data, (m) => 1 - m), 1, SPLIT_SIGMA);
    const want = composite(inp.image.data, Float32Array.from(smp.out, (v, i) => v + low[i]! / weight[i % hw]!), inp.mask.data);
    for (let i = 0; i < want.length; i++) expect(split.out[i]).toBeCloseTo(want[i]!, 5);
    // the two parts differ in the hole, so the split is neither of them
    let dE = 0, dS = 0;
    for (let i = 0; i < want.length; i++) {
      dE = Math.max(dE, Math.abs(split.out[i]! - est.out[i]!));
      dS = Math.max(dS, Math.abs(split.out[i]! - smp.out[i]!));
    }
    expect(dE).toBeGreaterThan(1e-3);
    expect(dS).toBeGreaterThan(1e-3);
    // the known pixels are the image's
    for (let c = 0; c < 3; c++) for (let p = 0; p < hw; p++) if (inp.mask.data[p] === 1) expect(split.out[c * hw + p]).toBe(inp.image.data[c * hw + p]);
    // calls and draws: the sample's plus the estimate's one texture call
    expect(cs).toEqual({ structure: cb.structure, texture: cb.texture + 1, discriminator: 0 });
    expect(split.stats.calls).toEqual(cs);
    expect(split.stats.draws).toBe(smp.stats.draws);
    expect(split.stats.steps).toBe(smp.stats.steps);
  });

  it('reports the trajectory’s steps, with the estimate’s call in the running totals', async () => {
    const infos: StepInfo[] = [];
    const calls = zero();
    await sample({ nets: nets(calls), sde, inputs: inputs(), noise: new SeededNoise(2), options: { ...options, variant: 'split', onStep: (i) => infos.push(i) } });
    expect(infos).toHaveLength(5);
    expect(infos.at(-1)!.totalCalls).toEqual(calls);
    expect(samplingOf({ sampler: 'split' }, { solver: 'mr-ode-1', steps: 10 }, 50).steps).toBe(10);
  });

  it('refuses init states and a single step', async () => {
    const inp = inputs();
    await expect(sample({ nets: nets(zero()), sde, inputs: inp, noise: new SeededNoise(1), options: { ...options, variant: 'split', init: { y: new Float32Array(3 * hw), x: new Float32Array(hw) } } })).rejects.toThrow(/^sampler: split starts from the terminal states/);
    const ctx = makeContext(sde, nets(zero()), inp, { ...options, variant: 'split' });
    await expect(step(ctx, { y: new Float32Array(3 * hw), x: new Float32Array(hw) }, 20, new SeededNoise(1))).rejects.toThrow(/split has no step of its own/);
  });

  it('blurs with a normalised Gaussian: constants stay, an impulse becomes the kernel', () => {
    const c = gaussianBlur(new Float32Array(2 * hw).fill(0.25), 2, H, W, 1.5);
    for (const v of c) expect(v).toBeCloseTo(0.25, 6);
    const d = new Float32Array(hw);
    d[8 * W + 9] = 1;
    const b = gaussianBlur(d, 1, H, W, 1);
    const g = (k: number) => Math.exp(-(k * k) / 2);
    const s = [-3, -2, -1, 0, 1, 2, 3].reduce((a, k) => a + g(k), 0);
    expect(b[8 * W + 9]).toBeCloseTo(1 / (s * s), 6);
    expect(b[9 * W + 11]).toBeCloseTo((g(1) * g(2)) / (s * s), 6);
    expect(b[8 * W + 13]).toBe(0); // outside the radius
    expect(b.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
  });
});
