import type { Command } from 'commander';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SeededNoise } from '../../util/noise.js';
import { saveChwPng } from '../../data/images.js';
import { generateMask, holeRatio, parseRatio } from '../../data/masks.js';
import { checkOutputDir, checkOutputFiles } from '../../util/files.js';
import { parseNumberOption, parseSeed } from '../args.js';

export interface MasksCommandOptions {
  out: string;
  count: number;
  ratio: string;
  size: number;
  seed: number;
  log?: (line: string) => void;
}

/** More masks than this in one call is a typo, not a data set. */
const MAX_COUNT = 1_000_000;

/** Write `count` irregular masks as PNG (white = hole, black = known); returns the file paths. */
export async function writeMasks(o: MasksCommandOptions): Promise<string[]> {
  const count = parseNumberOption(String(o.count), 'count', { positive: true, max: MAX_COUNT });
  const size = parseNumberOption(String(o.size), 'size', { positive: true });
  const range = parseRatio(o.ratio);
  const dir = resolve(o.out);
  checkOutputDir(o.out);
  const digits = Math.max(5, String(count - 1).length);
  const name = (i: number) => `mask_${String(i).padStart(digits, '0')}.png`;
  // masks this call would replace must be regular files (not a FIFO, a device, a link to one)
  if (existsSync(dir)) checkOutputFiles(dir, readdirSync(dir).filter((f) => /^mask_\d+\.png$/.test(f) && Number(f.slice(5, -4)) < count && name(Number(f.slice(5, -4))) === f));
  mkdirSync(dir, { recursive: true });
  const rng = new SeededNoise(o.seed);
  const files: string[] = [];
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const hole = generateMask(size, range, rng);
    sum += holeRatio(hole);
    const px = new Uint8Array(hole.length);
    for (let k = 0; k < hole.length; k++) px[k] = hole[k] ? 255 : 0;
    const f = join(dir, name(i));
    await saveChwPng(f, px, 1, size, size);
    files.push(f);
  }
  (o.log ?? console.log)(
    `wrote ${count} masks ${size}×${size} (hole ratio ${range[0]}-${range[1]}, mean ${(sum / count).toFixed(3)}, seed ${o.seed}) to ${dir}`,
  );
  return files;
}

function num(v: string): number {
  // Number('') is 0 and parseInt('3x') is 3; reject both
  return v.trim() === '' ? NaN : Number(v);
}

export function register(program: Command): void {
  program
    .command('masks')
    .description('generate procedural irregular masks (PNG, white = hole) for training or evaluation')
    .requiredOption('--out <dir>', 'output folder (created if missing)')
    .requiredOption('--count <n>', 'number of masks', num)
    .option('--ratio <lo-hi>', 'hole-to-image ratio range, e.g. 0.3-0.4', '0.1-0.5')
    .option('--size <px>', 'mask side length', num, 256)
    .option('--seed <s>', 'random seed', (v: string) => parseSeed(v)!, 0)
    .action(async (o: { out: string; count: number; ratio: string; size: number; seed: number }) => {
      await writeMasks(o);
    });
}
