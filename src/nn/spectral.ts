/**
 * Spectral normalisation's train-mode power iteration on host arrays (PyTorch's
 * `torch.nn.utils.spectral_norm` pre-forward hook, one iteration): shared by both trainers.
 */
/** One spectral-norm power iteration (PyTorch order): v = normalize(W^T u), u = normalize(W v). */
export function powerIteration(w: Float32Array, rows: number, u0: Float32Array): { u: Float32Array; v: Float32Array } {
  const cols = w.length / rows;
  const v64 = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const ur = u0[r]!;
    const off = r * cols;
    for (let c = 0; c < cols; c++) v64[c] = v64[c]! + w[off + c]! * ur;
  }
  const v = normalizeVec(v64);
  const u64 = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const off = r * cols;
    for (let c = 0; c < cols; c++) s += w[off + c]! * v[c]!;
    u64[r] = s;
  }
  return { u: normalizeVec(u64), v };
}

function normalizeVec(x: Float64Array): Float32Array {
  // torch.nn.functional.normalize: x / max(||x||, eps)
  let n = 0;
  for (const e of x) n += e * e;
  const d = Math.max(Math.sqrt(n), 1e-12);
  return Float32Array.from(x, (e) => e / d);
}


/**
 * Spectral-norm vectors that fit the given weights: `iterations` power iterations per
 * `P.weight_orig` from `start`'s (or `sd`'s own) `P.weight_u`. Weights that were averaged (an
 * EMA) need this: averaging unit vectors shrinks them, and σ = uᵀWv with shrunken u, v is too small.
 * Returns a new state dict (other entries shared).
 */
export function refreshSpectralVectors<T extends { shape: number[]; data: Float32Array }>(sd: Map<string, T>, start: Map<string, T> = sd, iterations = 20): Map<string, T> {
  const out = new Map(sd);
  for (const [k, w] of sd) {
    if (!k.endsWith('.weight_orig')) continue;
    const p = k.slice(0, -'.weight_orig'.length);
    const u0 = start.get(`${p}.weight_u`) ?? sd.get(`${p}.weight_u`);
    const vOld = sd.get(`${p}.weight_v`);
    if (!u0 || !vOld) continue;
    let u = u0.data;
    let v = vOld.data;
    for (let i = 0; i < iterations; i++) ({ u, v } = powerIteration(w.data, w.shape[0]!, u));
    out.set(`${p}.weight_u`, { ...u0, shape: [...u0.shape], data: u });
    out.set(`${p}.weight_v`, { ...vOld, shape: [...vOld.shape], data: v });
  }
  return out;
}
