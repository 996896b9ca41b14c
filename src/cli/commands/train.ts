/**
 * `strdiffusion train structure|texture|discriminator --data DIR ...`: the official objectives
 * (docs/design.md §4) on onnxruntime (a generated training graph), in a run folder that `--resume` continues and that
 * `inpaint --checkpoints RUN_DIRS` loads.
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isPrediction, PREDICTIONS, presetConfigs, validateUNetConfig, type UNetConfig, type DiscConfig } from '../../nn/config.js';
import type { NetConfig, NetKind } from '../../exec/types.js';
import { trainRun, type RunConfig } from '../../train/run.js';
import { parseRatio } from '../../data/masks.js';
import { ProgressBar } from '../progress.js';
import { parseNumberOption, parseSeed } from '../args.js';
import { isTrainExecutor, TRAIN_EXECUTORS } from '../../train/trainer.js';
import { unknownExecutor } from '../../exec/registry.js';
import { FILLS, parseFill } from '../../sde/fill.js';
import { parseTextureGuideKind, STRUCTURE_KINDS } from '../../structure/kinds.js';
import { DEFAULT_MAX_MEGAPIXELS, parseMaxMegapixels } from '../../image/io.js';

const KINDS: NetKind[] = ['structure', 'texture', 'discriminator'];

function netConfig(kind: NetKind, spec: string): NetConfig {
  let cfg: NetConfig;
  if (/^(mini|small|official|tiny|fixture)$/.test(spec)) cfg = presetConfigs(spec)[kind];
  else {
    let raw: any;
    try {
      raw = JSON.parse(existsSync(spec) ? readFileSync(spec, 'utf8') : spec);
    } catch {
      throw new Error(`--config must be official, mini, small, tiny, a JSON object or a JSON file (got "${spec}")`);
    }
    const base = presetConfigs('official')[kind];
    cfg = { ...base, ...(raw[kind] ?? raw) } as NetConfig;
  }
  if (kind !== 'discriminator') validateUNetConfig(cfg as UNetConfig);
  else if (!(Number.isInteger((cfg as DiscConfig).ngf) && (cfg as DiscConfig).ngf >= 1)) throw new Error('ngf must be a positive integer');
  return cfg;
}

export function register(program: Command): void {
  program
    .command('train')
    .description('train one network with the official objective')
    .argument('<network>', KINDS.join(' | '))
    .requiredOption('--data <dir>', 'folder of training images (recursive)')
    .option('--masks <dir>', 'folder of mask images (white = hole); default: generated irregular masks')
    .option('--mask-ratios <list>', 'hole-ratio ranges of generated masks', '0.1-0.2,0.2-0.3,0.3-0.4,0.4-0.5')
    .option('--config <name|json>', 'official (nf 64), mini (nf 16), small (nf 8, the bundled model), tiny (nf 4), or JSON ({"nf": 16} / {"texture": {...}})', 'mini')
    .option('--size <n>', 'crop size', '64')
    .option('--zoom <max>', 'scale augmentation: crops of side size·z, z log-uniform in [1, max] (capped by the photo), box-filtered to --size, so the net sees content at the scale the window planner shows it (whole photos scaled down); 1 = native-scale crops', '1')
    .option('--batch <n>', 'batch size', '16')
    .option('--iterations <n>', 'iterations to run (added to a resumed run)', '1000')
    .option('--steps <n>', 'older name of --iterations (it warns; --steps means sampling steps everywhere else)')
    .option('--lr <x>', 'learning rate', '1e-4')
    .option('--T <n>', 'diffusion steps (the official training uses 400)', '400')
    .option('--milestones <list>', 'iterations where the U-Net LR halves', '2000000,4000000,6000000')
    .option('--out <dir>', 'run folder (default runs/<network>)')
    .option('--resume', 'continue the run in --out')
    .option('--init <checkpoint>', 'start a new run from these weights (.safetensors/.pth, e.g. models/default/texture.safetensors) instead of a random init')
    .option('--seed <n>', 'random seed', '0')
    .option('--save-every <n>', 'checkpoint interval in iterations', '100')
    .option('--ema <beta>', 'also keep an exponential moving average of the weights (the official code has none)')
    .option('--prediction <name>', "U-Nets: what the last conv predicts: eps (official: the noise, official loss) | x0 (a residual on the SDE mean, x̂0 = μ + r, trained with the masked L1 on x̂0; starts at x̂0 = μ; recorded in model.json)", 'eps')
    .option('--fill <name>', `what the texture mean holds in the hole: ${FILLS.join(' | ')} (zero = official; mean/telea/ns = classical fill of the known pixels, bridge = ns with straight edges joined across the hole; recorded in model.json)`, 'zero')
    .option('--structure-kind <kind>', `the structure process: ${STRUCTURE_KINDS.join(' | ')} (x0 at t = 0, then 2, then the masked mean at t = T; gray2edge = the paper's and the official); the structure network's x0 and μ, the texture's and discriminator's guide; recorded in model.json. texture only: none = an IR-SDE texture network without structure guide (no SPADE; sampled with --sampler irsde or repaint)`, 'gray2edge')
    .option('--executor <name>', `where forward + backward run: ${TRAIN_EXECUTORS.join(' | ')}`, 'onnx')
    .option('--threads <n>', 'onnx: intra-op threads (default STRDIFFUSION_THREADS or all cores; on 2 cores, two trainings with 1 thread each beat one with 2)')
    .option('--diag-every <n>', 'U-Nets: every n iterations write diagnostics.svg/.jsonl (x̂0 hole error against t, on forward-marginal states and along the sampler\'s own trajectory; 0 = never)', '1000')
    .option('--diag-data <dir>', 'images for the diagnostics batch, e.g. a validation folder (default: --data)')
    .option('--max-megapixels <n>', 'skip training images and masks larger than this (checked from the file header, before decoding; skips are reported)', String(DEFAULT_MAX_MEGAPIXELS))
    .option('-q, --quiet', 'no progress bar')
    .action(async (kind: string, o: Record<string, string | boolean | undefined>) => {
      if (!KINDS.includes(kind as NetKind)) throw new Error(`network must be one of ${KINDS.join(', ')} (got "${kind}")`);
      const k = kind as NetKind;
      const data = resolve(String(o.data));
      if (!existsSync(data)) throw new Error(`image folder not found: ${data}`);
      if (o.masks && !existsSync(String(o.masks))) throw new Error(`mask folder not found: ${o.masks}`);
      const ema = o.ema === undefined ? null : Number(o.ema);
      if (ema !== null && !(ema > 0 && ema < 1)) throw new Error(`--ema must be in (0, 1) (got "${o.ema}")`);
      const prediction = String(o.prediction);
      if (!isPrediction(prediction)) throw new Error(`--prediction must be one of ${PREDICTIONS.join(', ')} (got "${prediction}")`);
      const structureKind = parseTextureGuideKind(String(o.structureKind), '--structure-kind');
      if (structureKind === 'none' && k !== 'texture') throw new Error(`--structure-kind none is for the texture network only (got ${k})`);
      let net = netConfig(k, String(o.config));
      // the IR-SDE baseline: the official U-Net without its SPADE blocks
      if (structureKind === 'none') net = { ...(net as UNetConfig), spade: false };
      const cfg: RunConfig = {
        kind: k,
        // the official ε-prediction keeps the config as it was (so older run folders still resume)
        net: k !== 'discriminator' && prediction === 'x0' ? { ...(net as UNetConfig), prediction } : net,
        T: parseNumberOption(String(o.T), 'T', { positive: true }),
        size: parseNumberOption(String(o.size), 'size', { positive: true }),
        batch: parseNumberOption(String(o.batch), 'batch', { positive: true }),
        lr: parseNumberOption(String(o.lr), 'lr', { integer: false, positive: true }),
        milestones: String(o.milestones).split(',').filter(Boolean).map((m) => parseNumberOption(m, 'milestones', { positive: true })),
        data,
        masks: o.masks ? resolve(String(o.masks)) : null,
        maskRatios: String(o.maskRatios).split(',').filter(Boolean).map(parseRatio),
        seed: parseSeed(String(o.seed))!,
        ema,
        saveEvery: parseNumberOption(String(o.saveEvery), 'save-every', { positive: true }),
        init: o.init ? resolve(String(o.init)) : null,
        fill: parseFill(String(o.fill), '--fill'),
        // absent for gray2edge: a resumed run folder from before the option compares equal
        ...(structureKind !== 'gray2edge' ? { structureKind } : {}),
        ...(Number(o.zoom) !== 1 ? { zoom: parseNumberOption(String(o.zoom), 'zoom', { integer: false, min: 1 }) } : {}),
      };
      if (cfg.size % 16 !== 0) throw new Error(`--size must be a multiple of 16 (got ${cfg.size})`);
      const executor = String(o.executor);
      if (!isTrainExecutor(executor)) throw unknownExecutor(executor, '--executor', TRAIN_EXECUTORS);
      const threads = o.threads === undefined ? undefined : parseNumberOption(String(o.threads), 'threads', { positive: true });
      const maxMegapixels = parseMaxMegapixels(o.maxMegapixels, '--max-megapixels');
      const out = resolve(String(o.out ?? `runs/${k}`));
      if (o.steps !== undefined) {
        if (process.argv.includes('--iterations')) throw new Error('--steps is the older name of --iterations: give one of them');
        console.error('warning: train --steps is now --iterations (--steps means sampling steps in inpaint, eval and serve); it will be removed');
      }
      const steps = parseNumberOption(String(o.steps ?? o.iterations), o.steps !== undefined ? 'steps' : 'iterations', { positive: true });
      let bar: ProgressBar | null = null;
      let stop = false;
      const onSignal = () => {
        stop = true;
        console.error('\nstopping after this step (checkpoint will be saved)...');
      };
      // SIGTERM too: what `kill`, systemd and CI send; both save a checkpoint before exiting
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const res = await trainRun(cfg, {
        out,
        steps,
        executor,
        threads,
        maxMegapixels,
        diagEvery: parseNumberOption(String(o.diagEvery), 'diag-every', { min: 0 }),
        diagData: o.diagData ? resolve(String(o.diagData)) : undefined,
        resume: Boolean(o.resume),
        command: `strdiffusion train ${process.argv.slice(3).join(' ')}`,
        onLog: (m) => console.error(m),
        shouldStop: () => stop,
        onProgress: o.quiet
          ? undefined
          : (p) => {
              bar ??= new ProgressBar(steps, `${k} `);
              bar.update(steps - (p.steps - p.step), `loss ${p.smoothLoss.toPrecision(4)} ${(1 / p.secondsPerStep).toFixed(2)} it/s`);
            },
      });
      (bar as ProgressBar | null)?.done();
      console.log(`${k}: ${res.iteration} iterations, last loss ${res.loss.toPrecision(4)}; run folder ${out}`);
    });
}
