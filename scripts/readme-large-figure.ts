/**
 * The README's large-photo figure (docs/large-photo-example.png): holes in a photo of many
 * megapixels, filled at the photo's own resolution, shown as native-resolution crops:
 * the photo with its hole painted red | this model | OpenCV Telea, one row per crop.
 *   npx tsx scripts/readme-large-figure.ts PHOTO OUT.png --hole scratches|spot:X,Y,R --crop X,Y,S [--crop …]
 * `scratches`: two thin lines (4 and 3 px) across the whole photo; `spot:X,Y,R`: a disc of radius R
 * (a small object). Crops are S×S squares at (X, Y), shown at native resolution (downscaled to
 * 320 px only when S is larger). The mask is written next to OUT (OUT-mask.png) so the CLI can
 * reproduce the fill: `strdiffusion inpaint --image PHOTO --mask OUT-mask.png --out filled.png`.
 */
import sharp from 'sharp';
import { parseArgs } from 'node:util';
import { inpaint } from '../src/inpaint/index.js';
import { readImage } from '../src/image/io.js';
import { baselineMethod } from '../src/eval/baselines.js';
import type { RasterImage } from '../src/image/raster.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { hole: { type: 'string', default: 'scratches' }, crop: { type: 'string', multiple: true }, seed: { type: 'string', default: '0' }, checkpoints: { type: 'string', multiple: true } },
});
const [photoPath, out] = positionals;
if (!photoPath || !out) throw new Error('usage: readme-large-figure.ts PHOTO OUT.png --hole scratches|spot:X,Y,R --crop X,Y,S [--crop …]');
const crops = (values.crop ?? []).map((c) => c.split(',').map(Number) as [number, number, number]);
if (crops.length === 0 || crops.some((c) => c.length !== 3 || c.some((v) => !Number.isFinite(v)))) throw new Error('--crop X,Y,S (at least one)');

const img = await readImage(photoPath, 'image', { maxMegapixels: 50 });
const { width: W, height: H } = img;
const holes = new Uint8Array(W * H);
if (values.hole === 'scratches') {
  // two slightly curved scratches crossing the photo, 4 and 3 px wide
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const a = y - (0.15 * H + 0.45 * x + 0.00002 * x * x);
      const b = x - (0.7 * W - 0.35 * y);
      if (Math.abs(a) < 2 || Math.abs(b) < 1.5) holes[y * W + x] = 1;
    }
  }
} else if (values.hole!.startsWith('spot:')) {
  const [cx, cy, r] = values.hole!.slice(5).split(',').map(Number) as [number, number, number];
  for (let y = Math.max(0, cy - r); y <= Math.min(H - 1, cy + r); y++) for (let x = Math.max(0, cx - r); x <= Math.min(W - 1, cx + r); x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) holes[y * W + x] = 1;
} else throw new Error(`--hole must be scratches or spot:X,Y,R (got ${values.hole})`);

const maskPath = out.replace(/\.png$/, '') + '-mask.png';
await sharp(Buffer.from(holes.map((h) => (h ? 255 : 0))), { raw: { width: W, height: H, channels: 1 } }).png().toFile(maskPath);

const t0 = performance.now();
const warnings: string[] = [];
const { image: filled, windows } = await inpaint(photoPath, maskPath, { seed: Number(values.seed), checkpoints: values.checkpoints, maxMegapixels: 50, warn: (m) => warnings.push(m) });
const seconds = (performance.now() - t0) / 1000;

const rgb = (im: RasterImage): Uint8Array => {
  if (im.bitDepth !== 8 || im.channels < 3) throw new Error('the figure needs an 8-bit RGB photo');
  if (im.channels === 3) return im.data as Uint8Array;
  return Uint8Array.from({ length: W * H * 3 }, (_, i) => im.data[Math.floor(i / 3) * im.channels + (i % 3)]!);
};
const photo = rgb(img);
const telea = baselineMethod('telea');
await telea.prepare?.();
const teleaImg = rgb(await telea.run({ width: W, height: H, channels: 3, bitDepth: 8, data: photo }, holes, { seed: 0 }));
const painted = Uint8Array.from(photo, (v, i) => (holes[Math.floor(i / 3)] ? [230, 20, 20][i % 3]! : v));

const PANEL = 320;
const gap = 6;
const panel = async (data: Uint8Array, [x, y, s]: [number, number, number]) =>
  sharp(Buffer.from(data), { raw: { width: W, height: H, channels: 3 } }).extract({ left: x, top: y, width: s, height: s }).resize(PANEL, PANEL, { kernel: s > PANEL ? 'lanczos3' : 'nearest' }).raw().toBuffer();
const tiles: sharp.OverlayOptions[] = [];
for (const [r, c] of crops.entries()) {
  const row = [painted, rgb(filled), teleaImg];
  for (const [k, d] of row.entries()) tiles.push({ input: await panel(d, c), raw: { width: PANEL, height: PANEL, channels: 3 }, left: k * (PANEL + gap), top: r * (PANEL + gap) });
}
await sharp({ create: { width: 3 * PANEL + 2 * gap, height: crops.length * (PANEL + gap) - gap, channels: 3, background: '#ffffff' } }).composite(tiles).png().toFile(out);
console.log(`wrote ${out} (${W}×${H}, ${holes.reduce((a, b) => a + b, 0)} hole pixels, ${windows.length} windows, ${seconds.toFixed(0)} s; crops: hole in red | this model | OpenCV Telea)`);
for (const w of warnings) console.log(`warning: ${w}`);
