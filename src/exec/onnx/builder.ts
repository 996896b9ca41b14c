/**
 * An ONNX graph under construction: `Sym` (a value name plus its concrete shape), nodes,
 * initializers, inputs and outputs, serialised with the onnx-proto definitions. It keeps the shape
 * of every value and the data of small constants, which the reverse-mode transform (./autodiff.ts)
 * reads back.
 */
import onnxProto from 'onnx-proto';

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

/** A node's attribute as numbers (`i` for an int, `ints` for a list), or undefined when it has none of that name. */
export function attrOf(n: INodeProto, name: string): { i?: number; ints?: number[]; f?: number } | undefined {
  const a = n.attribute?.find((x) => x.name === name);
  if (!a) return undefined;
  return { i: a.i === undefined || a.i === null ? undefined : Number(a.i), ints: a.ints?.map(Number), f: a.f ?? undefined };
}

function bytesOf(a: Float32Array | BigInt64Array | Int8Array | Uint8Array | Int32Array): Uint8Array {
  // a view, not a copy: the official texture net has ~650 MB of weights
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export { numel } from '../../util/tensor.js';
import { numel } from '../../util/tensor.js';

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
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
  /** operator sets besides ONNX's that nodes use (domain → version) */
  private readonly domains = new Map<string, number>();

  useDomain(domain: string, version: number): void {
    this.domains.set(domain, version);
  }

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

  /**
   * Append a node. `domain` names an operator set other than ONNX's (registered with `useDomain`);
   * `output` reuses the name of a value whose node a rewrite pass removed.
   */
  node(opType: string, inputs: string[], outShape: number[], attrs: Record<string, AttrValue> = {}, opts: { domain?: string; output?: string } = {}): Sym {
    if (opts.domain !== undefined && !this.domains.has(opts.domain)) throw new Error(`operator set "${opts.domain}" is not registered`);
    const out = opts.output ?? this.fresh(opType.toLowerCase());
    this.nodes.push({
      opType,
      input: inputs,
      output: [out],
      name: out,
      attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
      ...(opts.domain === undefined ? {} : { domain: opts.domain }),
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
    // small constants only (≤ DEDUPE_MAX_BYTES): a latin1 string of the bytes is a cheap exact key, and needs no Buffer
    let text = '';
    for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]!);
    const key = `${kind}|${shape.join(',')}|${text}`;
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
      opsetImport: [{ domain: '', version: OPSET }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))],
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
