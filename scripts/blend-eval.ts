/**
 * A measurement of the PSNR / texture trade-off between the `one-call` estimate and a sample of the
 * model's default sampler, on `eval`'s pairs and seeds: both, their 50/50 mix, and frequency splits
 * (the estimate's Gaussian low-pass of σ = 1 or 2 px plus the sample's high-pass). Results in
 * docs/training.md, "Measured in session 9".
 *   npx tsx scripts/blend-eval.ts IMAGES MODEL_DIR OUT [PAIRS_PER_BUCKET=5] [--baselines]
 */
import { baselineMethod, evaluate, parseRatioList, type Method } from '../src/eval/index.js';
import { writeReport } from '../src/eval/report.js';
import { inpaint } from '../src/inpaint/index.js';
import type { RasterImage } from '../src/image/io.js';
const args = process.argv.slice(2);
const baselines = args.includes('--baselines');
const [images, ckpt, out, count = '5'] = args.filter((a) => a !== '--baselines');
if (!images || !ckpt || !out) throw new Error('usage: blend-eval.ts IMAGES MODEL_DIR OUT');
const cache = new Map<string, { a: Uint8Array; b: Uint8Array }>();
const maskOf = (holes: Uint8Array, W: number, H: number): RasterImage => ({ width: W, height: H, channels: 1, bitDepth: 8, data: holes.map((v) => (v ? 255 : 0)) });
async function both(img: RasterImage, holes: Uint8Array, seed: number) {
  const key = `${seed}`;
  if (!cache.has(key)) {
    const a = await inpaint(img, maskOf(holes, img.width, img.height), { seed, checkpoints: [ckpt], sampler: 'one-call' });
    const b = await inpaint(img, maskOf(holes, img.width, img.height), { seed, checkpoints: [ckpt] });
    cache.set(key, { a: a.image.data as Uint8Array, b: b.image.data as Uint8Array });
  }
  return cache.get(key)!;
}
function blur(d: Uint8Array, W: number, H: number, sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma), k: number[] = [];
  for (let i = -r; i <= r; i++) k.push(Math.exp(-(i * i) / (2 * sigma * sigma)));
  const ks = k.reduce((a, b) => a + b, 0);
  const tmp = new Float32Array(d.length), out = new Float32Array(d.length);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) { let s = 0; for (let i = -r; i <= r; i++) { const xx = Math.min(W - 1, Math.max(0, x + i)); s += k[i + r]! * d[(y * W + xx) * 3 + c]!; } tmp[(y * W + x) * 3 + c] = s / ks; }
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) { let s = 0; for (let i = -r; i <= r; i++) { const yy = Math.min(H - 1, Math.max(0, y + i)); s += k[i + r]! * tmp[(yy * W + x) * 3 + c]!; } out[(y * W + x) * 3 + c] = s / ks; }
  return out;
}
const mk = (name: string, f: (a: Uint8Array, b: Uint8Array, W: number, H: number) => ArrayLike<number>): Method => ({
  name, label: name, info: () => ({}),
  async run(img, holes, ctx) {
    const { a, b } = await both(img, holes, ctx.seed);
    const v = f(a, b, img.width, img.height);
    const data = Uint8Array.from(img.data as Uint8Array);
    for (let p = 0; p < holes.length; p++) if (holes[p]) for (let c = 0; c < 3; c++) data[p * 3 + c] = Math.max(0, Math.min(255, Math.round(v[p * 3 + c]!)));
    return { ...img, data };
  },
});
const methods = [
  mk('onecall', (a) => a),
  mk('sample', (_a, b) => b),
  mk('mix50', (a, b) => Float32Array.from(a, (v, i) => 0.5 * v + 0.5 * b[i]!)),
  ...[1, 2].map((s) => mk(`split${s}`, (a, b, W, H) => { const la = blur(a, W, H, s), lb = blur(b, W, H, s); return Float32Array.from(a, (_v, i) => la[i]! + (b[i]! - lb[i]!)); })),
];
if (baselines) methods.push(baselineMethod('telea'), baselineMethod('ns'));
const res = await evaluate({ images, ratios: parseRatioList('0.1-0.2,0.2-0.3,0.3-0.4,0.4-0.5'), count: Number(count), seed: 0, size: 128, methods, outDir: out, gridSamples: 2, warn: () => {} });
writeReport(res, out);
console.log(`wrote ${out}/report.md`);
