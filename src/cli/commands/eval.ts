/**
 * `strdiffusion eval --images DIR [--masks DIR | --mask-ratios ...]`: the model and classical
 * baselines on fixed, seeded (image, mask) pairs, scored per hole-ratio bucket like the paper's
 * tables; writes report.md, report.html, results.json and sample PNGs.
 */
import { checkpointDirs, modelWindowSize } from '../../model/checkpoints.js';
import type { Command } from 'commander';
import { PRECISIONS } from '../../exec/onnx/quant.js';
import { EVAL_STRUCTURE_HELP, parseDiagnosticStructureGuide } from '../../sampler/fill-structure.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ablationMethods, BASELINES, baselineMethod, evaluate, modelMethod, parseRatioList, type AblationPlan, type BaselineName, type Method } from '../../eval/index.js';
import { writeReport } from '../../eval/report.js';
import { DEFAULT_BUCKETS } from '../../eval/pairs.js';
import { SAMPLER_VARIANTS } from '../../sampler/strdiffusion.js';
import type { SamplerVariant } from '../../sampler/index.js';
import { ProgressBar, fmtTime } from '../progress.js';
import { optionalNumber, parsePrecision, parseSampling, parseSeed, SOLVER_HELP, SPACING_HELP, STEPS_HELP } from '../args.js';
import { DEFAULT_MAX_MEGAPIXELS, parseMaxMegapixels } from '../../image/io.js';
import { EXECUTOR_NAMES, parseExecutor } from '../../exec/registry.js';
import { checkOutputDir, checkOutputFiles } from '../../util/files.js';
import { addQueueOptions, parseQueueOptions, type QueueFlags } from '../queue-options.js';
import { queueModelMethod } from '../../eval/queue-method.js';

const VARIANTS: readonly SamplerVariant[] = SAMPLER_VARIANTS;

interface Opts extends QueueFlags {
  images: string;
  masks?: string;
  maskRatios?: string;
  count: string;
  seed: string;
  checkpoints?: string[];
  T?: string;
  steps?: string;
  solver?: string;
  spacing?: string;
  baselines: string;
  out: string;
  size?: string;
  sampler?: string;
  stepRule?: string;
  structure?: string;
  model: boolean;
  executor?: string;
  precision?: string;
  grid: string;
  maxMegapixels: string;
  quiet?: boolean;
  ablation?: boolean;
  irsde?: string;
  variants?: string[];
}

export function parseBaselines(s: string): BaselineName[] {
  const names = s.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x.length > 0 && x !== 'none');
  for (const n of names) if (!(BASELINES as readonly string[]).includes(n)) throw new Error(`unknown baseline "${n}" (known: ${BASELINES.join(', ')}, or none)`);
  return [...new Set(names)] as BaselineName[];
}

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('score the model and baselines per hole-ratio bucket (PSNR, SSIM, hole PSNR/L1/SWD, time)')
    .requiredOption('--images <dir>', 'folder of test images (recursive); centre-cropped and resized to --size')
    .option('--masks <dir>', 'folder of masks (white = hole), bucketed by their hole ratio; default: generated masks')
    .option('--mask-ratios <list>', 'hole-ratio buckets', DEFAULT_BUCKETS.map((r) => r.join('-')).join(','))
    .option('--count <n>', 'image/mask pairs per bucket', '10')
    .option('--seed <n>', 'fixes the pairs and the model noise', '0')
    .option('--checkpoints <dirs...>', 'model folder(s) (default: the bundled model)')
    .option('--T <n>', 'diffusion length T; must match the checkpoint (default: its model.json)')
    .option('--steps <n>', STEPS_HELP)
    .option('--solver <name>', SOLVER_HELP)
    .option('--spacing <kind>', SPACING_HELP)
    .option('--baselines <list>', `comma-separated: ${BASELINES.join(', ')} (or none)`, BASELINES.join(','))
    .option('--out <dir>', 'report folder', 'eval-report')
    .option('--size <n>', "images are evaluated at size×size (default: the model's window size from model.json, else 256)")
    .option('--sampler <variant>', `sampler: ${VARIANTS.join(' | ')} (default: the model's "sampler" in model.json, else official)`)
    .option('--step-rule <rule>', 'older name of --solver (sde or posterior)')
    .option('--structure <guide>', EVAL_STRUCTURE_HELP)
    .option('--no-model', 'baselines only (no StrDiffusion run)')
    .option('--precision <p>', `network precision: ${PRECISIONS.join(' | ')} (default fp32; see Performance)`)
    .option('--executor <name>', `where the networks run: ${EXECUTOR_NAMES.join(' | ')} (default onnx)`)
    .option('--grid <n>', 'pairs per bucket shown in the image grid', '2')
    .option('--max-megapixels <n>', 'refuse larger images (checked from the file header, before decoding)', String(DEFAULT_MAX_MEGAPIXELS))
    .option('--ablation', "the paper's sampler ablation on the same pairs and seeds: (A) RePaint without structure and the plain IR-SDE (with --irsde), (B) no discriminator, (C) no resampling, (D) StrDiffusion and D with its quirks fixed (improved) on --checkpoints, and each --variants model; adds the paper-style table and every row paired against D to the report (baselines: none unless --baselines is given)")
    .option('--irsde <dirs>', 'with --ablation: an unguided IR-SDE texture model (train texture --structure-kind none), comma-separated folders')
    .option('--variants <dirs...>', 'with --ablation: structure-variant models (e.g. trained with --structure-kind edge2edge), one per argument, folders comma-separated')
    .option('-q, --quiet', 'no progress bar');
  addQueueOptions(cmd)
    .action(async (o: Opts) => {
      const queue = parseQueueOptions(o);
      if (queue?.sharedDir !== undefined) throw new Error('eval --redis sends its crops inline: --shared-dir is for inpaint');
      if (queue && !o.model) throw new Error('--redis runs the model on queue workers: it has nothing to do with --no-model');
      if (queue && o.ablation) throw new Error('--ablation runs in-process: drop --redis');
      if (!existsSync(o.images)) throw new Error(`images folder not found: ${o.images}`);
      if (!statSync(o.images).isDirectory()) throw new Error(`--images must be a folder: ${o.images}`);
      if (o.masks !== undefined) {
        if (!existsSync(o.masks)) throw new Error(`masks folder not found: ${o.masks}`);
        if (!statSync(o.masks).isDirectory()) throw new Error(`--masks must be a folder: ${o.masks}`);
      }
      if (o.sampler !== undefined && !VARIANTS.includes(o.sampler as SamplerVariant)) throw new Error(`--sampler must be one of ${VARIANTS.join(', ')} (got "${o.sampler}")`);
      const executor = parseExecutor(o.executor, '--executor');
      const ratios = parseRatioList(o.maskRatios ?? '');
      const count = optionalNumber(o.count, 'count', { min: 1 })!;
      const seed = parseSeed(o.seed)!;
      const size = optionalNumber(o.size, 'size', { min: 16 }) ?? (o.model ? modelWindowSize(checkpointDirs(o.checkpoints)) : undefined) ?? 256;
      const grid = optionalNumber(o.grid, 'grid', { min: 0 })!;
      const maxMegapixels = parseMaxMegapixels(o.maxMegapixels, '--max-megapixels');
      const T = optionalNumber(o.T, 'T', { min: 1 });
      const sampling = parseSampling(o);
      const structure = parseDiagnosticStructureGuide(o.structure);
      // the ablation compares samplers: classical baselines only when asked for
      const baselines = parseBaselines(o.ablation && cmd.getOptionValueSource('baselines') === 'default' ? 'none' : o.baselines);
      if (!o.ablation && (o.irsde !== undefined || o.variants !== undefined)) throw new Error('--irsde and --variants belong to --ablation');
      if (o.ablation && (o.sampler !== undefined || !o.model)) throw new Error('--ablation chooses the samplers itself: drop --sampler / --no-model');
      const folders = (s: string) => {
        const dirs = s.split(',').filter(Boolean).map((d) => resolve(d));
        for (const d of dirs) if (!existsSync(d) || !statSync(d).isDirectory()) throw new Error(`model folder not found: ${d}`);
        return dirs;
      };

      const methods: Method[] = [];
      let ablation: AblationPlan | undefined;
      if (o.ablation) {
        const a = ablationMethods({
          checkpoints: o.checkpoints ? checkpointDirs(o.checkpoints) : undefined,
          irsde: o.irsde ? folders(o.irsde) : undefined,
          variants: o.variants?.map(folders),
          common: { T, size, ...sampling, structure, executor, precision: parsePrecision(o.precision) },
        });
        methods.push(...a.methods);
        ablation = a.plan;
      } else if (o.model) {
        const options = { checkpoints: o.checkpoints, T, size, sampler: o.sampler as SamplerVariant | undefined, ...sampling, structure, executor, precision: parsePrecision(o.precision) };
        methods.push(queue ? queueModelMethod(queue, options) : modelMethod(options));
      }
      for (const b of baselines) methods.push(baselineMethod(b));
      if (methods.length === 0) throw new Error('nothing to evaluate: --no-model and no baselines');

      const out = resolve(o.out);
      checkOutputDir(o.out);
      // existing report files and samples must be regular files: a FIFO or a link to a device is not replaced
      checkOutputFiles(out, ['report.md', 'report.html', 'results.json']);
      const samples = join(out, 'samples');
      if (existsSync(samples) && statSync(samples).isDirectory()) checkOutputFiles(samples, readdirSync(samples).filter((f) => f.endsWith('.png')));
      let bar: ProgressBar | null = null;
      const res = await evaluate({
        images: o.images,
        masks: o.masks,
        ratios,
        count,
        seed,
        size,
        methods,
        outDir: out,
        gridSamples: grid,
        maxMegapixels,
        settings: { ablation: Boolean(o.ablation), checkpoints: o.model ? (o.checkpoints?.map((c) => resolve(c)) ?? '(bundled default)') : null, T: T ?? '(checkpoint default)', sampler: o.model ? (o.sampler ?? '(model default)') : null, solver: o.model ? (sampling.solver ?? sampling.stepRule ?? '(model default)') : null, steps: o.model ? (sampling.steps ?? '(model default)') : null, spacing: o.model ? (sampling.spacing ?? '(model default)') : null, structure: o.model ? (structure ?? '(model default)') : null, baselines, model: o.model },
        onProgress: o.quiet
          ? undefined
          : (done, total, info) => {
              bar ??= new ProgressBar(total, 'eval ');
              bar.update(done, info);
            },
      });
      (bar as ProgressBar | null)?.done();
      if (ablation) {
        res.ablation = ablation;
        for (const n of ablation.notes) console.error(`note: ${n}`);
      }
      const paths = writeReport(res, out);
      for (const r of res.rows) {
        console.log(`${r.method.padEnd(20)} ${r.bucket.padEnd(8)} n=${String(r.n).padStart(3)}  PSNR ${r.psnr.toFixed(2)}  SSIM ${r.ssim.toFixed(4)}  hole PSNR ${r.holePsnr.toFixed(2)}  hole L1 ${r.holeL1.toFixed(4)}  SWD ${r.holeSwd.toFixed(2)}  ${r.secondsPerImage.toFixed(2)} s/img`);
      }
      console.log(`wrote ${paths.markdown}, ${paths.html} and ${paths.json} (${fmtTime(res.seconds)})`);
    });
}
