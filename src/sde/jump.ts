/**
 * Closed forms of the mean-reverting SDE between any two levels s > t (not only t → t − 1), from
 * the same tables as the one-step rules: e_t = exp(−θ̄_t dt) (`meanFactor`) and σ̄_t (`sigmaBars`).
 * With u = x − μ and d = x0 − μ the marginal is u_t = e_t·d + σ̄_t·ε (docs/design.md §5.9):
 *
 * - forward jump  x_s | x_t:      u_s = a·u_t + λ·sqrt(1 − a²)·z,   a = e_s / e_t;
 * - posterior     x_t | x_s, x0:  u_t = A·u_s + B·d + std·z,  A = a(1 − e_t²)/(1 − e_s²),
 *                                 B = e_t(1 − a²)/(1 − e_s²),  std = σ̄_t·sqrt((1 − a²)/(1 − e_s²));
 * - log-SNR       λ_t = ln(e_t / σ̄_t) (+∞ at t = 0), the variable the MR-Sampler solvers step in.
 *
 * Coefficients are doubles computed from the float32 tables (the element-wise use rounds to
 * float32). For s = t + 1 they agree with `optimumCoefs` / `posteriorStd` up to that rounding;
 * the samplers call the one-step functions themselves there, so the full grid stays bit-exact.
 */
import type { IRSDE } from './irsde.js';

const fr = Math.fround;

export interface JumpCoefs {
  /** factor on x − μ */
  A: number;
  /** factor on x̂0 − μ */
  B: number;
  /** standard deviation of the added noise */
  std: number;
}

function checkPair(sde: IRSDE, s: number, t: number): void {
  if (!Number.isInteger(s) || !Number.isInteger(t) || !(s > t) || t < 0 || s > sde.T) {
    throw new Error(`IRSDE jump: levels must be integers with ${sde.T} >= s > t >= 0 (got s=${s}, t=${t})`);
  }
}

/**
 * a = exp(−dt·Σ_{k=t+1..s} θ_k) (= e_s/e_t; summed from θ rather than divided from the rounded e
 * tables, which would lose 1 − a² to cancellation on short jumps) and 1 − a².
 */
function transition(sde: IRSDE, s: number, t: number): { a: number; oneMinusA2: number } {
  let sum = 0;
  for (let k = t + 1; k <= s; k++) sum += sde.thetas[k]!;
  const a = Math.exp(-sum * sde.dt);
  return { a, oneMinusA2: -Math.expm1(-2 * sum * sde.dt) };
}

/** x_s | x_t for s > t: x_s = μ + a(x_t − μ) + std·z. */
export function forwardJumpCoefs(sde: IRSDE, t: number, s: number): { a: number; std: number } {
  checkPair(sde, s, t);
  const { a, oneMinusA2 } = transition(sde, s, t);
  // σ̄_s² − a²σ̄_t² = λ²(1 − a²), since σ̄² = λ²(1 − e²) and a·e_t = e_s
  return { a, std: sde.lambda * Math.sqrt(oneMinusA2) };
}

/** q(x_t | x_s, x0) for s > t: x_t = μ + A(x_s − μ) + B(x0 − μ) + std·z. t = 0 gives A = 0, B = 1, std = 0. */
export function posteriorJumpCoefs(sde: IRSDE, s: number, t: number): JumpCoefs {
  checkPair(sde, s, t);
  // σ̄_0 = 0: the posterior at level 0 is x0 itself (exactly, whatever the tables' rounding)
  if (t === 0) return { A: 0, B: 1, std: 0 };
  const { a, oneMinusA2 } = transition(sde, s, t);
  const et = sde.meanFactor(t);
  const den = 1 - sde.meanFactor(s) ** 2;
  // the forms of optimumCoefs / posteriorStd with the one-level factor replaced by a
  return { A: (a * (1 - et * et)) / den, B: (et * oneMinusA2) / den, std: sde.sigmaBar(t) * Math.sqrt(oneMinusA2 / den) };
}

/** λ_t = ln(e_t / σ̄_t); +∞ at t = 0 (σ̄_0 = 0). */
export function logSnr(sde: IRSDE, t: number): number {
  const sb = sde.sigmaBar(t);
  return sb === 0 ? Infinity : Math.log(sde.meanFactor(t) / sb);
}

/** μ + A(x − μ) + B(x0 − μ) [+ C·(dx0 − 0)] + std·z element-wise, rounded to float32. */
export function affineStep(
  x: ArrayLike<number>,
  mu: ArrayLike<number>,
  x0: ArrayLike<number>,
  c: JumpCoefs,
  z: ArrayLike<number> | null,
  correction?: { C: number; d: ArrayLike<number> },
): Float32Array {
  const out = new Float32Array(x.length);
  const { A, B, std } = c;
  for (let i = 0; i < out.length; i++) {
    const m = mu[i]!;
    let v = m + A * (x[i]! - m) + B * (x0[i]! - m);
    if (correction) v += correction.C * correction.d[i]!;
    if (z) v += std * z[i]!;
    out[i] = fr(v);
  }
  return out;
}

/** A sample of x_s given x_t (s > t): the closed-form re-noising jump. */
export function forwardJump(sde: IRSDE, x: ArrayLike<number>, mu: ArrayLike<number>, t: number, s: number, z: ArrayLike<number>): Float32Array {
  const { a, std } = forwardJumpCoefs(sde, t, s);
  const out = new Float32Array(x.length);
  for (let i = 0; i < out.length; i++) out[i] = fr(mu[i]! + a * (x[i]! - mu[i]!) + std * z[i]!);
  return out;
}
