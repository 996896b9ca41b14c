/**
 * A measurement, not part of the library: Criminisi, Pérez and Toyama's exemplar-based inpainting
 * (2004; fill-front priority = confidence × isophote data term, 9×9 patches copied from the best
 * SSD match within ±64 px) against OpenCV Navier–Stokes on `eval`'s pairs. It continues lines
 * through a hole (the README example's stem runs straight) but copies patches: 3 dB below
 * Navier–Stokes in PSNR on the validation split (docs/training.md, "Measured in session 10").
 *   npx tsx scripts/exemplar-eval.ts IMAGES OUT [PAIRS_PER_BUCKET=5]
 */
import { baselineMethod, evaluate, parseRatioList, type Method } from '../src/eval/index.js';
import { writeReport } from '../src/eval/report.js';

function criminisi(rgb: Float32Array, hole: Uint8Array, W: number, H: number, opts: { half?: number; search?: number } = {}): Float32Array {
  const half = opts.half ?? 4, search = opts.search ?? 64;
  const img = Float32Array.from(rgb); // interleaved HWC, 0..255
  const miss = Uint8Array.from(hole);
  const conf = Float32Array.from(hole, (h) => (h ? 0 : 1));
  const gray = (p: number) => 0.299 * img[p * 3]! + 0.587 * img[p * 3 + 1]! + 0.114 * img[p * 3 + 2]!;
  let left = miss.reduce((a, b) => a + b, 0);
  const inside = (x: number, y: number) => x >= 0 && y >= 0 && x < W && y < H;
  while (left > 0) {
    // fill front and priorities
    let best = -1, bestP = -1;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const p = y * W + x;
      if (!miss[p]) continue;
      let front = false;
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) { const xx = x + dx!, yy = y + dy!; if (inside(xx, yy) && !miss[yy * W + xx]) front = true; }
      if (!front) continue;
      let c = 0, n = 0;
      for (let j = -half; j <= half; j++) for (let i = -half; i <= half; i++) { const xx = x + i, yy = y + j; if (!inside(xx, yy)) continue; n++; c += conf[yy * W + xx]!; }
      c /= n;
      // normal of the front: gradient of the known indicator (3x3 Sobel)
      let nx = 0, ny = 0;
      for (let j = -1; j <= 1; j++) for (let i = -1; i <= 1; i++) { const xx = Math.min(W - 1, Math.max(0, x + i)), yy = Math.min(H - 1, Math.max(0, y + j)); const k = miss[yy * W + xx] ? 0 : 1; nx += i * (j === 0 ? 2 : 1) * k; ny += j * (i === 0 ? 2 : 1) * k; }
      const nn = Math.hypot(nx, ny) || 1; nx /= nn; ny /= nn;
      // strongest isophote among known pixels of the patch with known neighbours
      let gx = 0, gy = 0, gm = 0;
      for (let j = -half; j <= half; j++) for (let i = -half; i <= half; i++) {
        const xx = x + i, yy = y + j;
        if (xx < 1 || yy < 1 || xx >= W - 1 || yy >= H - 1) continue;
        const q = yy * W + xx;
        if (miss[q] || miss[q - 1] || miss[q + 1] || miss[q - W] || miss[q + W]) continue;
        const ax = (gray(q + 1) - gray(q - 1)) / 2, ay = (gray(q + W) - gray(q - W)) / 2;
        const m = ax * ax + ay * ay;
        if (m > gm) { gm = m; gx = ax; gy = ay; }
      }
      // isophote = gradient rotated 90°: (-gy, gx)
      const d = Math.abs(-gy * nx + gx * ny) / 255 + 1e-3;
      const P = c * d;
      if (P > bestP) { bestP = P; best = p; }
    }
    const bx = best % W, by = Math.floor(best / W);
    // exemplar search: fully known patches within ±search
    let bq = -1, bd = Infinity;
    for (let qy = Math.max(half, by - search); qy <= Math.min(H - 1 - half, by + search); qy++) for (let qx = Math.max(half, bx - search); qx <= Math.min(W - 1 - half, bx + search); qx++) {
      let ok = true, ssd = 0;
      for (let j = -half; j <= half && ok; j++) for (let i = -half; i <= half; i++) {
        const s = (qy + j) * W + qx + i;
        if (miss[s]) { ok = false; break; }
        const xx = bx + i, yy = by + j;
        if (!inside(xx, yy)) continue;
        const t = yy * W + xx;
        if (miss[t]) continue;
        for (let c = 0; c < 3; c++) { const e = img[s * 3 + c]! - img[t * 3 + c]!; ssd += e * e; }
        if (ssd >= bd) { ok = false; break; }
      }
      if (ok && ssd < bd) { bd = ssd; bq = qy * W + qx; }
    }
    if (bq < 0) throw new Error(`no fully known ${2 * half + 1}×${2 * half + 1} patch within ±${search} px of (${bx}, ${by})`);
    const cP = (() => { let c = 0, n = 0; for (let j = -half; j <= half; j++) for (let i = -half; i <= half; i++) { const xx = bx + i, yy = by + j; if (!inside(xx, yy)) continue; n++; c += conf[yy * W + xx]!; } return c / n; })();
    const qx = bq % W, qy = Math.floor(bq / W);
    for (let j = -half; j <= half; j++) for (let i = -half; i <= half; i++) {
      const xx = bx + i, yy = by + j;
      if (!inside(xx, yy)) continue;
      const t = yy * W + xx;
      if (!miss[t]) continue;
      const s = (qy + j) * W + qx + i;
      for (let c = 0; c < 3; c++) img[t * 3 + c] = img[s * 3 + c]!;
      miss[t] = 0; conf[t] = cP; left--;
    }
  }
  return img;
}

const [images, out, count = '5'] = process.argv.slice(2);
if (!images || !out) throw new Error('usage: exemplar-eval.ts IMAGES OUT [PAIRS_PER_BUCKET]');
const crim: Method = {
  name: 'criminisi', label: 'criminisi', info: () => ({}),
  async run(img, holes) {
    const data = Uint8Array.from(img.data as Uint8Array);
    const f = criminisi(Float32Array.from(data, (v, i) => (holes[Math.floor(i / 3)] ? 0 : v)), holes, img.width, img.height);
    for (let i = 0; i < data.length; i++) if (holes[Math.floor(i / 3)]) data[i] = Math.round(f[i]!);
    return { ...img, data };
  },
};
const res = await evaluate({ images, ratios: parseRatioList('0.1-0.2,0.2-0.3,0.3-0.4,0.4-0.5'), count: Number(count), seed: 0, size: 128, methods: [crim, baselineMethod('ns')], outDir: out, gridSamples: 2, warn: () => {} });
writeReport(res, out);
console.log(`wrote ${out}/report.md`);
