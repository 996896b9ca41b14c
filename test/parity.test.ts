import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fixture } from './fixtures.js';

const ROOT = resolve(__dirname, '..');
const FIXTURES = fixture('parity');

function parity(args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'parity', ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  const lines = (r.stdout ?? '').trim().split('\n');
  return { status: r.status, lines, last: lines[lines.length - 1] ?? '', stderr: r.stderr };
}

describe('npm run parity', () => {
  it('passes every case of the shared fixtures on onnxruntime (the default executor), skipping none', () => {
    const r = parity([FIXTURES]);
    const failed = r.lines.filter((l) => l.startsWith('FAIL') || l.startsWith('SKIP'));
    expect(failed, r.stderr).toEqual([]);
    expect(r.last).toMatch(/^parity: \d+ passed, 0 failed, 0 skipped$/);
    expect(r.status).toBe(0);
    const kinds = ['schedule_T100', 'sde_ops_T400', 'canny_camera_256', 'net_texture_odd', 'net_disc_b8', 'sampler_T100', 'train_texture'];
    for (const k of kinds) expect(r.lines.some((l) => l.startsWith('PASS') && l.includes(k)), k).toBe(true);
    expect(r.lines.some((l) => /net_texture_t40/.test(l) && l.includes(' onnx '))).toBe(true);
    expect(r.lines.some((l) => /^PASS\s+train_texture grads\s+onnx /.test(l))).toBe(true);
  });

  it('works on any folder of the same format, lists unknown kinds as skipped and fails on a wrong reference', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parity-'));
    for (const f of readdirSync(FIXTURES)) if (f !== 'manifest.json') symlinkSync(join(FIXTURES, f), join(dir, f));
    const m = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8'));
    const keep = m.cases.filter((c: any) => ['schedule_T100', 'net_disc_t40'].includes(c.name));
    const bad = JSON.parse(JSON.stringify(keep[1]));
    bad.name = 'net_disc_wrong_ref';
    // the reference of another time step cannot match
    bad.files.out = { ...keep[1].files.out, file: 'nets/disc_t100/out.npy' };
    m.cases = [...keep, bad, { name: 'future_case', kind: 'something_new', files: {} }];
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    const r = parity([dir, '--executor', 'onnx']);
    expect(r.lines.some((l) => /^SKIP\s+future_case/.test(l))).toBe(true);
    expect(r.lines.some((l) => /^FAIL\s+net_disc_wrong_ref/.test(l))).toBe(true);
    expect(r.last).toMatch(/^parity: \d+ passed, 1 failed, 1 skipped$/);
    expect(r.status).toBe(1);
  });

  it('an unknown executor is one clear line naming the allowed values', () => {
    const r = parity([FIXTURES, '--executor', 'tfjs']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('strdiffusion: --executor must be onnx (got "tfjs"; the TensorFlow.js executor was removed)');
    expect(r.lines.some((l) => /^(PASS|FAIL)/.test(l))).toBe(false);
  });

  it('a folder without manifest.json is a clear error', () => {
    const r = parity([tmpdir() + '/no-such-fixtures']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no manifest.json in/);
  });
});
