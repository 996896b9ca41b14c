/** Noise tapes recorded from the official code, read from a folder of `NNNNN.npy` draws. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../weights/npy.js';
import { TapeNoise, type TapeDraw } from '../util/noise.js';

/** Read `NNNNN.npy` (5-digit, from 00000, consecutive) from `dir`; `count` limits or requires that many. */
export function tapeFromDir(dir: string, count?: number): TapeNoise {
  const draws: TapeDraw[] = [];
  const names = new Set(readdirSync(dir).filter((f) => /^\d{5}\.npy$/.test(f)));
  for (let i = 0; count === undefined || i < count; i++) {
    const f = `${String(i).padStart(5, '0')}.npy`;
    if (!names.has(f)) {
      if (count !== undefined) throw new Error(`tapeFromDir: ${join(dir, f)} missing (${count} draws requested)`);
      break;
    }
    const a = readNpy(join(dir, f));
    if (a.dtype !== 'float32') throw new Error(`tapeFromDir: ${join(dir, f)} is ${a.dtype}, expected float32`);
    draws.push({ shape: a.shape, data: a.data as Float32Array });
  }
  if (draws.length === 0 && !existsSync(join(dir, '00000.npy'))) throw new Error(`tapeFromDir: no 00000.npy in ${dir}`);
  return new TapeNoise(draws, dir);
}
