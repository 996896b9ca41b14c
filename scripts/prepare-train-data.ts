/**
 * Builds the training folder (and optionally a validation folder) from the photos that Debian
 * packages ship: `PHOTO_SOURCES` below names every package and, where a package also ships
 * drawings, abstract art, logos or screenshots, which of its files are photos (checked by eye).
 *
 *   apt-get install --no-install-recommends mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
 *       python3-skimage lxqt-themes palapeli-data hugin-data
 *   npx tsx scripts/prepare-train-data.ts OUT_DIR [--short-sides 320,160] [--val-fraction 0.1]
 *
 * - Images are scaled so the short side is 320 px (or each of `--short-sides`): a 64-px training
 *   crop then holds real structure (a crop of a 4K wallpaper would be a flat patch), and decoding
 *   stays fast. Several sizes give the crops several scales (the default model used 320,160: a
 *   128-px window over a whole photo shows it at about the 160 scale). Names:
 *   `<package>__<file stem>.png` for the first size, `…@<side>.png` for the others.
 * - `--val-fraction f` puts a deterministic fraction f of the source photos into the sibling
 *   folder `val` (OUT_DIR/../val): a photo goes there when the first 32 bits of
 *   sha256("<package>/<file name>") / 2³² < f, so the split does not depend on what else is
 *   installed, and all scales of one photo land on the same side.
 * - Files `<package>__*.png` of a listed package that this run did not write (left over from an
 *   earlier run, e.g. a photo that now belongs to the other side of the split, or a file the
 *   lists now exclude) are removed from both folders, so train and val never share a photo.
 * - A missing package is skipped with a message; the summary prints the photos per package and
 *   the train / val counts.
 *
 * Never use the packages in `RESERVED` (the evaluation photos): the script refuses them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';

interface PhotoSource {
  pkg: string;
  /** only files whose path matches (default: every .jpg/.jpeg/.png/.webp of the package) */
  include?: RegExp;
  exclude?: RegExp;
}

/** Where the training photos come from (each list checked by eye; see the comments). */
const PHOTO_SOURCES: readonly PhotoSource[] = [
  // nature/ holds the photos; abstract/ and desktop/ are drawings, gradients and logos
  { pkg: 'mate-backgrounds', include: /\/backgrounds\/mate\/nature\// },
  // all photos except one abstract render
  { pkg: 'lomiri-wallpapers-16.04', exclude: /umang_by_Abhishek_Mudgal/ },
  // Fossa and Painting-Colors are abstract art
  { pkg: 'lomiri-wallpapers-20.04', exclude: /Fossa_by_Jasper_Roks|Painting-Colors/ },
  // skimage's data folder: the photos only (not the synthetic test patterns, text renders,
  // silhouettes, palettes, phantoms, the stereo twin motorcycle_right, nor the microscopy /
  // fundus / deep-field images)
  { pkg: 'python3-skimage', include: /\/skimage\/data\/(astronaut|brick|camera|chelsea|coffee|coins|grass|gravel|moon|motorcycle_left|page|rocket|text)\.(png|jpg)$/ },
  // the photographic wallpapers (the others are origami / triangle / logo art)
  { pkg: 'lxqt-themes', include: /\/lxqt\/wallpapers\/(Butterfly-Kenneth-Wimer|Valendas|after-the-rain|appleflower|beam|butterfly|cloud|drop|flowers|fog|this-is-not-windows)\.(png|jpg)$/ },
  // the jigsaw puzzle photos (backgrounds/ are procedural textures)
  { pkg: 'palapeli-data', include: /\/palapeli\/collection\/[^/]+\.jpg$/ },
  // hugin's manual: one version of each distinct photo at least ~260 px (most files are
  // projections of the same few panoramas with grid overlays, screenshots or tiny crops)
  { pkg: 'hugin-data', include: /\/help_en_EN\/(CA_fringes00|CA_tCA00|800px-C_Marchi-GrandCentral-adj|Medinet_habu_horizontal_stereographic)\.jpg$/ },
];

/** Reserved for evaluation: never train on them. */
const RESERVED = ['plasma-workspace-wallpapers', 'opencv-doc', 'libjxl-testdata', 'python3-sklearn'];

/** Short side below which a photo is skipped. */
const MIN_SHORT_SIDE = 128;

function parseArgs(argv: string[]): { out: string; sides: number[]; valFraction: number } {
  const args = [...argv];
  const take = (name: string): string | undefined => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    args.splice(i, 2);
    return v;
  };
  const sidesArg = take('--short-sides');
  const sides = sidesArg === undefined ? [320] : sidesArg.split(',').map(Number);
  if (sides.length === 0 || sides.some((v) => !Number.isInteger(v) || v < 64)) throw new Error('--short-sides must be a comma-separated list of integers >= 64');
  const vf = take('--val-fraction');
  const valFraction = vf === undefined ? 0 : Number(vf);
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`--val-fraction must be a number in [0, 1) (got ${vf})`);
  const unknown = args.find((a) => a.startsWith('--'));
  if (unknown) throw new Error(`unknown option ${unknown} (options: --short-sides LIST, --val-fraction F)`);
  if (args.length > 1) throw new Error(`one output folder expected, got ${args.join(' ')}`);
  return { out: resolve(args[0] ?? 'data/train'), sides, valFraction };
}

/** Deterministic position of a photo in [0, 1): the first 32 bits of sha256("<package>/<file name>"). */
function splitKey(pkg: string, file: string): number {
  return createHash('sha256').update(`${pkg}/${basename(file)}`).digest().readUInt32BE(0) / 2 ** 32;
}

async function main(): Promise<void> {
  const { out, sides, valFraction } = parseArgs(process.argv.slice(2));
  for (const s of PHOTO_SOURCES) if (RESERVED.includes(s.pkg)) throw new Error(`${s.pkg} is reserved for evaluation`);
  const valDir = valFraction > 0 ? join(dirname(out), 'val') : null;
  if (valDir && resolve(valDir) === out) throw new Error(`the output folder ${out} is itself the validation folder; name it e.g. .../train`);
  mkdirSync(out, { recursive: true });
  if (valDir) mkdirSync(valDir, { recursive: true });
  const written = new Set<string>();
  const rows: string[] = [];
  const photos = { train: 0, val: 0 };
  const images = { train: 0, val: 0 };
  for (const src of PHOTO_SOURCES) {
    let files: string[];
    try {
      files = execFileSync('dpkg', ['-L', src.pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    } catch {
      rows.push(`${src.pkg}: not installed, skipped`);
      continue;
    }
    const count = { train: 0, val: 0 };
    const seen = new Set<string>();
    for (const f of files.sort()) {
      if (!/\.(jpe?g|png|webp)$/i.test(f)) continue;
      if (src.include && !src.include.test(f)) continue;
      if (src.exclude && src.exclude.test(f)) continue;
      const stem = basename(f, extname(f));
      if (seen.has(stem)) throw new Error(`${src.pkg}: two photos named ${stem}; narrow its include pattern`);
      seen.add(stem);
      const meta = await sharp(f).metadata().catch(() => null);
      if (!meta || !meta.width || !meta.height || Math.min(meta.width, meta.height) < MIN_SHORT_SIDE) continue;
      const side = valDir && splitKey(src.pkg, f) < valFraction ? 'val' : 'train';
      const dir = side === 'val' ? valDir! : out;
      for (const s of sides) {
        // the first size keeps the plain name (folders made before --short-sides stay valid)
        const name = `${src.pkg}__${stem}${s === sides[0] ? '' : `@${s}`}.png`;
        const w = meta.width <= meta.height;
        await sharp(f).rotate().resize({ width: w ? s : undefined, height: w ? undefined : s }).removeAlpha().png().toFile(join(dir, name));
        written.add(join(dir, name));
        images[side]++;
      }
      count[side]++;
      photos[side]++;
    }
    rows.push(`${src.pkg}: ${count.train + count.val} photos (${count.train} train, ${count.val} val)`);
  }
  // leftovers of earlier runs for the listed packages (never other files)
  let removed = 0;
  for (const dir of [out, valDir]) {
    if (!dir || !existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (f.endsWith('.png') && PHOTO_SOURCES.some((s) => f.startsWith(`${s.pkg}__`)) && !written.has(p)) {
        rmSync(p);
        removed++;
      }
    }
  }
  for (const r of rows) console.log(r);
  const scales = sides.length > 1 ? ` (${sides.length} scales each: ${sides.join(', ')} px)` : '';
  console.log(
    `photos: ${photos.train + photos.val} (${photos.train} train, ${photos.val} val); wrote ${images.train} images to ${out}` +
      (valDir ? ` and ${images.val} to ${valDir}` : '') +
      scales +
      (removed ? `; removed ${removed} stale file(s)` : ''),
  );
}

await main();
