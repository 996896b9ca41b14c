/**
 * The package as a user gets it: `npm pack`, install the tarball into a fresh folder without
 * network (npm's cache, as after `npm ci`), then `import { inpaint, loadModel } from 'strdiffusion'`
 * from a plain .mjs file and from a TypeScript file (type-checked against the shipped .d.ts), and
 * `npx strdiffusion inpaint` from that folder. Prints the tarball and installed sizes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeImage } from '../src/image/io.js';
import { REPO_ROOT } from './fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'strd-pkg-'));
const app = join(work, 'app');
// no network: onnxruntime-node's install script (when npm runs it) must not reach out for GPU providers
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_onnxruntime_node_install: 'skip', npm_config_audit: 'false', npm_config_fund: 'false' };

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 600_000, ...opts });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${out.slice(-3000)}`);
  return String(r.stdout ?? '');
}

function duBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += duBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

const MB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
let tarball = '';
let files: string[] = [];

beforeAll(() => {
  // `npm pack` runs `prepack` (the tsc build into dist/, which is git-ignored)
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], { cwd: REPO_ROOT })) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  tarball = join(work, packed[0]!.filename);
  files = packed[0]!.files.map((f) => f.path);
  run('mkdir', ['-p', app]);
  // Offline, npm can only install what a lockfile pins (its cache holds tarballs by integrity, not
  // the registry's package lists): the app's lockfile is the tarball plus the runtime (non-dev)
  // entries of this repository's lockfile, i.e. exactly what a user's install would resolve today.
  const self = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; link?: boolean }> };
  const dependencies = { strdiffusion: `file:${tarball}` };
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies },
    'node_modules/strdiffusion': { version: self.version, resolved: `file:${tarball}`, license: self.license, dependencies: self.dependencies, bin: self.bin, engines: self.engines },
  };
  for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith('node_modules/') && !v.dev && !v.link) packages[k] = v;
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }));
  run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: app });
  console.log(`strdiffusion package: tarball ${MB(statSync(tarball).size)} (${files.length} files), installed with its dependencies ${MB(duBytes(join(app, 'node_modules')))}`);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the npm package', () => {
  it('ships the compiled library, CLI, bundled model and web page, and no tests, benches, sources or generated files', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/core.js', 'dist/core.d.ts', 'dist/cli/main.js', 'bin/strdiffusion.js', 'models/default/model.json', 'web/index.html', 'README.md', 'package.json']) {
      expect(files, f).toContain(f);
    }
    const bad = files.filter((f) => /^(test|bench|scripts|src|docs|examples|\.ci)\//.test(f) || /^[^/]+\.png$/.test(f) || f.endsWith('.tsbuildinfo'));
    expect(bad).toEqual([]);
  });

  it('the Node entry and ./core resolve; ./core pulls in no Node-only module', async () => {
    const pkg = JSON.parse(readFileSync(join(app, 'node_modules/strdiffusion/package.json'), 'utf8')) as { exports: Record<string, unknown> };
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['.', './core']));
    // every relative import reachable from dist/core.js, and the packages they name
    const root = join(app, 'node_modules/strdiffusion/dist');
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('.')) visit(join(file, '..', spec));
        else external.add(spec);
      }
    };
    visit(join(root, 'core.js'));
    const nodeOnly = [...external].filter((s) => s.startsWith('node:') || ['fs', 'path', 'os', 'sharp', 'onnxruntime-node', 'busboy', 'commander', 'fflate'].includes(s));
    expect(nodeOnly).toEqual([]);
    for (const f of seen) expect(readFileSync(f, 'utf8'), f).not.toMatch(/\bBuffer\.|\bprocess\.(env|cwd|exit)/);
  });

  it('the public types (every .d.ts reachable from the entries) need no @types/node: no Buffer, NodeJS or node: modules (issue 22)', () => {
    const root = join(app, 'node_modules/strdiffusion/dist');
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]/g)) visit(join(file, '..', m[1]!.replace(/\.js$/, '.d.ts')));
    };
    visit(join(root, 'index.d.ts'));
    visit(join(root, 'core.d.ts'));
    expect(seen.size).toBeGreaterThan(10);
    for (const f of seen) {
      // comments may name Buffer; the declarations may not
      const code = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      expect(code, f).not.toMatch(/(?<![\w$])Buffer(?![\w$])|\bNodeJS\.|['"]node:|from ['"](fs|path|os|stream|http|worker_threads)['"]/);
    }
  });

  it('import { inpaint, loadModel } from "strdiffusion" works from .mjs and from type-checked TypeScript; npx strdiffusion too', async () => {
    const W = 64;
    const H = 48;
    const photo = new Uint8Array(W * H * 3).map((_, i) => ((i % 3) * 60 + (i / 3) % W * 2) & 255);
    const hole = new Uint8Array(W * H).map((_, i) => (Math.abs((i % W) - 30) < 5 && Math.abs(Math.floor(i / W) - 24) < 5 ? 255 : 0));
    await writeImage(join(app, 'photo.png'), { width: W, height: H, channels: 3, bitDepth: 8, data: photo });
    await writeImage(join(app, 'mask.png'), { width: W, height: H, channels: 1, bitDepth: 8, data: hole });

    writeFileSync(join(app, 'plain.mjs'), `
import { readFileSync } from 'node:fs';
import { inpaint, loadModel, StrDiffusionError } from 'strdiffusion';
import { STEP_RULES } from 'strdiffusion/core';
const model = await loadModel();
const a = await model.inpaint('photo.png', readFileSync('mask.png'), { seed: 3 });
const b = await inpaint(readFileSync('photo.png'), 'mask.png', { seed: 3 });
await a.save('out-mjs.png');
const same = Buffer.compare(Buffer.from(a.image.data.buffer), Buffer.from(b.image.data.buffer)) === 0;
let code = null;
try { await model.inpaint('photo.png', 'mask.png', { seed: -1 }); } catch (e) { code = e instanceof StrDiffusionError ? e.code : String(e); }
await model.dispose();
console.log(JSON.stringify({ same, w: a.image.width, holes: a.holePixels, code, rules: STEP_RULES.length, png: (await b.encode()).subarray(1, 4).toString() }));
`);
    const mjs = JSON.parse(run(process.execPath, ['plain.mjs'], { cwd: app }).trim().split('\n').pop()!) as Record<string, unknown>;
    expect(mjs).toEqual({ same: true, w: W, holes: 81, code: 'BAD_OPTION', rules: 2, png: 'PNG' });

    writeFileSync(join(app, 'typed.ts'), `
import { loadModel, type Inpainting, type InpaintProgress } from 'strdiffusion';
import { planWindow } from 'strdiffusion/core';
const model = await loadModel(undefined, { precision: 'fp32' });
const steps: InpaintProgress[] = [];
const raw = { data: new Uint8Array(${W * H * 3}).fill(128), width: ${W}, height: ${H}, channels: 3 as const };
const result: Inpainting = await model.inpaint(raw, 'mask.png', { seed: 1, onProgress: (p) => steps.push(p) });
await result.save('out-ts.png');
const plan = planWindow({ x0: 0, y0: 0, x1: 4, y1: 4 }, 64, 48, 32);
// the progress counts the run's own steps (the model's sampling steps), ending at its total
console.log(JSON.stringify({ steps: steps.length, last: steps.at(-1)?.step === steps.at(-1)?.T && steps.length === steps.at(-1)?.T, keys: Object.keys(steps[0]!).sort().join(','), size: plan.size > 0 }));
await model.dispose();
`);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(REPO_ROOT, 'node_modules/@types')] },
      files: ['typed.ts'],
    }));
    run(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: app });
    const ts = JSON.parse(run(join(REPO_ROOT, 'node_modules/.bin/tsx'), ['typed.ts'], { cwd: app }).trim().split('\n').pop()!) as Record<string, unknown>;
    expect(ts).toEqual({ steps: expect.any(Number), last: true, keys: 'T,elapsed,eta,resampling,stage,step,t', size: true });
    expect(ts.steps as number).toBeGreaterThan(1);

    run('npx', ['--offline', 'strdiffusion', 'inpaint', '--image', 'photo.png', '--mask', 'mask.png', '--out', 'out-cli.png', '--seed', '3', '-q'], { cwd: app });
    // the CLI, the one-shot call and the model object agree bit for bit (same seed, same model)
    expect(readFileSync(join(app, 'out-cli.png')).equals(readFileSync(join(app, 'out-mjs.png')))).toBe(true);
    expect(existsSync(join(app, 'node_modules/strdiffusion/src'))).toBe(false);
  });
});
