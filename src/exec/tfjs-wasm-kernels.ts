/**
 * Gradient kernels for tfjs-backend-wasm 4.22 (architecture.md): it has no Conv2DBackpropFilter,
 * no depthwise backprop kernels and no UnsortedSegmentSum (the gradient of gather, used by the
 * U-Net's nearest upsampling), and its Conv2DBackpropInput is a scalar loop. Each convolution
 * gradient here is rewritten as a forward convolution (or a matmul for 1x1 kernels) so that
 * XNNPACK runs it; the pieces are the backend's own kernels, called directly on TensorInfos.
 */
import * as tf from '@tensorflow/tfjs-core';
// the package registers its own kernels on import; it must come first so that ours replace them
import '@tensorflow/tfjs-backend-wasm';
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';

const BACKEND = 'wasm';

/** The subset of BackendWasm these kernels use (the class is not exported as a type we can rely on). */
interface WasmBackendLike {
  disposeData(dataId: object, force?: boolean): boolean;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): backend_util.TypedArray;
}

/** Runs backend kernels and frees every intermediate except what `keep` returns. */
class KernelScope {
  private readonly made: TensorInfo[] = [];
  constructor(readonly backend: WasmBackendLike) {}
  run(name: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
    const k = tf.getKernel(name, BACKEND);
    if (!k) throw new Error(`wasm gradient kernels: backend kernel ${name} is missing`);
    const out = k.kernelFunc({ inputs, attrs, backend: this.backend as never }) as TensorInfo;
    this.made.push(out);
    return out;
  }
  /** take ownership of an output made outside `run` */
  track(t: TensorInfo): TensorInfo {
    this.made.push(t);
    return t;
  }
  transpose(x: TensorInfo, perm: number[]) { return this.run('Transpose', { x }, { perm }); }
  reshape(x: TensorInfo, shape: number[]) { return this.run('Reshape', { x }, { shape }); }
  slice(x: TensorInfo, begin: number[], size: number[]) { return this.run('Slice', { x }, { begin, size }); }
  pad(x: TensorInfo, paddings: [number, number][]) { return this.run('PadV2', { x }, { paddings, constantValue: 0 }); }
  /** finish: dispose all intermediates but `result` */
  keep(result: TensorInfo): TensorInfo {
    for (const t of this.made) if (t !== result) this.backend.disposeData(t.dataId);
    return result;
  }
  fail(e: unknown): never {
    for (const t of this.made) this.backend.disposeData(t.dataId);
    throw e;
  }
}

function guarded(backend: unknown, f: (s: KernelScope) => TensorInfo): TensorInfo {
  const s = new KernelScope(backend as WasmBackendLike);
  try {
    return s.keep(f(s));
  } catch (e) {
    return s.fail(e);
  }
}

/**
 * Bring one spatial axis of x to `want` = lo + len + hi elements: zero-pad where lo/hi > 0 and
 * crop where they are negative (rows a strided convolution never reads, or never writes).
 */
function padOrCrop(s: KernelScope, x: TensorInfo, axis: 1 | 2, lo: number, hi: number): { x: TensorInfo; lo: number; hi: number } {
  if (lo >= 0 && hi >= 0) return { x, lo, hi };
  const begin = [0, 0, 0, 0];
  const size = [...x.shape];
  if (lo < 0) {
    begin[axis] = -lo;
    size[axis] = size[axis]! + lo;
    lo = 0;
  }
  if (hi < 0) {
    size[axis] = size[axis]! + hi;
    hi = 0;
  }
  return { x: s.slice(x, begin, size), lo, hi };
}

/** Zero-insert (stride − 1) zeros after every element along H and W: [B,h,w,C] -> [B,h*sh,w*sw,C]. */
function dilateZeros(s: KernelScope, dy: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [B, h, w, C] = dy.shape as [number, number, number, number];
  const r = s.reshape(dy, [B, h, 1, w, 1, C]);
  const p = s.pad(r, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  return s.reshape(p, [B, h * sh, w * sw, C]);
}

function convInfo(xShape: number[], filterShape: number[], attrs: NamedAttrMap | undefined, depthwise: boolean): backend_util.Conv2DInfo {
  const a = (attrs ?? {}) as unknown as { strides: number | [number, number]; pad: backend_util.PadInfo['type'] | number | backend_util.ExplicitPadding; dimRoundingMode?: 'floor' | 'round' | 'ceil'; dataFormat?: 'NHWC' | 'NCHW'; dilations?: number | [number, number] };
  if (a.dataFormat !== undefined && a.dataFormat !== 'NHWC') throw new Error('wasm gradient kernels: only NHWC');
  const dil = a.dilations ?? 1;
  if (!(dil === 1 || (Array.isArray(dil) && dil[0] === 1 && dil[1] === 1))) throw new Error('wasm gradient kernels: dilated convolutions are not supported');
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    a.strides, 1, a.pad as never, a.dimRoundingMode, depthwise, 'channelsLast',
  );
}

/** filter [fh,fw,…] with both spatial axes reversed: block copies (the wasm Reverse kernel is slow) */
function flipHW(s: KernelScope, w: TensorInfo): TensorInfo {
  const [fh, fw] = w.shape as [number, number];
  const blk = w.shape.slice(2).reduce((p, d) => p * d, 1);
  const out = s.backend.makeOutput([...w.shape], w.dtype);
  s.track(out);
  const src = s.backend.typedArrayFromHeap(w);
  const dst = s.backend.typedArrayFromHeap(out);
  for (let a = 0; a < fh; a++) {
    for (let b = 0; b < fw; b++) {
      const from = ((fh - 1 - a) * fw + (fw - 1 - b)) * blk;
      dst.set(src.subarray(from, from + blk), (a * fw + b) * blk);
    }
  }
  return out;
}

/**
 * Input gradient of a (depthwise) convolution as a stride-1 convolution of the zero-dilated,
 * padded dy with the spatially flipped filter (channels transposed for a regular conv).
 */
function backpropInput(s: KernelScope, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo, depthwise: boolean): TensorInfo {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Ci, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const Co = dy.shape[3]!;
  if (!depthwise && fh === 1 && fw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0 && OH === H && OW === W) {
    const a = s.reshape(dy, [1, B * H * W, Co]);
    const f = s.transpose(s.reshape(filter, [1, Ci, Co]), [0, 2, 1]);
    return s.reshape(s.run('BatchMatMul', { a, b: f }, { transposeA: false, transposeB: false }), [B, H, W, Ci]);
  }
  let d = dilateZeros(s, dy, sh, sw);
  const ptop = fh - 1 - top;
  const pleft = fw - 1 - left;
  let v = padOrCrop(s, d, 1, ptop, H + fh - 1 - ptop - d.shape[1]!);
  d = v.x;
  const rows: [number, number] = [v.lo, v.hi];
  v = padOrCrop(s, d, 2, pleft, W + fw - 1 - pleft - d.shape[2]!);
  d = v.x;
  const cols: [number, number] = [v.lo, v.hi];
  const flipped = flipHW(s, filter);
  const pad: backend_util.ExplicitPadding = [[0, 0], rows, cols, [0, 0]];
  if (depthwise) {
    if (filter.shape[3] !== 1) throw new Error('wasm DepthwiseConv2dNativeBackpropInput: only channel multiplier 1');
    return s.run('DepthwiseConv2dNative', { x: d, filter: flipped }, { strides: [1, 1], pad, dilations: [1, 1] });
  }
  const wT = s.transpose(flipped, [0, 1, 3, 2]); // [fh, fw, Co, Ci]
  return s.run('Conv2D', { x: d, filter: wT }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] });
}

/**
 * Filter gradient as a forward convolution: the input with batch and channels swapped,
 * convolved with dy as the filter at dilation = stride (regular conv); for a depthwise conv the
 * batch goes into the channels of a batch-1 depthwise convolution and is summed afterwards.
 */
function backpropFilter(s: KernelScope, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo, depthwise: boolean): TensorInfo {
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: Ci, outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const Co = dy.shape[3]!;
  if (!depthwise && fh === 1 && fw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0 && OH === H && OW === W) {
    const a = s.reshape(x, [1, B * H * W, Ci]);
    const b = s.reshape(dy, [1, B * H * W, Co]);
    // The backend's transposed-A matmul is fast only when A is the narrower operand (measured:
    // N = 16384, Ci 128 → Co 8: 36 ms as xᵀ·dy, 1.9 ms as (dyᵀ·x)ᵀ; the reverse for Ci 8 → Co 384).
    if (Ci <= Co) return s.reshape(s.run('BatchMatMul', { a, b }, { transposeA: true, transposeB: false }), [1, 1, Ci, Co]);
    const g = s.run('BatchMatMul', { a: b, b: a }, { transposeA: true, transposeB: false }); // [1, Co, Ci]
    return s.reshape(s.transpose(s.reshape(g, [Co, Ci]), [1, 0]), [1, 1, Ci, Co]);
  }
  // rows the last output reads: -top .. -top + fh-1 + (OH-1)*sh
  let xx = x;
  let v = padOrCrop(s, xx, 1, top, fh - 1 + (OH - 1) * sh - top - (H - 1));
  xx = v.x;
  const rows: [number, number] = [v.lo, v.hi];
  v = padOrCrop(s, xx, 2, left, fw - 1 + (OW - 1) * sw - left - (W - 1));
  xx = v.x;
  const cols: [number, number] = [v.lo, v.hi];
  const [, Hc, Wc] = xx.shape as [number, number, number, number];
  const pad: backend_util.ExplicitPadding = [[0, 0], rows, cols, [0, 0]];
  if (depthwise) {
    const C = Ci;
    if (Co !== C) throw new Error('wasm DepthwiseConv2dNativeBackpropFilter: only channel multiplier 1');
    const xb = s.reshape(s.transpose(xx, [1, 2, 0, 3]), [1, Hc, Wc, B * C]);
    const f = s.reshape(s.transpose(dy, [1, 2, 0, 3]), [OH, OW, B * C, 1]);
    const g = s.run('DepthwiseConv2dNative', { x: xb, filter: f }, { strides: [1, 1], pad, dilations: [sh, sw] });
    const summed = s.run('Sum', { x: s.reshape(g, [fh, fw, B, C]) }, { axis: [2], keepDims: false });
    return s.reshape(summed, [fh, fw, C, 1]);
  }
  const xT = s.transpose(xx, [3, 1, 2, 0]); // [Ci, H, W, B]
  const f = s.transpose(dy, [1, 2, 0, 3]); // [OH, OW, B, Co]
  const g = s.run('Conv2D', { x: xT, filter: f }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [sh, sw] }); // [Ci, fh, fw, Co]
  return s.transpose(g, [1, 2, 0, 3]);
}

const conv2DBackpropInput: KernelConfig = {
  kernelName: 'Conv2DBackpropInput',
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => guarded(backend, (s) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const info = convInfo((attrs as { inputShape: number[] }).inputShape, filter.shape, attrs, false);
    return backpropInput(s, dy, filter, info, false);
  }),
};

const conv2DBackpropFilter: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => guarded(backend, (s) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const info = convInfo(x.shape, (attrs as { filterShape: number[] }).filterShape, attrs, false);
    return backpropFilter(s, x, dy, info, false);
  }),
};

const depthwiseBackpropInput: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropInput',
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => guarded(backend, (s) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const info = convInfo((attrs as { inputShape: number[] }).inputShape, filter.shape, attrs, true);
    return backpropInput(s, dy, filter, info, true);
  }),
};

const depthwiseBackpropFilter: KernelConfig = {
  kernelName: 'DepthwiseConv2dNativeBackpropFilter',
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => guarded(backend, (s) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const info = convInfo(x.shape, (attrs as { filterShape: number[] }).filterShape, attrs, true);
    return backpropFilter(s, x, dy, info, true);
  }),
};

/** out[s, ...] = Σ_{i : ids[i] = s} x[i, ...]; ids cover the leading dims of x (ids outside [0, n) are dropped, as in TF). */
const unsortedSegmentSum: KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: BACKEND,
  kernelFunc: ({ inputs, attrs, backend }) => {
    const b = backend as unknown as WasmBackendLike;
    const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const n = (attrs as { numSegments: number }).numSegments;
    const lead = segmentIds.shape.reduce((a, d) => a * d, 1);
    const inner = lead === 0 ? 0 : x.shape.slice(segmentIds.shape.length).reduce((a, d) => a * d, 1);
    const out = b.makeOutput([n, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
    // views after makeOutput: allocating may grow (and detach) the wasm heap
    const xv = b.typedArrayFromHeap(x);
    const ids = b.typedArrayFromHeap(segmentIds);
    const ov = b.typedArrayFromHeap(out);
    ov.fill(0);
    for (let i = 0; i < lead; i++) {
      const sgi = ids[i]!;
      if (sgi < 0 || sgi >= n) continue;
      const o = sgi * inner;
      const src = i * inner;
      for (let k = 0; k < inner; k++) ov[o + k] = ov[o + k]! + xv[src + k]!;
    }
    return out;
  },
};

/**
 * Slice: the wasm backend's own kernel copies the whole input out of the heap and, above rank 4,
 * walks it element by element (seconds for the attention's 5-D q/k/v split). This one copies
 * contiguous runs straight between heap views.
 */
function fastSlice(orig: KernelConfig | undefined): KernelConfig {
  return {
    kernelName: 'Slice',
    backendName: BACKEND,
    setupFunc: orig?.setupFunc,
    disposeFunc: orig?.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, attrs, backend } = args;
      const x = (inputs as { x: TensorInfo }).x;
      if (x.dtype === 'string' && orig) return orig.kernelFunc(args);
      const b = backend as unknown as WasmBackendLike;
      const a = attrs as { begin: number | number[]; size?: number | number[] };
      const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, a.begin, a.size);
      const out = b.makeOutput(size, x.dtype);
      const n = size.reduce((p, d) => p * d, 1);
      if (n === 0) return out;
      const shape = x.shape;
      const rank = shape.length;
      const strides = new Array<number>(rank);
      let acc = 1;
      for (let j = rank - 1; j >= 0; j--) {
        strides[j] = acc;
        acc *= shape[j]!;
      }
      // the innermost axes taken whole form one contiguous run together with the next axis' span
      let k = rank - 1;
      while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
      const run = size[k]! * strides[k]!;
      const xv = b.typedArrayFromHeap(x);
      const ov = b.typedArrayFromHeap(out);
      const idx = new Array<number>(k).fill(0);
      let dst = 0;
      for (;;) {
        let src = begin[k]! * strides[k]!;
        for (let j = 0; j < k; j++) src += (begin[j]! + idx[j]!) * strides[j]!;
        ov.set(xv.subarray(src, src + run), dst);
        dst += run;
        let j = k - 1;
        while (j >= 0) {
          if (++idx[j]! < size[j]!) break;
          idx[j] = 0;
          j--;
        }
        if (j < 0) break;
      }
      return out;
    },
  };
}

/**
 * BatchMatMul: the wasm backend is fast (XNNPACK) only for a single matrix product without
 * transposes; batched products (the linear attention's [B·heads, 32, N] contractions) and
 * transposed operands run 4-20x slower. Here the operands are transposed explicitly (the
 * Transpose kernel is fast) and each batch entry goes through the fast path.
 */
function fastBatchMatMul(orig: KernelConfig): KernelConfig {
  return {
    kernelName: 'BatchMatMul',
    backendName: BACKEND,
    // the original's setup binds its wasm function; it must still run at setBackend
    setupFunc: orig.setupFunc,
    disposeFunc: orig.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, attrs, backend } = args;
      const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
      const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
      const outer = (t: TensorInfo) => t.shape.slice(0, -2);
      const batchA = outer(a).reduce((p, d) => p * d, 1);
      const batchB = outer(b).reduce((p, d) => p * d, 1);
      if (a.dtype !== 'float32' || b.dtype !== 'float32' || (batchA <= 1 && batchB <= 1 && !transposeA && !transposeB)) return orig.kernelFunc(args);
      if (batchA !== batchB && batchA !== 1 && batchB !== 1) return orig.kernelFunc(args);
      return guarded(backend, (s) => {
        const be = s.backend;
        const ra = a.shape.length;
        const rb = b.shape.length;
        const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
        const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
        let a3 = s.reshape(a, [batchA, a.shape[ra - 2]!, a.shape[ra - 1]!]);
        if (transposeA) a3 = s.transpose(a3, [0, 2, 1]);
        let b3 = s.reshape(b, [batchB, b.shape[rb - 2]!, b.shape[rb - 1]!]);
        if (transposeB) b3 = s.transpose(b3, [0, 2, 1]);
        const batch = Math.max(batchA, batchB);
        const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(outer(a), outer(b)), M, N];
        const out = be.makeOutput(outShape, 'float32');
        for (let i = 0; i < batch; i++) {
          const ai = batchA === 1 ? a3 : sliceInfo(be, a3, i);
          const bi = batchB === 1 ? b3 : sliceInfo(be, b3, i);
          const r = orig.kernelFunc({ inputs: { a: ai, b: bi }, attrs: { transposeA: false, transposeB: false }, backend: be as never }) as TensorInfo;
          be.typedArrayFromHeap(out).set(be.typedArrayFromHeap(r), i * M * N);
          be.disposeData(r.dataId);
          if (ai !== a3) be.disposeData(ai.dataId);
          if (bi !== b3) be.disposeData(bi.dataId);
        }
        return out;
      });
    },
  };
}

/** entry i of a [n, r, c] tensor as a [1, r, c] tensor (a copy) */
function sliceInfo(b: WasmBackendLike, x: TensorInfo, i: number): TensorInfo {
  const [, r, c] = x.shape as [number, number, number];
  const out = b.makeOutput([1, r, c], x.dtype);
  b.typedArrayFromHeap(out).set(b.typedArrayFromHeap(x).subarray(i * r * c, (i + 1) * r * c));
  return out;
}

export const WASM_GRAD_KERNELS: readonly KernelConfig[] = [
  conv2DBackpropInput, conv2DBackpropFilter, depthwiseBackpropInput, depthwiseBackpropFilter, unsortedSegmentSum,
];

let registered = false;

/** Register (or replace) the kernels above for the wasm backend, plus the faster Slice and BatchMatMul; idempotent. */
export function registerWasmGradKernels(): void {
  registerTfGradients();
  if (registered) return;
  registered = true;
  const origBmm = tf.getKernel('BatchMatMul', BACKEND);
  const replaced = [...WASM_GRAD_KERNELS, fastSlice(tf.getKernel('Slice', BACKEND))];
  if (origBmm) replaced.push(fastBatchMatMul(origBmm));
  for (const k of replaced) {
    if (tf.getKernel(k.kernelName, BACKEND)) tf.unregisterKernel(k.kernelName, BACKEND);
    tf.registerKernel(k);
  }
}

// ---- gradients ---------------------------------------------------------------------------------
//
// tfjs-core's Node bundle (the `main` entry every import here resolves to) registers no gradient
// functions: they live only in its ESM `dist/gradients/*.js`, whose extension-less imports Node
// cannot load. So `tf.grads`/`tf.variableGrads` fail with "gradient function not found" unless the
// project registers them. These cover every kernel on the networks' and losses' backward paths,
// with PyTorch's conventions where they differ from tfjs' (|x|' = sign(x), 0 at 0).

type GradFn = (dy: tf.Tensor, saved: tf.Tensor[], attrs: NamedAttrMap) => Record<string, () => tf.Tensor> | (() => tf.Tensor)[];

function unbroadcast(g: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, outShape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

function binary(name: string, da: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor, db: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor): tf.GradConfig {
  return {
    kernelName: name,
    inputsToSave: ['a', 'b'],
    gradFunc: ((dy, [a, b]) => {
      const out = tf.broadcast_util.assertAndGetBroadcastShape(a!.shape, b!.shape);
      return { a: () => unbroadcast(da(dy, a!, b!), a!.shape, out), b: () => unbroadcast(db(dy, a!, b!), b!.shape, out) };
    }) as GradFn as never,
  };
}

function unaryX(name: string, f: (dy: tf.Tensor, x: tf.Tensor, attrs: NamedAttrMap) => tf.Tensor): tf.GradConfig {
  return { kernelName: name, inputsToSave: ['x'], gradFunc: ((dy, [x], attrs) => ({ x: () => f(dy, x!, attrs) })) as GradFn as never };
}

function unaryY(name: string, f: (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor, input = 'x'): tf.GradConfig {
  return { kernelName: name, outputsToSave: [true], gradFunc: ((dy, [y]) => ({ [input]: () => f(dy, y!) })) as GradFn as never };
}

function reduceGrad(name: string, mean: boolean): tf.GradConfig {
  return unaryX(name, (dy, x, attrs) => {
    const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
    const shape = x.shape.slice();
    let n = 1;
    for (const a of axes) {
      n *= shape[a]!;
      shape[a] = 1;
    }
    const g = tf.mul(tf.reshape(dy, shape), tf.ones(x.shape, 'float32'));
    return mean ? tf.div(g, n) : g;
  });
}

const GRADS: tf.GradConfig[] = [
  binary('Add', (dy) => dy, (dy) => dy),
  binary('Sub', (dy) => dy, (dy) => tf.neg(dy)),
  binary('Multiply', (dy, _a, b) => tf.mul(dy, b), (dy, a) => tf.mul(dy, a)),
  binary('RealDiv', (dy, _a, b) => tf.div(dy, b), (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))),
  binary('Maximum', (dy, a, b) => tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')), (dy, a, b) => tf.mul(dy, tf.cast(tf.less(a, b), 'float32'))),
  unaryX('Neg', (dy) => tf.neg(dy)),
  unaryX('Abs', (dy, x) => tf.mul(dy, tf.sign(x))),
  unaryX('Square', (dy, x) => tf.mul(dy, tf.mul(x, 2))),
  unaryX('Sqrt', (dy, x) => tf.div(dy, tf.mul(tf.sqrt(x), 2))),
  unaryY('Exp', (dy, y) => tf.mul(dy, y)),
  unaryX('Sin', (dy, x) => tf.mul(dy, tf.cos(x))),
  unaryX('Cos', (dy, x) => tf.mul(dy, tf.neg(tf.sin(x)))),
  unaryX('Erf', (dy, x) => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI)))),
  unaryY('Sigmoid', (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  unaryX('Relu', (dy, x) => tf.mul(dy, tf.step(x))),
  unaryX('LeakyRelu', (dy, x, attrs) => tf.where(tf.greater(x, 0), dy, tf.mul(dy, attrs.alpha as number))),
  unaryX('Softplus', (dy, x) => tf.mul(dy, tf.sigmoid(x))),
  unaryX('Identity', (dy) => dy),
  unaryX('Cast', (dy) => dy),
  unaryX('Reshape', (dy, x) => tf.reshape(dy, x.shape)),
  reduceGrad('Sum', false),
  reduceGrad('Mean', true),
  unaryY('Softmax', (dy, y) => {
    const dyy = tf.mul(dy, y);
    return tf.sub(dyy, tf.mul(tf.sum(dyy, -1, true), y));
  }, 'logits'),
  {
    kernelName: 'Transpose',
    gradFunc: ((dy, _s, attrs) => ({ x: () => tf.transpose(dy, tf.backend_util.getUndoAxesPermutation(attrs.perm as number[])) })) as GradFn as never,
  },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: ((dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0]!.shape)[0]!;
      const parts = tf.split(dy, saved.map((t) => t.shape[axis]!), axis);
      return parts.map((p) => () => p);
    }) as GradFn as never,
  },
  unaryX('Slice', (dy, x, attrs) => {
    const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]);
    return tf.pad(dy, x.shape.map((d, i) => [begin[i]!, d - begin[i]! - size[i]!] as [number, number]));
  }),
  unaryX('PadV2', (dy, x, attrs) => tf.slice(dy, (attrs.paddings as [number, number][]).map((p) => p[0]), x.shape)),
  {
    kernelName: 'GatherV2',
    inputsToSave: ['x', 'indices'],
    gradFunc: ((dy, [x, indices], attrs) => {
      if ((attrs.batchDims as number | undefined) && attrs.batchDims !== 0) throw new Error('GatherV2 gradient: batchDims is not supported');
      const axis = tf.util.parseAxisParam(attrs.axis as number, x!.shape)[0]!;
      return {
        x: () => {
          const outer = x!.shape.slice(0, axis);
          const inner = x!.shape.slice(axis + 1);
          const n = indices!.size;
          const values = tf.reshape(dy, [...outer, n, ...inner]);
          const perm = [outer.length, ...outer.map((_, i) => i), ...inner.map((_, i) => outer.length + 1 + i)];
          const summed = tf.unsortedSegmentSum(tf.transpose(values, perm), tf.reshape(indices!, [n]) as tf.Tensor1D, x!.shape[axis]!);
          return tf.transpose(summed, tf.backend_util.getUndoAxesPermutation(perm));
        },
        indices: () => indices!,
      };
    }) as GradFn as never,
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: ((dy, [a, b], attrs) => {
      const ta = attrs.transposeA as boolean;
      const tb = attrs.transposeB as boolean;
      if (!ta && !tb) return { a: () => tf.matMul(dy, b!, false, true), b: () => tf.matMul(a!, dy, true, false) };
      if (!ta && tb) return { a: () => tf.matMul(dy, b!, false, false), b: () => tf.matMul(dy, a!, true, false) };
      if (ta && !tb) return { a: () => tf.matMul(b!, dy, false, true), b: () => tf.matMul(a!, dy, false, false) };
      return { a: () => tf.matMul(b!, dy, true, true), b: () => tf.matMul(dy, a!, true, true) };
    }) as GradFn as never,
  },
  {
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: ((dy, [x, filter], attrs) => {
      const d = attrs.dilations as number | number[] | undefined;
      if (d !== undefined && !(d === 1 || (Array.isArray(d) && d.every((v) => v === 1)))) throw new Error('Conv2D gradient: dilations are not supported');
      const { strides, pad, dataFormat, dimRoundingMode } = attrs;
      return {
        x: () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: filter! }, { strides, pad, dataFormat, dimRoundingMode, inputShape: x!.shape } as never) as tf.Tensor,
        filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x: x!, dy }, { strides, pad, dataFormat, dimRoundingMode, filterShape: filter!.shape } as never) as tf.Tensor,
      };
    }) as GradFn as never,
  },
  {
    kernelName: 'DepthwiseConv2dNative',
    inputsToSave: ['x', 'filter'],
    gradFunc: ((dy, [x, filter], attrs) => {
      const { strides, pad, dimRoundingMode } = attrs;
      const dilations = (attrs.dilations as number | [number, number] | undefined) ?? [1, 1];
      if (!(dilations === 1 || (Array.isArray(dilations) && dilations.every((v) => v === 1)))) throw new Error('DepthwiseConv2dNative gradient: dilations are not supported');
      return {
        x: () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: filter! }, { strides, pad, dilations, dimRoundingMode, inputShape: x!.shape } as never) as tf.Tensor,
        filter: () => tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x: x!, dy }, { strides, pad, dilations, dimRoundingMode, filterShape: filter!.shape } as never) as tf.Tensor,
      };
    }) as GradFn as never,
  },
];

let gradsRegistered = false;

/** Register the gradient functions above on every backend (idempotent; keeps any already registered). */
export function registerTfGradients(): void {
  if (gradsRegistered) return;
  gradsRegistered = true;
  for (const g of GRADS) if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
}
