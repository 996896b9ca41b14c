/**
 * Reverse-mode differentiation of a recorded ONNX graph. `appendGradients` walks the forward
 * nodes that a `GraphBuilder` holds from the loss back to the chosen inputs and appends, for
 * every node on that path, its vector–Jacobian product as standard ONNX nodes (opset 17). One
 * graph then computes the loss and the gradient of every parameter, so training runs on any
 * onnxruntime build (onnxruntime's own training ops are `com.microsoft` extensions that inference
 * builds lack).
 *
 * The rules reproduce PyTorch's backward conventions where they differ at kinks: |x|' = sign(x)
 * (0 at 0), relu'(0) = 0, leaky_relu'(0) = slope. Choices for speed (measured on onnxruntime-node
 * 1.30, 2-core AVX-512 CPU, see docs/training.md): the gradient of several slices of one value is
 * assembled by one Concat (Pad + Add per slice doubled a step), the 2× nearest-upsampling Gather
 * is reversed by Reshape + ReduceSum, other static Gathers by ScatterND(add).
 */
import onnxProto from 'onnx-proto';
import { attrOf, numel, sameShape, GraphBuilder, Sym, type AttrValue } from './builder.js';

type INodeProto = onnxProto.onnx.INodeProto;


/** Inputs of each op type through which gradients flow (the rest are shapes, axes, indices). */
const DIFF_INPUTS: Record<string, number[] | 'all'> = {
  Identity: [0], Add: [0, 1], Sub: [0, 1], Mul: [0, 1], Div: [0, 1],
  Sqrt: [0], Abs: [0], Exp: [0], Sin: [0], Cos: [0], Erf: [0], Sigmoid: [0], Relu: [0], LeakyRelu: [0], Softplus: [0], Neg: [0],
  ReduceMean: [0], ReduceSum: [0], Softmax: [0], Reshape: [0], Transpose: [0], Concat: 'all', Slice: [0], Gather: [0],
  Conv: [0, 1, 2], Gemm: [0, 1, 2], MatMul: [0, 1],
};

/** A gradient contribution: a full-shape tensor, or a slice's gradient (to be placed into zeros). */
type Contribution = Sym | { slice: { axes: number[]; starts: number[]; ends: number[] }; dy: Sym };

export interface GradientResult {
  /** gradient by input name, for every requested input on the loss' path (same shape as the input) */
  grads: Map<string, Sym>;
  /** requested inputs the loss does not depend on (their gradient is zero) */
  unused: string[];
}

/** Below this many summed-into values a leading-axis ReduceSum stays a ReduceSum. */
const LEADING_SUM_MATMUL_MIN = 4096;

export class ReverseMode {
  private readonly contribs = new Map<string, Contribution[]>();

  constructor(private readonly g: GraphBuilder) {}

  private shape(name: string): readonly number[] {
    return this.g.shapeOf(name);
  }
  private node(op: string, inputs: (Sym | string)[], shape: readonly number[], attrs: Record<string, AttrValue> = {}): Sym {
    return this.g.node(op, inputs.map((i) => (typeof i === 'string' ? i : i.name)), [...shape], attrs);
  }
  private scalar(v: number): Sym {
    return this.g.constF32(Float32Array.of(v), []);
  }
  private i64(v: number[]): Sym {
    return this.g.constI64(v);
  }
  private mul(a: Sym | string, b: Sym | string, shape: readonly number[]): Sym {
    return this.node('Mul', [a, b], shape);
  }
  private neg(a: Sym): Sym {
    return this.node('Neg', [a], a.shape);
  }
  private reshape(x: Sym, shape: readonly number[]): Sym {
    return sameShape(x.shape, shape) ? x : this.node('Reshape', [x, this.i64([...shape])], shape);
  }
  private transpose(x: Sym, perm: number[]): Sym {
    if (perm.every((p, i) => p === i)) return x;
    return this.node('Transpose', [x], perm.map((p) => x.shape[p]!), { perm });
  }
  private reduceSum(x: Sym, axes: number[], keep: boolean): Sym {
    if (axes.length === 0) return x;
    const shape: number[] = [];
    x.shape.forEach((d, i) => {
      if (!axes.includes(i)) shape.push(d);
      else if (keep) shape.push(1);
    });
    // a sum over leading axes (the batch of a weight gradient) as ones·X: ORT's ReduceSum over a
    // leading axis is ≈ 3× slower than this GEMV (measured on [4, 128, 1728])
    const sorted = [...axes].sort((a, b) => a - b);
    const lead = sorted.every((a, i) => a === i) ? x.shape.slice(0, sorted.length).reduce((a, b) => a * b, 1) : 0;
    const rest = lead > 0 ? x.shape.slice(sorted.length).reduce((a, b) => a * b, 1) : 0;
    if (lead > 1 && rest >= LEADING_SUM_MATMUL_MIN) {
      const ones = this.g.constF32(new Float32Array(lead).fill(1), [1, lead]);
      return this.reshape(this.node('MatMul', [ones, this.reshape(x, [lead, rest])], [1, rest]), shape);
    }
    return this.node('ReduceSum', [x, this.i64(axes)], shape, { keepdims: keep ? 1 : 0 });
  }
  private zeros(shape: readonly number[]): Sym {
    // ConstantOfShape without a value attribute is float32 zeros
    return this.node('ConstantOfShape', [this.i64([...shape])], shape);
  }

  /** Sum a gradient of a broadcast result back to the shape of the operand. */
  private unbroadcast(dy: Sym, to: readonly number[]): Sym {
    if (sameShape(dy.shape, to)) return dy;
    const r = dy.shape.length;
    const off = r - to.length;
    const axes: number[] = [];
    for (let i = 0; i < r; i++) {
      const d = i < off ? 1 : to[i - off]!;
      if (i < off || (d === 1 && dy.shape[i] !== 1)) axes.push(i);
    }
    return this.reshape(this.reduceSum(dy, axes, true), to);
  }

  private add(name: string, c: Contribution): void {
    let l = this.contribs.get(name);
    if (!l) this.contribs.set(name, (l = []));
    l.push(c);
  }

  /** The total gradient of a value: plain contributions summed, slice contributions placed by one Concat where they tile an axis. */
  private total(name: string): Sym | undefined {
    const cs = this.contribs.get(name);
    if (!cs || cs.length === 0) return undefined;
    const shape = this.shape(name);
    const plain: Sym[] = [];
    const slices: { axes: number[]; starts: number[]; ends: number[]; dy: Sym }[] = [];
    for (const c of cs) {
      if (c instanceof Sym) plain.push(c);
      else slices.push({ ...c.slice, dy: c.dy });
    }
    if (slices.length > 0) {
      const ax = slices[0]!.axes[0]!;
      const oneAxis = slices.every((s) => s.axes.length === 1 && s.axes[0] === ax);
      if (oneAxis) {
        slices.sort((a, b) => a.starts[0]! - b.starts[0]!);
        const overlap = slices.some((s, i) => i > 0 && s.starts[0]! < slices[i - 1]!.ends[0]!);
        if (!overlap) {
          const parts: Sym[] = [];
          let pos = 0;
          const gap = (from: number, to: number) => {
            const gs = [...shape];
            gs[ax] = to - from;
            parts.push(this.zeros(gs));
          };
          for (const s of slices) {
            if (s.starts[0]! > pos) gap(pos, s.starts[0]!);
            parts.push(s.dy);
            pos = s.ends[0]!;
          }
          if (pos < shape[ax]!) gap(pos, shape[ax]!);
          plain.push(parts.length === 1 ? parts[0]! : this.node('Concat', parts, shape, { axis: ax }));
          slices.length = 0;
        }
      }
      for (const s of slices) {
        // general case: zero-pad the slice's gradient to the full shape
        const pads = new Array<number>(2 * shape.length).fill(0);
        s.axes.forEach((a, i) => {
          pads[a] = s.starts[i]!;
          pads[a + shape.length] = shape[a]! - s.ends[i]!;
        });
        plain.push(this.node('Pad', [s.dy, this.i64(pads)], shape));
      }
    }
    if (plain.length === 1) return plain[0]!;
    return this.node('Sum', plain, shape);
  }

  /**
   * Append the gradient of `loss` (a scalar) with respect to each name in `wrt` (graph inputs or
   * initializers). Only nodes recorded before this call are differentiated.
   */
  differentiate(loss: Sym, wrt: string[]): GradientResult {
    if (numel(loss.shape) !== 1) throw new Error(`autodiff: the loss must be a scalar (got [${loss.shape}])`);
    const forward = [...this.g.nodes];
    // which values depend on a differentiated input
    const live = new Set(wrt);
    for (const n of forward) {
      const d = DIFF_INPUTS[n.opType!];
      const ins = n.input ?? [];
      // an op without a rule depends on all its inputs, so that reaching it is an error (not a cut path)
      const idx = d === 'all' || d === undefined ? ins.map((_, i) => i) : d;
      if (idx.some((i) => live.has(ins[i]!))) {
        if (!d) throw new Error(`autodiff: no gradient rule for ONNX op ${n.opType} (node ${n.name})`);
        for (const o of n.output ?? []) live.add(o);
      }
    }
    if (!live.has(loss.name)) throw new Error('autodiff: the loss does not depend on any differentiated input');
    this.add(loss.name, this.g.constF32(Float32Array.of(1), loss.shape));
    for (let k = forward.length - 1; k >= 0; k--) {
      const n = forward[k]!;
      const out = n.output?.[0];
      if (!out || !live.has(out) || !this.contribs.has(out)) continue;
      const dy = this.total(out)!;
      this.contribs.delete(out);
      this.rule(n, dy, (i) => live.has(n.input![i]!));
    }
    const grads = new Map<string, Sym>();
    const unused: string[] = [];
    for (const w of wrt) {
      const gsym = this.total(w);
      if (gsym) grads.set(w, gsym);
      else unused.push(w);
    }
    return { grads, unused };
  }

  /** Emit the vector–Jacobian product of one node; `need(i)` says whether input i wants a gradient. */
  private rule(n: INodeProto, dy: Sym, need: (i: number) => boolean): void {
    const ins = n.input!;
    const y = n.output![0]!;
    const x = ins[0]!;
    const xs = ins[0] ? this.shape(x) : [];
    const give = (i: number, c: Contribution) => {
      if (need(i)) this.add(ins[i]!, c);
    };
    const unary = (f: () => Sym) => {
      if (need(0)) this.add(x, f());
    };
    switch (n.opType) {
      case 'Identity':
        return give(0, dy);
      case 'Add':
        give(0, this.unbroadcast(dy, this.shape(ins[0]!)));
        give(1, this.unbroadcast(dy, this.shape(ins[1]!)));
        return;
      case 'Sub':
        give(0, this.unbroadcast(dy, this.shape(ins[0]!)));
        if (need(1)) give(1, this.unbroadcast(this.neg(dy), this.shape(ins[1]!)));
        return;
      case 'Mul':
        if (need(0)) give(0, this.unbroadcast(this.mul(dy, ins[1]!, dy.shape), this.shape(ins[0]!)));
        if (need(1)) give(1, this.unbroadcast(this.mul(dy, ins[0]!, dy.shape), this.shape(ins[1]!)));
        return;
      case 'Div': {
        const b = ins[1]!;
        if (need(0)) give(0, this.unbroadcast(this.node('Div', [dy, b], dy.shape), this.shape(ins[0]!)));
        // PyTorch: −dy·a / (b·b)
        if (need(1)) {
          const bb = this.mul(b, b, this.shape(b));
          const num = this.mul(dy, ins[0]!, dy.shape);
          give(1, this.unbroadcast(this.neg(this.node('Div', [num, bb], dy.shape)), this.shape(b)));
        }
        return;
      }
      case 'Neg':
        return unary(() => this.neg(dy));
      case 'Sqrt':
        return unary(() => this.node('Div', [dy, this.mul(y, this.scalar(2), xs)], xs));
      case 'Abs':
        return unary(() => this.mul(dy, this.node('Sign', [x], xs), xs));
      case 'Exp':
        return unary(() => this.mul(dy, y, xs));
      case 'Sin':
        return unary(() => this.mul(dy, this.node('Cos', [x], xs), xs));
      case 'Cos':
        return unary(() => this.neg(this.mul(dy, this.node('Sin', [x], xs), xs)));
      case 'Erf':
        return unary(() => {
          const sq = this.mul(x, x, xs);
          const e = this.node('Exp', [this.neg(sq)], xs);
          return this.mul(this.mul(dy, this.scalar(Math.fround(2 / Math.sqrt(Math.PI))), xs), e, xs);
        });
      case 'Sigmoid':
        return unary(() => {
          const one = this.node('Sub', [this.scalar(1), y], xs);
          return this.mul(this.mul(dy, y, xs), one, xs);
        });
      case 'Softplus':
        return unary(() => this.mul(dy, this.node('Sigmoid', [x], xs), xs));
      case 'Relu':
        return unary(() => this.node('Where', [this.node('Greater', [x, this.scalar(0)], xs), dy, this.scalar(0)], xs));
      case 'LeakyRelu': {
        const alpha = attrOf(n, 'alpha')?.f ?? 0.01;
        return unary(() => this.node('Where', [this.node('Greater', [x, this.scalar(0)], xs), dy, this.mul(dy, this.scalar(alpha), xs)], xs));
      }
      case 'ReduceMean':
      case 'ReduceSum': {
        const keep = (attrOf(n, 'keepdims')?.i ?? 1) === 1;
        const axes = n.opType === 'ReduceMean' ? attrOf(n, 'axes')?.ints : this.g.constI64Value(ins[1]!);
        if (!axes) throw new Error(`autodiff: ${n.opType} ${n.name} without constant axes`);
        const norm = axes.map((a) => (a < 0 ? a + xs.length : a));
        const kept = xs.map((d, i) => (norm.includes(i) ? 1 : d));
        let g = this.reshape(dy, kept);
        g = this.node('Expand', [g, this.i64([...xs])], xs);
        if (n.opType === 'ReduceMean') {
          const cnt = norm.reduce((p, a) => p * xs[a]!, 1);
          g = this.node('Div', [g, this.scalar(cnt)], xs);
        }
        return unary(() => g);
      }
      case 'Softmax': {
        const axis = attrOf(n, 'axis')?.i ?? -1;
        return unary(() => {
          const dyy = this.mul(dy, y, xs);
          const s = this.reduceSum(dyy, [axis < 0 ? axis + xs.length : axis], true);
          return this.mul(y, this.node('Sub', [dy, s], xs), xs);
        });
      }
      case 'Reshape':
        return unary(() => this.reshape(dy, xs));
      case 'Transpose': {
        const perm = attrOf(n, 'perm')!.ints!;
        const inv = perm.map((_, i) => perm.indexOf(i));
        return unary(() => this.transpose(dy, inv));
      }
      case 'Concat': {
        const axis = attrOf(n, 'axis')!.i!;
        const sizes = ins.map((i) => this.shape(i)[axis]!);
        const outs = this.g.nodeMulti('Split', [dy.name, this.i64(sizes).name], ins.map((i) => [...this.shape(i)]), { axis });
        ins.forEach((_, i) => give(i, outs[i]!));
        return;
      }
      case 'Slice': {
        const starts = this.g.constI64Value(ins[1]!);
        const ends = this.g.constI64Value(ins[2]!);
        const axes = ins[3] ? this.g.constI64Value(ins[3]) : starts?.map((_, i) => i);
        if (!starts || !ends || !axes || ins[4]) throw new Error(`autodiff: Slice ${n.name} must have constant starts/ends/axes and no steps`);
        return give(0, { slice: { axes, starts, ends }, dy });
      }
      case 'Gather':
        return give(0, this.gatherGrad(n, dy, xs));
      case 'Conv':
        return this.convGrad(n, dy, need);
      case 'Gemm': {
        // the tracer emits Gemm(x [B,I], w [O,I], b [O]) with transB = 1 only
        if ((attrOf(n, 'transB')?.i ?? 0) !== 1 || (attrOf(n, 'transA')?.i ?? 0) !== 0) throw new Error(`autodiff: Gemm ${n.name}: only transB = 1 is supported`);
        const w = ins[1]!;
        if (need(0)) give(0, this.node('MatMul', [dy, w], xs));
        if (need(1)) give(1, this.node('Gemm', [dy, x], this.shape(w), { transA: 1 }));
        if (ins[2] && need(2)) give(2, this.reduceSum(dy, [0], false));
        return;
      }
      case 'MatMul': {
        const a = ins[0]!;
        const b = ins[1]!;
        const sa = this.shape(a);
        const sb = this.shape(b);
        const swap = (s: readonly number[]) => {
          const p = [...s.keys()];
          p[s.length - 1] = s.length - 2;
          p[s.length - 2] = s.length - 1;
          return p;
        };
        if (sa.length < 2 || sb.length < 2) throw new Error(`autodiff: MatMul ${n.name} with a 1-D operand`);
        if (need(0)) {
          const bt = this.transpose(new Sym(b, sb), swap(sb));
          const lead = dy.shape.slice(0, -2);
          const da = this.node('MatMul', [dy, bt], [...lead, sa[sa.length - 2]!, sa[sa.length - 1]!]);
          give(0, this.unbroadcast(da, sa));
        }
        if (need(1)) {
          const at = this.transpose(new Sym(a, sa), swap(sa));
          const lead = dy.shape.slice(0, -2);
          const db = this.node('MatMul', [at, dy], [...lead, sb[sb.length - 2]!, sb[sb.length - 1]!]);
          give(1, this.unbroadcast(db, sb));
        }
        return;
      }
      default:
        throw new Error(`autodiff: no gradient rule for ONNX op ${n.opType} (node ${n.name})`);
    }
  }

  /** Gather with constant indices along one axis: the adjoint scatters (adds) dy back. */
  private gatherGrad(n: INodeProto, dy: Sym, xs: readonly number[]): Sym {
    const idx = this.g.constI64Value(n.input![1]!);
    if (!idx) throw new Error(`autodiff: Gather ${n.name} needs constant indices`);
    const axis = attrOf(n, 'axis')?.i ?? 0;
    const len = xs[axis]!;
    // nearest upsampling by an integer factor r: indices floor(k / r) → sum each group of r
    const r = idx.length / len;
    if (Number.isInteger(r) && r > 1 && idx.every((v, k) => v === Math.floor(k / r))) {
      const split = [...xs.slice(0, axis), len, r, ...xs.slice(axis + 1)];
      return this.reduceSum(this.reshape(dy, split), [axis + 1], false);
    }
    // general: move the axis first, ScatterND(add) into zeros, move it back
    const perm = [axis, ...xs.keys()].filter((v, i) => i === 0 || v !== axis);
    const inv = perm.map((_, i) => perm.indexOf(i));
    const dyT = this.transpose(dy, perm);
    const zs = perm.map((p) => xs[p]!);
    const indices = this.g.constI64(idx, [idx.length, 1]);
    const sc = this.node('ScatterND', [this.zeros(zs), indices, dyT], zs, { reduction: 'add' });
    return this.transpose(sc, inv);
  }

  /**
   * Conv(x [B,C,H,W], w [O,C/g,kh,kw], b) with pads (t,l,b,r), stride s, group g:
   * dx = ConvTranspose(dy, w) (output_padding restores the rows the stride dropped), a MatMul for
   * 1×1 convs; dw = im2col(x)·dy as GEMMs laid out by weightGradLayout (measured 2–4× faster
   * than the batch↔channel-swapped conv with dilation s for these shapes); db = Σ dy.
   */
  private convGrad(n: INodeProto, dy: Sym, need: (i: number) => boolean): void {
    const [xName, wName, bName] = n.input as [string, string, string | undefined];
    const xs = this.shape(xName);
    const ws = this.shape(wName);
    const [B, C, H, W] = xs as [number, number, number, number];
    const [O, , kh, kw] = ws as [number, number, number, number];
    const [, , oh, ow] = dy.shape as [number, number, number, number];
    const pads = attrOf(n, 'pads')?.ints ?? [0, 0, 0, 0];
    const s = attrOf(n, 'strides')?.ints?.[0] ?? 1;
    const group = attrOf(n, 'group')?.i ?? 1;
    const [pt, pl, pb, pr] = pads as [number, number, number, number];
    const pointwise = kh === 1 && kw === 1 && s === 1 && group === 1 && pads.every((p) => p === 0);
    const L = oh * ow;
    const dyr = pointwise || need(1) ? this.reshape(dy, [B, O, L]) : dy;
    if (need(0)) {
      if (pointwise) {
        // 1×1: dx = Wᵀ·dy per sample, one MatMul (ConvTranspose cost 2-3× more here)
        const wT = this.transpose(this.reshape(new Sym(wName, ws), [O, C]), [1, 0]);
        this.add(xName, this.reshape(this.node('MatMul', [wT, dyr], [B, C, L]), xs));
      } else {
        const opH = H - (s * (oh - 1) + kh - pt - pb);
        const opW = W - (s * (ow - 1) + kw - pl - pr);
        this.add(xName, this.node('ConvTranspose', [dy, wName], xs, {
          kernel_shape: [kh, kw], strides: [s, s], pads: [pt, pl, pb, pr], group, output_padding: [opH, opW], dilations: [1, 1],
        }));
      }
    }
    if (need(1)) {
      if (group !== 1) throw new Error(`autodiff: weight gradient of a grouped conv (${n.name}) is not supported`);
      const K = C * kh * kw;
      const layout = pointwise ? 'batched' : weightGradLayout(B, C, O, L);
      const x = new Sym(xName, xs);
      let dw: Sym;
      if (layout === 'folded') {
        // the batch folded into the GEMM's inner dimension: cols [C·k², B·L] from x as [C, B, H, W]
        const cols = this.reshape(this.im2col(this.transpose(x, [1, 0, 2, 3]), pads, s, kh, kw, oh, ow, 1), [K, B * L]);
        const dyT = this.reshape(this.transpose(dyr, [0, 2, 1]), [B * L, O]);
        dw = this.transpose(this.node('MatMul', [cols, dyT], [K, O]), [1, 0]);
      } else {
        // dw[o, (c,i,j)] = Σ_b Σ_l dy[b,o,l] · cols[b,(c,i,j),l], one batched MatMul and a sum over the batch
        const cols = pointwise ? this.reshape(x, [B, C, L]) : this.reshape(this.im2col(x, pads, s, kh, kw, oh, ow, 2), [B, K, L]);
        if (layout === 'swapped') {
          const per = this.node('MatMul', [cols, this.transpose(dyr, [0, 2, 1])], [B, K, O]);
          dw = this.transpose(this.reduceSum(per, [0], false), [1, 0]);
        } else {
          const per = this.node('MatMul', [dyr, this.transpose(cols, [0, 2, 1])], [B, O, K]);
          dw = this.reduceSum(per, [0], false);
        }
      }
      this.add(wName, this.reshape(dw, ws));
    }
    if (bName && need(2)) this.add(bName, this.reduceSum(dy, [0, 2, 3], false));
  }

  /**
   * The k² taps of a convolution's input, strided Slices of the padded input joined by one Concat
   * (one copy per tap; Pad+Add per tap cost twice as much): x [A, D, H, W] → [A, D, k², oh·ow] for
   * `at` = 2, or [A, k², D·oh·ow] for `at` = 1 (x given as [C, B, H, W]: the folded layout).
   */
  private im2col(x: Sym, pads: number[], s: number, kh: number, kw: number, oh: number, ow: number, at: 1 | 2): Sym {
    const [A, D, H, W] = x.shape as [number, number, number, number];
    const [pt, pl, pb, pr] = pads as [number, number, number, number];
    const xp = pads.some((p) => p > 0) ? this.node('Pad', [x, this.i64([0, 0, pt, pl, 0, 0, pb, pr])], [A, D, H + pt + pb, W + pl + pr]) : x;
    const tapShape = at === 2 ? [A, D, 1, oh * ow] : [A, 1, D * oh * ow];
    const taps: Sym[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const sl = this.node('Slice', [xp, this.i64([i, j]), this.i64([i + s * (oh - 1) + 1, j + s * (ow - 1) + 1]), this.i64([2, 3]), this.i64([s, s])], [A, D, oh, ow]);
        taps.push(this.reshape(sl, tapShape));
      }
    }
    return this.node('Concat', taps, at === 2 ? [A, D, kh * kw, oh * ow] : [A, kh * kw, D * oh * ow], { axis: at });
  }
}

/**
 * How the weight gradient of a k×k conv is laid out as GEMMs, by shape (onnxruntime 1.30, one
 * thread, AVX-512): on small maps (L = oh·ow ≤ 256) the per-sample GEMMs are too short, so the
 * batch is folded into one GEMM (1.7× faster alone at 8², C 256); on larger maps with ≥ 16
 * channels each side, cols·dyᵀ (only dy packed) beats dy·colsᵀ by 15–25 % alone. Whole training
 * steps: 1–7 % faster than dy·colsᵀ everywhere.
 */
export function weightGradLayout(B: number, C: number, O: number, L: number): 'batched' | 'swapped' | 'folded' {
  if (B > 1 && L <= FOLD_MAX_L) return 'folded';
  return C >= SWAP_MIN_CHANNELS && O >= SWAP_MIN_CHANNELS ? 'swapped' : 'batched';
}
const FOLD_MAX_L = 256;
const SWAP_MIN_CHANNELS = 16;

/** Append d(loss)/d(input) for each name in `wrt` to the graph (see ReverseMode). */
export function appendGradients(g: GraphBuilder, loss: Sym, wrt: string[]): GradientResult {
  return new ReverseMode(g).differentiate(loss, wrt);
}
