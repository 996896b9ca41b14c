/**
 * Symbolic execution of the network code: `SymOps` implements the operator interface on `Sym`
 * (a value name plus its concrete shape) and records one ONNX node per op into a `GraphBuilder`,
 * which serialises the whole graph with the onnx-proto definitions. Shapes are inferred here
 * because the network code branches on them (padding, attention sizes, minibatch groups), so
 * every graph is for one concrete (batch, height, width).
 */
import onnxProto from 'onnx-proto';
import type { Conv2dOptions, Ops } from '../../nn/ops.js';
import { numel, sameShape, broadcastShapes, GraphBuilder, Sym, type AttrValue } from './builder.js';
import { quantizeWeightsPerChannel, uint8Params, type Precision, type QuantOptions } from './quant.js';

const { onnx } = onnxProto;



function pads4(p: Conv2dOptions['pad']): [number, number, number, number] {
  if (p === undefined) return [0, 0, 0, 0];
  return typeof p === 'number' ? [p, p, p, p] : p;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export class SymOps implements Ops<Sym> {
  readonly name = 'onnx';
  /** number of convolutions emitted in int8 / kept in float32 (int8 graphs only) */
  readonly quantStats = { int8: 0, fp32: 0 };
  private readonly dq = new Map<string, Sym[]>();
  private readonly qweights = new Map<string, { w: Sym; zp: Sym; scale: Float32Array }>();
  private readonly sq = new Map<string, { q: Sym; scale: Sym; zero: Sym; s: number }>();
  /** collect mode: the (input, output) of every conv the int8 modes would quantise, in trace order */
  readonly taps: { x: Sym; y: Sym }[] = [];
  constructor(
    readonly g: GraphBuilder,
    readonly precision: Precision = 'fp32',
    readonly quant: QuantOptions = {},
    /** float32 graph that records `taps` (for calibration) */
    readonly collect = false,
    /** WebGPU workaround (onnxruntime issue #29651: a graph's first Conv over more than 3 input
     * channels miscomputes there): emit the first conv as a sum of convs over at most 3 channels each */
    readonly splitFirstConv = false,
  ) {}
  private convs = 0;

  shape(x: Sym): number[] {
    return [...x.shape];
  }
  constant(data: Float32Array, shape: number[]): Sym {
    return this.g.constF32(data, shape);
  }
  scalar(v: number): Sym {
    return this.g.constF32(Float32Array.of(v), []);
  }

  conv2d(x: Sym, w: Sym, b: Sym | null, opts: Conv2dOptions = {}): Sym {
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const [O, I, kh, kw] = w.shape as [number, number, number, number];
    const [top, left, bottom, right] = pads4(opts.pad);
    const s = opts.stride ?? 1;
    const groups = opts.groups ?? 1;
    if (x.shape.length !== 4 || w.shape.length !== 4) throw new Error(`conv2d: x [${x.shape}] and w [${w.shape}] must be 4-D`);
    if (I * groups !== C) throw new Error(`conv2d: input has ${C} channels, weight [${w.shape}] with groups ${groups} expects ${I * groups}`);
    const oh = Math.floor((H + top + bottom - kh) / s) + 1;
    const ow = Math.floor((W + left + right - kw) / s) + 1;
    const first = this.convs++ === 0;
    const wConst = this.splitFirstConv && first && groups === 1 && C > 3 && this.precision === 'fp32' && !this.collect ? this.g.constValue(w) : undefined;
    if (wConst) {
      // Conv(x, W) = sum over channel groups g of Conv(x[:, g], W[:, g]) (bias once)
      let y: Sym | null = null;
      for (let c0 = 0; c0 < C; c0 += 3) {
        const n = Math.min(3, C - c0);
        const ws = new Float32Array(O * n * kh * kw);
        for (let o = 0; o < O; o++) ws.set(wConst.subarray((o * C + c0) * kh * kw, (o * C + c0 + n) * kh * kw), o * n * kh * kw);
        const part = this.floatConv(this.slice(x, [0, c0, 0, 0], [B, n, H, W]), this.constant(ws, [O, n, kh, kw]), y === null ? b : null, [B, O, oh, ow], [top, left, bottom, right], s, 1);
        y = y === null ? part : this.add(y, part);
      }
      return y!;
    }
    if (this.precision !== 'fp32' || this.collect) {
      const wData = this.g.constValue(w);
      const minC = this.quant.minChannels ?? 8;
      const quantize = groups === 1 && wData !== undefined && C >= minC && O >= minC && !((this.quant.skipPointwise ?? true) && kh === 1 && kw === 1);
      if (quantize) {
        const idx = this.quantStats.int8++;
        const qa = { kernel_shape: [kh, kw], pads: [top, left, bottom, right], strides: [s, s], dilations: [1, 1] };
        if (this.precision === 'int8') return this.convInt8(x, w, wData, b, [B, O, oh, ow], qa);
        if (this.precision === 'int8-static') return this.convQLinear(idx, x, w, wData, b, [B, O, oh, ow], qa);
        const y = this.floatConv(x, w, b, [B, O, oh, ow], [top, left, bottom, right], s, groups);
        this.taps.push({ x, y });
        return y;
      }
      this.quantStats.fp32++;
    }
    return this.floatConv(x, w, b, [B, O, oh, ow], [top, left, bottom, right], s, groups);
  }

  private floatConv(x: Sym, w: Sym, b: Sym | null, outShape: number[], pads: number[], s: number, groups: number): Sym {
    const [kh, kw] = w.shape.slice(2) as [number, number];
    const [B, O, oh, ow] = outShape as [number, number, number, number];
    const [top, left, bottom, right] = pads as [number, number, number, number];
    return this.g.node('Conv', b ? [x.name, w.name, b.name] : [x.name, w.name], [B, O, oh, ow], {
      kernel_shape: [kh, kw],
      // ONNX order: all begins then all ends, per spatial axis (H, W)
      pads: [top, left, bottom, right],
      strides: [s, s],
      dilations: [1, 1],
      group: groups,
    });
  }

  /**
   * Dynamically quantised conv: x -> DynamicQuantizeLinear (uint8, per tensor, zero point z_x)
   * -> ConvInteger with uint8 weights q + 128 (zero point 128: onnxruntime's CPU ConvInteger runs
   * uint8 x uint8 several times faster than uint8 x int8) -> Cast float -> * (s_x * s_w[c]) + bias.
   * ConvInteger pads with the input zero point, so zero padding stays exact.
   * Measured (onnxruntime-node 1.30, 2-core AVX-512 VNNI EPYC): ConvInteger runs about as fast as
   * the float Conv, so whole networks gain <= 10 %; QLinearConv (uint8 output) is ~1.9x faster but
   * needs a static output scale, i.e. a calibration pass, which this dynamic mode does not have.
   */
  private convInt8(x: Sym, w: Sym, wData: Float32Array, b: Sym | null, outShape: number[], attrs: Record<string, AttrValue>): Sym {
    const O = w.shape[0]!;
    let xq = this.dq.get(x.name);
    if (!xq) {
      xq = this.g.nodeMulti('DynamicQuantizeLinear', [x.name], [[...x.shape], [], []]);
      this.dq.set(x.name, xq);
    }
    let qw = this.qweights.get(w.name);
    if (!qw) {
      const { q, scale } = quantizeWeightsPerChannel(wData, O);
      const u = new Uint8Array(q.length);
      for (let i = 0; i < q.length; i++) u[i] = q[i]! + 128;
      qw = { w: this.g.initializerTyped('uint8', u, w.shape, `${w.name}.int8`), zp: this.g.initializerTyped('uint8', Uint8Array.of(128), []), scale };
      this.qweights.set(w.name, qw);
    }
    const [xu8, xScale, xZero] = xq as [Sym, Sym, Sym];
    const acc = this.g.node('ConvInteger', [xu8.name, qw.w.name, xZero.name, qw.zp.name], outShape, attrs);
    const f = this.g.node('Cast', [acc.name], outShape, { to: onnx.TensorProto.DataType.FLOAT });
    const scale = this.mul(xScale, this.g.initializerF32(qw.scale, [1, O, 1, 1]));
    let y = this.mul(f, scale);
    if (b) {
      const bData = this.g.constValue(b);
      y = this.add(y, bData ? this.g.constF32(bData, [1, O, 1, 1]) : this.reshape(b, [1, O, 1, 1]));
    }
    return y;
  }

  /**
   * Statically quantised conv: x -> QuantizeLinear (uint8, per-tensor scale/zero point from the
   * calibration) -> QLinearConv (int8 symmetric per-output-channel weights, int32 bias with scale
   * s_x * s_w[c], uint8 output with the calibrated output range) -> DequantizeLinear.
   * Measured (onnxruntime-node 1.30, AVX-512 VNNI): a 128-channel 3x3 conv at 128^2 runs ~2x faster
   * than the float Conv. QuantizeLinear is shared by convs reading the same tensor.
   */
  private convQLinear(idx: number, x: Sym, w: Sym, wData: Float32Array, b: Sym | null, outShape: number[], attrs: Record<string, AttrValue>): Sym {
    const O = w.shape[0]!;
    const r = this.quant.calibration?.[idx];
    if (!r) throw new Error(`int8-static: no calibration range for quantised conv #${idx} (calibration has ${this.quant.calibration?.length ?? 0})`);
    let xq = this.sq.get(x.name);
    if (!xq) {
      const m = this.quant.rangeMargin ?? 1;
      const p = uint8Params(m * r.x[0], m * r.x[1]);
      const scale = this.g.constF32(Float32Array.of(p.scale), []);
      const zero = this.g.initializerTyped('uint8', Uint8Array.of(p.zero), []);
      xq = { q: this.g.node('QuantizeLinear', [x.name, scale.name, zero.name], [...x.shape]), scale, zero, s: p.scale };
      this.sq.set(x.name, xq);
    }
    const { q, scale: ws } = quantizeWeightsPerChannel(wData, O);
    const wq = this.g.initializerTyped('int8', q, w.shape, `${w.name}.int8.${idx}`);
    const wsS = this.g.initializerF32(ws, [O]);
    const wz = this.g.initializerTyped('int8', new Int8Array(O), [O]);
    const m = this.quant.rangeMargin ?? 1;
    const yp = uint8Params(m * r.y[0], m * r.y[1]);
    const ys = this.g.constF32(Float32Array.of(yp.scale), []);
    const yz = this.g.initializerTyped('uint8', Uint8Array.of(yp.zero), []);
    const ins = [xq.q.name, xq.scale.name, xq.zero.name, wq.name, wsS.name, wz.name, ys.name, yz.name];
    const bData = b ? this.g.constValue(b) : undefined;
    if (bData) {
      const bi = new Int32Array(O);
      for (let c = 0; c < O; c++) {
        const v = Math.round(bData[c]! / Math.fround(xq.s * ws[c]!));
        bi[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, v));
      }
      ins.push(this.g.initializerTyped('int32', bi, [O]).name);
    }
    const yq = this.g.node('QLinearConv', ins, outShape, attrs);
    let y = this.g.node('DequantizeLinear', [yq.name, ys.name, yz.name], outShape);
    // a conv reading this output directly (no float op between) takes the uint8 tensor as it is
    // instead of DequantizeLinear -> QuantizeLinear (4 of 46 convs in the official structure U-Net)
    if (!b || bData) this.sq.set(y.name, { q: yq, scale: ys, zero: yz, s: yp.scale });
    // a computed bias (none in these networks) is added in float after the conv
    if (b && !bData) y = this.add(y, this.reshape(b, [1, O, 1, 1]));
    return y;
  }

  linear(x: Sym, w: Sym, b: Sym | null): Sym {
    const [B, I] = x.shape as [number, number];
    const [O, I2] = w.shape as [number, number];
    if (I !== I2) throw new Error(`linear: x [${x.shape}] vs w [${w.shape}]`);
    return this.g.node('Gemm', b ? [x.name, w.name, b.name] : [x.name, w.name], [B, O], { transB: 1 });
  }

  private swapLast(x: Sym): Sym {
    const r = x.shape.length;
    const perm = [...Array(r).keys()];
    perm[r - 1] = r - 2;
    perm[r - 2] = r - 1;
    return this.transpose(x, perm);
  }

  matmul(a: Sym, b: Sym, ta = false, tb = false): Sym {
    const A = ta ? this.swapLast(a) : a;
    const Bm = tb ? this.swapLast(b) : b;
    const sa = A.shape;
    const sb = Bm.shape;
    if (sa.length < 2 || sb.length < 2) throw new Error('matmul: operands must be at least 2-D');
    const k1 = sa[sa.length - 1]!;
    const k2 = sb[sb.length - 2]!;
    if (k1 !== k2) throw new Error(`matmul: inner dims [${a.shape}] x [${b.shape}] (transposes ${ta}, ${tb})`);
    const lead = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
    return this.g.node('MatMul', [A.name, Bm.name], [...lead, sa[sa.length - 2]!, sb[sb.length - 1]!]);
  }

  private binary(op: string, a: Sym, b: Sym): Sym {
    return this.g.node(op, [a.name, b.name], broadcastShapes(a.shape, b.shape));
  }
  add(a: Sym, b: Sym) { return this.binary('Add', a, b); }
  sub(a: Sym, b: Sym) { return this.binary('Sub', a, b); }
  mul(a: Sym, b: Sym) { return this.binary('Mul', a, b); }
  div(a: Sym, b: Sym) { return this.binary('Div', a, b); }

  private unary(op: string, x: Sym, attrs: Record<string, AttrValue> = {}): Sym {
    return this.g.node(op, [x.name], [...x.shape], attrs);
  }
  sqrt(x: Sym) { return this.unary('Sqrt', x); }
  abs(x: Sym) { return this.unary('Abs', x); }
  exp(x: Sym) { return this.unary('Exp', x); }
  sin(x: Sym) { return this.unary('Sin', x); }
  cos(x: Sym) { return this.unary('Cos', x); }
  erf(x: Sym) { return this.unary('Erf', x); }
  sigmoid(x: Sym) { return this.unary('Sigmoid', x); }
  relu(x: Sym) { return this.unary('Relu', x); }
  leakyRelu(x: Sym, alpha: number) { return this.unary('LeakyRelu', x, { alpha: { float: alpha } }); }
  softplus(x: Sym) { return this.unary('Softplus', x); }

  private reducedShape(x: Sym, axes: number[], keepDims: boolean): { axes: number[]; shape: number[] } {
    const r = x.shape.length;
    const ax = [...new Set(axes.map((a) => normAxis(a, r)))].sort((p, q) => p - q);
    const shape: number[] = [];
    x.shape.forEach((d, i) => {
      if (!ax.includes(i)) shape.push(d);
      else if (keepDims) shape.push(1);
    });
    return { axes: ax, shape };
  }
  reduceMean(x: Sym, axes: number[], keepDims: boolean): Sym {
    const { axes: ax, shape } = this.reducedShape(x, axes, keepDims);
    // opset 17: ReduceMean still takes its axes as an attribute (an input only from opset 18)
    return this.g.node('ReduceMean', [x.name], shape, { axes: ax, keepdims: keepDims ? 1 : 0 });
  }
  reduceSum(x: Sym, axes: number[], keepDims: boolean): Sym {
    const { axes: ax, shape } = this.reducedShape(x, axes, keepDims);
    return this.g.node('ReduceSum', [x.name, this.g.constI64(ax).name], shape, { keepdims: keepDims ? 1 : 0 });
  }
  softmax(x: Sym, axis: number): Sym {
    // opset >= 13: Softmax normalises along the one given axis
    return this.unary('Softmax', x, { axis: normAxis(axis, x.shape.length) });
  }

  reshape(x: Sym, shape: number[]): Sym {
    const n = numel(x.shape);
    const out = [...shape];
    const neg = out.indexOf(-1);
    if (neg >= 0) {
      const known = out.reduce((p, d, i) => (i === neg ? p : p * d), 1);
      out[neg] = n / known;
    }
    if (numel(out) !== n || !out.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`reshape [${x.shape}] -> [${shape}]`);
    if (sameShape(out, x.shape)) return x;
    return this.g.node('Reshape', [x.name, this.g.constI64(out).name], out);
  }
  transpose(x: Sym, perm: number[]): Sym {
    if (perm.every((p, i) => p === i)) return x;
    return this.g.node('Transpose', [x.name], perm.map((p) => x.shape[p]!), { perm });
  }
  concat(xs: Sym[], axis: number): Sym {
    if (xs.length === 0) throw new Error('concat of nothing');
    if (xs.length === 1) return xs[0]!;
    const r = xs[0]!.shape.length;
    const ax = normAxis(axis, r);
    const shape = [...xs[0]!.shape];
    shape[ax] = 0;
    for (const x of xs) {
      if (x.shape.length !== r || x.shape.some((d, i) => i !== ax && d !== shape[i])) throw new Error(`concat: [${x.shape}] vs [${xs[0]!.shape}] on axis ${ax}`);
      shape[ax] = shape[ax]! + x.shape[ax]!;
    }
    return this.g.node('Concat', xs.map((x) => x.name), shape, { axis: ax });
  }
  slice(x: Sym, begin: number[], size: number[]): Sym {
    const axes: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    const shape = [...x.shape];
    x.shape.forEach((d, i) => {
      const b = begin[i] ?? 0;
      const sz = size[i] === undefined || size[i] === -1 ? d - b : size[i]!;
      if (b < 0 || sz < 0 || b + sz > d) throw new Error(`slice [${x.shape}] begin [${begin}] size [${size}]`);
      if (b === 0 && sz === d) return;
      axes.push(i);
      starts.push(b);
      ends.push(b + sz);
      shape[i] = sz;
    });
    if (axes.length === 0) return x;
    return this.g.node('Slice', [x.name, this.g.constI64(starts).name, this.g.constI64(ends).name, this.g.constI64(axes).name], shape);
  }
  gather(x: Sym, indices: number[], axis: number): Sym {
    const ax = normAxis(axis, x.shape.length);
    const n = x.shape[ax]!;
    if (indices.some((i) => !Number.isInteger(i) || i < 0 || i >= n)) throw new Error(`gather: index out of range for axis ${ax} of [${x.shape}]`);
    // a contiguous run of indices is a Slice, which needs no index tensor
    if (indices.length > 0 && indices.every((v, i) => v === indices[0]! + i)) {
      const begin = x.shape.map(() => 0);
      const size = x.shape.map(() => -1);
      begin[ax] = indices[0]!;
      size[ax] = indices.length;
      return this.slice(x, begin, size);
    }
    const shape = [...x.shape];
    shape[ax] = indices.length;
    return this.g.node('Gather', [x.name, this.g.constI64(indices).name], shape, { axis: ax });
  }
  lookup(table: Float32Array, index: Sym): Sym {
    const idx = this.g.node('Cast', [index.name], [...index.shape], { to: onnx.TensorProto.DataType.INT64 });
    return this.g.node('Gather', [this.g.constF32(table, [table.length]).name, idx.name], [...index.shape], { axis: 0 });
  }
  scope<R extends Sym | Sym[]>(fn: () => R): R {
    return fn();
  }
}
