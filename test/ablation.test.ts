/**
 * `eval --ablation` on tiny nets (issue 25): the parity fixture networks as the StrDiffusion model
 * (T = 10), an unguided texture network as the IR-SDE model and a copy of the fixture networks
 * declared edge2edge as a structure variant, on two photos at 32 px. The report must hold the
 * paper-style table with one row per method whose numbers are those of results.json, and every
 * method must have run on the same pairs and seeds with the sampler its row names.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURE } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import { writeSafetensors } from '../src/weights/safetensors.js';
import { writeModelJson } from '../src/model/checkpoints.js';
import { ablationMethods, type EvalResults } from '../src/eval/index.js';
import { fixture, REPO_ROOT } from './fixtures.js';

const NETS = fixture('parity/nets');
const root = mkdtempSync(join(tmpdir(), 'sd-ablation-'));
const images = join(root, 'images');
const plain = join(root, 'irsde');
const variant = join(root, 'e2e');
const out = join(root, 'report');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/strdiffusion.js'), ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let run: ReturnType<typeof cli>;

beforeAll(async () => {
  mkdirSync(images, { recursive: true });
  for (const i of [0, 1]) {
    const raw = Buffer.alloc(36 * 36 * 3);
    for (let p = 0; p < 36 * 36; p++) {
      raw[p * 3] = ((p % 36) * 7 + i * 60) % 256;
      raw[p * 3 + 1] = Math.floor(p / 36) * 7;
      raw[p * 3 + 2] = 120;
    }
    await sharp(raw, { raw: { width: 36, height: 36, channels: 3 } }).png().toFile(join(images, `p${i}.png`));
  }
  mkdirSync(plain, { recursive: true });
  writeSafetensors(join(plain, 'texture.safetensors'), initWeights('texture', { ...FIXTURE.texture, spade: false }, 2));
  writeModelJson(plain, { T: 10, structureKind: 'none' });
  mkdirSync(variant, { recursive: true });
  for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(NETS, `${k}.pth`), join(variant, `${k}.pth`));
  writeFileSync(join(variant, 'model.json'), JSON.stringify({ T: 10, structureKind: 'edge2edge' }));
  run = cli('eval', '--ablation', '--images', images, '--mask-ratios', '0.1-0.3,0.3-0.5', '--count', '1', '--size', '32', '--T', '10', '--checkpoints', NETS, '--irsde', plain, '--variants', variant, '--grid', '0', '--out', out, '-q');
}, 240_000);

describe('eval --ablation', () => {
  it('runs and writes the paper-style table with one row per method', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as EvalResults;
    expect(res.ablation!.rows.map((r) => [r.id, r.method])).toEqual([
      ['', 'irsde'],
      ['A', 'A-repaint'],
      ['B', 'B-no-discriminator'],
      ['C', 'C-no-resampling'],
      ['D', 'D-strdiffusion'],
      ['', 'D-improved'],
      ['', 'kind-edge2edge'],
    ]);
    const section = md.slice(md.indexOf('## Ablation'), md.indexOf('## All numbers'));
    expect(section).toContain('| 10-30% PSNR / SSIM / SWD | 30-50% PSNR / SSIM / SWD | s/img |');
    for (const a of res.ablation!.rows) {
      const line = section.split('\n').find((l) => l.includes(`| ${a.method} |`));
      expect(line, a.method).toBeDefined();
      // each cell is results.json's row for that method and bucket
      for (const b of res.buckets) {
        const r = res.rows.find((x) => x.method === a.method && x.bucket === b.label)!;
        expect(r.n).toBe(1);
        expect(line).toContain(`${r.psnr.toFixed(2)} / ${r.ssim.toFixed(4)} / ${r.holeSwd.toFixed(2)}`);
      }
    }
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<h2>Ablation</h2>');
  });

  it('compares every row with D pair by pair, as results.json\'s pairs give', () => {
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as EvalResults;
    const section = md.slice(md.indexOf('## Paired against D-strdiffusion'), md.indexOf('## All numbers'));
    expect(section).toContain(`on the same ${res.pairs.length} pairs`);
    const score = (p: EvalResults['pairs'][number], m: string) => {
      const r = p.results[m]!;
      if ('error' in r) throw new Error(r.error);
      return Math.min(r.psnr ?? res.psnrCap, res.psnrCap);
    };
    for (const a of res.ablation!.rows.filter((x) => x.id !== 'D')) {
      const d = res.pairs.map((p) => score(p, a.method) - score(p, 'D-strdiffusion'));
      const mean = d.reduce((x, y) => x + y, 0) / d.length;
      const sign = mean > 0 ? '+' : mean < 0 ? '−' : '±';
      const line = section.split('\n').find((l) => l.includes(`| ${a.method} |`));
      expect(line, a.method).toContain(`| ${sign}${Math.abs(mean).toFixed(2)}; ${d.filter((x) => x > 0).length} : ${d.filter((x) => x < 0).length}; p `);
    }
    expect(section).not.toContain('| D-strdiffusion |');
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<h2>Paired against D-strdiffusion</h2>');
  });

  it('every method ran on the same pairs and seeds, with the sampler of its row', () => {
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as EvalResults;
    const info = Object.fromEntries(res.methods.map((m) => [m.name, m.info]));
    expect(info['irsde']!.sampler).toBe('irsde');
    expect(info['A-repaint']!.sampler).toBe('repaint');
    expect(info['B-no-discriminator']!.sampler).toBe('no-discriminator');
    expect(info['C-no-resampling']!.sampler).toBe('no-resampling');
    expect(info['D-strdiffusion']!.sampler).toBe('official');
    expect(info['D-improved']!.sampler).toBe('improved');
    for (const p of res.pairs) {
      expect(Object.keys(p.results).sort()).toEqual(res.ablation!.rows.map((r) => r.method).sort());
      for (const r of Object.values(p.results)) expect('error' in r).toBe(false);
    }
    // the samplers differ: RePaint is not the plain IR-SDE run, B and C are not D
    const psnr = (m: string) => res.rows.filter((r) => r.method === m).map((r) => r.psnr);
    expect(psnr('A-repaint')).not.toEqual(psnr('irsde'));
    expect(psnr('C-no-resampling')).not.toEqual(psnr('D-strdiffusion'));
  });

  it('without an IR-SDE model, A is left out and the report says why', () => {
    const { methods, plan } = ablationMethods({ checkpoints: [NETS], common: { T: 10 } });
    expect(methods.map((m) => m.name)).toEqual(['B-no-discriminator', 'C-no-resampling', 'D-strdiffusion', 'D-improved']);
    expect(plan.notes.join(' ')).toMatch(/\(A\) left out: they need an unguided texture model/);
  });

  it('misused flags are refused with one line', () => {
    const r = cli('eval', '--images', images, '--irsde', plain, '--out', join(root, 'x'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('strdiffusion: --irsde and --variants belong to --ablation');
  });
});
