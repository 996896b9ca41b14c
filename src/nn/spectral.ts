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

