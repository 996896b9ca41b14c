/**
 * `strdiffusion inpaint --image IN --mask MASK --out OUT` (one image), or with folders:
 * `--image DIR --mask DIR_or_FILE --out DIR` pairing files by name. All inputs and every output
 * destination are checked before any work (an output never replaces an input, two images never
 * write one file); outputs are written to a temporary name and renamed.
 */
import type { Command } from 'commander';
import { checkOutputExtension } from '../../image/io.js';
import { parseStructureGuide, STRUCTURE_HELP } from '../../sampler/fill-structure.js';
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { inpaint, loadInpaintModel, samplingOf, type InpaintOptions } from '../../inpaint/index.js';
import { DEFAULT_MAX_MEGAPIXELS, parseMaxMegapixels, readImage, readImageBuffer, writeImageAtomic } from '../../image/io.js';
import { checkOutputDir, checkOutputFile, checkOutputFiles, checkReplaceable } from '../../util/files.js';
import { loadHoles } from '../../inpaint/mask.js';
import { isTrajectoryFileName, TrajectoryRecorder } from '../../inpaint/trajectory.js';
import { ProgressBar, fmtTime } from '../progress.js';
import { parseChoice, SAMPLER_VARIANTS } from '../../options.js';
import type { SamplerVariant } from '../../sampler/index.js';
import { resamplingProblem } from '../../sampler/strdiffusion.js';
import { MAX_T } from '../../model/checkpoints.js';
import { optionalNumber, parsePrecision, parseSampling, parseSeed, SOLVER_HELP, SPACING_HELP, STEPS_HELP } from '../args.js';
import { EXECUTOR_NAMES, parseExecutor } from '../../exec/registry.js';
import { addQueueOptions, parseQueueOptions, type QueueChoice, type QueueFlags } from '../queue-options.js';
import { submitBatch } from '../../queue/submit.js';
import { checkJobOptions, jobOptionsOf, modelIdentity } from '../../queue/jobs.js';
import { checkpointDirs } from '../../model/checkpoints.js';
import { writeFileAtomic } from '../../util/files.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.tif', '.tiff']);

interface Opts extends QueueFlags {
  image: string;
  mask: string;
  out: string;
  checkpoints?: string[];
  seed?: string;
  T?: string;
  steps?: string;
  solver?: string;
  spacing?: string;
  sampler?: string;
  stepRule?: string;
  structure?: string;
  saveTrajectory?: string;
  resampling?: string;
  trajectoryEvery: string;
  invertMask?: boolean;
  resizeMask?: boolean;
  size?: string;
  executor?: string;
  precision?: string;
  maxMegapixels: string;
  quiet?: boolean;
}

function listImages(dir: string): string[] {
  return readdirSync(dir).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()) && statSync(join(dir, f)).isFile()).sort();
}

const stem = (f: string) => basename(f, extname(f));

/**
 * Pairs (image, mask, out) of a folder run. A mask folder's a_mask.png / a-mask.png or a.png is the
 * mask of image a.*; a file of the images folder that serves as another image's mask (or is the one
 * --mask file) is a mask kept beside the images, not one more image to inpaint. Images without a
 * mask come back in `missing`; an image with several masks named like it gets the _mask/-mask one,
 * said in `notes` (one line each).
 */
function pairFolder(imageDir: string, mask: string, outDir: string): { pairs: [string, string, string][]; missing: string[]; notes: string[] } {
  const images = listImages(imageDir);
  if (images.length === 0) throw new Error(`no images in ${imageDir}`);
  const pairs: [string, string, string][] = [];
  const missing: string[] = [];
  const notes: string[] = [];
  const outOf = (f: string) => join(outDir, `${stem(f)}.png`);
  if (!statSync(mask).isDirectory()) {
    const key = realKey(mask);
    for (const f of images) if (realKey(join(imageDir, f)) !== key) pairs.push([join(imageDir, f), mask, outOf(f)]);
    return { pairs, missing, notes };
  }
  // candidates per image stem, the explicit a_mask / a-mask names first, then a
  const named = new Map<string, string[]>();
  const add = (key: string, p: string) => named.set(key, [...(named.get(key) ?? []), p]);
  const maskNames = listImages(mask);
  for (const f of maskNames) {
    const m = /^(.*?)[_-]mask$/.exec(stem(f));
    if (m) add(m[1]!, join(mask, f));
  }
  for (const f of maskNames) add(stem(f), join(mask, f));
  const chosen = new Map<string, string>();
  for (const f of images) {
    // an image is never its own mask (the mask folder may be the images folder)
    const self = realKey(join(imageDir, f));
    const found = (named.get(stem(f)) ?? []).filter((m) => realKey(m) !== self);
    if (found.length === 0) continue;
    chosen.set(f, found[0]!);
    if (found.length > 1) notes.push(`${f} has ${found.length} masks named like it in ${mask} (${found.map((m) => basename(m)).join(', ')}): using ${basename(found[0]!)}`);
  }
  const used = new Set([...chosen.values()].map(realKey));
  for (const f of images) {
    if (used.has(realKey(join(imageDir, f)))) continue;
    const m = chosen.get(f);
    if (m) pairs.push([join(imageDir, f), m, outOf(f)]);
    else missing.push(f);
  }
  return { pairs, missing, notes };
}

/** A path with every existing part resolved (symlinks, `..`), so two names of one file compare equal. */
function realKey(p: string): string {
  const abs = resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const up = dirname(abs);
  return up === abs ? abs : join(realKey(up), basename(abs));
}

const listed = (xs: string[]) => (xs.length > 3 ? `${xs.slice(0, 3).join('; ')}; and ${xs.length - 3} more` : xs.join('; '));

/**
 * Refuses, before any work, jobs whose outputs collide: two inputs written to one output (a.jpg and
 * a.png both give a.png), or an output that is one of the inputs (images, also those without a
 * mask, or masks).
 */
function checkCollisions(jobs: [string, string, string][], outOption: string, otherImages: string[] = []): void {
  const inputs = new Map<string, string>();
  for (const img of otherImages) inputs.set(realKey(img), `image ${basename(img)}`);
  for (const [img, mask] of jobs) {
    inputs.set(realKey(img), `image ${basename(img)}`);
    if (!inputs.has(realKey(mask))) inputs.set(realKey(mask), `mask ${basename(mask)}`);
  }
  const byOut = new Map<string, [string, string, string][]>();
  for (const job of jobs) {
    const key = realKey(job[2]);
    byOut.set(key, [...(byOut.get(key) ?? []), job]);
  }
  const overwrites = [...byOut].filter(([key]) => inputs.has(key)).map(([key, js]) => `${inputs.get(key)} (${js[0]![2]})`);
  if (overwrites.length) throw new Error(`--out ${outOption} would overwrite the input ${listed(overwrites)}; choose another --out`);
  const clashes = [...byOut.values()].filter((js) => js.length > 1).map((js) => {
    const names = js.map((j) => basename(j[0]));
    return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]} in ${dirname(js[0]![0])} would both be written to ${js[0]![2]}`;
  });
  if (clashes.length) throw new Error(`${listed(clashes)}; rename one of them or run them separately`);
}

/**
 * Refuses, before any work, a --save-trajectory folder that would receive a trajectory file
 * (strip.png, texture_t0010.png, ...) under the name of the result or of an input: the trajectory
 * is saved after the result, so `--out T/strip.png --save-trajectory T` would report the result and
 * leave the strip. Existing trajectory names that are not regular files are refused too.
 */
function checkTrajectoryFolders(jobs: [string, string, string][], folderOf: (image: string) => string, otherImages: string[]): void {
  const named: [string, string][] = [];
  for (const img of otherImages) named.push([img, '--image']);
  for (const [img, mask, out] of jobs) named.push([img, '--image'], [mask, '--mask'], [out, '--out']);
  const exposed = named.filter(([p]) => isTrajectoryFileName(basename(p)));
  for (const dir of new Set(jobs.map(([img]) => folderOf(img)))) {
    for (const [p, option] of exposed) {
      if (realKey(join(dir, basename(p))) === realKey(p)) throw new Error(`--save-trajectory ${dir} would write its ${basename(p)} over ${option} ${p}; choose another --save-trajectory folder`);
    }
    if (existsSync(dir) && statSync(dir).isDirectory()) checkOutputFiles(dir, readdirSync(dir).filter(isTrajectoryFileName));
  }
}

/**
 * The pairs as queue jobs (one flow for the batch): each result is written as it comes back, the
 * way the in-process run writes it (PNG bytes as the worker encoded them, other formats re-encoded
 * here). Jobs that fail are listed; the others are written, and the command then fails.
 */
async function runOnQueue(q: QueueChoice, jobs: [string, string, string][], base: InpaintOptions, quiet: boolean): Promise<void> {
  const dirs = checkpointDirs(base.checkpoints);
  const options = jobOptionsOf(base);
  checkJobOptions(dirs, options);
  const model = modelIdentity(dirs);
  const bar = quiet ? null : new ProgressBar(jobs.length, 'queue ');
  // a line printed while the bar is drawn in place must not be appended to it
  const say = (line: string, err = false) => {
    if (bar && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    (err ? console.error : console.log)(line);
  };
  const outcome = await submitBatch({
    redis: q.redis,
    queue: q.queue,
    sharedDir: q.sharedDir,
    maxJobBytes: q.maxJobBytes,
    items: jobs.map(([image, mask]) => ({ name: basename(image), image, mask })),
    options,
    model,
    onProgress: bar ? (done, total, c) => bar.update(Math.round(done * 10) / 10, `${c.completed} done${c.failed ? `, ${c.failed} failed` : ''}`, total) : undefined,
    onResult: async (i, _item, r) => {
      const out = jobs[i]![2];
      if (extname(out).toLowerCase() === '.png') {
        mkdirSync(dirname(resolve(out)), { recursive: true });
        writeFileAtomic(out, r.png);
      }
      else await writeImageAtomic(out, await readImageBuffer(r.png, 'result'));
      say(`wrote ${out} (${r.width}x${r.height}, ${r.holePixels} hole pixels, ${fmtTime(r.seconds)} on ${r.worker})`);
    },
    onFailed: (_i, item, message) => say(`failed ${item.name}: ${message}`, true),
    warn: (m) => say(`warning: ${m}`, true),
  });
  bar?.done();
  if (outcome.failed.length > 0) throw new Error(`${outcome.failed.length} of ${jobs.length} images failed (first: ${outcome.failed[0]!.name}: ${outcome.failed[0]!.message}); the other results were written`);
}

export function register(program: Command): void {
  const cmd = program
    .command('inpaint')
    .description('fill the hole of an image (white in the mask = hole)')
    .requiredOption('--image <path>', 'input image, or a folder of images')
    .requiredOption('--mask <path>', 'mask image (white = hole), or a folder of masks named like the images')
    .requiredOption('--out <path>', 'output image (.png/.jpg/.webp/.tif), or a folder')
    .option('--checkpoints <dirs...>', 'model folder(s) with the three networks (default: the bundled model)')
    .option('--seed <n>', 'random seed (same seed -> same output)')
    .option('--T <n>', 'diffusion length T; must match the checkpoint (default: its model.json)')
    .option('--steps <n>', STEPS_HELP)
    .option('--solver <name>', SOLVER_HELP)
    .option('--spacing <kind>', SPACING_HELP)
    .option('--sampler <variant>', `sampler: ${SAMPLER_VARIANTS.join(' | ')} (default: the model's "sampler" in model.json, else official)`)
    .option('--step-rule <rule>', `older name of --solver (sde or posterior)`)
    .option('--structure <guide>', STRUCTURE_HELP)
    .option('--resampling <uMax,uMin,jump,re>', 'resampling hyper-parameters (official 6,3,5,5; the PSV setting of the official code is 25,4,2,2)')
    .option('--save-trajectory <dir>', 'write texture/structure states and a strip image')
    .option('--trajectory-every <k>', 'save every k-th step', '10')
    .option('--invert-mask', 'the mask marks the known region instead of the hole')
    .option('--resize-mask', 'scale a mask of another size to the image')
    .option('--size <n>', "model window size (default: the model's, else 256)")
    .option('--executor <name>', `where the networks run: ${EXECUTOR_NAMES.join(' | ')} (default onnx)`)
    .option('--precision <p>', 'onnx executor: fp32 (default), int8 (dynamically quantised convolutions) or int8-static (QLinearConv calibrated on the first step, faster); int8 modes are approximate')
    .option('--max-megapixels <n>', 'refuse larger images and masks (checked from the file header, before decoding)', String(DEFAULT_MAX_MEGAPIXELS))
    .option('-q, --quiet', 'no progress bar');
  addQueueOptions(cmd)
    .action(async (o: Opts) => {
      const queue = parseQueueOptions(o);
      if (queue && o.saveTrajectory) throw new Error('--save-trajectory runs in-process only: leave out --redis to record a trajectory');
      if (o.sampler !== undefined) parseChoice(SAMPLER_VARIANTS, o.sampler, '--sampler');
      if (!existsSync(o.image)) throw new Error(`image not found: ${o.image}`);
      if (!existsSync(o.mask)) throw new Error(`mask not found: ${o.mask}`);
      // the format follows the extension: refuse one that cannot be written before any work
      if (!statSync(o.image).isDirectory()) checkOutputExtension(o.out, '--out');
      const executor = parseExecutor(o.executor, '--executor');
      const precision = parsePrecision(o.precision);
      const maxMegapixels = parseMaxMegapixels(o.maxMegapixels, '--max-megapixels');
      const seed = parseSeed(o.seed);
      const T = optionalNumber(o.T, 'T');
      const size = optionalNumber(o.size, 'size');
      const every = optionalNumber(o.trajectoryEvery, 'trajectory-every')!;
      let samplerOptions: InpaintOptions['samplerOptions'];
      if (o.resampling !== undefined) {
        const v = o.resampling.split(',').map(Number);
        if (v.length !== 4 || v.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--resampling must be four positive integers uMax,uMin,jump,re (got "${o.resampling}")`);
        samplerOptions = { uMax: v[0], uMin: v[1], jump: v[2], re: v[3] };
        // jump and re above the model's T mean no resampling / a depth clamped to the levels above
        const problem = resamplingProblem(samplerOptions, MAX_T, 'the largest T');
        if (problem !== null) throw new Error(`--resampling: ${problem} (got "${o.resampling}")`);
      }
      const base: InpaintOptions = {
        samplerOptions,
        checkpoints: o.checkpoints,
        T,
        seed: seed ?? 0,
        sampler: o.sampler as SamplerVariant | undefined,
        ...parseSampling(o),
        structure: parseStructureGuide(o.structure),
        size,
        invertMask: o.invertMask,
        resizeMask: o.resizeMask,
        executor,
        precision,
        maxMegapixels,
      };
      const batch = statSync(o.image).isDirectory();
      let jobs: [string, string, string][];
      if (batch) {
        if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new Error(`--out must be a folder when --image is a folder: ${o.out}`);
        const { pairs, missing, notes } = pairFolder(o.image, o.mask, o.out);
        if (pairs.length === 0) throw new Error(`no image in ${o.image} has a mask in ${o.mask}`);
        // outputs (before any work): no input overwritten, no two images written to one file, a writable folder
        checkCollisions(pairs, o.out, missing.map((f) => join(o.image, f)));
        checkOutputDir(o.out);
        // an existing output must be a regular file: a folder, device or FIFO is not replaced
        for (const [, , out] of pairs) checkReplaceable(out);
        for (const note of notes) console.error(note);
        for (const f of missing) console.error(`skipped ${f}: no mask named like it in ${o.mask}`);
        jobs = pairs;
      } else {
        if (statSync(o.mask).isDirectory()) throw new Error(`--mask must be a file when --image is a file: ${o.mask}`);
        jobs = [[o.image, o.mask, o.out]];
        checkCollisions(jobs, o.out);
        checkOutputFile(o.out);
      }
      const trajectoryDir = (img: string) => (batch ? join(o.saveTrajectory!, stem(img)) : o.saveTrajectory!);
      if (o.saveTrajectory) {
        checkOutputDir(o.saveTrajectory, '--save-trajectory');
        checkTrajectoryFolders(jobs, trajectoryDir, batch ? listImages(o.image).map((f) => join(o.image, f)) : []);
      }
      // validate every pair before the (long) runs, so a bad input fails fast and writes nothing
      for (const [img, mask] of jobs) {
        const im = await readImage(img, 'image', { maxMegapixels });
        await loadHoles(await readImage(mask, 'mask', { maxMegapixels }), im.width, im.height, base);
      }
      if (queue) return runOnQueue(queue, jobs, base, o.quiet === true);
      const { model } = await loadInpaintModel(base);
      const { steps } = samplingOf(base, model.meta, model.T);
      let k = 0;
      for (const [img, mask, out] of jobs) {
        k++;
        // the run's total (steps × model windows) comes with each progress report
        const bar = o.quiet ? null : new ProgressBar(steps, jobs.length > 1 ? `[${k}/${jobs.length}] ` : '');
        const traj = o.saveTrajectory ? new TrajectoryRecorder(every, model.T) : null;
        const res = await inpaint(img, mask, {
          ...base,
          onProgress: bar ? (s) => bar.update(s.step, `t=${String(s.t).padStart(4)} ${s.stage}`, s.T) : undefined,
          onState: traj?.record,
        });
        bar?.done();
        await writeImageAtomic(out, res.image);
        if (traj && o.saveTrajectory) {
          const dir = trajectoryDir(img);
          await traj.save(dir);
          console.log(`trajectory: ${dir}`);
        }
        console.log(`wrote ${out} (${res.image.width}x${res.image.height}, ${res.holePixels} hole pixels, ${fmtTime(res.seconds)})`);
      }
    });
}
