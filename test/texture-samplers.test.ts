/**
 * Pins of the texture-only samplers (issue 25): `irsde` (IR-SDE's plain reverse SDE, no structure)
 * and `repaint` (RePaint's jump-back resampling on the texture process), each against a reference
 * loop written here from its description, on 1×3×4×4 states with a deterministic stub network that
 * refuses a structure guide. Every network call (level, input) and the output must agree bit for
 * bit on the same seeded stream.
 */
import { describe, it, expect } from 'vitest';
import { IRSDE, SeededNoise, type NoiseSource } from '../src/sde/index.js';
import { forwardJump } from '../src/sde/jump.js';
import type { NetInputs, NetRunner } from '../src/exec/types.js';
import { sample, type SamplerNets, type SamplerOptions } from '../src/sampler/index.js';
import { HW, SY, MASK, IMAGE, inputs, MU } from './sampler-fixture.js';

const fr = Math.fround;

interface Call {
  t: number;
  x: number[];
}

function eps({ x, mu, t }: NetInputs): Float32Array {
  return Float32Array.from(x.data, (v, i) => 0.25 * (v - mu!.data[i]!) - 0.05 + 0.01 * t[0]! + 0.005 * Math.cos(i));
}

/** an unguided texture network: logs its calls, refuses a guide */
function plainNets(log: Call[]): SamplerNets {
  const texture: NetRunner = {
    kind: 'texture',
    dispose() {},
    async run(inp) {
      if (inp.S) throw new Error('the unguided texture network was given a structure guide');
      log.push({ t: inp.t[0]!, x: Array.from(inp.x.data) });
      return { shape: [...inp.x.shape], data: eps(inp) };
    },
  };
  return { texture };
}

const sel = (known: ArrayLike<number>, rest: ArrayLike<number>) => Float32Array.from(rest, (v, i) => (MASK[i % HW] ? known[i]! : v));

/** the reference: draws from `noise` in the documented order */
class Reference {
  log: Call[] = [];
  constructor(private readonly sde: IRSDE, private readonly noise: NoiseSource) {}
  rev(y: Float32Array, t: number): Float32Array {
    this.log.push({ t, x: Array.from(y) });
    const e = eps({ x: { shape: SY, data: y }, mu: { shape: SY, data: MU }, t: [t] });
    return this.sde.reverseSdeStep(y, MU, this.sde.scoreFromNoise(e, t, SY), t, this.noise.normal(SY), SY);
  }
  composite(y: Float32Array): Float32Array {
    return Float32Array.from(y, (v, i) => fr(fr(IMAGE[i]! * MASK[i % HW]!) + fr(v * fr(1 - MASK[i % HW]!))));
  }
  /** IR-SDE: y_T = μ + λz, then the reverse SDE at every level, nothing pasted */
  irsde(): Float32Array {
    let y = this.sde.noiseState(MU, this.noise.normal(SY));
    for (let t = this.sde.T; t >= 1; t--) y = this.rev(y, t);
    return this.composite(y);
  }
  /** q(y_level | GT) for the known region */
  known(level: number): Float32Array {
    return this.sde.generateStates(IMAGE, MU, level, this.noise.normal(SY), SY);
  }
  /** RePaint on the full grid: after each step the known region at the new level; at t ≡ 0 (mod jump) jump back k levels and come down again, uMax − 1 times */
  repaint(o: { uMax: number; jump: number; re: number }): Float32Array {
    const T = this.sde.T;
    let y = this.sde.noiseState(MU, this.noise.normal(SY));
    for (let t = T; t >= 1; t--) {
      const down = this.rev(y, t);
      y = sel(this.known(t - 1), down);
      let k = t % o.jump === 0 ? o.re : 0;
      if (k > T - t + 1) k = T - t + 1;
      if (k === 0) continue;
      for (let u = 1; u < o.uMax; u++) {
        let yj = forwardJump(this.sde, y, MU, t - 1, t - 1 + k, this.noise.normal(SY));
        for (let l = t - 1 + k; l >= t; l--) yj = sel(this.known(l - 1), this.rev(yj, l));
        y = yj;
      }
    }
    return this.composite(y);
  }
}

async function run(sde: IRSDE, options: SamplerOptions, seed = 3) {
  const log: Call[] = [];
  const r = await sample({ nets: plainNets(log), sde, inputs, noise: new SeededNoise(seed), options });
  return { ...r, log };
}

describe('irsde sampler', () => {
  it('equals the plain reverse-SDE loop: every call and the output, bit for bit', async () => {
    const sde = new IRSDE({ T: 12 });
    const got = await run(sde, { variant: 'irsde' });
    const ref = new Reference(sde, new SeededNoise(3));
    const want = ref.irsde();
    expect(got.log.map((c) => c.t)).toEqual(ref.log.map((c) => c.t));
    expect(got.log).toEqual(ref.log);
    expect(Array.from(got.out)).toEqual(Array.from(want));
    // one draw for y_T and one per level; no structure state, no structure or discriminator call
    expect(got.stats.draws).toBe(1 + 12);
    expect(got.stats.calls).toEqual({ structure: 0, texture: 12, discriminator: 0 });
    expect(got.x).toBeNull();
  });

  it('never pastes the known region into the state (IR-SDE inpaints from μ alone)', async () => {
    const sde = new IRSDE({ T: 6 });
    const got = await run(sde, { variant: 'irsde' });
    // the final state differs from the ground truth in the known region (it is only composited)
    const known = [...MASK.keys()].filter((p) => MASK[p]);
    expect(known.some((p) => got.y[p] !== IMAGE[p])).toBe(true);
    expect(known.every((p) => got.out[p] === IMAGE[p])).toBe(true);
  });

  it('runs on a coarser grid with a multi-level solver (one call per grid step)', async () => {
    const sde = new IRSDE({ T: 20 });
    const got = await run(sde, { variant: 'irsde', solver: 'posterior', steps: 5 });
    expect(got.log.map((c) => c.t)).toEqual([20, 16, 12, 8, 4]);
    expect(got.out.every(Number.isFinite)).toBe(true);
  });
});

describe('repaint sampler', () => {
  for (const o of [
    { uMax: 6, jump: 5, re: 5 },
    { uMax: 3, jump: 4, re: 2 },
  ]) {
    it(`equals the RePaint reference loop (uMax ${o.uMax}, jump ${o.jump}, re ${o.re}): every call and the output`, async () => {
      const sde = new IRSDE({ T: 10 });
      const got = await run(sde, { variant: 'repaint', ...o, uMin: 1 }, 7);
      const ref = new Reference(sde, new SeededNoise(7));
      const want = ref.repaint(o);
      expect(got.log.map((c) => c.t)).toEqual(ref.log.map((c) => c.t));
      expect(got.log).toEqual(ref.log);
      expect(Array.from(got.out)).toEqual(Array.from(want));
      expect(got.stats.calls.structure + got.stats.calls.discriminator).toBe(0);
    });
  }

  it('jumps back: at T = 10, jump 5, re 5 the levels 5…1 are denoised again five times after step 5', async () => {
    const sde = new IRSDE({ T: 10 });
    const got = await run(sde, { variant: 'repaint', uMax: 6, jump: 5, re: 5 });
    const levels = got.log.map((c) => c.t);
    // step t = 10 (k clamped to 1: re-noise 9 → 10, denoise 10) five times, then 9…5, then 5 × (9…5), then 4…1
    const want = [10, ...Array(5).fill(10), 9, 8, 7, 6, 5, ...Array.from({ length: 5 }, () => [9, 8, 7, 6, 5]).flat(), 4, 3, 2, 1];
    expect(levels).toEqual(want);
  });

  it('the state holds the known region exactly at level 0 (pasted at every level, GT at t = 0)', async () => {
    const sde = new IRSDE({ T: 8 });
    const got = await run(sde, { variant: 'repaint', jump: 4, re: 2 });
    for (let i = 0; i < got.y.length; i++) if (MASK[i % HW]) expect(got.y[i]).toBe(IMAGE[i]);
  });
});

describe('variant checks', () => {
  it('a guided variant without a structure network is refused with one line', async () => {
    const sde = new IRSDE({ T: 4 });
    await expect(run(sde, { variant: 'no-resampling' })).rejects.toThrow(/variant no-resampling needs a structure network/);
  });
});
