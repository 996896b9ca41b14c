/** What the file-safety tests (reliability-files, hostile-files) share: the CLI, small images, a tiny run config. */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { RunConfig } from '../src/train/run.js';
import { FIXTURE } from '../src/nn/config.js';
import type { RasterImage } from '../src/image/io.js';
import { fixture } from './fixtures.js';

export const ROOT = resolve(__dirname, '..');
export const NETS = fixture('parity/nets');
export const FAST = ['--checkpoints', NETS, '--T', '10', '--size', '32', '-q'];

export function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr.trim() };
}

/** A two-step structure training on the images in `data`, 32² crops, checkpoints every 2 steps. */
export function tinyRun(data: string, over: Partial<RunConfig> = {}): RunConfig {
  return {
    kind: 'structure', net: FIXTURE.structure, T: 20, size: 32, batch: 2, lr: 1e-4, milestones: [], data, masks: null,
    maskRatios: [[0.1, 0.3]], seed: 3, ema: null, saveEvery: 2, ...over,
  };
}

export function image(W: number, H: number, f: (x: number, y: number, c: number) => number, C: 1 | 3 = 3): RasterImage {
  const d = new Uint8Array(W * H * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) d[(y * W + x) * C + c] = f(x, y, c);
  return { width: W, height: H, channels: C, bitDepth: 8, data: d };
}

export const photo = () => image(64, 48, (x, y, c) => (x * 3 + y + c * 40) & 255);
export const hole = () => image(64, 48, (x, y) => (Math.abs(x - 32) < 6 && Math.abs(y - 20) < 8 ? 255 : 0), 1);
