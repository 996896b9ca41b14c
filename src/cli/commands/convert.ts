/**
 * `strdiffusion convert`: a checkpoint folder (e.g. the authors' .pth files) to a model folder of
 * .safetensors files with a model.json. Every network is loaded and checked strictly first, so a
 * converted folder always loads; the .pth files load directly too, converting only saves the
 * pickle parsing and keeps T next to the weights.
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { checkpointDirs, loadModel, readModelJson, validateModelMeta, writeModelJson, type ModelMeta } from '../../model/checkpoints.js';
import { NET_KINDS } from '../../nn/models.js';
import { writeSafetensors } from '../../weights/safetensors.js';
import { optionalNumber } from '../args.js';
import { checkOutputDir, checkOutputFiles } from '../../util/files.js';

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a checkpoint folder (.pth or .safetensors) into a model folder of .safetensors files with a model.json')
    .requiredOption('--checkpoints <dirs...>', 'folder(s) with the three networks (structure, texture, discriminator)')
    .requiredOption('--out <dir>', 'output model folder')
    .option('--T <n>', "diffusion length the checkpoints were trained with (the authors' Places2: 400, PSV: 100); default: their model.json")
    .option('--size <n>', "window size to record in model.json, 16 to 4096 (default: the source's model.json, else none, i.e. 256 at inference)")
    .option('--force', 'overwrite weights in a folder that already has them')
    .action((o: { checkpoints: string[]; out: string; T?: string; size?: string; force?: boolean }) => {
      const T = optionalNumber(o.T, 'T', { min: 2 });
      const size = optionalNumber(o.size, 'size', { min: 16 });
      const out = resolve(o.out);
      checkOutputDir(o.out);
      checkOutputFiles(out, [...NET_KINDS.map((k) => `${k}.safetensors`), 'model.json']);
      const dirs = checkpointDirs(o.checkpoints);
      const model = loadModel(dirs, { T });
      if (!o.force) {
        for (const k of NET_KINDS) if (existsSync(join(out, `${k}.safetensors`))) throw new Error(`${join(out, `${k}.safetensors`)} exists; pass --force to overwrite`);
      }
      mkdirSync(out, { recursive: true });
      const files = Object.fromEntries(NET_KINDS.map((k) => [k, `${k}.safetensors`])) as Record<(typeof NET_KINDS)[number], string>;
      // every field of the source folders' model.json (model.meta: size, stepRule, sampler, fill,
      // per-network prediction, descriptions), then what this conversion decides; with several
      // folders each one's own model.json is kept whole under `sources`
      const meta: ModelMeta = {
        ...model.meta,
        T: model.T,
        ...(size !== undefined ? { size } : model.size !== undefined ? { size: model.size } : {}),
        ...(model.fill !== 'zero' || model.meta.fill !== undefined ? { fill: model.fill } : {}),
        files,
        converted_from: Object.fromEntries(NET_KINDS.map((k) => [k, model.files[k]])),
        ...(dirs.length > 1 ? { sources: Object.fromEntries(dirs.map((d) => [d, readModelJson(d)])) } : {}),
      };
      validateModelMeta(meta); // before any file is written
      for (const k of NET_KINDS) writeSafetensors(join(out, files[k]), model.weights[k], { kind: k, source: basename(model.files[k]) });
      writeModelJson(out, meta);
      console.log(`wrote ${out} (${NET_KINDS.map((k) => files[k]).join(', ')}, model.json with T = ${model.T})`);
    });
}
