import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointDirs, loadModel, MAX_SIZE } from '../../model/checkpoints.js';
import { parseNumberOption, parsePrecision } from '../args.js';
import { NET_KINDS } from '../../nn/models.js';
import type { NetKind } from '../../exec/types.js';
import { describeModel, exportOnnx, type ModelDesc } from '../../exec/onnx/export.js';
import { calibrateRanges, syntheticCalibrationInputs } from '../../exec/onnx/calibrate.js';
import { sessionOptions } from '../../exec/onnx/executor.js';
import { checkOutputDir, checkOutputFiles, writeFileAtomic } from '../../util/files.js';

/** "256" or "256x384" (height x width) */
export function parseSize(s: string): { height: number; width: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(s.trim());
  if (!m) throw new Error(`--size must be N or HxW (got "${s}")`);
  const height = Number(m[1]);
  const width = Number(m[2] ?? m[1]);
  if (height < 1 || width < 1) throw new Error(`--size must be positive (got "${s}")`);
  if (height > MAX_SIZE || width > MAX_SIZE) throw new Error(`--size must be at most ${MAX_SIZE} on each side (got "${s}")`);
  return { height, width };
}

/** A batch beyond this builds graphs no machine here can run. */
const MAX_EXPORT_BATCH = 256;

export function register(program: Command): void {
  program
    .command('export')
    .description('export the three networks to ONNX (structure.onnx, texture.onnx, discriminator.onnx + onnx.json) for onnxruntime, e.g. onnxruntime-web in a browser')
    .option('--checkpoints <dirs>', 'checkpoint folder(s), comma-separated (default: the default model)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--size <N|HxW>', 'input size the graphs are built for (ONNX graphs here have fixed shapes)', '256')
    .option('--batch <N>', 'batch size the graphs are built for', '1')
    .option('--T <N>', 'diffusion length of the checkpoints (recorded in onnx.json for samplers)')
    .option('--nets <list>', 'comma-separated subset of structure,texture,discriminator')
    .option(
      '--precision <p>',
      'fp32 (default); int8 (dynamically quantised convolutions); int8-static (QLinearConv, calibrated here on synthetic inputs: ' +
        'a smooth random image plus noise at t = T, T/2, T/10, so its accuracy on real images depends on how well those ranges cover them)',
      'fp32',
    )
    .action(async (o: { checkpoints?: string; out: string; size: string; batch: string; T?: string; nets?: string; precision: string }) => {
      const precision = parsePrecision(o.precision)!;
      const { height, width } = parseSize(o.size);
      const batch = parseNumberOption(o.batch, 'batch', { positive: true, max: MAX_EXPORT_BATCH });
      const kinds = (o.nets ? o.nets.split(',').filter(Boolean) : NET_KINDS) as NetKind[];
      for (const k of kinds) if (!NET_KINDS.includes(k)) throw new Error(`--nets: unknown network "${k}" (expected ${NET_KINDS.join(', ')})`);
      checkOutputDir(o.out);
      checkOutputFiles(o.out, [...kinds.map((k) => `${k}.onnx`), 'onnx.json']);
      const model = loadModel(checkpointDirs(o.checkpoints), { T: o.T === undefined ? undefined : parseNumberOption(o.T, 'T', { positive: true }), kinds });
      mkdirSync(o.out, { recursive: true });
      const nets: Record<string, ModelDesc & { file: string; source: string; bytes: number }> = {};
      for (const kind of kinds) {
        const t0 = performance.now();
        const shape = { batch, height, width };
        let bytes: Uint8Array;
        if (precision === 'int8-static') {
          const inputs = syntheticCalibrationInputs(kind, model.configs[kind], shape, model.T);
          const calibration = await calibrateRanges(kind, model.configs[kind], model.weights[kind], inputs, sessionOptions());
          bytes = exportOnnx(kind, model.configs[kind], model.weights[kind], shape, { precision, quant: { calibration } });
        } else {
          bytes = exportOnnx(kind, model.configs[kind], model.weights[kind], shape, { precision });
        }
        const file = `${kind}.onnx`;
        writeFileAtomic(join(o.out, file), bytes);
        nets[kind] = { file, source: model.files[kind], bytes: bytes.byteLength, ...describeModel(kind, model.configs[kind], shape), ...(precision === 'fp32' ? {} : { precision }) };
        console.log(`${kind.padEnd(13)} -> ${join(o.out, file)}  ${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
      const info = {
        format: 'strdiffusion-onnx/1',
        T: model.T,
        batch,
        height,
        width,
        note: 'fixed-shape graphs: inputs are NCHW float32, t holds the integer diffusion step of each sample as float32; U-Nets predict the noise, the discriminator a score per sample',
        networks: nets,
      };
      writeFileAtomic(join(o.out, 'onnx.json'), JSON.stringify(info, null, 2) + '\n');
      console.log(`wrote ${join(o.out, 'onnx.json')}`);
    });
}
