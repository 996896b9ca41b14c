/**
 * Blocked-layout convolutions for training graphs on onnxruntime's CPU provider.
 *
 * onnxruntime runs a Conv fastest in its NCHWc layout (channels in blocks of 8 or 16, a direct
 * kernel instead of im2col + GEMM), but its optimiser only switches a Conv to it when the weight is
 * a constant: never in a training graph, where weights are inputs. This pass does the switch
 * itself: ReorderInput → com.microsoft.nchwc Conv → ReorderOutput, with the weight put into the
 * blocked filter layout by Reshape/Transpose in the graph (weights are small). A stride-1
 * ConvTranspose (the input gradient of a conv) becomes the same blocked Conv on the flipped,
 * transposed kernel. Measured alone on one AVX-512 thread: k×k convs 1.15–1.5× faster forward and
 * 1.3–2.4× for the input gradient on maps of 32² and more; smaller maps and 1×1 convs gain nothing
 * or lose, so they stay as they are. Whole training steps: 4–14 % faster.
 *
 * The pass is optional and CPU-specific: the graph it starts from is plain ONNX (what other
 * execution providers run), the block size is the running CPU's, and `STRDIFFUSION_NCHWC=0`
 * turns it off.
 */
import * as ort from 'onnxruntime-node';
import type onnxProto from 'onnx-proto';
import { attrOf, GraphBuilder, Sym } from './builder.js';

type INodeProto = onnxProto.onnx.INodeProto;

const DOMAIN = 'com.microsoft.nchwc';
/** Output maps smaller than this (in pixels) keep the plain Conv: no gain measured there. */
export const NCHWC_MIN_PIXELS = 1024;

let probed: Promise<number> | undefined;

/**
 * MLAS's NCHWc block size on this CPU: the channel count a ReorderInput pads 4 channels to.
 * 1 where the layout is unavailable (no such kernels, or blocks of ≤ 4), or when turned off.
 */
export function nchwcBlockSize(): Promise<number> {
  if (process.env.STRDIFFUSION_NCHWC === '0') return Promise.resolve(1);
  probed ??= (async () => {
    try {
      const g = new GraphBuilder();
      g.useDomain(DOMAIN, 1);
      const x = g.input('x', [1, 4, 1, 1]);
      g.output(g.node('ReorderInput', [x.name], [1, 4, 1, 1], {}, { domain: DOMAIN }), 'y');
      // the output's declared channel count is a guess (that is what is probed): keep onnxruntime quiet about it
      const s = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
      const y = (await s.run({ x: new ort.Tensor('float32', new Float32Array(4), [1, 4, 1, 1]) })).y!;
      await s.release();
      const bs = Number(y.dims[1]);
      return bs > 4 && (bs & (bs - 1)) === 0 ? bs : 1;
    } catch {
      return 1;
    }
  })();
  return probed;
}

/** an int-list attribute that is absent or all ones (strides, dilations) */
const ones = (n: INodeProto, name: string) => (attrOf(n, name)?.ints ?? []).every((d) => d === 1);

/**
 * Rewrite the Convs (and stride-1 ConvTransposes) of `g` that the blocked kernel can take into
 * NCHWc form, in place; returns how many were rewritten. No-op for a block size of 1.
 */
export function blockConvs(g: GraphBuilder, blockSize: number, minPixels = NCHWC_MIN_PIXELS): number {
  if (blockSize <= 1) return 0;
  const bs = blockSize;
  g.useDomain(DOMAIN, 1);
  const old = g.nodes.splice(0);
  let rewritten = 0;
  const i64 = (v: number[]) => g.constI64(v).name;
  const nc = (op: string, inputs: string[], shape: number[], attrs: Record<string, number | number[]> = {}, output?: string): Sym =>
    g.node(op, inputs, shape, attrs, { domain: DOMAIN, output });
  /** OIHW → the blocked filter layout the kernel reads: OIHWBiBo, or OIHWBo for an NCHW input (I < block) */
  const blockFilter = (w: Sym): Sym => {
    const [O, I, kh, kw] = w.shape as [number, number, number, number];
    if (I < bs) {
      const r = g.node('Reshape', [w.name, i64([O / bs, bs, I, kh, kw])], [O / bs, bs, I, kh, kw]);
      const t = g.node('Transpose', [r.name], [O / bs, I, kh, kw, bs], { perm: [0, 2, 3, 4, 1] });
      return g.node('Reshape', [t.name, i64([O, I, kh, kw])], [O, I, kh, kw]);
    }
    const r = g.node('Reshape', [w.name, i64([O / bs, bs, I / bs, bs, kh, kw])], [O / bs, bs, I / bs, bs, kh, kw]);
    const t = g.node('Transpose', [r.name], [O / bs, I / bs, kh, kw, bs, bs], { perm: [0, 2, 4, 5, 3, 1] });
    return g.node('Reshape', [t.name, i64([O, I, kh, kw])], [O, I, kh, kw]);
  };
  // 1×1 convs stay: they are one GEMM already, and the reorders made them 1.1–2.2× slower
  const takes = (inC: number, outC: number, kh: number, kw: number, pixels: number) =>
    kh * kw > 1 && outC % bs === 0 && (inC % bs === 0 || inC < bs) && pixels >= minPixels;
  /** x [B, I, H, W] (NCHW) conv'd with the OIHW weight w into the existing value `out` */
  const emit = (x: Sym, w: Sym, bias: string | undefined, out: string, outShape: number[], attrs: Record<string, number | number[]>): void => {
    const [, I] = x.shape as [number, number];
    const xin = I < bs ? x : nc('ReorderInput', [x.name], [...x.shape]);
    const y = nc('Conv', [xin.name, blockFilter(w).name, ...(bias ? [bias] : [])], outShape, attrs);
    nc('ReorderOutput', [y.name], outShape, { channels: outShape[1]! }, out);
    rewritten++;
  };
  for (const n of old) {
    const out = n.output?.[0];
    // ONNX-domain convs with dilation 1, one group and explicit pads: what the blocked kernel takes
    const plain = !n.domain && out && ones(n, 'dilations') && (attrOf(n, 'group')?.i ?? 1) === 1 && attrOf(n, 'auto_pad') === undefined;
    if (plain && n.opType === 'Conv') {
      const [xName, wName, bName] = n.input as [string, string, string | undefined];
      const xs = g.shapeOf(xName), ws = g.shapeOf(wName), ys = g.shapeOf(out);
      if (ws.length === 4 && takes(xs[1]!, ws[0]!, ws[2]!, ws[3]!, ys[2]! * ys[3]!)) {
        emit(new Sym(xName, xs), new Sym(wName, ws), bName || undefined, out, [...ys], {
          kernel_shape: [ws[2]!, ws[3]!], pads: attrOf(n, 'pads')?.ints ?? [0, 0, 0, 0], strides: attrOf(n, 'strides')?.ints ?? [1, 1],
        });
        continue;
      }
    }
    if (plain && n.opType === 'ConvTranspose' && n.input?.length === 2 && ones(n, 'strides')
      && (attrOf(n, 'output_padding')?.ints ?? []).every((d) => d === 0) && attrOf(n, 'output_shape') === undefined) {
      const [dyName, wName] = n.input as [string, string];
      const ds = g.shapeOf(dyName), ws = g.shapeOf(wName), ys = g.shapeOf(out);
      const [O, C, kh, kw] = ws as [number, number, number, number];
      const p = attrOf(n, 'pads')?.ints ?? [0, 0, 0, 0];
      // ConvTranspose(dy, w) with stride 1 = Conv(dy, w') with w'[c,o,i,j] = w[o,c,kh-1-i,kw-1-j], pads k-1-p
      const pads = [kh - 1 - p[0]!, kw - 1 - p[1]!, kh - 1 - p[2]!, kw - 1 - p[3]!];
      if (ws.length === 4 && pads.every((v) => v >= 0) && takes(O, C, kh, kw, ys[2]! * ys[3]!)) {
        const flipped = g.node('Slice', [wName, i64([-1, -1]), i64([-(2 ** 31), -(2 ** 31)]), i64([2, 3]), i64([-1, -1])], [O, C, kh, kw]);
        const wt = g.node('Transpose', [flipped.name], [C, O, kh, kw], { perm: [1, 0, 2, 3] });
        emit(new Sym(dyName, ds), wt, undefined, out, [...ys], { kernel_shape: [kh, kw], pads, strides: [1, 1] });
        continue;
      }
    }
    g.nodes.push(n);
  }
  return rewritten;
}
