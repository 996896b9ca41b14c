/**
 * The `one-call` sampler variant (src/sampler/variants/one-call.ts): the texture network's x̂0 at
 * t = T from the terminal states, guided by the structure's training guide at T, pinned against a
 * hand-written computation; one texture call whatever steps and solver say.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { IRSDE } from '../src/sde/irsde.js';
import { SeededNoise } from '../src/util/noise.js';
import { filledMean, prepareFill } from '../src/sde/fill.js';
import { sample, composite, type SamplerInputs, type SamplerNets } from '../src/sampler/index.js';
import type { NetInputs, NetKind, NetRunner } from '../src/exec/types.js';
import type { F32Tensor } from '../src/util/tensor.js';
import { samplingOf } from '../src/inpaint/sampling.js';
import { inpaint } from '../src/inpaint/index.js';
import type { InpaintProgress } from '../src/inpaint/progress.js';
import type { RasterImage } from '../src/image/io.js';

const [H, W] = [16, 16];
const hw = H * W;
const T = 20;
const sde = new IRSDE({ T });

function inputs(): SamplerInputs {
  const n = new SeededNoise(3);
  const image: F32Tensor = { shape: [1, 3, H, W], data: Float32Array.from({ length: 3 * hw }, () => n.uniform()) };
  const gray: F32Tensor = { shape: [1, 1, H, W], data: Float32Array.from({ length: hw }, () => n.uniform()) };
  const edge: F32Tensor = { shape: [1, 1, H, W], data: Float32Array.from({ length: hw }, () => (n.uniform() > 0.7 ? 1 : 0)) };
  const mask: F32Tensor = { shape: [1, 1, H, W], data: Float32Array.from({ length: hw }, (_, p) => (Math.floor(p / W) >= 4 && Math.floor(p / W) < 11 && p % W >= 3 && p % W < 12 ? 0 : 1)) };
  return { image, gray, edge, mask };
}

/** A texture stand-in whose output depends on x, μ, S and t (so a wrong guide or level shows), recording its inputs. */
function nets(calls: Record<NetKind, number>, seen: NetInputs[]): SamplerNets {
  const texture = (inp: NetInputs): F32Tensor => {
    const { x, mu, S, t } = inp;
    const out = new Float32Array(x.data.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.fround(0.4 * (x.data[i]! - mu!.data[i]!) + 0.3 * S!.data[i % hw]! + 0.01 * t[0]!);
    return { shape: [...x.shape], data: out };
  };
  const mk = (kind: NetKind, f: (inp: NetInputs) => F32Tensor): NetRunner => ({
    kind,
    dispose() {},
    async run(inp) {
      calls[kind]++;
      if (kind === 'texture') seen.push(inp);
      return f(inp);
    },
  });
  const fail = (): F32Tensor => {
    throw new Error('one-call must not call this network');
  };
  return { structure: mk('structure', fail), texture: mk('texture', texture), discriminator: mk('discriminator', fail) };
}

beforeAll(async () => {
  await prepareFill('telea');
});

describe('one-call sampler', () => {
  it('is the texture net’s x̂0 at T from the terminal states, guided by the structure posterior mean at T − 1 with x0 = μS', async () => {
    const inp = inputs();
    const calls = { structure: 0, texture: 0, discriminator: 0 };
    const seen: NetInputs[] = [];
    const r = await sample({ nets: nets(calls, seen), sde, inputs: inp, noise: new SeededNoise(9), options: { variant: 'one-call', fill: 'telea', steps: 7, solver: 'sde' } });

    // by hand: the terminal draws in the sampler's order (texture, then structure)
    const noise = new SeededNoise(9);
    const shapeY = [1, 3, H, W];
    const shapeX = [1, 1, H, W];
    const mu = filledMean('telea', inp.image, inp.mask);
    const muS = Float32Array.from(inp.edge.data, (v, p) => Math.fround(v * inp.mask.data[p]!));
    const yT = sde.noiseState(mu, noise.normal(shapeY));
    const xT = sde.noiseState(muS, noise.normal(shapeX));
    const S = sde.reverseOptimumStep(xT, muS, muS, T, shapeX);
    const eps = new Float32Array(3 * hw);
    for (let i = 0; i < eps.length; i++) eps[i] = Math.fround(0.4 * (yT[i]! - mu[i]!) + 0.3 * S[i % hw]! + 0.01 * T);
    const y0 = sde.predictX0(yT, mu, eps, T, shapeY, [0, 1]);

    expect(seen).toHaveLength(1);
    expect(seen[0]!.t).toEqual([T]);
    expect(Array.from(seen[0]!.S!.data)).toEqual(Array.from(S));
    expect(Array.from(seen[0]!.x.data)).toEqual(Array.from(yT));
    expect(Array.from(r.y)).toEqual(Array.from(y0));
    expect(Array.from(r.out)).toEqual(Array.from(composite(inp.image.data, y0, inp.mask.data)));
    // one call and one step whatever steps (7) and solver (sde, one level per step) say
    expect(calls).toEqual({ structure: 0, texture: 1, discriminator: 0 });
    expect(r.stats.steps).toBe(1);
    expect(r.stats.draws).toBe(2);
  });

  it('does not depend on the steps or the solver asked for', async () => {
    const run = async (options: object) => (await sample({ nets: nets({ structure: 0, texture: 0, discriminator: 0 }, []), sde, inputs: inputs(), noise: new SeededNoise(4), options: { variant: 'one-call', fill: 'telea', ...options } })).out;
    const a = await run({ steps: 1, solver: 'mr-ode-1' });
    expect(await run({ steps: T, solver: 'posterior' })).toEqual(a);
    expect(await run({})).toEqual(a);
  });

  it('counts one step in the run reports, whatever steps were asked, from the call or from model.json', async () => {
    expect(samplingOf({ sampler: 'one-call', steps: 10, solver: 'sde' }, {}, 50).steps).toBe(1);
    expect(samplingOf({}, { sampler: 'one-call', steps: 10 }, 50).steps).toBe(1);
    expect(samplingOf({ sampler: 'official' }, { sampler: 'one-call', steps: 10, solver: 'mr-ode-1' }, 50).steps).toBe(10);
    // the bundled model, one window: one progress report of one step
    const S = 96;
    const img: RasterImage = { width: S, height: S, channels: 3, bitDepth: 8, data: Uint8Array.from({ length: S * S * 3 }, (_, i) => 60 + ((i * 7) % 120)) };
    const mask: RasterImage = { width: S, height: S, channels: 1, bitDepth: 8, data: Uint8Array.from({ length: S * S }, (_, p) => (Math.abs(Math.floor(p / S) - 48) < 10 && Math.abs((p % S) - 40) < 12 ? 255 : 0)) };
    const reports: InpaintProgress[] = [];
    const r = await inpaint(img, mask, { sampler: 'one-call', steps: 10, seed: 1, onProgress: (p) => reports.push(p) });
    expect(r.windows).toHaveLength(1);
    expect(reports.map((p) => [p.step, p.T])).toEqual([[1, 1]]);
  });
});
