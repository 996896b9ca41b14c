/**
 * One mean-reverting diffusion sampled on a grid, nothing else: x_{t_0} → x_{t_1} → … → x_0, one
 * denoiser call per grid step, each step taken by a solver. This is plain IR-SDE sampling (no
 * structure, no known-region paste); the StrDiffusion samplers step their two processes with the
 * same solvers. The analytic tests drive it with closed-form denoisers.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NoiseSource } from '../util/noise.js';
import type { SolverDef, SolverHistory } from './solvers/index.js';

/** ε̂(x_s, s) for a state of the process' shape. */
export type Denoiser = (x: Float32Array, s: number) => Float32Array | Promise<Float32Array>;

export interface ProcessArgs {
  sde: IRSDE;
  denoise: Denoiser;
  mu: Float32Array;
  /** state at grid[0] */
  init: Float32Array;
  /** decreasing integer levels, last 0 */
  grid: readonly number[];
  solver: SolverDef;
  noise: NoiseSource;
  shape: readonly number[];
  clamp?: readonly [number, number] | null;
}

export async function sampleProcess(a: ProcessArgs): Promise<Float32Array> {
  let x = a.init;
  let prev: SolverHistory | null = null;
  for (let i = 0; i + 1 < a.grid.length; i++) {
    const s = a.grid[i]!;
    const t = a.grid[i + 1]!;
    const eps = await a.denoise(x, s);
    const r = a.solver.step({ sde: a.sde, x, mu: a.mu, eps, s, t, shape: a.shape, prev, noise: a.noise, clamp: a.clamp ?? null });
    x = r.x;
    prev = r.history;
  }
  return x;
}
