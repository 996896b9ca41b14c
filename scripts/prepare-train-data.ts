/**
 * Builds the default model's training folder from Debian packages' photos only
 * (mate-backgrounds, lomiri-wallpapers-16.04/-20.04; python3-skimage's data folder if installed).
 * Images are scaled so the short side is 320 px (or each of `--short-sides`): a 64-px training
 * crop then holds real structure (a crop of a 4K wallpaper would be a flat patch), and decoding
 * stays fast. Several sizes give the crops several scales (the default model uses 320,160: a
 * 128-px window over a whole photo shows it at about the 160 scale).
 *   apt-get install mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 python3-skimage
 *   npx tsx scripts/prepare-train-data.ts OUT_DIR [--short-sides 320,160]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';

const args = process.argv.slice(2);
const flag = args.indexOf('--short-sides');
const sides = flag >= 0 ? (args.splice(flag, 2)[1] ?? '').split(',').map(Number) : [320];
if (sides.length === 0 || sides.some((v) => !Number.isInteger(v) || v < 64)) throw new Error('--short-sides must be a comma-separated list of integers >= 64');
const out = args[0] ?? 'data/train';
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
    for (const side of sides) {
      // the first size keeps the plain name (folders made before --short-sides stay valid)
      const name = `${pkg}__${basename(f, extname(f))}${side === sides[0] ? '' : `@${side}`}.png`;
      await sharp(f).rotate().resize({ width: meta.width <= meta.height ? side : undefined, height: meta.height < meta.width ? side : undefined }).removeAlpha().png().toFile(join(out, name));
      n++;
    }
  }
}
console.log(`wrote ${n} training images to ${out}`);
