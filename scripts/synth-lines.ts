/**
 * Training photos with straight "stems" drawn across them: the photo with one to three bands (a
 * stem, a cable, a branch, a post: 0.8–3.5 % of the short side wide, shaded like a cylinder, anti-aliased, sometimes
 * defocused), so that the random holes of training often cut a line whose continuation is certain.
 * The masked L1 on natural photos rarely shows such a case clearly; the README example's stem
 * (a line through a hole) is what the bundled model does not continue.
 *   npx tsx scripts/synth-lines.ts SRC_DIR OUT_DIR [--count N=200] [--seed S=1]
 * Writes OUT_DIR/<photo stem>__lines.png for N photos of SRC_DIR chosen by the seed; the colours
 * come from the photo itself (a pixel's colour, lighter or darker) or from a small palette of
 * plant, bark, metal and paint colours. Generated data: never from the reserved packages (the
 * sources are the training folder).
 */
import sharp from 'sharp';
import { mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { listImageFiles } from '../src/data/images.js';
import { SeededNoise } from '../src/util/noise.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { count: { type: 'string', default: '200' }, seed: { type: 'string', default: '1' } } });
const [src, out] = positionals;
if (!src || !out) throw new Error('usage: synth-lines.ts SRC_DIR OUT_DIR [--count N] [--seed S]');
const count = Number(values.count);
if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a positive integer (got "${values.count}")`);
const rnd = new SeededNoise(Number(values.seed));
const u = (a = 0, b = 1) => a + (b - a) * rnd.uniform();
const PALETTE = [[112, 170, 70], [150, 200, 110], [90, 120, 50], [110, 80, 50], [70, 50, 35], [200, 200, 195], [40, 40, 45], [230, 225, 210], [170, 60, 40]];

const files = listImageFiles(src);
const picked = new Set<number>();
while (picked.size < Math.min(count, files.length)) picked.add(Math.floor(u() * files.length));
mkdirSync(out, { recursive: true });
for (const i of [...picked].sort((a, b) => a - b)) {
  const file = files[i]!;
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const W = info.width, H = info.height;
  const img = Float32Array.from(data);
  const bands = 1 + Math.floor(u() * 3);
  for (let b = 0; b < bands; b++) {
    // a line through a random point at a random angle, across the whole photo
    const px = u(0.15, 0.85) * W, py = u(0.15, 0.85) * H, ang = u(0, Math.PI);
    const nx = -Math.sin(ang), ny = Math.cos(ang);
    // width relative to the photo, so that the zoomed training crops (128·z px, z in [1, 4]) show
    // lines of 1–20 px; sometimes out of focus
    const w = Math.max(2, u(0.008, 0.035) * Math.min(W, H));
    const soft = u() < 0.3 ? Math.max(0.5, u(0.1, 0.4) * w) : 0.5;
    const p = Math.floor(u() * W * H);
    const base = u() < 0.5 ? [0, 1, 2].map((c) => Math.min(255, data[p * 3 + c]! * u(0.6, 1.5))) : PALETTE[Math.floor(u() * PALETTE.length)]!;
    const shade = u(0.15, 0.45), along = u(-0.25, 0.25);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const d = (x - px) * nx + (y - py) * ny;
        const a = Math.min(1, Math.max(0, (w / 2 + soft - Math.abs(d)) / (2 * soft)));
        if (a <= 0) continue;
        const r = Math.min(1, Math.abs(d) / (w / 2));
        const t = ((x - px) * ny - (y - py) * nx) / Math.max(W, H);
        const k = (1 - shade) + shade * 2 * (1 - r * r) * 0.5 + along * t;
        for (let c = 0; c < 3; c++) {
          const q = (y * W + x) * 3 + c;
          img[q] = (1 - a) * img[q]! + a * Math.min(255, Math.max(0, base[c]! * k));
        }
      }
    }
  }
  const name = `${basename(file, extname(file))}__lines.png`;
  await sharp(Buffer.from(Uint8Array.from(img, (v) => Math.round(v))), { raw: { width: W, height: H, channels: 3 } }).png().toFile(join(out, name));
}
console.log(`wrote ${picked.size} photos with lines to ${out}`);
