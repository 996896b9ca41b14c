/**
 * The sampler's types, shared by the pipeline (strdiffusion.ts), its named steps (ops.ts,
 * resample.ts) and the variants (variants/). Shapes: batch 1, texture [1,3,H,W], structure and
 * mask [1,1,H,W]; mask m = 1 known, 0 hole.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NetRunner } from '../exec/types.js';
import type { F32Tensor } from '../util/tensor.js';
import type { Fill } from '../sde/fill.js';
import type { SamplerVariant, Solver, Spacing, StepRule, StructureKind } from '../options.js';
import type { SolverDef, SolverHistory } from './solvers/index.js';

export type Decision = 'accept' | 'average' | 'stop';
export type Stage = 'early' | 'late';
/** how an early step's resampling loop ended (the fixture's `steps[].end`) */
export type StepEnd = 'no_resample' | 'stop' | 'exhausted' | 'late';

export interface SamplerNets {
  /** not needed by the texture-only variants (`irsde`, `repaint`) */
  structure?: NetRunner;
  /** guided by a structure S, except for the texture-only variants (an IR-SDE network without SPADE) */
  texture: NetRunner;
  /** not needed by the `no-resampling`, `no-discriminator` and texture-only variants */
  discriminator?: NetRunner;
}

export interface SamplerInputs {
  /** ground truth / known image [1,3,H,W]; only its known pixels matter */
  image: F32Tensor;
  /** [1,1,H,W], 1 = known, 0 = hole */
  mask: F32Tensor;
  /** grayscale structure x_0 [1,1,H,W] (only its known pixels are used) */
  gray: F32Tensor;
  /** edge map [1,1,H,W]; μS = edge ⊙ m (gray2edge; other structure kinds pick their own pair) */
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
   * What the structure process diffuses between (src/structure/kinds.ts): the known structure x0
   * and μS, and the late stage's guide. Must be the kind the structure and texture networks were
   * trained for (`structureKind` in their model.json). Default gray2edge (official).
   */
  structureKind?: StructureKind;
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
  /** μS = end ⊙ m (gray2edge: edge ⊙ m) */
  muS: Float32Array;
  /** known structure x_0 ⊙ m (gray2edge: gray ⊙ m) */
  gS: Float32Array;
  image: Float32Array;
  opts: Required<Pick<SamplerOptions, 'uMax' | 'uMin' | 'jump' | 're' | 'stageSwitch' | 'variant' | 'fill' | 'structureKind'>> & SamplerOptions;
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
