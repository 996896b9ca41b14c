/**
 * Slow (STRDIFFUSION_SLOW=1): the one-image consistency check. The tiny structure and texture
 * networks are trained on ONE 32×32 photo crop with ONE hole (texture with the Telea fill and 'x0'
 * prediction, as the bundled model), then the sampler (posterior rule, no resampling) fills that
 * hole of that photo: training and sampling agree on everything (T, mask convention, μ, Canny σ,
 * value range, window, EMA) only if the fill comes out close to the memorised photo, well above the
 * mean-colour fill. (The ε-prediction version of this check is dominated by seed noise for the
 * official code too: scripts/official-parity/README.md.)
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { readNpy } from '../src/weights/npy.js';
import { trainRun, type RunConfig } from '../src/train/run.js';
import { FIXTURE } from '../src/nn/config.js';
import { inpaint } from '../src/inpaint/index.js';
import { readImage } from '../src/image/io.js';
import { baselineMethod } from '../src/eval/baselines.js';
import { fixture } from './fixtures.js';

const FIX = fixture('parity/canny');
const slow = process.env.STRDIFFUSION_SLOW === '1';
const S = 32;

function holePsnr(a: Uint8Array | Uint16Array, b: Uint8Array | Uint16Array, hole: (p: number) => boolean): number {
  let se = 0;
  let n = 0;
  for (let p = 0; p < S * S; p++) {
    if (!hole(p)) continue;
    for (let c = 0; c < 3; c++) {
      const d = (a[p * 3 + c]! - b[p * 3 + c]!) / 255;
      se += d * d;
      n++;
    }
  }
  return 10 * Math.log10(1 / (se / n));
}

describe.skipIf(!slow)('one-image consistency', () => {
  it('networks trained on one photo and one hole fill that hole well above the mean fill', async () => {
    const root = mkdtempSync(join(tmpdir(), 'memorize-'));
    const data = join(root, 'photo');
    const masks = join(root, 'mask');
    mkdirSync(data);
    mkdirSync(masks);
    // a 32×32 crop of a real photo (the fixtures' coffee) and a 10×10 hole off-centre
    const a = readNpy(join(FIX, 'canny_coffee_64', 'rgb_u8.npy'));
    const [C, H, W] = a.shape as [number, number, number];
    const hwc = Buffer.alloc(S * S * 3);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) hwc[(y * S + x) * 3 + c] = a.data[c * H * W + (y + 16) * W + (x + 16)]!;
    void C;
    await sharp(hwc, { raw: { width: S, height: S, channels: 3 } }).png().toFile(join(data, 'photo.png'));
    const hole = (p: number) => Math.floor(p / S) >= 11 && Math.floor(p / S) < 21 && p % S >= 9 && p % S < 19;
    const m = Buffer.alloc(S * S);
    for (let p = 0; p < S * S; p++) m[p] = hole(p) ? 255 : 0;
    await sharp(m, { raw: { width: S, height: S, channels: 1 } }).png().toFile(join(masks, 'hole.png'));
    const base = { T: 20, size: S, batch: 4, lr: 1e-3, milestones: [], data, masks, maskRatios: [], seed: 1, ema: null, saveEvery: 400, fill: 'telea' as const };
    const runs: Record<string, string> = {};
    for (const kind of ['structure', 'texture', 'discriminator'] as const) {
      const net = kind === 'discriminator' ? FIXTURE.discriminator : { ...FIXTURE[kind], prediction: 'x0' as const };
      runs[kind] = join(root, kind);
      await trainRun({ ...base, kind, net } as RunConfig, { out: runs[kind]!, steps: kind === 'discriminator' ? 20 : 400, threads: 1, diagEvery: 0 });
    }
    const photo = await readImage(join(data, 'photo.png'));
    const scores: number[] = [];
    const official: number[] = [];
    for (const seed of [1, 2, 3]) {
      for (const sampler of ['no-resampling', 'official'] as const) {
        const { image } = await inpaint(join(data, 'photo.png'), join(masks, 'hole.png'), {
          checkpoints: [runs.structure!, runs.texture!, runs.discriminator!], seed, size: S, sampler, stepRule: 'posterior',
        });
        (sampler === 'official' ? official : scores).push(holePsnr(image.data, photo.data, hole));
      }
    }
    // the mean-colour fill of the same hole
    const mean = [0, 0, 0];
    let k = 0;
    for (let p = 0; p < S * S; p++) if (!hole(p)) { for (let c = 0; c < 3; c++) mean[c]! += photo.data[p * 3 + c]!; k++; }
    const flat = Uint8Array.from(photo.data, (v, i) => (hole(Math.floor(i / 3)) ? Math.round(mean[i % 3]! / k) : v));
    const meanPsnr = holePsnr(flat, photo.data, hole);
    // and the Telea fill the texture SDE starts from: the networks must add to it, not just return it
    const telea = baselineMethod('telea');
    await telea.prepare?.();
    const holes = Uint8Array.from({ length: S * S }, (_, p) => (hole(p) ? 1 : 0));
    const teleaPsnr = holePsnr((await telea.run(photo, holes, { seed: 0 })).data, photo.data, hole);
    const avg = scores.reduce((s, v) => s + v, 0) / scores.length;
    const avgOfficial = official.reduce((s, v) => s + v, 0) / official.length;
    console.log(`one-image consistency: hole PSNR ${scores.map((s) => s.toFixed(2)).join(', ')} (mean ${avg.toFixed(2)}; official resampling sampler ${avgOfficial.toFixed(2)}), mean fill ${meanPsnr.toFixed(2)}, Telea ${teleaPsnr.toFixed(2)}`);
    expect(avgOfficial).toBeGreaterThan(meanPsnr + 10);
    // measured: 25.3 dB against 9.6 (mean fill) and 11.9 (Telea); the official ε-prediction code reaches 8–15 dB here
    expect(avg).toBeGreaterThan(meanPsnr + 10);
    expect(avg).toBeGreaterThan(teleaPsnr + 5);
  }, 900_000);
});
