/**
 * The official training losses on tfjs tensors (differentiable), each in the float32 operation
 * order of the PyTorch code so that the loss and its gradients match the reference.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * `MatchingLoss('l1')` (spec §1.7): mean over B·C·H·W of |p·m − g·m| + 10·|p·(1−m) − g·(1−m)|.
 * mask [B,1,H,W] broadcasts over channels; the target is a constant (it carries no gradient).
 */
export function matchingLossTf(pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  const om = tf.sub(1, mask);
  const lossm = tf.abs(tf.sub(tf.mul(pred, om), tf.mul(target, om)));
  const lossu = tf.abs(tf.sub(tf.mul(pred, mask), tf.mul(target, mask)));
  return tf.mean(tf.add(lossu, tf.mul(lossm, 10))) as tf.Scalar;
}

/**
 * `torch.nn.TripletMarginLoss()` defaults (margin 1, p 2, eps 1e-6, mean) on [B,1] inputs:
 * the distance ||a − x + eps||₂ over the last axis of size 1 is |a − x + eps|.
 */
export function tripletMarginLossTf(anchor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor, margin = 1, eps = 1e-6): tf.Scalar {
  const dist = (x: tf.Tensor) => tf.sqrt(tf.sum(tf.square(tf.add(tf.sub(anchor, x), eps)), -1));
  // |·| rather than sqrt(sum(square)) when the last axis is 1: same value, and its gradient is
  // PyTorch's norm gradient x/|x| without the 0·∞ of sqrt at a zero distance
  const d = anchor.shape[anchor.rank - 1] === 1
    ? (x: tf.Tensor) => tf.abs(tf.reshape(tf.add(tf.sub(anchor, x), eps), anchor.shape.slice(0, -1)))
    : dist;
  return tf.mean(tf.relu(tf.sub(tf.add(d(positive), margin), d(negative)))) as tf.Scalar;
}

/**
 * The discriminator objective (spec §4.4): non-saturating logistic GAN terms plus the triplet
 * term, `softplus(−D_real).mean() + softplus(D_fake).mean() + triplet(D_anchor, D_real, D_fake)`.
 * Scores are [B] or [B,1]; the triplet works on [B,1] as the official training code does.
 */
export function discriminatorLossTf(dReal: tf.Tensor, dFake: tf.Tensor, dAnchor: tf.Tensor): tf.Scalar {
  const col = (x: tf.Tensor) => tf.reshape(x, [x.shape[0]!, 1]);
  const real = tf.mean(tf.softplus(tf.neg(tf.reshape(dReal, [-1]))));
  const fake = tf.mean(tf.softplus(tf.reshape(dFake, [-1])));
  const tri = tripletMarginLossTf(col(dAnchor), col(dReal), col(dFake));
  return tf.add(tf.add(real, fake), tri) as tf.Scalar;
}

/**
 * `reverse_sde_step_mean(x, score, t)` with `score = −ε̂/σ̄_t`, per-sample coefficients [B,1,1,1]:
 * x − (θ_t(μ − x) − σ_t²·score)·dt, in the official operation order.
 */
export function reverseMeanFromNoiseTf(
  x: tf.Tensor, mu: tf.Tensor, eps: tf.Tensor,
  coefs: { theta: Float32Array; sigma2: Float32Array; sigmaBar: Float32Array; dt: number },
): tf.Tensor {
  const B = x.shape[0]!;
  const col = (a: Float32Array) => tf.tensor(a, [B, 1, 1, 1], 'float32');
  const score = tf.div(tf.neg(eps), col(coefs.sigmaBar));
  const drift = tf.mul(tf.sub(tf.mul(col(coefs.theta), tf.sub(mu, x)), tf.mul(col(coefs.sigma2), score)), coefs.dt);
  return tf.sub(x, drift);
}
