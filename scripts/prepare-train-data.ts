/**
 * Builds the training folder (and optionally a validation folder) from the photos that Debian
 * packages ship: `PHOTO_SOURCES` below names every package and, where a package also ships
 * drawings, abstract art, logos, renders, screenshots or synthetic textures, which of its files
 * are photos (checked by eye).
 *
 *   apt-get install --no-install-recommends mate-backgrounds lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
 *       python3-skimage lxqt-themes palapeli-data hugin-data gcompris-qt-data stellarium-data \
 *       gimp-data endless-sky-data supertuxkart-data flightgear-data-base extremetuxracer-data redeclipse-data
 *   npx tsx scripts/prepare-train-data.ts OUT_DIR [--short-sides 320,160] [--val-fraction 0.1]
 *
 * (supertuxkart-data, flightgear-data-base and redeclipse-data are large downloads, about 0.6, 1.3
 * and 0.9 GB, for 29, 45 and 9 photographic textures.)
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
 * - Photos inside Qt resource bundles (`rcc` sources: gcompris-qt-data keeps its images in
 *   `/usr/share/gcompris-qt/rcc/*.rcc`) are decoded in memory (scripts/qt-rcc.ts); they are named
 *   `<package>__<bundle>-<file stem>.png`, and their split key uses the file name
 *   `<bundle>-<file name>` (e.g. sha256("gcompris-qt-data/erase-gorilla.webp")).
 * - A `prefix` source (a package's second folder whose file names repeat the first's) names its
 *   photos `<package>__<prefix><file stem>.png` and keys the split on `<prefix><file name>`
 *   (e.g. sha256("endless-sky-data/scene-loc0.jpg")).
 * - `crop` sources keep one rectangle of each image (before any `opaqueStrip`), e.g. the part of
 *   a splash photo without its title.
 * - `opaqueStrip` sources (panorama tiles whose sky is transparent) are cropped to their longest
 *   run of fully opaque rows before scaling, so no transparent or sky-only part is trained on.
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
import { readRcc } from './qt-rcc.js';

interface PhotoSource {
  pkg: string;
  /** only files whose path matches (default: every .jpg/.jpeg/.png/.webp of the package) */
  include?: RegExp;
  exclude?: RegExp;
  /**
   * read the photos from the package's Qt resource bundles whose path matches (instead of its
   * plain files); `include` / `exclude` then match "<bundle>/<path inside the bundle>", e.g.
   * `erase/gcompris/src/activities/erase/resource/gorilla.webp`
   */
  rcc?: RegExp;
  /**
   * prepended to the stem and split-key file name of each photo, for a second source of a package
   * whose file names repeat those of the first (e.g. `scene-` → `<package>__scene-loc0.png`)
   */
  prefix?: string;
  /** keep only this rectangle of each image (e.g. to leave out a title drawn over a photo) */
  crop?: { left: number; top: number; width: number; height: number };
  /** crop each image to its longest run of fully opaque rows, then drop `trimBottom` more rows */
  opaqueStrip?: { trimBottom?: number };
  /** skip photos whose short side (after any crop) is below this (default `MIN_SHORT_SIDE`) */
  minShortSide?: number;
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
  // GCompris keeps its images in Qt resource bundles; most activities are drawings or SVG. These
  // bundles hold photos only (all webp, opaque, short side 256 to 1080): the animal, monument
  // and music photos of the "explore" activities, erase's 33 animal photos (1920x1080) and
  // clickgame's 6 underwater backgrounds (sea1..6; its fish are drawings, under 256 px anyway).
  // Rejected bundles: lang (116 cartoon words), babyshapes (paintings and a dog photo with
  // holes / coloured shapes cut out), paintings, solar_system and gravity (planet discs on
  // transparency), hangman (procedural fog), digital_electricity (flat textures), and
  // photo_hunter / hexagon / imagename / memory* (no raster images over 256 px).
  { pkg: 'gcompris-qt-data', rcc: /\/rcc\/(explore_world_animals|explore_farm_animals|explore_monuments|explore_world_music|erase|clickgame)\.rcc$/, include: /\.webp$/, minShortSide: 256 },
  // details: the photo backgrounds only (not the Van Gogh paintings, PortraitOfPereTanguy,
  // Eglise_dAuvers-sur-Oise, Gogh4), and not TajMahal / TourEiffel / Neuschwanstein /
  // Chenonceau, which may be the same shots as explore_monuments' (no near-duplicates across
  // the train / val split)
  { pkg: 'gcompris-qt-data', rcc: /\/rcc\/details\.rcc$/, include: /\/(Louvre_2007_02_24_c|FanoeWindmill|EgeskovSlotSpejling|GizahPyramids|EilanDonanCastle|TowerBridgeLondon|NDP|Nagoya|OperaSidney)_background\.webp$/, minShortSide: 256 },
  // categorization: the object photos of at least 256 px, without the ones showing letters,
  // digits or printed text (numbers, alphabets, volleyball, weighingMachine); the rest are small
  { pkg: 'gcompris-qt-data', rcc: /\/rcc\/categorization\.rcc$/, include: /\/(spray|nailCutter|windmill6|victoriaMemorial|fish25|baseball|spoons)\.webp$/, minShortSide: 256 },
  // stellarium landscapes: Garching's four rapeseed-field panorama tiles (1024x512, the
  // transparent sky cut off: the opaque strip is ~1024x455) and its ground tile, and the Mars
  // (Spirit rover, Husband Hill) panorama's opaque lower half less its dark bottom 32 rows
  // (2048x481). Rejected: ocean (Terragen render), jupiter / saturn / uranus / neptune / sun
  // (synthetic), moon (mostly a flat grey fill), grossmugl (equirectangular, the ground is a
  // smeared blur), hurricane and guereins (opaque strips under 256 px), trees (fisheye with a
  // transparent sky), hurricane's / guereins' ground tiles (warped), geneva / zero (no image).
  { pkg: 'stellarium-data', include: /\/landscapes\/garching\/garching-(gl[1-4]|ground3)\.png$/, opaqueStrip: {}, minShortSide: 256 },
  { pkg: 'stellarium-data', include: /\/landscapes\/mars\/mars\.png$/, opaqueStrip: { trimBottom: 32 }, minShortSide: 256 },
  // gimp-data: the Script-Fu sample images beavis.jpg (a grey kitten photo, 350 px) and texture.jpg
  // (a marble photo, 288 px; texture1-3 are under 256 px or drawn), and the splash's photo of
  // mushrooms on moss without the "GIMP 2.10" title drawn over its right part (the left 1040 of its
  // 1920 columns). Its patterns (.pat) are all tiles of 20 to 156 px, its brushes are greyscale
  // stamps, and images/ otherwise holds the Wilber logos.
  { pkg: 'gimp-data', include: /\/scripts\/images\/(beavis|texture)\.jpg$/, minShortSide: 256 },
  { pkg: 'gimp-data', include: /\/images\/gimp-splash\.png$/, crop: { left: 0, top: 0, width: 1040, height: 1080 }, minShortSide: 256 },
  // Endless Sky's landing scenes: 273 landscape and city photos of 720x360 (public-domain photo
  // sites, Wikimedia Commons, NASA; some colour-graded), all kept except nasa8 / nasa9 (Juno's
  // processed Jupiter clouds), mountain2 and valley7 (false-colour: blue rock under an orange
  // sky, pink hills under a green sky) and mfield0 (the same Vancouver skyline panorama as
  // mfield1). scene/: the ten Library of Congress factory and wartime photos loc0-9 (270 to 540 px; the
  // others are renders, and engine / engine2, two rocket-engine photos, are 200 px high), named
  // scene-loc0..9 since land/ has other loc0-2. planet/, ship/, outfit/ etc. are renders, sprites.
  { pkg: 'endless-sky-data', include: /\/endless-sky\/images\/land\/[^/]+\.jpg$/, exclude: /\/(nasa8|nasa9|mountain2|valley7|mfield0)\.jpg$/, minShortSide: 256 },
  { pkg: 'endless-sky-data', include: /\/endless-sky\/images\/scene\/loc\d\.jpg$/, prefix: 'scene-', minShortSide: 256 },
  // SuperTuxKart's textures/ folder: the 29 photographic surface textures (stone walls, paving,
  // bricks, rock faces, bark, wood, earth, gravel, grass, ivy; 256 to 1024 px). Rejected: the
  // painted, procedural and tinted ones (most stk_generic_* / stktex_generic_* woods, sands,
  // stuccos, tiles, grasses), texture atlases, sprites with transparency, flags, signs, skyboxes,
  // normal maps; and near-duplicates of kept ones (rockwaterfall, black_rockMountain,
  // to_black_rockMountain, blackrock and stk_generic_bedRock_a are rockMountain darkened or
  // re-cut; rockwall is stk_generic_wallRock_a; castelwall is hacienda_ground darkened;
  // stktex_generic_waterRockA is waterConcreteA blended with rockA). tracks/ (sampled:
  // screenshots, skies, atlases, the same kind of textures) skipped.
  {
    pkg: 'supertuxkart-data',
    include: /\/supertuxkart\/data\/textures\/(HortonRockWall|HortonRockWall2|HortonStone6|Paving_stones_2|TiZeta_ivy|canyon_boards|city_bricks|city_rock|cracked-earth-texture|dark-wall-wood|dirt|earth|grass2|hacienda_ground|oldWood|rockMountain|rock_mountain|roof|stk_generic_brickA|stk_generic_brickRoad_a|stk_generic_wallRock_a|stk_karstRock_a|stktex_generic_chocolateChunk_a|stktex_generic_gravelA|stktex_generic_rockA|stktex_generic_waterConcreteA|stktex_treeBark_a|tree_cut|woodBridge)\.(png|jpg)$/,
    minShortSide: 256,
  },
  // FlightGear's terrain textures are aerial photographs: kept, the distinct ones with visible
  // structure (towns, industry, ports, fields, golf courses, orchards, cliffs, pack ice; 512 to
  // 2048 px, a few stray transparent pixels dropped with the alpha channel). Rejected: the flat
  // grass / sand / forest / shrub / tundra noise textures, the *-relief* / overlay / structure
  // maps, the recoloured seasonal or regional variants (*-autumn, *-middle-east, *-caribbean,
  // *-madagascar, countryside1/2.green = uk_countryside1/2, mixedcrop2 and caatinga-crop =
  // mixedcrop), Terrain.winter (snowed-over copies), Sky / Runway / Water / Trees (synthetic), and
  // Docs/img (simulator screenshots).
  {
    pkg: 'flightgear-data-base',
    include: /\/flightgear\/Textures\/Terrain\/(18th_century_city|Town1|australia-cliffs-hires|australia-commercial|australia-country-golf|australia-dirt-golf|australia-drycrop-1|australia-drycrop-2|australia-greenspace|australia_suburbs|california-drycrop|california-drycrop2|california-golf|california-industry|california-mixedcrop|california-port|california-rock|california-town|california-town2|carpark|cemetery|city1|city2|countryside3\.green|countryside4\.green|cropgrass-hires|drycrop|golfcourse1|industrial-alt|industrial-alt2|industrial|irrcrop|latin_american_city1|mixedcrop|naturalcrop1|orchard|packice1|packice2|rocks-desert|town-europe-south|town-europe|town-middle-east|uk_countryside1|uk_countryside2|transport)\.png$/,
    minShortSide: 256,
  },
  // Extreme Tux Racer's terrain tiles (256x256 photos of ground): dirt01, floor01 (dry leaves),
  // grass01, mud01, pave01, pebbles01, pebbles04, rock01, rock02, rock07, sand01. Rejected: the
  // icy_* / snowy_* tiles (painted snow blobs over the photos), grass02/03 and rock05 (blurred or
  // pixelated), rock03/04 (rock02 re-cut and blurred), rock06 (blocky), pave02 and rock (painted),
  // ice*, snow*; the env/ skyboxes are renders, textures/ and the rest sprites and GUI.
  { pkg: 'extremetuxracer-data', include: /\/etr\/terrains\/(dirt01|floor01|grass01|mud01|pave01|pebbles01|pebbles04|rock01|rock02|rock07|sand01)\.png$/, minShortSide: 256 },
  // Red Eclipse: dziq's and appleflap's photographic colour maps (512 px): boards01, brick_wall01,
  // brick_wall02, concrete_forms01, dq_stones01, dryone, metal_rusty01a, applegrass,
  // dirtyconcrete (not their *_b / *_n / *_s / *_nm / *_spec maps, nor metal_rusty01b, which is 01a
  // with a lamp painted on). Every other folder was sampled and rejected: wicked/ (procedural,
  // recoloured tiles), trak*/, philipk/, jojo/, unnamed/, torley/, mayhem/, luckystrike/ (sci-fi
  // panels, hand-made or filtered tiles), skyboxes/ and elyvisions/ (Terragen renders), models.
  { pkg: 'redeclipse-data', include: /\/redeclipse\/data\/(dziq\/(boards01|brick_wall01|brick_wall02|concrete_forms01|dq_stones01|dryone|metal_rusty01a)|appleflap\/(applegrass|dirtyconcrete))\.jpg$/, minShortSide: 256 },
  // Checked and rejected: gnome-backgrounds (all abstract art, renders and patterns; wood-l/-d are a
  // rendered slat wall), ukui-wallpapers (renders and illustrations), sway-backgrounds (logos),
  // openarena-data (game textures inside .pk3 archives: metal panels, trims, lights, skyboxes; the
  // few photo-derived ones are retouched tiles), colobot-common-textures (atlases, painted
  // terrain, Mars map mosaics, cloud layers), fotoxx-common (its manual's screenshots and
  // before/after effect demos), jigzo-data (its puzzles hold 232-px thumbnails and the photo cut
  // into jigsaw pieces), neverball-data (level screenshots, sprites).
];

/** Reserved for evaluation: never train on them. */
const RESERVED = [
  'plasma-workspace-wallpapers',
  'opencv-doc',
  'libjxl-testdata',
  'python3-sklearn',
  'python3-scipy',
  'python3-matplotlib',
  'python-matplotlib-data',
  'imagemagick-6-doc',
];

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

/** A photo of a source: its stem (unique per package), the file name for the split key, and its bytes or path. */
interface Candidate {
  stem: string;
  file: string;
  input: () => string | Buffer;
}

/**
 * The photos a source selects from its package's file list: the image files themselves, or for
 * an `rcc` source the images inside the matching Qt resource bundles (stem `<bundle>-<stem>`).
 */
function* candidates(src: PhotoSource, files: string[]): Generator<Candidate> {
  const isImage = (p: string): boolean => /\.(jpe?g|png|webp)$/i.test(p);
  const wanted = (p: string): boolean => (!src.include || src.include.test(p)) && !(src.exclude && src.exclude.test(p));
  if (!src.rcc) {
    const pre = src.prefix ?? '';
    for (const f of files) if (isImage(f) && wanted(f)) yield { stem: pre + basename(f, extname(f)), file: pre + basename(f), input: () => f };
    return;
  }
  for (const bundle of files) {
    if (!src.rcc.test(bundle) || !bundle.endsWith('.rcc')) continue;
    const b = basename(bundle, '.rcc');
    for (const e of readRcc(bundle)) {
      if (!isImage(e.path) || !wanted(`${b}/${e.path}`)) continue;
      const name = basename(e.path);
      yield { stem: `${b}-${basename(name, extname(name))}`, file: `${b}-${name}`, input: e.data };
    }
  }
}

/**
 * The longest run of fully opaque rows of an image (alpha >= 250 across the whole row), less
 * `trimBottom` rows at its bottom, as PNG bytes; null when fewer than 2 rows remain.
 */
async function opaqueStrip(input: string | Buffer, trimBottom: number): Promise<Buffer | null> {
  const { data, info } = await sharp(input).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = info;
  let best = { top: 0, rows: 0 };
  let runTop = 0;
  for (let y = 0; y <= height; y++) {
    let opaque = y < height;
    for (let x = 0; opaque && x < width; x++) if (data[(y * width + x) * channels + channels - 1]! < 250) opaque = false;
    if (!opaque) {
      if (y - runTop > best.rows) best = { top: runTop, rows: y - runTop };
      runTop = y + 1;
    }
  }
  const rows = best.rows - trimBottom;
  if (rows < 2) return null;
  return sharp(data, { raw: { width, height, channels } }).extract({ left: 0, top: best.top, width, height: rows }).png().toBuffer();
}

async function main(): Promise<void> {
  const { out, sides, valFraction } = parseArgs(process.argv.slice(2));
  for (const s of PHOTO_SOURCES) if (RESERVED.includes(s.pkg)) throw new Error(`${s.pkg} is reserved for evaluation`);
  const valDir = valFraction > 0 ? join(dirname(out), 'val') : null;
  if (valDir && resolve(valDir) === out) throw new Error(`the output folder ${out} is itself the validation folder; name it e.g. .../train`);
  mkdirSync(out, { recursive: true });
  if (valDir) mkdirSync(valDir, { recursive: true });
  const written = new Set<string>();
  const photos = { train: 0, val: 0 };
  const images = { train: 0, val: 0 };
  // per package (a package may have several sources): photos per side, and the stems in use
  const counts = new Map<string, { train: number; val: number; seen: Set<string> } | 'missing'>();
  for (const src of PHOTO_SOURCES) {
    let files: string[];
    try {
      files = execFileSync('dpkg', ['-L', src.pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    } catch {
      counts.set(src.pkg, 'missing');
      continue;
    }
    let count = counts.get(src.pkg);
    if (count === undefined || count === 'missing') counts.set(src.pkg, (count = { train: 0, val: 0, seen: new Set() }));
    for (const photo of candidates(src, files.sort())) {
      if (count.seen.has(photo.stem)) throw new Error(`${src.pkg}: two photos named ${photo.stem}; narrow its include pattern`);
      count.seen.add(photo.stem);
      const raw = src.crop ? await sharp(photo.input()).extract(src.crop).png().toBuffer() : photo.input();
      const input = src.opaqueStrip ? await opaqueStrip(raw, src.opaqueStrip.trimBottom ?? 0) : raw;
      if (input === null) continue;
      const meta = await sharp(input).metadata().catch(() => null);
      if (!meta || !meta.width || !meta.height || Math.min(meta.width, meta.height) < (src.minShortSide ?? MIN_SHORT_SIDE)) continue;
      const side = valDir && splitKey(src.pkg, photo.file) < valFraction ? 'val' : 'train';
      const dir = side === 'val' ? valDir! : out;
      for (const s of sides) {
        // the first size keeps the plain name (folders made before --short-sides stay valid)
        const name = `${src.pkg}__${photo.stem}${s === sides[0] ? '' : `@${s}`}.png`;
        const w = meta.width <= meta.height;
        await sharp(input).rotate().resize({ width: w ? s : undefined, height: w ? undefined : s }).removeAlpha().png().toFile(join(dir, name));
        written.add(join(dir, name));
        images[side]++;
      }
      count[side]++;
      photos[side]++;
    }
  }
  const rows = [...counts].map(([pkg, c]) => (c === 'missing' ? `${pkg}: not installed, skipped` : `${pkg}: ${c.train + c.val} photos (${c.train} train, ${c.val} val)`));
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
