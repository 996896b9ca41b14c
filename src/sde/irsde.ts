/**
 * The mean-reverting SDE (IR-SDE) of the official StrDiffusion code (docs/design.md §1), as pure host-side
 * functions on flat float32 NCHW arrays. Every element-wise operation is evaluated in float32
 * emulation (Math.fround after each op) in the official operation order, so a port reproduces
 * the official tensors to within an ulp. The official `set_mu` state is replaced by an explicit
 * `mu` argument; `withMu` binds one for convenience.
 *
 * `t` is either one level for the whole batch (the sampler's Python int) or one level per
 * sample (the training code's int64 tensor [B,1,1,1]).
 */
import { makeSchedule, type Schedule, type ScheduleOptions } from './schedule.js';
import type { NoiseSource } from '../util/noise.js';
import { numel } from '../util/tensor.js';

const fr = Math.fround;

export type Level = number | readonly number[];

export interface IRSDEOptions extends ScheduleOptions {}

/** Coefficients of reverse_sde_step_mean with score = −ε/σ̄_t: y_{t−1} = cx·y_t + cmu·μ + ceps·ε. */
export interface ReverseMeanCoefs {
  /** 1 + θ_t dt */
  cx: number;
  /** −θ_t dt */
  cmu: number;
  /** −σ_t² dt / σ̄_t */
  ceps: number;
}

/** Posterior mean: y*_{t−1} = μ + A·(y_t − μ) + B·(y_0 − μ) (the official term1, term2). */
export interface OptimumCoefs {
  A: number;
  B: number;
}

/** Marginal: y_t = μ + mean·(y_0 − μ) + std·z. */
export interface MarginalCoefs {
  mean: number;
  std: number;
}


export class IRSDE {
  readonly T: number;
  readonly thetas: Float32Array;
  readonly thetasCumsum: Float32Array;
  readonly sigmas: Float32Array;
  readonly sigmaBars: Float32Array;
  /** float32 value */
  readonly dt: number;
  /** float32 λ = fround(30/255) */
  readonly lambda: number;
  /** float32 value of the official `math.sqrt(self.dt)` scalar */
  readonly sqrtDt: number;
  readonly schedule: Schedule;

  constructor(opts: IRSDEOptions) {
    const s = makeSchedule(opts);
    this.schedule = s;
    this.T = s.T;
    this.thetas = s.thetas;
    this.thetasCumsum = s.thetasCumsum;
    this.sigmas = s.sigmas;
    this.sigmaBars = s.sigmaBars;
    this.dt = s.dt;
    this.lambda = s.lambda;
    this.sqrtDt = s.sqrtDt;
  }

  // ---- per-level scalars -------------------------------------------------------------------

  private lvl(t: number, allowZero = false): number {
    if (!Number.isInteger(t) || t < (allowZero ? 0 : 1) || t > this.T) {
      throw new Error(`IRSDE: level t=${t} outside ${allowZero ? 0 : 1}..${this.T}`);
    }
    return t;
  }

  /** σ̄_t (float32). t = 0 is allowed (σ̄_0 = 0), as the official generate_states(…, t−1) reaches it. */
  sigmaBar(t: number): number {
    return this.sigmaBars[this.lvl(t, true)]!;
  }

  /** float32 exp(−θ̄_t dt), the mean factor of mu_bar. */
  meanFactor(t: number): number {
    return fr(Math.exp(fr(-this.thetasCumsum[this.lvl(t, true)]! * this.dt)));
  }

  marginalCoefs(t: number): MarginalCoefs {
    return { mean: this.meanFactor(t), std: this.sigmaBar(t) };
  }

  /** term1/term2 of the official reverse_optimum_step, in its float32 order. At t = 1, B = 1 and A = 0 exactly. */
  optimumCoefs(t: number): OptimumCoefs {
    this.lvl(t);
    const A = fr(Math.exp(fr(-this.thetas[t]! * this.dt)));
    const B = fr(Math.exp(fr(-this.thetasCumsum[t]! * this.dt)));
    const C = fr(Math.exp(fr(-this.thetasCumsum[t - 1]! * this.dt)));
    const den = fr(1 - fr(B * B));
    return {
      A: fr(fr(A * fr(1 - fr(C * C))) / den),
      B: fr(fr(C * fr(1 - fr(A * A))) / den),
    };
  }

  /**
   * Affine form of reverse_sde_step_mean with score = −ε/σ̄_t (the training prediction, docs/design.md §1.7).
   * Real-valued (double) from the float32 schedule values; it agrees with the float32 element-wise
   * function up to its rounding (a few ulp), not bit-exactly.
   */
  reverseMeanCoefs(t: number): ReverseMeanCoefs {
    this.lvl(t);
    const th = this.thetas[t]!;
    const sg = this.sigmas[t]!;
    const sb = this.sigmaBars[t]!;
    return { cx: 1 + th * this.dt, cmu: -th * this.dt, ceps: -(sg * sg) * this.dt / sb };
  }

  // ---- element-wise operators (float32 emulation) -------------------------------------------

  /** Resolve `t` into one level per sample of a batch of `shape`. */
  levels(t: Level, shape: readonly number[]): number[] {
    const B = shape[0] ?? 1;
    if (typeof t === 'number') return new Array<number>(B).fill(t);
    if (t.length !== B) throw new Error(`IRSDE: ${t.length} per-sample levels for a batch of ${B}`);
    return [...t];
  }

  private check(name: string, shape: readonly number[], ...arrs: ArrayLike<number>[]): number {
    const n = numel(shape);
    for (const a of arrs) {
      if (a.length !== n) throw new Error(`IRSDE.${name}: array of ${a.length} values, shape [${shape.join(', ')}] needs ${n}`);
    }
    return n;
  }

  /**
   * Run an element function over every element. `perSample(level)` is called once per sample and
   * returns the function of the element index for that sample, its level's scalars already looked
   * up (not once per element: these steps run on every training batch).
   */
  private map(name: string, t: Level, shape: readonly number[], arrs: ArrayLike<number>[], perSample: (lv: number) => (i: number) => number): Float32Array {
    const n = this.check(name, shape, ...arrs);
    const lv = this.levels(t, shape);
    const per = lv.length > 0 ? n / lv.length : n;
    const out = new Float32Array(n);
    for (let b = 0; b < lv.length; b++) {
      const f = perSample(lv[b]!);
      const end = (b + 1) * per;
      for (let i = b * per; i < end; i++) out[i] = f(i);
    }
    return out;
  }

  /** mu_bar(x0, t) = μ + (x0 − μ)·exp(−θ̄_t dt) */
  muBar(x0: ArrayLike<number>, mu: ArrayLike<number>, t: Level, shape: readonly number[]): Float32Array {
    return this.map('muBar', t, shape, [x0, mu], (l) => {
      const f = this.meanFactor(l);
      return (i) => fr(mu[i]! + fr(fr(x0[i]! - mu[i]!) * f));
    });
  }

  /** sigma_bar at per-sample levels (the official `sigma_bar(t)` with t [B,1,1,1]). */
  sigmaBarBatch(t: readonly number[]): Float32Array {
    return Float32Array.from(t, (l) => this.sigmaBar(l));
  }

  /** forward_step: x + θ_t(μ − x)dt + σ_t·(z·sqrt(dt)), the transition from level t−1 to t. */
  forwardStep(x: ArrayLike<number>, mu: ArrayLike<number>, t: Level, z: ArrayLike<number>, shape: readonly number[]): Float32Array {
    const sq = this.sqrtDt;
    const dt = this.dt;
    return this.map('forwardStep', t, shape, [x, mu, z], (l) => {
      const th = this.thetas[this.lvl(l)]!;
      const sg = this.sigmas[l]!;
      return (i) => {
        const drift = fr(fr(th * fr(mu[i]! - x[i]!)) * dt);
        const disp = fr(sg * fr(z[i]! * sq));
        return fr(fr(x[i]! + drift) + disp);
      };
    });
  }

  /** sde_reverse_drift = (θ_t(μ − x) − σ_t²·score)·dt, as a function of (x, μ, score) at level l */
  private revDrift(l: number): (x: number, mu: number, s: number) => number {
    const th = this.thetas[this.lvl(l)]!;
    const sg = this.sigmas[l]!;
    const sg2 = fr(sg * sg);
    const dt = this.dt;
    return (x, mu, s) => fr(fr(fr(th * fr(mu - x)) - fr(sg2 * s)) * dt);
  }

  /** reverse_sde_step_mean: x − sde_reverse_drift(x, score, t). */
  reverseSdeStepMean(x: ArrayLike<number>, mu: ArrayLike<number>, score: ArrayLike<number>, t: Level, shape: readonly number[]): Float32Array {
    return this.map('reverseSdeStepMean', t, shape, [x, mu, score], (l) => {
      const drift = this.revDrift(l);
      return (i) => fr(x[i]! - drift(x[i]!, mu[i]!, score[i]!));
    });
  }

  /** reverse_sde_step: x − drift − σ_t·(z·sqrt(dt)); the official code SUBTRACTS the injected noise. */
  reverseSdeStep(x: ArrayLike<number>, mu: ArrayLike<number>, score: ArrayLike<number>, t: Level, z: ArrayLike<number>, shape: readonly number[]): Float32Array {
    const sq = this.sqrtDt;
    return this.map('reverseSdeStep', t, shape, [x, mu, score, z], (l) => {
      const drift = this.revDrift(l);
      const sg = this.sigmas[l]!;
      return (i) => fr(fr(x[i]! - drift(x[i]!, mu[i]!, score[i]!)) - fr(sg * fr(z[i]! * sq)));
    });
  }

  /** get_score_from_noise: −noise / σ̄_t. */
  scoreFromNoise(noise: ArrayLike<number>, t: Level, shape: readonly number[]): Float32Array {
    return this.map('scoreFromNoise', t, shape, [noise], (l) => {
      const sb = this.sigmaBar(this.lvl(l));
      return (i) => fr(-noise[i]! / sb);
    });
  }

  /** reverse_optimum_step: A·(xt − μ) + B·(x0 − μ) + μ (posterior mean of y_{t−1}; t = 1 gives x0 exactly). */
  reverseOptimumStep(xt: ArrayLike<number>, x0: ArrayLike<number>, mu: ArrayLike<number>, t: Level, shape: readonly number[]): Float32Array {
    return this.map('reverseOptimumStep', t, shape, [xt, x0, mu], (l) => {
      const { A, B } = this.optimumCoefs(l);
      return (i) => {
        const m = mu[i]!;
        return fr(fr(fr(A * fr(xt[i]! - m)) + fr(B * fr(x0[i]! - m))) + m);
      };
    });
  }

  /**
   * Not in the official code (the `posterior` step rule of the sampler): the x0 implied by a
   * noise prediction, x̂0 = μ + (x − μ − σ̄_t·ε)/exp(−θ̄_t dt), optionally clamped to [lo, hi].
   */
  predictX0(x: ArrayLike<number>, mu: ArrayLike<number>, eps: ArrayLike<number>, t: Level, shape: readonly number[], clamp?: [number, number]): Float32Array {
    return this.map('predictX0', t, shape, [x, mu, eps], (l) => {
      const sb = this.sigmaBar(this.lvl(l));
      const f = this.meanFactor(l);
      return (i) => {
        const v = fr(mu[i]! + fr(fr(fr(x[i]! - mu[i]!) - fr(sb * eps[i]!)) / f));
        return clamp ? Math.min(clamp[1], Math.max(clamp[0], v)) : v;
      };
    });
  }

  /**
   * Standard deviation of the exact OU posterior q(x_{t−1} | x_t, x0): with a = exp(−θ_t dt) and
   * b = exp(−θ̄_t dt), σ̄_{t−1}·sqrt((1 − a²)/(1 − b²)); 0 at t = 1.
   */
  posteriorStd(t: number): number {
    this.lvl(t);
    const a = Math.exp(-this.thetas[t]! * this.dt);
    const b = Math.exp(-this.thetasCumsum[t]! * this.dt);
    return this.sigmaBars[t - 1]! * Math.sqrt((1 - a * a) / (1 - b * b));
  }

  /** Sample of q(x_{t−1} | x_t, x0): reverse_optimum_step (its mean) + posteriorStd(t)·z. */
  posteriorStep(xt: ArrayLike<number>, x0: ArrayLike<number>, mu: ArrayLike<number>, t: Level, z: ArrayLike<number>, shape: readonly number[]): Float32Array {
    const mean = this.reverseOptimumStep(xt, x0, mu, t, shape);
    return this.map('posteriorStep', t, shape, [z], (l) => {
      const sd = fr(this.posteriorStd(l));
      return (i) => fr(mean[i]! + fr(sd * z[i]!));
    });
  }

  /** noise_state: μ + z·λ (the test-time terminal state). */
  noiseState(mu: ArrayLike<number>, z: ArrayLike<number>): Float32Array {
    if (mu.length !== z.length) throw new Error(`IRSDE.noiseState: mu has ${mu.length} values, z ${z.length}`);
    const lam = this.lambda;
    const out = new Float32Array(mu.length);
    for (let i = 0; i < mu.length; i++) out[i] = fr(mu[i]! + fr(z[i]! * lam));
    return out;
  }

  /**
   * Marginal sample z·σ̄_t + mu_bar(x0, t): the official generate_states (scalar t, structure
   * SDE), generate_random_states(_texture) (per-sample t). t = 0 is allowed (returns x0).
   */
  generateStates(x0: ArrayLike<number>, mu: ArrayLike<number>, t: Level, z: ArrayLike<number>, shape: readonly number[]): Float32Array {
    const mean = this.muBar(x0, mu, t, shape);
    return this.map('generateStates', t, shape, [z], (l) => {
      const sb = this.sigmaBar(l);
      return (i) => fr(fr(z[i]! * sb) + mean[i]!);
    });
  }

  /** t ∈ {2..T} per sample, as the official training's randint(2, T+1); `u` is uniform on [0, 1). */
  trainingTimesteps(B: number, u: () => number): number[] {
    const span = this.T - 1;
    const out: number[] = [];
    for (let b = 0; b < B; b++) out.push(2 + Math.min(span - 1, Math.floor(u() * span)));
    return out;
  }

  /** Bind μ (the official set_mu) without hidden state. */
  withMu(mu: ArrayLike<number>, shape: readonly number[]): BoundIRSDE {
    return new BoundIRSDE(this, mu, shape);
  }
}

/** An IRSDE with μ and the batch shape fixed; the methods mirror the official ones. */
export class BoundIRSDE {
  constructor(readonly sde: IRSDE, readonly mu: ArrayLike<number>, readonly shape: readonly number[]) {}
  muBar(x0: ArrayLike<number>, t: Level): Float32Array { return this.sde.muBar(x0, this.mu, t, this.shape); }
  forwardStep(x: ArrayLike<number>, t: Level, noise: NoiseSource): Float32Array {
    return this.sde.forwardStep(x, this.mu, t, noise.normal([...this.shape]), this.shape);
  }
  reverseSdeStep(x: ArrayLike<number>, score: ArrayLike<number>, t: Level, noise: NoiseSource): Float32Array {
    return this.sde.reverseSdeStep(x, this.mu, score, t, noise.normal([...this.shape]), this.shape);
  }
  reverseSdeStepMean(x: ArrayLike<number>, score: ArrayLike<number>, t: Level): Float32Array {
    return this.sde.reverseSdeStepMean(x, this.mu, score, t, this.shape);
  }
  reverseOptimumStep(xt: ArrayLike<number>, x0: ArrayLike<number>, t: Level): Float32Array {
    return this.sde.reverseOptimumStep(xt, x0, this.mu, t, this.shape);
  }
  scoreFromNoise(noise: ArrayLike<number>, t: Level): Float32Array { return this.sde.scoreFromNoise(noise, t, this.shape); }
  noiseState(noise: NoiseSource): Float32Array { return this.sde.noiseState(this.mu, noise.normal([...this.shape])); }
  generateStates(x0: ArrayLike<number>, t: Level, noise: NoiseSource): Float32Array {
    return this.sde.generateStates(x0, this.mu, t, noise.normal([...this.shape]), this.shape);
  }
}

/**
 * MatchingLoss('l1') of the official training (docs/design.md §1.7), in its float32 element order:
 * |p·m − g·m| + 10·|p·(1−m) − g·(1−m)| per element (mask [B,1,H,W] broadcast over channels),
 * then the mean over all B·C·H·W elements. The mean is accumulated in double and rounded once
 * (torch's float32 reduction order differs by at most an ulp or so).
 */
export function matchingLoss(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  mask: ArrayLike<number>,
  shape: readonly number[],
  maskShape: readonly number[],
): number {
  const n = numel(shape);
  if (pred.length !== n || target.length !== n) throw new Error(`matchingLoss: pred/target have ${pred.length}/${target.length} values, shape needs ${n}`);
  if (shape.length !== 4 || maskShape.length !== 4) throw new Error('matchingLoss: expects NCHW shapes');
  const [B, C, H, W] = shape as [number, number, number, number];
  const mc = maskShape[1]!;
  if (maskShape[0] !== B || maskShape[2] !== H || maskShape[3] !== W || (mc !== 1 && mc !== C) || mask.length !== numel(maskShape)) {
    throw new Error(`matchingLoss: mask shape [${maskShape.join(', ')}] does not broadcast to [${shape.join(', ')}]`);
  }
  const hw = H * W;
  let sum = 0;
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const base = (b * C + c) * hw;
      const mbase = (b * mc + (mc === 1 ? 0 : c)) * hw;
      for (let k = 0; k < hw; k++) {
        const p = pred[base + k]!;
        const g = target[base + k]!;
        const m = mask[mbase + k]!;
        const om = fr(1 - m);
        const lm = Math.abs(fr(fr(p * om) - fr(g * om)));
        const lu = Math.abs(fr(fr(p * m) - fr(g * m)));
        sum += fr(lu + fr(10 * lm));
      }
    }
  }
  return fr(sum / n);
}
