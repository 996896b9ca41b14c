/**
 * Layers of the official networks as plain functions of (ctx, parameter prefix, input), written
 * against the operator interface so that both executors run the same code. Prefixes are the
 * official state_dict prefixes (e.g. `downs.0.2`), so a layer reads its weights by the same name
 * PyTorch saves them under.
 */
import type { NetContext, Ops } from './ops.js';

const SQRT1_2 = Math.fround(Math.SQRT1_2);

/** Integer-step sinusoidal embedding [B, dim] of the official code (`SinusoidalPosEmb` and DDPM's
 * `get_timestep_embedding` are the same formula): [sin(t f_k), cos(t f_k)], f_k = exp(-k ln(1e4)/(half-1)). */
export function timestepEmbedding<T>(ops: Ops<T>, t: T, dim: number): T {
  const half = dim >> 1;
  const step = Math.fround(Math.log(10000) / (half - 1));
  const freqs = new Float32Array(half);
  // float32 like torch: exp(arange(half) * -step) evaluated in float32
  for (let k = 0; k < half; k++) freqs[k] = Math.fround(Math.exp(Math.fround(k * -step)));
  const B = ops.shape(t)[0]!;
  const arg = ops.mul(ops.reshape(t, [B, 1]), ops.constant(freqs, [1, half]));
  return ops.concat([ops.sin(arg), ops.cos(arg)], 1);
}

export function gelu<T>(ops: Ops<T>, x: T): T {
  // exact (erf) GELU, as torch.nn.GELU() default
  return ops.mul(ops.mul(x, ops.scalar(0.5)), ops.add(ops.scalar(1), ops.erf(ops.mul(x, ops.scalar(SQRT1_2)))));
}

export function silu<T>(ops: Ops<T>, x: T): T {
  return ops.mul(x, ops.sigmoid(x));
}

export function conv<T>(ctx: NetContext<T>, prefix: string, x: T, pad: number, stride = 1): T {
  const { ops, p } = ctx;
  const b = p.has(`${prefix}.bias`) ? p.get(`${prefix}.bias`) : null;
  return ops.conv2d(x, p.get(`${prefix}.weight`), b, { stride, pad });
}

export function linear<T>(ctx: NetContext<T>, prefix: string, x: T): T {
  const { ops, p } = ctx;
  return ops.linear(x, p.get(`${prefix}.weight`), p.has(`${prefix}.bias`) ? p.get(`${prefix}.bias`) : null);
}

/** Per-pixel normalisation over channels (axis 1). `unbiased` divides the variance by C-1. */
export function channelNorm<T>(ops: Ops<T>, x: T, eps: number, unbiased: boolean): T {
  const C = ops.shape(x)[1]!;
  const mean = ops.reduceMean(x, [1], true);
  const d = ops.sub(x, mean);
  let v = ops.reduceMean(ops.mul(d, d), [1], true);
  if (unbiased) v = ops.mul(v, ops.scalar(C / (C - 1)));
  return ops.div(d, ops.sqrt(ops.add(v, ops.scalar(eps))));
}

/** Official `LayerNorm`: channel norm with biased variance, eps 1e-5, gain g [1,C,1,1], no bias. */
export function layerNorm<T>(ctx: NetContext<T>, prefix: string, x: T): T {
  return ctx.ops.mul(channelNorm(ctx.ops, x, 1e-5, false), ctx.p.get(`${prefix}.g`));
}

/** Official `LinearAttention(C)`: 4 heads x 32 channels, softmax kernel, O(N). */
export function linearAttention<T>(ctx: NetContext<T>, prefix: string, x: T): T {
  const { ops } = ctx;
  const [B, , H, W] = ops.shape(x) as [number, number, number, number];
  const heads = 4;
  const dh = 32;
  const N = H * W;
  // to_qkv's output channel c = (which*heads + h)*dh + d. Each of q, k, v is its own 1×1 conv with
  // a slice of the weight (the same products and sums as one conv): slicing the small weight rather
  // than the wide activation saves a copy of [B, 384, N] forward and its gradient's Concat backward.
  const wqkv = ctx.p.get(`${prefix}.to_qkv.weight`);
  const C = ops.shape(wqkv)[1]!;
  const part = (i: number) => {
    const w = ops.slice(wqkv, [i * heads * dh, 0, 0, 0], [heads * dh, C, 1, 1]);
    return ops.reshape(ops.conv2d(x, w, null, {}), [B * heads, dh, N]);
  };
  let q = ops.softmax(part(0), 1);
  let k = ops.softmax(part(1), 2);
  const v = ops.div(part(2), ops.scalar(N));
  q = ops.mul(q, ops.scalar(Math.fround(dh ** -0.5)));
  // ctx[d,e] = sum_n k[d,n] v[e,n]; out[e,n] = sum_d ctx[d,e] q[d,n]
  const context = ops.matmul(k, v, false, true);
  const out = ops.matmul(context, q, true, false);
  const merged = ops.reshape(out, [B, heads * dh, H, W]);
  const proj = conv(ctx, `${prefix}.to_out.0`, merged, 0);
  return layerNorm(ctx, `${prefix}.to_out.1`, proj);
}

/** `Residual(PreNorm(C, LinearAttention(C)))` at prefix `P`: keys P.fn.norm.g and P.fn.fn.*. */
export function attentionBlock<T>(ctx: NetContext<T>, prefix: string, x: T): T {
  return ctx.ops.add(x, linearAttention(ctx, `${prefix}.fn.fn`, layerNorm(ctx, `${prefix}.fn.norm`, x)));
}

/** Official `ResBlock`: time-modulated Block1, Block2, 1x1 residual conv when channels change. */
export function resBlock<T>(ctx: NetContext<T>, prefix: string, x: T, temb: T): T {
  const { ops, p } = ctx;
  const wOut = p.get(`${prefix}.block1.proj.weight`);
  const cout = ops.shape(wOut)[0]!;
  const B = ops.shape(x)[0]!;
  const ss = linear(ctx, `${prefix}.mlp.1`, silu(ops, temb));
  const scale = ops.reshape(ops.slice(ss, [0, 0], [B, cout]), [B, cout, 1, 1]);
  const shift = ops.reshape(ops.slice(ss, [0, cout], [B, cout]), [B, cout, 1, 1]);
  let h = ops.conv2d(x, wOut, null, { pad: 1 });
  h = ops.add(ops.mul(h, ops.add(scale, ops.scalar(1))), shift);
  h = silu(ops, h);
  h = silu(ops, ops.conv2d(h, p.get(`${prefix}.block2.proj.weight`), null, { pad: 1 }));
  const res = p.has(`${prefix}.res_conv.weight`) ? ops.conv2d(x, p.get(`${prefix}.res_conv.weight`), null, {}) : x;
  return ops.add(h, res);
}

/** PyTorch `interpolate(mode='nearest')` source indices: floor(dst * float32(in/out)), clamped. */
export function nearestIndices(inSize: number, outSize: number): number[] {
  const scale = Math.fround(inSize / outSize);
  const idx: number[] = [];
  for (let i = 0; i < outSize; i++) idx.push(Math.min(inSize - 1, Math.floor(Math.fround(i * scale))));
  return idx;
}

export function resizeNearest<T>(ops: Ops<T>, x: T, outH: number, outW: number): T {
  const [, , H, W] = ops.shape(x) as [number, number, number, number];
  let y = x;
  if (outH !== H) y = ops.gather(y, nearestIndices(H, outH), 2);
  if (outW !== W) y = ops.gather(y, nearestIndices(W, outW), 3);
  return y;
}

/** Reflect indices for padding `after` elements past the end of an axis of length n (torch 'reflect'). */
export function reflectIndices(n: number, after: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < n + after; i++) {
    let j = i;
    const period = 2 * (n - 1);
    if (period > 0) {
      j %= period;
      if (j >= n) j = period - j;
    } else j = 0;
    idx.push(j);
  }
  return idx;
}

/** Reflect-pad on the bottom/right to a multiple of `m` (official `check_image_size`). */
export function padToMultiple<T>(ops: Ops<T>, x: T, m: number): T {
  const [, , H, W] = ops.shape(x) as [number, number, number, number];
  const ph = (m - (H % m)) % m;
  const pw = (m - (W % m)) % m;
  let y = x;
  if (ph) y = ops.gather(y, reflectIndices(H, ph), 2);
  if (pw) y = ops.gather(y, reflectIndices(W, pw), 3);
  return y;
}

export function crop<T>(ops: Ops<T>, x: T, H: number, W: number): T {
  const s = ops.shape(x);
  if (s[2] === H && s[3] === W) return x;
  return ops.slice(x, [0, 0, 0, 0], [s[0]!, s[1]!, H, W]);
}
