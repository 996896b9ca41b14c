/**
 * Issue #14, items 1-3: training checkpoints that survive a kill at any point, batch outputs that
 * never overwrite inputs, output destinations checked before any compute and no temp debris.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { trainRun, latestCheckpoint, type RunConfig } from '../src/train/run.js';
import { readSafetensors } from '../src/weights/safetensors.js';
import { writeImage, type RasterImage } from '../src/image/io.js';
import { cli, FAST, hole, image, NETS, photo, ROOT, tinyRun } from './file-helpers.js';

const root = mkdtempSync(join(tmpdir(), 'reliability-files-'));
const data = join(root, 'images');
const cfg = (over: Partial<RunConfig> = {}): RunConfig => tinyRun(data, over);

/** The pid of a process that has exited (a stale temp's owner). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid!;
}

/** Temp files/folders (ours are named `.NAME.tmp-PID...`, `NAME.tmp-PID`, `.NAME.old-PID`) anywhere under dir. */
function debris(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => /\.(tmp|old)-\d+/.test(f));
}

function tryMount(dir: string, opts: string): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const mounts: string[] = [];
beforeAll(async () => {
  mkdirSync(data, { recursive: true });
  for (let k = 0; k < 3; k++) {
    const W = 48 + 8 * k, H = 40 + 4 * k;
    const px = Buffer.alloc(W * H * 3);
    for (let i = 0; i < W * H; i++) for (let c = 0; c < 3; c++) px[i * 3 + c] = ((i % W) * (c + 1) * 5 + Math.floor(i / W) * 7 * k) & 255;
    await sharp(px, { raw: { width: W, height: H, channels: 3 } }).png().toFile(join(data, `img${k}.png`));
  }
  await writeImage(join(root, 'photo.png'), photo());
  await writeImage(join(root, 'mask.png'), hole());
});

afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
});

describe('training checkpoints: a kill at any point never blocks --resume', () => {
  // one run (ckpt-2, ckpt-4, latest = ckpt-4) copied into each test's folder
  const base = join(root, 'base-run');
  const copyRun = (name: string) => {
    const out = join(root, name);
    cpSync(base, out, { recursive: true });
    return out;
  };
  beforeAll(async () => {
    await trainRun(cfg(), { out: base, steps: 4 });
  });

  it('killed after ckpt-N was renamed into place but before `latest` moved: resume continues from ckpt-N and saves', async () => {
    const out = copyRun('crash-latest');
    // the crash state: a complete ckpt-4, `latest` still naming ckpt-2
    writeFileSync(join(out, 'latest'), 'ckpt-00000002');
    const r = await trainRun(cfg(), { out, steps: 2, resume: true });
    expect(r.iteration).toBe(6);
    expect(latestCheckpoint(out)).toBe(join(out, 'ckpt-00000006'));
    expect(readFileSync(join(out, 'latest'), 'utf8').trim()).toBe('ckpt-00000006');
    expect(debris(out)).toEqual([]);
  });

  it('a save into a leftover ckpt-N folder (incomplete, e.g. a full disk in an older version) replaces it', async () => {
    const out = copyRun('leftover');
    rmSync(join(out, 'ckpt-00000004'), { recursive: true });
    writeFileSync(join(out, 'latest'), 'ckpt-00000002');
    mkdirSync(join(out, 'ckpt-00000004'));
    writeFileSync(join(out, 'ckpt-00000004', 'structure.safetensors'), 'half a file');
    // not complete (no state.json): resume ignores it, then the save at 4 must replace it
    expect(latestCheckpoint(out)).toBe(join(out, 'ckpt-00000002'));
    const r = await trainRun(cfg(), { out, steps: 2, resume: true });
    expect(r.iteration).toBe(4);
    expect(JSON.parse(readFileSync(join(out, 'ckpt-00000004', 'state.json'), 'utf8')).iteration).toBe(4);
    expect(readSafetensors(join(out, 'ckpt-00000004', 'structure.safetensors')).size).toBeGreaterThan(30);
    expect(latestCheckpoint(out)).toBe(join(out, 'ckpt-00000004'));
    expect(debris(out)).toEqual([]);
  });

  it('killed during the very first save (no `latest` yet): the folder holds a run, --resume continues it', async () => {
    const out = copyRun('first-save');
    rmSync(join(out, 'ckpt-00000002'), { recursive: true });
    rmSync(join(out, 'latest'));
    await expect(trainRun(cfg(), { out, steps: 2 })).rejects.toThrow(/already holds a run: pass --resume/);
    const r = await trainRun(cfg(), { out, steps: 1, resume: true });
    expect(r.iteration).toBe(5);
    expect(readFileSync(join(out, 'latest'), 'utf8').trim()).toBe('ckpt-00000005');
  });

  it('stale temp folders of dead processes are removed at start (a checkpoint moved aside is restored); live ones are kept', async () => {
    const out = copyRun('stale');
    const dead = deadPid();
    // killed between "rename old ckpt-4 aside" and "rename new ckpt-4 in"
    renameSync(join(out, 'ckpt-00000004'), join(out, `.ckpt-00000004.old-${dead}`));
    mkdirSync(join(out, `.ckpt-00000004.tmp-${dead}`));
    writeFileSync(join(out, `.ckpt-00000004.tmp-${dead}`, 'optimizer.safetensors'), 'partial');
    mkdirSync(join(out, `.ckpt-00000008.tmp-${dead}`));
    writeFileSync(join(out, `latest.tmp-${dead}`), 'ckpt-0000');
    writeFileSync(join(out, `structure.safetensors.tmp-${dead}`), 'partial');
    writeFileSync(join(out, `config.json.tmp-${dead}`), '{');
    // a live process (the test runner's parent) may still be writing this one
    const live = join(out, `.ckpt-00000010.tmp-${process.ppid}`);
    mkdirSync(live);
    writeFileSync(join(out, 'latest'), 'ckpt-00000002');
    const r = await trainRun(cfg(), { out, steps: 1, resume: true });
    expect(r.iteration).toBe(5);
    expect(existsSync(live)).toBe(true);
    rmSync(live, { recursive: true });
    expect(debris(out)).toEqual([]);
    expect(readdirSync(out).filter((f) => f.startsWith('ckpt-')).sort()).toEqual(['ckpt-00000004', 'ckpt-00000005']);
  });

  it('train saves a checkpoint and exits 0 on SIGTERM', async () => {
    const out = join(root, 'sigterm');
    const child = spawn(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'train', 'structure', '--data', data, '--config', 'fixture', '--size', '32', '--batch', '2', '--T', '20',
      '--iterations', '100000', '--save-every', '100000', '--diag-every', '0', '--threads', '1', '--out', out, '-q'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += String(b)));
    let done = false;
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => ((done = true), res(code))));
    const metrics = join(out, 'metrics.jsonl');
    const t0 = Date.now();
    while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').trim().length > 0)) {
      if (done) throw new Error(`train exited before its first step: ${stderr}`);
      if (Date.now() - t0 > 60_000) {
        child.kill('SIGKILL');
        throw new Error(`training did not start within 60 s: ${stderr}`);
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    // while it runs, the folder is locked (issue 22): a second training into it is refused
    expect(JSON.parse(readFileSync(join(out, 'train.lock'), 'utf8')).pid).toBe(child.pid);
    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
    expect(stderr).toContain('checkpoint will be saved');
    expect(existsSync(join(out, 'train.lock'))).toBe(false);
    const last = latestCheckpoint(out);
    expect(last).not.toBeNull();
    const steps = readFileSync(metrics, 'utf8').trim().split('\n').length;
    expect(JSON.parse(readFileSync(join(last!, 'state.json'), 'utf8')).iteration).toBe(steps);
    expect(debris(out)).toEqual([]);
  });
});

describe('batch inpaint never overwrites its inputs', () => {
  it('a.jpg and a.png would both write a.png: refused before any work, naming both', async () => {
    const inDir = join(root, 'b1-in');
    const masks = join(root, 'b1-masks');
    mkdirSync(inDir);
    mkdirSync(masks);
    await writeImage(join(inDir, 'a.jpg'), photo());
    await writeImage(join(inDir, 'a.png'), photo());
    await writeImage(join(inDir, 'b.png'), photo());
    await writeImage(join(masks, 'a.png'), hole());
    await writeImage(join(masks, 'b.png'), hole());
    const out = join(root, 'b1-out');
    const r = cli('inpaint', '--image', inDir, '--mask', masks, '--out', out, ...FAST);
    expect(r.status).toBe(1);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^strdiffusion: a\.jpg and a\.png .*both .*a\.png/);
    expect(existsSync(out)).toBe(false);
  });

  it('--out equal to the image folder (or the mask folder) would overwrite an input: refused, inputs untouched', async () => {
    const inDir = join(root, 'b2-in');
    const masks = join(root, 'b2-masks');
    mkdirSync(inDir);
    mkdirSync(masks);
    await writeImage(join(inDir, 'a.png'), photo());
    await writeImage(join(inDir, 'b.jpg'), photo());
    await writeImage(join(masks, 'a.png'), hole());
    await writeImage(join(masks, 'b.png'), hole());
    const before = readdirSync(inDir).map((f) => readFileSync(join(inDir, f)));
    const beforeMasks = readdirSync(masks).map((f) => readFileSync(join(masks, f)));
    for (const [out, name] of [[inDir, 'image a.png'], [`${inDir}/`, 'image a.png'], [masks, 'mask ']] as const) {
      const r = cli('inpaint', '--image', inDir, '--mask', masks, '--out', out, ...FAST);
      expect(r.status, out).toBe(1);
      expect(r.err.split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^strdiffusion: --out .* would overwrite the input /);
      expect(r.err).toContain(name);
    }
    expect(readdirSync(inDir).map((f) => readFileSync(join(inDir, f)))).toEqual(before);
    expect(readdirSync(masks).map((f) => readFileSync(join(masks, f)))).toEqual(beforeMasks);
  });

  it('single image: --out equal to the mask is refused', () => {
    const r = cli('inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), '--out', join(root, 'mask.png'), ...FAST);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^strdiffusion: --out .*mask\.png would overwrite the input mask/);
  });
});

describe('output destinations are checked before computing; failed writes leave nothing behind', () => {
  it('inpaint: --out naming an existing folder, or under a file, fails at once with one line and no temp file', () => {
    const dirOut = join(root, 'existing-dir');
    mkdirSync(dirOut);
    const args = ['inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), ...FAST];
    let r = cli(...args, '--out', dirOut);
    expect(r.status).toBe(1);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^strdiffusion: --out .*existing-dir is a folder/);
    expect(debris(root)).toEqual([]);
    r = cli(...args, '--out', join(root, 'photo.png', 'x.png'));
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/^strdiffusion: --out .*: .*photo\.png is not a folder$/);
    expect(debris(root)).toEqual([]);
  });

  it('every writing command refuses an --out that is a file where a folder is needed, with one line', () => {
    const file = join(root, 'photo.png');
    const cases: [string[], RegExp][] = [
      [['masks', '--out', file, '--count', '1', '--size', '32'], /^strdiffusion: --out .*photo\.png is a file, not a folder$/],
      [['convert', '--checkpoints', NETS, '--T', '20', '--out', file], /^strdiffusion: --out .*photo\.png is a file, not a folder$/],
      [['export', '--checkpoints', NETS, '--T', '20', '--size', '32', '--out', file], /^strdiffusion: --out .*photo\.png is a file, not a folder$/],
      [['eval', '--images', data, '--no-model', '--count', '1', '--size', '32', '-q', '--out', file], /^strdiffusion: --out .*photo\.png is a file, not a folder$/],
      [['inpaint', '--image', data, '--mask', join(root, 'mask.png'), '--resize-mask', ...FAST, '--out', file], /^strdiffusion: --out must be a folder when --image is a folder/],
    ];
    for (const [args, msg] of cases) {
      const r = cli(...args);
      expect(r.status, args[0]).toBe(1);
      expect(r.err.split('\n'), args[0]).toHaveLength(1);
      expect(r.err, args[0]).toMatch(msg);
    }
  });

  it('an unwritable destination (read-only file system) is refused before any work', () => {
    const ro = join(root, 'ro');
    if (!tryMount(ro, 'size=1m,ro')) {
      console.warn('cannot mount a tmpfs here: read-only test not run');
      return;
    }
    mounts.push(ro);
    const cases: string[][] = [
      ['inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), ...FAST, '--out', join(ro, 'o.png')],
      ['inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), ...FAST, '--out', join(ro, 'sub', 'o.png')],
      ['masks', '--out', join(ro, 'm'), '--count', '1', '--size', '32'],
      ['convert', '--checkpoints', NETS, '--T', '20', '--out', join(ro, 'c')],
      ['export', '--checkpoints', NETS, '--T', '20', '--size', '32', '--out', join(ro, 'e')],
      ['eval', '--images', data, '--no-model', '--count', '1', '--size', '32', '-q', '--out', join(ro, 'r')],
    ];
    for (const args of cases) {
      const r = cli(...args);
      expect(r.status, args[0]).toBe(1);
      expect(r.err.split('\n'), args[0]).toHaveLength(1);
      expect(r.err, args[0]).toMatch(/^strdiffusion: cannot write --out .*: .*ro is read-only$/);
    }
  });

  it('a full disk while writing the output: a clear error and no partial temp file', async () => {
    const small = join(root, 'small');
    if (!tryMount(small, 'size=16k')) {
      console.warn('cannot mount a tmpfs here: full-disk test not run');
      return;
    }
    mounts.push(small);
    // noise does not compress: ≈ 300 KB of PNG, far over 16 KB
    const big = join(root, 'big.png');
    let s = 1;
    await writeImage(big, image(320, 320, () => ((s = (Math.imul(s, 1664525) + 1013904223) | 0) >>> 24)));
    await writeImage(join(root, 'bigmask.png'), image(320, 320, (x, y) => (Math.abs(x - 160) < 6 && Math.abs(y - 160) < 6 ? 255 : 0), 1));
    const r = cli('inpaint', '--image', big, '--mask', join(root, 'bigmask.png'), ...FAST, '--out', join(small, 'o.png'));
    expect(r.status).toBe(1);
    expect(r.err.split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^strdiffusion: disk full while writing .*o\.png/);
    expect(readdirSync(small)).toEqual([]);
  });
});

describe('temporary files of killed writers', () => {
  it('the next atomic write to the same name removes a dead writer\'s temp file and keeps a live one\'s', async () => {
    const { writeImageAtomic } = await import('../src/image/io.js');
    const { writeFileAtomic } = await import('../src/util/files.js');
    const d = mkdtempSync(join(tmpdir(), 'stale-'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // finished: no longer running
    const live = process.ppid;
    for (const pid of [dead, live]) {
      writeFileSync(join(d, `.out.tmp-${pid}.png`), 'partial');
      writeFileSync(join(d, `model.json.tmp-${pid}`), 'partial');
    }
    await writeImageAtomic(join(d, 'out.png'), { width: 2, height: 2, channels: 1, bitDepth: 8, data: new Uint8Array(4) });
    writeFileAtomic(join(d, 'model.json'), '{}');
    expect(readdirSync(d).sort()).toEqual(['.out.tmp-' + live + '.png', 'model.json', 'model.json.tmp-' + live, 'out.png'].sort());
  });
});

describe('one training per run folder (issue 22: two trainings into one folder interleaved)', () => {
  const lockOf = (out: string) => join(out, 'train.lock');

  it('a lock held by a live process makes trainRun and the CLI refuse, naming the folder', async () => {
    const out = join(root, 'locked-run');
    mkdirSync(out, { recursive: true });
    // the test's own pid: alive (and one process must not run two trainings into one folder either)
    const lock = JSON.stringify({ pid: process.pid, started: '2026-01-01T00:00:00.000Z' });
    writeFileSync(lockOf(out), lock);
    await expect(trainRun(cfg(), { out, steps: 1 })).rejects.toThrow(
      new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is in use by another training \\(pid ${process.pid}, started 2026-01-01T00:00:00\\.000Z\\): wait for it to end or choose another folder$`),
    );
    const r = cli('train', 'structure', '--data', data, '--config', 'fixture', '--size', '32', '--batch', '2', '--T', '20', '--iterations', '1', '--out', out, '-q');
    expect(r.status, r.err).toBe(1);
    expect(r.err).toBe(`strdiffusion: ${out} is in use by another training (pid ${process.pid}, started 2026-01-01T00:00:00.000Z): wait for it to end or choose another folder`);
    // nothing written, the other training's lock kept
    expect(readdirSync(out)).toEqual(['train.lock']);
    expect(readFileSync(lockOf(out), 'utf8')).toBe(lock);
  });

  it('a lock of a dead process is taken over with a warning, and released at the end', async () => {
    const out = join(root, 'stale-lock-run');
    mkdirSync(out, { recursive: true });
    const dead = deadPid();
    writeFileSync(lockOf(out), JSON.stringify({ pid: dead, started: '2026-01-01T00:00:00.000Z' }));
    const logs: string[] = [];
    const r = await trainRun(cfg(), { out, steps: 1, diagEvery: 0, onLog: (m) => logs.push(m) });
    expect(r.iteration).toBe(1);
    expect(logs).toContain(`taking over the stale lock ${lockOf(out)} (pid ${dead} is not running)`);
    expect(existsSync(lockOf(out))).toBe(false);
  });

  it('a lock written before the machine last started is stale even if its pid is alive now', async () => {
    const out = join(root, 'old-boot-lock-run');
    mkdirSync(out, { recursive: true });
    writeFileSync(lockOf(out), JSON.stringify({ pid: process.pid, started: '2026-01-01T00:00:00.000Z', boot: 'another-boot' }));
    const logs: string[] = [];
    const r = await trainRun(cfg(), { out, steps: 1, diagEvery: 0, onLog: (m) => logs.push(m) });
    expect(r.iteration).toBe(1);
    expect(logs).toContain(`taking over the stale lock ${lockOf(out)} (written before this machine last started)`);
  });

  it('the lock is held while a training runs and released when it fails', async () => {
    const out = join(root, 'held-lock-run');
    let seen: string | null = null;
    await expect(
      trainRun(cfg(), {
        out, steps: 1, diagEvery: 0,
        onProgress: () => {
          seen = readFileSync(lockOf(out), 'utf8');
          throw new Error('stop here');
        },
      }),
    ).rejects.toThrow('stop here');
    expect(JSON.parse(seen!).pid).toBe(process.pid);
    expect(existsSync(lockOf(out))).toBe(false);
  });
});
