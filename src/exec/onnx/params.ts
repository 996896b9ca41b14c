/**
 * Weights of an exported (inference) graph: parameters become initializers, and spectral-norm
 * weights are folded to W/σ at export.
 */
import type { ParamStore } from '../../nn/ops.js';
import type { StateDict } from '../../weights/types.js';
import { GraphBuilder, type Sym } from './builder.js';

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
