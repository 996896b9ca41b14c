/**
 * 'x0' prediction (not in the official code): the network's residual r is turned into ε̂ inside its
 * own graph, so a sampler's x̂0 = μ + (x − μ − σ̄ ε̂)/e_t recovers μ + r; r = 0 (a zero last conv,
 * how a new run starts) predicts x̂0 = μ exactly at every level. The training objective is the
 * masked L1 on x̂0.
 */
import { describe, it, expect } from 'vitest';
import { FIXTURE, type UNetConfig } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import { IRSDE } from '../src/sde/irsde.js';
import { withLevelTables } from '../src/sde/prediction.js';
import { OnnxExecutor } from '../src/exec/onnx/executor.js';
import { SeededNoise } from '../src/util/noise.js';
import { createTrainer, trainStep } from '../src/train/trainer.js';

const T = 20;
const sde = new IRSDE({ T });
const cfg: UNetConfig = { ...FIXTURE.structure, prediction: 'x0' };

function zeroHead(seed: number) {
  const w = initWeights('structure', cfg, seed);
  for (const k of ['final_conv.weight', 'final_conv.bias']) w.get(k)!.data.fill(0);
  return w;
}

describe("'x0' prediction", () => {
  it('a zero last conv predicts x̂0 = μ at every level through the exported ε̂', async () => {
    const runner = await new OnnxExecutor({ threads: 1 }).createRunner('structure', withLevelTables(cfg, sde), zeroHead(1));
    const rng = new SeededNoise(3);
    const shape = [1, 1, 16, 16];
    const mu = rng.normal(shape).map((v) => v * 0.3);
    for (const t of [1, 7, T]) {
      const x = sde.generateStates(rng.normal(shape).map((v) => 0.5 + 0.2 * v), mu, t, rng.normal(shape), shape);
      const eps = await runner.run({ x: { shape, data: x }, mu: { shape, data: mu }, t: [t] });
      const x0 = sde.predictX0(x, mu, eps.data, t, shape);
      let err = 0;
      for (let i = 0; i < x0.length; i++) err = Math.max(err, Math.abs(x0[i]! - mu[i]!));
      // float32 round-off of x − μ − σ̄ε̂, divided by e_t (≈ 0.005 at T)
      expect(err).toBeLessThan(t === T ? 2e-3 : 1e-4);
    }
    runner.dispose();
  });

  it('the exported network refuses to run without the SDE tables', async () => {
    await expect(async () => {
      const r = await new OnnxExecutor({ threads: 1 }).createRunner('structure', cfg, zeroHead(1));
      await r.run({ x: { shape: [1, 1, 16, 16], data: new Float32Array(256) }, mu: { shape: [1, 1, 16, 16], data: new Float32Array(256) }, t: [1] });
    }).rejects.toThrow(/level tables/);
  });

  it('training lowers the masked L1 on x̂0 of one batch', async () => {
    const trainer = await createTrainer('onnx', 'structure', cfg, zeroHead(2), { T, adam: { lr: 1e-3, betas: [0.9, 0.99] }, threads: 1 });
    const rng = new SeededNoise(5);
    const B = 2, H = 16;
    const img = () => ({ shape: [B, 1, H, H], data: rng.normal([B, 1, H, H]).map((v) => 0.5 + 0.2 * v) });
    const mask = { shape: [B, 1, H, H], data: Float32Array.from({ length: B * H * H }, (_, i) => ((i % (H * H)) < 128 ? 1 : 0)) };
    const batch = { GT: { shape: [B, 3, H, H], data: new Float32Array(B * 3 * H * H).fill(0.5) }, gray: img(), edge: img(), mask };
    const losses: number[] = [];
    for (let i = 0; i < 15; i++) losses.push((await trainStep('structure', trainer, batch, new SeededNoise(9), { t: [3, 15] })).loss);
    await trainer.dispose();
    expect(losses[14]!).toBeLessThan(0.8 * losses[0]!);
  });
});
