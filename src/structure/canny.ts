/**
 * `skimage.feature.canny` as in scikit-image 0.19.3 (mask=None, use_quantiles=False,
 * mode='constant', cval=0), reproduced operation by operation in float64 so that the edge map is
 * bit-identical:
 *
 * 1. smoothing with bleed-over normalisation: `G*img / (G*ones + eps)`, G = scipy
 *    `gaussian_filter(mode='constant', cval=0, truncate=4)`: separable `correlate1d` along axis 0
 *    then axis 1, kernel `exp(-0.5/σ² · x²)` / sum (numpy pairwise sum), radius `int(4σ + 0.5)`,
 *    scipy's symmetric-kernel loop `w0·x0 + Σ_{k=r..1} (x₋ₖ + xₖ)·wₖ`;
 * 2. `isobel = ndi.sobel(smoothed, axis=0)`, `jsobel = ndi.sobel(smoothed, axis=1)` (mode
 *    'reflect', i.e. d c b a | a b c d), magnitude = glibc `hypot`;
 * 3. non-maximum suppression with bilinear interpolation in four octant pairs, evaluated in the
 *    same order as skimage (a pixel in several categories takes the result of the last one);
 * 4. hysteresis: 8-connected components of {local max ∧ mag ≥ low} that contain a pixel ≥ high.
 */
import { twoProdErr } from '../util/float.js';

// ---------------------------------------------------------------------------------------------
// Accurate elementary functions (libm-equivalent results)
// ---------------------------------------------------------------------------------------------


// double-double helpers: values are [hi, lo] with |lo| ≤ ulp(hi)/2
function twoSum(a: number, b: number): [number, number] {
  const s = a + b;
  const bb = s - a;
  return [s, (a - (s - bb)) + (b - bb)];
}
function quickTwoSum(a: number, b: number): [number, number] {
  const s = a + b;
  return [s, b - (s - a)];
}
function twoProd(a: number, b: number): [number, number] {
  const p = a * b;
  return [p, twoProdErr(a, b, p)];
}
function ddAdd(ah: number, al: number, bh: number, bl: number): [number, number] {
  const [s, e] = twoSum(ah, bh);
  const [t, f] = twoSum(al, bl);
  let [hi, lo] = quickTwoSum(s, e + t);
  [hi, lo] = quickTwoSum(hi, lo + f);
  return [hi, lo];
}
function ddMul(ah: number, al: number, bh: number, bl: number): [number, number] {
  const [p, e] = twoProd(ah, bh);
  return quickTwoSum(p, e + (ah * bl + al * bh));
}
function ddDivD(ah: number, al: number, b: number): [number, number] {
  const q1 = ah / b;
  const [p, e] = twoProd(q1, b);
  const [s, f] = twoSum(ah, -p);
  const q2 = (s + (f - e + al)) / b;
  return quickTwoSum(q1, q2);
}

const LN2_HI = 0.6931471805599453; // 0x3FE62E42FEFA39EF
const LN2_LO = 2.3190468138462996e-17; // ln 2 − LN2_HI

/**
 * exp(x) rounded to nearest (double-double evaluation, ≈ 2^-100 relative error before the final
 * rounding), i.e. the correctly rounded value glibc's `exp` returns for the Gaussian-kernel
 * arguments (V8's `Math.exp` is off by one ulp for ~10 % of them).
 */
export function expRN(x: number): number {
  if (!Number.isFinite(x)) return Math.exp(x);
  if (x === 0) return 1;
  if (x > 709.78 || x < -708) return Math.exp(x); // outside the range the kernels use
  const n = Math.round(x / LN2_HI);
  // r = x − n·ln2 in double-double (n·LN2_HI and n·LN2_LO split exactly)
  const [p1, e1] = twoProd(n, LN2_HI);
  const [q1, f1] = twoProd(n, LN2_LO);
  let [rh, rl] = twoSum(x, -p1);
  [rh, rl] = ddAdd(rh, rl, -e1, 0);
  [rh, rl] = ddAdd(rh, rl, -q1, -f1);
  // s = r / 1024
  const K = 10;
  const sh = rh / 1024;
  const sl = rl / 1024;
  // exp(s) − 1 = s·(1 + s/2·(1 + s/3·(1 + …)))
  let ah = 1;
  let al = 0;
  for (let k = 9; k >= 2; k--) {
    [ah, al] = ddMul(sh, sl, ah, al);
    [ah, al] = ddDivD(ah, al, k);
    [ah, al] = ddAdd(1, 0, ah, al);
  }
  [ah, al] = ddMul(sh, sl, ah, al); // em1
  for (let i = 0; i < K; i++) {
    // exp(2s) − 1 = em1·(em1 + 2)
    const [th, tl] = ddAdd(ah, al, 2, 0);
    [ah, al] = ddMul(ah, al, th, tl);
  }
  const [yh, yl] = ddAdd(1, 0, ah, al);
  const y = yh + yl;
  return y * 2 ** n;
}

const SCALE = 2 ** -600;
const LARGE_VAL = 2 ** 511;
const TINY_VAL = 2 ** -459;
const EPS54 = 2 ** -54;

function hypotKernel(ax: number, ay: number): number {
  let h = Math.sqrt(ax * ax + ay * ay);
  let t1: number;
  let t2: number;
  if (h <= 2.0 * ay) {
    const delta = h - ay;
    t1 = ax * (2.0 * delta - ax);
    t2 = (delta - 2.0 * (ax - ay)) * delta;
  } else {
    const delta = h - ax;
    t1 = 2.0 * delta * (ax - 2.0 * ay);
    t2 = (4.0 * delta - ay) * ay + delta * delta;
  }
  h -= (t1 + t2) / (2.0 * h);
  return h;
}

/**
 * `hypot` as glibc ≥ 2.35 computes it on x86-64 (Borges' corrected algorithm, non-FMA kernel),
 * which is what `np.hypot` calls. Differs from V8's `Math.hypot` in the last bit at times.
 */
export function hypotLibm(x: number, y: number): number {
  if (!Number.isFinite(x) || !Number.isFinite(y)) {
    if (x === Infinity || x === -Infinity || y === Infinity || y === -Infinity) return Infinity;
    return x + y;
  }
  x = Math.abs(x);
  y = Math.abs(y);
  let ax = x < y ? y : x;
  const ay = x < y ? x : y;
  if (ax > LARGE_VAL) {
    if (ay <= ax * EPS54) return ax + ay;
    return hypotKernel(ax * SCALE, ay * SCALE) / SCALE;
  }
  if (ay < TINY_VAL) {
    if (ax >= ay / EPS54) return ax + ay;
    ax = hypotKernel(ax / SCALE, ay / SCALE) * SCALE;
    return ax;
  }
  if (ay <= ax * EPS54) return ax + ay;
  return hypotKernel(ax, ay);
}

// ---------------------------------------------------------------------------------------------
// scipy.ndimage pieces
// ---------------------------------------------------------------------------------------------

/** numpy's pairwise summation of a contiguous float64 array (`arr.sum()`, n ≤ 128 path and up). */
export function pairwiseSum(a: Float64Array, start = 0, n = a.length): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i]!;
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[start + j]!;
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[start + i + j]!;
    let res = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
    for (; i < n; i++) res += a[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/**
 * scipy `_gaussian_kernel1d(sigma, 0, radius)`: exp(−0.5/σ² · x²) normalised by its (pairwise) sum.
 * `exp` is the correctly rounded one (= glibc, used by numpy on CPUs without AVX-512). numpy on
 * AVX-512 CPUs uses its own vector exp, whose result differs by 1 ulp for some weights (4 of the
 * 17 at σ = 2); this can only change edges at exact magnitude ties (synthetic images), not on the
 * photos of the parity fixtures (verified: identical edges with either kernel).
 */
export function gaussianKernel1d(sigma: number, radius: number): Float64Array {
  const sigma2 = sigma * sigma;
  const k = -0.5 / sigma2;
  const n = 2 * radius + 1;
  const phi = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = i - radius;
    phi[i] = expRN(k * (x * x));
  }
  const s = pairwiseSum(phi);
  for (let i = 0; i < n; i++) phi[i] = phi[i]! / s;
  return phi;
}

/** kernel radius scipy uses: int(truncate·σ + 0.5) */
export function gaussianRadius(sigma: number, truncate = 4.0): number {
  return Math.trunc(truncate * sigma + 0.5);
}

/**
 * scipy `correlate1d` with a symmetric odd kernel `w` (length 2r+1) along axis 0 or 1 of a [H,W]
 * float64 array, mode 'constant' with value `cval`, summation order as scipy's C loop.
 */
function correlateSymConstant(src: Float64Array, H: number, W: number, w: Float64Array, axis: 0 | 1, cval: number): Float64Array {
  const r = (w.length - 1) >> 1;
  const w0 = w[r]!;
  const out = new Float64Array(H * W);
  if (axis === 1) {
    const line = new Float64Array(W + 2 * r);
    for (let i = 0; i < H; i++) {
      const row = i * W;
      line.fill(cval, 0, r);
      line.fill(cval, r + W);
      for (let j = 0; j < W; j++) line[r + j] = src[row + j]!;
      for (let j = 0; j < W; j++) {
        const c = r + j;
        let acc = line[c]! * w0;
        for (let k = r; k >= 1; k--) acc += (line[c - k]! + line[c + k]!) * w[r - k]!;
        out[row + j] = acc;
      }
    }
  } else {
    // column-wise, done one output row at a time (identical per-element operation order)
    const acc = new Float64Array(W);
    const cvRow = new Float64Array(W).fill(cval);
    for (let i = 0; i < H; i++) {
      const row = i * W;
      for (let j = 0; j < W; j++) acc[j] = src[row + j]! * w0;
      for (let k = r; k >= 1; k--) {
        const wk = w[r - k]!;
        const up = i - k;
        const dn = i + k;
        const upArr = up >= 0 ? src : cvRow;
        const upOff = up >= 0 ? up * W : 0;
        const dnArr = dn < H ? src : cvRow;
        const dnOff = dn < H ? dn * W : 0;
        for (let j = 0; j < W; j++) acc[j] = acc[j]! + (upArr[upOff + j]! + dnArr[dnOff + j]!) * wk;
      }
      out.set(acc, row);
    }
  }
  return out;
}

/** scipy `gaussian_filter(img, sigma, mode='constant', cval, truncate)` for a 2-D float64 array. */
export function gaussianFilterConstant(img: Float64Array, H: number, W: number, sigma: number, truncate = 4.0, cval = 0): Float64Array {
  if (!(sigma > 1e-15)) return Float64Array.from(img); // scipy skips axes with σ ≤ 1e-15
  const w = gaussianKernel1d(sigma, gaussianRadius(sigma, truncate));
  const a = correlateSymConstant(img, H, W, w, 0, cval);
  return correlateSymConstant(a, H, W, w, 1, cval);
}

/** 'reflect' (half-sample symmetric, d c b a | a b c d) index for a 1-pixel extension. */
function reflectIndex(k: number, n: number): number {
  if (k < 0) return n === 1 ? 0 : Math.min(-k - 1, n - 1);
  if (k >= n) return n === 1 ? 0 : Math.max(2 * n - k - 1, 0);
  return k;
}

/** `correlate1d(src, [-1,0,1], axis=1, mode='reflect')`: x·0 + (x[j−1] − x[j+1])·(−1) */
function diffRows(src: Float64Array, dst: Float64Array, H: number, W: number): void {
  for (let i = 0; i < H; i++) {
    const row = i * W;
    for (let j = 0; j < W; j++) {
      const l = j > 0 ? j - 1 : 0;
      const r = j < W - 1 ? j + 1 : W - 1;
      dst[row + j] = src[row + j]! * 0 + (src[row + l]! - src[row + r]!) * -1;
    }
  }
}
/** `correlate1d(src, [1,2,1], axis=1, mode='reflect')`: x·2 + (x[j−1] + x[j+1])·1 */
function smoothRows(src: Float64Array, dst: Float64Array, H: number, W: number): void {
  for (let i = 0; i < H; i++) {
    const row = i * W;
    for (let j = 0; j < W; j++) {
      const l = j > 0 ? j - 1 : 0;
      const r = j < W - 1 ? j + 1 : W - 1;
      dst[row + j] = src[row + j]! * 2 + (src[row + l]! + src[row + r]!) * 1;
    }
  }
}
/** `correlate1d(src, [-1,0,1], axis=0, mode='reflect')` */
function diffCols(src: Float64Array, dst: Float64Array, H: number, W: number): void {
  for (let i = 0; i < H; i++) {
    const row = i * W;
    const up = reflectIndex(i - 1, H) * W;
    const dn = reflectIndex(i + 1, H) * W;
    for (let j = 0; j < W; j++) dst[row + j] = src[row + j]! * 0 + (src[up + j]! - src[dn + j]!) * -1;
  }
}
/** `correlate1d(src, [1,2,1], axis=0, mode='reflect')` */
function smoothCols(src: Float64Array, dst: Float64Array, H: number, W: number): void {
  for (let i = 0; i < H; i++) {
    const row = i * W;
    const up = reflectIndex(i - 1, H) * W;
    const dn = reflectIndex(i + 1, H) * W;
    for (let j = 0; j < W; j++) dst[row + j] = src[row + j]! * 2 + (src[up + j]! + src[dn + j]!) * 1;
  }
}

/**
 * scipy `ndimage.sobel(img, axis)` (mode 'reflect'): `correlate1d([-1,0,1], axis)` followed by
 * `correlate1d([1,2,1])` along the other axis, with scipy's (anti)symmetric loop forms
 * `x0·0 + (x₋₁ − x₁)·(−1)` and `x0·2 + (x₋₁ + x₁)·1`.
 */
export function sobel(img: Float64Array, H: number, W: number, axis: 0 | 1): Float64Array {
  const d = new Float64Array(H * W);
  const out = new Float64Array(H * W);
  if (axis === 0) {
    diffCols(img, d, H, W);
    smoothRows(d, out, H, W);
  } else {
    diffRows(img, d, H, W);
    smoothCols(d, out, H, W);
  }
  return out;
}

// bleed-over normaliser G*ones + eps depends only on (H, W, σ): keep the last few
const bleedCache = new Map<string, Float64Array>();
function bleedOver(H: number, W: number, sigma: number): Float64Array {
  const key = `${H}x${W}:${sigma}`;
  let b = bleedCache.get(key);
  if (!b) {
    b = gaussianFilterConstant(new Float64Array(H * W).fill(1), H, W, sigma);
    const EPS = 2.220446049250313e-16; // np.finfo(float).eps
    for (let i = 0; i < b.length; i++) b[i] = b[i]! + EPS;
    if (bleedCache.size >= 8) bleedCache.delete(bleedCache.keys().next().value!);
    bleedCache.set(key, b);
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Canny
// ---------------------------------------------------------------------------------------------

export interface CannyDetail {
  smoothed: Float64Array;
  isobel: Float64Array;
  jsobel: Float64Array;
  magnitude: Float64Array;
  /** non-maximum suppression result (0/1) */
  localMaxima: Uint8Array;
  /** final edges (0/1) */
  edges: Uint8Array;
}

/** Canny with all intermediate arrays (see `canny`). */
export function cannyDetailed(image: Float64Array, H: number, W: number, sigma = 1, low = 0.1, high = 0.2): CannyDetail {
  const HW = H * W;
  if (image.length !== HW) throw new Error(`canny: expected ${HW} values ([${H},${W}]), got ${image.length}`);
  if (high < low) throw new Error('low_threshold should be lower then high_threshold');
  if (!(sigma >= 0)) throw new Error('Sigma values less than zero are not valid');

  // 1. smoothing with bleed-over normalisation
  const bleed = bleedOver(H, W, sigma);
  const smoothed = gaussianFilterConstant(image, H, W, sigma);
  for (let i = 0; i < HW; i++) smoothed[i] = smoothed[i]! / bleed[i]!;

  // 2. gradients
  const jsobel = sobel(smoothed, H, W, 1);
  const isobel = sobel(smoothed, H, W, 0);
  const magnitude = new Float64Array(HW);
  for (let i = 0; i < HW; i++) magnitude[i] = hypotLibm(isobel[i]!, jsobel[i]!);

  // 3. non-maximum suppression (eroded mask = all but the 1-pixel border, and magnitude > 0)
  const M = magnitude;
  const lm = new Uint8Array(HW);
  for (let i = 1; i < H - 1; i++) {
    for (let j = 1; j < W - 1; j++) {
      const p = i * W + j;
      const m = M[p]!;
      if (!(m > 0)) continue;
      const is = isobel[p]!;
      const js = jsobel[p]!;
      const ai = Math.abs(is);
      const aj = Math.abs(js);
      const horiz = ai >= aj;
      const vert = ai <= aj;
      const up = is >= 0;
      const down = is <= 0;
      const right = js >= 0;
      const left = js <= 0;
      const diag = (up && right) || (down && left); // 0–90°
      const anti = (down && right) || (up && left); // 90–180°
      // skimage assigns the four categories in order 1,2,3,4; the last one that applies wins.
      let c1p: number, c2p: number, c1m: number, c2m: number, w: number;
      if (anti && horiz) {
        // 135–180°: mix anti-diagonal and anti-horizontal
        w = aj / ai;
        c1p = M[p - W]!;
        c2p = M[p - W + 1]!;
        c1m = M[p + W]!;
        c2m = M[p + W - 1]!;
      } else if (anti && vert) {
        // 90–135°: mix anti-diagonal and vertical
        w = ai / aj;
        c1p = M[p + 1]!;
        c2p = M[p - W + 1]!;
        c1m = M[p - 1]!;
        c2m = M[p + W - 1]!;
      } else if (diag && vert) {
        // 45–90°: mix diagonal and vertical
        w = ai / aj;
        c1p = M[p + 1]!;
        c2p = M[p + W + 1]!;
        c1m = M[p - 1]!;
        c2m = M[p - W - 1]!;
      } else {
        // 0–45°: mix diagonal and horizontal (diag && horiz)
        w = aj / ai;
        c1p = M[p + W]!;
        c2p = M[p + W + 1]!;
        c1m = M[p - W]!;
        c2m = M[p - W - 1]!;
      }
      const omw = 1 - w;
      const cPlus = c2p * w + c1p * omw <= m;
      const cMinus = c2m * w + c1m * omw <= m;
      lm[p] = cPlus && cMinus ? 1 : 0;
    }
  }

  // 4. hysteresis: 8-connected components of the low mask that contain a high pixel
  const edges = new Uint8Array(HW);
  const stack = new Int32Array(HW);
  for (let p = 0; p < HW; p++) {
    if (!lm[p] || edges[p] || !(M[p]! >= high)) continue;
    // seed: a local maximum ≥ high (hence ≥ low); flood its low component
    let sp = 0;
    edges[p] = 1;
    stack[sp++] = p;
    while (sp > 0) {
      const q = stack[--sp]!;
      const qi = (q / W) | 0;
      const qj = q - qi * W;
      const i0 = qi > 0 ? qi - 1 : 0;
      const i1 = qi < H - 1 ? qi + 1 : H - 1;
      const j0 = qj > 0 ? qj - 1 : 0;
      const j1 = qj < W - 1 ? qj + 1 : W - 1;
      for (let ii = i0; ii <= i1; ii++) {
        for (let jj = j0; jj <= j1; jj++) {
          const r = ii * W + jj;
          if (edges[r] || !lm[r] || !(M[r]! >= low)) continue;
          edges[r] = 1;
          stack[sp++] = r;
        }
      }
    }
  }
  return { smoothed, isobel, jsobel, magnitude, localMaxima: lm, edges };
}

/**
 * skimage 0.19.3 `feature.canny(image, sigma, low_threshold, high_threshold)` on a float64 [H,W]
 * image (defaults as skimage: σ = 1, thresholds 0.1 / 0.2 — absolute for float images).
 * Returns the edge map as 0/1 bytes [H,W].
 */
export function canny(image: Float64Array, H: number, W: number, sigma = 1, low = 0.1, high = 0.2): Uint8Array {
  return cannyDetailed(image, H, W, sigma, low, high).edges;
}
