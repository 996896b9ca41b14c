/**
 * The IR-SDE θ schedule (docs/design.md §1.2, §1.8), evaluated in float32 emulation in the operation order of
 * the official `IRSDE._initialize`, so the arrays match the official float32 tensors to the last
 * bit or so (the remaining difference is torch's 1-ulp SLEEF cos/exp against correctly rounded
 * Math.cos/Math.exp).
 */
const fr = Math.fround;

/** The longest diffusion accepted anywhere (model.json, --T, the API, resampling depths); the official checkpoints use 100 and 400. */
export const MAX_T = 10000;

export type ScheduleKind = 'cosine';

export interface ScheduleOptions {
  T: number;
  /** on the 0..255 scale when ≥ 1 (the official code divides by 255), else already λ */
  maxSigma?: number;
  eps?: number;
  schedule?: ScheduleKind;
}

export interface Schedule {
  T: number;
  /** λ as the float32 value torch multiplies with (fround(30/255)) */
  lambda: number;
  /** λ as the Python double the official code keeps in `self.max_sigma` */
  lambdaF64: number;
  /** T+1 values each; index 0 is the dummy level that is never a step */
  thetas: Float32Array;
  thetasCumsum: Float32Array;
  sigmas: Float32Array;
  sigmaBars: Float32Array;
  /** a float32 value (the official 0-d tensor) */
  dt: number;
  /** fround(sqrt(double(dt))): the official `math.sqrt(self.dt)` is a Python float cast to float32 when it scales the noise */
  sqrtDt: number;
}

/**
 * `cosine_theta_schedule(T)`: float32 linspace(0, N, N+1) with N = T+2 (exact integers, since
 * torch's step is (N-0)/N = 1), then cos(((x/N)+s)/(1+s)·π·0.5)², normalised by a_0, and
 * θ = 1 − a[1:-1]. Python scalars are cast to float32 before each tensor op (torch's CPU
 * kernels take the scalar operand in the op's float32 compute type).
 */
export function cosineThetas(T: number, s = 0.008): Float32Array {
  const N = T + 2;
  const fs = fr(s);
  const onePlusS = fr(1 + s);
  const pi = fr(Math.PI);
  const a = new Float32Array(N + 1);
  for (let k = 0; k <= N; k++) {
    let v = fr(k / N);
    v = fr(v + fs);
    v = fr(v / onePlusS);
    v = fr(v * pi);
    v = fr(v * 0.5);
    const c = fr(Math.cos(v));
    a[k] = fr(c * c);
  }
  const a0 = a[0]!;
  const thetas = new Float32Array(T + 1);
  for (let i = 0; i <= T; i++) thetas[i] = fr(1 - fr(a[i + 1]! / a0));
  return thetas;
}

export function makeSchedule(opts: ScheduleOptions): Schedule {
  const { T } = opts;
  const maxSigmaIn = opts.maxSigma ?? 30;
  const eps = opts.eps ?? 0.005;
  const kind = opts.schedule ?? 'cosine';
  if (kind !== 'cosine') throw new Error(`IRSDE: schedule "${kind}" is not supported (the official configs use cosine)`);
  if (!Number.isInteger(T) || T < 1) throw new Error(`IRSDE: T must be a positive integer, got ${T}`);
  const lambdaF64 = maxSigmaIn >= 1 ? maxSigmaIn / 255 : maxSigmaIn;

  const thetas = cosineThetas(T);
  // max_sigma**2 * 2 is a Python double product, cast to float32 once as the scalar operand.
  const twoLam2 = fr(lambdaF64 * lambdaF64 * 2);
  const sigmas = new Float32Array(T + 1);
  for (let i = 0; i <= T; i++) sigmas[i] = fr(Math.sqrt(fr(twoLam2 * thetas[i]!)));

  // torch 1.13's CPU cumsum accumulates sequentially in acc_type<float> = double and rounds each
  // output to float32 (a float32 accumulator is off by up to 6e-5 at T=400); θ_0 is subtracted afterwards.
  const thetasCumsum = new Float32Array(T + 1);
  let acc = 0;
  for (let i = 0; i <= T; i++) {
    acc += thetas[i]!;
    thetasCumsum[i] = acc;
  }
  const th0 = thetas[0]!;
  for (let i = 0; i <= T; i++) thetasCumsum[i] = fr(thetasCumsum[i]! - th0);

  // `-1 / tensor` is Tensor.__rdiv__ = reciprocal() * -1, then * float32(log(eps)).
  const dt = fr(fr(fr(1 / thetasCumsum[T]!) * -1) * fr(Math.log(eps)));

  const lam2 = fr(lambdaF64 * lambdaF64);
  const sigmaBars = new Float32Array(T + 1);
  for (let i = 0; i <= T; i++) {
    const e = fr(Math.exp(fr(fr(-2 * thetasCumsum[i]!) * dt)));
    sigmaBars[i] = fr(Math.sqrt(fr(lam2 * fr(1 - e))));
  }
  return {
    T,
    lambda: fr(lambdaF64),
    lambdaF64,
    thetas,
    thetasCumsum,
    sigmas,
    sigmaBars,
    dt,
    sqrtDt: fr(Math.sqrt(dt)),
  };
}
