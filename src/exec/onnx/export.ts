/**
 * ONNX export of the three networks: the network code in src/nn runs once on symbolic tensors
 * (./graph.ts) for one concrete (batch, height, width), with the weights as initializers.
 */
import type { DiscConfig, UNetConfig } from '../../nn/config.js';
import { unetForward } from '../../nn/unet.js';
import { discriminatorForward } from '../../nn/discriminator.js';
import type { StateDict } from '../../weights/types.js';
import type { NetConfig, NetKind } from '../types.js';
import { GraphBuilder, OPSET, SymOps, SymParams, type Precision, type QuantOptions, type Sym } from './graph.js';

export type { Precision, QuantOptions } from './graph.js';

export interface ExportOptions {
  /**
   * 'fp32' (default): the float32 graph. 'int8': convolutions with constant weights and groups = 1
   * dynamically quantised (int8 per-channel weights, uint8 per-tensor activations at run time).
   */
  precision?: Precision;
  quant?: QuantOptions;
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

/** Serialised ONNX ModelProto of one network for one input size. */
export function exportOnnx(kind: NetKind, cfg: NetConfig, weights: StateDict, shape: ExportShape, opts: ExportOptions = {}): Uint8Array {
  const desc = describeModel(kind, cfg, shape);
  const precision = opts.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'int8') throw new Error(`export: unknown precision "${precision}" (expected fp32 or int8)`);
  const g = new GraphBuilder();
  const ctx = { ops: new SymOps(g, precision, opts.quant), p: new SymParams(weights, g) };
  const ins = new Map<string, Sym>(desc.inputs.map((d) => [d.name, g.input(d.name, d.shape)]));
  const out =
    kind === 'discriminator'
      ? discriminatorForward(ctx, cfg as DiscConfig, ins.get('t')!, ins.get('y')!, ins.get('S')!)
      : unetForward(ctx, cfg as UNetConfig, ins.get('x')!, ins.get('mu')!, ins.get('t')!, ins.get('S'));
  const want = desc.outputs[0]!.shape;
  if (out.shape.length !== want.length || out.shape.some((d, i) => d !== want[i])) {
    throw new Error(`export: ${kind} network traced to output [${out.shape}], expected [${want}]`);
  }
  g.output(out, 'out');
  const metadata: Record<string, string> = { kind, config: JSON.stringify(cfg), inputs: desc.inputs.map((d) => d.name).join(',') };
  let doc = `StrDiffusion ${kind} network, batch ${shape.batch}, ${shape.height}x${shape.width}`;
  if (precision !== 'fp32') {
    // the float weights of quantised convs are no longer read by any node
    g.pruneUnusedInitializers();
    metadata.precision = precision;
    metadata.quantized_convs = `${ctx.ops.quantStats.int8} int8, ${ctx.ops.quantStats.fp32} float32`;
    doc += `, ${precision} convolutions`;
  }
  return g.toBytes({ graphName: `strdiffusion_${kind}`, docString: doc, metadata });
}
