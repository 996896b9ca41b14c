/**
 * The structure kinds (issue 25): each kind's x0 / μ pair of the structure process and the texture
 * guide, pinned on the sampler parity fixture's photo (GT, gray, Canny edges, mask) against the
 * closed forms written out here; the sampler's known structure, μS and late-stage guide; the
 * unguided `none` texture objective; model.json's `structureKind` and the refusals of mixed models.
 */
import { describe, it, expect } from 'vitest';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy } from '../src/weights/npy.js';
import { IRSDE, SeededNoise } from '../src/sde/index.js';
import { drawTraining, prepareObjective, type ObjectiveBatch } from '../src/train/objectives.js';
import { edgeAtZero, lateGuide, structureEnds, STRUCTURE_KINDS, type StructureKind } from '../src/structure/kinds.js';
import { canny } from '../src/structure/canny.js';
import { makeContext, step } from '../src/sampler/index.js';
import type { NetInputs, NetRunner } from '../src/exec/types.js';
import type { F32Tensor } from '../src/util/tensor.js';
import { FIXTURE } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import { writeSafetensors } from '../src/weights/safetensors.js';
import { loadModel, writeModelJson } from '../src/model/checkpoints.js';
import { samplerOf } from '../src/inpaint/index.js';
import { loadModel as loadLibraryModel } from '../src/inpaint/pipeline.js';
import { createTrainer, trainStep } from '../src/train/trainer.js';
import { startServer } from '../src/server/index.js';
import { holeAt, photo, png } from './server-helpers.js';
import { fixture } from './fixtures.js';

const load = (n: string): F32Tensor => {
  const a = readNpy(fixture('parity/sampler', `${n}.npy`));
  return { shape: a.shape, data: Float32Array.from(a.data as Float32Array) };
};
const GT = load('GT');
const GRAY = load('gray');
const EDGE = load('edge');
const MASK = load('mask');
const HW = GRAY.data.length;
const sde = new IRSDE({ T: 20 });

/** what each kind must be: x0 at t = 0, μ (unmasked) at t = T */
const EXPECTED: Record<StructureKind, { x0: F32Tensor; end: F32Tensor }> = {
  gray2edge: { x0: GRAY, end: EDGE },
  gray2gray: { x0: GRAY, end: GRAY },
  edge2edge: { x0: EDGE, end: EDGE },
  edge2gray: { x0: EDGE, end: GRAY },
};

const masked = (a: ArrayLike<number>) => Float32Array.from(a, (v, p) => Math.fround(v * MASK.data[p]!));
const batch = (kind: ObjectiveBatch['structureKind']): ObjectiveBatch => ({ GT, gray: GRAY, edge: EDGE, mask: MASK, structureKind: kind });

/** the forward marginal and the posterior mean (official reverse_optimum_step) in double precision */
function marginal(x0: ArrayLike<number>, mu: ArrayLike<number>, t: number, z: ArrayLike<number>): Float64Array {
  const e = Math.exp(-sde.thetasCumsum[t]! * sde.dt);
  return Float64Array.from(x0 as ArrayLike<number>, (v, i) => mu[i]! + (v - mu[i]!) * e + sde.sigmaBar(t) * z[i]!);
}
function posteriorMean(xt: ArrayLike<number>, x0: ArrayLike<number>, mu: ArrayLike<number>, t: number): Float64Array {
  const A = Math.exp(-sde.thetas[t]! * sde.dt);
  const B = Math.exp(-sde.thetasCumsum[t]! * sde.dt);
  const C = Math.exp(-sde.thetasCumsum[t - 1]! * sde.dt);
  const a = (A * (1 - C * C)) / (1 - B * B);
  const b = (C * (1 - A * A)) / (1 - B * B);
  return Float64Array.from(xt as ArrayLike<number>, (v, i) => mu[i]! + a * (v - mu[i]!) + b * (x0[i]! - mu[i]!));
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('structure kinds: the x0 / μ pair and the guide on the fixture photo', () => {
  it('the fixture has real structure (edges are sparse, gray is not binary), so the kinds differ', () => {
    const edges = EDGE.data.reduce((a, v) => a + v, 0);
    expect(edges).toBeGreaterThan(10);
    expect(edges).toBeLessThan(HW / 2);
    expect(GRAY.data.some((v) => v > 0.05 && v < 0.95)).toBe(true);
  });

  for (const kind of STRUCTURE_KINDS) {
    it(`${kind}: structure objective x0 = ${EXPECTED[kind].x0 === GRAY ? 'gray' : 'edge'}, μS = ${EXPECTED[kind].end === GRAY ? 'gray' : 'edge'} ⊙ m, state and target by the closed forms`, () => {
      const t = [7];
      const draws = drawTraining('structure', sde, batch(kind), new SeededNoise(5), t);
      const p = prepareObjective('structure', sde, batch(kind), draws);
      const want = EXPECTED[kind];
      expect(Array.from(p.clean!.data)).toEqual(Array.from(want.x0.data));
      expect(Array.from(p.mu.data)).toEqual(Array.from(masked(want.end.data)));
      const xt = marginal(want.x0.data, p.mu.data, 7, draws.z);
      expect(maxDiff(p.state.data, xt)).toBeLessThan(2e-6);
      expect(maxDiff(p.target.data, posteriorMean(p.state.data, want.x0.data, p.mu.data, 7))).toBeLessThan(2e-6);
    });

    it(`${kind}: the texture and discriminator guide S is the same structure process' posterior mean`, () => {
      for (const net of ['texture', 'discriminator'] as const) {
        const t = [11];
        const draws = drawTraining(net, sde, batch(kind), new SeededNoise(9), t);
        const p = prepareObjective(net, sde, batch(kind), draws);
        const want = EXPECTED[kind];
        const muS = masked(want.end.data);
        const xt = marginal(want.x0.data, muS, 11, draws.zS!);
        expect(maxDiff(p.S!.data, posteriorMean(Float32Array.from(xt), want.x0.data, muS, 11))).toBeLessThan(3e-6);
        // the texture process itself does not change with the structure kind
        expect(Array.from(p.mu.data)).toEqual(Array.from(prepareObjective(net, sde, batch('gray2edge'), draws).mu.data));
      }
    });
  }

  it('gray2edge is the default: a batch without a kind prepares exactly what gray2edge does', () => {
    const draws = drawTraining('texture', sde, batch(undefined), new SeededNoise(2), [4]);
    const a = prepareObjective('texture', sde, batch(undefined), draws);
    const b = prepareObjective('texture', sde, batch('gray2edge'), draws);
    expect(Array.from(a.S!.data)).toEqual(Array.from(b.S!.data));
    expect(Array.from(prepareObjective('texture', sde, batch('edge2gray'), draws).S!.data)).not.toEqual(Array.from(a.S!.data));
  });

  it('none: the texture objective has no guide and draws no structure state; other networks refuse it', () => {
    const n = new SeededNoise(1);
    let normals = 0;
    const counting = { normal: (s: number[]) => (normals++, n.normal(s)), uniform: () => n.uniform() };
    const draws = drawTraining('texture', sde, batch('none'), counting);
    expect(normals).toBe(1);
    expect(draws.zS).toBeUndefined();
    const p = prepareObjective('texture', sde, batch('none'), draws);
    expect(p.S).toBeUndefined();
    expect(() => drawTraining('structure', sde, batch('none'), counting, [3])).toThrow(/texture network only/);
    expect(() => drawTraining('discriminator', sde, batch('none'), counting, [3])).toThrow(/texture network only/);
  });
});

describe('training an unguided (IR-SDE) texture network', () => {
  it('the same trainer runs the texture objective without S on a U-Net without SPADE, and its loss falls on one batch', async () => {
    const cfg = { ...FIXTURE.texture, spade: false };
    const state = await createTrainer('onnx', 'texture', cfg, initWeights('texture', cfg, 3), { T: 20, adam: { lr: 2e-3, betas: [0.9, 0.99] }, threads: 1 });
    try {
      const losses: number[] = [];
      for (let i = 0; i < 6; i++) losses.push((await trainStep('texture', state, batch('none'), new SeededNoise(8), { t: [6] })).loss);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[5]!).toBeLessThan(losses[0]!);
      // no SPADE parameters to train
      expect([...state.toStateDict().keys()].some((k) => k.includes('.4.'))).toBe(false);
    } finally {
      await state.dispose();
    }
  }, 120_000);
});

describe('structure kinds in the sampler', () => {
  const H = GRAY.shape[2]!;
  const W = GRAY.shape[3]!;
  const inputs = { image: GT, mask: MASK, gray: GRAY, edge: EDGE };
  function nets(log: NetInputs[]) {
    const mk = (kind: 'structure' | 'texture'): NetRunner => ({
      kind,
      dispose() {},
      async run(inp) {
        log.push(inp);
        return { shape: [...inp.x.shape], data: Float32Array.from(inp.x.data, (v, i) => 0.1 * (v - inp.mu!.data[i]!)) };
      },
    });
    return { structure: mk('structure'), texture: mk('texture') };
  }

  for (const kind of STRUCTURE_KINDS) {
    it(`${kind}: known structure and μS of the context`, () => {
      const ctx = makeContext(sde, nets([]), inputs, { variant: 'no-resampling', structureKind: kind });
      expect(Array.from(ctx.gS)).toEqual(Array.from(masked(EXPECTED[kind].x0.data)));
      expect(Array.from(ctx.muS)).toEqual(Array.from(masked(EXPECTED[kind].end.data)));
    });

    it(`${kind}: the late-stage guide is the channel mean${edgeAtZero(kind) ? "'s Canny edges (σ 2)" : ''}`, async () => {
      const log: NetInputs[] = [];
      const ctx = makeContext(sde, nets(log), inputs, { variant: 'no-resampling', structureKind: kind });
      const y = Float32Array.from(GT.data, (v, i) => Math.fround(v + 0.01 * Math.sin(i)));
      await step(ctx, { y, x: null }, 3, new SeededNoise(4));
      expect(log).toHaveLength(1);
      const mean = new Float32Array(HW);
      for (let p = 0; p < HW; p++) mean[p] = Math.fround(Math.fround(Math.fround(y[p]! + y[HW + p]!) + y[2 * HW + p]!) / 3);
      let want: ArrayLike<number> = mean;
      if (edgeAtZero(kind)) {
        const e = canny(Float64Array.from(mean, (v) => Math.min(1, Math.max(0, v))), H, W, 2);
        want = Float32Array.from(e);
        // edges, not gray: a binary map with some edges
        expect(new Set(log[0]!.S!.data).size).toBe(2);
      }
      expect(Array.from(log[0]!.S!.data)).toEqual(Array.from(want));
    });
  }

  it('structureEnds and lateGuide refuse an unknown kind with one line', () => {
    expect(() => structureEnds('gray2canny' as StructureKind, 1, 2)).toThrow(/structure kind must be one of gray2edge, gray2gray, edge2edge, edge2gray/);
    expect(() => makeContext(sde, nets([]), inputs, { variant: 'no-resampling', structureKind: 'x' as StructureKind })).toThrow(/structureKind must be one of/);
    expect(Array.from(lateGuide('gray2gray', Float32Array.of(0.25, 0.5), 1, 2))).toEqual([0.25, 0.5]);
  });
});

describe('structureKind in model.json', () => {
  /** a model folder of fixture-size networks with `meta` in its model.json */
  function folder(root: string, name: string, kinds: ('structure' | 'texture' | 'discriminator')[], meta: Record<string, unknown>, spade = true): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const k of kinds) {
      const cfg = k === 'texture' ? { ...FIXTURE.texture, spade } : FIXTURE[k];
      writeSafetensors(join(dir, `${k}.safetensors`), initWeights(k, cfg, 1));
    }
    writeModelJson(dir, { T: 10, ...meta });
    return dir;
  }
  const root = mkdtempSync(join(tmpdir(), 'sd-kinds-'));

  it('a folder without the key is gray2edge; the key is read per network', () => {
    expect(loadModel([folder(root, 'old', ['structure', 'texture', 'discriminator'], {})]).structureKind).toBe('gray2edge');
    const m = loadModel([folder(root, 'e2g', ['structure', 'texture', 'discriminator'], { structureKind: 'edge2gray' })]);
    expect(m.structureKind).toBe('edge2gray');
    expect(m.meta.structureKind).toBe('edge2gray');
  });

  it('a structure network and a texture network of different kinds are refused, naming both', () => {
    const s = folder(root, 's-e2e', ['structure'], { structureKind: 'edge2edge' });
    const t = folder(root, 't-g2e', ['texture', 'discriminator'], {});
    expect(() => loadModel([s, t])).toThrow(/structure network \(.*s-e2e.*\) for edge2edge, the texture network \(.*t-g2e.*\) for gray2edge/);
  });

  it('an unguided texture network makes a texture-only model: irsde by default, guided samplers refused', () => {
    const dir = folder(root, 'plain', ['texture'], { structureKind: 'none' }, false);
    const m = loadModel([dir]);
    expect(m.structureKind).toBe('none');
    expect(Object.keys(m.weights)).toEqual(['texture']);
    expect(samplerOf(undefined, m)).toBe('irsde');
    expect(samplerOf('repaint', m)).toBe('repaint');
    expect(() => samplerOf('official', m)).toThrow(/sampler official needs a structure-guided model/);
    const guided = loadModel([folder(root, 'guided', ['structure', 'texture', 'discriminator'], {})]);
    expect(() => samplerOf('irsde', guided)).toThrow(/sampler irsde runs an unguided IR-SDE texture network .* guided by gray2edge/);
  });

  it('the library runs a texture-only model with irsde by default, repaint on request, and refuses a guided sampler', async () => {
    const dir = folder(root, 'plain-lib', ['texture'], { structureKind: 'none' }, false);
    const m = await loadLibraryModel(dir);
    try {
      expect(m.structureKind).toBe('none');
      const W = 24, H = 20;
      const image = { data: Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 256), width: W, height: H, channels: 3 as const };
      const mask = { data: Uint8Array.from({ length: W * H }, (_, p) => (p % W > 8 && p % W < 14 && p > 6 * W && p < 12 * W ? 255 : 0)), width: W, height: H, channels: 1 as const };
      const steps: string[] = [];
      const a = await m.inpaint(image, mask, { seed: 1, size: 32, onProgress: (p) => steps.push(p.stage) });
      expect(steps).toHaveLength(10);
      const b = await m.inpaint(image, mask, { seed: 1, size: 32, sampler: 'repaint' });
      expect(Buffer.compare(Buffer.from(a.image.data), Buffer.from(b.image.data))).not.toBe(0);
      await expect(m.inpaint(image, mask, { seed: 1, size: 32, sampler: 'official' })).rejects.toThrow(/sampler official needs a structure-guided model/);
    } finally {
      await m.dispose();
    }
    const guided = await loadLibraryModel(folder(root, 'e2e-lib', ['structure', 'texture', 'discriminator'], { structureKind: 'edge2edge' }));
    expect(guided.structureKind).toBe('edge2edge');
    await guided.dispose();
  }, 120_000);

  it('the server offers a texture-only model its samplers only, and refuses a guided one with one line', async () => {
    const dir = folder(root, 'plain-srv', ['texture'], { structureKind: 'none' }, false);
    const srv = await startServer({ port: 0, checkpoints: [dir], size: 32 });
    try {
      const info = await (await fetch(`${srv.url}api/info`)).json();
      expect(info.sampler).toBe('irsde');
      expect(info.samplers).toEqual(['irsde', 'repaint']);
      const f = new FormData();
      f.append('image', new Blob([new Uint8Array(await png(40, 30, 3, photo))], { type: 'image/png' }), 'image.png');
      f.append('mask', new Blob([new Uint8Array(await png(40, 30, 1, holeAt(10, 8, 20, 16)))], { type: 'image/png' }), 'mask.png');
      f.append('sampler', 'official');
      const r = await fetch(`${srv.url}api/jobs`, { method: 'POST', body: f });
      expect(r.status).toBe(400);
      expect((await r.json()).error).toBe('sampler official does not run on this model (a texture-only IR-SDE model): use one of irsde, repaint');
    } finally {
      await srv.close();
    }
  }, 120_000);

  it('model.json with an unknown structureKind is refused', () => {
    expect(() => writeModelJson(join(root, 'bad'), { structureKind: 'gray2canny' as never })).toThrow(/structureKind must be one of "gray2edge", "gray2gray", "edge2edge", "edge2gray", "none"/);
  });
});
