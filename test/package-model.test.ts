/**
 * scripts/package-model.ts, the script that makes a model folder (models/default among them): a
 * network taken from an existing model folder keeps its file and what model.json recorded about
 * it; the model's fill is the texture network's, a discriminator trained with another one is kept
 * with a warning; a run in the wrong place or a missing checkpoint is refused with one line.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './fixtures.js';

const DEFAULT_MODEL = join(REPO_ROOT, 'models/default');
const pkg = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts/package-model.ts'), ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
const tmp = () => mkdtempSync(join(tmpdir(), 'package-model-'));

describe('package-model', () => {
  it('takes networks from a model folder as packaged, the fill from the texture network, and warns about a discriminator of another fill', () => {
    const out = join(tmp(), 'model');
    const r = pkg(out, DEFAULT_MODEL, DEFAULT_MODEL, DEFAULT_MODEL, '--sampler', 'split', '--size', '128', '--data', 'test data');
    expect(r.status, r.stderr).toBe(0);
    const src = JSON.parse(readFileSync(join(DEFAULT_MODEL, 'model.json'), 'utf8'));
    const dst = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(dst.networks).toEqual(src.networks);
    expect(dst.fill).toBe(src.networks.texture.settings.fill);
    expect(dst.sampler).toBe('split');
    expect(dst.data).toBe('test data');
    for (const k of ['structure', 'texture', 'discriminator']) expect(readFileSync(join(out, `${k}.safetensors`)).equals(readFileSync(join(DEFAULT_MODEL, src.files[k])))).toBe(true);
    if (src.networks.discriminator.settings.fill !== dst.fill) expect(r.stderr).toContain(`warning: the discriminator was trained with the ${src.networks.discriminator.settings.fill} fill, the model's is ${dst.fill}`);
  });

  it('--fill sets the fill the model samples with, noting the texture network\'s; a bad one is refused', () => {
    const out = join(tmp(), 'model');
    const src = JSON.parse(readFileSync(join(DEFAULT_MODEL, 'model.json'), 'utf8'));
    const trained = src.networks.texture.settings.fill;
    const other = trained === 'telea' ? 'ns' : 'telea';
    let r = pkg(out, DEFAULT_MODEL, DEFAULT_MODEL, DEFAULT_MODEL, '--fill', other);
    expect(r.status, r.stderr).toBe(0);
    const dst = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(dst.fill).toBe(other);
    expect(dst.networks.texture.settings.fill).toBe(trained);
    expect(r.stderr).toContain(`note: the model samples with the ${other} fill, its texture network was trained with ${trained}`);
    r = pkg(join(tmp(), 'bad'), DEFAULT_MODEL, DEFAULT_MODEL, DEFAULT_MODEL, '--fill', 'blur');
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe('package-model: --fill must be one of zero, mean, telea, ns, bridge (got "blur")');
  });

  it('refuses a run in the wrong place and a checkpoint the run does not have', () => {
    const root = tmp();
    const run = (kind: string) => {
      const d = join(root, kind);
      mkdirSync(d);
      writeFileSync(join(d, 'config.json'), JSON.stringify({ run: { kind, T: 50, fill: 'ns' }, command: 'train' }));
      return d;
    };
    const structure = run('structure');
    const texture = run('texture');
    let r = pkg(join(root, 'a'), DEFAULT_MODEL, structure, DEFAULT_MODEL);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe(`package-model: ${structure} trains a structure network, expected the texture run in place 2`);
    r = pkg(join(root, 'b'), DEFAULT_MODEL, texture, DEFAULT_MODEL, '--checkpoint', '4000');
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe(`package-model: ${texture} has no complete checkpoint 4000`);
  });
});
