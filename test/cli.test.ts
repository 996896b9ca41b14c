import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeImage, type RasterImage } from '../src/image/io.js';
import { fixture } from './fixtures.js';

const ROOT = resolve(__dirname, '..');
const NETS = fixture('parity/nets');
const dir = mkdtempSync(join(tmpdir(), 'cli-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr.trim() };
}

const FAST = ['--checkpoints', NETS, '--T', '10', '--size', '32', '-q'];

function image(W: number, H: number, f: (x: number, y: number, c: number) => number, C: 1 | 3 = 3): RasterImage {
  const data = new Uint8Array(W * H * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) data[(y * W + x) * C + c] = f(x, y, c);
  return { width: W, height: H, channels: C, bitDepth: 8, data };
}

beforeAll(async () => {
  await writeImage(join(dir, 'photo.png'), image(120, 80, (x, y, c) => (x * 2 + y * (c + 1)) & 255));
  await writeImage(join(dir, 'mask.png'), image(120, 80, (x, y) => ((x - 60) ** 2 + (y - 40) ** 2 < 150 ? 255 : 0), 1));
  mkdirSync(join(dir, 'in'));
  mkdirSync(join(dir, 'masks'));
  for (const n of ['a', 'b', 'c']) await writeImage(join(dir, 'in', `${n}.png`), image(64, 48, (x, y, c) => (x * 3 + y + c * 40) & 255));
  for (const n of ['a', 'b']) await writeImage(join(dir, 'masks', `${n}.png`), image(64, 48, (x, y) => (Math.abs(x - 32) < 6 && Math.abs(y - 20) < 8 ? 255 : 0), 1));
});

describe('strdiffusion inpaint (CLI)', () => {
  it('same seed -> identical files; the output has the input size', () => {
    const a = cli('inpaint', '--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--out', join(dir, 'o1.png'), '--seed', '4', ...FAST);
    // `--executor onnx` (the only executor, and the default) still works for scripts that pass it
    const b = cli('inpaint', '--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--out', join(dir, 'o2.png'), '--seed', '4', '--executor', 'onnx', ...FAST);
    expect(a.status, a.err).toBe(0);
    expect(b.status, b.err).toBe(0);
    expect(a.out).toMatch(/wrote .*o1\.png \(120x80/);
    expect(readFileSync(join(dir, 'o1.png')).equals(readFileSync(join(dir, 'o2.png')))).toBe(true);
  });

  it('batch form pairs by name and reports images without a mask', () => {
    const r = cli('inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'masks'), '--out', join(dir, 'outdir'), ...FAST);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toContain('skipped c.png: no mask named like it');
    expect(readdirSync(join(dir, 'outdir')).sort()).toEqual(['a.png', 'b.png']);
  });

  it('batch: a mask kept among the images is not inpainted as an image (one --mask file, or a_mask.png beside a.png)', () => {
    const mixed = join(dir, 'mixed');
    mkdirSync(mixed);
    copyFileSync(join(dir, 'in', 'a.png'), join(mixed, 'a.png'));
    copyFileSync(join(dir, 'masks', 'a.png'), join(mixed, 'a_mask.png'));
    const one = cli('inpaint', '--image', mixed, '--mask', join(mixed, 'a_mask.png'), '--out', join(dir, 'mixed-one'), ...FAST);
    expect(one.status, one.err).toBe(0);
    expect(readdirSync(join(dir, 'mixed-one'))).toEqual(['a.png']);
    const byName = cli('inpaint', '--image', mixed, '--mask', mixed, '--out', join(dir, 'mixed-named'), ...FAST);
    expect(byName.status, byName.err).toBe(0);
    expect(readdirSync(join(dir, 'mixed-named'))).toEqual(['a.png']);
  });

  it('bad input: one clear line, exit code 1, nothing written', () => {
    const cases: [string[], RegExp][] = [
      [['--image', join(dir, 'nope.png'), '--mask', join(dir, 'mask.png')], /^strdiffusion: image not found: /],
      [['--image', join(dir, 'photo.png'), '--mask', join(dir, 'in', 'a.png')], /^strdiffusion: mask is 64x48 but the image is 120x80 \(use --resize-mask/],
      [['--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--sampler', 'fast'], /^strdiffusion: --sampler must be one of/],
      [['--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--executor', 'tfjs'], /^strdiffusion: --executor must be onnx \(got "tfjs"; the TensorFlow.js executor was removed\)$/],
      [['--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--checkpoints', join(dir, 'in')], /^strdiffusion: checkpoint folder .* has no structure network/],
    ];
    for (const [args, msg] of cases) {
      const out = join(dir, 'never.png');
      const r = cli('inpaint', ...args, '--out', out, '--T', '10', '--size', '32', '-q');
      expect(r.status).toBe(1);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('a model without a discriminator samples with the variants that need none, and refuses the others by name', () => {
    const two = join(dir, 'no-disc');
    mkdirSync(two);
    for (const k of ['structure', 'texture']) copyFileSync(join(NETS, `${k}.pth`), join(two, `${k}.pth`));
    const base = ['inpaint', '--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--checkpoints', two, '--T', '10', '--size', '32', '-q'];
    for (const sampler of ['no-resampling', 'split']) {
      const r = cli(...base, '--out', join(dir, `nd-${sampler}.png`), '--sampler', sampler);
      expect(r.status, `${sampler}: ${r.err}`).toBe(0);
      expect(existsSync(join(dir, `nd-${sampler}.png`))).toBe(true);
    }
    const r = cli(...base, '--out', join(dir, 'nd-official.png'), '--sampler', 'official');
    expect(r.status).toBe(1);
    expect(r.err).toBe('strdiffusion: sampler official needs a discriminator network, and this model has none: use no-resampling, no-discriminator, one-call or split');
    expect(existsSync(join(dir, 'nd-official.png'))).toBe(false);
  });

  it('--save-trajectory writes states and a strip', () => {
    const t = join(dir, 'traj');
    const r = cli('inpaint', '--image', join(dir, 'photo.png'), '--mask', join(dir, 'mask.png'), '--out', join(dir, 'o3.png'), '--save-trajectory', t, '--trajectory-every', '5', ...FAST);
    expect(r.status, r.err).toBe(0);
    const files = readdirSync(t);
    expect(files).toContain('strip.png');
    expect(files.filter((f) => f.startsWith('texture_t')).length).toBeGreaterThanOrEqual(3);
    expect(files.filter((f) => f.startsWith('structure_t')).length).toBeGreaterThanOrEqual(3);
  });
});

describe('--executor (CLI)', () => {
  it('serve, eval and train refuse an unknown executor with one line naming the allowed values', () => {
    const runs = [
      cli('serve', '--port', '0', '--executor', 'tfjs'),
      cli('eval', '--images', join(dir, 'in'), '--out', join(dir, 'never-eval'), '--executor', 'tfjs'),
      cli('train', 'structure', '--data', join(dir, 'in'), '--out', join(dir, 'never-train'), '--executor', 'tfjs'),
    ];
    for (const r of runs) {
      expect(r.status).toBe(1);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^strdiffusion: --executor must be onnx \(got "tfjs"; the TensorFlow.js executor was removed\)$/);
    }
    expect(existsSync(join(dir, 'never-eval'))).toBe(false);
    expect(existsSync(join(dir, 'never-train'))).toBe(false);
  });
  it('train refuses an unknown --prediction or --fill, and inpaint an unknown --structure, with one line', () => {
    const cases: [string[], RegExp][] = [
      [['train', 'texture', '--data', join(dir, 'in'), '--out', join(dir, 'never-p'), '--prediction', 'v'], /^strdiffusion: --prediction must be one of eps, x0 \(got "v"\)$/],
      [['train', 'texture', '--data', join(dir, 'in'), '--out', join(dir, 'never-f'), '--fill', 'blur'], /^strdiffusion: --fill must be one of zero, mean, telea, ns, bridge \(got "blur"\)$/],
      [['inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'in'), '--out', join(dir, 'never-s'), '--structure', 'edges'], /^strdiffusion: --structure must be one of network, fill \(got "edges"\)$/],
    ];
    for (const [args, re] of cases) {
      const r = cli(...args);
      expect(r.status).toBe(1);
      expect(r.err).toMatch(re);
    }
    for (const d of ['never-p', 'never-f', 'never-s']) expect(existsSync(join(dir, d))).toBe(false);
  });
});

describe('strdiffusion convert (CLI)', () => {
  it('writes .safetensors + model.json that load to the same weights; refuses to overwrite', async () => {
    const { loadModel } = await import('../src/model/checkpoints.js');
    const out = join(dir, 'converted');
    const r = cli('convert', '--checkpoints', NETS, '--out', out, '--T', '100', '--size', '64');
    expect(r.status, r.err).toBe(0);
    expect(r.out).toMatch(/model\.json with T = 100/);
    const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(meta).toMatchObject({ T: 100, size: 64 });
    const a = loadModel([NETS], { T: 100 });
    const b = loadModel([out]);
    expect(b.T).toBe(100);
    for (const k of ['structure', 'texture', 'discriminator'] as const) {
      expect(b.files[k].endsWith('.safetensors')).toBe(true);
      expect([...b.weights[k].keys()]).toEqual([...a.weights[k].keys()]);
      for (const [key, t] of a.weights[k]) expect(b.weights[k].get(key)!.data, `${k} ${key}`).toEqual(t.data);
    }
    const again = cli('convert', '--checkpoints', NETS, '--out', out, '--T', '100');
    expect(again.status).toBe(1);
    expect(again.err).toMatch(/exists; pass --force to overwrite/);
    // a plain folder of .pth files without model.json: its T is unknown
    const plain = join(dir, 'plain-pth');
    mkdirSync(plain);
    for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(NETS, `${k}.pth`), join(plain, `${k}.pth`));
    const noT = cli('convert', '--checkpoints', plain, '--out', join(dir, 'converted2'));
    expect(noT.status).toBe(1);
    expect(noT.err).toMatch(/T of .* is unknown/);
  });
});
