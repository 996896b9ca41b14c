/**
 * Training executor: the operator interface on TensorFlow.js tensors (eager, differentiable).
 * Activations stay NCHW as the networks see them; convolutions transpose to NHWC around the tfjs
 * kernel because tfjs' CPU/wasm kernels only implement NHWC.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Conv2dOptions, Ops, ParamStore } from '../nn/ops.js';
import type { StateDict } from '../weights/types.js';
import type { Executor, NetConfig, NetInputs, NetKind, NetRunner } from './types.js';
import type { DiscConfig, UNetConfig } from '../nn/config.js';
import { unetForward } from '../nn/unet.js';
import { discriminatorForward } from '../nn/discriminator.js';
import { isSpectralBuffer } from '../nn/spade.js';
import { powerIteration } from '../nn/spectral.js';

export { powerIteration };
import type { F32Tensor } from '../util/tensor.js';

export type TfBackendName = 'wasm' | 'cpu' | 'tensorflow' | 'webgpu' | 'webgl';

let initialised: Promise<string> | null = null;

/**
 * Select the tfjs backend once per process: wasm (XNNPACK, SIMD) by default, the pure-JS cpu
 * backend as fallback, or any backend the user has installed (e.g. tfjs-node registers
 * 'tensorflow'). STRDIFFUSION_TF_BACKEND overrides the default.
 */
export function initTf(backend?: TfBackendName): Promise<string> {
  if (initialised) return initialised;
  const want = backend ?? (process.env.STRDIFFUSION_TF_BACKEND as TfBackendName | undefined) ?? 'wasm';
  initialised = (async () => {
    if (want === 'wasm') {
      await import('@tensorflow/tfjs-backend-wasm');
      const { registerWasmGradKernels } = await import('./tfjs-wasm-kernels.js');
      registerWasmGradKernels();
    } else if (want === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
    const ok = await tf.setBackend(want);
    if (!ok) {
      await import('@tensorflow/tfjs-backend-cpu');
      await tf.setBackend('cpu');
    }
    await tf.ready();
    return tf.getBackend();
  })();
  return initialised;
}

function pads(p: Conv2dOptions['pad']): [number, number, number, number] {
  if (p === undefined) return [0, 0, 0, 0];
  return typeof p === 'number' ? [p, p, p, p] : p;
}

export class TfOps implements Ops<tf.Tensor> {
  readonly name = 'tfjs';
  shape(x: tf.Tensor): number[] {
    return x.shape;
  }
  constant(data: Float32Array, shape: number[]): tf.Tensor {
    return tf.tensor(data, shape, 'float32');
  }
  scalar(v: number): tf.Tensor {
    return tf.scalar(v, 'float32');
  }
  conv2d(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null, opts: Conv2dOptions = {}): tf.Tensor {
    const [top, left, bottom, right] = pads(opts.pad);
    const stride = opts.stride ?? 1;
    const groups = opts.groups ?? 1;
    const padding: tf.backend_util.ExplicitPadding = [[0, 0], [top, bottom], [left, right], [0, 0]];
    const xh = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
    let y: tf.Tensor4D;
    if (groups === 1) {
      const wh = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D; // OIHW -> HWIO
      y = tf.conv2d(xh, wh, stride, padding);
    } else {
      if (groups !== x.shape[1] || w.shape[0] !== groups) throw new Error('only depthwise grouped convolutions are supported');
      const wh = tf.transpose(w, [2, 3, 0, 1]) as tf.Tensor4D; // [C,1,kh,kw] -> [kh,kw,C,1]
      y = tf.depthwiseConv2d(xh, wh, stride, padding);
    }
    if (b) y = tf.add(y, b) as tf.Tensor4D;
    return tf.transpose(y, [0, 3, 1, 2]);
  }
  linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null): tf.Tensor {
    const y = tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D, false, true);
    return b ? tf.add(y, b) : y;
  }
  matmul(a: tf.Tensor, b: tf.Tensor, ta = false, tb = false): tf.Tensor {
    return tf.matMul(a, b, ta, tb);
  }
  add(a: tf.Tensor, b: tf.Tensor) { return tf.add(a, b); }
  sub(a: tf.Tensor, b: tf.Tensor) { return tf.sub(a, b); }
  mul(a: tf.Tensor, b: tf.Tensor) { return tf.mul(a, b); }
  div(a: tf.Tensor, b: tf.Tensor) { return tf.div(a, b); }
  sqrt(x: tf.Tensor) { return tf.sqrt(x); }
  abs(x: tf.Tensor) { return tf.abs(x); }
  exp(x: tf.Tensor) { return tf.exp(x); }
  sin(x: tf.Tensor) { return tf.sin(x); }
  cos(x: tf.Tensor) { return tf.cos(x); }
  erf(x: tf.Tensor) { return tf.erf(x); }
  sigmoid(x: tf.Tensor) { return tf.sigmoid(x); }
  relu(x: tf.Tensor) { return tf.relu(x); }
  leakyRelu(x: tf.Tensor, alpha: number) { return tf.leakyRelu(x, alpha); }
  softplus(x: tf.Tensor) { return tf.softplus(x); }
  reduceMean(x: tf.Tensor, axes: number[], keepDims: boolean) { return tf.mean(x, axes, keepDims); }
  reduceSum(x: tf.Tensor, axes: number[], keepDims: boolean) { return tf.sum(x, axes, keepDims); }
  softmax(x: tf.Tensor, axis: number): tf.Tensor {
    const r = x.rank;
    const ax = axis < 0 ? axis + r : axis;
    if (ax === r - 1) return tf.softmax(x);
    const perm = [...Array(r).keys()];
    perm[ax] = r - 1;
    perm[r - 1] = ax;
    return tf.transpose(tf.softmax(tf.transpose(x, perm)), perm);
  }
  reshape(x: tf.Tensor, shape: number[]) { return tf.reshape(x, shape); }
  transpose(x: tf.Tensor, perm: number[]) { return tf.transpose(x, perm); }
  concat(xs: tf.Tensor[], axis: number) { return xs.length === 1 ? xs[0]! : tf.concat(xs, axis); }
  slice(x: tf.Tensor, begin: number[], size: number[]) { return tf.slice(x, begin, size); }
  gather(x: tf.Tensor, indices: number[], axis: number): tf.Tensor {
    return tf.gather(x, tf.tensor1d(indices, 'int32'), axis);
  }
  scope<R extends tf.Tensor | tf.Tensor[]>(fn: () => R): R {
    return tf.tidy(fn);
  }
}

/**
 * Parameters as tfjs tensors (variables when trainable). Spectral-norm u, v are plain buffers
 * that a train-mode forward updates in place, as PyTorch does.
 */
let paramSets = 0;

export class TfParams implements ParamStore<tf.Tensor> {
  readonly tensors = new Map<string, tf.Tensor>();
  training = false;
  /** tfjs variable names are global: each parameter set gets its own namespace */
  private readonly ns = `p${paramSets++}`;

  constructor(sd: StateDict, opts: { trainable?: boolean } = {}) {
    for (const [k, v] of sd) {
      const t = tf.tensor(v.data, v.shape, 'float32');
      if (opts.trainable && !isSpectralBuffer(k)) {
        this.tensors.set(k, tf.variable(t, true, `${this.ns}:${k}`));
        t.dispose();
      } else this.tensors.set(k, t);
    }
  }
  has(key: string): boolean {
    return this.tensors.has(key);
  }
  get(key: string): tf.Tensor {
    const t = this.tensors.get(key);
    if (!t) throw new Error(`parameter "${key}" is not loaded`);
    return t;
  }
  variables(): Map<string, tf.Variable> {
    const m = new Map<string, tf.Variable>();
    for (const [k, v] of this.tensors) if (v instanceof tf.Variable) m.set(k, v);
    return m;
  }
  spectralWeight(prefix: string): tf.Tensor {
    const w = this.get(`${prefix}.weight_orig`);
    const rows = w.shape[0]!;
    const wm = tf.reshape(w, [rows, -1]);
    if (this.training) {
      // one power iteration on host values: u and v must not carry gradients (PyTorch computes
      // them under no_grad), and tfjs has no stop-gradient op
      const uKey = `${prefix}.weight_u`;
      const vKey = `${prefix}.weight_v`;
      const { u, v } = powerIteration(w.dataSync() as Float32Array, rows, this.get(uKey).dataSync() as Float32Array);
      this.replace(uKey, tf.tensor1d(u, 'float32'));
      this.replace(vKey, tf.tensor1d(v, 'float32'));
    }
    const u = this.get(`${prefix}.weight_u`);
    const v = this.get(`${prefix}.weight_v`);
    const sigma = tf.sum(tf.mul(u, tf.squeeze(tf.matMul(wm, tf.reshape(v, [-1, 1])), [1])));
    return tf.div(w, sigma);
  }
  private replace(key: string, t: tf.Tensor): void {
    this.tensors.get(key)?.dispose();
    // called inside the blocks' tf.tidy: the new u, v must outlive it
    this.tensors.set(key, tf.keep(t));
  }
  toStateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [k, v] of this.tensors) sd.set(k, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return sd;
  }
  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

export function toTf(x: F32Tensor): tf.Tensor {
  return tf.tensor(x.data, x.shape, 'float32');
}

export async function fromTf(x: tf.Tensor): Promise<F32Tensor> {
  return { shape: [...x.shape], data: (await x.data()) as Float32Array };
}

/** Forward of any of the three networks on tfjs tensors (the same code the ONNX export traces). */
export function tfForward(kind: NetKind, cfg: NetConfig, p: TfParams, inputs: { x: tf.Tensor; mu?: tf.Tensor; S?: tf.Tensor; t: tf.Tensor }): tf.Tensor {
  const ctx = { ops: new TfOps(), p };
  if (kind === 'discriminator') {
    if (!inputs.S) throw new Error('the discriminator needs a structure S');
    return discriminatorForward(ctx, cfg as DiscConfig, inputs.t, inputs.x, inputs.S);
  }
  if (!inputs.mu) throw new Error(`the ${kind} network needs the SDE mean mu`);
  return unetForward(ctx, cfg as UNetConfig, inputs.x, inputs.mu, inputs.t, inputs.S);
}

class TfRunner implements NetRunner {
  constructor(readonly kind: NetKind, private cfg: NetConfig, private params: TfParams) {}
  async run(inputs: NetInputs): Promise<F32Tensor> {
    const out = tf.tidy(() =>
      tfForward(this.kind, this.cfg, this.params, {
        x: toTf(inputs.x),
        mu: inputs.mu && toTf(inputs.mu),
        S: inputs.S && toTf(inputs.S),
        t: tf.tensor1d(inputs.t, 'float32'),
      }),
    );
    const r = await fromTf(out);
    out.dispose();
    return r;
  }
  dispose(): void {
    this.params.dispose();
  }
}

export class TfjsExecutor implements Executor {
  readonly name = 'tfjs';
  constructor(private backend?: TfBackendName) {}
  async createRunner(kind: NetKind, cfg: NetConfig, weights: StateDict): Promise<NetRunner> {
    await initTf(this.backend);
    return new TfRunner(kind, cfg, new TfParams(weights));
  }
}
