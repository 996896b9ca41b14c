/**
 * Pins of every documented sampler behaviour (issue #14): each variant (official, improved,
 * no-resampling, no-discriminator, the `fill` structure guide), each step rule (sde, posterior),
 * the resampling schedule (u_max, u_min, jump, re), the noise draw order and the final
 * composite. Everything runs on 1×1×4×4 structure / 1×3×4×4 texture states with deterministic
 * stub networks that log their inputs, so each test takes milliseconds and fails when the
 * behaviour it names is broken (checked by mutating the sampler, see the issue).
 *
 * Two kinds of checks:
 * - targeted: one behaviour against its formula from docs/design.md / the README (the posterior clamp, the
 *   tie rule, each `improved` fix on its own, the paste level, the re-noising coefficients…);
 * - a reference sampler written here from docs/design.md §5.3–5.5 (plus the README's
 *   variants), run against `sample`/`step` on the same seeded stream: every network call
 *   (kind, t, inputs) and every output must agree bit for bit.
 */
import { describe, it, expect } from 'vitest';
import { IRSDE, SeededNoise, type NoiseSource } from '../src/sde/index.js';
import { prepareFill, filledMean } from '../src/sde/fill.js';
import type { NetInputs, NetKind, NetRunner } from '../src/exec/types.js';
import type { F32Tensor } from '../src/util/tensor.js';
import {
  sample,
  step,
  makeContext,
  type SamplerNets,
  type SamplerOptions,
  type SamplerVariant,
  type StepInfo,
  type StepRule,
} from '../src/sampler/index.js';
import { fillStructureRunner } from '../src/sampler/fill-structure.js';
import { HW, SX, SY, MASK, IMAGE, GRAY, EDGE, inputs, MU } from './sampler-fixture.js';

const fr = Math.fround;
const HOLE = [...MASK.keys()].filter((p) => MASK[p] === 0);
const KNOWN = [...MASK.keys()].filter((p) => MASK[p] === 1);
const MUS = Float32Array.from(EDGE, (v, p) => fr(v * MASK[p]!));
const GS = Float32Array.from(GRAY, (v, p) => fr(v * MASK[p]!));

const sde10 = new IRSDE({ T: 10 }); // early t = 10 … 4 (k = 1 at t = 10, k = 5 at t = 5), late 3 … 1
const sde20 = new IRSDE({ T: 20 });

// ---- recorded noise ------------------------------------------------------------------------

/** a seeded stream whose draws (shape and values) are recorded in order */
class Tape implements NoiseSource {
  draws: { shape: number[]; data: Float32Array }[] = [];
  private readonly inner: SeededNoise;
  constructor(seed: number) {
    this.inner = new SeededNoise(seed);
  }
  normal(shape: number[]): Float32Array {
    const d = this.inner.normal(shape);
    this.draws.push({ shape: [...shape], data: Float32Array.from(d) });
    return d;
  }
  get shapes(): string[] {
    return this.draws.map((d) => (d.shape[1] === 3 ? 'Y' : 'X'));
  }
  z(i: number): Float32Array {
    const d = this.draws[i];
    if (!d) throw new Error(`no draw ${i}`);
    return d.data;
  }
}

// ---- stub networks -------------------------------------------------------------------------

interface Call {
  kind: NetKind;
  t: number;
  x: number[];
  mu: number[] | null;
  S: number[] | null;
}

type DScore = number[] | ((inp: NetInputs) => number);

/** pure deterministic U-Nets (ε depends on x, μ, t and the guide) and a scripted or pure discriminator; every call is logged */
function stubNets(log: Call[], d: DScore = pureD, eps?: { structure?: EpsFn; texture?: EpsFn }): SamplerNets {
  let dCalls = 0;
  const mk = (kind: NetKind, f: (inp: NetInputs) => F32Tensor): NetRunner => ({
    kind,
    dispose() {},
    async run(inp) {
      log.push({ kind, t: inp.t[0]!, x: Array.from(inp.x.data), mu: inp.mu ? Array.from(inp.mu.data) : null, S: inp.S ? Array.from(inp.S.data) : null });
      return f(inp);
    },
  });
  return {
    structure: mk('structure', (inp) => ({ shape: [...inp.x.shape], data: (eps?.structure ?? structureEps)(inp) })),
    texture: mk('texture', (inp) => ({ shape: [...inp.x.shape], data: (eps?.texture ?? textureEps)(inp) })),
    discriminator: mk('discriminator', (inp) => {
      let s: number;
      if (typeof d === 'function') s = d(inp);
      else {
        if (dCalls >= d.length) throw new Error(`scripted discriminator: call ${dCalls} past the script of ${d.length}`);
        s = d[dCalls]!;
      }
      dCalls++;
      return { shape: [1], data: Float32Array.of(s) };
    }),
  };
}
type EpsFn = (inp: NetInputs) => Float32Array;

function structureEps({ x, mu, t }: NetInputs): Float32Array {
  return Float32Array.from(x.data, (v, i) => 0.3 * (v - mu!.data[i]!) + 0.02 * t[0]! + 0.01 * Math.sin(i + 1));
}
function textureEps({ x, mu, S, t }: NetInputs): Float32Array {
  return Float32Array.from(x.data, (v, i) => 0.25 * (v - mu!.data[i]!) + 0.1 * S!.data[i % HW]! - 0.05 + 0.01 * t[0]! + 0.005 * Math.cos(i));
}
function pureD({ x, S, t }: NetInputs): number {
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += Math.sin(17 * x.data[i]! + i);
  for (let i = 0; i < S!.data.length; i++) s += 0.5 * Math.cos(13 * S!.data[i]! + i);
  return s / 100 + 1e-3 * t[0]!;
}
/** decreasing scores: every later candidate is lower (official: always accept) */
const falling = (): DScore => {
  let n = 0;
  return () => -n++;
};
/** increasing scores: every later candidate is higher (official: never better) */
const rising = (): DScore => {
  let n = 0;
  return () => n++;
};

/** ε that makes x̂0 = target exactly (up to float32): ε = (x − μ − (target − μ)·e_t)/σ̄_t */
function epsFor(sde: IRSDE, target: ArrayLike<number>): EpsFn {
  return ({ x, mu, t }) => {
    const e = sde.meanFactor(t[0]!);
    const sb = sde.sigmaBar(t[0]!);
    return Float32Array.from(x.data, (v, i) => (v - mu!.data[i]! - (target[i % target.length]! - mu!.data[i]!) * e) / sb);
  };
}

const byKind = (log: Call[], kind: NetKind) => log.filter((c) => c.kind === kind);
const pick = (a: ArrayLike<number>, idx: number[]) => idx.map((p) => a[p]!);

/** a level-t state to start a step from */
function states(seed: number): { y: Float32Array; x: Float32Array } {
  const n = new SeededNoise(seed);
  return {
    y: Float32Array.from(n.normal(SY), (z, i) => fr(MU[i]! + 0.1 * z)),
    x: Float32Array.from(n.normal(SX), (z, i) => fr(MUS[i]! + 0.1 * z)),
  };
}

async function runStep(sde: IRSDE, t: number, options: SamplerOptions, d: DScore = pureD, seed = 1, eps?: { structure?: EpsFn; texture?: EpsFn }) {
  const log: Call[] = [];
  const ctx = makeContext(sde, stubNets(log, d, eps), inputs, options);
  const tape = new Tape(seed);
  const s = states(100 + seed);
  const r = await step(ctx, s, t, tape);
  return { ...r, log, tape, init: s };
}

// ---- the sampler of docs/design.md §5, written out (reference) -------------------------------

const sel = (known: ArrayLike<number>, rest: ArrayLike<number>) => Float32Array.from(rest, (v, p) => (MASK[p] ? known[p]! : v));
const mean2 = (a: ArrayLike<number>, b: ArrayLike<number>) => Float32Array.from(a, (v, i) => fr(fr(v + b[i]!) / 2));

interface RefOpts {
  variant: SamplerVariant;
  stepRule: StepRule;
  uMax: number;
  uMin: number;
  jump: number;
  re: number;
  stageSwitch: number;
}
const REF_DEFAULTS: RefOpts = { variant: 'official', stepRule: 'sde', uMax: 6, uMin: 3, jump: 5, re: 5, stageSwitch: 0.4 };

class Ref {
  constructor(readonly sde: IRSDE, readonly nets: SamplerNets, readonly noise: NoiseSource, readonly o: RefOpts) {}

  rev(state: Float32Array, mu: Float32Array, eps: Float32Array, t: number, shape: number[]): Float32Array {
    const z = this.noise.normal([...shape]);
    if (this.o.stepRule === 'posterior') {
      const x0 = this.sde.predictX0(state, mu, eps, t, shape).map((v) => Math.min(1, Math.max(0, v)));
      return this.sde.posteriorStep(state, x0, mu, t, z, shape);
    }
    return this.sde.reverseSdeStep(state, mu, this.sde.scoreFromNoise(eps, t, shape), t, z, shape);
  }
  async stepS(x: Float32Array, t: number) {
    const eps = await this.nets.structure!.run({ x: { shape: SX, data: x }, mu: { shape: SX, data: MUS }, t: [t] });
    return this.rev(x, MUS, eps.data, t, SX);
  }
  async stepY(y: Float32Array, t: number, S: Float32Array) {
    const eps = await this.nets.texture.run({ x: { shape: SY, data: y }, mu: { shape: SY, data: MU }, S: { shape: SX, data: S }, t: [t] });
    return this.rev(y, MU, eps.data, t, SY);
  }
  qS(level: number) {
    return this.sde.generateStates(GS, MUS, level, this.noise.normal([...SX]), SX);
  }
  /** forward_step with θ_level, σ_level (level 0 = the dummy entry, as the official indexing reaches it) */
  fwd(x: Float32Array, level: number) {
    const z = this.noise.normal([...SX]);
    const s = this.sde;
    const th = s.thetas[level]!;
    const sg = s.sigmas[level]!;
    return Float32Array.from(x, (v, i) => fr(fr(v + fr(fr(th * fr(MUS[i]! - v)) * s.dt)) + fr(sg * fr(z[i]! * s.sqrtDt))));
  }
  async D(y: Float32Array, S: Float32Array, t: number) {
    const ym = Float32Array.from(y, (v, i) => fr(v * MASK[i % HW]!));
    return (await this.nets.discriminator!.run({ x: { shape: SY, data: ym }, S: { shape: SX, data: S }, t: [t] })).data[0]!;
  }

  async early(y: Float32Array, xIn: Float32Array, t: number) {
    const { variant, uMax, uMin, jump, re } = this.o;
    const T = this.sde.T;
    const imp = variant === 'improved';
    const useD = variant === 'official' || imp;
    const xk = this.qS(imp ? t : t - 1);
    const x = await this.stepS(sel(xk, xIn), t);
    let xc = x;
    let yc = await this.stepY(y, t, x);
    const Dn = useD ? await this.D(yc, x, t) : NaN;
    let k = variant === 'no-resampling' ? 0 : t % jump === 0 ? re : 0;
    if (k + t > T) k = T - t + 1;
    const decisions: string[] = [];
    for (let i = 1; i < uMax && k > 0; i++) {
      if (variant === 'no-discriminator' && i >= uMin) break;
      let x1 = xc;
      for (let j = 0; j < k; j++) x1 = this.fwd(x1, imp ? t + j : t - 1 + j);
      for (let r = k - 1; r >= 0; r--) x1 = await this.stepS(sel(imp ? this.qS(t + r) : xk, x1), t + r);
      const y1 = await this.stepY(y, t, x1);
      let better = false;
      if (useD) {
        const Dp = await this.D(y1, x1, t);
        better = imp ? Dp > Dn : Dp < Dn;
      }
      if (better) {
        decisions.push('accept');
        yc = y1;
        xc = x1;
      } else if (i < uMin) {
        decisions.push('average');
        yc = mean2(yc, y1);
        xc = mean2(xc, x1);
      } else {
        decisions.push('stop');
        break;
      }
    }
    return { y: yc, x: imp ? xc : sel(xk, xc), k, decisions };
  }

  async late(y: Float32Array, t: number) {
    const g = Float32Array.from({ length: HW }, (_, p) => fr(fr(fr(y[p]! + y[HW + p]!) + y[2 * HW + p]!) / 3));
    return this.stepY(y, t, g);
  }

  async sample() {
    const lam = this.sde.lambda;
    let y: Float32Array = Float32Array.from(this.noise.normal([...SY]), (z, i) => fr(MU[i]! + fr(z * lam)));
    let x: Float32Array = Float32Array.from(this.noise.normal([...SX]), (z, i) => fr(MUS[i]! + fr(z * lam)));
    const sw = Math.max(1, Math.trunc(this.o.stageSwitch * this.sde.T));
    const ks: number[] = [];
    const decisions: string[][] = [];
    for (let t = this.sde.T; t >= 1; t--) {
      if (t >= sw) {
        const r = await this.early(y, x, t);
        y = r.y;
        x = r.x;
        ks.push(r.k);
        decisions.push(r.decisions);
      } else {
        y = await this.late(y, t);
        ks.push(0);
        decisions.push([]);
      }
    }
    const out = Float32Array.from(y, (v, i) => (MASK[i % HW] ? IMAGE[i]! : v));
    return { y, x, out, ks, decisions };
  }
}

// ---- tests ---------------------------------------------------------------------------------

describe('step rules', () => {
  it('sde: y − (θ_t(μ − y) + σ_t²·ε̂/σ̄_t)·dt − σ_t·√dt·z at level t (late step)', async () => {
    const t = 3;
    const r = await runStep(sde10, t, {});
    const [call] = r.log;
    const eps = textureEps({ x: { shape: SY, data: Float32Array.from(call!.x) }, mu: { shape: SY, data: MU }, S: { shape: SX, data: Float32Array.from(call!.S!) }, t: [t] });
    const z = r.tape.z(0);
    const s = sde10;
    const th = s.thetas[t]!;
    const sg = s.sigmas[t]!;
    const sb = s.sigmaBars[t]!;
    let worst = 0;
    for (let i = 0; i < 3 * HW; i++) {
      const y = r.init.y[i]!;
      const want = y - th * (MU[i]! - y) * s.dt - (sg * sg * eps[i]! * s.dt) / sb - sg * Math.sqrt(s.dt) * z[i]!;
      worst = Math.max(worst, Math.abs(r.y[i]! - want));
    }
    expect(worst).toBeLessThan(2e-6);
  });

  /** the double-precision posterior sample μ + A(y − μ) + B(x̂0 − μ) + sd·z of docs/design.md §1.5–1.6 */
  function posteriorWant(sde: IRSDE, t: number, y: number, mu: number, x0: number, z: number): number {
    const a = Math.exp(-sde.thetas[t]! * sde.dt);
    const b = Math.exp(-sde.thetasCumsum[t]! * sde.dt);
    const c = Math.exp(-sde.thetasCumsum[t - 1]! * sde.dt);
    const A = (a * (1 - c * c)) / (1 - b * b);
    const B = (c * (1 - a * a)) / (1 - b * b);
    const sd = sde.sigmaBars[t - 1]! * Math.sqrt((1 - a * a) / (1 - b * b));
    return mu + A * (y - mu) + B * (x0 - mu) + sd * z;
  }
  /** x̂0 targets: out of [0, 1] on both sides and inside it */
  const TARGET = Float32Array.from({ length: 3 * HW }, (_, i) => [-0.6, 0.3, 1.7, 0.8, 2.5, -1.2][i % 6]!);
  const clip = (v: number) => Math.min(1, Math.max(0, v));

  it('posterior: x̂0 implied by ε̂ is clamped to [0, 1], then the exact posterior sample (clamp active)', async () => {
    const t = 2;
    const r = await runStep(sde10, t, { stepRule: 'posterior' }, pureD, 1, { texture: epsFor(sde10, TARGET) });
    const z = r.tape.z(0);
    expect(r.tape.draws.length).toBe(1);
    let worstClamped = 0;
    let leastUnclamped = Infinity;
    for (let i = 0; i < 3 * HW; i++) {
      const y = r.init.y[i]!;
      const clamped = posteriorWant(sde10, t, y, MU[i]!, clip(TARGET[i]!), z[i]!);
      worstClamped = Math.max(worstClamped, Math.abs(r.y[i]! - clamped));
      if (clip(TARGET[i]!) !== TARGET[i]) leastUnclamped = Math.min(leastUnclamped, Math.abs(r.y[i]! - posteriorWant(sde10, t, y, MU[i]!, TARGET[i]!, z[i]!)));
    }
    expect(worstClamped).toBeLessThan(2e-5);
    // where the clamp is active the result is far from the unclamped formula
    expect(leastUnclamped).toBeGreaterThan(0.05);
  });

  it('posterior: at t = 1 the step returns the clamped x̂0 (posterior std 0, A = 0, B = 1)', async () => {
    const r = await runStep(sde10, 1, { stepRule: 'posterior' }, pureD, 1, { texture: epsFor(sde10, TARGET) });
    for (let i = 0; i < 3 * HW; i++) expect(Math.abs(r.y[i]! - clip(TARGET[i]!))).toBeLessThan(2e-6);
  });

  it('posterior: also drives the structure steps (clamped), with the same draws as sde', async () => {
    const t = 9;
    const target = Float32Array.from({ length: HW }, (_, p) => [1.6, -0.4, 0.5, 2][p % 4]!);
    const r = await runStep(sde10, t, { stepRule: 'posterior' }, pureD, 1, { structure: epsFor(sde10, target) });
    const [sCall] = byKind(r.log, 'structure');
    const z = r.tape.z(1);
    // the structure candidate reaches the texture net as its guide; its hole is the posterior step
    const S = byKind(r.log, 'texture')[0]!.S!;
    for (let p = 0; p < HW; p++) expect(Math.abs(S[p]! - posteriorWant(sde10, t, sCall!.x[p]!, MUS[p]!, clip(target[p]!), z[p]!))).toBeLessThan(2e-5);
    const sdeRun = await runStep(sde10, t, { stepRule: 'sde' }, pureD, 1, { structure: epsFor(sde10, target) });
    expect(sdeRun.tape.shapes).toEqual(r.tape.shapes);
    expect(sdeRun.y).not.toEqual(r.y);
  });
});

describe('official early step (docs/design.md §5.3)', () => {
  it('draw order: qS(t−1) [1,1], stepS [1,1], stepY [1,3]; per iteration k forward, k stepS, one stepY', async () => {
    const k = 5;
    const r = await runStep(sde10, 5, {}, falling());
    expect(r.info.k).toBe(k);
    expect(r.info.resampling.map((d) => d.decision)).toEqual(['accept', 'accept', 'accept', 'accept', 'accept']);
    const iter = [...'X'.repeat(2 * k), 'Y'];
    expect(r.tape.shapes).toEqual(['X', 'X', 'Y', ...iter, ...iter, ...iter, ...iter, ...iter]);
    expect(r.info.draws).toBe(3 + 5 * (2 * k + 1));
  });

  it('pastes the level-(t−1) known structure before the step, at every resampling level and on the carried state', async () => {
    const t = 5;
    const r = await runStep(sde10, t, {}, [0.5, 0.4, 0.6, 0.7]);
    const xk = sde10.generateStates(GS, MUS, t - 1, r.tape.z(0), SX);
    const sCalls = byKind(r.log, 'structure');
    expect(sCalls.length).toBe(1 + 3 * 5);
    for (const c of sCalls) expect(pick(c.x, KNOWN)).toEqual(pick(xk, KNOWN));
    expect(pick(sCalls[0]!.x, HOLE)).toEqual(pick(r.init.x, HOLE));
    expect(pick(r.x!, KNOWN)).toEqual(pick(xk, KNOWN));
    // and not the level-t sample (improved's)
    expect(pick(xk, KNOWN)).not.toEqual(pick(sde10.generateStates(GS, MUS, t, r.tape.z(0), SX), KNOWN));
  });

  it('re-noises the current candidate with θ_{t−1+j}, σ_{t−1+j} (docs/design.md §6.1 item 5)', async () => {
    const t = 5;
    const k = 5;
    const r = await runStep(sde10, t, {}, [0.5, 0.4, 0.6, 0.7]);
    const xc = Float32Array.from(byKind(r.log, 'texture')[0]!.S!);
    let x1: Float32Array = xc;
    let xImp: Float32Array = xc;
    for (let j = 0; j < k; j++) {
      x1 = sde10.forwardStep(x1, MUS, t - 1 + j, r.tape.z(3 + j), SX);
      xImp = sde10.forwardStep(xImp, MUS, t + j, r.tape.z(3 + j), SX);
    }
    const first = byKind(r.log, 'structure')[1]!;
    expect(first.t).toBe(t + k - 1);
    expect(pick(first.x, HOLE)).toEqual(pick(x1, HOLE));
    expect(pick(first.x, HOLE)).not.toEqual(pick(xImp, HOLE));
  });

  it('denoises candidates at t+k−1 … t, re-predicts y1 from the step input y at level t, scores y⊙m at level t', async () => {
    const t = 5;
    const r = await runStep(sde10, t, {}, falling());
    const sCalls = byKind(r.log, 'structure');
    const tCalls = byKind(r.log, 'texture');
    const dCalls = byKind(r.log, 'discriminator');
    expect(sCalls.map((c) => c.t)).toEqual([5, ...[1, 2, 3, 4, 5].flatMap(() => [9, 8, 7, 6, 5])]);
    expect(tCalls.map((c) => c.t)).toEqual([5, 5, 5, 5, 5, 5]);
    expect(dCalls.map((c) => c.t)).toEqual([5, 5, 5, 5, 5, 5]);
    expect(r.info.calls).toEqual({ structure: 26, texture: 6, discriminator: 6 });
    for (const c of tCalls) expect(c.x).toEqual(Array.from(r.init.y));
    // each candidate's guide is its denoised structure, which is also what D sees
    for (let i = 0; i < 6; i++) expect(dCalls[i]!.S).toEqual(tCalls[i]!.S);
    // every candidate was accepted: the last one is the result; D saw it masked
    const last = dCalls[5]!;
    for (let c = 0; c < 3; c++) {
      for (const p of HOLE) expect(last.x[c * HW + p] === 0).toBe(true);
      for (const p of KNOWN) expect(last.x[c * HW + p]).toBe(r.y[c * HW + p]);
    }
    // the main structure step's hole is the carried structure's hole
    expect(pick(r.x!, HOLE)).toEqual(pick(tCalls[5]!.S!, HOLE));
  });

  it('lower score wins; ties are not better; Dn is never updated', async () => {
    const dec = async (scores: number[], variant: SamplerVariant = 'official') =>
      (await runStep(sde10, 5, { variant }, scores)).info.resampling.map((d) => d.decision);
    expect(await dec([0.5, 0.4, 0.45, 0.6])).toEqual(['accept', 'accept', 'stop']);
    expect(await dec([0.5, 0.5, 0.5, 0.5])).toEqual(['average', 'average', 'stop']);
    expect(await dec([0.5, 0.6, 0.4, 0.5])).toEqual(['average', 'accept', 'stop']);
    expect(await dec([0.5, 0.4, 0.3, 0.2, 0.1, 0])).toEqual(['accept', 'accept', 'accept', 'accept', 'accept']);
  });

  it('accept takes the candidate, average mixes (yc + y1)/2 and (xc + x1)/2, stop keeps the current one', async () => {
    const t = 5;
    // i = 1 average, i = 2 accept, i = 3 stop
    const r = await runStep(sde10, t, {}, [0.5, 0.6, 0.4, 0.5]);
    expect(r.info.resampling.map((d) => d.decision)).toEqual(['average', 'accept', 'stop']);
    // the guides are the structure candidates; D's input holds the known part of each texture candidate
    const tCalls = byKind(r.log, 'texture');
    const dCalls = byKind(r.log, 'discriminator');
    const x0 = tCalls[0]!.S!;
    const x1 = tCalls[1]!.S!;
    const x2 = tCalls[2]!.S!;
    // iteration 2 re-noised the average of the first two candidates (first forward draw of iteration 2: 3 + 11)
    const avg = mean2(x0, x1);
    const re2 = sde10.forwardStep(avg, MUS, t - 1, r.tape.z(3 + 11), SX);
    let x = re2;
    for (let j = 1; j < 5; j++) x = sde10.forwardStep(x, MUS, t - 1 + j, r.tape.z(3 + 11 + j), SX);
    expect(pick(byKind(r.log, 'structure')[6]!.x, HOLE)).toEqual(pick(x, HOLE));
    // accepted at i = 2, kept at the stop: the result is the i = 2 candidate
    expect(pick(r.x!, HOLE)).toEqual(pick(x2, HOLE));
    for (let c = 0; c < 3; c++) for (const p of KNOWN) expect(r.y[c * HW + p]).toBe(dCalls[2]!.x[c * HW + p]);
  });
});

describe('improved: each fix on its own (README, docs/design.md §6.1 items 1, 4, 5)', () => {
  it('fix 1: the higher score wins (ties still not better); official takes the lower', async () => {
    const dec = async (variant: SamplerVariant, scores: number[]) => (await runStep(sde10, 5, { variant }, scores)).info.resampling.map((d) => d.decision);
    expect(await dec('improved', [0.5, 0.6, 0.55, 0.4])).toEqual(['accept', 'accept', 'stop']);
    expect(await dec('official', [0.5, 0.6, 0.55, 0.4, 0.7])).toEqual(['average', 'average', 'accept', 'stop']);
    expect(await dec('improved', [0.5, 0.5, 0.5, 0.5])).toEqual(['average', 'average', 'stop']);
    expect(await dec('improved', [0.5, 0.4, 0.3, 0.2])).toEqual(['average', 'average', 'stop']);
  });

  it('fix 4: pastes a fresh q(x_τ | x0) at the level τ being denoised (τ = t, then t+k−1 … t), drawn just before each stepS', async () => {
    const t = 5;
    const k = 5;
    const r = await runStep(sde10, t, { variant: 'improved' }, [0.5, 0.4, 0.3, 0.2]);
    const sCalls = byKind(r.log, 'structure');
    expect(pick(sCalls[0]!.x, KNOWN)).toEqual(pick(sde10.generateStates(GS, MUS, t, r.tape.z(0), SX), KNOWN));
    expect(pick(sCalls[0]!.x, KNOWN)).not.toEqual(pick(sde10.generateStates(GS, MUS, t - 1, r.tape.z(0), SX), KNOWN));
    // iteration 1: draws 3 … 3+k−1 forward, then (q, stepS) per level
    for (let n = 0; n < k; n++) {
      const level = t + k - 1 - n;
      const c = sCalls[1 + n]!;
      expect(c.t).toBe(level);
      expect(pick(c.x, KNOWN)).toEqual(pick(sde10.generateStates(GS, MUS, level, r.tape.z(3 + k + 2 * n), SX), KNOWN));
    }
    const iter = [...'X'.repeat(3 * k), 'Y'];
    expect(r.tape.shapes).toEqual(['X', 'X', 'Y', ...iter, ...iter, ...iter]);
    expect(r.info.draws).toBe(3 + 3 * (3 * k + 1));
  });

  it('fix 4: the carried structure is the candidate itself (no paste of a lower level)', async () => {
    const r = await runStep(sde10, 9, { variant: 'improved' });
    expect(r.info.k).toBe(0);
    expect(Array.from(r.x!)).toEqual(byKind(r.log, 'texture')[0]!.S);
    const o = await runStep(sde10, 9, { variant: 'official' });
    const xk = sde10.generateStates(GS, MUS, 8, o.tape.z(0), SX);
    expect(Array.from(o.x!)).toEqual(Array.from(sel(xk, byKind(o.log, 'texture')[0]!.S!)));
    expect(pick(o.x!, KNOWN)).not.toEqual(pick(byKind(o.log, 'texture')[0]!.S!, KNOWN));
  });

  it('fix 5: re-noising from t−1+j to t+j uses θ_{t+j}, σ_{t+j}', async () => {
    const t = 5;
    const k = 5;
    const r = await runStep(sde10, t, { variant: 'improved' }, [0.5, 0.4, 0.3, 0.2]);
    const xc = Float32Array.from(byKind(r.log, 'texture')[0]!.S!);
    let x1: Float32Array = xc;
    let xOff: Float32Array = xc;
    for (let j = 0; j < k; j++) {
      x1 = sde10.forwardStep(x1, MUS, t + j, r.tape.z(3 + j), SX);
      xOff = sde10.forwardStep(xOff, MUS, t - 1 + j, r.tape.z(3 + j), SX);
    }
    const first = byKind(r.log, 'structure')[1]!;
    expect(first.t).toBe(t + k - 1);
    expect(pick(first.x, HOLE)).toEqual(pick(x1, HOLE));
    expect(pick(first.x, HOLE)).not.toEqual(pick(xOff, HOLE));
  });
});

describe('other variants', () => {
  it('no-resampling: no discriminator, no resampling even at t ≡ 0 (mod jump), 3 draws, official paste level', async () => {
    const t = 5;
    const r = await runStep(sde10, t, { variant: 'no-resampling' }, []);
    expect(r.info.k).toBe(0);
    expect(r.info.end).toBe('no_resample');
    expect(r.info.resampling).toEqual([]);
    expect(r.info.calls).toEqual({ structure: 1, texture: 1, discriminator: 0 });
    expect(r.tape.shapes).toEqual(['X', 'X', 'Y']);
    const xk = sde10.generateStates(GS, MUS, t - 1, r.tape.z(0), SX);
    expect(pick(byKind(r.log, 'structure')[0]!.x, KNOWN)).toEqual(pick(xk, KNOWN));
    expect(Array.from(r.x!)).toEqual(Array.from(sel(xk, byKind(r.log, 'texture')[0]!.S!)));
    // a discriminator is not needed
    const log: Call[] = [];
    const { discriminator: _d, ...nets } = stubNets(log);
    expect(() => makeContext(sde10, nets, inputs, { variant: 'no-resampling' })).not.toThrow();
    expect(() => makeContext(sde10, nets, inputs, { variant: 'official' })).toThrow(/needs a discriminator/);
  });

  it('on a coarse grid the official family pastes the known structure one level below the step, not at the next grid level', async () => {
    // grid 20, 16, 12, 8, 4, 0: the step from s = 16 goes to t = 12. A level-12 known region is four
    // levels cleaner than the state the structure net denoises from 16 (docs/experiments.md).
    const s = 16;
    for (const variant of ['official', 'no-resampling', 'no-discriminator'] as const) {
      const r = await runStep(sde20, s, { variant, solver: 'mr-ode-1', steps: 5 });
      expect(r.info.next, variant).toBe(12);
      const first = byKind(r.log, 'structure')[0]!;
      expect(first.t).toBe(s);
      const known = pick(first.x, KNOWN);
      expect(known, variant).toEqual(pick(sde20.generateStates(GS, MUS, s - 1, r.tape.z(0), SX), KNOWN));
      expect(known, variant).not.toEqual(pick(sde20.generateStates(GS, MUS, 12, r.tape.z(0), SX), KNOWN));
    }
  });

  it('no-discriminator: i = 1 … u_min−1 averaged, then stops without drawing an i = u_min candidate; D never called', async () => {
    const t = 5;
    const r = await runStep(sde10, t, { variant: 'no-discriminator' }, []);
    expect(r.info.calls).toEqual({ structure: 11, texture: 3, discriminator: 0 });
    expect(r.info.resampling.map((d) => d.decision)).toEqual(['average', 'average']);
    expect(r.info.resampling.every((d) => Number.isNaN(d.Dp) && Number.isNaN(d.Dn))).toBe(true);
    expect(r.info.end).toBe('stop');
    expect(r.info.draws).toBe(3 + 2 * 11);
    const four = await runStep(sde10, t, { variant: 'no-discriminator', uMin: 5 }, []);
    expect(four.info.resampling.length).toBe(4);
    expect(four.info.end).toBe('stop');
    const capped = await runStep(sde10, t, { variant: 'no-discriminator', uMin: 5, uMax: 3 }, []);
    expect(capped.info.resampling.length).toBe(2);
    expect(capped.info.end).toBe('exhausted');
    // y = ((y0 + y1)/2 + y2)/2 over the texture candidates: checked against the reference below
    const ref = await refStep(sde10, t, { ...REF_DEFAULTS, variant: 'no-discriminator' }, []);
    expect(Array.from(r.y)).toEqual(Array.from(ref.y));
    expect(Array.from(r.x!)).toEqual(Array.from(ref.x));
  });

  it('late stage: guide = (R + G + B)/3 of the state at level t, texture net only, one [1,3] draw, no structure state', async () => {
    for (const t of [3, 1]) {
      const r = await runStep(sde10, t, {}, []);
      expect(r.info.stage).toBe('late');
      expect(r.x).toBeNull();
      expect(r.log.map((c) => `${c.kind}@${c.t}`)).toEqual([`texture@${t}`]);
      expect(r.tape.shapes).toEqual(['Y']);
      const g = Array.from({ length: HW }, (_, p) => fr(fr(fr(r.init.y[p]! + r.init.y[HW + p]!) + r.init.y[2 * HW + p]!) / 3));
      expect(r.log[0]!.S).toEqual(g);
      expect(r.log[0]!.x).toEqual(Array.from(r.init.y));
    }
  });

  it('stage switch: t = trunc(0.4·T) is the last early step, the one below is late', async () => {
    expect((await runStep(sde10, 4, {})).info.stage).toBe('early');
    expect((await runStep(sde10, 3, {})).info.stage).toBe('late');
    expect((await runStep(sde10, 6, { stageSwitch: 0.7 })).info.stage).toBe('late');
    expect((await runStep(sde10, 7, { stageSwitch: 0.7 })).info.stage).toBe('early');
  });

  it('fill structure guide: ε = (x − μS − (g − μS)·e_t)/σ̄_t, so with the posterior rule each structure step lands on the posterior towards the Telea-filled gray', async () => {
    await prepareFill('telea');
    const g = filledMean('telea', inputs.gray, inputs.mask);
    const runner = fillStructureRunner(sde10, inputs.gray, inputs.mask);
    const x = states(3).x;
    const t = 7;
    const eps = await runner.run({ x: { shape: SX, data: x }, mu: { shape: SX, data: MUS }, t: [t] });
    const e = sde10.meanFactor(t);
    const sb = sde10.sigmaBar(t);
    for (let p = 0; p < HW; p++) expect(eps.data[p]).toBeCloseTo((x[p]! - MUS[p]! - (g[p]! - MUS[p]!) * e) / sb, 5);
    // in a sampler step: the structure candidate is the posterior mean towards g plus sd·z
    const log: Call[] = [];
    const nets = { ...stubNets(log), structure: fillStructureRunner(sde10, inputs.gray, inputs.mask) };
    const ctx = makeContext(sde10, nets, inputs, { variant: 'no-resampling', stepRule: 'posterior' });
    const tape = new Tape(4);
    const s = states(5);
    await step(ctx, s, t, tape);
    const xk = sde10.generateStates(GS, MUS, t - 1, tape.z(0), SX);
    const want = sde10.posteriorStep(sel(xk, s.x), g, MUS, t, tape.z(1), SX);
    const S = byKind(log, 'texture')[0]!.S!;
    for (let p = 0; p < HW; p++) expect(Math.abs(S[p]! - want[p]!)).toBeLessThan(1e-5);
  }, 120_000);
});

describe('resampling schedule (u_max, u_min, jump, re)', () => {
  async function schedule(sde: IRSDE, options: SamplerOptions, d: DScore) {
    const infos: StepInfo[] = [];
    const tape = new Tape(2);
    const res = await sample({ nets: stubNets([], d), sde, inputs, noise: tape, options: { ...options, onStep: (i) => infos.push(i) } });
    return { infos, res, tape };
  }

  it('official numbers: k = re at t ≡ 0 (mod jump), clamped to T − t + 1 at the top; u_max−1 iterations when all accepted, u_min when none', async () => {
    for (const [d, n] of [[falling(), 5], [rising(), 3]] as const) {
      const { infos, res, tape } = await schedule(sde10, {}, d);
      expect(infos.map((i) => i.t)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      expect(infos.map((i) => i.k)).toEqual([1, 0, 0, 0, 0, 5, 0, 0, 0, 0]);
      expect(infos.map((i) => i.stage)).toEqual([...Array(7).fill('early'), ...Array(3).fill('late')]);
      expect(infos.map((i) => i.resampling.length)).toEqual([n, 0, 0, 0, 0, n, 0, 0, 0, 0]);
      for (const s of infos) {
        const m = s.resampling.length;
        if (s.stage === 'late') expect(s.calls).toEqual({ structure: 0, texture: 1, discriminator: 0 });
        else expect(s.calls).toEqual({ structure: 1 + m * s.k, texture: 1 + m, discriminator: 1 + m });
        expect(s.draws).toBe(s.stage === 'late' ? 1 : 3 + m * (2 * s.k + 1));
      }
      expect(res.stats.draws).toBe(tape.draws.length);
      expect(tape.draws.length).toBe(2 + infos.reduce((a, s) => a + s.draws, 0));
      expect(res.stats.steps).toBe(10);
    }
  });

  it('custom numbers (u_max 4, u_min 2, jump 3, re 2) at T = 9', async () => {
    const sde9 = new IRSDE({ T: 9 });
    for (const [d, n] of [[falling(), 3], [rising(), 2]] as const) {
      const { infos } = await schedule(sde9, { uMax: 4, uMin: 2, jump: 3, re: 2 }, d);
      expect(infos.map((i) => i.t)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
      // switch level trunc(3.6) = 3
      expect(infos.map((i) => i.stage)).toEqual([...Array(7).fill('early'), 'late', 'late']);
      expect(infos.map((i) => i.k)).toEqual([1, 0, 0, 2, 0, 0, 2, 0, 0]);
      expect(infos.map((i) => i.resampling.length)).toEqual([n, 0, 0, n, 0, 0, n, 0, 0]);
      expect(infos[3]!.calls).toEqual({ structure: 1 + 2 * n, texture: 1 + n, discriminator: 1 + n });
      expect(infos[3]!.draws).toBe(3 + n * 5);
      expect(infos[0]!.resampling.map((r) => r.decision)).toEqual(n === 3 ? ['accept', 'accept', 'accept'] : ['average', 'stop']);
    }
  });

  it('official re-noising from t = 1 uses the dummy θ_0, σ_0; improved uses θ_1, σ_1', async () => {
    const sde = sde10;
    const opts = { stageSwitch: 0.1, jump: 1, re: 1 };
    for (const variant of ['official', 'improved'] as const) {
      const r = await runStep(sde, 1, { ...opts, variant }, [0.5, 0.5, 0.5, 0.5]);
      expect(r.info.k).toBe(1);
      const xc = byKind(r.log, 'texture')[0]!.S!;
      const z = r.tape.z(3);
      const lv = variant === 'official' ? 0 : 1;
      const th = sde.thetas[lv]!;
      const sg = sde.sigmas[lv]!;
      const want = Array.from(xc, (v, i) => fr(fr(v + fr(fr(th * fr(MUS[i]! - v)) * sde.dt)) + fr(sg * fr(z[i]! * sde.sqrtDt))));
      const c = byKind(r.log, 'structure')[1]!;
      expect(c.t).toBe(1);
      expect(pick(c.x, HOLE)).toEqual(pick(want, HOLE));
    }
  });

  it('decision tape: forced decisions override the scores, `below` gates them, impossible ones are refused', async () => {
    const t = 5;
    const f = await runStep(sde10, t, { decisionTape: [{ t, i: 1, decision: 'accept' }, { t, i: 3, decision: 'accept' }] }, rising());
    expect(f.info.resampling.map((d) => [d.decision, d.forced ?? false, d.scored])).toEqual([
      ['accept', true, 'average'],
      ['average', false, undefined],
      ['accept', true, 'stop'],
      ['stop', false, undefined],
    ]);
    const gated = await runStep(sde10, t, { decisionTape: [{ t, i: 1, decision: 'accept', below: 0.05 }] }, [0.5, 0.6, 0.5, 0.5, 0.5]);
    expect(gated.info.resampling[0]!.decision).toBe('average');
    const gatedIn = await runStep(sde10, t, { decisionTape: [{ t, i: 1, decision: 'accept', below: 0.5 }] }, [0.5, 0.6, 0.5, 0.5, 0.5]);
    expect(gatedIn.info.resampling[0]!.decision).toBe('accept');
    await expect(runStep(sde10, t, { decisionTape: [{ t, i: 1, decision: 'stop' }] }, rising())).rejects.toThrow(/forced decision "stop"/);
    await expect(runStep(sde10, t, { decisionTape: [{ t, i: 3, decision: 'average' }] }, rising())).rejects.toThrow(/forced decision "average"/);
  });
});

describe('sample(): terminal states, noise order, composite', () => {
  it('terminal states: y_T = μ + λz drawn first ([1,3]), then x_T = μS + λz ([1,1])', async () => {
    const log: Call[] = [];
    const tape = new Tape(9);
    await sample({ nets: stubNets(log, []), sde: sde10, inputs, noise: tape, options: { variant: 'no-resampling' } });
    expect(tape.shapes.slice(0, 2)).toEqual(['Y', 'X']);
    const lam = sde10.lambda;
    const yT = Array.from(MU, (m, i) => fr(m + fr(tape.z(0)[i]! * lam)));
    const xT = Array.from(MUS, (m, i) => fr(m + fr(tape.z(1)[i]! * lam)));
    expect(byKind(log, 'texture')[0]!.x).toEqual(yT);
    expect(pick(byKind(log, 'structure')[0]!.x, HOLE)).toEqual(pick(xT, HOLE));
    expect(log[0]!.t).toBe(10);
  });

  it('the output is GT at the known pixels and the final state in the hole, bit for bit', async () => {
    const res = await sample({ nets: stubNets([]), sde: sde10, inputs, noise: new SeededNoise(3) });
    for (let c = 0; c < 3; c++) {
      for (const p of KNOWN) expect(res.out[c * HW + p]).toBe(IMAGE[c * HW + p]);
      for (const p of HOLE) expect(res.out[c * HW + p]).toBe(res.y[c * HW + p]);
    }
    // the state's known pixels are not GT (they carry SDE noise): the composite did the work
    expect(KNOWN.some((p) => res.y[p] !== IMAGE[p])).toBe(true);
  });

  it('fill mean: μ holds each channel’s known mean in the hole; the composite still takes GT and the state', async () => {
    const log: Call[] = [];
    const res = await sample({ nets: stubNets(log), sde: sde10, inputs, noise: new SeededNoise(3), options: { fill: 'mean' } });
    const mu = byKind(log, 'texture')[0]!.mu!;
    for (let c = 0; c < 3; c++) {
      const mean = fr(KNOWN.reduce((a, p) => a + IMAGE[c * HW + p]!, 0) / KNOWN.length);
      for (const p of HOLE) expect(mu[c * HW + p]).toBe(mean);
      for (const p of KNOWN) expect(mu[c * HW + p]).toBe(IMAGE[c * HW + p]);
      for (const p of HOLE) expect(res.out[c * HW + p]).toBe(res.y[c * HW + p]);
    }
  });

  const combos: [SamplerVariant, StepRule][] = [];
  for (const v of ['official', 'improved', 'no-resampling', 'no-discriminator'] as const) for (const r of ['sde', 'posterior'] as const) combos.push([v, r]);
  for (const [variant, stepRule] of combos) {
    it(`${variant} / ${stepRule}: the whole run equals the documented sampler written out (every call, draw and state)`, async () => {
      const logA: Call[] = [];
      const logB: Call[] = [];
      const tapeA = new Tape(21);
      const tapeB = new Tape(21);
      const infos: StepInfo[] = [];
      const res = await sample({ nets: stubNets(logA), sde: sde20, inputs, noise: tapeA, options: { variant, stepRule, onStep: (i) => infos.push(i) } });
      const ref = await new Ref(sde20, stubNets(logB), tapeB, { ...REF_DEFAULTS, variant, stepRule }).sample();
      expect(tapeA.shapes.join('')).toEqual(tapeB.shapes.join(''));
      expect(logA.length).toBe(logB.length);
      for (let i = 0; i < logA.length; i++) expect(logA[i], `call ${i}`).toEqual(logB[i]);
      expect(infos.map((i) => i.k)).toEqual(ref.ks);
      expect(infos.map((i) => i.resampling.map((d) => d.decision))).toEqual(ref.decisions);
      expect(Array.from(res.y)).toEqual(Array.from(ref.y));
      expect(Array.from(res.out)).toEqual(Array.from(ref.out));
      // the last carried structure (after t = switch level)
      expect(Array.from(res.x!)).toEqual(Array.from(ref.x));
      if (variant !== 'no-resampling') expect(infos.some((i) => i.resampling.length > 0)).toBe(true);
    });
  }
});

/** one step of the reference from the same start state and seed as runStep */
async function refStep(sde: IRSDE, t: number, o: RefOpts, d: DScore, seed = 1) {
  const s = states(100 + seed);
  const ref = new Ref(sde, stubNets([], d), new Tape(seed), o);
  return t >= Math.max(1, Math.trunc(o.stageSwitch * sde.T)) ? ref.early(s.y, s.x, t) : { y: await ref.late(s.y, t), x: null as never, k: 0, decisions: [] };
}
