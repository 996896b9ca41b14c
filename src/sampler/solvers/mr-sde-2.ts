/**
 * `mr-sde-2`: MR Sampler's second-order multistep data-prediction SDE solver (the DPM-Solver++(2M)
 * SDE form for the mean-reverting SDE). Its first-order part is the exact posterior jump
 * (A = (σ̄_t/σ̄_s)e^{−h}, B = e_t(1 − e^{−2h}), std = σ̄_t·sqrt(1 − e^{−2h})); x̂0 linear in λ adds
 *   e_t(h − (1 − e^{−2h})/2)·(x̂0_s − x̂0_prev)/h_prev.
 * First order on the first step and on the last (t = 0).
 */
import { affineStep, posteriorJumpCoefs } from '../../sde/jump.js';
import { odeCoefs, slope } from './mr-coefs.js';
import { dataPrediction, type SolverDef } from './types.js';

export const mrSde2Solver: SolverDef = {
  name: 'mr-sde-2',
  order: 2,
  stochastic: true,
  oneLevel: false,
  step(inp) {
    const z = inp.noise.normal([...inp.shape]);
    const x0 = dataPrediction(inp);
    const { h, et } = odeCoefs(inp.sde, inp.s, inp.t);
    const d = slope(inp, x0);
    // ∫_0^h 2e^{−2(h−v)} v dv = h − (1 − e^{−2h})/2
    const correction = d && Number.isFinite(h) ? { C: (et * (h - (1 - Math.exp(-2 * h)) / 2)) / d.hPrev, d: d.diff } : undefined;
    return { x: affineStep(inp.x, inp.mu, x0, posteriorJumpCoefs(inp.sde, inp.s, inp.t), z, correction), history: { x0, s: inp.s } };
  },
};
