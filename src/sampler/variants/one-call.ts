/**
 * `one-call` (not in the official code): the texture network's x̂0 at t = T from the terminal
 * states, i.e. its estimate of E[y_0 | the known pixels]: one network call, no structure network,
 * no discriminator, no solver step (the grid is [T, 0] whatever `steps` says). Measured in session 9
 * (docs/training.md): above OpenCV Telea and Navier–Stokes in PSNR in every hole bucket, where the
 * sampled trajectory is below them; smoother than a sample (less texture).
 *
 * The guide is the one the texture net is trained with at level T, the structure's posterior mean
 * at T − 1 given x_T and x0: its x0 coefficient is C(1 − A²)/(1 − B²) ≈ 0.1 % at T (spec §1.6), so
 * x0 (unknown here) is replaced by μS at no measurable cost and the structure network is not needed.
 */
import type { EarlyStep } from '../resample.js';

export const oneCallEarly: EarlyStep = async (ctx, ops, y, x, index) => {
  const s = ctx.grid[index]!;
  const guide = ctx.sde.reverseOptimumStep(x, ctx.muS, ctx.muS, s, ctx.shapeX);
  const y0 = await ops.x0Y(y, s, guide);
  return { y: y0, x, history: { y: null, x: null }, k: 0, Dn: NaN, records: [], end: 'no_resample' };
};
