/**
 * `posterior`: a draw from the exact posterior q(x_t | x_s, x̂0) of the mean-reverting SDE. Over a
 * jump s → t it is MR Sampler's first-order SDE solver (data prediction); on s → s − 1 it is the
 * one-step rule `posteriorStep` itself, bit for bit (the official reverse_optimum_step as mean).
 */
import { affineStep, posteriorJumpCoefs } from '../../sde/jump.js';
import { dataPrediction, type SolverDef } from './types.js';

export const posteriorSolver: SolverDef = {
  name: 'posterior',
  order: 1,
  stochastic: true,
  oneLevel: false,
  step(inp) {
    const { sde, x, mu, s, t, shape, noise } = inp;
    // the draw comes first, as in the official step, so both rules consume the same stream
    const z = noise.normal([...shape]);
    const x0 = dataPrediction(inp);
    const out = s - t === 1 ? sde.posteriorStep(x, x0, mu, s, z, shape) : affineStep(x, mu, x0, posteriorJumpCoefs(sde, s, t), z);
    return { x: out, history: { x0, s } };
  },
};
