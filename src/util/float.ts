/**
 * Exact floating-point helpers: error-free transformations and a correctly rounded FMA, shared by
 * the grayscale conversion and Canny (both reproduce numpy/OpenBLAS results bit for bit).
 */

const SPLITTER = 134217729; // 2^27 + 1 (Dekker/Veltkamp split)

/** Rounding error of `a + b` given `s = fl(a + b)` (Knuth TwoSum): a + b = s + err exactly. */
export function twoSumErr(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

/** Rounding error of `a * b` given `p = fl(a * b)` (Dekker TwoProduct): a·b = p + err exactly
 * (valid while no intermediate over/underflows; callers guard the ranges). */
export function twoProdErr(a: number, b: number, p: number): number {
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** The neighbouring double of finite, nonzero-direction `x` toward the sign of `dir`. */
function nextToward(x: number, dir: number): number {
  if (x === 0) return dir > 0 ? Number.MIN_VALUE : -Number.MIN_VALUE;
  f64[0] = x;
  const awayFromZero = (x > 0) === (dir > 0);
  u64[0] = awayFromZero ? u64[0]! + 1n : u64[0]! - 1n;
  return f64[0]!;
}

/** Finite double → [integer mantissa, exponent] with x = m · 2^e exactly. */
function decompose(x: number): [bigint, number] {
  f64[0] = x;
  const bits = u64[0]!;
  const neg = bits >> 63n === 1n;
  const bexp = Number((bits >> 52n) & 0x7ffn);
  let m = bits & 0xfffffffffffffn;
  let e: number;
  if (bexp === 0) e = -1074;
  else {
    m |= 1n << 52n;
    e = bexp - 1075;
  }
  return [neg ? -m : m, e];
}

function ldexp(x: number, e: number): number {
  while (e > 1000) {
    x *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    x *= 2 ** -1000;
    e += 1000;
  }
  return x * 2 ** e;
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Round N·2^E (exact big integer N) to the nearest double, ties to even. */
function roundBigToDouble(N: bigint, E: number): number {
  if (N === 0n) return 0;
  const neg = N < 0n;
  let a = neg ? -N : N;
  const L = bitLength(a);
  let shift = Math.max(L - 53, -1074 - E);
  if (shift > 0) {
    const sh = BigInt(shift);
    let q = a >> sh;
    const rem = a - (q << sh);
    const half = 1n << (sh - 1n);
    if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
    a = q;
  } else shift = 0;
  const r = ldexp(Number(a), E + shift);
  return neg ? -r : r;
}

/** Exact a·b + c with one rounding, by big-integer arithmetic (slow path). */
function fmaExact(a: number, b: number, c: number): number {
  if (a === 0 || b === 0) return a * b + c;
  const [ma, ea] = decompose(a);
  const [mb, eb] = decompose(b);
  const [mc, ec] = decompose(c);
  const ep = ea + eb;
  const mp = ma * mb;
  if (mc === 0n) return roundBigToDouble(mp, ep);
  const E = Math.min(ep, ec);
  const N = (mp << BigInt(ep - E)) + (mc << BigInt(ec - E));
  if (N === 0n) return a * b + c; // exact cancellation: sign of zero as IEEE fma (RN) gives
  return roundBigToDouble(N, E);
}

/**
 * Correctly rounded fused multiply-add `a·b + c` (one rounding, like C `fma` / the FMA
 * instructions OpenBLAS uses). Fast error-free path; big-integer fallback for hard cases
 * (cancellation, extreme exponents).
 */
export function fma(a: number, b: number, c: number): number {
  const p = a * b;
  if (!Number.isFinite(p) || !Number.isFinite(c)) return p + c;
  const ap = Math.abs(p);
  if (ap === 0 || ap < 2 ** -900 || ap > 2 ** 900 || Math.abs(a) > 2 ** 995 || Math.abs(b) > 2 ** 995) {
    return fmaExact(a, b, c);
  }
  const e = twoProdErr(a, b, p); // a·b = p + e
  const s = p + c;
  const t = twoSumErr(p, c, s); // p + c = s + t
  const u = t + e;
  const ue = twoSumErr(t, e, u); // exact value X = s + u + ue
  const r = s + u;
  if (ue === 0) return r; // s + u is X exactly: r = RN(X)
  if (r === 0 || Math.abs(u) > Math.abs(r) * 0.125 || Math.abs(r) < 2 ** -900) return fmaExact(a, b, c);
  const re = twoSumErr(s, u, r); // s + u = r + re
  if (re === 0) return r; // |ue| < ulp(u) ≤ ulp(r)/4: cannot cross a midpoint
  const nb = nextToward(r, re);
  if (re !== (nb - r) / 2) return r; // s + u not a tie: X lies on the same side
  // s + u is exactly half-way between r and nb; the residual ue decides
  return (ue > 0) === (re > 0) ? nb : r;
}
