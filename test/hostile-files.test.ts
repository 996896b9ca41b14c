/**
 * Issue #22 ("Hostile round two"), the file items: special files given as outputs (2), pixel caps
 * where training and `eval --masks` decode (3), torn log lines after a full disk (7), trajectory
 * files over the result or an input (8), and the minor ones: a damaged newest checkpoint (a),
 * repeated metrics steps after a resume (b), skipped training images reported (c), batch pairing
 * reports (d).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { appendLogLine, latestCheckpoint, trainRun, type RunConfig } from '../src/train/run.js';
import { ImageTooLargeError, writeImage, writeImageAtomic, type RasterImage } from '../src/image/io.js';
import { checkOutputFile, checkReplaceable, specialFileKind, writeFileAtomic } from '../src/util/files.js';
import { decodeRaw } from '../src/data/images.js';
import { MaskFolder } from '../src/data/masks.js';
import { ImageFolderLoader } from '../src/train/data.js';
import { planPairs } from '../src/eval/pairs.js';
import { inpaint } from '../src/index.js';
import { cli, FAST, hole, image, NETS, photo, ROOT, tinyRun } from './file-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'hostile-files-'));
const data = join(root, 'images');
const cfg = (over: Partial<RunConfig> = {}): RunConfig => tinyRun(data, over);

function fifo(path: string): string {
  execFileSync('mkfifo', [path]);
  return path;
}

/** A single-colour 8000x7000 PNG: 56 megapixels (over the default 50) in about 55 KB. */
async function hugePng(path: string): Promise<string> {
  await sharp({ create: { width: 8000, height: 7000, channels: 3, background: { r: 0, g: 0, b: 0 } } }).toColourspace('b-w').png().toFile(path);
  return path;
}

const isFifo = (p: string) => lstatSync(p).isFIFO();
const linksToDevice = (p: string) => lstatSync(p).isSymbolicLink() && statSync(p).isCharacterDevice();

beforeAll(async () => {
  mkdirSync(data, { recursive: true });
  for (let k = 0; k < 3; k++) await writeImage(join(data, `img${k}.png`), image(48 + 8 * k, 40 + 4 * k, (x, y, c) => (x * (c + 1) * 5 + y * 7 * k) & 255));
  await writeImage(join(root, 'photo.png'), photo());
  await writeImage(join(root, 'mask.png'), hole());
});

describe('item 2: an output that exists and is not a regular file is refused, never replaced', () => {
  it('the pure check names what the path is (/dev/null only through the check, never a writer)', () => {
    expect(specialFileKind('/dev/null')).toBe('a character device');
    expect(() => checkOutputFile('/dev/null')).toThrow(/^--out \/dev\/null is a character device \(outputs replace only regular files\)$/);
    expect(() => checkReplaceable('/dev/null')).toThrow(/^cannot write \/dev\/null: it is a character device/);
    const d = mkdtempSync(join(tmpdir(), 'special-'));
    fifo(join(d, 'pipe.png'));
    symlinkSync('/dev/null', join(d, 'null.png'));
    symlinkSync(join(d, 'pipe.png'), join(d, 'to-pipe.png'));
    mkdirSync(join(d, 'dir.png'));
    writeFileSync(join(d, 'plain.png'), 'x');
    symlinkSync(join(d, 'plain.png'), join(d, 'to-plain.png'));
    symlinkSync(join(d, 'nowhere.png'), join(d, 'dangling.png'));
    expect(specialFileKind(join(d, 'pipe.png'))).toBe('a FIFO');
    expect(specialFileKind(join(d, 'null.png'))).toBe('a symlink to a character device');
    expect(specialFileKind(join(d, 'to-pipe.png'))).toBe('a symlink to a FIFO');
    expect(specialFileKind(join(d, 'dir.png'))).toBe('a folder');
    // ordinary destinations: a regular file, a link to one, a dangling link, nothing
    for (const f of ['plain.png', 'to-plain.png', 'dangling.png', 'absent.png']) expect(specialFileKind(join(d, f)), f).toBeNull();
    expect(() => checkOutputFile(join(d, 'null.png'))).toThrow(/null\.png is a symlink to a character device/);
  });

  it('the atomic writers (files, images, the library result.save()) refuse a FIFO and a link to /dev/null, leaving them as they were', async () => {
    const d = mkdtempSync(join(tmpdir(), 'special-'));
    const p = fifo(join(d, 'out.png'));
    const l = join(d, 'null.png');
    symlinkSync('/dev/null', l);
    const img = photo();
    await expect(writeImageAtomic(p, img)).rejects.toThrow(/out\.png: it is a FIFO/);
    await expect(writeImageAtomic(l, img)).rejects.toThrow(/null\.png: it is a symlink to a character device/);
    expect(() => writeFileAtomic(p, 'text')).toThrow(/it is a FIFO/);
    expect(() => writeFileAtomic(l, 'text')).toThrow(/it is a symlink to a character device/);
    const res = await inpaint(join(root, 'photo.png'), join(root, 'mask.png'), { checkpoints: NETS, T: 10, size: 32, seed: 1 });
    await expect(res.save(l)).rejects.toThrow(/it is a symlink to a character device/);
    await expect(res.save(p)).rejects.toThrow(/it is a FIFO/);
    expect(isFifo(p)).toBe(true);
    expect(linksToDevice(l)).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['null.png', 'out.png']);
  });

  it('every writing command refuses before any work, in one line naming what the file is', () => {
    const d = mkdtempSync(join(tmpdir(), 'special-cli-'));
    const nullLink = join(d, 'null.png');
    symlinkSync('/dev/null', nullLink);
    const pipe = fifo(join(d, 'pipe.png'));
    const dirs = Object.fromEntries(['masks', 'export', 'convert', 'eval', 'batch'].map((k) => [k, join(d, k)]));
    for (const x of Object.values(dirs)) mkdirSync(x);
    fifo(join(dirs.masks!, 'mask_00000.png'));
    symlinkSync('/dev/null', join(dirs.export!, 'onnx.json'));
    fifo(join(dirs.convert!, 'model.json'));
    fifo(join(dirs.eval!, 'report.md'));
    const images = join(d, 'in');
    const masks = join(d, 'in-masks');
    mkdirSync(images);
    mkdirSync(masks);
    cpSync(join(root, 'photo.png'), join(images, 'a.png'));
    cpSync(join(root, 'mask.png'), join(masks, 'a.png'));
    symlinkSync('/dev/null', join(dirs.batch!, 'a.png'));
    const cases: [string[], RegExp][] = [
      [['inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), ...FAST, '--out', pipe], /^strdiffusion: --out .*pipe\.png is a FIFO \(outputs replace only regular files\)$/],
      [['inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), ...FAST, '--out', nullLink], /^strdiffusion: --out .*null\.png is a symlink to a character device/],
      [['inpaint', '--image', images, '--mask', masks, ...FAST, '--out', dirs.batch!], /^strdiffusion: cannot write .*batch\/a\.png: it is a symlink to a character device/],
      [['masks', '--out', dirs.masks!, '--count', '2', '--size', '32'], /^strdiffusion: cannot write .*mask_00000\.png: it is a FIFO/],
      [['export', '--checkpoints', NETS, '--T', '20', '--size', '32', '--nets', 'discriminator', '--out', dirs.export!], /^strdiffusion: cannot write .*onnx\.json: it is a symlink to a character device/],
      [['convert', '--checkpoints', NETS, '--T', '20', '--out', dirs.convert!], /^strdiffusion: cannot write .*model\.json: it is a FIFO/],
      [['eval', '--images', data, '--no-model', '--count', '1', '--size', '32', '-q', '--out', dirs.eval!], /^strdiffusion: cannot write .*report\.md: it is a FIFO/],
    ];
    for (const [args, msg] of cases) {
      const r = cli(...args);
      expect(r.status, `${args[0]}: ${r.err}`).toBe(1);
      expect(r.err.split('\n'), args[0]).toHaveLength(1);
      expect(r.err, args[0]).toMatch(msg);
    }
    // nothing was replaced, and no other file appeared
    expect(isFifo(pipe) && linksToDevice(nullLink) && linksToDevice(join(dirs.batch!, 'a.png'))).toBe(true);
    expect(readdirSync(dirs.masks!)).toEqual(['mask_00000.png']);
    expect(readdirSync(dirs.export!)).toEqual(['onnx.json']);
    expect(readdirSync(dirs.convert!)).toEqual(['model.json']);
    expect(readdirSync(dirs.eval!)).toEqual(['report.md']);
  });

  it('train refuses a run folder whose log is a FIFO or a link to a device, before reading or writing it', async () => {
    const out = join(root, 'special-run');
    mkdirSync(out);
    fifo(join(out, 'metrics.jsonl'));
    await expect(trainRun(cfg(), { out, steps: 1 })).rejects.toThrow(/cannot write .*metrics\.jsonl: it is a FIFO/);
    const out2 = join(root, 'special-run2');
    mkdirSync(out2);
    symlinkSync('/dev/null', join(out2, 'config.json'));
    await expect(trainRun(cfg(), { out: out2, steps: 1 })).rejects.toThrow(/cannot write .*config\.json: it is a symlink to a character device/);
    expect(readdirSync(out)).toEqual(['metrics.jsonl']);
    expect(readdirSync(out2)).toEqual(['config.json']);
  });
});

describe('item 3: images over the megapixel limit are refused from their header where training and eval --masks decode', () => {
  const big = join(root, 'big');
  let huge: string;
  beforeAll(async () => {
    mkdirSync(big);
    huge = await hugePng(join(big, 'huge.png'));
    expect(statSync(huge).size).toBeLessThan(200_000);
  });

  it('decodeRaw and the mask folder refuse a 56-megapixel PNG (default limit 50) without decoding it', async () => {
    const err = await decodeRaw(huge).catch((e) => e);
    expect(err).toBeInstanceOf(ImageTooLargeError);
    expect(err.message).toMatch(/huge\.png is 8000x7000 \(56\.0 megapixels\), over the limit of 50 megapixels/);
    await expect(decodeRaw(join(data, 'img0.png'), { maxMegapixels: 0.001 })).rejects.toThrow(/img0\.png is 48x40 .* over the limit of 0\.001 megapixels/);
    const mf = await MaskFolder.open(big, { size: 16 });
    await expect(mf.holes(0)).rejects.toThrow(/^mask .*huge\.png is 8000x7000/);
  });

  it('the training loader skips an oversized image, counted, and reports it as such', async () => {
    const dir = join(root, 'data-huge');
    cpSync(data, dir, { recursive: true });
    cpSync(huge, join(dir, 'huge.png'));
    const skipped: [string, Error][] = [];
    const l = await ImageFolderLoader.open({ root: dir, size: 32, batchSize: 4, structureWorkers: 0, onSkip: (f, e) => skipped.push([f, e]) });
    const b = await l.next();
    await l.close();
    expect(b.files.every((f) => !f.endsWith('huge.png'))).toBe(true);
    expect(l.skipped).toBe(1);
    expect(skipped[0]![0]).toMatch(/huge\.png$/);
    expect(skipped[0]![1]).toBeInstanceOf(ImageTooLargeError);
  });

  it('trainRun: skipped images are reported when met and counted at the end ("skipped N image(s) over M megapixels: first ...")', async () => {
    const dir = join(root, 'data-limit');
    cpSync(data, dir, { recursive: true });
    // over a small limit (cheap): 100x100 = 0.01 MP > 0.005 MP, the others are 48x40..64x48 (< 0.0031 MP)
    await writeImage(join(dir, 'large.png'), image(100, 100, (x, y) => (x ^ y) & 255));
    writeFileSync(join(dir, 'broken.jpg'), 'not a jpeg');
    const logs: string[] = [];
    const r = await trainRun(cfg({ data: dir }), { out: join(root, 'run-limit'), steps: 2, diagEvery: 0, maxMegapixels: 0.005, onLog: (m) => logs.push(m) });
    expect(r.iteration).toBe(2);
    expect(logs.join('\n')).toMatch(/warning: skipped image .*large\.png: 100x100 is over the limit of 0\.005 megapixels/);
    expect(logs).toContainEqual(expect.stringMatching(/^skipped 1 image\(s\) over 0\.005 megapixels: first .*large\.png$/));
    expect(logs).toContainEqual(expect.stringMatching(/^warning: skipped unreadable image .*broken\.jpg: /));
    expect(logs).toContainEqual(expect.stringMatching(/^skipped 1 unreadable image\(s\): first .*broken\.jpg \(/));
    // the command line takes the limit as --max-megapixels, checked
    const bad = cli('train', 'structure', '--data', dir, '--max-megapixels', '0', '--out', join(root, 'never-run'));
    expect(bad.status).toBe(1);
    expect(bad.err).toMatch(/^strdiffusion: --max-megapixels must be a positive number of megapixels \(got "0"\)$/);
  });

  it('eval --masks: an oversized mask is skipped with a warning, by the default limit and by the limit given', async () => {
    const masks = join(root, 'eval-masks');
    mkdirSync(masks);
    cpSync(huge, join(masks, 'huge.png'));
    await writeImage(join(masks, 'ok.png'), image(64, 64, (x, y) => (x < 24 && y < 24 ? 255 : 0), 1));
    const warned: string[] = [];
    const plan = await planPairs({ images: data, masks, ratios: [[0.1, 0.2]], count: 1, seed: 0, size: 32, warn: (m) => warned.push(m) });
    expect(plan.pairs).toHaveLength(1);
    expect(plan.maskStats!.unreadable).toBe(1);
    expect(warned).toContainEqual(expect.stringMatching(/^skipped mask .*huge\.png: 8000x7000 is over the --max-megapixels limit of 50$/));
    warned.length = 0;
    await expect(planPairs({ images: data, masks, ratios: [[0.1, 0.2]], count: 1, seed: 0, size: 32, maxMegapixels: 0.001, warn: (m) => warned.push(m) })).rejects.toThrow(/no readable masks/);
    expect(warned).toContainEqual(expect.stringMatching(/ok\.png: 64x64 is over the --max-megapixels limit of 0\.001$/));
    const r = cli('eval', '--images', data, '--masks', masks, '--mask-ratios', '0.1-0.2', '--no-model', '--baselines', 'mean', '--count', '1', '--size', '32', '-q', '--out', join(root, 'eval-out'));
    expect(r.status, r.err).toBe(0);
    expect(r.err).toMatch(/skipped mask .*huge\.png: 8000x7000 is over the --max-megapixels limit of 50/);
  });
});

describe('run logs and checkpoints after a full disk or a crash', () => {
  // one run (ckpt-2, ckpt-4; metrics steps 1-4; diagnostics at 2 and 4) copied into each test's folder
  const base = join(root, 'base-run');
  const copyRun = (name: string) => {
    const out = join(root, name);
    cpSync(base, out, { recursive: true });
    return out;
  };
  const steps = (out: string, file = 'metrics.jsonl') => readFileSync(join(out, file), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step as number);
  beforeAll(async () => {
    await trainRun(cfg(), { out: base, steps: 4, diagEvery: 2 });
  });

  it('item 7: a torn last line in metrics.jsonl or diagnostics.jsonl is ignored and reported; --resume works', async () => {
    const out = copyRun('torn');
    appendFileSync(join(out, 'metrics.jsonl'), '{"step":5,"loss":0.12');
    appendFileSync(join(out, 'diagnostics.jsonl'), '{"step":6,"levels":[{"t":1');
    const logs: string[] = [];
    const r = await trainRun(cfg(), { out, steps: 2, resume: true, diagEvery: 2, onLog: (m) => logs.push(m) });
    expect(r.iteration).toBe(6);
    expect(logs).toContain('metrics.jsonl: ignored a torn last line');
    expect(logs).toContain('diagnostics.jsonl: ignored a torn last line');
    expect(steps(out)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps(out, 'diagnostics.jsonl')).toEqual([2, 4, 6]);
    // the command line says it too
    appendFileSync(join(out, 'metrics.jsonl'), '{"step":7,"lo');
    const r2 = cli('train', 'structure', '--data', data, '--config', 'fixture', '--size', '32', '--batch', '2', '--T', '20', '--save-every', '2',
      '--iterations', '1', '--diag-every', '0', '--threads', '1', '--resume', '--out', out, '-q');
    expect(r2.status, r2.err).toBe(0);
    expect(r2.err).toContain('metrics.jsonl: ignored a torn last line');
    expect(steps(out)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('item 7: a line that does not parse elsewhere is an error naming the file and line', async () => {
    const out = copyRun('corrupt');
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n');
    lines[1] = '{"step":2,"lo';
    writeFileSync(join(out, 'metrics.jsonl'), lines.join('\n'));
    await expect(trainRun(cfg(), { out, steps: 1, resume: true, diagEvery: 0 })).rejects.toThrow(/metrics\.jsonl: line 2 is not valid JSON \(.*\); fix or delete that line/);
    writeFileSync(join(out, 'config.json'), '{"run": ');
    await expect(trainRun(cfg(), { out, steps: 1, resume: true, diagEvery: 0 })).rejects.toThrow(/config\.json is not valid JSON/);
  });

  it('item 7: a failed append (full disk) is cut back off, with one line naming the file', () => {
    const mnt = join(root, 'full');
    mkdirSync(mnt);
    try {
      // two pages: the log fills most of one, a filler the other
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8k', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      console.warn('cannot mount a tmpfs here: full-disk append test not run');
      return;
    }
    try {
      const log = join(mnt, 'metrics.jsonl');
      writeFileSync(log, 'x'.repeat(3999) + '\n');
      try {
        writeFileSync(join(mnt, 'filler'), Buffer.alloc(8192));
      } catch {
        /* filled up to the last byte */
      }
      expect(() => appendLogLine(log, JSON.stringify({ step: 5, loss: 0.1, pad: 'y'.repeat(300) }))).toThrow(/^disk full while writing .*metrics\.jsonl$/);
      expect(statSync(log).size).toBe(4000);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('item a: a truncated newest checkpoint is passed over, with a warning, for the previous complete one', async () => {
    const out = copyRun('truncated');
    const w = join(out, 'ckpt-00000004', 'structure.safetensors');
    truncateSync(w, Math.floor(statSync(w).size / 2));
    const warned: string[] = [];
    expect(latestCheckpoint(out, (m) => warned.push(m))).toBe(join(out, 'ckpt-00000002'));
    expect(warned[0]).toMatch(/^warning: skipped the damaged checkpoint ckpt-00000004 \(.*structure\.safetensors: invalid safetensors file: .*truncated\?\)/);
    // still a run: a new one in this folder is refused (it would drop the run's logs)
    await expect(trainRun(cfg(), { out, steps: 1, diagEvery: 0 })).rejects.toThrow(/already holds a run: pass --resume/);
    const logs: string[] = [];
    const r = await trainRun(cfg(), { out, steps: 1, resume: true, diagEvery: 0, onLog: (m) => logs.push(m) });
    expect(r.iteration).toBe(3);
    expect(logs.join('\n')).toMatch(/skipped the damaged checkpoint ckpt-00000004/);
    expect(logs).toContain(`resumed ${out} at iteration 2`);
    expect(readFileSync(join(out, 'latest'), 'utf8').trim()).toBe('ckpt-00000003');
  });

  it('item b: steps after the resumed checkpoint are dropped from metrics.jsonl, not repeated', async () => {
    const out = copyRun('repeat');
    // a run killed at step 4 before its save: the newest checkpoint is ckpt-2, the log runs to 4
    execFileSync('rm', ['-r', join(out, 'ckpt-00000004')]);
    const logs: string[] = [];
    const r = await trainRun(cfg(), { out, steps: 3, resume: true, diagEvery: 0, onLog: (m) => logs.push(m) });
    expect(r.iteration).toBe(5);
    expect(steps(out)).toEqual([1, 2, 3, 4, 5]);
    expect(steps(out, 'diagnostics.jsonl')).toEqual([2]);
    expect(logs).toContain('metrics.jsonl: dropped 2 line(s) of steps after iteration 2 (not in the checkpoint; trained again)');
  });
});

describe('item 8: trajectory files never overwrite the result or an input', () => {
  it('--out T/strip.png with --save-trajectory T, or an input named like a trajectory file in T: refused before any work, naming both', async () => {
    const T = join(root, 'traj');
    mkdirSync(T);
    await writeImage(join(T, 'strip.png'), photo());
    await writeImage(join(T, 'texture_t0010.png'), hole());
    const before = readFileSync(join(T, 'strip.png'));
    const cases: [string[], RegExp][] = [
      [['--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), '--out', join(T, 'strip.png')], /^strdiffusion: --save-trajectory .*traj would write its strip\.png over --out .*traj\/strip\.png; choose another --save-trajectory folder$/],
      [['--image', join(T, 'strip.png'), '--mask', join(root, 'mask.png'), '--out', join(root, 'o-traj.png')], /^strdiffusion: --save-trajectory .*traj would write its strip\.png over --image .*traj\/strip\.png/],
      [['--image', join(root, 'photo.png'), '--mask', join(T, 'texture_t0010.png'), '--out', join(root, 'o-traj.png')], /^strdiffusion: --save-trajectory .*traj would write its texture_t0010\.png over --mask .*traj\/texture_t0010\.png/],
    ];
    for (const [args, msg] of cases) {
      const r = cli('inpaint', ...args, ...FAST, '--save-trajectory', T, '--trajectory-every', '5');
      expect(r.status, r.err).toBe(1);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
    }
    expect(readFileSync(join(T, 'strip.png')).equals(before)).toBe(true);
    expect(existsSync(join(root, 'o-traj.png'))).toBe(false);
    // a result elsewhere in that folder is fine
    const ok = cli('inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), '--out', join(T, 'result.png'), ...FAST, '--save-trajectory', join(root, 'traj2'));
    expect(ok.status, ok.err).toBe(0);
    expect(readdirSync(join(root, 'traj2'))).toContain('strip.png');
  });
});

describe('item d: batch pairing says what it skips and which mask it picks', () => {
  it('an image without a mask among images that serve as masks gets a "skipped" line; two masks named like an image get one line', () => {
    const mixed = join(root, 'mixed');
    mkdirSync(mixed);
    cpSync(join(root, 'photo.png'), join(mixed, 'a.png'));
    cpSync(join(root, 'mask.png'), join(mixed, 'a_mask.png'));
    cpSync(join(root, 'photo.png'), join(mixed, 'b.png'));
    const r = cli('inpaint', '--image', mixed, '--mask', mixed, '--out', join(root, 'mixed-out'), ...FAST);
    expect(r.status, r.err).toBe(0);
    expect(r.err).toContain(`skipped b.png: no mask named like it in ${mixed}`);
    expect(readdirSync(join(root, 'mixed-out'))).toEqual(['a.png']);

    const imgs = join(root, 'd-images');
    const masks = join(root, 'd-masks');
    mkdirSync(imgs);
    mkdirSync(masks);
    cpSync(join(root, 'photo.png'), join(imgs, 'a.png'));
    cpSync(join(root, 'mask.png'), join(masks, 'a.png'));
    cpSync(join(root, 'mask.png'), join(masks, 'a_mask.png'));
    const two = cli('inpaint', '--image', imgs, '--mask', masks, '--out', join(root, 'd-out'), ...FAST);
    expect(two.status, two.err).toBe(0);
    expect(two.err.split('\n')).toContain(`a.png has 2 masks named like it in ${masks} (a_mask.png, a.png): using a_mask.png`);
    expect(readdirSync(join(root, 'd-out'))).toEqual(['a.png']);
  });
});

afterAll(() => {
  spawnSync('umount', [join(root, 'full')], { stdio: 'ignore' });
});
