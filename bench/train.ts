/**
 * `npm run bench -- --train [--json] [--steps 3] [--batch 4] [--size 64] [--preset mini]
 * [--nets structure,texture,discriminator]`: seconds per training step (forward + backward +
 * Adam) of each network on tfjs (wasm unless STRDIFFUSION_TF_BACKEND says otherwise), median of
 * the timed steps after one warm-up step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initTf } from '../src/exec/tfjs.js';
import { presetConfigs } from '../src/nn/config.js';
import { paramSpec } from '../src/nn/models.js';
import { NET_KINDS } from '../src/nn/models.js';
import type { NetKind } from '../src/exec/types.js';
import type { StateDict } from '../src/weights/types.js';
import { numel } from '../src/util/tensor.js';
import { SeededNoise } from '../src/sde/noise.js';
import { createTrainState, disposeTrainState, trainStep } from '../src/train/step.js';
import type { ObjectiveBatch } from '../src/train/objectives.js';

function opt(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : def;
}

/** PyTorch-default-like uniform init (fan-in scaled); LayerNorm gains 1, u/v unit vectors. */
function randomWeights(kind: NetKind, cfg: ReturnType<typeof presetConfigs>[NetKind], rng: SeededNoise): StateDict {
  const sd: StateDict = new Map();
  for (const [k, shape] of paramSpec(kind, cfg)) {
    const n = numel(shape);
    const data = new Float32Array(n);
    if (k.endsWith('.g')) data.fill(1);
    else if (k.endsWith('.weight_u') || k.endsWith('.weight_v')) data.fill(1 / Math.sqrt(n));
    else {
      const fanIn = shape.length > 1 ? n / shape[0]! : n;
      const b = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) data[i] = (2 * rng.uniform() - 1) * b;
    }
    sd.set(k, { shape, data });
  }
  return sd;
}

function randomBatch(B: number, size: number, rng: SeededNoise): ObjectiveBatch {
  const img = (c: number, f: () => number) => ({ shape: [B, c, size, size], data: Float32Array.from({ length: B * c * size * size }, f) });
  const mask = img(1, () => 1);
  // a square hole in the middle of every sample
  for (let b = 0; b < B; b++) for (let y = size >> 2; y < (3 * size) >> 2; y++) for (let x = size >> 2; x < (3 * size) >> 2; x++) mask.data[b * size * size + y * size + x] = 0;
  return { GT: img(3, () => rng.uniform()), gray: img(1, () => rng.uniform()), edge: img(1, () => (rng.uniform() < 0.1 ? 1 : 0)), mask };
}

export async function main(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const steps = Math.max(3, Number(opt(args, 'steps', '3')));
  const B = Number(opt(args, 'batch', '4'));
  const size = Number(opt(args, 'size', '64'));
  const preset = opt(args, 'preset', 'mini');
  const nets = opt(args, 'nets', NET_KINDS.join(',')).split(',') as NetKind[];
  const backend = await initTf();
  const configs = presetConfigs(preset);
  const rng = new SeededNoise(1);
  const batch = randomBatch(B, size, rng);
  const results: Record<string, unknown>[] = [];
  for (const kind of nets) {
    const cfg = configs[kind];
    const weights = randomWeights(kind, cfg, rng);
    const nParams = [...weights.values()].reduce((a, v) => a + v.data.length, 0);
    const state = createTrainState(kind, cfg, weights);
    const noise = new SeededNoise(7);
    const times: number[] = [];
    let loss = NaN;
    for (let i = 0; i <= steps; i++) {
      const t0 = performance.now();
      loss = trainStep(kind, state, batch, noise).loss;
      const dt = (performance.now() - t0) / 1000;
      if (i > 0) times.push(dt);
      if (!json) process.stderr.write(`  ${kind} step ${i}${i === 0 ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s, loss ${loss.toPrecision(4)}\n`);
    }
    disposeTrainState(state);
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1]!;
    results.push({ net: kind, preset, params: nParams, batch: B, size, steps: times.length, median_s: median, min_s: sorted[0], times_s: times, last_loss: loss, tensors_after: tf.memory().numTensors });
  }
  const report = { bench: 'train_step', backend, threads: 1, results };
  if (json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(`training step (fwd + bwd + Adam), tfjs ${backend}, preset ${preset}, batch ${B}, ${size}x${size}`);
    for (const r of results) console.log(`  ${String(r.net).padEnd(14)} ${(r.median_s as number).toFixed(3)} s/step (median of ${r.steps}; min ${(r.min_s as number).toFixed(3)})  ${((r.params as number) / 1e6).toFixed(2)} M params`);
  }
}
