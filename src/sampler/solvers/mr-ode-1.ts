/**
 * `mr-ode-1`: MR Sampler's first-order data-prediction solver of the probability-flow ODE
 * (deterministic; DDIM's update for the mean-reverting SDE). With λ = ln(e/σ̄) and h = λ_t − λ_s:
 *   x_t = μ + (σ̄_t/σ̄_s)(x_s − μ) + e_t(1 − e^{−h})(x̂0 − μ),
 * exact when x̂0 is exact (docs/design.md §5.9).
 */
import { affineStep } from '../../sde/jump.js';
import { odeCoefs } from './mr-coefs.js';
import { dataPrediction, type SolverDef } from './types.js';

export const mrOde1Solver: SolverDef = {
  name: 'mr-ode-1',
  order: 1,
  stochastic: false,
  oneLevel: false,
  step(inp) {
    const x0 = dataPrediction(inp);
    const { coefs } = odeCoefs(inp.sde, inp.s, inp.t);
    return { x: affineStep(inp.x, inp.mu, x0, coefs, null), history: { x0, s: inp.s } };
  },
};
