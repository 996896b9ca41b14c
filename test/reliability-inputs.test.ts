/**
 * Issue #14 item 11: inputs that used to be accepted and misread (rasters whose data contradicts
 * their header, NaN/negative seeds, wrong argument types, an output extension that is not the
 * written format, animated inputs), each refused with one clear line before any computing.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { inpaint } from '../src/inpaint/index.js';
import { readImage, writeImage, type RasterImage } from '../src/image/io.js';
import { StrDiffusionError, isStrDiffusionError } from '../src/util/errors.js';
import { fixture, REPO_ROOT } from './fixtures.js';

const NETS = fixture('parity/nets');
const FAST = { checkpoints: NETS, T: 10, size: 32, seed: 7 };
const dir = mkdtempSync(join(tmpdir(), 'reliability-inputs-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/strdiffusion.js'), ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr.trim() };
}

function rgb(W: number, H: number): RasterImage {
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) & 255;
  return { width: W, height: H, channels: 3, bitDepth: 8, data };
}

function holeMask(W: number, H: number): RasterImage {
  const data = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = Math.abs(x - W / 2) < 4 && Math.abs(y - H / 2) < 4 ? 255 : 0;
  return { width: W, height: H, channels: 1, bitDepth: 8, data };
}

/** The rejection of `p`: a StrDiffusionError with `code` whose one-line message matches `re`. */
async function rejection(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected a rejection matching ${re}`).toBeInstanceOf(StrDiffusionError);
  const e = err as StrDiffusionError;
  expect(e.code, e.message).toBe(code);
  expect(e.message).toMatch(re);
  expect(e.message.split('\n')).toHaveLength(1);
}

const W = 40, H = 30;
let photoPath: string, maskPath: string;

beforeAll(async () => {
  photoPath = join(dir, 'photo.png');
  maskPath = join(dir, 'mask.png');
  await writeImage(photoPath, rgb(W, H));
  await writeImage(maskPath, holeMask(W, H));
});

describe('StrDiffusionError', () => {
  it('is an Error with a name and a code', () => {
    const e = new StrDiffusionError('BAD_OPTION', 'options.T must be an integer');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('StrDiffusionError');
    expect(e.code).toBe('BAD_OPTION');
    expect(isStrDiffusionError(e, 'BAD_OPTION')).toBe(true);
    expect(isStrDiffusionError(e, 'BAD_INPUT')).toBe(false);
    expect(isStrDiffusionError(new Error('x'))).toBe(false);
  });
});

describe('11a: raw rasters must agree with their header', () => {
  it('refuses 16-bit declared with Uint8Array data (was wrapped mod 256)', async () => {
    const img = { ...rgb(W, H), bitDepth: 16 as const };
    await rejection(inpaint(img, holeMask(W, H), FAST), 'BAD_INPUT', /^image\.data must be a Uint16Array for bitDepth 16 \(got a Uint8Array\)$/);
  });

  it('refuses 8-bit declared with Uint16Array data, and a mask raster with the same fault', async () => {
    const img = { ...rgb(W, H), data: new Uint16Array(W * H * 3) };
    await rejection(inpaint(img, holeMask(W, H), FAST), 'BAD_INPUT', /^image\.data must be a Uint8Array for bitDepth 8 \(got a Uint16Array\)$/);
    const m = { ...holeMask(W, H), bitDepth: 16 as const };
    await rejection(inpaint(rgb(W, H), m, FAST), 'BAD_INPUT', /^mask\.data must be a Uint16Array for bitDepth 16/);
    // a plain array is not pixel data either
    await rejection(inpaint({ ...rgb(W, H), data: Array.from(rgb(W, H).data) as any }, holeMask(W, H), FAST), 'BAD_INPUT', /^image\.data must be a Uint8Array for bitDepth 8 \(got an array\)$/);
  });

  it('refuses a wrong sample count, channel count, bit depth or size', async () => {
    const base = rgb(W, H);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ data: base.data.subarray(1) }, /^image\.data has 3599 samples, but width x height x channels = 40x30x3 needs 3600$/],
      [{ channels: 5 }, /^image\.channels must be 1 \(grey\), 2 \(grey\+alpha\), 3 \(RGB\) or 4 \(RGBA\) \(got the number 5\)$/],
      [{ channels: '3' }, /^image\.channels must be 1 .* \(got the string "3"\)$/],
      [{ bitDepth: 12 }, /^image\.bitDepth must be 8 or 16 \(got the number 12\)$/],
      [{ width: 0 }, /^image\.width and image\.height must be positive integers \(got the number 0 x the number 30\)$/],
      [{ height: 1.5 }, /^image\.width and image\.height must be positive integers/],
      [{ width: NaN }, /^image\.width and image\.height must be positive integers \(got the number NaN/],
    ];
    for (const [patch, re] of cases) await rejection(inpaint({ ...base, ...patch } as any, holeMask(W, H), FAST), 'BAD_INPUT', re);
  });

  it('a valid 16-bit raster still works', async () => {
    const data = new Uint16Array(W * H * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 4099) & 0xffff;
    const r = await inpaint({ width: W, height: H, channels: 3, bitDepth: 16, data }, holeMask(W, H), FAST);
    expect(r.image.bitDepth).toBe(16);
    expect(r.image.data).toBeInstanceOf(Uint16Array);
  });
});

describe('11b: seeds are non-negative safe integers', () => {
  it('the library refuses NaN, negative, fractional, unsafe and string seeds', async () => {
    for (const [seed, shown] of [[NaN, 'the number NaN'], [-1, 'the number -1'], [1.5, 'the number 1.5'], [2 ** 53, 'the number 9007199254740992'], [Infinity, 'the number Infinity'], ['3', 'the string "3"']] as const) {
      await rejection(inpaint(photoPath, maskPath, { ...FAST, seed: seed as number }), 'BAD_OPTION', new RegExp(`^options\\.seed must be a non-negative safe integer \\(got ${shown.replace(/[.()"]/g, '\\$&')}\\)$`));
    }
  });

  it('seed 0 and seed 2^53-1 are accepted and differ', async () => {
    const a = await inpaint(photoPath, maskPath, { ...FAST, seed: 0 });
    const b = await inpaint(photoPath, maskPath, { ...FAST, seed: Number.MAX_SAFE_INTEGER });
    expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(false);
  });

  it('the CLI refuses --seed -1, NaN and 1e20 with one line and writes nothing', () => {
    for (const s of ['-1', 'NaN', '1e20', '2.5']) {
      const out = join(dir, `never-seed.png`);
      const r = cli('inpaint', '--image', photoPath, '--mask', maskPath, '--out', out, '--checkpoints', NETS, '--T', '10', '--size', '32', '-q', '--seed', s);
      expect(r.status, r.err).toBe(1);
      expect(r.err).toBe(`strdiffusion: --seed must be a non-negative safe integer (got "${s}")`);
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('11c: the public inpaint() names the argument of the wrong type', () => {
  it('image and mask must be paths or rasters', async () => {
    await rejection(inpaint(42 as any, maskPath, FAST), 'BAD_INPUT', /^image must be a file path or a RasterImage \{width, height, channels, bitDepth, data\} \(got the number 42\)$/);
    await rejection(inpaint(photoPath, null as any, FAST), 'BAD_INPUT', /^mask must be a file path or a RasterImage .*\(got null\)$/);
    await rejection(inpaint(undefined as any, maskPath, FAST), 'BAD_INPUT', /^image must be .*\(got undefined\)$/);
    await rejection(inpaint('', maskPath, FAST), 'BAD_INPUT', /^image must be a file path or a RasterImage .*\(got the string ""\)$/);
  });

  it('options must be an object of known options with the right types', async () => {
    const cases: [unknown, RegExp][] = [
      ['fast', /^options must be an object \(got the string "fast"\)$/],
      [{ ...FAST, steps: '10' }, /^options\.steps must be an integer >= 1 \(got the string "10"\)$/],
      [{ ...FAST, iterations: 10 }, /^options\.iterations is not an option \(sampling steps are options\.steps, the diffusion length options\.T\)$/],
      [{ ...FAST, solver: 'euler' }, /^options\.solver must be one of sde, posterior, mr-ode-1, mr-ode-2, mr-sde-2 /],
      [{ ...FAST, colour: 1 }, /^options\.colour is not an option \(options are: checkpoints, T, seed, /],
      [{ ...FAST, T: '10' }, /^options\.T must be an integer >= 2 \(got the string "10"\)$/],
      [{ ...FAST, size: '32' }, /^options\.size must be an integer from 16 to 4096 \(got the string "32"\)$/],
      [{ ...FAST, checkpoints: 5 }, /^options\.checkpoints must be a folder path or an array of folder paths \(got the number 5\)$/],
      [{ ...FAST, sampler: 'fast' }, /^options\.sampler must be one of official, improved, no-resampling, no-discriminator, one-call, split, irsde, repaint \(got the string "fast"\)$/],
      [{ ...FAST, stepRule: 1 }, /^options\.stepRule must be one of sde, posterior \(got the number 1\)$/],
      [{ ...FAST, structure: 'edges' }, /^options\.structure must be one of network, fill/],
      [{ ...FAST, executor: 'tfjs' }, /^options\.executor must be one of onnx/],
      [{ ...FAST, precision: 'int4' }, /^options\.precision must be one of fp32, int8, int8-static/],
      [{ ...FAST, onProgress: 'log' }, /^options\.onProgress must be a function \(got the string "log"\)$/],
      [{ ...FAST, invertMask: 'yes' }, /^options\.invertMask must be true or false \(got the string "yes"\)$/],
      [{ ...FAST, samplerOptions: 3 }, /^options\.samplerOptions must be an object \(got the number 3\)$/],
      [{ ...FAST, samplerOptions: { uMax: 'six' } }, /^options\.samplerOptions\.uMax must be a finite number \(got the string "six"\)$/],
      // issue 22: bounded, so uMax: 1e9 cannot run a billion network calls per step
      [{ ...FAST, samplerOptions: { uMax: 1e9 } }, /^options\.samplerOptions\.uMax must be an integer from 1 to 100 \(got the number 1000000000\)$/],
      [{ ...FAST, samplerOptions: { uMin: 2.5 } }, /^options\.samplerOptions\.uMin must be an integer from 1 to 100 \(got the number 2\.5\)$/],
      [{ ...FAST, samplerOptions: { jump: 1e9 } }, /^options\.samplerOptions\.jump must be an integer from 0 to 10000 \(the largest T\) \(got the number 1000000000\)$/],
      [{ ...FAST, samplerOptions: { re: -1 } }, /^options\.samplerOptions\.re must be an integer from 0 to 10000 /],
      [{ ...FAST, noise: {} }, /^options\.noise must be an object with a normal\(shape\) method/],
    ];
    for (const [opts, re] of cases) await rejection(inpaint(photoPath, maskPath, opts as any), 'BAD_OPTION', re);
  });

  it('--resampling is bounded like the library option (issue 22)', () => {
    for (const [arg, re] of [
      ['1000000000,3,5,5', /^strdiffusion: --resampling: uMax must be an integer from 1 to 100 \(got "1000000000,3,5,5"\)$/],
      ['6,3,5,99999', /^strdiffusion: --resampling: re must be an integer from 0 to 10000 \(the largest T\) \(got "6,3,5,99999"\)$/],
    ] as const) {
      const r = cli('inpaint', '--image', photoPath, '--mask', maskPath, '--out', join(dir, 'bounded.png'), '--checkpoints', NETS, '--T', '10', '--size', '32', '--resampling', arg);
      expect(r.status, r.err).toBe(1);
      expect(r.err).toMatch(re);
    }
  });

  it('undefined options are "not given"', async () => {
    const r = await inpaint(photoPath, maskPath, { ...FAST, sampler: undefined, stepRule: undefined, onProgress: undefined });
    expect(r.image.width).toBe(W);
  });
});

describe('11d: the output format follows the extension', () => {
  it('writeImage refuses an extension it cannot encode instead of writing PNG bytes under it', async () => {
    const gif = join(dir, 'x.gif');
    await rejection(writeImage(gif, rgb(8, 8)), 'BAD_OPTION', /^cannot write \.gif files: .*x\.gif \(use \.png, \.jpg, \.jpeg, \.webp, \.tif or \.tiff\)$/);
    expect(existsSync(gif)).toBe(false);
  });

  it('png, jpg, jpeg, webp, tif and tiff are written in their own format', async () => {
    const want: Record<string, string> = { png: 'png', jpg: 'jpeg', jpeg: 'jpeg', webp: 'webp', tif: 'tiff', tiff: 'tiff', PNG: 'png' };
    for (const [ext, format] of Object.entries(want)) {
      const p = join(dir, `fmt.${ext}`);
      await writeImage(p, rgb(8, 8));
      expect((await sharp(p).metadata()).format, ext).toBe(format);
    }
  });

  it('the CLI refuses --out x.gif before loading the model or computing', () => {
    const out = join(dir, 'never.gif');
    // an unusable checkpoint folder: the extension is checked first
    const r = cli('inpaint', '--image', photoPath, '--mask', maskPath, '--out', out, '--checkpoints', dir, '-q');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^strdiffusion: --out: cannot write \.gif files: .*never\.gif \(use \.png, \.jpg, \.jpeg, \.webp, \.tif or \.tiff\)$/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('11e: animated inputs are refused, not cut to their first frame', () => {
  let gif: string, webp: string;
  beforeAll(async () => {
    const frames = 3;
    const data = Buffer.alloc(W * H * frames * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 255;
    const raw = { width: W, height: H * frames, channels: 3 as const, pageHeight: H };
    gif = join(dir, 'anim.gif');
    webp = join(dir, 'anim.webp');
    await sharp(data, { raw }).gif().toFile(gif);
    await sharp(data, { raw }).webp({ lossless: true }).toFile(webp);
    expect((await sharp(gif).metadata()).pages).toBe(3);
    expect((await sharp(webp).metadata()).pages).toBe(3);
  });

  it('readImage and inpaint() refuse multi-frame GIF and WebP', async () => {
    await rejection(readImage(gif, 'image'), 'BAD_INPUT', /^image .*anim\.gif has 3 frames \(an animation or a multi-page file\): only single-frame images can be inpainted$/);
    await rejection(readImage(webp, 'mask'), 'BAD_INPUT', /^mask .*anim\.webp has 3 frames/);
    await rejection(inpaint(webp, maskPath, FAST), 'BAD_INPUT', /^image .*anim\.webp has 3 frames/);
  });

  it('a single-frame GIF still reads', async () => {
    const one = join(dir, 'one.gif');
    await sharp(Buffer.from(rgb(W, H).data), { raw: { width: W, height: H, channels: 3 } }).gif().toFile(one);
    const img = await readImage(one);
    expect([img.width, img.height]).toEqual([W, H]);
  });

  it('the CLI refuses an animated mask with one line and writes nothing', () => {
    const out = join(dir, 'never-anim.png');
    const r = cli('inpaint', '--image', photoPath, '--mask', gif, '--out', out, '--checkpoints', NETS, '--T', '10', '--size', '32', '-q');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^strdiffusion: mask .*anim\.gif has 3 frames \(an animation or a multi-page file\): only single-frame images can be inpainted$/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('11f: the T errors of `inpaint` name its option --T (--steps is the sampling steps)', () => {
  let unknownT: string, withT: string;
  beforeAll(() => {
    unknownT = join(dir, 'nets-no-T');
    withT = join(dir, 'nets-T20');
    for (const d of [unknownT, withT]) {
      mkdirSync(d);
      for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(NETS, `${k}.pth`), join(d, `${k}.pth`));
    }
    writeFileSync(join(withT, 'model.json'), JSON.stringify({ T: 20 }));
  });

  it('a --T that contradicts model.json says --T 20', () => {
    const r = cli('inpaint', '--image', photoPath, '--mask', maskPath, '--out', join(dir, 'never-T.png'), '--checkpoints', withT, '--T', '10', '--size', '32', '-q');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^strdiffusion: T = 10 does not match the checkpoint's schedule \(model.json says T = 20\); .*use --T 20$/);
    expect(r.err).not.toContain('--steps');
  });

  it('an unknown T says pass --T', () => {
    const r = cli('inpaint', '--image', photoPath, '--mask', maskPath, '--out', join(dir, 'never-T2.png'), '--checkpoints', unknownT, '--size', '32', '-q');
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^strdiffusion: the diffusion length T of .* is unknown: pass --T /);
  });

  it('convert keeps --T (its own option)', () => {
    const r = cli('convert', '--checkpoints', unknownT, '--out', join(dir, 'never-conv'));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/pass --T /);
  });
});

describe('every --seed is a non-negative safe integer', () => {
  it('train, eval and masks refuse --seed -1 and NaN with one line', () => {
    const empty = mkdtempSync(join(tmpdir(), 'seed-'));
    for (const [cmd, extra] of [['train', ['structure', '--data', empty, '--out', join(empty, 'run')]], ['eval', ['--images', empty, '--out', join(empty, 'eval')]], ['masks', ['--out', join(empty, 'masks'), '--count', '1']]] as const) {
      for (const bad of ['-1', 'NaN']) {
        const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/strdiffusion.js'), cmd, ...extra, '--seed', bad], { encoding: 'utf8' });
        expect(r.status, `${cmd} --seed ${bad}`).not.toBe(0);
        expect(r.stderr.trim(), `${cmd} --seed ${bad}`).toMatch(/--seed must be a non-negative safe integer/);
      }
    }
  });
});

describe('export: graph sizes are bounded', () => {
  it('--size above 4096 on a side and --batch above 256 are refused with one line', () => {
    const out = mkdtempSync(join(tmpdir(), 'export-bounds-'));
    for (const [args, re] of [[['--size', '5000x64'], /--size must be at most 4096 on each side/], [['--batch', '1000'], /--batch must be at most 256/]] as const) {
      const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/strdiffusion.js'), 'export', '--checkpoints', fixture('parity/nets'), '--out', join(out, 'x'), ...args], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim()).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
