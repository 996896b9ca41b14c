/**
 * Reverse-mode differentiation of recorded ONNX graphs (src/exec/onnx/autodiff.ts): every rule
 * and special path against central finite differences. Each case builds a small graph with
 * SymOps on graph inputs, loss = Σ_k Σ y_k·R_k (R_k fixed random, so every output element
 * matters), appends the gradients and runs once in onnxruntime-node; the numeric derivative
 * re-runs the same session with one input element at x ± h and takes Σ (y⁺ − y⁻)·R / (x⁺ − x⁻)
 * in float64 on the host (x± rounded to float32 first, so linear ops are exact up to rounding).
 */
import { describe, it, expect } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder, Sym } from '../src/exec/onnx/builder.js';
import { SymOps } from '../src/exec/onnx/tracer.js';
import { appendGradients, weightGradLayout } from '../src/exec/onnx/autodiff.js';

// ---------------------------------------------------------------- helpers

type Gen = 'sym' | 'pos' | 'away';
interface In {
  shape: number[];
  /** sym: U(-1,1); pos: U(0.5,2); away: ±U(0.2,1.5) (clear of kinks at 0) */
  gen?: Gen;
  data?: number[];
  /** a constant of the graph, not an input */
  fixed?: boolean;
}
interface Case {
  inputs: Record<string, In>;
  build: (ops: SymOps, x: Record<string, Sym>, g: GraphBuilder) => Sym | Sym[];
  /** default: every non-fixed input */
  wrt?: string[];
  /** finite-difference step: 0.5 for ops linear in each input (exact), small for the others */
  h?: number;
  /** relative tolerance (of max |numeric|; default 2e-5 for h = 0.5, 1e-3 otherwise); absolute 1e-5 on top */
  tol?: number;
  /** op types the backward graph must / must not contain (which special path is taken) */
  has?: string[];
  not?: string[];
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const seedOf = (s: string) => [...s].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619), 2166136261);

function fill(spec: In, r: () => number): Float32Array {
  if (spec.data) return Float32Array.from(spec.data);
  return Float32Array.from({ length: numel(spec.shape) }, () => {
    const u = r();
    if (spec.gen === 'pos') return 0.5 + 1.5 * u;
    if (spec.gen === 'away') return (r() < 0.5 ? -1 : 1) * (0.2 + 1.3 * u);
    return 2 * u - 1;
  });
}

/** Build the case's graph with loss and gradients and run it once. */
async function build(name: string, c: Case) {
  const r = rng(seedOf(name));
  const g = new GraphBuilder();
  const ops = new SymOps(g);
  const data: Record<string, Float32Array> = {};
  const syms: Record<string, Sym> = {};
  for (const [k, spec] of Object.entries(c.inputs)) {
    data[k] = fill(spec, r);
    syms[k] = spec.fixed ? ops.constant(data[k]!, spec.shape) : g.input(k, spec.shape);
  }
  const ys = [c.build(ops, syms, g)].flat();
  const Rs = ys.map((y) => Float32Array.from({ length: numel(y.shape) }, () => 2 * r() - 1));
  let loss: Sym | undefined;
  ys.forEach((y, i) => {
    const t = ops.reduceSum(ops.mul(y, ops.constant(Rs[i]!, [...y.shape])), [...y.shape.keys()], false);
    loss = loss ? ops.add(loss, t) : t;
  });
  const wrt = c.wrt ?? Object.keys(c.inputs).filter((k) => !c.inputs[k]!.fixed);
  const n0 = g.nodes.length;
  const res = appendGradients(g, loss!, wrt);
  const bwdOps = new Set(g.nodes.slice(n0).map((n) => n.opType!));
  g.output(loss!, 'loss');
  ys.forEach((y, i) => g.output(y, `y${i}`));
  for (const [k, s] of res.grads) g.output(s, `grad:${k}`);
  const sess = await ort.InferenceSession.create(g.toBytes(), { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
  const run = async () => {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, spec] of Object.entries(c.inputs)) if (!spec.fixed) feeds[k] = new ort.Tensor('float32', data[k]!, spec.shape);
    const o = await sess.run(feeds);
    return Object.fromEntries(Object.entries(o).map(([k, t]) => [k, t.data as Float32Array]));
  };
  const base = await run();
  // the loss the graph computes is the one the host differentiates
  let host = 0;
  ys.forEach((_, i) => base[`y${i}`]!.forEach((v, j) => (host += v * Rs[i]![j]!)));
  expect(Math.abs(base.loss![0]! - host)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(host)) * Math.sqrt(ys.length));
  return { g, res, bwdOps, data, Rs, ys, wrt, run, base, r };
}

/** Analytic gradients of every wrt input against central differences (≤ 40 elements each). */
async function gradCheck(name: string, c: Case): Promise<void> {
  const { res, bwdOps, data, Rs, ys, wrt, run, base, r } = await build(name, c);
  for (const op of c.has ?? []) expect(bwdOps, `backward graph should contain ${op}`).toContain(op);
  for (const op of c.not ?? []) expect(bwdOps, `backward graph should not contain ${op}`).not.toContain(op);
  expect(res.unused).toEqual([]);
  const h = c.h ?? 0.5;
  const tol = c.tol ?? (h >= 0.5 ? 2e-5 : 1e-3);
  const bad: string[] = [];
  for (const k of wrt) {
    const x = data[k]!;
    const ana = base[`grad:${k}`]!;
    expect(ana.length).toBe(x.length);
    let idx = [...x.keys()];
    while (idx.length > 40) idx.splice(Math.floor(r() * idx.length), 1);
    const num: number[] = [];
    for (const i of idx) {
      const x0 = x[i]!;
      const xp = (x[i] = Math.fround(x0 + h));
      const p = await run();
      const xm = (x[i] = Math.fround(x0 - h));
      const m = await run();
      x[i] = x0;
      let d = 0;
      ys.forEach((_, j) => p[`y${j}`]!.forEach((v, e) => (d += (v - m[`y${j}`]![e]!) * Rs[j]![e]!)));
      num.push(d / (xp - xm));
    }
    const scale = Math.max(...num.map(Math.abs));
    idx.forEach((i, j) => {
      const err = Math.abs(ana[i]! - num[j]!);
      if (!(err <= tol * scale + 1e-5)) bad.push(`${k}[${i}]: analytic ${ana[i]} numeric ${num[j]} (max |numeric| ${scale.toPrecision(3)})`);
    });
  }
  expect(bad).toEqual([]);
}

const T = (name: string, c: Case) => it(name, () => gradCheck(name, c));

// ---------------------------------------------------------------- cases

const X4 = [2, 3, 5, 7];
const NL = 1e-2; // step for smooth nonlinear ops

describe('autodiff: elementwise and broadcasting', () => {
  T('Identity', { inputs: { x: { shape: [2, 5] } }, build: (_, { x }, g) => g.node('Identity', [x!.name], [2, 5]) });
  T('Neg', { inputs: { x: { shape: [2, 5] } }, build: (_, { x }, g) => g.node('Neg', [x!.name], [2, 5]) });
  for (const op of ['add', 'sub', 'mul', 'div'] as const) {
    const b = op === 'div' ? { gen: 'away' as Gen } : {};
    const h = op === 'div' ? 1e-3 : 0.5; // 1/b: truncation ~ (h/b)², b ≥ 0.2
    T(`${op}: same shape`, { inputs: { a: { shape: [2, 5] }, b: { shape: [2, 5], ...b } }, h, build: (o, { a, b }) => o[op](a!, b!) });
    T(`${op}: [B,C,H,W] with [1,C,1,1]`, { inputs: { a: { shape: X4 }, b: { shape: [1, 3, 1, 1], ...b } }, h, build: (o, { a, b }) => o[op](a!, b!) });
    T(`${op}: [1,C,1,1] with [B,C,H,W]`, { inputs: { a: { shape: [1, 3, 1, 1] }, b: { shape: X4, ...b } }, h, build: (o, { a, b }) => o[op](a!, b!) });
    T(`${op}: scalar with tensor, tensor with scalar`, {
      inputs: { s: { shape: [], ...b }, t: { shape: [2, 5], ...b } }, h,
      build: (o, { s, t }) => [o[op](s!, t!), o[op](t!, s!)],
    });
    T(`${op}: both operands broadcast ([2,1,7] with [5,1])`, { inputs: { a: { shape: [2, 1, 7] }, b: { shape: [5, 1], ...b } }, h, build: (o, { a, b }) => o[op](a!, b!) });
  }
  T('mul of a value by itself (x·x, two contributions)', { inputs: { x: { shape: [2, 5] } }, build: (o, { x }) => o.mul(x!, x!) });
  T('div of a value by itself plus a chain (x / (x·x + 1))', {
    inputs: { x: { shape: [2, 5] } }, h: NL,
    build: (o, { x }) => o.div(x!, o.add(o.mul(x!, x!), o.scalar(1))),
  });

  const un = (f: (o: SymOps, x: Sym) => Sym, gen: Gen = 'sym', h = NL): Case => ({ inputs: { x: { shape: [2, 5, 7], gen } }, h, build: (o, { x }) => f(o, x!) });
  T('Sqrt', un((o, x) => o.sqrt(x), 'pos'));
  T('Abs', un((o, x) => o.abs(x), 'away'));
  T('Exp', un((o, x) => o.exp(x)));
  T('Sin', un((o, x) => o.sin(o.mul(x, o.scalar(3)))));
  T('Cos', un((o, x) => o.cos(o.mul(x, o.scalar(3)))));
  T('Erf', un((o, x) => o.erf(x)));
  T('Sigmoid', un((o, x) => o.sigmoid(o.mul(x, o.scalar(3)))));
  T('Softplus', un((o, x) => o.softplus(o.mul(x, o.scalar(3)))));
  T('Relu', un((o, x) => o.relu(x), 'away'));
  T('LeakyRelu (alpha 0.2)', un((o, x) => o.leakyRelu(x, 0.2), 'away'));

  it('kinks follow PyTorch: |x|\'(0) = 0, relu\'(0) = 0, leaky_relu\'(0) = slope', async () => {
    const xs = [-1, 0, 0.5, 0, -0.25, 2];
    const c: Case = {
      inputs: { a: { shape: [6], data: xs }, r: { shape: [6], data: xs }, l: { shape: [6], data: xs } },
      build: (o, { a, r, l }) => [o.abs(a!), o.relu(r!), o.leakyRelu(l!, 0.2)],
    };
    const { base, Rs } = await build('kinks', c);
    const f32 = (v: number) => Math.fround(v) + 0; // +0: -0 → 0
    const slope = Math.fround(0.2);
    const got = (k: string) => Array.from(base[`grad:${k}`]!, (v) => v + 0);
    expect(got('a')).toEqual(xs.map((v, i) => f32(Rs[0]![i]! * Math.sign(v))));
    expect(got('r')).toEqual(xs.map((v, i) => (v > 0 ? f32(Rs[1]![i]!) : 0)));
    expect(got('l')).toEqual(xs.map((v, i) => (v > 0 ? f32(Rs[2]![i]!) : f32(Rs[2]![i]! * slope))));
  });
});

describe('autodiff: reductions, softmax, shape ops', () => {
  for (const op of ['reduceMean', 'reduceSum'] as const) {
    T(`${op} axes [1,3] keepDims`, { inputs: { x: { shape: X4 } }, build: (o, { x }) => o[op](x!, [1, 3], true) });
    T(`${op} axes [0,2] no keepDims`, { inputs: { x: { shape: X4 } }, build: (o, { x }) => o[op](x!, [0, 2], false) });
    T(`${op} axis -1 no keepDims`, { inputs: { x: { shape: [2, 5, 7] } }, build: (o, { x }) => o[op](x!, [-1], false) });
    T(`${op} all axes to a scalar`, { inputs: { x: { shape: [2, 5, 7] } }, build: (o, { x }) => o[op](x!, [0, 1, 2], false) });
  }
  T('Softmax on a middle axis', { inputs: { x: { shape: [2, 5, 7] } }, h: 1e-3, build: (o, { x }) => o.softmax(o.mul(x!, o.scalar(2)), 1) });
  T('Softmax on the last axis', { inputs: { x: { shape: [2, 5, 7] } }, h: 1e-3, build: (o, { x }) => o.softmax(o.mul(x!, o.scalar(2)), -1) });
  T('Softmax with a negative axis attribute', {
    inputs: { x: { shape: [2, 5, 7] } }, h: 1e-3,
    build: (_, { x }, g) => g.node('Softmax', [x!.name], [2, 5, 7], { axis: -1 }),
  });
  T('Reshape', { inputs: { x: { shape: X4 } }, build: (o, { x }) => o.mul(o.reshape(x!, [6, -1]), o.reshape(x!, [6, 35])) });
  T('Transpose (perm not its own inverse)', { inputs: { x: { shape: X4 } }, build: (o, { x }) => o.transpose(x!, [0, 2, 3, 1]) });
  T('Concat of 3 inputs, one used twice', {
    inputs: { a: { shape: [2, 2, 5] }, b: { shape: [2, 3, 5] }, c: { shape: [2, 1, 5] } },
    build: (o, { a, b, c }) => o.concat([a!, b!, a!, c!], 1),
  });
  T('Slice: slices tiling an axis → one Concat', {
    inputs: { x: { shape: [2, 7, 5] } }, has: ['Concat'], not: ['Pad'],
    build: (o, { x }) => [o.slice(x!, [0, 5, 0], [-1, 2, -1]), o.slice(x!, [0, 0, 0], [-1, 2, -1]), o.slice(x!, [0, 2, 0], [-1, 3, -1])],
  });
  T('Slice: slices with gaps plus a plain use → Concat with zeros, Sum', {
    inputs: { x: { shape: [2, 7, 5] } }, has: ['Concat', 'ConstantOfShape', 'Sum'], not: ['Pad'],
    build: (o, { x }) => [o.slice(x!, [0, 1, 0], [-1, 2, -1]), o.slice(x!, [0, 4, 0], [-1, 2, -1]), x!],
  });
  T('Slice: overlapping slices → Pad', {
    inputs: { x: { shape: [2, 7, 5] } }, has: ['Pad'],
    build: (o, { x }) => [o.slice(x!, [0, 0, 0], [-1, 4, -1]), o.slice(x!, [0, 2, 0], [-1, 5, -1]), o.slice(x!, [0, 2, 0], [-1, 5, -1])],
  });
  T('Slice: one slice on two axes, slices on different axes → Pad', {
    inputs: { x: { shape: [2, 7, 5] } }, has: ['Pad'], not: ['Concat'],
    build: (o, { x }) => [o.slice(x!, [0, 1, 2], [-1, 3, 3]), o.slice(x!, [1, 0, 0], [1, -1, -1])],
  });
  const up2 = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4];
  T('Gather: 2× nearest upsampling → Reshape + ReduceSum', {
    inputs: { x: { shape: [2, 3, 5, 5] } }, not: ['ScatterND'],
    build: (o, { x }) => o.gather(o.gather(x!, up2, 2), up2, 3),
  });
  T('Gather: 3× nearest upsampling on the last axis', { inputs: { x: { shape: [2, 3, 5] } }, not: ['ScatterND'], build: (o, { x }) => o.gather(x!, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4], 2) });
  T('Gather: reflect-pad indices → ScatterND(add)', {
    inputs: { x: { shape: [2, 3, 5, 7] } }, has: ['ScatterND'],
    build: (o, { x }) => o.gather(x!, [2, 1, 0, 1, 2, 3, 4, 3, 2], 2),
  });
  T('Gather: repeated arbitrary indices on axis 0 and the last axis', {
    inputs: { x: { shape: [3, 5, 7] } }, has: ['ScatterND'],
    build: (o, { x }) => [o.gather(x!, [2, 0, 2, 2], 0), o.gather(x!, [6, 0, 6, 3, 3, 1], 2)],
  });
});

describe('autodiff: Conv', () => {
  const conv = (x: number[], w: number[], opts: Parameters<SymOps['conv2d']>[3], bias = false, extra: Partial<Case> = {}): Case => ({
    inputs: { x: { shape: x }, w: { shape: w }, ...(bias ? { b: { shape: [w[0]!] } } : {}) },
    build: (o, { x, w, b }) => o.conv2d(x!, w!, b ?? null, opts),
    ...extra,
  });
  T('1×1 (pointwise MatMul path)', conv([2, 3, 5, 7], [4, 3, 1, 1], {}, false, { not: ['ConvTranspose'] }));
  T('1×1 with bias', conv([2, 3, 5, 7], [4, 3, 1, 1], {}, true));
  T('1×1 stride 2 (ConvTranspose, output_padding 1)', conv([2, 3, 6, 7], [4, 3, 1, 1], { stride: 2 }, false, { has: ['ConvTranspose'] }));
  T('3×3 pad 1 with bias', conv([2, 3, 5, 7], [4, 3, 3, 3], { pad: 1 }, true, { has: ['ConvTranspose'] }));
  T('3×3 no padding', conv([2, 3, 5, 7], [2, 3, 3, 3], {}));
  // the weight gradient's three GEMM layouts (weightGradLayout), each with the batch sum it uses
  const layoutCases: [string, number[], number[], { stride?: number; pad: number }, 'folded' | 'batched' | 'swapped', Partial<Case>][] = [
    ['small map (L ≤ 256): the batch folded into one GEMM, no batch sum', [2, 3, 4, 5], [4, 3, 3, 3], { pad: 1 }, 'folded', { not: ['ReduceSum'] }],
    ['larger map, few channels: per-sample dy·colsᵀ, batch sum a ReduceSum', [2, 3, 17, 16], [4, 3, 3, 3], { pad: 1 }, 'batched', { has: ['ReduceSum'] }],
    // dw has 64·8·9 = 4608 ≥ 4096 values: its batch sum is a ones·X MatMul, not a ReduceSum
    ['larger map, few input channels, wide dw: per-sample GEMMs, batch sum as a MatMul', [2, 8, 17, 16], [64, 8, 3, 3], { pad: 1 }, 'batched', { not: ['ReduceSum'] }],
    ['larger map, ≥ 16 channels each side: cols·dyᵀ per sample', [2, 16, 17, 16], [16, 16, 3, 3], { pad: 1 }, 'swapped', { has: ['ReduceSum'] }],
    ['larger map, stride 2, wide dw: cols·dyᵀ, batch sum as a MatMul', [2, 32, 34, 32], [16, 32, 3, 3], { stride: 2, pad: 1 }, 'swapped', { not: ['ReduceSum'] }],
  ];
  for (const [what, x, w, opts, layout, extra] of layoutCases) {
    it(`3×3 weight-gradient layout for ${what} is "${layout}"`, () => {
      const s = opts.stride ?? 1;
      const L = Math.floor((x[2]! + 2 * opts.pad - 3) / s + 1) * Math.floor((x[3]! + 2 * opts.pad - 3) / s + 1);
      expect(weightGradLayout(x[0]!, x[1]!, w[0]!, L)).toBe(layout);
    });
    T(`3×3 ${what}`, conv(x, w, opts, false, extra));
  }
  T('7×7 pad 3', conv([2, 2, 7, 5], [3, 2, 7, 7], { pad: 3 }));
  T('4×4 stride 2 pad 1 (odd H)', conv([2, 3, 7, 6], [4, 3, 4, 4], { stride: 2, pad: 1 }));
  T('3×3 stride 2 pad 1, output_padding (1, 0)', conv([2, 3, 8, 7], [4, 3, 3, 3], { stride: 2, pad: 1 }));
  T('3×3 stride 2 no padding, odd and even sizes', conv([2, 2, 7, 6], [3, 2, 3, 3], { stride: 2 }));
  T('3×3 asymmetric pads [1,0,2,1]', conv([2, 3, 5, 7], [2, 3, 3, 3], { pad: [1, 0, 2, 1] }, true));
  T('3×3 stride 2 asymmetric pads [0,1,1,0]', conv([2, 3, 7, 5], [2, 3, 3, 3], { stride: 2, pad: [0, 1, 1, 0] }));
  T('depthwise 3×3 pad 1, constant weight (input gradient only)', {
    inputs: { x: { shape: [2, 3, 5, 7] }, w: { shape: [3, 1, 3, 3], fixed: true } },
    build: (o, { x, w }) => o.conv2d(x!, w!, null, { pad: 1, groups: 3 }),
  });
  T('depthwise ×2 multiplier 4×4 stride 2 pad 1, weight input not differentiated', {
    inputs: { x: { shape: [2, 3, 7, 6] }, w: { shape: [6, 1, 4, 4] } }, wrt: ['x'],
    build: (o, { x, w }) => o.conv2d(x!, w!, null, { stride: 2, pad: 1, groups: 3 }),
  });
  T('weight gradient only (constant input), then a second conv (gradient through dx)', {
    inputs: { x: { shape: [2, 3, 5, 7], fixed: true }, w1: { shape: [4, 3, 3, 3] }, w2: { shape: [2, 4, 3, 3] } },
    h: NL,
    build: (o, { x, w1, w2 }) => o.conv2d(o.conv2d(x!, w1!, null, { pad: 1 }), w2!, null, { stride: 2, pad: 1 }),
  });
  it('a grouped-conv weight gradient is an error', () => {
    const g = new GraphBuilder();
    const o = new SymOps(g);
    const x = g.input('x', [2, 4, 5, 5]);
    const w = g.input('w', [4, 2, 3, 3]);
    const loss = o.reduceSum(o.conv2d(x, w, null, { pad: 1, groups: 2 }), [0, 1, 2, 3], false);
    expect(() => appendGradients(g, loss, ['x', 'w'])).toThrow(/grouped conv/);
  });
});

describe('autodiff: Gemm, MatMul, spectral norm', () => {
  T('Gemm (linear with bias)', { inputs: { x: { shape: [2, 5] }, w: { shape: [3, 5] }, b: { shape: [3] } }, build: (o, { x, w, b }) => o.linear(x!, w!, b!) });
  T('Gemm (linear without bias)', { inputs: { x: { shape: [2, 5] }, w: { shape: [3, 5] } }, build: (o, { x, w }) => o.linear(x!, w!, null) });
  T('MatMul 2-D', { inputs: { a: { shape: [3, 4] }, b: { shape: [4, 5] } }, build: (o, { a, b }) => o.matmul(a!, b!) });
  T('MatMul [2,3,4] × [4,5]', { inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4, 5] } }, build: (o, { a, b }) => o.matmul(a!, b!) });
  T('MatMul [1,3,4] × [2,4,5]', { inputs: { a: { shape: [1, 3, 4] }, b: { shape: [2, 4, 5] } }, build: (o, { a, b }) => o.matmul(a!, b!) });
  T('MatMul [3,4] × [2,4,5]', { inputs: { a: { shape: [3, 4] }, b: { shape: [2, 4, 5] } }, build: (o, { a, b }) => o.matmul(a!, b!) });
  T('MatMul with transposes (aᵀ·bᵀ, batched a)', { inputs: { a: { shape: [2, 4, 3] }, b: { shape: [5, 4] } }, build: (o, { a, b }) => o.matmul(a!, b!, true, true) });
  T('MatMul attention-style (q·kᵀ then ·v, one input twice)', {
    inputs: { q: { shape: [2, 5, 3] }, k: { shape: [2, 7, 3] } },
    build: (o, { q, k }) => o.matmul(o.matmul(q!, k!, false, true), k!),
  });
  T('spectral norm W/σ, σ = uᵀWv (u, v inputs, not differentiated), into a conv', (() => {
    // u = Wv/|Wv| (what the power iteration gives) so σ is well away from 0
    const r = rng(7);
    const w = Array.from({ length: 3 * 2 * 9 }, () => 2 * r() - 1);
    const v = Array.from({ length: 18 }, () => 2 * r() - 1);
    const nv = Math.hypot(...v);
    const vn = v.map((t) => t / nv);
    const wv = [0, 1, 2].map((i) => vn.reduce((s, t, j) => s + t * w[i * 18 + j]!, 0));
    const nw = Math.hypot(...wv);
    return {
      inputs: { w: { shape: [3, 2, 3, 3], data: w }, u: { shape: [3], data: wv.map((t) => t / nw) }, v: { shape: [18], data: vn }, x: { shape: [2, 2, 5, 7] } },
      wrt: ['w', 'x'], h: 1e-3, tol: 2e-3,
      build: (o, { w, u, v, x }) => {
        const wvS = o.reshape(o.matmul(o.reshape(w!, [3, 18]), o.reshape(v!, [18, 1])), [3]);
        const sigma = o.reduceSum(o.mul(u!, wvS), [0], false);
        return o.conv2d(x!, o.div(w!, sigma), null, { pad: 1 });
      },
    } satisfies Case;
  })());
});

describe('autodiff: errors and unused inputs', () => {
  it('a loss that does not depend on the inputs throws', () => {
    const g = new GraphBuilder();
    const o = new SymOps(g);
    g.input('x', [2, 3]);
    const loss = o.reduceSum(o.constant(Float32Array.of(1, 2, 3), [3]), [0], false);
    expect(() => appendGradients(g, loss, ['x'])).toThrow(/does not depend/);
  });
  it('an op without a rule throws, naming the op', () => {
    const g = new GraphBuilder();
    const o = new SymOps(g);
    const x = g.input('x', [2, 3]);
    const loss = o.reduceSum(g.node('Tanh', [x.name], [2, 3]), [0, 1], false);
    expect(() => appendGradients(g, loss, ['x'])).toThrow(/no gradient rule for ONNX op Tanh/);
  });
  it('an op without a rule beside a differentiable path throws (no silently partial gradient)', () => {
    // loss = Σ x + tanh(x): the Add path alone would give a gradient of ones
    const g = new GraphBuilder();
    const o = new SymOps(g);
    const x = g.input('x', [2, 3]);
    const loss = o.reduceSum(o.add(x, g.node('Tanh', [x.name], [2, 3])), [0, 1], false);
    expect(() => appendGradients(g, loss, ['x'])).toThrow(/no gradient rule for ONNX op Tanh/);
  });
  it('a non-scalar loss, Gemm without transB, Slice with steps are errors', () => {
    const g = new GraphBuilder();
    const o = new SymOps(g);
    const x = g.input('x', [2, 3]);
    const w = g.input('w', [3, 4]);
    expect(() => appendGradients(g, o.mul(x, x), ['x'])).toThrow(/scalar/);
    const gm = g.node('Gemm', [x.name, w.name], [2, 4], { transB: 0 });
    expect(() => appendGradients(g, o.reduceSum(gm, [0, 1], false), ['x'])).toThrow(/transB/);
    const h = new GraphBuilder();
    const y = h.input('y', [6]);
    const sl = h.node('Slice', [y.name, h.constI64([0]).name, h.constI64([6]).name, h.constI64([0]).name, h.constI64([2]).name], [3]);
    expect(() => appendGradients(h, new SymOps(h).reduceSum(sl, [0], false), ['y'])).toThrow(/no steps/);
  });
  it('inputs the loss does not use are reported as unused', () => {
    const g = new GraphBuilder();
    const o = new SymOps(g);
    const a = g.input('a', [2, 3]);
    g.input('b', [2, 3]);
    const { grads, unused } = appendGradients(g, o.reduceSum(o.mul(a, a), [0, 1], false), ['a', 'b']);
    expect([...grads.keys()]).toEqual(['a']);
    expect(unused).toEqual(['b']);
  });
});
