/**
 * The reserved evaluation set: one photo per wallpaper of Debian's plasma-workspace-wallpapers
 * (never used for training or tuning), scaled to a 512-px short side.
 *   apt-get install plasma-workspace-wallpapers && npx tsx scripts/prepare-eval-data.ts OUT_DIR
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const out = process.argv[2] ?? 'data/eval';
const root = '/usr/share/wallpapers';
if (!existsSync(root)) throw new Error(`${root} not found: apt-get install plasma-workspace-wallpapers`);
mkdirSync(out, { recursive: true });
let n = 0;
for (const wp of readdirSync(root).sort()) {
  const dir = join(root, wp, 'contents', 'images');
  if (!existsSync(dir)) continue;
  // the largest landscape rendition of each wallpaper
  const files = readdirSync(dir).filter((f) => /^(\d+)x(\d+)\.(jpe?g|png)$/i.test(f));
  const land = files.map((f) => f.match(/^(\d+)x(\d+)/)!).filter((m) => Number(m[1]) > Number(m[2]));
  if (!land.length) continue;
  land.sort((a, b) => Number(b[1]) * Number(b[2]) - Number(a[1]) * Number(a[2]));
  const pick = files.find((f) => f.startsWith(land[0]![0]))!;
  await sharp(join(dir, pick)).resize({ height: 512 }).removeAlpha().png().toFile(join(out, `${wp}.png`));
  n++;
}
console.log(`wrote ${n} evaluation images to ${out}`);
