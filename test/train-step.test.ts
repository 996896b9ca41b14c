/**
 * Training step: parity of the three official objectives against the recorded PyTorch iteration
 * (loss, gradients, parameters after Adam, spectral-norm u/v), Adam and the LR schedule by hand,
 * and a tiny overfitting run.
 */
import { describe, it, expect } from 'vitest';
import { resolve, join } from 'node:path';
import { runParity } from '../src/parity/runner.js';
import { readPth } from '../src/weights/pth.js';
import { readNpy } from '../src/weights/npy.js';
import { FIXTURE } from '../src/nn/config.js';
import { SeededNoise } from '../src/util/noise.js';
import type { NetKind } from '../src/exec/types.js';
import { Adam, ADAM_DISC, ADAM_UNET } from '../src/train/adam.js';
import { MultiStepLR, officialUNetSchedule } from '../src/train/lr.js';
import { createTrainer, trainStep, TRAIN_EXECUTORS } from '../src/train/trainer.js';
import type { ObjectiveBatch } from '../src/train/objectives.js';
import { fixture } from './fixtures.js';

const FIXTURES = fixture('parity');

function batchFromFixtures(): ObjectiveBatch {
  const f = (name: string) => {
    const a = readNpy(join(FIXTURES, 'train/structure', `${name}.npy`));
    return { shape: a.shape, data: a.data as Float32Array };
  };
  return { GT: f('GT'), gray: f('gray'), edge: f('edge'), mask: f('mask') };
}

const weightsOf = (kind: NetKind) => readPth(join(FIXTURES, `nets/${kind}.pth`));

describe('training-step parity (onnx)', () => {
  it('train_structure, train_texture and train_discriminator match the official iteration on every executor', async () => {
    const r = await runParity(FIXTURES, { filter: /^train_/, executors: [...TRAIN_EXECUTORS] });
    const bad = r.results.filter((x) => !x.pass).map((x) => `${x.name} ${x.executor}: ${x.error} > ${x.tolerance} ${x.detail ?? ''}`);
    expect(bad).toEqual([]);
    expect(r.skipped).toEqual([]);
    // loss, inputs, outputs, grads, params, adam for three nets + u/v for the texture net, per executor
    for (const e of TRAIN_EXECUTORS) expect(r.results.filter((x) => x.executor === e && x.pass).length).toBe(19);
  });
});

describe('Adam (PyTorch 1.13)', () => {
  /** PyTorch's update in double precision, for comparison at float32 resolution */
  function reference(p0: number[], gs: number[][], lr: number, b1: number, b2: number, eps = 1e-8): number[] {
    const p = [...p0];
    const m = p.map(() => 0);
    const v = p.map(() => 0);
    gs.forEach((g, s) => {
      const k = s + 1;
      for (let i = 0; i < p.length; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
        const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** k) + eps;
        p[i] = p[i]! - (lr / (1 - b1 ** k)) * m[i]! / denom;
      }
    });
    return p;
  }

  const p0 = [0.5, -0.3, 0, 1.25, -2];
  const gs = [[0.1, -2e-9, 0.3, 0, -5], [0.05, 1e-3, -0.3, 2e-8, -4], [-0.2, 0.4, 0.1, 1, 3]];

  for (const [label, opts] of [['U-Nets (0.9, 0.99)', ADAM_UNET], ['discriminator (0.5, 0.99)', ADAM_DISC]] as const) {
    it(`three steps match the hand-computed update: ${label}`, () => {
      const adam = new Adam(opts);
      const params = new Map([['w', Float32Array.from(p0)]]);
      for (const g of gs) adam.update(params, new Map([['w', Float32Array.from(g)]]));
      const want = reference(p0, gs, opts.lr, opts.betas[0], opts.betas[1]);
      const got = params.get('w')!;
      for (let i = 0; i < p0.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(3e-7 * Math.max(1, Math.abs(want[i]!)));
      expect(adam.step).toBe(3);
    });
  }

  it('eps is added after the bias correction (first step = lr·g/(|g| + eps))', () => {
    const adam = new Adam({ lr: 1e-4, betas: [0.9, 0.99] });
    const params = new Map([['w', new Float32Array([0, 0])]]);
    adam.update(params, new Map([['w', new Float32Array([1e-8, 1])]]));
    expect(params.get('w')![0]).toBeCloseTo(-1e-4 * 1e-8 / (1e-8 + 1e-8), 10);
    expect(params.get('w')![1]).toBeCloseTo(-1e-4, 10);
  });

  it('state round-trip: save after one step, resume, same result as uninterrupted', () => {
    const a = new Adam(ADAM_UNET);
    const pa = new Map([['w', Float32Array.from(p0)]]);
    for (const g of gs) a.update(pa, new Map([['w', Float32Array.from(g)]]));
    const b = new Adam(ADAM_UNET);
    const pb = new Map([['w', Float32Array.from(p0)]]);
    b.update(pb, new Map([['w', Float32Array.from(gs[0]!)]]));
    const saved = b.stateDict();
    const c = new Adam(ADAM_UNET);
    c.loadStateDict(saved);
    for (const g of gs.slice(1)) c.update(pb, new Map([['w', Float32Array.from(g)]]));
    expect(Array.from(pb.get('w')!)).toEqual(Array.from(pa.get('w')!));
    expect(c.step).toBe(3);
  });
});

describe('Adam: the WebAssembly SIMD kernel', () => {
  // odd lengths exercise the padding lanes; tiny and huge gradients the rounding of m, v and the division
  const sizes = [1001, 7, 12, 1, 4];
  const params = () => new Map(sizes.map((n, i) => [`k${i}`, Float32Array.from({ length: n }, (_, j) => Math.sin(j * 0.37 + i))]));
  const grads = (s: number) => new Map(sizes.map((n, i) => [`k${i}`, Float32Array.from({ length: n }, (_, j) => Math.cos(j * 0.11 * (s + 1) + i) * [1, 1e-7, 3e4, 1e-30][j % 4]!)]));

  it('is used by reserve() and gives the bits of the scalar code for p, m and v over several steps and LRs (and after a state round-trip)', () => {
    const scalar = new Adam({ lr: 1e-3, betas: [0.9, 0.99] });
    const simd = new Adam({ lr: 1e-3, betas: [0.9, 0.99] });
    const ps = params();
    const pv = simd.reserve(params());
    expect(pv.get('k0')!.buffer).not.toBe(ps.get('k0')!.buffer); // really moved into the kernel's memory
    const same = () => {
      for (const k of ps.keys()) {
        expect(Buffer.from(pv.get(k)!.buffer, pv.get(k)!.byteOffset, pv.get(k)!.byteLength).equals(Buffer.from(ps.get(k)!.buffer)), `p ${k}`).toBe(true);
        expect([...simd.m.get(k)!], `m ${k}`).toEqual([...scalar.m.get(k)!]);
        expect([...simd.v.get(k)!], `v ${k}`).toEqual([...scalar.v.get(k)!]);
      }
    };
    for (let s = 0; s < 4; s++) {
      scalar.update(ps, grads(s), 1e-3 * (s + 1));
      simd.update(pv, grads(s), 1e-3 * (s + 1));
      same();
    }
    // resume: the kernel's views are refilled in place and stay in use
    const dump = scalar.stateDict();
    const m0 = simd.m.get('k0')!;
    simd.loadStateDict(dump);
    expect(simd.m.get('k0')).toBe(m0);
    scalar.update(ps, grads(9), 2e-4);
    simd.update(pv, grads(9), 2e-4);
    same();
  });

  it('STRDIFFUSION_ADAM=scalar keeps the scalar code (reserve returns the arrays unchanged)', () => {
    process.env.STRDIFFUSION_ADAM = 'scalar';
    try {
      const p = params();
      expect(new Adam({ lr: 1e-3, betas: [0.9, 0.99] }).reserve(p)).toBe(p);
    } finally {
      delete process.env.STRDIFFUSION_ADAM;
    }
  });
});

describe('MultiStepLR (MultiStepLR_Restart without restarts)', () => {
  it('halves at each milestone, counted in scheduler steps', () => {
    const s = new MultiStepLR(1e-4, [3, 5, 5]);
    const lrs: number[] = [];
    for (let i = 0; i < 7; i++) {
      lrs.push(s.lr);
      s.step();
    }
    expect(lrs).toEqual([1e-4, 1e-4, 1e-4, 5e-5, 5e-5, 1.25e-5, 1.25e-5]);
    const o = officialUNetSchedule();
    expect([o.lrAt(0), o.lrAt(1_999_999), o.lrAt(2_000_000), o.lrAt(6_000_000)]).toEqual([1e-4, 1e-4, 5e-5, 1.25e-5]);
  });
});

describe.each(TRAIN_EXECUTORS)('train step on %s', (executor) => {
  it('overfitting one tiny batch: the loss is finite and decreases', async () => {
    const batch = batchFromFixtures();
    const state = await createTrainer(executor, 'structure', FIXTURE.structure, weightsOf('structure'), { adam: { lr: 1e-3, betas: [0.9, 0.99] } });
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) {
      // the same t and noise every step: only the parameters change
      losses.push((await trainStep('structure', state, batch, new SeededNoise(5), { t: [150, 40] })).loss);
    }
    await state.dispose();
    for (const l of losses) expect(Number.isFinite(l)).toBe(true);
    expect(losses[19]!).toBeLessThan(0.7 * losses[0]!);
    let ups = 0;
    for (let i = 1; i < losses.length; i++) if (losses[i]! > losses[i - 1]!) ups++;
    expect(ups).toBeLessThanOrEqual(3);
  });
});
