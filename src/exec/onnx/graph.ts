/**
 * Symbolic execution of the network code: `SymOps` implements the operator interface on `Sym`
 * (a value name plus its concrete shape) and records one ONNX node per op into a `GraphBuilder`,
 * which serialises the whole graph with the onnx-proto definitions. Shapes are inferred here
 * because the network code branches on them (padding, attention sizes, minibatch groups), so
 * every graph is for one concrete (batch, height, width).
 */
import onnxProto from 'onnx-proto';
import type { Conv2dOptions, Ops, ParamStore } from '../../nn/ops.js';
import type { StateDict } from '../../weights/types.js';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const OPSET = 17;
/** IR version 8 is the one that goes with opset 17 (onnx 1.12) */
const IR_VERSION = 8;

export class Sym {
  constructor(readonly name: string, readonly shape: readonly number[]) {}
}

export type AttrValue = number | number[] | { float: number } | string;

function attr(name: string, v: AttrValue): IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'object') return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.INT, i: v };
}

function bytesOf(a: Float32Array | BigInt64Array | Int8Array | Uint8Array | Int32Array): Uint8Array {
  // a view, not a copy: the official texture net has ~650 MB of weights
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** numpy broadcasting of two shapes */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

function valueInfo(name: string, shape: readonly number[]): IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
  };
}

/** Constants up to this size are deduplicated by content (scalars, index lists, small kernels). */
const DEDUPE_MAX_BYTES = 1 << 16;

export class GraphBuilder {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  readonly inputs: IValueInfoProto[] = [];
  readonly outputs: IValueInfoProto[] = [];
  private counter = 0;
  private readonly consts = new Map<string, Sym>();
  private readonly names = new Set<string>();
  /** the values of float32 initializers, by name (references, not copies): lets ops fold constants */
  private readonly f32Values = new Map<string, Float32Array>();
  /** the values of int64 constants (shapes, axes, indices): the reverse-mode transform reads them */
  private readonly i64Values = new Map<string, number[]>();
  /** the shape of every value (inputs, initializers, node outputs): the reverse-mode transform needs them */
  readonly shapes = new Map<string, readonly number[]>();

  private fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.names.has(n));
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`duplicate ONNX value name "${name}"`);
    this.names.add(name);
    return name;
  }

  input(name: string, shape: number[]): Sym {
    this.inputs.push(valueInfo(this.claim(name), shape));
    this.shapes.set(name, [...shape]);
    return new Sym(name, shape);
  }

  /** Mark `s` as a graph output under `name` (an Identity, which onnxruntime removes). */
  output(s: Sym, name: string): void {
    this.nodes.push({ opType: 'Identity', input: [s.name], output: [this.claim(name)], name: `out_${name}` });
    this.outputs.push(valueInfo(name, s.shape));
  }

  node(opType: string, inputs: string[], outShape: number[], attrs: Record<string, AttrValue> = {}): Sym {
    const out = this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      input: inputs,
      output: [out],
      name: out,
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
    });
    this.shapes.set(out, [...outShape]);
    return new Sym(out, outShape);
  }

  /** A float32 initializer; `name` is kept (weights keep their state_dict keys, for inspection). */
  initializerF32(data: Float32Array, shape: readonly number[], name?: string): Sym {
    if (data.length !== numel(shape)) throw new Error(`constant of shape [${shape}] given ${data.length} values`);
    const n = name ? this.claim(name) : this.fresh('const');
    this.initializers.push({ name: n, dims: [...shape], dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytesOf(data) });
    this.f32Values.set(n, data);
    this.shapes.set(n, [...shape]);
    return new Sym(n, shape);
  }

  /** The data of a float32 initializer, or undefined when `s` is computed (or not float32). */
  constValue(s: Sym): Float32Array | undefined {
    return this.f32Values.get(s.name);
  }

  /** The values of an int64 constant made by constI64, or undefined. */
  constI64Value(name: string): number[] | undefined {
    return this.i64Values.get(name);
  }

  /** The shape of any value of the graph. */
  shapeOf(name: string): readonly number[] {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`graph: no shape recorded for value "${name}"`);
    return s;
  }

  /** An initializer of another element type (int8/uint8 weights, int32 biases). */
  initializerTyped(dataType: 'int8' | 'uint8' | 'int32', data: Int8Array | Uint8Array | Int32Array, shape: readonly number[], name?: string): Sym {
    if (data.length !== numel(shape)) throw new Error(`constant of shape [${shape}] given ${data.length} values`);
    const DT = onnx.TensorProto.DataType;
    const dt = dataType === 'int8' ? DT.INT8 : dataType === 'uint8' ? DT.UINT8 : DT.INT32;
    const n = name ? this.claim(name) : this.fresh('const');
    this.initializers.push({ name: n, dims: [...shape], dataType: dt, rawData: bytesOf(data) });
    this.shapes.set(n, [...shape]);
    return new Sym(n, shape);
  }

  /** A node with several outputs (e.g. DynamicQuantizeLinear's y, scale, zero point). */
  nodeMulti(opType: string, inputs: string[], outShapes: number[][], attrs: Record<string, AttrValue> = {}): Sym[] {
    const outs = outShapes.map(() => this.fresh(opType.toLowerCase()));
    this.nodes.push({
      opType,
      input: inputs,
      output: outs,
      name: outs[0]!,
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
    });
    outs.forEach((o, i) => this.shapes.set(o, [...outShapes[i]!]));
    return outs.map((o, i) => new Sym(o, outShapes[i]!));
  }

  private dedupe(kind: string, shape: readonly number[], bytes: Uint8Array, make: () => Sym): Sym {
    if (bytes.byteLength > DEDUPE_MAX_BYTES) return make();
    const key = `${kind}|${shape.join(',')}|${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
    let s = this.consts.get(key);
    if (!s) {
      s = make();
      this.consts.set(key, s);
    }
    return s;
  }

  constF32(data: Float32Array, shape: readonly number[]): Sym {
    const copy = Float32Array.from(data); // the caller may reuse its buffer
    return this.dedupe('f32', shape, bytesOf(copy), () => this.initializerF32(copy, shape));
  }

  constI64(values: readonly number[], shape: readonly number[] = [values.length]): Sym {
    const a = BigInt64Array.from(values, (v) => BigInt(v));
    return this.dedupe('i64', shape, bytesOf(a), () => {
      const n = this.fresh('idx');
      this.initializers.push({ name: n, dims: [...shape], dataType: onnx.TensorProto.DataType.INT64, rawData: bytesOf(a) });
      this.i64Values.set(n, [...values]);
      this.shapes.set(n, [...shape]);
      return new Sym(n, shape);
    });
  }

  /** Drop initializers no node reads (float weights replaced by their int8 copies). */
  pruneUnusedInitializers(): number {
    const used = new Set<string>();
    for (const n of this.nodes) for (const i of n.input ?? []) used.add(i);
    const keep = this.initializers.filter((t) => used.has(t.name!));
    const dropped = this.initializers.length - keep.length;
    this.initializers.splice(0, this.initializers.length, ...keep);
    return dropped;
  }

  /** Serialise to an ONNX ModelProto. Weight bytes are copied once, into the returned buffer. */
  toBytes(opts: { graphName?: string; docString?: string; metadata?: Record<string, string> } = {}): Uint8Array {
    let weightBytes = 0;
    for (const t of this.initializers) weightBytes += t.rawData?.length ?? 0;
    // a single protobuf message cannot exceed 2 GiB; ONNX's way out (external data files) is not
    // something onnxruntime can take from a buffer, and no network here comes near the limit
    if (weightBytes > 2 ** 31 - 2 ** 24) throw new Error(`export: ${(weightBytes / 2 ** 30).toFixed(2)} GiB of weights exceed ONNX's 2 GiB protobuf limit`);
    const model: onnxProto.onnx.IModelProto = {
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }],
      producerName: 'strdiffusion',
      producerVersion: '0.1.0',
      docString: opts.docString ?? '',
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: opts.graphName ?? 'strdiffusion',
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    return onnx.ModelProto.encode(model).finish();
  }
}

function pads4(p: Conv2dOptions['pad']): [number, number, number, number] {
  if (p === undefined) return [0, 0, 0, 0];
  return typeof p === 'number' ? [p, p, p, p] : p;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

/**
 * Numeric precision of an exported graph's convolutions. 'int8': dynamic quantisation
 * (DynamicQuantizeLinear + ConvInteger). 'int8-static': calibrated static quantisation
 * (QuantizeLinear + QLinearConv + DequantizeLinear, activation ranges from `QuantOptions.calibration`).
 */
export type Precision = 'fp32' | 'int8' | 'int8-static';

export const PRECISIONS: readonly Precision[] = ['fp32', 'int8', 'int8-static'];

/** Observed value range of one quantised conv's input (x) and output (y, bias included). */
export interface ConvRange {
  x: [number, number];
  y: [number, number];
}
/** One ConvRange per quantised conv, in trace order (what `exportCalibrationOnnx` measures). */
export type Calibration = ConvRange[];

/**
 * Asymmetric uint8 parameters covering [min, max] (widened to contain 0, so zero padding and
 * ReLU zeros are exact): scale = (hi - lo) / 255, zero point = round(-lo / scale).
 */
export function uint8Params(min: number, max: number): { scale: number; zero: number } {
  const lo = Math.min(0, Number.isFinite(min) ? min : 0);
  const hi = Math.max(0, Number.isFinite(max) ? max : 0);
  const scale = hi - lo > 1e-30 ? Math.fround((hi - lo) / 255) : 1;
  const zero = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  return { scale, zero };
}

/**
 * How `int8` graphs quantise (dynamic quantisation: weights offline, activations at run time).
 * Only convolutions with a constant weight and groups = 1 are quantised; the rest stays float32.
 */
export interface QuantOptions {
  /** convs with fewer input or output channels stay float32 (init/final convs, SPADE's 1-channel input); default 8 */
  minChannels?: number;
  /** keep 1x1 convs (residual, attention projections) in float32 (default true: on the fixture
   * nets it cuts the int8 error by about a quarter, and they are a small share of the work) */
  skipPointwise?: boolean;
  /** 'int8-static' only: the activation ranges of the quantised convs (see exportCalibrationOnnx) */
  calibration?: Calibration;
  /** 'int8-static': widen every calibrated range by this factor (headroom for inputs beyond the
   * calibration set, at the price of resolution); default 1 */
  rangeMargin?: number;
}

/** Per-output-channel symmetric int8 weights: scale_c = max|w_c| / 127, q = round(w / scale_c). */
export function quantizeWeightsPerChannel(w: Float32Array, outChannels: number): { q: Int8Array; scale: Float32Array } {
  const per = w.length / outChannels;
  if (!Number.isInteger(per)) throw new Error(`quantize: ${w.length} weights do not split into ${outChannels} channels`);
  const q = new Int8Array(w.length);
  const scale = new Float32Array(outChannels);
  for (let c = 0; c < outChannels; c++) {
    const off = c * per;
    let m = 0;
    for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(w[off + i]!));
    // an all-zero channel: any scale reproduces it; 1 avoids a division by zero
    const sc = m > 0 ? Math.fround(m / 127) : 1;
    scale[c] = sc;
    for (let i = 0; i < per; i++) q[off + i] = Math.max(-127, Math.min(127, Math.round(w[off + i]! / sc)));
  }
  return { q, scale };
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
  ) {}

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
  scope<R extends Sym | Sym[]>(fn: () => R): R {
    return fn();
  }
}

/**
 * Parameters as initializers, created on first use (so unused entries such as spectral u, v stay
 * out of the graph). Spectral-norm weights are folded at export: W_orig / sigma with
 * sigma = u^T W v from the stored u, v (eval mode: no power iteration, as in inference).
 */
export class SymParams implements ParamStore<Sym> {
  private readonly cache = new Map<string, Sym>();
  constructor(private readonly sd: StateDict, private readonly g: GraphBuilder) {}

  has(key: string): boolean {
    return this.sd.has(key);
  }
  private tensor(key: string) {
    const t = this.sd.get(key);
    if (!t) throw new Error(`parameter "${key}" is not loaded`);
    return t;
  }
  get(key: string): Sym {
    let s = this.cache.get(key);
    if (!s) {
      const t = this.tensor(key);
      s = this.g.initializerF32(t.data, t.shape, key);
      this.cache.set(key, s);
    }
    return s;
  }
  spectralWeight(prefix: string): Sym {
    const key = `${prefix}.weight`;
    let s = this.cache.get(key);
    if (!s) {
      const w = this.tensor(`${prefix}.weight_orig`);
      const sigma = spectralSigma(w.data, w.shape[0]!, this.tensor(`${prefix}.weight_u`).data, this.tensor(`${prefix}.weight_v`).data);
      // float32 division, as torch's `weight / sigma` (a plain loop: Float32Array.from with a
      // map function is ~50x slower, seconds for the official texture net)
      const out = new Float32Array(w.data.length);
      for (let i = 0; i < out.length; i++) out[i] = w.data[i]! / sigma;
      s = this.g.initializerF32(out, w.shape, key);
      this.cache.set(key, s);
    }
    return s;
  }
}

/** sigma = u . (W v) for W viewed as [rows, -1], rounded to float32 like torch's result. */
export function spectralSigma(w: Float32Array, rows: number, u: Float32Array, v: Float32Array): number {
  const cols = w.length / rows;
  if (u.length !== rows || v.length !== cols) throw new Error(`spectral norm: u [${u.length}], v [${v.length}] do not fit W [${rows}, ${cols}]`);
  let s = 0;
  for (let r = 0; r < rows; r++) {
    let wv = 0;
    const off = r * cols;
    for (let c = 0; c < cols; c++) wv += w[off + c]! * v[c]!;
    s += u[r]! * Math.fround(wv);
  }
  return Math.fround(s);
}
