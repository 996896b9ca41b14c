/**
 * Copies the weights of three training runs into a model folder with a model.json describing
 * them (config, T, iterations, data, the commands that made them):
 *   npx tsx scripts/package-model.ts OUT_DIR RUN_structure RUN_texture RUN_discriminator
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [out, ...runs] = process.argv.slice(2);
if (!out || runs.length !== 3) throw new Error('usage: package-model.ts OUT_DIR RUN_structure RUN_texture RUN_discriminator');
mkdirSync(out, { recursive: true });
const nets: Record<string, unknown> = {};
let T: number | undefined;
for (const run of runs) {
  const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  const kind = cfg.run.kind as string;
  const latest = readFileSync(join(run, 'latest'), 'utf8').trim();
  const state = JSON.parse(readFileSync(join(run, latest, 'state.json'), 'utf8'));
  if (T !== undefined && T !== cfg.run.T) throw new Error(`runs disagree on T (${T} vs ${cfg.run.T})`);
  T = cfg.run.T;
  // the run's top-level weights are the EMA weights when the run kept an EMA
  copyFileSync(join(run, `${kind}.safetensors`), join(out, `${kind}.safetensors`));
  const { data, masks, ...settings } = cfg.run;
  nets[kind] = { iterations: state.iteration, weights: cfg.run.ema ? `EMA (beta ${cfg.run.ema})` : 'last iterate', settings, command: cfg.command };
}
writeFileSync(
  join(out, 'model.json'),
  JSON.stringify(
    {
      T,
      description: 'StrDiffusion default model of this project: small config (nf 8, ngf 8), trained on CPU with the project trainer',
      data: 'photos of the Debian packages mate-backgrounds, lomiri-wallpapers-16.04, lomiri-wallpapers-20.04 (scripts/prepare-train-data.ts: short side 320 px); masks: generated irregular masks, hole ratio 10-50 %',
      files: { structure: 'structure.safetensors', texture: 'texture.safetensors', discriminator: 'discriminator.safetensors' },
      networks: nets,
      packaged: new Date().toISOString(),
    },
    null,
    2,
  ) + '\n',
);
console.log(`packaged ${out} (T = ${T})`);
