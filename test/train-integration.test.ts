/**
 * Slow: the structure loss goes down over ~200 steps on real photos (onnxruntime trainer). Runs with
 * STRDIFFUSION_SLOW=1 (about a minute or two); the default suite skips it.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { readNpy } from '../src/weights/npy.js';
import { trainRun } from '../src/train/run.js';
import { FIXTURE } from '../src/nn/config.js';
import { fixture } from './fixtures.js';

const FIX = fixture('parity/canny');
const slow = process.env.STRDIFFUSION_SLOW === '1';

describe.skipIf(!slow)('structure training on real photos', () => {
  it('the loss decreases over 200 steps', async () => {
    const root = mkdtempSync(join(tmpdir(), 'train-int-'));
    const data = join(root, 'photos');
    mkdirSync(data);
    for (const name of ['canny_astronaut_64', 'canny_coffee_64', 'canny_camera_256']) {
      const a = readNpy(join(FIX, name, 'rgb_u8.npy'));
      const [C, H, W] = a.shape as [number, number, number];
      const hwc = Buffer.alloc(C * H * W);
      for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) hwc[i * C + c] = a.data[c * H * W + i]!;
      await sharp(hwc, { raw: { width: W, height: H, channels: C as 3 } }).png().toFile(join(data, `${name}.png`));
    }
    const out = join(root, 'run');
    await trainRun(
      { kind: 'structure', net: FIXTURE.structure, T: 100, size: 32, batch: 4, lr: 1e-3, milestones: [], data, masks: null, maskRatios: [[0.1, 0.5]], seed: 1, ema: null, saveEvery: 100 },
      { out, steps: 200, executor: 'onnx', threads: 1, diagEvery: 100 },
    );
    const losses = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(losses.slice(0, 40));
    const last = mean(losses.slice(-40));
    console.log(`structure loss: first 40 steps ${first.toFixed(4)}, last 40 steps ${last.toFixed(4)}`);
    expect(last).toBeLessThan(first * 0.8);
    // the diagnostics ran twice (steps 100 and 200) with finite hole errors
    const diag = readFileSync(join(out, 'diagnostics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(diag.map((d) => d.step)).toEqual([100, 200]);
    for (const d of diag) for (const v of [...d.marginal, ...d.trajectory]) expect(Number.isFinite(v)).toBe(true);
    expect(readFileSync(join(out, 'diagnostics.svg'), 'utf8')).toContain('<svg');
  });
});
