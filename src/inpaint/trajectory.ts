/**
 * Saves the denoising trajectory (the paper's figure): texture and structure states every k steps
 * as PNGs plus one strip image (texture row on top, structure row below).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeImageAtomic } from '../image/io.js';
import { checkReplaceable } from '../util/files.js';

/** Names of the files save() writes into its folder: a texture_tNNNN.png and structure_tNNNN.png per
 * saved step (which steps depends on the sampler) and strip.png. */
const TRAJECTORY_FILE = /^(?:(?:texture|structure)_t\d{4,}|strip)\.png$/;

/** Whether save() may write a file of this name (callers refuse a trajectory folder holding an input or the result under such a name). */
export function isTrajectoryFileName(name: string): boolean {
  return TRAJECTORY_FILE.test(name);
}

export class TrajectoryRecorder {
  private frames: { t: number; y: Float32Array; x: Float32Array | null }[] = [];
  constructor(private every: number, private T: number) {}

  /** hook for the sampler's onState(t, y, x) */
  record = (t: number, y: Float32Array, x: Float32Array | null): void => {
    if (t % this.every === 0 || t === this.T || t === 1) this.frames.push({ t, y: y.slice(), x: x ? x.slice() : null });
  };

  async save(dir: string): Promise<string[]> {
    mkdirSync(dir, { recursive: true });
    // the window size is the model's choice: read it off the states (y is [3, s, s])
    const s = Math.round(Math.sqrt((this.frames[0]?.y.length ?? 0) / 3));
    const n = s * s;
    const files: string[] = [];
    const tiles: { y: Buffer; x: Buffer }[] = [];
    // every destination first, so a special file among them leaves no half-written trajectory
    for (const f of this.frames) for (const k of ['texture', 'structure']) checkReplaceable(join(dir, `${k}_t${String(f.t).padStart(4, '0')}.png`));
    checkReplaceable(join(dir, 'strip.png'));
    for (const f of this.frames) {
      const rgb = Buffer.alloc(3 * n);
      for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = to8(f.y[c * n + i]!);
      // late stage: the guide is the channel mean of the texture (docs/design.md §5.4)
      const g = Buffer.alloc(n);
      for (let i = 0; i < n; i++) g[i] = to8(f.x ? f.x[i]! : (f.y[i]! + f.y[n + i]! + f.y[2 * n + i]!) / 3);
      const tag = String(f.t).padStart(4, '0');
      const yf = join(dir, `texture_t${tag}.png`);
      const xf = join(dir, `structure_t${tag}.png`);
      await writeImageAtomic(yf, { width: s, height: s, channels: 3, bitDepth: 8, data: rgb });
      await writeImageAtomic(xf, { width: s, height: s, channels: 1, bitDepth: 8, data: g });
      files.push(yf, xf);
      tiles.push({ y: rgb, x: Buffer.from(Array.from(g, (v) => [v, v, v]).flat()) });
    }
    const W = s * tiles.length;
    const strip = Buffer.alloc(W * 2 * s * 3);
    tiles.forEach((tile, k) => {
      for (let r = 0; r < s; r++) {
        tile.y.copy(strip, (r * W + k * s) * 3, r * s * 3, (r + 1) * s * 3);
        tile.x.copy(strip, ((r + s) * W + k * s) * 3, r * s * 3, (r + 1) * s * 3);
      }
    });
    const stripFile = join(dir, 'strip.png');
    if (tiles.length) await writeImageAtomic(stripFile, { width: W, height: 2 * s, channels: 3, bitDepth: 8, data: strip });
    files.push(stripFile);
    return files;
  }
}

function to8(v: number): number {
  return Math.round(Math.min(1, Math.max(0, v)) * 255);
}
