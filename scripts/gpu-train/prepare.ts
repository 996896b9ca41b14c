/**
 * Inputs for scripts/gpu-train/train_x0.py (training the bundled model's U-Nets on a GPU with
 * PyTorch and the official network code, the project's own recipe): this project's SDE tables,
 * a pool of its training masks, and check cases that the Python side must reproduce.
 *
 *   npx tsx scripts/gpu-train/prepare.ts OUT_DIR --data DIR [--masks N] [--runs RUN_structure,RUN_texture]
 *
 * OUT_DIR/tables.json   T, dt and per level l: exp(−θ̄_l dt), σ̄_l, the posterior-mean coefficients A_l, B_l
 * OUT_DIR/masks.bin     N masks of 64×64 from IrregularMaskGenerator (training's ratios), 1 bit per pixel (1 = known)
 * OUT_DIR/check/        one real batch (GT, gray, edge, mask, the Telea-filled μ), and per U-Net the
 *                       prepared objective inputs, its loss and gradients with the runs' weights
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { IRSDE } from '../../src/sde/irsde.js';
import { IrregularMaskGenerator } from '../../src/data/masks.js';
import { ImageFolderLoader } from '../../src/train/data.js';
import { filledMean } from '../../src/sde/fill.js';
import { loadOpenCv } from '../../src/image/opencv.js';
import { writeNpy } from '../../src/weights/npy.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { presetConfigs } from '../../src/nn/config.js';
import { createTrainer, trainStep } from '../../src/train/trainer.js';
import { SeededNoise } from '../../src/util/noise.js';
import type { UNetConfig } from '../../src/nn/config.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { data: { type: 'string' }, masks: { type: 'string', default: '16000' }, runs: { type: 'string' }, T: { type: 'string', default: '50' } },
});
const out = positionals[0];
if (!out || !values.data) throw new Error('usage: prepare.ts OUT_DIR --data DIR [--masks N] [--runs RUN_structure,RUN_texture]');
mkdirSync(join(out, 'check'), { recursive: true });
const T = Number(values.T);
const SIZE = 64;

// ---- SDE tables (the project's float32-emulated values)
const sde = new IRSDE({ T });
const tables = { T, dt: sde.dt, meanFactor: [] as number[], sigmaBar: [] as number[], A: [] as number[], B: [] as number[] };
for (let l = 0; l <= T; l++) {
  tables.meanFactor.push(sde.meanFactor(l));
  tables.sigmaBar.push(sde.sigmaBar(l));
  const c = l >= 1 ? sde.optimumCoefs(l) : { A: 0, B: 0 };
  tables.A.push(c.A);
  tables.B.push(c.B);
}
writeFileSync(join(out, 'tables.json'), JSON.stringify(tables));

// ---- mask pool
const nMasks = Number(values.masks);
const gen = new IrregularMaskGenerator({ size: SIZE, seed: 2026 });
const bits = new Uint8Array((nMasks * SIZE * SIZE) / 8);
for (let k = 0; k < nMasks; k += 500) {
  const n = Math.min(500, nMasks - k);
  const m = await gen.batch(n);
  for (let i = 0; i < n * SIZE * SIZE; i++) if (m.data[i]! >= 0.5) bits[((k * SIZE * SIZE + i) >> 3)]! |= 1 << (i & 7);
}
writeFileSync(join(out, 'masks.bin'), bits);

// ---- check cases
const loader = await ImageFolderLoader.open({ root: values.data, size: SIZE, batchSize: 4, seed: 5, structureWorkers: 0 });
const batch = await loader.next();
await loader.close();
const mask = await new IrregularMaskGenerator({ size: SIZE, seed: 9 }).batch(4);
const { cv } = await loadOpenCv();
const muTex = filledMean('telea', batch.GT, mask, cv);
const npy = (name: string, shape: readonly number[], data: Float32Array) => writeNpy(join(out, 'check', `${name}.npy`), { shape: [...shape], data });
npy('GT', batch.GT.shape, batch.GT.data);
npy('gray', batch.gray.shape, batch.gray.data);
npy('edge', batch.edge.shape, batch.edge.data);
npy('mask', mask.shape, mask.data);
npy('mu_telea', batch.GT.shape, muTex);
// the SDE formulas of the Python side, against this project's float32-emulated ones
{
  const shape = [4, 1, 8, 8];
  const rng = new SeededNoise(3);
  const x0 = rng.normal(shape), mu = rng.normal(shape), z = rng.normal(shape);
  const t = [2, 17, 33, T];
  const xt = sde.generateStates(x0, mu, t, z, shape);
  npy('sde_x0', shape, x0);
  npy('sde_mu', shape, mu);
  npy('sde_z', shape, z);
  npy('sde_state', shape, xt);
  npy('sde_posterior', shape, sde.reverseOptimumStep(xt, x0, mu, t, shape));
  writeFileSync(join(out, 'check', 'sde_meta.json'), JSON.stringify({ t }));
}
if (values.runs) {
  const [rs, rt] = values.runs.split(',');
  for (const [kind, run] of [['structure', rs], ['texture', rt]] as const) {
    const cfg = { ...presetConfigs('small')[kind], prediction: 'x0' } as UNetConfig;
    const w = readSafetensors(join(run!, `${kind}.safetensors`));
    const trainer = await createTrainer('onnx', kind, cfg, w, { T, threads: 1 });
    const r = await trainStep(kind, trainer, { GT: batch.GT, gray: batch.gray, edge: batch.edge, mask, fill: kind === 'texture' ? 'telea' : 'zero' }, new SeededNoise(77), { grads: true, noUpdate: true, inspect: true });
    const p = r.prepared!;
    const d = `${kind}_`;
    npy(`${d}state`, p.state.shape, p.state.data);
    npy(`${d}mu`, p.mu!.shape, p.mu!.data);
    npy(`${d}clean`, p.clean!.shape, p.clean!.data);
    if (p.S) npy(`${d}S`, p.S.shape, p.S.data);
    writeFileSync(join(out, 'check', `${d}meta.json`), JSON.stringify({ t: p.t, loss: r.loss, weights: join(run!, `${kind}.safetensors`) }));
    for (const [k, g] of r.grads!) npy(`${d}grad__${k}`, g.shape, g.data);
    await trainer.dispose();
  }
}
console.log(`wrote ${out}: tables (T ${T}), ${nMasks} masks, check cases`);
