/**
 * Copies the weights of three training runs into a model folder with a model.json describing
 * them (config, T, iterations, data, the commands that made them):
 *   npx tsx scripts/package-model.ts OUT_DIR RUN_structure RUN_texture RUN_discriminator
 *       [--weights ema|last] [--size N] [--solver NAME] [--steps N] [--spacing KIND] [--sampler VARIANT] [--data TEXT] [--fill NAME]
 * --weights last takes the last iterate of each run's latest checkpoint instead of the run's
 * top-level weights (the EMA when the run keeps one: after a few thousand iterations an EMA with
 * beta 0.995 still carries a visible share of earlier, worse weights).
 * A RUN may also be a model folder (with model.json): that network is taken from it as packaged,
 * with its recorded iterations, settings and command (a network kept from an earlier model).
 * The model's fill is the texture network's unless --fill names another (the bundled model samples
 * with `bridge`, Navier–Stokes plus bridged edges, with a texture network trained on `ns`: noted on
 * stderr); a discriminator trained with another fill is kept with a warning (its settings record
 * the fill it saw).
 * --checkpoint N (with --weights ema|last) takes the texture run's checkpoint N instead of its newest.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { readModelJson, writeModelJson, type ModelMeta } from '../src/model/checkpoints.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { optionalNumber, parseSampling } from '../src/cli/args.js';
import { SAMPLER_VARIANTS } from '../src/sampler/strdiffusion.js';
import { checkpointName, latestCheckpoint } from '../src/train/run.js';
import { checkOutputDir } from '../src/util/files.js';
import { parseFill } from '../src/sde/fill.js';

// a bad argument is one line, not a stack trace
process.on('uncaughtException', (e) => {
  console.error(`package-model: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    weights: { type: 'string', default: 'ema' },
    size: { type: 'string' },
    'step-rule': { type: 'string' },
    solver: { type: 'string' },
    steps: { type: 'string' },
    spacing: { type: 'string' },
    sampler: { type: 'string' },
    data: { type: 'string' },
    checkpoint: { type: 'string' },
    fill: { type: 'string' },
  },
});
const [out, ...runs] = positionals;
if (!out || runs.length !== 3) throw new Error('usage: package-model.ts OUT_DIR RUN_structure RUN_texture RUN_discriminator [--weights ema|last] [--size N] [--solver NAME] [--steps N] [--spacing KIND] [--sampler VARIANT] [--data TEXT] [--fill NAME] [--checkpoint N]');
if (values.weights !== 'ema' && values.weights !== 'last') throw new Error(`--weights must be ema or last (got "${values.weights}")`);
const size = optionalNumber(values.size, 'size', { min: 16 });
// the sampling defaults the model is shipped with (--step-rule: the older name of --solver)
const { solver, steps, spacing, stepRule } = parseSampling({ ...values, stepRule: values['step-rule'] });
const fillOption = values.fill === undefined ? undefined : parseFill(values.fill, '--fill');
if (values.sampler !== undefined && !(SAMPLER_VARIANTS as readonly string[]).includes(values.sampler)) throw new Error(`--sampler must be one of ${SAMPLER_VARIANTS.join(', ')} (got "${values.sampler}")`);

checkOutputDir(out, 'OUT_DIR');
mkdirSync(out, { recursive: true });
const nets: Record<string, unknown> = {};
let T: number | undefined;
const fills: Record<string, string> = {};
const prediction: Record<string, string> = {};
const kinds = ['structure', 'texture', 'discriminator'] as const;
runs.forEach((run, i) => {
  const kind = kinds[i]!;
  let settings: { T: number; fill?: string; net?: { prediction?: string } };
  if (existsSync(join(run, 'model.json')) && !existsSync(join(run, 'config.json'))) {
    // a network kept from a packaged model, with what model.json recorded about it
    const meta = readModelJson(run);
    const entry = (meta.networks as Record<string, { settings: typeof settings }> | undefined)?.[kind];
    const file = (meta.files as Record<string, string> | undefined)?.[kind];
    if (!entry || !file) throw new Error(`${run}/model.json records no ${kind} network`);
    copyFileSync(join(run, file), join(out, `${kind}.safetensors`));
    settings = entry.settings;
    nets[kind] = entry;
  } else {
    const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    if (cfg.run.kind !== kind) throw new Error(`${run} trains a ${cfg.run.kind} network, expected the ${kind} run in place ${i + 1}`);
    // the newest complete checkpoint (what --resume continues), even where a kill left `latest` behind;
    // --checkpoint picks one of the texture run's
    const chosen = kind === 'texture' && values.checkpoint !== undefined;
    const latest = chosen ? join(run, checkpointName(Number(values.checkpoint))) : latestCheckpoint(run);
    if (!latest || !existsSync(join(latest, 'state.json'))) throw new Error(`${run} has no complete checkpoint${values.checkpoint ? ` ${values.checkpoint}` : ''}`);
    const state = JSON.parse(readFileSync(join(latest, 'state.json'), 'utf8'));
    // the run's top-level weights are the EMA weights when the run kept an EMA (a chosen checkpoint: its EMA file)
    const last = values.weights === 'last' || !cfg.run.ema;
    const src = last ? join(latest, `${kind}.safetensors`) : chosen ? join(latest, `${kind}_ema.safetensors`) : join(run, `${kind}.safetensors`);
    if (!existsSync(src)) throw new Error(`${src} not found`);
    copyFileSync(src, join(out, `${kind}.safetensors`));
    const { data, masks, ...rest } = cfg.run;
    settings = rest;
    nets[kind] = { iterations: state.iteration, weights: last ? 'last iterate' : `EMA (beta ${cfg.run.ema})`, settings: rest, command: cfg.command };
  }
  if (T !== undefined && T !== settings.T) throw new Error(`runs disagree on T (${T} vs ${settings.T})`);
  T = settings.T;
  if (settings.net?.prediction === 'x0') prediction[kind] = 'x0';
  if (kind !== 'structure') fills[kind] = settings.fill ?? 'zero';
});
// the texture network's fill is the model's unless --fill says otherwise: the sampler builds μ with it for every network
const fill = fillOption ?? fills.texture;
if (fill !== fills.texture) console.warn(`note: the model samples with the ${fill} fill, its texture network was trained with ${fills.texture}`);
if (fills.discriminator !== fill) console.warn(`warning: the discriminator was trained with the ${fills.discriminator} fill, the model's is ${fill} (the official and improved samplers use it)`);
// validated and written atomically, like every model.json
writeModelJson(out, {
      T,
      ...(size !== undefined ? { size } : {}),
      ...(stepRule !== undefined ? { stepRule } : {}),
      ...(solver !== undefined ? { solver } : {}),
      ...(steps !== undefined ? { steps } : {}),
      ...(spacing !== undefined ? { spacing } : {}),
      ...(values.sampler !== undefined ? { sampler: values.sampler } : {}),
      ...(fill !== undefined && fill !== 'zero' ? { fill } : {}),
      ...(Object.keys(prediction).length ? { prediction } : {}),
      description: 'StrDiffusion default model of this project: small config (nf 8, ngf 8), trained on CPU with the project trainer (onnxruntime)',
      data: values.data ?? 'photos of the Debian packages mate-backgrounds, lomiri-wallpapers-16.04, lomiri-wallpapers-20.04 and python3-skimage (its data folder) (scripts/prepare-train-data.ts: short side 320 px); masks: generated irregular masks, hole ratio 10-50 %',
      files: { structure: 'structure.safetensors', texture: 'texture.safetensors', discriminator: 'discriminator.safetensors' },
      networks: nets,
      packaged: new Date().toISOString(),
} as ModelMeta); // the field types are checked by writeModelJson's validation
console.log(`packaged ${out} (T = ${T}${size ? `, size ${size}` : ''}${solver ?? stepRule ? `, solver ${solver ?? stepRule}` : ''}${steps ? `, ${steps} steps` : ''}, ${values.weights} weights)`);
