/**
 * `mr-ode-2`: MR Sampler's second-order multistep data-prediction ODE solver (the DPM-Solver++(2M)
 * form for the mean-reverting SDE): x̂0 taken linear in λ through this step's and the previous
 * step's predictions and integrated exactly:
 *   x_t = [mr-ode-1 step] + e_t(h − 1 + e^{−h})·(x̂0_s − x̂0_prev)/h_prev.
 * First order on the first step and on the last (t = 0, where h = ∞).
 */
import { affineStep } from '../../sde/jump.js';
import { odeCoefs, slope } from './mr-coefs.js';
import { dataPrediction, type SolverDef } from './types.js';

export const mrOde2Solver: SolverDef = {
  name: 'mr-ode-2',
  order: 2,
  stochastic: false,
  oneLevel: false,
  step(inp) {
    const x0 = dataPrediction(inp);
    const { coefs, h, et } = odeCoefs(inp.sde, inp.s, inp.t);
    const d = slope(inp, x0);
    // ∫_0^h e^{−(h−v)} v dv = h − 1 + e^{−h}
    const correction = d && Number.isFinite(h) ? { C: (et * (h - 1 + Math.exp(-h))) / d.hPrev, d: d.diff } : undefined;
    return { x: affineStep(inp.x, inp.mu, x0, coefs, null, correction), history: { x0, s: inp.s } };
  },
};
