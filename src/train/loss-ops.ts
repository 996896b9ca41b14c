/**
 * The differentiable part of the three official training objectives, written once against the
 * operator interface: the ONNX tracer records it into the training graph that
 * ../exec/onnx/autodiff.ts differentiates. Each loss keeps the float32 operation order of
 * the PyTorch code (docs/training.md), so losses and gradients match the reference.
 */
import type { NetContext, Ops } from '../nn/ops.js';
import type { NetConfig, NetKind } from '../exec/types.js';
import type { DiscConfig, UNetConfig } from '../nn/config.js';
import { unetForward, unetHead } from '../nn/unet.js';
import { discriminatorForward } from '../nn/discriminator.js';

/**
 * `MatchingLoss('l1')`: mean over B·C·H·W of |p·m − g·m| + 10·|p·(1−m) − g·(1−m)|
 * (m = 1 known, 0 hole; [B,1,H,W] broadcast over channels). The target carries no gradient.
 */
export function matchingLoss<T>(ops: Ops<T>, pred: T, target: T, mask: T): T {
  const om = ops.sub(ops.scalar(1), mask);
  const lossm = ops.abs(ops.sub(ops.mul(pred, om), ops.mul(target, om)));
  const lossu = ops.abs(ops.sub(ops.mul(pred, mask), ops.mul(target, mask)));
  const all = ops.add(lossu, ops.mul(lossm, ops.scalar(10)));
  return ops.reduceMean(all, ops.shape(all).map((_, i) => i), false);
}

/**
 * `torch.nn.TripletMarginLoss()` defaults (margin 1, p 2, eps 1e-6, mean) on [B,1] scores: the
 * distance ‖a − x + eps‖₂ over an axis of size 1 is |a − x + eps| (same value; its gradient is
 * PyTorch's x/‖x‖ without sqrt's 0·∞ at a zero distance).
 */
export function tripletMarginLoss<T>(ops: Ops<T>, anchor: T, positive: T, negative: T, margin = 1, eps = 1e-6): T {
  const B = ops.shape(anchor)[0]!;
  const d = (x: T) => ops.abs(ops.reshape(ops.add(ops.sub(anchor, x), ops.scalar(eps)), [B]));
  const hinge = ops.relu(ops.sub(ops.add(d(positive), ops.scalar(margin)), d(negative)));
  return ops.reduceMean(hinge, [0], false);
}

/**
 * The discriminator objective: `softplus(−D_real).mean() + softplus(D_fake).mean()
 * + triplet(D_anchor, D_real, D_fake)` with scores [B] (the triplet on [B,1] columns).
 */
export function discriminatorLoss<T>(ops: Ops<T>, dReal: T, dFake: T, dAnchor: T): T {
  const B = ops.shape(dReal)[0]!;
  const col = (x: T) => ops.reshape(x, [B, 1]);
  const flat = (x: T) => ops.reshape(x, [B]);
  const real = ops.reduceMean(ops.softplus(ops.mul(flat(dReal), ops.scalar(-1))), [0], false);
  const fake = ops.reduceMean(ops.softplus(flat(dFake)), [0], false);
  return ops.add(ops.add(real, fake), tripletMarginLoss(ops, col(dAnchor), col(dReal), col(dFake)));
}

/** Per-sample SDE coefficients as [B,1,1,1] tensors, and dt. */
export interface StepCoefs<T> {
  theta: T;
  sigma2: T;
  sigmaBar: T;
  dt: number;
}

/**
 * `reverse_sde_step_mean(x, score, t)` with score = −ε̂/σ̄_t:
 * x − (θ_t(μ − x) − σ_t²·score)·dt, in the official operation order.
 */
export function reverseMeanFromNoise<T>(ops: Ops<T>, x: T, mu: T, eps: T, c: StepCoefs<T>): T {
  const score = ops.div(ops.mul(eps, ops.scalar(-1)), c.sigmaBar);
  const drift = ops.mul(ops.sub(ops.mul(c.theta, ops.sub(mu, x)), ops.mul(c.sigma2, score)), ops.scalar(c.dt));
  return ops.sub(x, drift);
}

/** Tensor inputs of one objective evaluation (host preparation in ./objectives.ts). */
export interface ObjectiveTensors<T> {
  /** t per sample [B] (integer values as float) */
  t: T;
  /** [B,1,H,W], 1 = known */
  mask: T;
  /** U-Nets: x_t / y_t; D: y_t (the "fake") */
  state: T;
  /** U-Nets: SDE mean */
  mu?: T;
  /** posterior mean x*_{t−1} / y*_{t−1}: U-Net target, D's "real" */
  target: T;
  /** texture / D: structure guide */
  S?: T;
  /** D: m⊙y* + (1−m)⊙y_t */
  anchor?: T;
  /** U-Nets with 'x0' prediction: the clean x0 (gray / RGB) */
  clean?: T;
  coefs?: StepCoefs<T>;
}

export interface ObjectiveOut<T> {
  loss: T;
  /** U-Nets: [ε̂, x̂_{t−1}] ('x0' prediction: [x̂0]); D: [D_real, D_fake, D_anchor] */
  aux: T[];
}

/** Network call(s) and loss of one official objective. */
export function objective<T>(ctx: NetContext<T>, kind: NetKind, cfg: NetConfig, x: ObjectiveTensors<T>): ObjectiveOut<T> {
  const { ops } = ctx;
  if (kind === 'discriminator') {
    if (!x.S || !x.anchor) throw new Error('discriminator objective: S and the anchor are required');
    const D = (y: T) => discriminatorForward(ctx, cfg as DiscConfig, x.t, y, x.S!);
    const dReal = D(x.target);
    const dFake = D(x.state);
    const dAnchor = D(x.anchor);
    return { loss: discriminatorLoss(ops, dReal, dFake, dAnchor), aux: [dReal, dFake, dAnchor] };
  }
  if (!x.mu) throw new Error(`${kind} objective: mu is required`);
  if ((cfg as UNetConfig).prediction === 'x0') {
    // 'x0' prediction: the same masked L1 (hole weight 10) on x̂0 = μ + r against the clean x0,
    // uniform over the levels (not in the official code)
    if (!x.clean) throw new Error(`${kind} objective: 'x0' prediction needs the clean x0`);
    const x0hat = ops.add(x.mu, unetHead(ctx, cfg as UNetConfig, x.state, x.mu, x.t, x.S));
    return { loss: matchingLoss(ops, x0hat, x.clean, x.mask), aux: [x0hat] };
  }
  if (!x.coefs) throw new Error(`${kind} objective: the step coefficients are required`);
  const eps = unetForward(ctx, cfg as UNetConfig, x.state, x.mu, x.t, x.S);
  const xhat = reverseMeanFromNoise(ops, x.state, x.mu, eps, x.coefs);
  return { loss: matchingLoss(ops, xhat, x.target, x.mask), aux: [eps, xhat] };
}
