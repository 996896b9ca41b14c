/**
 * The official time-conditional discriminator (Denoising-Diffusion-GAN's small D, docs/design.md §3.4):
 * D(t, y, S) scores whether texture y agrees with structure S at diffusion level t.
 * Output [B] (high = "correct texture at level t-1 for this structure", as trained).
 */
import type { NetContext, Ops } from './ops.js';
import type { DiscConfig } from './config.js';
import type { ParamSpec } from '../weights/types.js';
import { conv, linear, timestepEmbedding } from './layers.js';

const SQRT2 = Math.fround(Math.SQRT2);

/** StyleGAN2 `downsample_2d` with the (1,3,3,1) FIR kernel: depthwise 4x4, stride 2, zero pad 1. */
export function firDownsample<T>(ops: Ops<T>, x: T): T {
  const C = ops.shape(x)[1]!;
  const k = [1, 3, 3, 1];
  const K = new Float32Array(C * 16);
  for (let c = 0; c < C; c++) for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) K[c * 16 + a * 4 + b] = (k[a]! * k[b]!) / 64;
  return ops.conv2d(x, ops.constant(K, [C, 1, 4, 4]), null, { stride: 2, pad: 1, groups: C });
}

function downConvBlock<T>(ctx: NetContext<T>, prefix: string, x: T, temb: T, downsample: boolean): T {
  const { ops } = ctx;
  const lrelu = (v: T) => ops.leakyRelu(v, 0.2);
  let a = conv(ctx, `${prefix}.conv1.0`, lrelu(x), 1);
  const dt = linear(ctx, `${prefix}.dense_t1`, temb);
  const [B, C] = ops.shape(dt) as [number, number];
  a = lrelu(ops.add(a, ops.reshape(dt, [B, C, 1, 1])));
  let inp = x;
  if (downsample) {
    a = firDownsample(ops, a);
    inp = firDownsample(ops, inp);
  }
  a = conv(ctx, `${prefix}.conv2.0`, a, 1);
  const skip = conv(ctx, `${prefix}.skip.0`, inp, 0);
  return ops.div(ops.add(a, skip), ops.scalar(SQRT2));
}

/** StyleGAN2 minibatch standard deviation: one extra channel, groups of min(B, 4) samples. */
export function minibatchStddev<T>(ops: Ops<T>, h: T): T {
  const [B, C, H, W] = ops.shape(h) as [number, number, number, number];
  const G = Math.min(B, 4);
  if (B % G !== 0) throw new Error(`discriminator batch ${B} is not divisible by its stddev group ${G}`);
  const M = B / G;
  const v = ops.reshape(h, [G, M, C * H * W]);
  const mean = ops.reduceMean(v, [0], true);
  const d = ops.sub(v, mean);
  const variance = ops.reduceMean(ops.mul(d, d), [0], false); // [M, CHW], biased
  const sd = ops.reduceMean(ops.sqrt(ops.add(variance, ops.scalar(1e-8))), [1], true); // [M, 1]
  // sample b = g*M + m takes column m: tile the M values G times along the batch
  const col = ops.reshape(ops.concat(Array.from({ length: G }, () => sd), 0), [B, 1, 1, 1]);
  const ones = ops.constant(new Float32Array(H * W).fill(1), [1, 1, H, W]);
  return ops.concat([h, ops.mul(col, ones)], 1);
}

export function discriminatorForward<T>(ctx: NetContext<T>, cfg: DiscConfig, t: T, y: T, S: T): T {
  const { ops } = ctx;
  const lrelu = (v: T) => ops.leakyRelu(v, 0.2);
  const temb = ops.scope(() => {
    const e = timestepEmbedding(ops, t, cfg.tEmbDim);
    return lrelu(linear(ctx, 't_embed.main.2', lrelu(linear(ctx, 't_embed.main.0', e))));
  });
  let h = conv(ctx, 'start_conv', ops.concat([y, S], 1), 0);
  h = ops.scope(() => downConvBlock(ctx, 'conv1', h, temb, false));
  h = ops.scope(() => downConvBlock(ctx, 'conv2', h, temb, true));
  h = ops.scope(() => downConvBlock(ctx, 'conv3', h, temb, true));
  h = ops.scope(() => downConvBlock(ctx, 'conv4', h, temb, true));
  return ops.scope(() => {
    const f = lrelu(conv(ctx, 'final_conv', minibatchStddev(ops, h), 1));
    const pooled = ops.reduceSum(f, [2, 3], false); // spatial SUM, not mean
    const out = linear(ctx, 'end_linear', pooled);
    return ops.reshape(out, [ops.shape(out)[0]!]);
  });
}

export function discParamSpec(cfg: DiscConfig): ParamSpec {
  const s: ParamSpec = new Map();
  const e = cfg.tEmbDim;
  const g = cfg.ngf;
  s.set('t_embed.main.0.weight', [e, e]);
  s.set('t_embed.main.0.bias', [e]);
  s.set('t_embed.main.2.weight', [e, e]);
  s.set('t_embed.main.2.bias', [e]);
  s.set('start_conv.weight', [2 * g, cfg.nc, 1, 1]);
  s.set('start_conv.bias', [2 * g]);
  const blocks: [number, number][] = [[2 * g, 2 * g], [2 * g, 4 * g], [4 * g, 8 * g], [8 * g, 8 * g]];
  blocks.forEach(([i, o], k) => {
    const p = `conv${k + 1}`;
    s.set(`${p}.conv1.0.weight`, [o, i, 3, 3]);
    s.set(`${p}.conv1.0.bias`, [o]);
    s.set(`${p}.conv2.0.weight`, [o, o, 3, 3]);
    s.set(`${p}.conv2.0.bias`, [o]);
    s.set(`${p}.dense_t1.weight`, [o, e]);
    s.set(`${p}.dense_t1.bias`, [o]);
    s.set(`${p}.skip.0.weight`, [o, i, 1, 1]);
  });
  s.set('final_conv.weight', [8 * g, 8 * g + 1, 3, 3]);
  s.set('final_conv.bias', [8 * g]);
  s.set('end_linear.weight', [1, 8 * g]);
  s.set('end_linear.bias', [1]);
  return s;
}
