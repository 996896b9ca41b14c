/**
 * A measurement of the PSNR / texture trade-off between the `one-call` estimate and a
 * `no-resampling` sample (the trajectory `split` uses), on `eval`'s pairs and seeds: both, their
 * 50/50 mix, and frequency splits (the `split` sampler's combination, src/sampler/variants/split.ts,
 * at σ = 1, 1.3 and 2 px). Results in docs/training.md, "Measured in session 9" (a plain,
 * unnormalised blur then) and "Measured in session 10".
 *   npx tsx scripts/blend-eval.ts IMAGES MODEL_DIR OUT [PAIRS_PER_BUCKET=5] [--baselines]
 */
import { baselineMethod, evaluate, parseRatioList, type Method } from '../src/eval/index.js';
import { writeReport } from '../src/eval/report.js';
import { inpaint } from '../src/inpaint/index.js';
import type { RasterImage } from '../src/image/io.js';
import { SPLIT_BASE, splitBands } from '../src/sampler/variants/split.js';
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
    const b = await inpaint(img, maskOf(holes, img.width, img.height), { seed, checkpoints: [ckpt], sampler: SPLIT_BASE });
    cache.set(key, { a: a.image.data as Uint8Array, b: b.image.data as Uint8Array });
  }
  return cache.get(key)!;
}
/** splitBands on the interleaved uint8 outputs (planar inside), hole = 1 in `holes`. */
function split(a: Uint8Array, b: Uint8Array, holes: Uint8Array, W: number, H: number, sigma: number): Float32Array {
  const hw = W * H;
  const planar = (d: Uint8Array) => Float32Array.from({ length: 3 * hw }, (_, i) => d[(i % hw) * 3 + Math.floor(i / hw)]!);
  const out = splitBands(planar(a), planar(b), Float32Array.from(holes, (h) => 1 - h), 3, H, W, sigma);
  return Float32Array.from({ length: 3 * hw }, (_, i) => out[Math.floor(i / 3) + (i % 3) * hw]!);
}
const mk = (name: string, f: (a: Uint8Array, b: Uint8Array, W: number, H: number, holes: Uint8Array) => ArrayLike<number>): Method => ({
  name, label: name, info: () => ({}),
  async run(img, holes, ctx) {
    const { a, b } = await both(img, holes, ctx.seed);
    const v = f(a, b, img.width, img.height, holes);
    const data = Uint8Array.from(img.data as Uint8Array);
    for (let p = 0; p < holes.length; p++) if (holes[p]) for (let c = 0; c < 3; c++) data[p * 3 + c] = Math.max(0, Math.min(255, Math.round(v[p * 3 + c]!)));
    return { ...img, data };
  },
});
const methods = [
  mk('onecall', (a) => a),
  mk('sample', (_a, b) => b),
  mk('mix50', (a, b) => Float32Array.from(a, (v, i) => 0.5 * v + 0.5 * b[i]!)),
  ...[1, 1.3, 2].map((s) => mk(`split${s}`, (a, b, W, H, holes) => split(a, b, holes, W, H, s))),
];
if (baselines) methods.push(baselineMethod('telea'), baselineMethod('ns'));
const res = await evaluate({ images, ratios: parseRatioList('0.1-0.2,0.2-0.3,0.3-0.4,0.4-0.5'), count: Number(count), seed: 0, size: 128, methods, outDir: out, gridSamples: 2, warn: () => {} });
writeReport(res, out);
console.log(`wrote ${out}/report.md`);
