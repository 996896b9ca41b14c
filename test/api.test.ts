/**
 * The library's front door (src/index.ts): loadModel() / model.inpaint() / inpaint(), image sources,
 * result writers, progress fields, typed errors. Tiny fixture networks keep it fast.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inpaint, loadModel, readImage, writeImage, StrDiffusionError, type InpaintProgress, type RasterImage } from '../src/index.js';
import { fixture } from './fixtures.js';

const NETS = fixture('parity/nets');
const dir = mkdtempSync(join(tmpdir(), 'api-'));
const W = 40;
const H = 30;
const photo: RasterImage = { width: W, height: H, channels: 3, bitDepth: 8, data: new Uint8Array(W * H * 3).map((_, i) => (i * 7) & 255) };
const mask: RasterImage = { width: W, height: H, channels: 1, bitDepth: 8, data: new Uint8Array(W * H).map((_, i) => (Math.abs((i % W) - 20) < 4 && Math.abs(Math.floor(i / W) - 15) < 4 ? 255 : 0)) };
const RUN = { seed: 5, size: 32 };

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof StrDiffusionError ? e.code : `not a StrDiffusionError: ${(e as Error).message}`;
  }
  return 'no error';
}

beforeAll(async () => {
  await writeImage(join(dir, 'photo.png'), photo);
  await writeImage(join(dir, 'mask.png'), mask);
});

describe('loadModel / model.inpaint / inpaint', () => {
  it('a path, the bytes of an encoded file and raw pixels (no bitDepth, or a Uint8ClampedArray) give the same pixels as the one-shot call', async () => {
    const model = await loadModel(NETS, { T: 10 });
    expect(model.T).toBe(10);
    const fromPath = await model.inpaint(join(dir, 'photo.png'), join(dir, 'mask.png'), RUN);
    const fromBytes = await model.inpaint(readFileSync(join(dir, 'photo.png')), new Uint8Array(readFileSync(join(dir, 'mask.png'))), RUN);
    const fromRaw = await model.inpaint({ data: photo.data, width: W, height: H, channels: 3 }, { data: new Uint8ClampedArray(mask.data), width: W, height: H, channels: 1 }, RUN);
    const oneShot = await inpaint(join(dir, 'photo.png'), mask, { ...RUN, checkpoints: NETS, T: 10 });
    for (const r of [fromBytes, fromRaw, oneShot]) expect(Buffer.from(r.image.data.buffer).equals(Buffer.from(fromPath.image.data.buffer))).toBe(true);
    expect(fromPath.holePixels).toBe(49);
    // only hole pixels differ from the input
    let changedOutsideHole = 0;
    for (let i = 0; i < W * H; i++) if (mask.data[i] === 0) for (let c = 0; c < 3; c++) changedOutsideHole += Number(fromPath.image.data[i * 3 + c] !== photo.data[i * 3 + c]);
    expect(changedOutsideHole).toBe(0);
    await model.dispose();
  });

  it('the result saves (format by extension, read back equal) and encodes', async () => {
    const r = await inpaint(photo, mask, { ...RUN, checkpoints: NETS, T: 10 });
    await r.save(join(dir, 'out.png'));
    const back = await readImage(join(dir, 'out.png'));
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(r.image.data.buffer))).toBe(true);
    expect((await r.encode()).subarray(1, 4).toString()).toBe('PNG');
    expect((await r.encode('jpeg'))[0]).toBe(0xff);
    expect((await r.encode('webp')).subarray(8, 12).toString()).toBe('WEBP');
    await expect(r.save(join(dir, 'out.gif'))).rejects.toThrow(/cannot write \.gif/);
  });

  it('onProgress gets the HTTP progress fields, step 1..T in order', async () => {
    const seen: InpaintProgress[] = [];
    await inpaint(photo, mask, { ...RUN, checkpoints: NETS, T: 10, onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(Object.keys(seen[0]!).sort()).toEqual(['T', 'elapsed', 'eta', 'resampling', 'stage', 'step', 't']);
    expect(seen.at(-1)).toMatchObject({ T: 10, t: 1, eta: 0 });
    expect(seen.every((p, i) => p.t === 10 - i && p.elapsed >= 0)).toBe(true);
  });

  it('errors carry a code: bad input, bad option, bad checkpoint', async () => {
    expect(await code(inpaint(42 as never, mask, RUN))).toBe('BAD_INPUT');
    expect(await code(inpaint(new Uint8Array(0), mask, RUN))).toBe('BAD_INPUT');
    expect(await code(inpaint(new Uint8Array([1, 2, 3, 4]), mask, { ...RUN, checkpoints: NETS, T: 10 }))).toBe('BAD_INPUT');
    expect(await code(inpaint(photo, mask, { ...RUN, seed: -1 }))).toBe('BAD_OPTION');
    expect(await code(inpaint(photo, mask, { ...RUN, size: 5000 }))).toBe('BAD_OPTION'); // window size bounded (16-4096)
    const all = { ...mask, data: new Uint8Array(W * H).fill(255) };
    expect(await code(inpaint(photo, all, { ...RUN, checkpoints: NETS, T: 10 }))).toBe('BAD_INPUT'); // no known pixel
    expect(await code(inpaint(photo, { ...mask, width: H, height: W }, { ...RUN, checkpoints: NETS, T: 10 }))).toBe('BAD_INPUT'); // mask of another size
    expect(await code(loadModel(join(dir, 'no-such-model')))).toBe('BAD_CHECKPOINT');
    expect(await code(loadModel(dir))).toBe('BAD_CHECKPOINT'); // a folder without networks
    expect(await code(loadModel(NETS, { seed: 1 } as never))).toBe('BAD_OPTION');
    const model = await loadModel(NETS, { T: 10 });
    expect(await code(model.inpaint(photo, mask, { T: 20 } as never))).toBe('BAD_OPTION');
    await model.dispose();
    expect(await code(model.inpaint(photo, mask, RUN))).toBe('BAD_OPTION');
  });
});
