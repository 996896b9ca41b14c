/**
 * Where the model windows go (issue 21, "large photos at their own resolution").
 *
 * One window around the box of all holes scales a photo down as soon as the holes are spread out:
 * two thin scratches across a 512×600 portrait became sub-pixel in a 128 window and came back as
 * blurred lines. Instead the holes are covered by model-size windows at scale 1, and only a hole
 * region that no window can see at scale 1 is scaled down. Per 8-connected hole region:
 *
 * - `single`: its box plus a context margin of size/8 on every side (a side on the image border
 *   needs none) fits in one size×size window: one window at scale 1 centred on the box (exactly
 *   where the old planner put a window that needed no scaling, so those runs keep their pixels).
 *   Nearby single regions whose joint box still fits share the window (dust specks), nearest
 *   first. An image no larger than the window always lands here: the window sees all there is.
 * - `tile`: too long for one window but thin (every hole pixel lies within size/4 of a known pixel,
 *   chessboard distance: strokes up to about size/2 wide): covered by a grid of cells of stride
 *   size − 2·size/8 (≈ 3/4·size); a cell that still holds unfilled hole pixels gets a window
 *   centred on their box, so they keep at least size/8 of context on every side.
 * - `scaled`: thick and too large (a big blob): today's single scaled window around its box with
 *   proportional context (planWindow); the caller says so (inpaint's `warn`).
 *
 * Order and blending: the windows are sampled one after the other (scaled regions first, then the
 * single windows, then the tiles, each group in raster order), and each sees the pixels written
 * by the windows before it as known. A window writes ("commits") only the unfilled hole pixels it
 * is responsible for (its region, or its cell) plus the other unfilled ones in its safe interior
 * (at least size/8 from every window side that is not the image border); the hole pixels near
 * its sides are sampled but thrown away, and a later window, which sees the committed fill as
 * known context, fills them. There is no blending: every hole pixel is written once, by a window
 * in which it had context on all sides, and conditioned on its already filled neighbours, so a
 * fill continues across window borders without the ghosting (two half-weighted samples) a
 * feathered average would leave in texture.
 */
import { planWindow, type WindowPlan } from './window.js';

export type WindowKind = 'single' | 'tile' | 'scaled';

export interface PlannedWindow {
  plan: WindowPlan;
  kind: WindowKind;
  /** the hole pixels (y·width + x, ascending) this window writes; every hole pixel of the image is
   * in exactly one window's list */
  pixels: Uint32Array;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** Context kept around the pixels a scale-1 window writes: size/8. */
export function contextMargin(size: number): number {
  return Math.max(1, Math.floor(size / 8));
}

/** Tile grid stride: size − 2·margin (96 for 128, 24 for 32). */
export function tileStride(size: number): number {
  return Math.max(1, size - 2 * contextMargin(size));
}

/** A region too large for one window is tiled at scale 1 when no hole pixel is further than this
 * from a known pixel (chessboard distance), else scaled down: size/4. */
export function maxTiledDepth(size: number): number {
  return Math.max(1, Math.floor(size / 4));
}

/** 8-connected hole regions: a label per pixel (-1 known), numbered in raster order of their first
 * pixel, with their boxes (x1, y1 exclusive). */
export function holeRegions(holes: Uint8Array, W: number, H: number): { labels: Int32Array; boxes: Box[] } {
  const labels = new Int32Array(W * H).fill(-1);
  const boxes: Box[] = [];
  const stack = new Int32Array(W * H);
  for (let s = 0; s < W * H; s++) {
    if (!holes[s] || labels[s]! >= 0) continue;
    const k = boxes.length;
    const box = { x0: W, y0: H, x1: 0, y1: 0 };
    let top = 0;
    stack[top++] = s;
    labels[s] = k;
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % W;
      const y = (i - x) / W;
      if (x < box.x0) box.x0 = x;
      if (x + 1 > box.x1) box.x1 = x + 1;
      if (y < box.y0) box.y0 = y;
      if (y + 1 > box.y1) box.y1 = y + 1;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= H) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= W) continue;
          const j = yy * W + xx;
          if (holes[j] && labels[j]! < 0) {
            labels[j] = k;
            stack[top++] = j;
          }
        }
      }
    }
    boxes.push(box);
  }
  return { labels, boxes };
}

/** Chessboard distance of every pixel to the nearest known pixel (0 known, ≥ 1 hole; outside the
 * image is not known). Two raster passes (exact for the chessboard metric). */
export function holeDepth(holes: Uint8Array, W: number, H: number): Int32Array {
  const INF = 1 << 30;
  const d = new Int32Array(W * H);
  for (let i = 0; i < W * H; i++) d[i] = holes[i] ? INF : 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      if (d[i] === 0) continue;
      let v = d[i]!;
      if (x > 0) v = Math.min(v, d[i - 1]! + 1);
      if (y > 0) {
        v = Math.min(v, d[i - W]! + 1);
        if (x > 0) v = Math.min(v, d[i - W - 1]! + 1);
        if (x + 1 < W) v = Math.min(v, d[i - W + 1]! + 1);
      }
      d[i] = v;
    }
  }
  for (let y = H - 1; y >= 0; y--) {
    for (let x = W - 1; x >= 0; x--) {
      const i = y * W + x;
      if (d[i] === 0) continue;
      let v = d[i]!;
      if (x + 1 < W) v = Math.min(v, d[i + 1]! + 1);
      if (y + 1 < H) {
        v = Math.min(v, d[i + W]! + 1);
        if (x + 1 < W) v = Math.min(v, d[i + W + 1]! + 1);
        if (x > 0) v = Math.min(v, d[i + W - 1]! + 1);
      }
      d[i] = v;
    }
  }
  return d;
}

/** A scale-1 window (min(size, W) × min(size, H)) centred on `box`, inside the image: where
 * planWindow puts a window that needs no scaling. */
export function windowAt(box: Box, W: number, H: number, size: number): WindowPlan {
  const p = planWindow(box, W, H, size, 0);
  if (p.sw !== p.w || p.sh !== p.h) throw new Error(`windowAt: box ${box.x1 - box.x0}x${box.y1 - box.y0} does not fit a ${size} window`);
  return p;
}

/** Pixel (x, y) of a scale-1 window has at least `margin` context towards every window side that
 * is not the image border. */
function safe(x: number, y: number, p: WindowPlan, W: number, H: number, margin: number): boolean {
  return (p.x === 0 || x - p.x >= margin) && (p.x + p.w === W || p.x + p.w - 1 - x >= margin) && (p.y === 0 || y - p.y >= margin) && (p.y + p.h === H || p.y + p.h - 1 - y >= margin);
}

export interface WindowLayout {
  /** in sampling order */
  windows: PlannedWindow[];
  /** hole regions, their boxes and classes (index = label of holeRegions) */
  regions: { box: Box; depth: number; kind: WindowKind }[];
}

/** The windows that cover every hole pixel of `holes` (1 = hole) in a W×H image (see the top of
 * this file). Depends on the mask only, so the number of windows is known before sampling. */
export function planWindows(holes: Uint8Array, W: number, H: number, size: number): WindowLayout {
  const margin = contextMargin(size);
  const { labels, boxes } = holeRegions(holes, W, H);
  const depthMap = holeDepth(holes, W, H);
  const depth = new Int32Array(boxes.length);
  const count = new Int32Array(boxes.length);
  for (let i = 0; i < W * H; i++) {
    const k = labels[i]!;
    if (k < 0) continue;
    count[k]!++;
    if (depthMap[i]! > depth[k]!) depth[k] = depthMap[i]!;
  }
  /** a scale-1 window centred on the box holds all of it in its safe interior */
  const fits = (box: Box) => {
    if (box.x1 - box.x0 > size || box.y1 - box.y0 > size) return false;
    const p = windowAt(box, W, H, size);
    return safe(box.x0, box.y0, p, W, H, margin) && safe(box.x1 - 1, box.y1 - 1, p, W, H, margin);
  };
  const regions = boxes.map((box, k) => {
    const kind: WindowKind = fits(box) ? 'single' : depth[k]! <= maxTiledDepth(size) ? 'tile' : 'scaled';
    return { box, depth: depth[k]!, kind };
  });

  const windows: PlannedWindow[] = [];
  // 1 = a hole pixel no window has written yet (scaled regions are written by their own window)
  const pending = new Uint8Array(W * H);
  for (let i = 0; i < W * H; i++) {
    const k = labels[i]!;
    if (k >= 0 && regions[k]!.kind !== 'scaled') pending[i] = 1;
  }
  const left = count.slice();

  // scaled regions: the old planner's window around the region, writing that region only
  regions.forEach((r, k) => {
    if (r.kind !== 'scaled') return;
    const px: number[] = [];
    for (let y = r.box.y0; y < r.box.y1; y++) for (let x = r.box.x0; x < r.box.x1; x++) if (labels[y * W + x] === k) px.push(y * W + x);
    windows.push({ plan: planWindow(r.box, W, H, size), kind: 'scaled', pixels: Uint32Array.from(px) });
    left[k] = 0;
  });

  /** a scale-1 window: writes the pending pixels `own` marks, and the other pending ones in its safe interior */
  const commit = (plan: WindowPlan, kind: WindowKind, own: (x: number, y: number, i: number) => boolean) => {
    const px: number[] = [];
    for (let y = plan.y; y < plan.y + plan.h; y++) {
      for (let x = plan.x; x < plan.x + plan.w; x++) {
        const i = y * W + x;
        if (!pending[i] || !(own(x, y, i) || safe(x, y, plan, W, H, margin))) continue;
        px.push(i);
        pending[i] = 0;
        left[labels[i]!]!--;
      }
    }
    windows.push({ plan, kind, pixels: Uint32Array.from(px) });
  };

  // single regions: one window each, centred on its box; nearby single regions that fit in the
  // same window with it (dust specks) join it, nearest first, so they share one window
  const reach = size - 2 * margin;
  regions.forEach((r, k) => {
    if (r.kind !== 'single' || left[k] === 0) return;
    let box = { ...r.box };
    const group = new Set([k]);
    const near: { k: number; d: number }[] = [];
    const seen = new Set<number>([k]);
    for (let y = Math.max(0, r.box.y0 - reach); y < Math.min(H, r.box.y1 + reach); y++) {
      for (let x = Math.max(0, r.box.x0 - reach); x < Math.min(W, r.box.x1 + reach); x++) {
        const j = labels[y * W + x]!;
        if (j < 0 || seen.has(j)) continue;
        seen.add(j);
        if (regions[j]!.kind !== 'single' || left[j] === 0) continue;
        const b = regions[j]!.box;
        near.push({ k: j, d: Math.max(0, b.x0 - r.box.x1, r.box.x0 - b.x1) + Math.max(0, b.y0 - r.box.y1, r.box.y0 - b.y1) });
      }
    }
    near.sort((a, b) => a.d - b.d || a.k - b.k);
    for (const { k: j } of near) {
      const b = regions[j]!.box;
      const u = { x0: Math.min(box.x0, b.x0), y0: Math.min(box.y0, b.y0), x1: Math.max(box.x1, b.x1), y1: Math.max(box.y1, b.y1) };
      if (!fits(u)) continue;
      box = u;
      group.add(j);
    }
    commit(windowAt(box, W, H, size), 'single', (_x, _y, i) => group.has(labels[i]!));
  });

  const s = tileStride(size);
  for (let cy = 0; cy < H; cy += s) {
    for (let cx = 0; cx < W; cx += s) {
      const cell = { x0: cx, y0: cy, x1: Math.min(W, cx + s), y1: Math.min(H, cy + s) };
      const box = { x0: W, y0: H, x1: 0, y1: 0 };
      for (let y = cell.y0; y < cell.y1; y++) {
        for (let x = cell.x0; x < cell.x1; x++) {
          if (!pending[y * W + x]) continue;
          if (x < box.x0) box.x0 = x;
          if (x + 1 > box.x1) box.x1 = x + 1;
          if (y < box.y0) box.y0 = y;
          if (y + 1 > box.y1) box.y1 = y + 1;
        }
      }
      if (box.x1 === 0) continue;
      commit(windowAt(box, W, H, size), 'tile', (x, y) => x >= cell.x0 && x < cell.x1 && y >= cell.y0 && y < cell.y1);
    }
  }
  for (let i = 0; i < W * H; i++) if (pending[i]) throw new Error(`planWindows: hole pixel ${i} has no window`);
  return { windows, regions };
}
