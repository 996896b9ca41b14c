/**
 * A solver moves one process (the texture or the structure diffusion) from grid level s to t < s
 * with one network output. Every solver but the official Euler–Maruyama step works on the data
 * prediction x̂0 (from ε-networks via x̂0 = μ + (x − μ − σ̄_s ε)/e_s, x0-networks the same way),
 * which is what lets it jump several levels (docs/design.md §5.9).
 */
import type { IRSDE } from '../../sde/irsde.js';
import type { NoiseSource } from '../../util/noise.js';
import type { Solver } from '../../options.js';

/** What a multistep solver keeps of the previous step of the same process. */
export interface SolverHistory {
  /** x̂0 predicted at level `s` */
  x0: Float32Array;
  s: number;
}

export interface SolverInput {
  sde: IRSDE;
  /** state at level s, NCHW */
  x: Float32Array;
  /** the process' mean μ */
  mu: Float32Array;
  /** the network's noise prediction at (x, s) */
  eps: Float32Array;
  s: number;
  /** target level, 0 <= t < s */
  t: number;
  shape: readonly number[];
  /** the previous step of this process (null: first step, or after a resampling jump) */
  prev: SolverHistory | null;
  noise: NoiseSource;
  /** clamp x̂0 to this range ([0, 1] for images); null for unbounded data (the analytic tests) */
  clamp: readonly [number, number] | null;
}

export interface SolverOutput {
  /** state at level t */
  x: Float32Array;
  /** what the next step of this process may use (null for solvers without x̂0) */
  history: SolverHistory | null;
}

export interface SolverDef {
  name: Solver;
  /** order of accuracy in the step size (ODE solvers: of the probability-flow map) */
  order: 1 | 2;
  /** draws one noise tensor per step */
  stochastic: boolean;
  /** only moves one level per call (the official Euler–Maruyama step) */
  oneLevel: boolean;
  step(inp: SolverInput): SolverOutput;
}

/** x̂0 from the network's ε at level s (clamped when asked). */
export function dataPrediction(inp: SolverInput): Float32Array {
  const { sde, x, mu, eps, s, shape, clamp } = inp;
  return sde.predictX0(x, mu, eps, s, shape, clamp ? [clamp[0], clamp[1]] : undefined);
}
