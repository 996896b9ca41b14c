/** Resampling of planar float images (CHW) and of hole masks, for the model window. */

/**
 * Resize CHW float planes. Downscaling averages the covered source area (box filter, so no
 * aliasing); upscaling is bilinear with half-pixel centres.
 */
export function resizePlanes(src: Float32Array, C: number, H: number, W: number, oh: number, ow: number): Float32Array {
  if (oh === H && ow === W) return src.slice();
  const tmp = resizeAxis(src, C * H, W, ow); // rows: [C*H, ow]
  // transpose-free vertical pass: treat each column independently
  const out = new Float32Array(C * oh * ow);
  for (let c = 0; c < C; c++) {
    const col = new Float32Array(H);
    for (let x = 0; x < ow; x++) {
      for (let y = 0; y < H; y++) col[y] = tmp[(c * H + y) * ow + x]!;
      const r = resizeAxis(col, 1, H, oh);
      for (let y = 0; y < oh; y++) out[(c * oh + y) * ow + x] = r[y]!;
    }
  }
  return out;
}

/** Resize `rows` rows of length n to length m. */
function resizeAxis(src: Float32Array, rows: number, n: number, m: number): Float32Array {
  const out = new Float32Array(rows * m);
  if (m === n) {
    out.set(src.subarray(0, rows * n));
    return out;
  }
  const scale = n / m;
  if (m < n) {
    for (let j = 0; j < m; j++) {
      const a = j * scale;
      const b = (j + 1) * scale;
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let i = Math.floor(a); i < Math.ceil(b); i++) {
          const w = Math.min(b, i + 1) - Math.max(a, i);
          s += w * src[r * n + i]!;
        }
        out[r * m + j] = s / scale;
      }
    }
  } else {
    for (let j = 0; j < m; j++) {
      const x = Math.min(Math.max((j + 0.5) * scale - 0.5, 0), n - 1);
      const i0 = Math.floor(x);
      const i1 = Math.min(i0 + 1, n - 1);
      const f = x - i0;
      for (let r = 0; r < rows; r++) out[r * m + j] = src[r * n + i0]! * (1 - f) + src[r * n + i1]! * f;
    }
  }
  return out;
}

/**
 * Resize a hole map (1 = hole) so that every output pixel touching a source hole is a hole: no hole
 * pixel of the original may be lost on the way to the model (downscale = max over the covered area).
 */
export function resizeHoles(src: Uint8Array, H: number, W: number, oh: number, ow: number): Uint8Array {
  const out = new Uint8Array(oh * ow);
  const sy = H / oh;
  const sx = W / ow;
  for (let y = 0; y < oh; y++) {
    const y0 = Math.floor(y * sy);
    const y1 = Math.max(y0 + 1, Math.ceil((y + 1) * sy));
    for (let x = 0; x < ow; x++) {
      const x0 = Math.floor(x * sx);
      const x1 = Math.max(x0 + 1, Math.ceil((x + 1) * sx));
      let hole = 0;
      for (let yy = y0; yy < Math.min(y1, H) && !hole; yy++) for (let xx = x0; xx < Math.min(x1, W); xx++) if (src[yy * W + xx]) { hole = 1; break; }
      out[y * ow + x] = hole;
    }
  }
  return out;
}
