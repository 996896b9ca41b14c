/**
 * The README's example figure: the photo, the photo with its hole blanked out, the model's fill,
 * and OpenCV Telea's fill for comparison, side by side (docs/readme-example.png).
 *   npx tsx scripts/readme-figure.ts [IMAGE MASK OUT.png] [--checkpoints DIR...]
 */
import sharp from 'sharp';
import { parseArgs } from 'node:util';
import { inpaint } from '../src/inpaint/index.js';
import { readImage, toRgbFloat } from '../src/image/io.js';
import { baselineMethod } from '../src/eval/baselines.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { checkpoints: { type: 'string', multiple: true }, seed: { type: 'string', default: '0' } } });
const [imagePath = 'examples/ladybird.jpg', maskPath = 'examples/ladybird_mask.png', out = 'docs/readme-example.png'] = positionals;

const img = await readImage(imagePath);
const mask = await readImage(maskPath, 'mask');
const { width: W, height: H } = img;
const { image: filled } = await inpaint(imagePath, maskPath, { seed: Number(values.seed), checkpoints: values.checkpoints });

const rgb8 = (data: Float32Array) => {
  const b = Buffer.alloc(W * H * 3);
  for (let i = 0; i < W * H * 3; i++) b[i] = Math.round(Math.min(1, Math.max(0, data[i]!)) * 255);
  return b;
};
// toRgbFloat is planar (CHW); the panels are interleaved
const hwc = (chw: Float32Array) => Float32Array.from({ length: W * H * 3 }, (_, i) => chw[(i % 3) * W * H + Math.floor(i / 3)]!);
const holes = Uint8Array.from({ length: W * H }, (_, i) => (mask.data[i * mask.channels]! >= (mask.bitDepth === 16 ? 32768 : 128) ? 1 : 0));
const photo = hwc(toRgbFloat(img));
const blank = Float32Array.from(photo, (v, i) => (holes[Math.floor(i / 3)] ? 1 : v));
const teleaMethod = baselineMethod('telea');
await teleaMethod.prepare?.();
const rgbImg = { width: W, height: H, channels: 3 as const, bitDepth: 8 as const, data: Uint8Array.from(rgb8(photo)) };
const teleaFill = await teleaMethod.run(rgbImg, holes, { seed: 0 });
const panels = [rgb8(photo), rgb8(blank), rgb8(hwc(toRgbFloat(filled))), rgb8(hwc(toRgbFloat(teleaFill)))];
const gap = 8;
const canvas = sharp({ create: { width: 4 * W + 3 * gap, height: H, channels: 3, background: '#ffffff' } });
await canvas
  .composite(panels.map((p, k) => ({ input: p, raw: { width: W, height: H, channels: 3 as const }, left: k * (W + gap), top: 0 })))
  .png()
  .toFile(out);
console.log(`wrote ${out}: photo | hole | StrDiffusion (this model) | OpenCV Telea`);
