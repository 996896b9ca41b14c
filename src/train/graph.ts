/**
 * The training graph of one network for one (batch, crop size): the official objective traced on
 * symbolic tensors with the parameters as graph inputs, then differentiated by ./autodiff. Inputs:
 * every trainable parameter (official state_dict key), the spectral-norm vectors u, v (after the
 * host's train-mode power iteration), the batch tensors and the per-sample SDE coefficients.
 * Outputs: `loss`, the objective's auxiliary tensors (`aux0`…) and `grad:<key>` per parameter.
 */
import type { NetConfig, NetKind } from '../exec/types.js';
import type { ParamStore } from '../nn/ops.js';
import type { UNetConfig } from '../nn/config.js';
import { isSpectralBuffer } from '../nn/spade.js';
import { objective, type ObjectiveTensors } from './loss-ops.js';
import { GraphBuilder, type Sym } from '../exec/onnx/builder.js';
import { SymOps } from '../exec/onnx/tracer.js';
import { appendGradients } from '../exec/onnx/autodiff.js';
import { blockConvs } from '../exec/onnx/nchwc.js';

/** Parameters as graph inputs, created on first use; spectral weights W/σ with σ = uᵀWv in the graph. */
class InputParams implements ParamStore<Sym> {
  readonly used = new Map<string, Sym>();
  constructor(private readonly shapes: ReadonlyMap<string, readonly number[]>, private readonly g: GraphBuilder, private readonly ops: SymOps) {}
  has(key: string): boolean {
    return this.shapes.has(key);
  }
  get(key: string): Sym {
    let s = this.used.get(key);
    if (!s) {
      const shape = this.shapes.get(key);
      if (!shape) throw new Error(`parameter "${key}" is not in the network`);
      s = this.g.input(key, [...shape]);
      this.used.set(key, s);
    }
    return s;
  }
  spectralWeight(prefix: string): Sym {
    // PyTorch's spectral_norm: σ = u · (W_mat v) with u, v fixed (computed under no_grad), the
    // gradient flowing through W in both W and σ
    const { ops } = this;
    const w = this.get(`${prefix}.weight_orig`);
    const u = this.get(`${prefix}.weight_u`);
    const v = this.get(`${prefix}.weight_v`);
    const rows = w.shape[0]!;
    const cols = w.shape.slice(1).reduce((a, b) => a * b, 1);
    const wv = ops.reshape(ops.matmul(ops.reshape(w, [rows, cols]), ops.reshape(v, [cols, 1])), [rows]);
    const sigma = ops.reduceSum(ops.mul(u, wv), [0], false);
    return ops.div(w, sigma);
  }
}

export interface TrainGraphShape {
  batch: number;
  height: number;
  width: number;
}

export interface TrainGraph {
  bytes: Uint8Array;
  /** trainable parameters fed as inputs, in graph order */
  params: string[];
  /** the parameters on the loss' path: each has an output `grad:<key>` (the others' gradient is zero) */
  grads: string[];
  /** spectral-norm buffers fed as inputs */
  buffers: string[];
  /** the data inputs and their shapes */
  data: Map<string, number[]>;
  /** names of the auxiliary outputs (`aux0`, …) */
  aux: string[];
}

/** The data inputs of each objective (NCHW; coefficients [B,1,1,1]). */
function dataInputs(kind: NetKind, cfg: NetConfig, s: TrainGraphShape): Map<string, number[]> {
  const { batch: B, height: H, width: W } = s;
  const m = new Map<string, number[]>([['t', [B]], ['mask', [B, 1, H, W]]]);
  const c = kind === 'structure' ? (cfg as UNetConfig).inNc : 3;
  m.set('state', [B, c, H, W]);
  m.set('target', [B, c, H, W]);
  // an unguided (IR-SDE) texture network has no S input
  if (kind === 'discriminator' || (kind === 'texture' && (cfg as UNetConfig).spade)) m.set('S', [B, 1, H, W]);
  if (kind === 'discriminator') m.set('anchor', [B, c, H, W]);
  else if ((cfg as UNetConfig).prediction === 'x0') {
    m.set('mu', [B, c, H, W]);
    m.set('clean', [B, c, H, W]);
    m.delete('target');
  } else {
    m.set('mu', [B, c, H, W]);
    for (const k of ['theta', 'sigma2', 'sigmaBar']) m.set(k, [B, 1, 1, 1]);
  }
  return m;
}

/**
 * Trace the objective of `kind` and append its gradients. `paramShapes` is the network's
 * state_dict layout (key → shape); `dt` the SDE's step (a constant of the graph).
 */
export function buildTrainGraph(
  kind: NetKind, cfg: NetConfig, paramShapes: ReadonlyMap<string, readonly number[]>, shape: TrainGraphShape, dt: number,
  opts: { nchwcBlockSize?: number } = {},
): TrainGraph {
  const g = new GraphBuilder();
  const ops = new SymOps(g, 'fp32');
  const p = new InputParams(paramShapes, g, ops);
  const data = dataInputs(kind, cfg, shape);
  const ins = new Map<string, Sym>([...data].map(([k, s]) => [k, g.input(k, s)]));
  const x: ObjectiveTensors<Sym> = {
    t: ins.get('t')!,
    mask: ins.get('mask')!,
    state: ins.get('state')!,
    target: ins.get('target') ?? ins.get('clean')!,
    mu: ins.get('mu'),
    S: ins.get('S'),
    anchor: ins.get('anchor'),
    clean: ins.get('clean'),
    coefs: kind === 'discriminator' || !ins.has('theta') ? undefined : { theta: ins.get('theta')!, sigma2: ins.get('sigma2')!, sigmaBar: ins.get('sigmaBar')!, dt },
  };
  const out = objective({ ops, p }, kind, cfg, x);
  const params = [...p.used.keys()].filter((k) => !isSpectralBuffer(k));
  const buffers = [...p.used.keys()].filter(isSpectralBuffer);
  const { grads } = appendGradients(g, out.loss, params);
  g.output(out.loss, 'loss');
  const aux = out.aux.map((a, i) => {
    g.output(a, `aux${i}`);
    return `aux${i}`;
  });
  const withGrad = params.filter((k) => grads.has(k));
  for (const k of withGrad) g.output(grads.get(k)!, `grad:${k}`);
  // onnxruntime-CPU only: blocked convs (see ../exec/onnx/nchwc.ts); the plain graph is what other providers run
  blockConvs(g, opts.nchwcBlockSize ?? 1);
  return { bytes: g.toBytes({ graphName: `strdiffusion_${kind}_train` }), params, grads: withGrad, buffers, data, aux };
}
