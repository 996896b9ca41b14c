import { describe, it, expect } from 'vitest';
import { resolve } from 'node:path';
import { runParity } from '../src/parity/runner.js';
import { OFFICIAL } from '../src/nn/config.js';
import { paramSpec, checkWeights } from '../src/nn/models.js';
import { OnnxExecutor } from '../src/exec/onnx/executor.js';
import { numel } from '../src/util/tensor.js';
import type { NetKind } from '../src/exec/types.js';
import type { StateDict } from '../src/weights/types.js';
import { loadModel, inferUNetConfig } from '../src/model/checkpoints.js';
import { fixture } from './fixtures.js';

const FIXTURES = fixture('parity');

describe('network forward parity (onnx)', () => {
  it('every forward case of the fixtures passes', async () => {
    const r = await runParity(FIXTURES, { filter: /^net_/, executors: ['onnx'] });
    const bad = r.results.filter((x) => !x.pass).map((x) => `${x.name}: ${x.error} > ${x.tolerance} ${x.detail ?? ''}`);
    expect(bad).toEqual([]);
    expect(r.passed).toBeGreaterThanOrEqual(19);
  });
});

/** Cheap deterministic non-zero weights: a forward of zeros would test nothing. */
function pseudoWeights(kind: NetKind): StateDict {
  const sd: StateDict = new Map();
  let seed = 12345;
  for (const [k, shape] of paramSpec(kind, OFFICIAL[kind])) {
    const n = numel(shape);
    const fanIn = shape.length > 1 ? n / shape[0]! : n;
    const b = Math.sqrt(3 / fanIn);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = ((seed / 2 ** 32) * 2 - 1) * b;
    }
    if (k.endsWith('.g')) data.fill(1);
    sd.set(k, { shape, data });
  }
  return sd;
}

describe('official-size networks', () => {
  const counts: Record<NetKind, { entries: number; params: number }> = {
    structure: { entries: 151, params: 137_133_825 },
    texture: { entries: 231, params: 163_333_763 },
    discriminator: { entries: 38, params: 12_741_377 },
  };
  for (const kind of ['discriminator', 'structure', 'texture'] as NetKind[]) {
    it(`${kind}: official state_dict shapes load strictly and a 32x32 forward runs`, async () => {
      const spec = paramSpec(kind, OFFICIAL[kind]);
      expect(spec.size).toBe(counts[kind].entries);
      let params = 0;
      for (const [k, s] of spec) if (!/weight_[uv]$/.test(k)) params += numel(s);
      expect(params).toBe(counts[kind].params);
      const sd = checkWeights(kind, OFFICIAL[kind], pseudoWeights(kind));
      if (kind !== 'discriminator') expect(inferUNetConfig(sd, kind)).toEqual(OFFICIAL[kind]);
      const runner = await new OnnxExecutor().createRunner(kind, OFFICIAL[kind], sd);
      const x = { shape: [1, kind === 'structure' ? 1 : 3, 32, 32], data: new Float32Array(kind === 'structure' ? 1024 : 3072).fill(0.3) };
      const S = { shape: [1, 1, 32, 32], data: new Float32Array(1024).map((_, i) => (i % 7) / 7) };
      const out = await runner.run({ x, mu: { ...x, data: x.data.map((v, i) => (i % 5 ? v : 0)) }, S, t: [7] });
      runner.dispose();
      expect(out.shape).toEqual(kind === 'discriminator' ? [1] : x.shape);
      expect(out.data.every(Number.isFinite)).toBe(true);
      expect(Math.max(...out.data.map(Math.abs))).toBeGreaterThan(0);
    });
  }
});

describe('model folders', () => {
  it('loads the fixture networks with configs inferred from the weights', () => {
    const m = loadModel([resolve(FIXTURES, 'nets')], { T: 100 });
    expect(m.configs.texture).toEqual({ inNc: 3, outNc: 3, nf: 4, depth: 4, spade: true });
    expect(m.configs.structure.spade).toBe(false);
    expect(m.configs.discriminator).toEqual({ nc: 4, ngf: 4, tEmbDim: 256 });
  });
  it('a folder without T metadata asks for T', () => {
    expect(() => loadModel([resolve(FIXTURES, 'train/texture')])).toThrow(/no structure network|T/);
  });
  it('a missing folder is a clear error', () => {
    expect(() => loadModel(['/nonexistent/models'])).toThrow('checkpoint folder not found: /nonexistent/models');
  });
});
