/** Shared pieces of the MR-Sampler solvers: the log-SNR step and the multistep slope of x̂0. */
import type { IRSDE } from '../../sde/irsde.js';
import { logSnr, type JumpCoefs } from '../../sde/jump.js';
import type { SolverInput } from './types.js';

/** The first-order ODE step s → t: A = σ̄_t/σ̄_s, B = e_t − e_s·A, no noise; and h = λ_t − λ_s, e_t. */
export function odeCoefs(sde: IRSDE, s: number, t: number): { coefs: JumpCoefs; h: number; et: number } {
  const A = sde.sigmaBar(t) / sde.sigmaBar(s);
  const et = sde.meanFactor(t);
  return { coefs: { A, B: et - sde.meanFactor(s) * A, std: 0 }, h: logSnr(sde, t) - logSnr(sde, s), et };
}

/** x̂0_s − x̂0_prev and the previous step's λ-length h_prev = λ_s − λ_prev; null without a usable previous step. */
export function slope(inp: SolverInput, x0: Float32Array): { diff: Float32Array; hPrev: number } | null {
  const p = inp.prev;
  if (!p || !(p.s > inp.s)) return null;
  const hPrev = logSnr(inp.sde, inp.s) - logSnr(inp.sde, p.s);
  if (!(hPrev > 0) || !Number.isFinite(hPrev)) return null;
  const diff = new Float32Array(x0.length);
  for (let i = 0; i < diff.length; i++) diff[i] = x0[i]! - p.x0[i]!;
  return { diff, hPrev };
}
