/**
 * Copies the weights of three training runs into a model folder with a model.json describing
 * them (config, T, iterations, data, the commands that made them):
 *   npx tsx scripts/package-model.ts OUT_DIR RUN_structure RUN_texture RUN_discriminator
 *       [--weights ema|last] [--size N] [--solver NAME] [--steps N] [--spacing KIND] [--sampler VARIANT] [--data TEXT]
 * --weights last takes the last iterate of each run's latest checkpoint instead of the run's
 * top-level weights (the EMA when the run keeps one: after a few thousand iterations an EMA with
 * beta 0.995 still carries a visible share of earlier, worse weights).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeModelJson, type ModelMeta } from '../src/model/checkpoints.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { optionalNumber, parseSampling } from '../src/cli/args.js';
import { SAMPLER_VARIANTS } from '../src/sampler/strdiffusion.js';
import { latestCheckpoint } from '../src/train/run.js';
import { checkOutputDir } from '../src/util/files.js';

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
  },
});
const [out, ...runs] = positionals;
if (!out || runs.length !== 3) throw new Error('usage: package-model.ts OUT_DIR RUN_structure RUN_texture RUN_discriminator [--weights ema|last] [--size N] [--solver NAME] [--steps N] [--spacing KIND] [--data TEXT]');
if (values.weights !== 'ema' && values.weights !== 'last') throw new Error(`--weights must be ema or last (got "${values.weights}")`);
const size = optionalNumber(values.size, 'size', { min: 16 });
// the sampling defaults the model is shipped with (--step-rule: the older name of --solver)
const { solver, steps, spacing, stepRule } = parseSampling({ ...values, stepRule: values['step-rule'] });
if (values.sampler !== undefined && !(SAMPLER_VARIANTS as readonly string[]).includes(values.sampler)) throw new Error(`--sampler must be one of ${SAMPLER_VARIANTS.join(', ')} (got "${values.sampler}")`);

checkOutputDir(out, 'OUT_DIR');
mkdirSync(out, { recursive: true });
const nets: Record<string, unknown> = {};
let T: number | undefined;
let fill: string | undefined;
const prediction: Record<string, string> = {};
for (const run of runs) {
  const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  const kind = cfg.run.kind as string;
  // the newest complete checkpoint (what --resume continues), even where a kill left `latest` behind
  const latest = latestCheckpoint(run);
  if (!latest) throw new Error(`${run} has no complete checkpoint`);
  const state = JSON.parse(readFileSync(join(latest, 'state.json'), 'utf8'));
  if (T !== undefined && T !== cfg.run.T) throw new Error(`runs disagree on T (${T} vs ${cfg.run.T})`);
  T = cfg.run.T;
  if (cfg.run.net?.prediction === 'x0') prediction[kind] = 'x0';
  if (kind !== 'structure') {
    const f = cfg.run.fill ?? 'zero';
    if (fill !== undefined && fill !== f) throw new Error(`runs disagree on the fill (${fill} vs ${f})`);
    fill = f;
  }
  // the run's top-level weights are the EMA weights when the run kept an EMA
  const last = values.weights === 'last' || !cfg.run.ema;
  const src = last ? join(latest, `${kind}.safetensors`) : join(run, `${kind}.safetensors`);
  if (!existsSync(src)) throw new Error(`${src} not found`);
  copyFileSync(src, join(out, `${kind}.safetensors`));
  const { data, masks, ...settings } = cfg.run;
  nets[kind] = { iterations: state.iteration, weights: last ? 'last iterate' : `EMA (beta ${cfg.run.ema})`, settings, command: cfg.command };
}
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
