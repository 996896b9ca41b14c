/**
 * The early stage's shared pieces (docs/design.md §5.3), on the sampling grid: the guided pair of
 * network steps, the re-noising depth, one resampled structure candidate, the discriminator's
 * judgement (with the decision tape of the parity tests applied outside the algorithm) and the
 * resampling loop. Each variant in variants/ is written from these.
 */
import { mean2, paste, type Ops } from './ops.js';
import type { Decision, DecisionQuery, DecisionTape, ResampleRecord, SamplerContext, SamplerState, StepEnd } from './types.js';
import type { SolverHistory } from './solvers/index.js';

export type History = NonNullable<SamplerState['history']>;

export interface EarlyResult {
  y: Float32Array;
  x: Float32Array;
  history: History;
  k: number;
  Dn: number;
  records: ResampleRecord[];
  end: StepEnd;
}

/** One variant's early step from grid position `index` (level s = grid[index]) to the next level. */
export type EarlyStep = (ctx: SamplerContext, ops: Ops, y: Float32Array, x: Float32Array, index: number, history: History) => Promise<EarlyResult>;

/** A texture-only variant's step from grid position `index` to the next level (no structure process). */
export type TextureStep = (ctx: SamplerContext, ops: Ops, y: Float32Array, index: number, prev: SolverHistory | null) => Promise<{ y: Float32Array; history: SolverHistory | null; k: number }>;

/** The step's levels: s = grid[index], t = grid[index + 1]. */
export function levelsAt(ctx: SamplerContext, index: number): { s: number; t: number } {
  return { s: ctx.grid[index]!, t: ctx.grid[index + 1]! };
}

/**
 * The known structure the official family pastes before denoising from level s (§6.1 item 4): a
 * sample one level below s, not at s. On the full grid that is the next level, as in the official
 * code; on a coarse grid it stays one level, where the next grid level (s − 5 on 10 steps of T = 50)
 * would hand the structure net a known region far cleaner than its state, and its estimate degrades
 * along the process (docs/experiments.md, "The paste level on a coarse grid").
 */
export function officialKnown(ops: Ops, s: number): Float32Array {
  return ops.qS(s - 1);
}

/**
 * Re-noising depth at grid position `index` (from the end: p = N − index, which is the level itself
 * on the full grid): `re` grid steps when p ≡ 0 (mod jump), clamped to the levels above.
 */
export function gridRenoiseDepth(ctx: SamplerContext, index: number): number {
  const { jump, re } = ctx.opts;
  const p = ctx.grid.length - 1 - index;
  let k = jump > 0 && p % jump === 0 ? re : 0;
  if (k > index + 1) k = index + 1;
  return k;
}

export interface Pair {
  y: Float32Array;
  x: Float32Array;
  hy: SolverHistory | null;
  hx: SolverHistory | null;
}

/** stepS on the pasted structure, then stepY guided by its result: the first candidate of a step. */
export async function guidedPair(ops: Ops, x: Float32Array, y: Float32Array, s: number, t: number, h: History): Promise<Pair> {
  const sx = await ops.stepS(x, s, t, h.x);
  const sy = await ops.stepY(y, s, t, sx.state, h.y);
  return { x: sx.state, y: sy.state, hx: sx.history, hy: sy.history };
}

/** How a variant re-noises and which known structure it pastes on the way back down. */
export interface CandidateRules {
  /** the level whose θ, σ the one-level Euler re-noising step from `from` to `to` uses */
  renoiseLevel(from: number, to: number): number;
  /** the known structure pasted before the structure net denoises from `level` */
  known(level: number): Float32Array;
}

/**
 * One resampling candidate: the carried structure re-noised from the next level up k grid levels,
 * denoised back down by the structure net (known structure pasted before each call), then the
 * texture re-predicted from the step's input y (level s), never from the running candidate.
 */
export async function candidate(ctx: SamplerContext, ops: Ops, y: Float32Array, xc: Float32Array, index: number, k: number, rules: CandidateRules): Promise<{ y: Float32Array; x: Float32Array }> {
  const g = ctx.grid;
  let x1 = xc;
  for (let j = 0; j < k; j++) x1 = ops.renoise(x1, g[index + 1 - j]!, g[index - j]!, rules.renoiseLevel(g[index + 1 - j]!, g[index - j]!));
  for (let r = k - 1; r >= 0; r--) {
    x1 = paste(rules.known(g[index - r]!), x1, ctx.mask);
    x1 = (await ops.stepS(x1, g[index - r]!, g[index - r + 1]!)).state;
  }
  const { s, t } = levelsAt(ctx, index);
  return { x: x1, y: (await ops.stepY(y, s, t, x1)).state };
}

export interface Verdict {
  decision: Decision;
  Dp: number;
  forced?: boolean;
  scored?: Decision;
}

/**
 * The discriminator's verdict on candidate i: accept when `better(Dp, Dn)`, else average below
 * u_min and stop from it. A decision tape (parity tests) may override the scores' verdict.
 */
export function judgeBy(ctx: SamplerContext, ops: Ops, s: number, Dn: number, better: (Dp: number, Dn: number) => boolean) {
  const { uMin, decisionTape } = ctx.opts;
  return async (c: { y: Float32Array; x: Float32Array }, i: number): Promise<Verdict> => {
    const Dp = await ops.score(c.y, c.x, s);
    const scored: Decision = better(Dp, Dn) ? 'accept' : i < uMin ? 'average' : 'stop';
    const f = forcedDecision(decisionTape, { t: s, i, Dp, Dn, scored });
    if (f === undefined) return { decision: scored, Dp };
    if (f === 'stop' && i < uMin) throw new Error(`sampler: forced decision "stop" at t=${s}, i=${i} < uMin=${uMin}`);
    if (f === 'average' && i >= uMin) throw new Error(`sampler: forced decision "average" at t=${s}, i=${i} ≥ uMin=${uMin}`);
    return { decision: f, Dp, forced: true, scored };
  };
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

/**
 * The resampling loop: iterations i = 1 … u_max − 1 (none when k = 0, or from `stopAt` on) draw a
 * candidate from the current structure and accept it, average it in, or stop, as `judge` says.
 */
export async function resampleLoop(
  ctx: SamplerContext,
  first: { y: Float32Array; x: Float32Array },
  k: number,
  draw: (xc: Float32Array) => Promise<{ y: Float32Array; x: Float32Array }>,
  judge: (c: { y: Float32Array; x: Float32Array }, i: number) => Promise<Verdict>,
  stopAt = Infinity,
): Promise<{ y: Float32Array; x: Float32Array; records: ResampleRecord[]; end: StepEnd }> {
  let yc = first.y;
  let xc = first.x;
  const records: ResampleRecord[] = [];
  let end: StepEnd = k === 0 ? 'no_resample' : 'exhausted';
  for (let i = 1; i < ctx.opts.uMax && k > 0; i++) {
    if (i >= stopAt) {
      end = 'stop';
      break;
    }
    const c = await draw(xc);
    const v = await judge(c, i);
    const rec: ResampleRecord = { i, Dp: v.Dp, Dn: NaN, decision: v.decision };
    if (v.forced) {
      rec.forced = true;
      rec.scored = v.scored;
    }
    records.push(rec);
    if (v.decision === 'accept') {
      yc = c.y;
      xc = c.x;
    } else if (v.decision === 'average') {
      yc = mean2(yc, c.y);
      xc = mean2(c.x, xc);
    } else {
      end = 'stop';
      break;
    }
  }
  return { y: yc, x: xc, records, end };
}

/** The step's result; after resampling the states are no longer the solvers' own continuation, so multistep solvers restart. */
export function earlyResult(first: Pair, loop: { y: Float32Array; records: ResampleRecord[]; end: StepEnd }, x: Float32Array, k: number, Dn: number): EarlyResult {
  for (const r of loop.records) r.Dn = Dn;
  const history = loop.records.length > 0 ? { y: null, x: null } : { y: first.hy, x: first.hx };
  return { y: loop.y, x, history, k, Dn, records: loop.records, end: loop.end };
}
