/**
 * `strdiffusion convert`: a checkpoint folder (e.g. the authors' .pth files) to a model folder of
 * .safetensors files with a model.json. Every network is loaded and checked strictly first, so a
 * converted folder always loads; the .pth files load directly too, converting only saves the
 * pickle parsing and keeps T next to the weights.
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { checkpointDirs, loadModel } from '../../model/checkpoints.js';
import { NET_KINDS } from '../../nn/models.js';
import { writeSafetensors } from '../../weights/safetensors.js';
import { optionalNumber } from '../args.js';

export function register(program: Command): void {
  program
    .command('convert')
    .description('convert a checkpoint folder (.pth or .safetensors) into a model folder of .safetensors files with a model.json')
    .requiredOption('--checkpoints <dirs...>', 'folder(s) with the three networks (structure, texture, discriminator)')
    .requiredOption('--out <dir>', 'output model folder')
    .option('--T <n>', "diffusion length the checkpoints were trained with (the authors' Places2: 400, PSV: 100); default: their model.json")
    .option('--size <n>', 'window size to record in model.json (default: none, i.e. 256 at inference)')
    .option('--force', 'overwrite weights in a folder that already has them')
    .action((o: { checkpoints: string[]; out: string; T?: string; size?: string; force?: boolean }) => {
      const T = optionalNumber(o.T, 'T', { min: 2 });
      const size = optionalNumber(o.size, 'size', { min: 16 });
      const dirs = checkpointDirs(o.checkpoints);
      const model = loadModel(dirs, { T });
      const out = resolve(o.out);
      if (!o.force) {
        for (const k of NET_KINDS) if (existsSync(join(out, `${k}.safetensors`))) throw new Error(`${join(out, `${k}.safetensors`)} exists; pass --force to overwrite`);
      }
      mkdirSync(out, { recursive: true });
      const files: Record<string, string> = {};
      for (const k of NET_KINDS) {
        files[k] = `${k}.safetensors`;
        writeSafetensors(join(out, files[k]!), model.weights[k], { kind: k, source: basename(model.files[k]) });
      }
      // keep every field of the source's model.json (size, stepRule, fill, descriptions), then ours
      const meta = { ...model.meta, T: model.T, ...(size !== undefined ? { size } : {}), ...(model.fill !== 'zero' ? { fill: model.fill } : {}), files, converted_from: Object.fromEntries(NET_KINDS.map((k) => [k, model.files[k]])) };
      writeFileSync(join(out, 'model.json'), JSON.stringify(meta, null, 2) + '\n');
      console.log(`wrote ${out} (${NET_KINDS.map((k) => files[k]).join(', ')}, model.json with T = ${model.T})`);
    });
}
