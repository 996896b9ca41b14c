/**
 * The blocked-conv pass for training graphs (src/exec/onnx/nchwc.ts): a rewritten graph computes
 * what the plain one does, only the convs the kernel can take are rewritten, and a training graph
 * gives the same loss and gradients with and without it.
 */
import { describe, it, expect } from 'vitest';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/exec/onnx/builder.js';
import { SymOps } from '../src/exec/onnx/tracer.js';
import { blockConvs, nchwcBlockSize } from '../src/exec/onnx/nchwc.js';
import { buildTrainGraph } from '../src/train/graph.js';
import { presetConfigs } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import { SeededNoise } from '../src/util/noise.js';

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function run(bytes: Uint8Array, feeds: Record<string, Float32Array>, shapes: Record<string, number[]>) {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const f: Record<string, ort.Tensor> = {};
  for (const k of s.inputNames) f[k] = new ort.Tensor('float32', feeds[k]!, shapes[k]!);
  const out = await s.run(f);
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.data as Float32Array]));
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0, d = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]!));
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
  }
  return d / (m || 1);
}

describe('blocked convs (NCHWc) for training graphs', () => {
  it('the block size probe gives 1 or a power of two above 4, and STRDIFFUSION_NCHWC=0 gives 1', async () => {
    const bs = await nchwcBlockSize();
    expect(bs === 1 || (bs > 4 && (bs & (bs - 1)) === 0)).toBe(true);
    process.env.STRDIFFUSION_NCHWC = '0';
    try {
      expect(await nchwcBlockSize()).toBe(1);
    } finally {
      delete process.env.STRDIFFUSION_NCHWC;
    }
  });

  it('rewrites exactly the convs the kernel takes and computes the same outputs', async () => {
    const bs = await nchwcBlockSize();
    // each case: [what, x shape, w shape, options, rewritten when the CPU has blocks]
    type Case = [string, number[], number[], { stride?: number; pad?: number | [number, number, number, number]; transpose?: boolean; bias?: boolean }, boolean];
    const cases: Case[] = [
      ['3×3 pad 1, channels in whole blocks', [2, 16, 16, 16], [16, 16, 3, 3], { pad: 1 }, true],
      ['3×3 pad 1 with bias, 32 → 16', [2, 32, 16, 16], [16, 32, 3, 3], { pad: 1, bias: true }, true],
      ['first conv: 3 input channels (NCHW input, OIHWBo filter)', [2, 3, 16, 16], [16, 3, 3, 3], { pad: 1 }, true],
      ['stride 2, asymmetric pads', [2, 16, 17, 16], [16, 16, 3, 3], { stride: 2, pad: [1, 0, 1, 1] }, true],
      ['1×1: kept (one GEMM already)', [2, 16, 16, 16], [32, 16, 1, 1], {}, false],
      ['output channels not in whole blocks: kept', [2, 16, 16, 16], [12, 16, 3, 3], { pad: 1 }, false],
      ['input channels neither < block nor whole blocks: kept', [2, 36, 16, 16], [16, 36, 3, 3], { pad: 1 }, bs <= 4 || 36 % bs === 0],
      ['map below the pixel threshold: kept', [2, 16, 4, 4], [16, 16, 3, 3], { pad: 1 }, false],
      ['input gradient: stride-1 ConvTranspose pad 1', [2, 16, 16, 16], [16, 32, 3, 3], { pad: 1, transpose: true }, true],
      ['input gradient: stride-1 ConvTranspose pad 0 (conv pads 2)', [2, 16, 14, 14], [16, 16, 3, 3], { pad: 0, transpose: true }, true],
      ['input gradient: stride-2 ConvTranspose: kept', [2, 16, 8, 8], [16, 16, 3, 3], { stride: 2, pad: 1, transpose: true }, false],
    ];
    const g = new GraphBuilder();
    const ops = new SymOps(g);
    const feeds: Record<string, Float32Array> = {};
    const shapes: Record<string, number[]> = {};
    const noise = new SeededNoise(5);
    const input = (name: string, shape: number[]) => {
      shapes[name] = shape;
      feeds[name] = noise.normal(shape);
      return g.input(name, shape);
    };
    let expected = 0;
    cases.forEach(([, xs, ws, o, rewritten], i) => {
      const x = input(`x${i}`, xs);
      const w = input(`w${i}`, ws);
      let y;
      if (o.transpose) {
        const [, , H, W] = xs as [number, number, number, number];
        const [, C, kh, kw] = ws as [number, number, number, number];
        const s = o.stride ?? 1, p = (o.pad as number) ?? 0;
        const out = [xs[0]!, C, s * (H - 1) + kh - 2 * p, s * (W - 1) + kw - 2 * p];
        y = g.node('ConvTranspose', [x.name, w.name], out, { kernel_shape: [kh, kw], strides: [s, s], pads: [p, p, p, p], group: 1, output_padding: [0, 0], dilations: [1, 1] });
      } else {
        const b = o.bias ? input(`b${i}`, [ws[0]!]) : null;
        y = ops.conv2d(x, w, b, { stride: o.stride, pad: o.pad });
      }
      g.output(y, `y${i}`);
      if (rewritten && bs > 1) expected++;
    });
    const plain = await run(g.toBytes(), feeds, shapes);
    const n = blockConvs(g, bs, 64);
    expect(n).toBe(expected);
    const blocked = await run(g.toBytes(), feeds, shapes);
    cases.forEach(([what], i) => {
      expect(blocked[`y${i}`]!.length, what).toBe(plain[`y${i}`]!.length);
      expect(maxRelDiff(plain[`y${i}`]!, blocked[`y${i}`]!), what).toBeLessThan(1e-5);
    });
  });

  it('a training graph (mini structure net, 32², batch 2) gives the same loss and gradients with and without the pass', async () => {
    const bs = await nchwcBlockSize();
    const cfg = presetConfigs('mini').structure;
    const w = initWeights('structure', cfg, 3);
    const paramShapes = new Map([...w].map(([k, t]) => [k, t.shape]));
    const shape = { batch: 2, height: 32, width: 32 };
    const plain = buildTrainGraph('structure', cfg, paramShapes, shape, 0.02);
    const blocked = buildTrainGraph('structure', cfg, paramShapes, shape, 0.02, { nchwcBlockSize: bs });
    if (bs > 1) expect(Buffer.from(blocked.bytes).includes('ReorderOutput')).toBe(true);
    const noise = new SeededNoise(11);
    const feeds: Record<string, Float32Array> = {};
    const shapes: Record<string, number[]> = {};
    for (const k of [...plain.params, ...plain.buffers]) {
      feeds[k] = w.get(k)!.data;
      shapes[k] = [...w.get(k)!.shape];
    }
    for (const [k, s] of plain.data) {
      shapes[k] = s;
      feeds[k] = Float32Array.from({ length: numel(s) }, () => (k === 't' ? 1 + Math.floor(noise.uniform() * 40) : k === 'mask' ? Number(noise.uniform() < 0.7) : noise.uniform()));
    }
    const a = await run(plain.bytes, feeds, shapes);
    const b = await run(blocked.bytes, feeds, shapes);
    expect(Math.abs(a.loss![0]! - b.loss![0]!)).toBeLessThan(1e-5 * Math.abs(a.loss![0]!));
    for (const k of plain.grads) expect(maxRelDiff(a[`grad:${k}`]!, b[`grad:${k}`]!), k).toBeLessThan(1e-4);
  });
});
