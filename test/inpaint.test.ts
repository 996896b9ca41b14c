import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { inpaint } from '../src/inpaint/index.js';
import { readImage, writeImage, type RasterImage } from '../src/image/io.js';
import { planWindow } from '../src/inpaint/window.js';
import { holesFromRaster } from '../src/inpaint/mask.js';
import { fixture } from './fixtures.js';

const NETS = fixture('parity/nets');
// the fixture networks are random: a short schedule keeps the test fast and exercises both stages
const FAST = { checkpoints: NETS, T: 10, size: 32, seed: 7, executor: 'onnx' as const };
const dir = mkdtempSync(join(tmpdir(), 'inpaint-test-'));

function photo(W: number, H: number, C: 1 | 2 | 3 | 4, bitDepth: 8 | 16 = 8): RasterImage {
  const max = bitDepth === 16 ? 65535 : 255;
  const data = bitDepth === 16 ? new Uint16Array(W * H * C) : new Uint8Array(W * H * C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < C; c++) {
        const v = c === 3 || (C === 2 && c === 1) ? 0.5 + 0.5 * Math.sin(x / 9) : 0.5 + 0.4 * Math.sin((x + 7 * c) / 13) * Math.cos(y / 11);
        data[(y * W + x) * C + c] = Math.round(v * max);
      }
    }
  }
  return { width: W, height: H, channels: C, bitDepth, data };
}

const bytes = (a: Uint8Array | Uint16Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function maskImage(W: number, H: number, holeFn: (x: number, y: number) => boolean): RasterImage {
  const data = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = holeFn(x, y) ? 255 : 0;
  return { width: W, height: H, channels: 1, bitDepth: 8, data };
}

const blob = (cx: number, cy: number, r: number) => (x: number, y: number) => (x - cx) ** 2 + ((y - cy) * 1.5) ** 2 < r * r || (Math.abs(y - cy - 0.4 * (x - cx)) < 3 && Math.abs(x - cx) < 2 * r);

function knownEqual(a: RasterImage, b: RasterImage, m: RasterImage): { known: number; hole: number } {
  const holes = holesFromRaster(m);
  let known = 0, hole = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    for (let c = 0; c < a.channels; c++) {
      const d = a.data[i * a.channels + c] !== b.data[i * b.channels + c] ? 1 : 0;
      if (holes[i]) hole += d;
      else known += d;
    }
  }
  return { known, hole };
}

describe('inpaint()', () => {
  let img: RasterImage;
  let mask: RasterImage;
  beforeAll(async () => {
    img = photo(500, 333, 3);
    mask = maskImage(500, 333, blob(250, 160, 40));
    await writeImage(join(dir, 'photo.png'), img);
    await writeImage(join(dir, 'mask.png'), mask);
  });

  it('500x333 photo: output has the input size and identical known pixels; same seed, same bytes', async () => {
    const a = await inpaint(join(dir, 'photo.png'), join(dir, 'mask.png'), FAST);
    expect([a.image.width, a.image.height, a.image.channels]).toEqual([500, 333, 3]);
    const d = knownEqual(img, a.image, mask);
    expect(d.known).toBe(0);
    expect(d.hole).toBeGreaterThan(0);
    // the hole is bigger than the 32-px window: it was scaled into the model window
    expect(a.window!.plan.w).toBeGreaterThan(32);
    const b = await inpaint(img, mask, FAST);
    expect(Buffer.from(b.image.data).equals(Buffer.from(a.image.data))).toBe(true);
    const c = await inpaint(img, mask, { ...FAST, seed: 8 });
    expect(Buffer.from(c.image.data).equals(Buffer.from(a.image.data))).toBe(false);
  });

  it('keeps alpha, grey, 16 bit and applies EXIF orientation', async () => {
    for (const [C, depth] of [[4, 8], [1, 8], [2, 8], [3, 16]] as const) {
      const im = photo(40, 30, C, depth);
      const m = maskImage(40, 30, blob(20, 15, 6));
      const r = await inpaint(im, m, FAST);
      expect([r.image.channels, r.image.bitDepth]).toEqual([C, depth]);
      expect(knownEqual(im, r.image, m).known).toBe(0);
      if (C === 4 || C === 2) {
        for (let i = 0; i < 40 * 30; i++) expect(r.image.data[i * C + C - 1]).toBe(im.data[i * C + C - 1]);
      }
      const file = join(dir, `out_${C}_${depth}.png`);
      await writeImage(file, r.image);
      const back = await readImage(file);
      expect([back.channels, back.bitDepth]).toEqual([C, depth]);
      expect(bytes(back.data).equals(bytes(r.image.data))).toBe(true);
    }
    // a JPEG stored sideways with EXIF orientation 6 is shown (and inpainted) upright: 30x40
    const raw = photo(40, 30, 3);
    const exif = join(dir, 'rot.jpg');
    await sharp(Buffer.from(raw.data), { raw: { width: 40, height: 30, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg().toFile(exif);
    const up = await readImage(exif);
    expect([up.width, up.height]).toEqual([30, 40]);
    const r = await inpaint(exif, maskImage(30, 40, blob(15, 20, 5)), FAST);
    expect([r.image.width, r.image.height]).toEqual([30, 40]);
  });

  it('bad inputs give one clear error', async () => {
    const small = maskImage(100, 50, () => false);
    await expect(inpaint(img, small, FAST)).rejects.toThrow('mask is 100x50 but the image is 500x333 (use --resize-mask');
    await expect(inpaint(join(dir, 'nope.png'), mask, FAST)).rejects.toThrow(`image not found: ${join(dir, 'nope.png')}`);
    await expect(inpaint(img, maskImage(500, 333, () => true), FAST)).rejects.toThrow('the mask covers the whole image');
    const warnings: string[] = [];
    const same = await inpaint(img, maskImage(500, 333, () => false), { ...FAST, warn: (m) => warnings.push(m) });
    expect(warnings[0]).toMatch(/no hole/);
    expect(Buffer.from(same.image.data).equals(Buffer.from(img.data))).toBe(true);
    const notImage = join(dir, 'text.png');
    await import('node:fs').then((fs) => fs.writeFileSync(notImage, 'hello'));
    await expect(inpaint(notImage, mask, FAST)).rejects.toThrow(/is not a readable image/);
  });

  it('resizeMask and invertMask', async () => {
    const half = maskImage(250, 167, blob(125, 80, 20));
    const r = await inpaint(img, half, { ...FAST, resizeMask: true });
    expect(r.holePixels).toBeGreaterThan(1000);
    const inv = maskImage(40, 30, (x, y) => !blob(20, 15, 6)(x, y));
    const im = photo(40, 30, 3);
    const a = await inpaint(im, inv, { ...FAST, invertMask: true });
    const b = await inpaint(im, maskImage(40, 30, blob(20, 15, 6)), FAST);
    expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(true);
  });
});

describe('window planning', () => {
  it('a small hole gets a model-size window with context, inside the image', () => {
    const p = planWindow({ x0: 100, y0: 100, x1: 120, y1: 110 }, 500, 333, 256);
    expect([p.w, p.h, p.sw, p.sh]).toEqual([256, 256, 256, 256]);
    expect(p.x).toBeGreaterThanOrEqual(0);
    expect(p.x + p.w).toBeLessThanOrEqual(500);
    expect(p.x).toBeLessThanOrEqual(100);
    expect(p.x + p.w).toBeGreaterThanOrEqual(120);
  });
  it('a hole larger than the window is scaled down; a small image is padded', () => {
    const p = planWindow({ x0: 0, y0: 0, x1: 400, y1: 300 }, 1000, 800, 256);
    expect(p.w).toBe(800);
    expect(p.sw).toBe(256);
    const q = planWindow({ x0: 10, y0: 10, x1: 20, y1: 20 }, 100, 60, 256);
    expect([q.w, q.h, q.sw, q.sh]).toEqual([100, 60, 100, 60]);
  });
});
