/**
 * Sampling grids: a strictly decreasing list of integer levels T = t_0 > t_1 > … > t_N = 0. The
 * networks only ever see the integer levels they were trained on; a solver moves the state from
 * t_i to t_{i+1} in one network call. N = T is the full grid T, T − 1, …, 0 (the official sampler).
 */
import type { IRSDE } from '../sde/irsde.js';
import { logSnr } from '../sde/jump.js';
import { SPACINGS, parseChoice, type Spacing } from '../options.js';

export { SPACINGS, type Spacing } from '../options.js';

/** The full grid T, T−1, …, 0. */
export function fullGrid(T: number): number[] {
  return Array.from({ length: T + 1 }, (_, i) => T - i);
}

/**
 * N steps from T to 0 spaced by `kind`:
 * - `uniform`: t_i ≈ T(1 − i/N);
 * - `quadratic`: t_i ≈ T(1 − i/N)², denser at low noise where detail is decided;
 * - `logsnr`: uniform in λ = ln(e_t/σ̄_t) from λ_T to λ_1, then 0 (the variable the MR solvers step in).
 * Targets are rounded to the nearest level, then forced strictly decreasing (each level at least one
 * below the last and at least one above what the remaining steps need), so every grid has N + 1
 * distinct levels.
 */
export function samplingGrid(sde: IRSDE, steps: number, kind: Spacing = 'uniform'): number[] {
  const T = sde.T;
  parseChoice(SPACINGS, kind, 'grid');
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new Error(`sampling steps must be an integer from 1 to T = ${T} (got ${steps})`);
  if (steps === T) return fullGrid(T);
  const target = targets(sde, steps, kind);
  const grid = [T];
  for (let i = 1; i <= steps; i++) {
    const room = steps - i; // levels still needed below this one
    grid.push(Math.max(room, Math.min(grid[i - 1]! - 1, Math.round(target[i]!))));
  }
  return grid;
}

function targets(sde: IRSDE, N: number, kind: Spacing): number[] {
  const T = sde.T;
  if (kind === 'uniform') return Array.from({ length: N + 1 }, (_, i) => T * (1 - i / N));
  if (kind === 'quadratic') return Array.from({ length: N + 1 }, (_, i) => T * (1 - i / N) ** 2);
  // logsnr: λ is increasing as t decreases; pick the level whose λ is nearest to each target
  const lam = Array.from({ length: T + 1 }, (_, t) => logSnr(sde, t));
  const lo = lam[T]!;
  const hi = lam[1]!;
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const want = lo + ((hi - lo) * i) / (N - 1 || 1);
    let best = T;
    for (let t = 1; t <= T; t++) if (Math.abs(lam[t]! - want) < Math.abs(lam[best]! - want)) best = t;
    out.push(best);
  }
  out.push(0);
  return out;
}

/** Whether consecutive grid levels are all one apart (the one-step rules apply exactly). */
export function isFullGrid(grid: readonly number[]): boolean {
  return grid.every((t, i) => i === 0 || grid[i - 1]! - t === 1);
}
