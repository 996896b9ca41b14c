/**
 * ONNX export and the onnxruntime executor: an exported graph runs in onnxruntime-web (the
 * browser runtime, wasm backend, here in Node) and reproduces the official output; sessions are
 * cached per input size.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNpy, readPth } from '../src/weights/index.js';
import { checkWeights } from '../src/nn/models.js';
import { configFromOfficial } from '../src/parity/fixture-nets.js';
import { exportOnnx } from '../src/exec/onnx/export.js';
import { OnnxExecutor, OnnxRunner } from '../src/exec/onnx/executor.js';
import { maxAbsDiff, type F32Tensor } from '../src/util/tensor.js';
import type { NetKind } from '../src/exec/types.js';
import { fixture } from './fixtures.js';

const FIX = fixture('parity');
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(readFileSync(join(FIX, 'manifest.json'), 'utf8'));

function net(kind: NetKind) {
  const w = manifest.groups.nets.weights[kind];
  const { cfg } = configFromOfficial(w.config);
  return { cfg, weights: checkWeights(kind, cfg, readPth(join(FIX, w.file)), w.file) };
}

function caseOf(name: string) {
  const c = manifest.cases.find((x: any) => x.name === name);
  if (!c) throw new Error(`no case ${name}`);
  const f32 = (key: string): F32Tensor => {
    const a = readNpy(join(FIX, c.files[key].file));
    return { shape: a.shape, data: Float32Array.from(a.data as ArrayLike<number>) };
  };
  return { c, f32 };
}

describe('onnx export', () => {
  it('runs in onnxruntime-web (wasm) and matches the official texture output', async () => {
    const { c, f32 } = caseOf('net_texture_t40');
    const { cfg, weights } = net('texture');
    const [B, , H, W] = c.files.y_t.shape as number[];
    const bytes = exportOnnx('texture', cfg, weights, { batch: B!, height: H!, width: W! });

    const ortWeb = await import('onnxruntime-web');
    ortWeb.env.wasm.numThreads = 1;
    ortWeb.env.wasm.wasmPaths = join(ROOT, 'node_modules/onnxruntime-web/dist/');
    const session = await ortWeb.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    try {
      expect([...session.inputNames]).toEqual(['x', 'mu', 'S', 't']);
      const feed = (t: F32Tensor) => new ortWeb.Tensor('float32', t.data, t.shape);
      const res = await session.run({
        x: feed(f32('y_t')),
        mu: feed(f32('mu')),
        S: feed(f32('S')),
        t: new ortWeb.Tensor('float32', Float32Array.of(c.config.t), [B!]),
      });
      const out = res.out!;
      expect([...out.dims]).toEqual(c.files.out.shape);
      const ref = f32('out');
      expect(maxAbsDiff(out.data as Float32Array, ref.data)).toBeLessThanOrEqual(c.tolerance.atol);
    } finally {
      await session.release();
    }
  });

  it('creates one session per input size and reuses it', async () => {
    const { f32 } = caseOf('net_structure_t40');
    const { cfg, weights } = net('structure');
    const runner = (await new OnnxExecutor({ threads: 1 }).createRunner('structure', cfg, weights)) as OnnxRunner;
    try {
      const x = f32('x_t');
      const mu = f32('mu');
      const first = await runner.run({ x, mu, t: [40] });
      const again = await runner.run({ x, mu, t: [40] });
      expect(runner.exports).toBe(1);
      expect(runner.sessionCount).toBe(1);
      expect(Array.from(again.data)).toEqual(Array.from(first.data));
      const small = { shape: [1, 1, 16, 16], data: new Float32Array(256).fill(0.5) };
      const out = await runner.run({ x: small, mu: small, t: [3] });
      expect(out.shape).toEqual([1, 1, 16, 16]);
      expect(runner.exports).toBe(2);
      expect(runner.sessionCount).toBe(2);
      const firstCopy = Float32Array.from(first.data);
      const other = await runner.run({ x, mu, t: [2] });
      expect(runner.exports).toBe(2);
      // results own their data: a later run must not overwrite an earlier result
      expect(maxAbsDiff(other.data, first.data)).toBeGreaterThan(0);
      expect(Array.from(first.data)).toEqual(Array.from(firstCopy));
    } finally {
      runner.dispose();
    }
    await expect(runner.run({ x: f32('x_t'), mu: f32('mu'), t: [1] })).rejects.toThrow(/disposed/);
  });
});
