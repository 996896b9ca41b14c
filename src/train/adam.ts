/**
 * `torch.optim.Adam` as in PyTorch 1.13 (single-tensor path, no amsgrad/maximize), on host
 * float32 arrays. Per element and step:
 *
 *     m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²
 *     p ← p − (lr / (1−β1^k)) · m / ( sqrt(v) / sqrt(1−β2^k) + eps )
 *
 * eps is added AFTER dividing sqrt(v) by the bias correction (PyTorch's order, which differs from
 * the paper's ε̂). The scalar factors are Python doubles in PyTorch; each stored value is rounded
 * to float32 once, so the result agrees with PyTorch to an ulp or so.
 *
 * The state (step count, m and v per key) is plain host arrays, so a checkpoint can store it.
 */
import { AdamSimd } from './adam-simd.js';

const fr = Math.fround;

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Official settings: U-Nets (0.9, 0.99), the discriminator (0.5, 0.99); lr 1e-4, no weight decay. */
export const ADAM_UNET: AdamOptions = { lr: 1e-4, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0 };
export const ADAM_DISC: AdamOptions = { lr: 1e-4, betas: [0.5, 0.99], eps: 1e-8, weightDecay: 0 };

export interface AdamStateDump {
  step: number;
  /** first moments (exp_avg) per parameter key */
  m: Map<string, Float32Array>;
  /** second moments (exp_avg_sq) per parameter key */
  v: Map<string, Float32Array>;
}

export class Adam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** number of steps taken (PyTorch keeps one per parameter; they are always equal here) */
  step = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  /** the WebAssembly SIMD kernel, once `reserve` has laid out its memory (null: scalar code only) */
  private simd: AdamSimd | null = null;

  constructor(opts: AdamOptions) {
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    if (!(this.lr >= 0 && this.beta1 >= 0 && this.beta1 < 1 && this.beta2 >= 0 && this.beta2 < 1 && this.eps >= 0)) {
      throw new Error(`Adam: invalid options ${JSON.stringify(opts)}`);
    }
  }

  /**
   * Move the parameters (and this optimizer's m, v) into the SIMD kernel's memory and return the
   * parameter arrays to use from now on (views; the given arrays are copied, not kept). Where
   * WebAssembly SIMD is unavailable, or STRDIFFUSION_ADAM=scalar, the arrays come back unchanged
   * and `update` runs the scalar code; both give the same bits.
   */
  reserve(params: Map<string, Float32Array>): Map<string, Float32Array> {
    if (this.simd || this.step > 0 || this.m.size > 0 || process.env.STRDIFFUSION_ADAM === 'scalar') return params;
    const simd = AdamSimd.create();
    if (!simd) return params;
    let views: ReturnType<AdamSimd['reserve']>;
    try {
      views = simd.reserve(params);
    } catch {
      return params; // more than a WebAssembly memory holds (4 GiB): the scalar code runs
    }
    const { p, m, v } = views;
    for (const [k, a] of m) this.m.set(k, a);
    for (const [k, a] of v) this.v.set(k, a);
    this.simd = simd;
    return p;
  }

  /**
   * One optimizer step: updates `params[key]` in place for every key of `grads` (a parameter
   * without a gradient is skipped, like a PyTorch parameter whose .grad is None). `lr` overrides
   * the base rate (the scheduler's current value).
   */
  update(params: Map<string, Float32Array>, grads: Map<string, ArrayLike<number>>, lr = this.lr): void {
    this.step++;
    const k = this.step;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const bc1 = 1 - b1 ** k;
    const bc2Sqrt = Math.sqrt(1 - b2 ** k);
    const stepSize = lr / bc1;
    // PyTorch casts the Python scalars to the tensor's float32 when it multiplies
    const fb1 = fr(b1);
    const fb2 = fr(b2);
    const f1b1 = fr(1 - b1);
    const f1b2 = fr(1 - b2);
    const fbc2 = fr(bc2Sqrt);
    const fstep = fr(-stepSize);
    const feps = fr(this.eps);
    const fwd = fr(this.weightDecay);
    for (const [key, g] of grads) {
      const p = params.get(key);
      if (!p) throw new Error(`Adam: gradient for unknown parameter "${key}"`);
      if (g.length !== p.length) throw new Error(`Adam: gradient of "${key}" has ${g.length} values, the parameter ${p.length}`);
      let m = this.m.get(key);
      let v = this.v.get(key);
      const simd = this.simd;
      if (simd && fwd === 0 && m && v && simd.owns(p) && simd.owns(m) && simd.owns(v)) {
        simd.update(p, g, m, v, { b1: fb1, omb1: f1b1, b2: fb2, omb2: f1b2, bc2: fbc2, step: fstep, eps: feps });
        continue;
      }
      if (!m || !v) {
        m = new Float32Array(p.length);
        v = new Float32Array(p.length);
        this.m.set(key, m);
        this.v.set(key, v);
      }
      for (let i = 0; i < p.length; i++) {
        let gi = g[i]!;
        if (fwd !== 0) gi = fr(gi + fr(p[i]! * fwd));
        // add_(g, alpha) is a fused multiply-add in PyTorch's vectorised kernel; addcmul_ is (value·g)·g
        const mi = fr(fr(m[i]! * fb1) + gi * f1b1);
        const vi = fr(fr(v[i]! * fb2) + fr(fr(f1b2 * gi) * gi));
        m[i] = mi;
        v[i] = vi;
        const denom = fr(fr(fr(Math.sqrt(vi)) / fbc2) + feps);
        p[i] = fr(p[i]! + fr(fr(fstep * mi) / denom));
      }
    }
  }

  /** A copy of the state (for checkpoints). */
  stateDict(): AdamStateDump {
    const cp = (src: Map<string, Float32Array>) => new Map([...src].map(([k, a]) => [k, Float32Array.from(a)] as [string, Float32Array]));
    return { step: this.step, m: cp(this.m), v: cp(this.v) };
  }

  /** Restore a state from `stateDict()` (copied; shapes are checked when the next step uses them). */
  loadStateDict(s: AdamStateDump): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`Adam: invalid step count ${s.step}`);
    for (const k of s.m.keys()) if (!s.v.has(k)) throw new Error(`Adam: state for "${k}" has m but no v`);
    this.step = s.step;
    // reserved (SIMD) arrays are refilled in place: the kernel's views must stay the arrays in use
    const fill = (mine: Map<string, Float32Array>, from: Map<string, Float32Array>) => {
      for (const [k, a] of mine) if (!(this.simd?.owns(a) && from.get(k)?.length === a.length)) mine.delete(k);
      for (const [k, a] of from) {
        const view = mine.get(k);
        if (view) view.set(a);
        else mine.set(k, Float32Array.from(a));
      }
    };
    fill(this.m, s.m);
    fill(this.v, s.v);
  }
}
