/**
 * The StrDiffusion two-stage sampler (docs/design.md §5, official `IRSDE.reverse_sde` of
 * `test/texture/config/inpainting/utils/sde_utils.py`), written as a plain async loop in the
 * style of k-diffusion: networks, SDE, inputs and one noise source go in, the final states come
 * out. Host arithmetic goes through the float32-emulating IRSDE methods and every other
 * element-wise operation is rounded to float32 in the official order, so that with the official
 * noise tape the result matches the PyTorch run up to the networks' own round-off.
 *
 * Shapes: batch 1 only (the official `if D_p < D_n` needs one-element tensors), texture
 * [1,3,H,W], structure/mask [1,1,H,W]. Mask m = 1 known, 0 hole.
 *
 * Variants (`options.variant`):
 * - `official` (default): exactly docs/design.md §5.3/5.4, including the quirks of its §6.1 (lower D
 *   score wins; the level-(t−1) known structure is pasted before denoising from level t and at
 *   every level of the resampling loop; re-noising uses θ_{t−1+j}, σ_{t−1+j}).
 * - `improved`: fixes docs/design.md §6.1 items 1, 4 and 5.
 *     1. the candidate with the HIGHER D score wins (D is trained high = real/correlated);
 *     4. the known structure is pasted at the level being denoised: before denoising from level
 *        τ a fresh q(x_τ | x_0) sample is pasted (τ = t for the main step, τ = t+r inside the
 *        resampling loop), as RePaint does;
 *     5. re-noising from level t−1+j to t+j uses θ_{t+j}, σ_{t+j} (the IR-SDE forward convention).
 *   Draw order per early step: q(x_t) [1,1], stepS [1,1], stepY [1,3]; per resampling iteration:
 *   k forward draws, then per level t+r (r = k−1 … 0) a q(x_{t+r}) draw and a stepS draw, then
 *   one stepY draw. The carried structure is the denoised candidate (its known part is replaced
 *   at the next step anyway). Late stage unchanged.
 * - `no-resampling`: the paper's ablation — structure-guided early stage (paste, stepS, stepY:
 *   3 draws per step, official paste level) with no discriminator and no resampling; late
 *   stage unchanged.
 * - `no-discriminator`: the official resampling schedule and re-noising, but no scoring: each of
 *   the iterations i = 1 … u_min−1 averages its candidate into the current one (the official
 *   "average" branch) and the loop then stops without drawing an i = u_min candidate. D is never
 *   called; draws per resampling iteration as in `official`.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NoiseSource } from '../util/noise.js';
import type { NetRunner } from '../exec/types.js';
import type { F32Tensor } from '../util/tensor.js';
import { filledMean, isFill, prepareFill, FILLS, type Fill } from '../sde/fill.js';

import { isOneOf, SOLVERS, STEP_RULES, type Spacing, type SamplerVariant, type Solver, type StepRule } from '../options.js';
import { solverOf, type SolverDef, type SolverHistory } from './solvers/index.js';
import { isFullGrid, samplingGrid } from './grid.js';
import { forwardJump } from '../sde/jump.js';

const fr = Math.fround;

export { SAMPLER_VARIANTS, STEP_RULES, SOLVERS, type SamplerVariant, type StepRule, type Solver } from '../options.js';
export function isStepRule(v: unknown): v is StepRule {
  return isOneOf(STEP_RULES, v);
}
export type Decision = 'accept' | 'average' | 'stop';
export type Stage = 'early' | 'late';
/** how an early step's resampling loop ended (the fixture's `steps[].end`) */
export type StepEnd = 'no_resample' | 'stop' | 'exhausted' | 'late';

export interface SamplerNets {
  structure: NetRunner;
  texture: NetRunner;
  /** not needed by the `no-resampling` and `no-discriminator` variants */
  discriminator?: NetRunner;
}

export interface SamplerInputs {
  /** ground truth / known image [1,3,H,W]; only its known pixels matter */
  image: F32Tensor;
  /** [1,1,H,W], 1 = known, 0 = hole */
  mask: F32Tensor;
  /** grayscale structure x_0 [1,1,H,W] (only its known pixels are used) */
  gray: F32Tensor;
  /** edge map [1,1,H,W]; μS = edge ⊙ m */
  edge: F32Tensor;
}

export interface ResampleRecord {
  i: number;
  /** NaN for the `no-discriminator` variant */
  Dp: number;
  Dn: number;
  decision: Decision;
  /** the decision came from `decisionTape`, not from the scores */
  forced?: boolean;
  /** what the scores alone would have decided (differs from `decision` only when forced) */
  scored?: Decision;
}

export interface NetCalls {
  structure: number;
  texture: number;
  discriminator: number;
}

export interface StepInfo {
  /** 0-based position on the sampling grid (on the full grid, step t has index T − t) */
  index: number;
  /** the level this step denoises from (grid level s) */
  t: number;
  /** the level it moves to (the next grid level; t − 1 on the full grid) */
  next: number;
  stage: Stage;
  /** re-noising depth (0 = no resampling at this step) */
  k: number;
  /** first candidate's score (early stage with D), else NaN */
  Dn: number;
  resampling: ResampleRecord[];
  end: StepEnd;
  /** network calls of this step */
  calls: NetCalls;
  /** network calls so far in this run, this step included (set by `sample`) */
  totalCalls?: NetCalls;
  /** noise draws of this step */
  draws: number;
}

export interface DecisionQuery {
  t: number;
  i: number;
  Dp: number;
  Dn: number;
  /** what the scores decide */
  scored: Decision;
}

export interface ForcedDecision {
  t: number;
  i: number;
  decision: Decision;
  /** force only when |Dp − Dn| < below (default: always) */
  below?: number;
}

/** forced decisions: a list per (t, i), or a function returning the decision to force (or undefined) */
export type DecisionTape = readonly ForcedDecision[] | ((q: DecisionQuery) => Decision | undefined);

export interface SamplerOptions {
  /** iterations run are i = 1 … uMax−1 (official 6) */
  uMax?: number;
  /** below this iteration a rejected candidate is averaged, from it on the loop stops (official 3) */
  uMin?: number;
  /** resample at early steps with t ≡ 0 (mod jump) (official 5) */
  jump?: number;
  /** re-noising depth k (official 5; clamped to T − t + 1) */
  re?: number;
  /** early stage is t = T … trunc(stageSwitch·T), late stage the rest (official 0.4) */
  stageSwitch?: number;
  variant?: SamplerVariant;
  /**
   * How one network call moves a state from level t to t − 1:
   * - `sde` (default, official): the Euler–Maruyama reverse-SDE step with score −ε̂/σ̄_t;
   * - `posterior` (not in the official code): x̂0 implied by ε̂, clamped to [0, 1], then a draw
   *   from the exact posterior q(x_{t−1} | x_t, x̂0) (the training target's distribution). The SDE
   *   step amplifies whatever part of the noise ε̂ misses by up to 1/exp(−θ̄_T dt) over the run, so
   *   a network that is not trained to convergence (such as the bundled small model) drifts into
   *   saturated colours; clamping x̂0 keeps every state in range. Same draws as `sde`.
   */
  stepRule?: StepRule;
  /**
   * How a network call moves a state from one grid level to the next (src/sampler/solvers/;
   * `sde` and `posterior` are the step rules above). Wins over `stepRule`. Default `stepRule`, else `sde`.
   */
  solver?: Solver;
  /** sampling steps N: the grid T = t_0 > … > t_N = 0 (default T, the full grid; fewer needs a solver other than `sde`) */
  steps?: number;
  /** how the grid spaces its levels (default `uniform`; the full grid is the same for every kind) */
  spacing?: Spacing;
  /**
   * What the texture mean μ holds in the hole (src/sde/fill.ts): `zero` (default, official)
   * μ = GT ⊙ m; `mean` / `telea` μ = GT ⊙ m + F ⊙ (1 − m) with F the per-channel mean or the
   * OpenCV Telea inpainting of the known pixels. Must be the fill the model was trained with
   * (`fill` in its model.json). `telea` needs OpenCV.js loaded: `sample` does that itself,
   * callers of `makeContext` must `await prepareFill('telea')` first.
   */
  fill?: Fill;
  onStep?: (info: StepInfo) => void;
  /**
   * Called after every step with the step's t and the new states (level t − 1); x is the carried
   * structure state in the early stage and null in the late stage. The arrays are not reused by
   * the sampler afterwards, but must not be mutated while it runs.
   */
  onState?: (t: number, y: Float32Array, x: Float32Array | null) => void;
  decisionTape?: DecisionTape;
  /** start from this level with `init` states instead of drawing the terminal states (default T; must be a grid level) */
  startAt?: number;
  /** states at level `startAt` (x may be omitted when startAt is in the late stage) */
  init?: { y: Float32Array; x?: Float32Array | null };
}

export interface SampleResult {
  /** final texture state (level 0) */
  y: Float32Array;
  /** GT ⊙ m + y ⊙ (1 − m) */
  out: Float32Array;
  /** last carried structure state (after the last early step), null if no early step ran */
  x: Float32Array | null;
  shape: number[];
  stats: SamplerStats;
}

export interface SamplerStats {
  steps: number;
  calls: NetCalls;
  draws: number;
  decisions: Record<Decision, number>;
  /** decisions taken from the decision tape against the scores' verdict, and all taken from it */
  forcedAgainstScores: number;
  forced: number;
}

/** Everything derived once from the inputs. */
export interface SamplerContext {
  sde: IRSDE;
  nets: SamplerNets;
  H: number;
  W: number;
  shapeY: number[];
  shapeX: number[];
  mask: Float32Array;
  /** μ = GT ⊙ m (fill `zero`), else GT ⊙ m + F ⊙ (1 − m) */
  mu: Float32Array;
  /** μS = edge ⊙ m */
  muS: Float32Array;
  /** known structure x_0 = gray ⊙ m */
  gS: Float32Array;
  image: Float32Array;
  opts: Required<Pick<SamplerOptions, 'uMax' | 'uMin' | 'jump' | 're' | 'stageSwitch' | 'variant' | 'fill'>> & SamplerOptions;
  solver: SolverDef;
  /** the sampling grid, T … 0 */
  grid: number[];
  /** last early level: trunc(stageSwitch·T), at least 1 */
  switchLevel: number;
  /** work buffers */
  bufYm: Float32Array;
  bufGuide: Float32Array;
}

export interface SamplerState {
  y: Float32Array;
  /** carried structure (required in the early stage) */
  x: Float32Array | null;
  /** what the multistep solvers keep of each process' previous step */
  history?: { y: SolverHistory | null; x: SolverHistory | null };
}

export const OFFICIAL_RESAMPLING = { uMax: 6, uMin: 3, jump: 5, re: 5 } as const;
export const OFFICIAL_STAGE_SWITCH = 0.4;

/** Python's int(frac·T) (same double product), at least 1 so the early stage never reaches t = 0. */
export function switchLevel(T: number, frac: number): number {
  return Math.max(1, Math.trunc(frac * T));
}

export function stageOf(ctx: Pick<SamplerContext, 'switchLevel'>, t: number): Stage {
  return t >= ctx.switchLevel ? 'early' : 'late';
}

/** Re-noising depth at early step t (official: re when t ≡ 0 mod jump, clamped so t+k−1 ≤ T). */
export function renoiseDepth(T: number, t: number, jump: number, re: number): number {
  let k = jump > 0 && t % jump === 0 ? re : 0;
  if (k + t > T) k = T - t + 1;
  return k;
}

function f32(shape: readonly number[], data: Float32Array, name: string): void {
  let n = 1;
  for (const d of shape) n *= d;
  if (data.length !== n) throw new Error(`sampler: ${name} has ${data.length} values, shape [${shape.join(', ')}] needs ${n}`);
}

function times(a: Float32Array, m: Float32Array, channels: number): Float32Array {
  const hw = m.length;
  const out = new Float32Array(a.length);
  for (let c = 0; c < channels; c++) for (let p = 0; p < hw; p++) out[c * hw + p] = fr(a[c * hw + p]! * m[p]!);
  return out;
}

export function makeContext(sde: IRSDE, nets: SamplerNets, inputs: SamplerInputs, options: SamplerOptions = {}): SamplerContext {
  const { image, mask, gray, edge } = inputs;
  const s = image.shape;
  if (s.length !== 4 || s[0] !== 1 || s[1] !== 3) throw new Error(`sampler: image must be [1,3,H,W], got [${s.join(', ')}] (the official sampler is batch 1)`);
  const H = s[2]!;
  const W = s[3]!;
  const shapeX = [1, 1, H, W];
  for (const [name, t] of [['mask', mask], ['gray', gray], ['edge', edge]] as const) {
    if (t.shape.length !== 4 || t.shape.some((d, i) => d !== shapeX[i])) throw new Error(`sampler: ${name} must be [1,1,${H},${W}], got [${t.shape.join(', ')}]`);
    f32(shapeX, t.data, name);
  }
  f32(s, image.data, 'image');
  const opts = {
    ...OFFICIAL_RESAMPLING,
    stageSwitch: OFFICIAL_STAGE_SWITCH,
    variant: 'official' as SamplerVariant,
    fill: 'zero' as Fill,
    ...stripUndefined(options),
  };
  if (opts.stepRule !== undefined && !isStepRule(opts.stepRule)) throw new Error(`sampler: unknown step rule "${opts.stepRule}" (sde or posterior)`);
  const solverName = opts.solver ?? opts.stepRule ?? 'sde';
  if (!isOneOf(SOLVERS, solverName)) throw new Error(`sampler: unknown solver "${solverName}" (${SOLVERS.join(', ')})`);
  const solver = solverOf(solverName);
  const grid = samplingGrid(sde, opts.steps ?? sde.T, opts.spacing ?? 'uniform');
  if (solver.oneLevel && !isFullGrid(grid)) {
    throw new Error(`sampler: solver ${solver.name} moves one level per step, so it needs steps = T = ${sde.T} (got ${grid.length - 1}); use posterior or an mr-* solver for fewer steps`);
  }
  if (!isFill(opts.fill)) throw new Error(`sampler: unknown fill "${opts.fill}" (${FILLS.join(', ')})`);
  if (opts.uMin < 1 || opts.uMax < 1) throw new Error('sampler: uMin and uMax must be ≥ 1');
  if ((opts.variant === 'official' || opts.variant === 'improved') && !nets.discriminator) {
    throw new Error(`sampler: variant ${opts.variant} needs a discriminator`);
  }
  const m = mask.data;
  return {
    sde,
    nets,
    H,
    W,
    shapeY: [...s],
    shapeX,
    mask: m,
    // the hole pixels of the image are unknown: the fill reads the known pixels only
    mu: filledMean(opts.fill, image, mask),
    muS: times(edge.data, m, 1),
    gS: times(gray.data, m, 1),
    image: image.data,
    opts,
    solver,
    grid,
    switchLevel: switchLevel(sde.T, opts.stageSwitch),
    bufYm: new Float32Array(3 * H * W),
    bufGuide: new Float32Array(H * W),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const r: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as any)[k] = v;
  return r;
}

/** Draws the terminal states in the official order: y_T = μ + λz [1,3], then x_T = μS + λz [1,1]. */
export function terminalStates(ctx: SamplerContext, noise: NoiseSource): SamplerState {
  const y = ctx.sde.noiseState(ctx.mu, noise.normal([...ctx.shapeY]));
  const x = ctx.sde.noiseState(ctx.muS, noise.normal([...ctx.shapeX]));
  return { y, x };
}

/** m⊙a + (1−m)⊙b in the official float32 order (exact selection for a binary mask). */
function paste(known: Float32Array, rest: Float32Array, m: Float32Array): Float32Array {
  const out = new Float32Array(rest.length);
  for (let i = 0; i < out.length; i++) out[i] = fr(fr(known[i]! * m[i]!) + fr(rest[i]! * fr(1 - m[i]!)));
  return out;
}

function mean2(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < out.length; i++) out[i] = fr(fr(a[i]! + b[i]!) / 2);
  return out;
}

class Counter implements NoiseSource {
  n = 0;
  constructor(private readonly inner: NoiseSource) {}
  normal(shape: number[]): Float32Array {
    this.n++;
    return this.inner.normal(shape);
  }
}

/** One network-driven piece of the step, with call counting. */
class Ops {
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
    const eps = await c.nets.structure.run({ x: { shape: c.shapeX, data: x }, mu: { shape: c.shapeX, data: c.muS }, t: [s] });
    return this.solve(x, c.muS, eps.data, s, t, c.shapeX, prev);
  }

  private solve(x: Float32Array, mu: Float32Array, eps: Float32Array, s: number, t: number, shape: number[], prev: SolverHistory | null): Stepped {
    const r = this.ctx.solver.step({ sde: this.ctx.sde, x, mu, eps, s, t, shape, prev, noise: this.noise, clamp: [0, 1] });
    return { state: r.x, history: r.history };
  }

  /** stepY(y, s → t, S): texture net at s guided by S, then the solver's step to t (official: reverse_sde_step of sde); one [1,3] draw for stochastic solvers */
  async stepY(y: Float32Array, s: number, t: number, S: Float32Array, prev: SolverHistory | null = null): Promise<Stepped> {
    const c = this.ctx;
    this.calls.texture++;
    const eps = await c.nets.texture.run({
      x: { shape: c.shapeY, data: y },
      mu: { shape: c.shapeY, data: c.mu },
      S: { shape: c.shapeX, data: S },
      t: [s],
    });
    return this.solve(y, c.mu, eps.data, s, t, c.shapeY, prev);
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
interface Stepped {
  state: Float32Array;
  history: SolverHistory | null;
}

function forcedDecision(tape: DecisionTape | undefined, q: DecisionQuery): Decision | undefined {
  if (!tape) return undefined;
  if (typeof tape === 'function') return tape(q);
  for (const f of tape) {
    if (f.t !== q.t || f.i !== q.i) continue;
    if (f.below !== undefined && !(Math.abs(q.Dp - q.Dn) < f.below)) return undefined;
    return f.decision;
  }
  return undefined;
}

export interface StepResult extends SamplerState {
  info: StepInfo;
}

/**
 * One sampler step from grid level s = grid[index] to grid[index + 1] (early or late stage by s),
 * drawing its noise from `noise` in the official order. `index` defaults to s's place on the
 * context's grid (on the full grid the step from t goes to t − 1). Teacher-forced parity runs this
 * from recorded states.
 */
export async function step(ctx: SamplerContext, state: SamplerState, t: number, noise: NoiseSource): Promise<StepResult> {
  const T = ctx.sde.T;
  if (!Number.isInteger(t) || t < 1 || t > T) throw new Error(`sampler: step t=${t} outside 1..${T}`);
  const index = ctx.grid.indexOf(t);
  if (index < 0 || index + 1 >= ctx.grid.length) throw new Error(`sampler: level ${t} is not a step of the sampling grid ${ctx.grid.join(', ')}`);
  const next = ctx.grid[index + 1]!;
  const counter = new Counter(noise);
  const ops = new Ops(ctx, counter);
  const stage = stageOf(ctx, t);
  const hist = state.history ?? { y: null, x: null };
  if (stage === 'late') {
    const r = await lateStep(ctx, ops, state.y, t, next, hist.y);
    const info: StepInfo = { index, t, next, stage, k: 0, Dn: NaN, resampling: [], end: 'late', calls: ops.calls, draws: counter.n };
    return { y: r.state, x: null, history: { y: r.history, x: null }, info };
  }
  if (!state.x) throw new Error(`sampler: early step t=${t} needs a structure state`);
  const r = await earlyStep(ctx, ops, state.y, state.x, index, hist);
  const info: StepInfo = { index, t, next, stage, k: r.k, Dn: r.Dn, resampling: r.records, end: r.end, calls: ops.calls, draws: counter.n };
  return { y: r.y, x: r.x, history: r.history, info };
}

async function lateStep(ctx: SamplerContext, ops: Ops, y: Float32Array, s: number, t: number, prev: SolverHistory | null): Promise<Stepped> {
  // Guide = plain channel mean of the noisy texture at level s (torch: sum over C, then / 3).
  const hw = ctx.H * ctx.W;
  const g = ctx.bufGuide;
  for (let p = 0; p < hw; p++) g[p] = fr(fr(fr(y[p]! + y[hw + p]!) + y[2 * hw + p]!) / 3);
  return ops.stepY(y, s, t, g, prev);
}

interface EarlyResult {
  y: Float32Array;
  x: Float32Array;
  history: NonNullable<SamplerState['history']>;
  k: number;
  Dn: number;
  records: ResampleRecord[];
  end: StepEnd;
}

/**
 * Re-noising depth at grid position `index` (from the end: p = N − index, which is the level itself
 * on the full grid): `re` grid steps when p ≡ 0 (mod jump), clamped to the levels above.
 */
function gridRenoiseDepth(ctx: SamplerContext, index: number): number {
  const { jump, re } = ctx.opts;
  const p = ctx.grid.length - 1 - index;
  let k = jump > 0 && p % jump === 0 ? re : 0;
  if (k > index + 1) k = index + 1;
  return k;
}

async function earlyStep(ctx: SamplerContext, ops: Ops, y: Float32Array, xIn: Float32Array, index: number, hist: NonNullable<SamplerState['history']>): Promise<EarlyResult> {
  const { variant, uMax, uMin, decisionTape } = ctx.opts;
  const m = ctx.mask;
  const g = ctx.grid;
  const s = g[index]!;
  const t = g[index + 1]!;
  const improved = variant === 'improved';

  // Known structure: official pastes a sample of the NEXT level before denoising from s (docs/design.md §6.1 item 4).
  const xk = ops.qS(improved ? s : t);
  let x = paste(xk, xIn, m);
  const sx = await ops.stepS(x, s, t, hist.x);
  x = sx.state;
  let xc = x;
  const sy = await ops.stepY(y, s, t, x, hist.y);
  let yc = sy.state;

  const useD = variant === 'official' || variant === 'improved';
  const Dn = useD ? await ops.score(yc, x, s) : NaN;
  const k = variant === 'no-resampling' ? 0 : gridRenoiseDepth(ctx, index);
  const records: ResampleRecord[] = [];
  let end: StepEnd = k === 0 ? 'no_resample' : 'exhausted';

  for (let i = 1; i < uMax && k > 0; i++) {
    if (variant === 'no-discriminator' && i >= uMin) {
      end = 'stop';
      break;
    }
    // re-noise from the next level back up k grid levels (official: Euler steps with θ of the lower level)
    let x1 = xc;
    for (let j = 0; j < k; j++) {
      const from = g[index + 1 - j]!;
      const to = g[index - j]!;
      x1 = ops.renoise(x1, from, to, improved ? to : from);
    }
    for (let r = k - 1; r >= 0; r--) {
      x1 = paste(improved ? ops.qS(g[index - r]!) : xk, x1, m);
      x1 = (await ops.stepS(x1, g[index - r]!, g[index - r + 1]!)).state;
    }
    // Always re-predicted from the step's input y (level s), never from the running candidate.
    const y1 = (await ops.stepY(y, s, t, x1)).state;

    let decision: Decision;
    let Dp = NaN;
    let forced = false;
    let scored: Decision;
    if (useD) {
      Dp = await ops.score(y1, x1, s);
      // Strict comparisons: a tie is "not better" in both directions.
      const better = improved ? Dp > Dn : Dp < Dn;
      scored = better ? 'accept' : i < uMin ? 'average' : 'stop';
      const f = forcedDecision(decisionTape, { t: s, i, Dp, Dn, scored });
      decision = f ?? scored;
      if (f !== undefined) {
        forced = true;
        if (f === 'stop' && i < uMin) throw new Error(`sampler: forced decision "stop" at t=${s}, i=${i} < uMin=${uMin}`);
        if (f === 'average' && i >= uMin) throw new Error(`sampler: forced decision "average" at t=${s}, i=${i} ≥ uMin=${uMin}`);
      }
    } else {
      scored = decision = 'average';
    }
    const rec: ResampleRecord = { i, Dp, Dn, decision };
    if (forced) {
      rec.forced = true;
      rec.scored = scored;
    }
    records.push(rec);
    if (decision === 'accept') {
      yc = y1;
      xc = x1;
    } else if (decision === 'average') {
      yc = mean2(yc, y1);
      xc = mean2(x1, xc);
    } else {
      end = 'stop';
      break;
    }
  }
  // Improved: the next step pastes its own level sample, so the carried state is the candidate.
  const xOut = improved ? xc : paste(xk, xc, m);
  // after resampling the states are no longer the solver's own continuation: multistep solvers restart
  const history = records.length > 0 ? { y: null, x: null } : { y: sy.history, x: sx.history };
  return { y: yc, x: xOut, history, k, Dn, records, end };
}

export interface SampleArgs {
  nets: SamplerNets;
  sde: IRSDE;
  inputs: SamplerInputs;
  noise: NoiseSource;
  options?: SamplerOptions;
}

/** GT ⊙ m + y ⊙ (1 − m), the official composite (known pixels pasted once, at the end). */
export function composite(image: Float32Array, y: Float32Array, m: Float32Array): Float32Array {
  const hw = m.length;
  const out = new Float32Array(y.length);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < hw; p++) {
      const i = c * hw + p;
      out[i] = fr(fr(image[i]! * m[p]!) + fr(y[i]! * fr(1 - m[p]!)));
    }
  }
  return out;
}

/** The official tensor2img value mapping: clamp to [0, 1], ×255 in float32, round half to even. */
export function toUint8(img: ArrayLike<number>): Uint8Array {
  const r = new Uint8Array(img.length);
  for (let i = 0; i < img.length; i++) {
    const v = fr(Math.min(1, Math.max(0, img[i]!)) * 255);
    let q = Math.round(v);
    if (q - v === 0.5 && q % 2 !== 0) q -= 1;
    r[i] = q;
  }
  return r;
}

/** The full sampler: terminal states (2 draws) then steps t = T … 1. */
export async function sample(args: SampleArgs): Promise<SampleResult> {
  const { nets, sde, inputs, noise, options = {} } = args;
  if (options.fill !== undefined && isFill(options.fill)) await prepareFill(options.fill);
  const ctx = makeContext(sde, nets, inputs, options);
  const T = sde.T;
  const counter = new Counter(noise);
  const startAt = options.startAt ?? T;
  let state: SamplerState;
  if (options.init) {
    state = { y: options.init.y, x: options.init.x ?? null };
    f32(ctx.shapeY, state.y, 'init.y');
    if (state.x) f32(ctx.shapeX, state.x, 'init.x');
  } else {
    if (startAt !== T) throw new Error('sampler: startAt below T needs init states');
    state = terminalStates(ctx, counter);
  }
  const stats: SamplerStats = {
    steps: 0,
    calls: { structure: 0, texture: 0, discriminator: 0 },
    draws: 0,
    decisions: { accept: 0, average: 0, stop: 0 },
    forcedAgainstScores: 0,
    forced: 0,
  };
  let lastX: Float32Array | null = state.x;
  const first = ctx.grid.indexOf(startAt);
  if (first < 0) throw new Error(`sampler: startAt ${startAt} is not a level of the sampling grid ${ctx.grid.join(', ')}`);
  for (let i = first; i + 1 < ctx.grid.length; i++) {
    const t = ctx.grid[i]!;
    const r = await step(ctx, state, t, counter);
    state = { y: r.y, x: r.x ?? state.x, history: r.history };
    if (r.x) lastX = r.x;
    stats.steps++;
    stats.calls.structure += r.info.calls.structure;
    stats.calls.texture += r.info.calls.texture;
    stats.calls.discriminator += r.info.calls.discriminator;
    for (const d of r.info.resampling) {
      stats.decisions[d.decision]++;
      if (d.forced) {
        stats.forced++;
        if (d.scored !== d.decision) stats.forcedAgainstScores++;
      }
    }
    r.info.totalCalls = { ...stats.calls };
    options.onStep?.(r.info);
    options.onState?.(t, r.y, r.x);
  }
  stats.draws = counter.n;
  return { y: state.y, out: composite(ctx.image, state.y, ctx.mask), x: lastX, shape: [...ctx.shapeY], stats };
}
