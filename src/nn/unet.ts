/**
 * The official `ConditionalUNet` of IR-SDE as used by StrDiffusion (docs/design.md §3.1–3.3): the structure
 * network (1 channel, no guidance) and the texture network (3 channels, one SPADE block after each
 * down level, guided by the structure S).
 */
import type { NetContext } from './ops.js';
import type { UNetConfig } from './config.js';
import type { ParamSpec } from '../weights/types.js';
import {
  attentionBlock, conv, crop, gelu, linear, padToMultiple, resBlock, timestepEmbedding,
} from './layers.js';
import { spadeBlock, spadeBlockSpec } from './spade.js';

export function levelDims(cfg: UNetConfig, i: number): { dIn: number; dOut: number } {
  return { dIn: cfg.nf * 2 ** i, dOut: cfg.nf * 2 ** (i + 1) };
}

/**
 * Forward pass. x [B,inNc,H,W] is the state, mu the SDE mean (same shape), t [B] the integer step
 * as float, S [B,1,H,W] the structure guide (texture network only). Returns the predicted noise
 * [B,outNc,H,W].
 */
export function unetForward<T>(ctx: NetContext<T>, cfg: UNetConfig, x: T, mu: T, t: T, S?: T): T {
  const out = unetHead(ctx, cfg, x, mu, t, S);
  return cfg.prediction === 'x0' ? epsFromResidual(ctx, cfg, out, x, mu, t) : out;
}

/**
 * 'x0' prediction: ε̂ = (x − μ − r·e_t)/σ̄_t for the residual r = x̂0 − μ, per sample's level
 * (the inverse of x̂0 = μ + (x − μ − σ̄_t ε̂)/e_t, which is what samplers compute from ε̂).
 */
export function epsFromResidual<T>(ctx: NetContext<T>, cfg: UNetConfig, r: T, x: T, mu: T, t: T): T {
  const { ops } = ctx;
  const tables = cfg.levelTables;
  if (!tables) throw new Error("U-Net with prediction 'x0' needs the SDE's level tables (withLevelTables)");
  const B = ops.shape(t)[0]!;
  const e = ops.reshape(ops.lookup(tables.meanFactor, t), [B, 1, 1, 1]);
  const s = ops.reshape(ops.lookup(tables.sigmaBar, t), [B, 1, 1, 1]);
  return ops.div(ops.sub(ops.sub(x, mu), ops.mul(r, e)), s);
}

/** The network's last conv: ε̂ (official) or, for 'x0' prediction, the residual r = x̂0 − μ. */
export function unetHead<T>(ctx: NetContext<T>, cfg: UNetConfig, x: T, mu: T, t: T, S?: T): T {
  const { ops } = ctx;
  if (cfg.spade && !S) throw new Error('the texture network needs a structure guide S');
  const [, , H, W] = ops.shape(x) as [number, number, number, number];
  let h = ops.concat([ops.sub(x, mu), mu], 1);
  h = padToMultiple(ops, h, 2 ** cfg.depth);
  h = conv(ctx, 'init_conv', h, 3);
  const x0 = h;
  const temb = ops.scope(() => {
    const e = timestepEmbedding(ops, t, cfg.nf);
    return linear(ctx, 'time_mlp.3', gelu(ops, linear(ctx, 'time_mlp.1', e)));
  });
  const skips: T[] = [];
  for (let i = 0; i < cfg.depth; i++) {
    const p = `downs.${i}`;
    const a = ops.scope(() => resBlock(ctx, `${p}.0`, h, temb));
    skips.push(a);
    const b = ops.scope(() => attentionBlock(ctx, `${p}.2`, resBlock(ctx, `${p}.1`, a, temb)));
    skips.push(b);
    h = ops.scope(() => {
      // the last level keeps its resolution (a plain 3x3 conv instead of the strided one)
      let y = i < cfg.depth - 1 ? conv(ctx, `${p}.3`, b, 1, 2) : conv(ctx, `${p}.3`, b, 1);
      if (cfg.spade) y = spadeBlock(ctx, `${p}.4`, y, S!);
      return y;
    });
  }
  h = ops.scope(() => resBlock(ctx, 'mid_block1', h, temb));
  h = ops.scope(() => attentionBlock(ctx, 'mid_attn', h));
  h = ops.scope(() => resBlock(ctx, 'mid_block2', h, temb));
  for (let u = 0; u < cfg.depth; u++) {
    const p = `ups.${u}`;
    const sb = skips.pop()!;
    const sa = skips.pop()!;
    h = ops.scope(() => {
      let y = resBlock(ctx, `${p}.0`, ops.concat([h, sb], 1), temb);
      y = resBlock(ctx, `${p}.1`, ops.concat([y, sa], 1), temb);
      return attentionBlock(ctx, `${p}.2`, y);
    });
    h = ops.scope(() => {
      if (u < cfg.depth - 1) {
        const [, , hh, ww] = ops.shape(h) as [number, number, number, number];
        // nn.Upsample(scale_factor=2, nearest): every pixel twice along each axis
        const up = ops.gather(ops.gather(h, twice(hh), 2), twice(ww), 3);
        return conv(ctx, `${p}.3.1`, up, 1);
      }
      return conv(ctx, `${p}.3`, h, 1);
    });
  }
  h = ops.scope(() => {
    const y = resBlock(ctx, 'final_res_block', ops.concat([h, x0], 1), temb);
    return conv(ctx, 'final_conv', y, 1);
  });
  return crop(ops, h, H, W);
}

function twice(n: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < 2 * n; i++) idx.push(i >> 1);
  return idx;
}

/** state_dict keys and shapes of the network, in PyTorch registration order (docs/design.md §3.5). */
export function unetParamSpec(cfg: UNetConfig): ParamSpec {
  const s: ParamSpec = new Map();
  const nf = cfg.nf;
  const tdim = nf * 4;
  const res = (p: string, i: number, o: number) => {
    s.set(`${p}.mlp.1.weight`, [2 * o, tdim]);
    s.set(`${p}.mlp.1.bias`, [2 * o]);
    s.set(`${p}.block1.proj.weight`, [o, i, 3, 3]);
    s.set(`${p}.block2.proj.weight`, [o, o, 3, 3]);
    if (i !== o) s.set(`${p}.res_conv.weight`, [o, i, 1, 1]);
  };
  const attn = (p: string, c: number) => {
    s.set(`${p}.fn.fn.to_qkv.weight`, [384, c, 1, 1]);
    s.set(`${p}.fn.fn.to_out.0.weight`, [c, 128, 1, 1]);
    s.set(`${p}.fn.fn.to_out.0.bias`, [c]);
    s.set(`${p}.fn.fn.to_out.1.g`, [1, c, 1, 1]);
    s.set(`${p}.fn.norm.g`, [1, c, 1, 1]);
  };
  s.set('init_conv.weight', [nf, 2 * cfg.inNc, 7, 7]);
  s.set('time_mlp.1.weight', [tdim, nf]);
  s.set('time_mlp.1.bias', [tdim]);
  s.set('time_mlp.3.weight', [tdim, tdim]);
  s.set('time_mlp.3.bias', [tdim]);
  for (let i = 0; i < cfg.depth; i++) {
    const { dIn, dOut } = levelDims(cfg, i);
    const p = `downs.${i}`;
    res(`${p}.0`, dIn, dIn);
    res(`${p}.1`, dIn, dIn);
    attn(`${p}.2`, dIn);
    if (i < cfg.depth - 1) {
      s.set(`${p}.3.weight`, [dOut, dIn, 4, 4]);
      s.set(`${p}.3.bias`, [dOut]);
    } else s.set(`${p}.3.weight`, [dOut, dIn, 3, 3]);
    if (cfg.spade) for (const [k, v] of spadeBlockSpec(`${p}.4`, dOut)) s.set(k, v);
  }
  for (let u = 0; u < cfg.depth; u++) {
    const i = cfg.depth - 1 - u;
    const { dIn, dOut } = levelDims(cfg, i);
    const p = `ups.${u}`;
    res(`${p}.0`, dOut + dIn, dOut);
    res(`${p}.1`, dOut + dIn, dOut);
    attn(`${p}.2`, dOut);
    if (i > 0) {
      s.set(`${p}.3.1.weight`, [dIn, dOut, 3, 3]);
      s.set(`${p}.3.1.bias`, [dIn]);
    } else s.set(`${p}.3.weight`, [dIn, dOut, 3, 3]);
  }
  const mid = nf * 2 ** cfg.depth;
  res('mid_block1', mid, mid);
  attn('mid_attn', mid);
  res('mid_block2', mid, mid);
  res('final_res_block', 2 * nf, nf);
  s.set('final_conv.weight', [cfg.outNc, nf, 3, 3]);
  s.set('final_conv.bias', [cfg.outNc]);
  return s;
}
