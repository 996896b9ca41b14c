/**
 * Analytic operation counts and random weights for the benchmarks. MACs are counted the way the
 * reference figures of docs/design.md §9 were (forward hooks on the official Conv2d/Linear modules plus the
 * two linear-attention contractions): the network code is traced on shapes only (the ONNX
 * symbolic ops, with a shape-only parameter store), and every dense conv, linear and matmul adds
 * its multiply-accumulates. Depthwise convs (the discriminator's FIR down-sampling, not a Conv2d
 * module in the official code) are counted apart.
 */
import type { Conv2dOptions, ParamStore } from '../src/nn/ops.js';
import type { NetConfig, NetKind } from '../src/exec/types.js';
import type { DiscConfig, UNetConfig } from '../src/nn/config.js';
import type { StateDict } from '../src/weights/types.js';
import { GraphBuilder, Sym } from '../src/exec/onnx/builder.js';
import { SymOps } from '../src/exec/onnx/tracer.js';
import { paramSpec } from '../src/nn/models.js';
import { unetForward } from '../src/nn/unet.js';
import { discriminatorForward } from '../src/nn/discriminator.js';
import { isSpectralBuffer } from '../src/nn/spade.js';
import { SeededNoise } from '../src/util/noise.js';

export interface OpCount {
  /** dense conv + linear MACs */
  convLinear: number;
  /** matmul MACs (the attention contractions) */
  matmul: number;
  /** depthwise conv MACs (FIR filter) */
  depthwise: number;
  /** 2 x (convLinear + matmul): the figure GFLOP/s is computed from */
  flop: number;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

class CountingOps extends SymOps {
  convLinear = 0;
  matmulMacs = 0;
  depthwise = 0;
  override conv2d(x: Sym, w: Sym, b: Sym | null, opts: Conv2dOptions = {}): Sym {
    const y = super.conv2d(x, w, b, opts);
    // per output element: (Cin / groups) * kh * kw multiply-adds
    const macs = prod(y.shape) * prod(w.shape.slice(1));
    if ((opts.groups ?? 1) > 1) this.depthwise += macs;
    else this.convLinear += macs;
    return y;
  }
  override linear(x: Sym, w: Sym, b: Sym | null): Sym {
    const y = super.linear(x, w, b);
    this.convLinear += prod(y.shape) * w.shape[1]!;
    return y;
  }
  override matmul(a: Sym, b: Sym, ta = false, tb = false): Sym {
    const y = super.matmul(a, b, ta, tb);
    const k = ta ? a.shape[a.shape.length - 2]! : a.shape[a.shape.length - 1]!;
    this.matmulMacs += prod(y.shape) * k;
    return y;
  }
}

/** Parameters as shapes only: enough to trace the network. */
class ShapeParams implements ParamStore<Sym> {
  constructor(private readonly spec: Map<string, number[]>) {}
  has(key: string): boolean {
    return this.spec.has(key);
  }
  get(key: string): Sym {
    const s = this.spec.get(key);
    if (!s) throw new Error(`no parameter ${key}`);
    return new Sym(key, s);
  }
  spectralWeight(prefix: string): Sym {
    return this.get(`${prefix}.weight_orig`);
  }
}

export function countOps(kind: NetKind, cfg: NetConfig, batch: number, H: number, W: number): OpCount {
  const g = new GraphBuilder();
  const ops = new CountingOps(g);
  const ctx = { ops, p: new ShapeParams(paramSpec(kind, cfg)) };
  const t = new Sym('t', [batch]);
  if (kind === 'discriminator') {
    const c = cfg as DiscConfig;
    discriminatorForward(ctx, c, t, new Sym('y', [batch, c.nc - 1, H, W]), new Sym('S', [batch, 1, H, W]));
  } else {
    const c = cfg as UNetConfig;
    const x = new Sym('x', [batch, c.inNc, H, W]);
    unetForward(ctx, c, x, x, t, c.spade ? new Sym('S', [batch, 1, H, W]) : undefined);
  }
  return { convLinear: ops.convLinear, matmul: ops.matmulMacs, depthwise: ops.depthwise, flop: 2 * (ops.convLinear + ops.matmulMacs) };
}

/**
 * Random weights for timing: U(-b, b) with b = sqrt(3 / fan_in) (unit-variance activations, so
 * nothing overflows in a deep net), LayerNorm gains 1, spectral u, v random unit vectors.
 */
export function randomWeights(kind: NetKind, cfg: NetConfig, seed = 1): StateDict {
  const rng = new SeededNoise(seed);
  // one pool of U(-1, 1) values read from a random offset per tensor: drawing all 163 M values of
  // the texture net one by one takes ~9 s per process, and timings do not depend on the values
  const POOL = 1 << 20;
  const pool = new Float32Array(2 * POOL);
  for (let i = 0; i < POOL; i++) pool[i] = (rng.nextU32() >>> 8) / 16777216 * 2 - 1;
  pool.copyWithin(POOL, 0, POOL);
  const sd: StateDict = new Map();
  const spec = paramSpec(kind, cfg);
  for (const [key, shape] of spec) {
    const n = prod(shape);
    const data = new Float32Array(n);
    if (key.endsWith('.g')) data.fill(1);
    else {
      let fanIn = shape.length >= 2 ? prod(shape.slice(1)) : n;
      if (key.endsWith('.bias')) {
        const w = spec.get(key.replace(/\.bias$/, '.weight')) ?? spec.get(key.replace(/\.bias$/, '.weight_orig'));
        if (w) fanIn = prod(w.slice(1));
      }
      const b = isSpectralBuffer(key) ? 1 : Math.sqrt(3 / fanIn);
      for (let i = 0; i < n; i += POOL) {
        const m = Math.min(POOL, n - i);
        const off = rng.nextU32() % POOL;
        for (let j = 0; j < m; j++) data[i + j] = pool[off + j]! * b;
      }
      if (isSpectralBuffer(key)) {
        let s = 0;
        for (const v of data) s += v * v;
        const d = Math.sqrt(s) || 1;
        for (let i = 0; i < n; i++) data[i] = data[i]! / d;
      }
    }
    sd.set(key, { shape: [...shape], data });
  }
  return sd;
}

export function paramCount(sd: StateDict): number {
  let n = 0;
  for (const [k, v] of sd) if (!isSpectralBuffer(k)) n += v.data.length;
  return n;
}
