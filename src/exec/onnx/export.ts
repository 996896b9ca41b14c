/**
 * ONNX export of the three networks: the network code in src/nn runs once on symbolic tensors
 * (./tracer.ts) for one concrete (batch, height, width), with the weights as initializers.
 */
import type { DiscConfig, UNetConfig } from '../../nn/config.js';
import { unetForward } from '../../nn/unet.js';
import { discriminatorForward } from '../../nn/discriminator.js';
import type { StateDict } from '../../weights/types.js';
import type { NetConfig, NetKind } from '../types.js';
import { GraphBuilder, OPSET, type Sym } from './builder.js';
import { PRECISIONS, type Precision, type QuantOptions } from './quant.js';
import { SymOps } from './tracer.js';
import { SymParams } from './params.js';

export type { Calibration, ConvRange, Precision, QuantOptions } from './quant.js';
export { PRECISIONS } from './quant.js';

export interface ExportOptions {
  /**
   * 'fp32' (default): the float32 graph. 'int8': convolutions with constant weights and groups = 1
   * dynamically quantised (int8 per-channel weights, uint8 per-tensor activations at run time).
   * 'int8-static': the same convs as QLinearConv with activation ranges fixed by a calibration
   * (`quant.calibration`, from exportCalibrationOnnx + a run on representative inputs).
   */
  precision?: Precision;
  quant?: QuantOptions;
  /** the first conv as convs over at most 3 input channels each (fp32 only): the WebGPU
   * workaround of SymOps.splitFirstConv; the same function, other float rounding */
  splitFirstConv?: boolean;
}

export interface ExportShape {
  batch: number;
  height: number;
  width: number;
}

export interface TensorDesc {
  name: string;
  shape: number[];
  dtype: 'float32';
  description: string;
}

/** What a consumer of the .onnx file needs to know to feed it (written beside it by the CLI). */
export interface ModelDesc {
  kind: NetKind;
  opset: number;
  config: NetConfig;
  batch: number;
  height: number;
  width: number;
  inputs: TensorDesc[];
  outputs: TensorDesc[];
}

/** Graph inputs in feeding order. The discriminator's image input is named `y`, as in D(t, y, S). */
export function describeModel(kind: NetKind, cfg: NetConfig, s: ExportShape): ModelDesc {
  const { batch: B, height: H, width: W } = s;
  for (const [k, v] of Object.entries(s)) if (!Number.isInteger(v) || v < 1) throw new Error(`export: ${k} must be a positive integer (got ${v})`);
  const t: TensorDesc = { name: 't', shape: [B], dtype: 'float32', description: 'diffusion step per sample (integer value as float)' };
  let inputs: TensorDesc[];
  let outputs: TensorDesc[];
  if (kind === 'discriminator') {
    const c = cfg as DiscConfig;
    inputs = [
      { name: 'y', shape: [B, c.nc - 1, H, W], dtype: 'float32', description: 'texture image (NCHW)' },
      { name: 'S', shape: [B, 1, H, W], dtype: 'float32', description: 'structure image' },
      t,
    ];
    outputs = [{ name: 'out', shape: [B], dtype: 'float32', description: 'discriminator score per sample' }];
  } else {
    const c = cfg as UNetConfig;
    inputs = [
      { name: 'x', shape: [B, c.inNc, H, W], dtype: 'float32', description: 'state x_t (NCHW)' },
      { name: 'mu', shape: [B, c.inNc, H, W], dtype: 'float32', description: 'SDE mean mu' },
    ];
    if (c.spade) inputs.push({ name: 'S', shape: [B, 1, H, W], dtype: 'float32', description: 'structure guide' });
    inputs.push(t);
    outputs = [{ name: 'out', shape: [B, c.outNc, H, W], dtype: 'float32', description: 'predicted noise' }];
  }
  return { kind, opset: OPSET, config: cfg, batch: B, height: H, width: W, inputs, outputs };
}

function checkPrecision(p: string): asserts p is Precision {
  if (!PRECISIONS.includes(p as Precision)) throw new Error(`export: unknown precision "${p}" (expected ${PRECISIONS.join(', ')})`);
}

/** Trace the network on symbolic inputs; the output is checked against describeModel's. */
function trace(kind: NetKind, cfg: NetConfig, weights: StateDict, shape: ExportShape, g: GraphBuilder, ops: SymOps): Sym {
  const desc = describeModel(kind, cfg, shape);
  const ctx = { ops, p: new SymParams(weights, g) };
  const ins = new Map<string, Sym>(desc.inputs.map((d) => [d.name, g.input(d.name, d.shape)]));
  const out =
    kind === 'discriminator'
      ? discriminatorForward(ctx, cfg as DiscConfig, ins.get('t')!, ins.get('y')!, ins.get('S')!)
      : unetForward(ctx, cfg as UNetConfig, ins.get('x')!, ins.get('mu')!, ins.get('t')!, ins.get('S'));
  const want = desc.outputs[0]!.shape;
  if (out.shape.length !== want.length || out.shape.some((d, i) => d !== want[i])) {
    throw new Error(`export: ${kind} network traced to output [${out.shape}], expected [${want}]`);
  }
  return out;
}

/** Serialised ONNX ModelProto of one network for one input size. */
export function exportOnnx(kind: NetKind, cfg: NetConfig, weights: StateDict, shape: ExportShape, opts: ExportOptions = {}): Uint8Array {
  const precision = opts.precision ?? 'fp32';
  checkPrecision(precision);
  if (precision === 'int8-static' && !opts.quant?.calibration) throw new Error('export: int8-static needs quant.calibration (activation ranges; see exportCalibrationOnnx)');
  const desc = describeModel(kind, cfg, shape);
  const g = new GraphBuilder();
  const ops = new SymOps(g, precision, opts.quant, false, opts.splitFirstConv ?? false);
  const out = trace(kind, cfg, weights, shape, g, ops);
  g.output(out, 'out');
  // the split first conv reads slices of its weight: the whole one is no longer used
  if (opts.splitFirstConv) g.pruneUnusedInitializers();
  const metadata: Record<string, string> = { kind, config: JSON.stringify(cfg), inputs: desc.inputs.map((d) => d.name).join(',') };
  let doc = `StrDiffusion ${kind} network, batch ${shape.batch}, ${shape.height}x${shape.width}`;
  if (precision !== 'fp32') {
    if (precision === 'int8-static' && ops.quantStats.int8 !== opts.quant!.calibration!.length) {
      throw new Error(`export: calibration has ${opts.quant!.calibration!.length} conv ranges, the graph quantises ${ops.quantStats.int8} convs (different network or quant options?)`);
    }
    // the float weights of quantised convs are no longer read by any node
    g.pruneUnusedInitializers();
    metadata.precision = precision;
    metadata.quantized_convs = `${ops.quantStats.int8} int8, ${ops.quantStats.fp32} float32`;
    doc += `, ${precision} convolutions`;
  }
  return g.toBytes({ graphName: `strdiffusion_${kind}`, docString: doc, metadata });
}

/**
 * The float32 graph plus two calibration outputs, `cal_min` and `cal_max` (length 2N for the N
 * convs the int8 modes quantise under `quant`): [x0, y0, x1, y1, ...] = the min / max of each such
 * conv's input and output (bias included), reduced in the graph so that no large intermediate
 * tensor leaves onnxruntime. Feed it like the plain graph; `out` is the float32 result.
 */
export function exportCalibrationOnnx(kind: NetKind, cfg: NetConfig, weights: StateDict, shape: ExportShape, quant: QuantOptions = {}): { bytes: Uint8Array; convs: number } {
  const g = new GraphBuilder();
  const ops = new SymOps(g, 'fp32', { ...quant, calibration: undefined }, true);
  const out = trace(kind, cfg, weights, shape, g, ops);
  g.output(out, 'out');
  const reduced = new Map<string, { min: Sym; max: Sym }>();
  const red = (s: Sym) => {
    let r = reduced.get(s.name);
    if (!r) {
      r = {
        min: ops.reshape(g.node('ReduceMin', [s.name], [], { keepdims: 0 }), [1]),
        max: ops.reshape(g.node('ReduceMax', [s.name], [], { keepdims: 0 }), [1]),
      };
      reduced.set(s.name, r);
    }
    return r;
  };
  const mins: Sym[] = [];
  const maxs: Sym[] = [];
  for (const t of ops.taps) {
    for (const s of [t.x, t.y]) {
      const r = red(s);
      mins.push(r.min);
      maxs.push(r.max);
    }
  }
  if (mins.length === 0) throw new Error(`export: the ${kind} network has no conv to quantise`);
  // Concat needs >= 2 inputs to be a node; with one conv there are still two values (x, y)
  g.output(ops.concat(mins, 0), 'cal_min');
  g.output(ops.concat(maxs, 0), 'cal_max');
  return { bytes: g.toBytes({ graphName: `strdiffusion_${kind}_calibration` }), convs: ops.taps.length };
}
