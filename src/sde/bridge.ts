/**
 * Straight edges bridged across a hole: what the classical fills cannot do and a user expects of
 * a stem, a cable or a horizon crossing a removed object.
 *
 * Telea and Navier–Stokes propagate values inwards from the hole's boundary; a line entering on
 * one side and leaving on the other comes out bent into a V or dissolved. Here the edges that run
 * into the hole are found (Canny on the known pixels near it), paired when two of them continue
 * each other (collinear within a few degrees, the same colours on the same sides), and each pair
 * is joined by a straight segment. Near the segments the hole is filled again: a hole pixel next to a
 * segment takes the values where the line through it parallel to the segment leaves the hole on
 * both sides (an edge's blur, a stem's shading carried across as they are), and a band around the
 * segments is filled harmonically with the pixel links that cross a segment cut, so each side's
 * colour reaches the segment and no further: a stem's two edges make a corridor of the stem's
 * colour. Outside the band the base fill stays, and a hole without any pair keeps it exactly.
 *
 * Planar layouts throughout: x and F are [C,H,W], the mask [H,W] with m ≥ 0.5 known (the
 * project's convention: 1 = known, 0 = hole). Coordinates are (x = column, y = row) at pixel centres.
 */
import { canny } from '../structure/canny.js';

/** A straight segment joining two paired edge ends (pixel coordinates, x = column). */
export interface Bridge {
  ax: number;
  ay: number;
  bx: number;
  by: number;
}

/** How far from the hole (pixels, chessboard) edges are looked at. */
const RING = 6;
/** Edge pixels nearer the hole than this are skipped: the smoothing there sees the base fill. */
const RING_INNER = 2;
/** Fewest edge pixels an edge end must have in the ring. */
const MIN_PIXELS = 4;
/** Largest spread across an edge end's fitted line (px, standard deviation): straight ends only. */
const MAX_SPREAD = 0.6;
/** Largest angle between an edge end's direction and the segment joining it to its partner. */
const MAX_ANGLE = (18 * Math.PI) / 180;
/** Smallest colour step across an edge (RMS over channels, image units of 0…1 images). */
const MIN_CONTRAST = 0.06;
/** Largest colour difference between the same side of two paired ends, as a share of their contrast. */
const MAX_MISMATCH = 0.5;
/** Canny on the gray of the known pixels (the hole holds the base fill); skimage's defaults. */
const CANNY_SIGMA = 1;
const CANNY_LOW = 0.1;
const CANNY_HIGH = 0.2;
/**
 * Hole pixels within this distance of a bridge (px) are refilled; the rest keep the base fill.
 * Measured on the validation pairs (128 px, docs/training.md session 11): a band of 8–20 px gains
 * the same (≤ 0.06 dB PSNR, SWD ≤ 1 % better than Navier–Stokes); refilling the whole hole
 * harmonically gains 0.2–0.3 dB PSNR but blurs it (hole SWD 6–27 % worse). 20 rather than 12: in
 * the README example the narrower band leaves Navier–Stokes's fan-shaped smear beside the stem.
 */
const BAND = 20;
/** Sweeps of the harmonic solve (SOR); enough for the window sizes used (≤ 256 px holes). */
const SOR_SWEEPS = 300;
const SOR_OMEGA = 1.9;

interface EdgeEnd {
  /** end point on the fitted line, nearest the hole */
  px: number;
  py: number;
  /** unit direction pointing into the hole */
  dx: number;
  dy: number;
  /** mean colours left and right of the direction (left = (−dy, dx)) */
  left: Float64Array;
  right: Float64Array;
  contrast: number;
}

/** Chessboard distance from the hole (0 in it), capped at RING + 1. */
function ringDistance(known: Uint8Array, H: number, W: number): Uint8Array {
  const far = RING + 1;
  const d = new Uint8Array(H * W).fill(far);
  let front: number[] = [];
  for (let p = 0; p < H * W; p++) if (!known[p]) { d[p] = 0; front.push(p); }
  for (let k = 1; k <= RING && front.length; k++) {
    const next: number[] = [];
    for (const p of front) {
      const y = (p / W) | 0, x = p - y * W;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const q = yy * W + xx;
        if (d[q]! > k) { d[q] = k; next.push(q); }
      }
    }
    front = next;
  }
  return d;
}

function colourAt(x: Float32Array, C: number, hw: number, p: number, out: Float64Array): void {
  for (let c = 0; c < C; c++) out[c] = out[c]! + x[c * hw + p]!;
}

function rms(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let c = 0; c < a.length; c++) s += (a[c]! - b[c]!) ** 2;
  return Math.sqrt(s / a.length);
}

/** The straight edge ends that run into the hole, with the colours on their two sides. */
function edgeEnds(x: Float32Array, F: Float32Array, known: Uint8Array, dist: Uint8Array, C: number, H: number, W: number): EdgeEnd[] {
  const hw = H * W;
  const gray = new Float64Array(hw);
  for (let p = 0; p < hw; p++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += known[p] ? x[c * hw + p]! : F[c * hw + p]!;
    gray[p] = s / C;
  }
  const edges = canny(gray, H, W, CANNY_SIGMA, CANNY_LOW, CANNY_HIGH);
  const inRing = (p: number) => edges[p] === 1 && dist[p]! >= RING_INNER && dist[p]! <= RING;
  const seen = new Uint8Array(hw);
  const ends: EdgeEnd[] = [];
  for (let p0 = 0; p0 < hw; p0++) {
    if (seen[p0] || !inRing(p0)) continue;
    // one 8-connected chain of edge pixels within the ring
    const chain: number[] = [p0];
    seen[p0] = 1;
    for (let i = 0; i < chain.length; i++) {
      const p = chain[i]!, y = (p / W) | 0, xx = p - y * W;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, x2 = xx + dx;
        if (yy < 0 || yy >= H || x2 < 0 || x2 >= W) continue;
        const q = yy * W + x2;
        if (!seen[q] && inRing(q)) { seen[q] = 1; chain.push(q); }
      }
    }
    if (chain.length < MIN_PIXELS) continue;
    const end = fitEnd(chain, x, known, dist, C, H, W);
    if (end) ends.push(end);
  }
  return ends;
}

/** A chain's line fit; null unless it is straight, runs into the hole and has contrast. */
function fitEnd(chain: number[], x: Float32Array, known: Uint8Array, dist: Uint8Array, C: number, H: number, W: number): EdgeEnd | null {
  const n = chain.length;
  let mx = 0, my = 0;
  for (const p of chain) { mx += p % W; my += (p / W) | 0; }
  mx /= n; my /= n;
  let sxx = 0, syy = 0, sxy = 0;
  for (const p of chain) {
    const u = (p % W) - mx, v = ((p / W) | 0) - my;
    sxx += u * u; syy += v * v; sxy += u * v;
  }
  sxx /= n; syy /= n; sxy /= n;
  const tr = sxx + syy, det = sxx * syy - sxy * sxy;
  const l1 = tr / 2 + Math.sqrt(Math.max(0, (tr * tr) / 4 - det));
  const l2 = tr - l1;
  if (Math.sqrt(Math.max(0, l2)) > MAX_SPREAD) return null;
  let dx = sxy, dy = l1 - sxx;
  if (Math.abs(dx) + Math.abs(dy) < 1e-12) { dx = sxx >= syy ? 1 : 0; dy = sxx >= syy ? 0 : 1; }
  const len = Math.hypot(dx, dy);
  dx /= len; dy /= len;
  // orient towards the hole: the chain's end with the smaller distance to it
  let tMin = Infinity, tMax = -Infinity, dMin = 0, dMax = 0;
  for (const p of chain) {
    const t = ((p % W) - mx) * dx + (((p / W) | 0) - my) * dy;
    if (t < tMin) { tMin = t; dMin = dist[p]!; }
    if (t > tMax) { tMax = t; dMax = dist[p]!; }
  }
  if (dMin === dMax) return null; // runs along the hole, not into it
  let t = tMax;
  if (dMin < dMax) { dx = -dx; dy = -dy; t = -tMin; }
  const px = mx + dx * t, py = my + dy * t;
  // the ray must reach the hole within the ring
  let enters = false;
  for (let k = 1; k <= RING + 2 && !enters; k++) {
    const yy = Math.round(py + dy * k), xx = Math.round(px + dx * k);
    if (yy < 0 || yy >= H || xx < 0 || xx >= W) break;
    if (!known[yy * W + xx]) enters = true;
  }
  if (!enters) return null;
  // colours two and three pixels either side of the chain
  const hw = H * W;
  const left = new Float64Array(C), right = new Float64Array(C);
  let nl = 0, nr = 0;
  for (const p of chain) {
    const cx = p % W, cy = (p / W) | 0;
    for (const s of [2, 3]) {
      for (const side of [1, -1]) {
        const yy = Math.round(cy + side * s * dx), xx = Math.round(cx - side * s * dy);
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const q = yy * W + xx;
        if (!known[q]) continue;
        if (side === 1) { colourAt(x, C, hw, q, left); nl++; } else { colourAt(x, C, hw, q, right); nr++; }
      }
    }
  }
  if (nl < 3 || nr < 3) return null;
  for (let c = 0; c < C; c++) { left[c] = left[c]! / nl; right[c] = right[c]! / nr; }
  const contrast = rms(left, right);
  if (contrast < MIN_CONTRAST) return null;
  return { px, py, dx, dy, left, right, contrast };
}

/**
 * Pairs of edge ends that continue each other across the hole, as segments. Greedy on a score of
 * the two angles and the colour mismatch; each end is used once. A segment must run through the
 * hole (most of it) and not out through far known pixels.
 */
export function findBridges(x: Float32Array, F: Float32Array, mask: Float32Array, C: number, H: number, W: number): Bridge[] {
  return pairEnds(x, F, knownPixels(mask), C, H, W);
}

/** 1 where the mask says known (m ≥ 0.5). */
function knownPixels(mask: Float32Array): Uint8Array {
  return Uint8Array.from(mask, (m) => (m >= 0.5 ? 1 : 0));
}

function pairEnds(x: Float32Array, F: Float32Array, known: Uint8Array, C: number, H: number, W: number): Bridge[] {
  const dist = ringDistance(known, H, W);
  const ends = edgeEnds(x, F, known, dist, C, H, W);
  const cosMax = Math.cos(MAX_ANGLE);
  const cands: { a: number; b: number; score: number }[] = [];
  for (let i = 0; i < ends.length; i++) {
    for (let j = i + 1; j < ends.length; j++) {
      const a = ends[i]!, b = ends[j]!;
      const sx = b.px - a.px, sy = b.py - a.py, L = Math.hypot(sx, sy);
      if (L < 3) continue;
      const ux = sx / L, uy = sy / L;
      const ca = a.dx * ux + a.dy * uy, cb = -(b.dx * ux + b.dy * uy);
      if (ca < cosMax || cb < cosMax) continue;
      // b runs the other way: its left is the segment's right
      const contrast = Math.min(a.contrast, b.contrast);
      const mismatch = Math.max(rms(a.left, b.right), rms(a.right, b.left));
      if (mismatch > MAX_MISMATCH * contrast) continue;
      let inHole = 0, far = 0;
      const steps = Math.ceil(L);
      for (let k = 0; k <= steps; k++) {
        const yy = Math.round(a.py + (uy * L * k) / steps), xx = Math.round(a.px + (ux * L * k) / steps);
        const d = dist[yy * W + xx]!;
        if (d === 0) inHole++;
        else if (d > RING) far++;
      }
      if (far > 0 || inHole < 0.5 * (steps + 1)) continue;
      cands.push({ a: i, b: j, score: 2 - ca - cb + mismatch / contrast });
    }
  }
  cands.sort((p, q) => p.score - q.score);
  const used = new Uint8Array(ends.length);
  const out: Bridge[] = [];
  for (const c of cands) {
    if (used[c.a] || used[c.b]) continue;
    used[c.a] = used[c.b] = 1;
    const a = ends[c.a]!, b = ends[c.b]!;
    out.push({ ax: a.px, ay: a.py, bx: b.px, by: b.py });
  }
  return out;
}

/** Whether segment p1–p2 properly crosses segment q1–q2 (touching counts). */
function crosses(p1x: number, p1y: number, p2x: number, p2y: number, b: Bridge): boolean {
  const o = (ax: number, ay: number, bx: number, by: number, cx: number, cy: number) => (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
  const d1 = o(b.ax, b.ay, b.bx, b.by, p1x, p1y), d2 = o(b.ax, b.ay, b.bx, b.by, p2x, p2y);
  const d3 = o(p1x, p1y, p2x, p2y, b.ax, b.ay), d4 = o(p1x, p1y, p2x, p2y, b.bx, b.by);
  return d1 * d2 <= 0 && d3 * d4 <= 0 && !(d1 === 0 && d2 === 0);
}

/** Links cut by the bridges: bit 1 = to the right neighbour, bit 2 = to the one below. */
function cutLinks(bridges: Bridge[], H: number, W: number): Uint8Array {
  const cut = new Uint8Array(H * W);
  for (const b of bridges) {
    const x0 = Math.max(0, Math.floor(Math.min(b.ax, b.bx)) - 1), x1 = Math.min(W - 1, Math.ceil(Math.max(b.ax, b.bx)) + 1);
    const y0 = Math.max(0, Math.floor(Math.min(b.ay, b.by)) - 1), y1 = Math.min(H - 1, Math.ceil(Math.max(b.ay, b.by)) + 1);
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
      if (x + 1 < W && crosses(x, y, x + 1, y, b)) cut[y * W + x]! |= 1;
      if (y + 1 < H && crosses(x, y, x, y + 1, b)) cut[y * W + x]! |= 2;
    }
  }
  return cut;
}

/**
 * The harmonic fill of the free pixels (fixed = 0) from start values u0: Dirichlet at the fixed
 * pixels, 4-neighbour links, the `cut` links removed; solved by SOR. A pixel cut off from every
 * neighbour keeps its start value.
 */
function harmonic(u0: Float32Array, fixed: Uint8Array, cut: Uint8Array, C: number, H: number, W: number): Float32Array {
  const hw = H * W;
  const u = Float32Array.from(u0);
  const hole: number[] = [];
  for (let p = 0; p < hw; p++) if (!fixed[p]) hole.push(p);
  // the neighbours each hole pixel may read (-1: none)
  const nb = new Int32Array(hole.length * 4).fill(-1);
  hole.forEach((p, i) => {
    const y = (p / W) | 0, xx = p - y * W;
    if (xx + 1 < W && !(cut[p]! & 1)) nb[i * 4] = p + 1;
    if (xx > 0 && !(cut[p - 1]! & 1)) nb[i * 4 + 1] = p - 1;
    if (y + 1 < H && !(cut[p]! & 2)) nb[i * 4 + 2] = p + W;
    if (y > 0 && !(cut[p - W]! & 2)) nb[i * 4 + 3] = p - W;
  });
  for (let c = 0; c < C; c++) {
    const o = c * hw;
    for (let sweep = 0; sweep < SOR_SWEEPS; sweep++) {
      for (let i = 0; i < hole.length; i++) {
        let s = 0, k = 0;
        for (let j = 0; j < 4; j++) {
          const q = nb[i * 4 + j]!;
          if (q >= 0) { s += u[o + q]!; k++; }
        }
        if (k === 0) continue;
        const p = hole[i]!;
        u[o + p] = u[o + p]! + SOR_OMEGA * (s / k - u[o + p]!);
      }
    }
  }
  return u;
}

/**
 * The base fill F [C,H,W] (hole values) with the found bridges drawn in: within BAND of a bridge
 * the harmonic fill with the crossing links cut (F at the band's edge as its boundary), blended
 * into the transport along the bridge within NEAR…NEAR_FAR px of it; clamped to the known pixels'
 * per-channel range. Returns the bridges (none: F itself, unchanged).
 */
export function bridgeFill(x: Float32Array, mask: Float32Array, F: Float32Array, C: number, H: number, W: number): { fill: Float32Array; bridges: Bridge[] } {
  const known = knownPixels(mask);
  const bridges = pairEnds(x, F, known, C, H, W);
  if (bridges.length === 0) return { fill: F, bridges };
  const hw = H * W;
  // the hole pixels within BAND of a bridge are solved again; the rest keep F (fixed, like known pixels)
  const fixed = Uint8Array.from(known);
  for (let p = 0; p < hw; p++) if (!known[p] && bandDistance(bridges, p % W, (p / W) | 0) > BAND) fixed[p] = 1;
  const start = Float32Array.from(F);
  for (let p = 0; p < hw; p++) if (known[p]) for (let c = 0; c < C; c++) start[c * hw + p] = x[c * hw + p]!;
  const cut = cutLinks(bridges, H, W);
  const bridged = harmonic(start, fixed, cut, C, H, W);
  const { T, w: wT } = transport(x, known, bridges, C, H, W);
  const out = Float32Array.from(F);
  for (let c = 0; c < C; c++) {
    const o = c * hw;
    let lo = Infinity, hi = -Infinity;
    for (let p = 0; p < hw; p++) if (known[p]) { const v = x[o + p]!; if (v < lo) lo = v; if (v > hi) hi = v; }
    for (let p = 0; p < hw; p++) {
      if (known[p]) continue;
      const base = bridged[o + p]!;
      const v = wT[p]! > 0 ? wT[p]! * T[o + p]! + (1 - wT[p]!) * base : base;
      out[o + p] = Math.min(hi, Math.max(lo, v));
    }
  }
  return { fill: out, bridges };
}

/** Distance from (x, y) to the nearest bridge segment. */
function bandDistance(bridges: Bridge[], x: number, y: number): number {
  let best = Infinity;
  for (const b of bridges) {
    const vx = b.bx - b.ax, vy = b.by - b.ay, L2 = vx * vx + vy * vy;
    const t = Math.max(0, Math.min(1, ((x - b.ax) * vx + (y - b.ay) * vy) / L2));
    best = Math.min(best, Math.hypot(x - b.ax - t * vx, y - b.ay - t * vy));
  }
  return best;
}

/** Within this distance of a bridge (px) a hole pixel is transported along it alone; to NEAR_FAR it blends out. */
const NEAR = 4;
const NEAR_FAR = 8;

/** Bilinear sample of channel-planar x at (fx, fy) into `out` if its four pixels are known. */
function knownBilinear(x: Float32Array, known: Uint8Array, C: number, H: number, W: number, fx: number, fy: number, out: Float64Array): boolean {
  const x0 = Math.floor(fx), y0 = Math.floor(fy);
  const p = y0 * W + x0;
  if (!known[p] || !known[p + 1] || !known[p + W] || !known[p + W + 1]) return false;
  const ax = fx - x0, ay = fy - y0, hw = H * W;
  for (let c = 0; c < C; c++) {
    const o = c * hw + p;
    out[c] = (1 - ay) * ((1 - ax) * x[o]! + ax * x[o + 1]!) + ay * ((1 - ax) * x[o + W]! + ax * x[o + W + 1]!);
  }
  return true;
}

/**
 * Walks from (fx, fy) along (ux, uy) in half-pixel steps to the first point whose four pixels are
 * known; its distance, with the colour there in `out`, or −1 if the walk leaves the image first.
 */
function exitAlong(x: Float32Array, known: Uint8Array, C: number, H: number, W: number, fx: number, fy: number, ux: number, uy: number, out: Float64Array): number {
  for (let t = 0.5; ; t += 0.5) {
    const px = fx + ux * t, py = fy + uy * t;
    if (px < 0 || py < 0 || px >= W - 1 || py >= H - 1) return -1;
    if (knownBilinear(x, known, C, H, W, px, py, out)) return t;
  }
}

/**
 * Transport along the bridges: a hole pixel near a bridge takes the values where the line through
 * it parallel to the bridge leaves the hole on both sides, interpolated by distance, so an edge's
 * profile (its blur, a stem's shading) is carried across as it is. w is its weight (0 elsewhere).
 */
function transport(x: Float32Array, known: Uint8Array, bridges: Bridge[], C: number, H: number, W: number): { T: Float32Array; w: Float32Array } {
  const hw = H * W;
  const T = new Float32Array(C * hw), w = new Float32Array(hw);
  const v1 = new Float64Array(C), v2 = new Float64Array(C);
  for (const b of bridges) {
    const L = Math.hypot(b.bx - b.ax, b.by - b.ay);
    const ux = (b.bx - b.ax) / L, uy = (b.by - b.ay) / L;
    for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
      const p = y * W + xx;
      if (known[p]) continue;
      const s = (xx - b.ax) * ux + (y - b.ay) * uy;
      const d = Math.abs(-(xx - b.ax) * uy + (y - b.ay) * ux);
      if (d >= NEAR_FAR || s < -NEAR_FAR || s > L + NEAR_FAR) continue;
      const wt = d <= NEAR ? 1 : 1 - (d - NEAR) / (NEAR_FAR - NEAR);
      if (wt <= w[p]!) continue;
      const t1 = exitAlong(x, known, C, H, W, xx, y, -ux, -uy, v1);
      const t2 = t1 < 0 ? -1 : exitAlong(x, known, C, H, W, xx, y, ux, uy, v2);
      if (t2 < 0) continue;
      w[p] = wt;
      for (let c = 0; c < C; c++) T[c * hw + p] = (t2 * v1[c]! + t1 * v2[c]!) / (t1 + t2);
    }
  }
  return { T, w };
}
