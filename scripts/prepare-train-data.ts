/**
 * Builds the default model's training folder from Debian packages' photos only
 * (mate-backgrounds, lomiri-wallpapers-16.04/-20.04; python3-skimage's data folder if installed).
 * Images are scaled so the short side is 320 px: a 64-px training crop then holds real structure
 * (a crop of a 4K wallpaper would be a flat patch), and decoding stays fast.
 *   apt-get install mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
 *   npx tsx scripts/prepare-train-data.ts OUT_DIR
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';

const out = process.argv[2] ?? 'data/train';
const packages = ['mate-backgrounds', 'lomiri-wallpapers-16.04', 'lomiri-wallpapers-20.04', 'python3-skimage'];
mkdirSync(out, { recursive: true });
let n = 0;
for (const pkg of packages) {
  let files: string[] = [];
  try {
    files = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8' }).split('\n');
  } catch {
    console.error(`skipping ${pkg}: not installed`);
    continue;
  }
  for (const f of files) {
    if (!/\.(jpe?g|png)$/i.test(f)) continue;
    if (pkg === 'python3-skimage' && !f.includes('/skimage/data/')) continue;
    const meta = await sharp(f).metadata().catch(() => null);
    if (!meta || !meta.width || !meta.height || Math.min(meta.width, meta.height) < 128) continue;
    const name = `${pkg}__${basename(f, extname(f))}.png`;
    await sharp(f).rotate().resize({ width: meta.width <= meta.height ? 320 : undefined, height: meta.height < meta.width ? 320 : undefined }).removeAlpha().png().toFile(join(out, name));
    n++;
  }
}
console.log(`wrote ${n} training images to ${out}`);
