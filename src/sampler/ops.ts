/**
 * The named steps every sampler variant is built from: pasting the known structure, one guided
 * network step of each process, re-noising, scoring. Each draws its noise in the official order
 * and counts its network calls.
 */
import type { NoiseSource } from '../util/noise.js';
import { forwardJump } from '../sde/jump.js';
import type { SolverHistory } from './solvers/index.js';
import type { NetCalls, SamplerContext } from './types.js';

const fr = Math.fround;

/**
 * m⊙a + (1−m)⊙b in the official float32 order (exact selection for a binary mask); the [1,1,H,W]
 * mask is broadcast over the channels of a multi-channel state (RePaint pastes the RGB texture).
 */
export function paste(known: Float32Array, rest: Float32Array, m: Float32Array): Float32Array {
  const hw = m.length;
  const out = new Float32Array(rest.length);
  for (let i = 0; i < out.length; i++) {
    const mv = m[i % hw]!;
    out[i] = fr(fr(known[i]! * mv) + fr(rest[i]! * fr(1 - mv)));
  }
  return out;
}

export function mean2(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < out.length; i++) out[i] = fr(fr(a[i]! + b[i]!) / 2);
  return out;
}

export class Counter implements NoiseSource {
  n = 0;
  constructor(private readonly inner: NoiseSource) {}
  normal(shape: number[]): Float32Array {
    this.n++;
    return this.inner.normal(shape);
  }
}

/** One network-driven piece of the step, with call counting. */
export class Ops {
  calls: NetCalls = { structure: 0, texture: 0, discriminator: 0 };
  constructor(private readonly ctx: SamplerContext, private readonly noise: NoiseSource) {}

  /** S_sde.generate_states(gray⊙m, edge⊙m, level): one [1,1] draw */
  qS(level: number): Float32Array {
    const c = this.ctx;
    return c.sde.generateStates(c.gS, c.muS, level, this.noise.normal([...c.shapeX]), c.shapeX);
  }

  /** stepS(x, s → t): structure net at s, then the solver's step to t (official: reverse_sde_step of S_sde, t = s − 1); one [1,1] draw for stochastic solvers */
  async stepS(x: Float32Array, s: number, t: number, prev: SolverHistory | null = null): Promise<Stepped> {
    const c = this.ctx;
    this.calls.structure++;
    if (!c.nets.structure) throw new Error('sampler: no structure network');
    const eps = await c.nets.structure.run({ x: { shape: c.shapeX, data: x }, mu: { shape: c.shapeX, data: c.muS }, t: [s] });
    return this.solve(x, c.muS, eps.data, s, t, c.shapeX, prev);
  }

  private solve(x: Float32Array, mu: Float32Array, eps: Float32Array, s: number, t: number, shape: number[], prev: SolverHistory | null): Stepped {
    const r = this.ctx.solver.step({ sde: this.ctx.sde, x, mu, eps, s, t, shape, prev, noise: this.noise, clamp: [0, 1] });
    return { state: r.x, history: r.history };
  }

  /** stepY(y, s → t, S): texture net at s guided by S (null: an unguided IR-SDE texture net), then the solver's step to t (official: reverse_sde_step of sde); one [1,3] draw for stochastic solvers */
  async stepY(y: Float32Array, s: number, t: number, S: Float32Array | null, prev: SolverHistory | null = null): Promise<Stepped> {
    const eps = await this.textureEps(y, s, S);
    return this.solve(y, this.ctx.mu, eps, s, t, this.ctx.shapeY, prev);
  }

  /** the texture net's data prediction x̂0 at level s guided by S, clamped to [0, 1] (no solver step, no draw) */
  async x0Y(y: Float32Array, s: number, S: Float32Array): Promise<Float32Array> {
    const c = this.ctx;
    return c.sde.predictX0(y, c.mu, await this.textureEps(y, s, S), s, c.shapeY, [0, 1]);
  }

  /** one counted texture-net call at level s (S null: an unguided IR-SDE texture net) */
  private async textureEps(y: Float32Array, s: number, S: Float32Array | null): Promise<Float32Array> {
    const c = this.ctx;
    this.calls.texture++;
    const eps = await c.nets.texture.run({
      x: { shape: c.shapeY, data: y },
      mu: { shape: c.shapeY, data: c.mu },
      ...(S ? { S: { shape: c.shapeX, data: S } } : {}),
      t: [s],
    });
    return eps.data;
  }

  /** a q(y_level | y_0 = GT) sample of the texture (RePaint's known region at that level); one [1,3] draw */
  qY(level: number): Float32Array {
    const c = this.ctx;
    return c.sde.generateStates(c.image, c.mu, level, this.noise.normal([...c.shapeY]), c.shapeY);
  }

  /** re-noise the texture from level `from` up to `to` > from in closed form (RePaint's jump back); one [1,3] draw */
  renoiseY(y: Float32Array, from: number, to: number): Float32Array {
    const c = this.ctx;
    return forwardJump(c.sde, y, c.mu, from, to, this.noise.normal([...c.shapeY]));
  }

  /** re-noise the structure from grid level `from` up to `to`: the official one-level Euler step, or the closed-form jump across several levels; one [1,1] draw */
  renoise(x: Float32Array, from: number, to: number, officialLevel: number): Float32Array {
    if (to - from === 1) return this.forward(x, officialLevel);
    const c = this.ctx;
    return forwardJump(c.sde, x, c.muS, from, to, this.noise.normal([...c.shapeX]));
  }

  /** forward_step of S_sde with the coefficients of `level`; one [1,1] draw */
  forward(x: Float32Array, level: number): Float32Array {
    const c = this.ctx;
    const z = this.noise.normal([...c.shapeX]);
    if (level >= 1) return c.sde.forwardStep(x, c.muS, level, z, c.shapeX);
    // The official code indexes θ_0 (the dummy entry) when t = 1 is resampled; IRSDE refuses level 0.
    const th = c.sde.thetas[0]!;
    const sg = c.sde.sigmas[0]!;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const drift = fr(fr(th * fr(c.muS[i]! - x[i]!)) * c.sde.dt);
      out[i] = fr(fr(x[i]! + drift) + fr(sg * fr(z[i]! * c.sde.sqrtDt)));
    }
    return out;
  }

  /** D(t, y⊙m, S) as one score */
  async score(y: Float32Array, S: Float32Array, t: number): Promise<number> {
    const c = this.ctx;
    const d = c.nets.discriminator;
    if (!d) throw new Error('sampler: no discriminator');
    this.calls.discriminator++;
    const ym = c.bufYm;
    const hw = c.H * c.W;
    const m = c.mask;
    for (let ch = 0; ch < 3; ch++) for (let p = 0; p < hw; p++) ym[ch * hw + p] = fr(y[ch * hw + p]! * m[p]!);
    const out = await d.run({ x: { shape: c.shapeY, data: ym }, S: { shape: c.shapeX, data: S }, t: [t] });
    if (out.data.length !== 1) throw new Error(`sampler: discriminator returned ${out.data.length} scores, expected 1`);
    return out.data[0]!;
  }
}

/** A solver's result inside the sampler: the new state and what a multistep solver keeps. */
export interface Stepped {
  state: Float32Array;
  history: SolverHistory | null;
}
