/**
 * Issue #22 ("Hostile round two"), items 9, 10 and 13 and the minor ones of the library: model
 * handles that share sessions, the bounded one-shot cache, errors that name options for the
 * library (the CLI words them as flags), seeds above 2^32, and options given as getters or
 * inherited. The fixture networks with T of a few steps and a 32-pixel window keep it fast.
 */
import { describe, it, expect } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inpaint, loadModel, StrDiffusionError, type RasterImage } from '../src/index.js';
import { loadInpaintModel } from '../src/inpaint/index.js';
import { SeededNoise } from '../src/util/noise.js';
import { fixture } from './fixtures.js';

const NETS = fixture('parity/nets');
const W = 40;
const H = 30;
const photo: RasterImage = { width: W, height: H, channels: 3, bitDepth: 8, data: new Uint8Array(W * H * 3).map((_, i) => (i * 7) & 255) };
const mask: RasterImage = { width: W, height: H, channels: 1, bitDepth: 8, data: new Uint8Array(W * H).map((_, i) => (Math.abs((i % W) - 20) < 4 && Math.abs(Math.floor(i / W) - 15) < 4 ? 255 : 0)) };
const RUN = { seed: 5, size: 32 };
const same = (a: RasterImage, b: RasterImage) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
/** whether a runner of a loaded model was disposed (the onnx runner's own flag) */
const disposed = (r: unknown) => (r as { disposed?: boolean }).disposed === true;

async function failure(p: Promise<unknown>): Promise<StrDiffusionError | Error | null> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  return null;
}

// =================================================================================================
describe('item 9: dispose() of one handle does not break another of the same folder', () => {
  it('two handles of one folder: dispose the first, the second still inpaints; the sessions go with the last', async () => {
    const a = await loadModel(NETS, { T: 4 });
    const b = await loadModel(NETS, { T: 4 });
    const before = await b.inpaint(photo, mask, RUN);
    await a.dispose();
    const after = await b.inpaint(photo, mask, RUN);
    expect(same(before.image, after.image)).toBe(true);
    await expect(a.inpaint(photo, mask, RUN)).rejects.toThrow(/this model was disposed/);
    await b.dispose();
    // the last holder gone, its sessions are released (the one-shot cache never held this model)
    const { modelCacheState } = await import('../src/inpaint/model-cache.js');
    expect(modelCacheState().some((e) => e.T === 4)).toBe(false);
  });

  it('a handle disposed while another handle of the same folder runs does not stop that run', async () => {
    const a = await loadModel(NETS, { T: 6 });
    const b = await loadModel(NETS, { T: 6 });
    const ref = await b.inpaint(photo, mask, RUN);
    let disposing: Promise<void> | undefined;
    // a is disposed at b's first network step, in the middle of b's run
    const r = await b.inpaint(photo, mask, { ...RUN, onProgress: () => void (disposing ??= a.dispose()) });
    await disposing;
    expect(disposing).toBeDefined();
    expect(same(r.image, ref.image)).toBe(true);
    // and b itself, disposed during its own run: the run holds the sessions until it ends
    const c = await loadModel(NETS, { T: 6 });
    disposing = undefined;
    const r2 = await c.inpaint(photo, mask, { ...RUN, onProgress: () => void (disposing ??= Promise.all([b.dispose(), c.dispose()]).then(() => {})) });
    await disposing;
    expect(same(r2.image, ref.image)).toBe(true);
    const { modelCacheState } = await import('../src/inpaint/model-cache.js');
    expect(modelCacheState().some((e) => e.T === 6)).toBe(false);
  });
});

// =================================================================================================
describe('item 10: the one-shot cache is bounded', () => {
  it('after one-shot calls with 5 values of T, only the 2 most recent models are kept; older ones are released', async () => {
    const { modelCacheState, MAX_CACHED_MODELS } = await import('../src/inpaint/model-cache.js');
    expect(MAX_CACHED_MODELS).toBe(2);
    const first = await loadInpaintModel({ checkpoints: NETS, T: 7 });
    for (const T of [7, 8, 9, 10, 11]) await inpaint(photo, mask, { ...RUN, checkpoints: NETS, T });
    expect(Object.values(first.runners).every(disposed)).toBe(true);
    const cached = modelCacheState().filter((e) => e.cached);
    expect(cached.length).toBeLessThanOrEqual(2);
    expect(cached.map((e) => e.T).sort()).toEqual([10, 11]);
    expect(modelCacheState().every((e) => e.refs === 0)).toBe(true);
  });

  it('concurrent one-shot calls with 4 values of T all finish: a model in use is not released mid-run', async () => {
    const { modelCacheState } = await import('../src/inpaint/model-cache.js');
    const results = await Promise.all([12, 13, 14, 15].map((T) => inpaint(photo, mask, { ...RUN, checkpoints: NETS, T })));
    for (const r of results) expect(r.holePixels).toBe(49);
    expect(modelCacheState().filter((e) => e.cached).length).toBeLessThanOrEqual(2);
    expect(modelCacheState().every((e) => e.refs === 0)).toBe(true);
  });
});

// =================================================================================================
describe('item 13: library errors name the option for the library, with a code and the option', () => {
  const root = mkdtempSync(join(tmpdir(), 'library-models-'));
  const unknownT = join(root, 'no-T');
  const withT = join(root, 'T20');
  for (const d of [unknownT, withT]) {
    mkdirSync(d);
    for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(NETS, `${k}.pth`), join(d, `${k}.pth`));
  }
  writeFileSync(join(withT, 'model.json'), JSON.stringify({ T: 20 }));

  it('an unknown T: BAD_CHECKPOINT, option T, "pass options.T" (no CLI flag)', async () => {
    const e = (await failure(loadModel(unknownT))) as StrDiffusionError;
    expect(e).toBeInstanceOf(StrDiffusionError);
    expect(e.code).toBe('BAD_CHECKPOINT');
    expect(e.option).toBe('T');
    expect(e.message).toMatch(/the diffusion length T of .* is unknown: pass options\.T /);
    expect(e.message).not.toMatch(/--/);
    // the CLI's wording, from the same error
    expect(e.wordedFor((o) => `--${o}`)).toMatch(/is unknown: pass --T /);
  });

  it('a T that contradicts model.json: BAD_OPTION, option T, "use options.T = 20"', async () => {
    const e = (await failure(loadModel(withT, { T: 10 }))) as StrDiffusionError;
    expect(e).toBeInstanceOf(StrDiffusionError);
    expect(e.code).toBe('BAD_OPTION');
    expect(e.option).toBe('T');
    expect(e.message).toMatch(/model.json says T = 20\); the schedule depends on T, so use options\.T = 20$/);
    expect(e.wordedFor((o, v) => `--${o}${v === undefined ? '' : ` ${v}`}`)).toMatch(/so use --T 20$/);
    const big = (await failure(loadModel(withT, { T: 20000 }))) as StrDiffusionError;
    expect(big.code).toBe('BAD_OPTION');
    expect(big.message).toMatch(/^T must be at most 10000/);
  });
});

// =================================================================================================
describe('seeds: no two safe integers share a stream; seeds below 2^32 keep theirs', () => {
  it('0 and 2^32 + 1 (and 1 and 2^32) give different streams', () => {
    const draw = (s: number) => Array.from(new SeededNoise(s).normal([4]));
    expect(draw(4294967297)).not.toEqual(draw(0));
    expect(draw(4294967296)).not.toEqual(draw(1));
    expect(draw(2 ** 53 - 1)).not.toEqual(draw(2 ** 53 - 2));
    // seeds above 2^32 among themselves
    const seen = new Set<string>();
    for (const hi of [1, 2, 3, 2 ** 20]) for (const lo of [0, 1, 2, 3]) seen.add(draw(hi * 2 ** 32 + lo).join(','));
    expect(seen.size).toBe(16);
  });

  it('seeds below 2^32 draw exactly what they drew before (pins)', () => {
    const pins: [number, number[]][] = [
      [0, [3809008728, 1133695204, 53579671]],
      [1, [2442144158, 3238099751, 3819917871]],
      [7, [1004282400, 2200021487, 1928073449]],
      [123456789, [4284103975, 1001954530, 2701803082]],
      [2 ** 31, [3777240597, 340332888, 1644009166]],
      [2 ** 32 - 1, [835879718, 1921286648, 2356205009]],
    ];
    for (const [seed, u] of pins) {
      const n = new SeededNoise(seed);
      expect([n.nextU32(), n.nextU32(), n.nextU32()], `seed ${seed}`).toEqual(u);
    }
    expect(Array.from(new SeededNoise(0).normal([2]))).toEqual([Math.fround(2.0812089443206787), Math.fround(0.16346561908721924)]);
  });

  it('inpaint with seed 0 and seed 2^32 + 1 gives different pixels', async () => {
    const a = await inpaint(photo, mask, { size: 32, checkpoints: NETS, T: 4, seed: 0 });
    const b = await inpaint(photo, mask, { size: 32, checkpoints: NETS, T: 4, seed: 4294967297 });
    expect(same(a.image, b.image)).toBe(false);
  });
});

// =================================================================================================
describe('options given as getters or inherited', () => {
  it('each option is read once: the value checked is the value used', async () => {
    let reads = 0;
    const options = { size: 32, checkpoints: NETS, T: 4, get seed() { reads++; return reads === 1 ? 5 : -1; } };
    const r = await inpaint(photo, mask, options);
    expect(reads).toBe(1);
    const ref = await inpaint(photo, mask, { size: 32, checkpoints: NETS, T: 4, seed: 5 });
    expect(same(r.image, ref.image)).toBe(true);
    // the same through a handle
    const model = await loadModel(NETS, { T: 4 });
    reads = 0;
    const viaHandle = await model.inpaint(photo, mask, { size: 32, get seed() { reads++; return reads === 1 ? 5 : -1; } });
    expect(reads).toBe(1);
    expect(same(viaHandle.image, ref.image)).toBe(true);
    await model.dispose();
  });

  it('an inherited enumerable option is refused (it would be used without being checked)', async () => {
    const options = Object.assign(Object.create({ seed: -1 }) as object, { size: 32, checkpoints: NETS, T: 4 });
    const e = (await failure(inpaint(photo, mask, options))) as StrDiffusionError;
    expect(e).toBeInstanceOf(StrDiffusionError);
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toMatch(/^options\.seed is inherited .*own properties/);
    const model = await loadModel(NETS, { T: 4 });
    const e2 = (await failure(model.inpaint(photo, mask, Object.create({ resizeMask: 'yes' }) as object))) as StrDiffusionError;
    expect(e2.code).toBe('BAD_OPTION');
    expect(e2.message).toMatch(/^options\.resizeMask is inherited/);
    await model.dispose();
    // a class instance's methods (not enumerable) are not options and pass
    class Opts { size = 32; seed = 5; describe() { return 'x'; } }
    const ok = await inpaint(photo, mask, Object.assign(new Opts(), { checkpoints: NETS, T: 4 }));
    expect(ok.holePixels).toBe(49);
  });
});

// =================================================================================================
describe('raw inputs are read, never written', () => {
  it('a Node Buffer given as raw pixels keeps its bytes (Buffer.slice is a view: the result must be a copy)', async () => {
    const data = Buffer.from(photo.data);
    const copy = Buffer.from(data);
    const out = await inpaint({ data, width: W, height: H, channels: 3 }, mask, { ...RUN, checkpoints: NETS, T: 4 });
    expect(data.equals(copy)).toBe(true);
    expect(Buffer.from(out.image.data).equals(copy)).toBe(false);
  });
});
