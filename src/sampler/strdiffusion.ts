/**
 * The StrDiffusion two-stage sampler (docs/design.md §5, official `IRSDE.reverse_sde` of
 * `test/texture/config/inpainting/utils/sde_utils.py`), in the style of k-diffusion: networks,
 * SDE, inputs, a grid of levels and one noise source go in, the final states come out.
 *
 *   y_T, x_T ← terminal states
 *   for each grid step s = t_i → t = t_{i+1}:
 *     early stage (s ≥ switch level): the variant's early step (variants/): structure and texture
 *       stepped together, the texture guided by the structure, with the variant's resampling;
 *     late stage: the texture alone, guided by its own channel mean.
 *
 * `split` is two samples from the same terminal states, combined (sampleSplit below).
 *
 * How a network call moves a state from s to t is the solver's (solvers/); on the full grid with
 * the `sde` solver this is the official sampler bit for bit. Host arithmetic goes through the
 * float32-emulating IRSDE methods and every other element-wise operation is rounded to float32 in
 * the official order, so that with the official noise tape the result matches the PyTorch run up
 * to the networks' own round-off. Progress and trajectory capture are the `onStep` / `onState`
 * callbacks around each step; the parity tests' decision forcing is the judge's (resample.ts).
 *
 * Shapes: batch 1 only (the official `if D_p < D_n` needs one-element tensors), texture
 * [1,3,H,W], structure/mask [1,1,H,W]. Mask m = 1 known, 0 hole.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NoiseSource } from '../util/noise.js';
import { filledMean, isFill, prepareFill, FILLS, type Fill } from '../sde/fill.js';
import { isOneOf, SAMPLER_VARIANTS, SCORING_VARIANTS, SOLVERS, STEP_RULES, TEXTURE_VARIANTS, UNSCORED_VARIANTS, type SamplerVariant, type StepRule, type StructureKind } from '../options.js';
import { DEFAULT_STRUCTURE_KIND, lateGuide, parseStructureKind, structureEnds } from '../structure/kinds.js';
import { solverOf, type SolverHistory } from './solvers/index.js';
import { isFullGrid, samplingGrid } from './grid.js';
import { Counter, Ops, type Stepped } from './ops.js';
import { EARLY_STEPS, TEXTURE_STEPS } from './variants/index.js';
import { SPLIT_BASE, splitBands } from './variants/split.js';
import { MAX_T } from '../sde/schedule.js';
import type { SamplerContext, SamplerInputs, SamplerNets, SamplerOptions, SamplerState, SamplerStats, SampleResult, Stage, StepInfo } from './types.js';

export type * from './types.js';
const fr = Math.fround;

export { SAMPLER_VARIANTS, STEP_RULES, SOLVERS, type SamplerVariant, type StepRule, type Solver } from '../options.js';
export function isStepRule(v: unknown): v is StepRule {
  return isOneOf(STEP_RULES, v);
}
export const OFFICIAL_RESAMPLING = { uMax: 6, uMin: 3, jump: 5, re: 5 } as const;

/** Most resampling iterations per step (uMax, uMin): the official code uses 6 (25 for PSV). */
export const MAX_RESAMPLE_ITERATIONS = 100;

/**
 * The one-line problem with resampling options (uMax, uMin: integers 1 … MAX_RESAMPLE_ITERATIONS;
 * jump, re: integers 0 … T, 0 = no resampling), or null; the problem starts with the option's name.
 */
export function resamplingProblem(o: { uMax?: unknown; uMin?: unknown; jump?: unknown; re?: unknown }, T: number, what = 'the model\'s diffusion length T'): string | null {
  for (const k of ['uMax', 'uMin'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_RESAMPLE_ITERATIONS)) return `${k} must be an integer from 1 to ${MAX_RESAMPLE_ITERATIONS}`;
  }
  for (const k of ['jump', 're'] as const) {
    const v = o[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= T)) return `${k} must be an integer from 0 to ${T} (${what})`;
  }
  return null;
}
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
    structureKind: DEFAULT_STRUCTURE_KIND as StructureKind,
    ...stripUndefined(options),
  };
  if (!isOneOf(SAMPLER_VARIANTS, opts.variant)) throw new Error(`sampler: unknown variant "${opts.variant}" (${SAMPLER_VARIANTS.join(', ')})`);
  if (opts.stepRule !== undefined && !isStepRule(opts.stepRule)) throw new Error(`sampler: unknown step rule "${opts.stepRule}" (sde or posterior)`);
  const solverName = opts.solver ?? opts.stepRule ?? 'sde';
  if (!isOneOf(SOLVERS, solverName)) throw new Error(`sampler: unknown solver "${solverName}" (${SOLVERS.join(', ')})`);
  const solver = solverOf(solverName);
  // one-call makes no solver step: its one network call goes from T straight to x̂0
  const oneCall = opts.variant === 'one-call';
  const grid = gridOf(sde, opts);
  if (!oneCall && solver.oneLevel && !isFullGrid(grid)) {
    throw new Error(`sampler: solver ${solver.name} moves one level per step, so it needs steps = T = ${sde.T} (got ${grid.length - 1}); use posterior or an mr-* solver for fewer steps`);
  }
  if (!isFill(opts.fill)) throw new Error(`sampler: unknown fill "${opts.fill}" (${FILLS.join(', ')})`);
  // jump and re above T are legitimate (the official 5, 5 on a T = 4 model: no resampling, or
  // a depth clamped to the levels above): they are bounded by the largest T only
  const resampling = resamplingProblem(opts, MAX_T, 'the largest T');
  if (resampling !== null) throw new Error(`sampler: ${resampling} (got uMax=${opts.uMax}, uMin=${opts.uMin}, jump=${opts.jump}, re=${opts.re})`);
  if (isOneOf(SCORING_VARIANTS, opts.variant) && !nets.discriminator) {
    throw new Error(`sampler: variant ${opts.variant} needs a discriminator, and the model has none (the variants without one: ${UNSCORED_VARIANTS.join(', ')})`);
  }
  if (!textureOnly(opts.variant) && !nets.structure) throw new Error(`sampler: variant ${opts.variant} needs a structure network (the texture-only samplers are ${TEXTURE_VARIANTS.join(', ')})`);
  parseStructureKind(opts.structureKind, 'sampler: structureKind');
  const ends = structureEnds(opts.structureKind, gray.data, edge.data);
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
    muS: times(ends.end, m, 1),
    gS: times(ends.x0, m, 1),
    image: image.data,
    opts,
    solver,
    grid,
    switchLevel: switchLevel(sde.T, opts.stageSwitch),
    bufYm: new Float32Array(3 * H * W),
    bufGuide: new Float32Array(H * W),
  };
}

/** The levels a variant steps through: one-call goes from T straight to x̂0, the others follow steps and spacing. */
function gridOf(sde: IRSDE, opts: Pick<SamplerOptions, 'variant' | 'steps' | 'spacing'>): number[] {
  return opts.variant === 'one-call' ? [sde.T, 0] : samplingGrid(sde, opts.steps ?? sde.T, opts.spacing ?? 'uniform');
}

/** The same context (inputs, μ, checks) sampled by another variant: `split` runs two of them. */
function withVariant(ctx: SamplerContext, variant: SamplerVariant): SamplerContext {
  const opts = { ...ctx.opts, variant };
  return { ...ctx, opts, grid: gridOf(ctx.sde, opts) };
}

/** Whether a variant samples the texture alone (no structure process, an unguided texture network). */
export function textureOnly(variant: SamplerVariant): boolean {
  return isOneOf(TEXTURE_VARIANTS, variant);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const r: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as any)[k] = v;
  return r;
}

/** Draws the terminal states in the official order: y_T = μ + λz [1,3], then x_T = μS + λz [1,1] (texture-only variants: y_T alone). */
export function terminalStates(ctx: SamplerContext, noise: NoiseSource): SamplerState {
  const y = ctx.sde.noiseState(ctx.mu, noise.normal([...ctx.shapeY]));
  if (textureOnly(ctx.opts.variant)) return { y, x: null };
  const x = ctx.sde.noiseState(ctx.muS, noise.normal([...ctx.shapeX]));
  return { y, x };
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
  const variant = ctx.opts.variant;
  if (textureOnly(variant)) {
    const r = await TEXTURE_STEPS[variant as keyof typeof TEXTURE_STEPS](ctx, ops, state.y, index, hist.y);
    const info: StepInfo = { index, t, next, stage, k: r.k, Dn: NaN, resampling: [], end: r.k > 0 ? 'exhausted' : 'no_resample', calls: ops.calls, draws: counter.n };
    return { y: r.y, x: null, history: { y: r.history, x: null }, info };
  }
  if (stage === 'late') {
    const r = await lateStep(ctx, ops, state.y, t, next, hist.y);
    const info: StepInfo = { index, t, next, stage, k: 0, Dn: NaN, resampling: [], end: 'late', calls: ops.calls, draws: counter.n };
    return { y: r.state, x: null, history: { y: r.history, x: null }, info };
  }
  if (!state.x) throw new Error(`sampler: early step t=${t} needs a structure state`);
  if (variant === 'split') throw new Error('sampler: split has no step of its own: it combines two samples (run it through sample)');
  const r = await EARLY_STEPS[variant as keyof typeof EARLY_STEPS](ctx, ops, state.y, state.x, index, hist);
  const info: StepInfo = { index, t, next, stage, k: r.k, Dn: r.Dn, resampling: r.records, end: r.end, calls: ops.calls, draws: counter.n };
  return { y: r.y, x: r.x, history: r.history, info };
}

async function lateStep(ctx: SamplerContext, ops: Ops, y: Float32Array, s: number, t: number, prev: SolverHistory | null): Promise<Stepped> {
  // Guide = plain channel mean of the noisy texture at level s (torch: sum over C, then / 3); its
  // Canny edges for structure kinds whose clean structure is the edge map.
  const hw = ctx.H * ctx.W;
  const g = ctx.bufGuide;
  for (let p = 0; p < hw; p++) g[p] = fr(fr(fr(y[p]! + y[hw + p]!) + y[2 * hw + p]!) / 3);
  if (ctx.opts.structureKind !== DEFAULT_STRUCTURE_KIND) lateGuide(ctx.opts.structureKind, g, ctx.H, ctx.W, g);
  return ops.stepY(y, s, t, g, prev);
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
  if (options.variant === 'split') return sampleSplit(args);
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
  return run(ctx, state, counter, startAt, options);
}

/**
 * The steps from `startAt` to 0 on the context's grid, reported through the hooks; the counts start
 * at `calls` (what ran before, e.g. split's estimate) and the draws are the counter's.
 */
async function run(ctx: SamplerContext, start: SamplerState, counter: Counter, startAt: number, hooks: Pick<SamplerOptions, 'onStep' | 'onState'>, calls?: SamplerStats['calls']): Promise<SampleResult> {
  let state = start;
  const stats: SamplerStats = {
    steps: 0,
    calls: { structure: 0, texture: 0, discriminator: 0, ...calls },
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
    hooks.onStep?.(r.info);
    hooks.onState?.(t, r.y, r.x);
  }
  stats.draws = counter.n;
  return { y: state.y, out: composite(ctx.image, state.y, ctx.mask), x: lastX, shape: [...ctx.shapeY], stats };
}

/**
 * `split` (variants/split.ts): one context (one μ, checked as `split`), the terminal states drawn
 * once; from them the `one-call` estimate (1 texture call, no draws) and the SPLIT_BASE trajectory,
 * which then draws exactly what it draws from the same seed on its own; then the estimate's low
 * frequencies with the sample's detail. Progress and states are the trajectory's; the counts
 * include the estimate's call.
 */
async function sampleSplit(args: SampleArgs): Promise<SampleResult> {
  const { nets, sde, inputs, noise, options = {} } = args;
  if (options.init || (options.startAt ?? sde.T) !== sde.T) throw new Error('sampler: split starts from the terminal states (no init or startAt)');
  if (options.fill !== undefined && isFill(options.fill)) await prepareFill(options.fill);
  const ctx = makeContext(sde, nets, inputs, options);
  const counter = new Counter(noise);
  const init = terminalStates(ctx, counter);
  const estimate = await run(withVariant(ctx, 'one-call'), init, counter, sde.T, {});
  const sampled = await run(withVariant(ctx, SPLIT_BASE), init, counter, sde.T, options, estimate.stats.calls);
  const y = splitBands(estimate.out, sampled.out, ctx.mask, 3, ctx.H, ctx.W);
  return { ...sampled, y, out: composite(ctx.image, y, ctx.mask) };
}
