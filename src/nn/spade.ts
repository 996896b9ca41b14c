/**
 * The texture network's structure guidance (docs/design.md §3.3): a pix2pixHD/SPADE residual block with
 * spectral-normalised 3x3 convs, whose two SPADE layers turn the 1-channel structure S into
 * per-pixel gamma/beta after a parameter-free positional (per-pixel, over channels) norm.
 */
import type { NetContext } from './ops.js';
import type { ParamSpec } from '../weights/types.js';
import { channelNorm, conv, resizeNearest } from './layers.js';

function spade<T>(ctx: NetContext<T>, prefix: string, x: T, S: T): T {
  const { ops } = ctx;
  const [, , H, W] = ops.shape(x) as [number, number, number, number];
  // PositionalNorm2d uses the UNBIASED variance (unlike the U-Net's LayerNorm)
  const normed = channelNorm(ops, x, 1e-5, true);
  const seg = resizeNearest(ops, S, H, W);
  const a = ops.relu(conv(ctx, `${prefix}.mlp_shared.0`, seg, 1));
  const gamma = conv(ctx, `${prefix}.mlp_gamma`, a, 1);
  const beta = conv(ctx, `${prefix}.mlp_beta`, a, 1);
  return ops.add(ops.mul(normed, ops.add(gamma, ops.scalar(1))), beta);
}

function snConv<T>(ctx: NetContext<T>, prefix: string, x: T): T {
  return ctx.ops.conv2d(x, ctx.p.spectralWeight(prefix), ctx.p.get(`${prefix}.bias`), { pad: 1 });
}

export function spadeBlock<T>(ctx: NetContext<T>, prefix: string, x: T, S: T): T {
  const { ops } = ctx;
  let dx = snConv(ctx, `${prefix}.conv_0`, ops.leakyRelu(spade(ctx, `${prefix}.norm_0`, x, S), 0.2));
  dx = snConv(ctx, `${prefix}.conv_1`, ops.leakyRelu(spade(ctx, `${prefix}.norm_1`, dx, S), 0.2));
  return ops.add(x, dx);
}

export function spadeBlockSpec(prefix: string, C: number): ParamSpec {
  const s: ParamSpec = new Map();
  for (const c of ['conv_0', 'conv_1']) {
    s.set(`${prefix}.${c}.bias`, [C]);
    s.set(`${prefix}.${c}.weight_orig`, [C, C, 3, 3]);
    s.set(`${prefix}.${c}.weight_u`, [C]);
    s.set(`${prefix}.${c}.weight_v`, [C * 9]);
  }
  for (const n of ['norm_0', 'norm_1']) {
    s.set(`${prefix}.${n}.mlp_shared.0.weight`, [16, 1, 3, 3]);
    s.set(`${prefix}.${n}.mlp_shared.0.bias`, [16]);
    s.set(`${prefix}.${n}.mlp_gamma.weight`, [C, 16, 3, 3]);
    s.set(`${prefix}.${n}.mlp_gamma.bias`, [C]);
    s.set(`${prefix}.${n}.mlp_beta.weight`, [C, 16, 3, 3]);
    s.set(`${prefix}.${n}.mlp_beta.bias`, [C]);
  }
  return s;
}

/** Keys of the spectral-norm buffers (u, v): state, not trained parameters. */
export function isSpectralBuffer(key: string): boolean {
  return key.endsWith('.weight_u') || key.endsWith('.weight_v');
}
