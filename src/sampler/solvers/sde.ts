/**
 * `sde`: the official step (reverse_sde_step of the authors' IRSDE): Euler–Maruyama on the reverse
 * SDE with the score −ε̂/σ̄_s, from level s to s − 1 only. It has no closed form for a jump.
 */
import type { SolverDef } from './types.js';

export const sdeSolver: SolverDef = {
  name: 'sde',
  order: 1,
  stochastic: true,
  oneLevel: true,
  step({ sde, x, mu, eps, s, t, shape, noise }) {
    if (s - t !== 1) throw new Error(`solver sde moves one level per step (asked ${s} → ${t}); use posterior or an mr-* solver for fewer steps`);
    const z = noise.normal([...shape]);
    return { x: sde.reverseSdeStep(x, mu, sde.scoreFromNoise(eps, s, shape), s, z, shape), history: null };
  },
};
