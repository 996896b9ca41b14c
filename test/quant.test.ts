/**
 * Reduced-precision inference: the int8 export (dynamically quantised convolutions) runs, stays
 * close to float32 on the fixture networks, and leaves the float32 export untouched.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { readNpy, readPth } from '../src/weights/index.js';
import { checkWeights } from '../src/nn/models.js';
import { configFromOfficial } from '../src/parity/fixture-nets.js';
import { exportCalibrationOnnx, exportOnnx } from '../src/exec/onnx/export.js';
import { GraphBuilder } from '../src/exec/onnx/builder.js';
import { SymOps } from '../src/exec/onnx/tracer.js';
import { quantizeWeightsPerChannel, uint8Params } from '../src/exec/onnx/quant.js';
import { autoCalibrationInputs, syntheticCalibrationInputs } from '../src/exec/onnx/calibrate.js';
import { OnnxExecutor, OnnxRunner, sessionOptions } from '../src/exec/onnx/executor.js';
import type { F32Tensor } from '../src/util/tensor.js';
import type { NetInputs, NetKind } from '../src/exec/types.js';
import { SeededNoise } from '../src/util/noise.js';
import { fixture } from './fixtures.js';

const FIX = fixture('parity');
const manifest = JSON.parse(readFileSync(join(FIX, 'manifest.json'), 'utf8'));

function net(kind: NetKind) {
  const w = manifest.groups.nets.weights[kind];
  const { cfg } = configFromOfficial(w.config);
  return { cfg, weights: checkWeights(kind, cfg, readPth(join(FIX, w.file)), w.file) };
}

function caseInputs(name: string): NetInputs {
  const c = manifest.cases.find((x: any) => x.name === name);
  if (!c) throw new Error(`no case ${name}`);
  const f32 = (key: string): F32Tensor => {
    const a = readNpy(join(FIX, c.files[key].file));
    return { shape: a.shape, data: Float32Array.from(a.data as ArrayLike<number>) };
  };
  return name.startsWith('net_texture')
    ? { x: f32('y_t'), mu: f32('mu'), S: f32('S'), t: [c.config.t] }
    : { x: f32('x_t'), mu: f32('mu'), t: [c.config.t] };
}

function opTypes(bytes: Uint8Array): string[] {
  return onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!);
}

function errors(ref: Float32Array, got: Float32Array) {
  let max = 0;
  let sum = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ref[i]! - got[i]!);
    max = Math.max(max, d);
    sum += d;
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return { relMax: max / scale, relMean: sum / ref.length / scale };
}

describe('int8 (dynamically quantised) export', () => {
  const shape = { batch: 1, height: 32, width: 32 };

  it('leaves the float32 export byte-identical', () => {
    for (const kind of ['texture', 'structure', 'discriminator'] as NetKind[]) {
      const { cfg, weights } = net(kind);
      const plain = exportOnnx(kind, cfg, weights, shape);
      const fp32 = exportOnnx(kind, cfg, weights, shape, { precision: 'fp32' });
      expect(Buffer.compare(Buffer.from(plain), Buffer.from(fp32))).toBe(0);
      expect(opTypes(plain)).not.toContain('ConvInteger');
    }
  });

  // Measured on these fixture nets (nf = 4, random weights), default policy: texture 4.2 %,
  // structure 3.4 % of the output's max |value| (max-abs), mean-abs ~0.8 %.
  it.each([
    ['texture', 'net_texture_t40'],
    ['structure', 'net_structure_t40'],
  ] as [NetKind, string][])('%s (%s): int8 runs with ConvInteger nodes, within 5 percent of float32', async (kind, caseName) => {
    const { cfg, weights } = net(kind);
    const bytes = exportOnnx(kind, cfg, weights, shape, { precision: 'int8' });
    const ops = opTypes(bytes);
    const nInt = ops.filter((o) => o === 'ConvInteger').length;
    expect(nInt).toBeGreaterThan(10);
    expect(ops).toContain('DynamicQuantizeLinear');
    // the float weights of quantised convs are pruned: the int8 file is smaller
    expect(bytes.byteLength).toBeLessThan(exportOnnx(kind, cfg, weights, shape).byteLength);

    const inputs = caseInputs(caseName);
    const ex = new OnnxExecutor({ threads: 1 });
    const f = await ex.createRunner(kind, cfg, weights);
    const q = await ex.createRunner(kind, cfg, weights, { precision: 'int8' });
    expect((q as OnnxRunner).precision).toBe('int8');
    expect((f as OnnxRunner).precision).toBe('fp32');
    try {
      const a = await f.run(inputs);
      const b = await q.run(inputs);
      expect(b.shape).toEqual(a.shape);
      const e = errors(a.data, b.data);
      expect(e.relMax).toBeGreaterThan(0); // it really is quantised
      expect(e.relMax).toBeLessThan(0.05);
      expect(e.relMean).toBeLessThan(0.015);
    } finally {
      f.dispose();
      q.dispose();
    }
  });

  it('executor-wide precision, per-runner override', async () => {
    const { cfg, weights } = net('structure');
    const ex = new OnnxExecutor({ precision: 'int8', threads: 1 });
    expect(((await ex.createRunner('structure', cfg, weights)) as OnnxRunner).precision).toBe('int8');
    expect(((await ex.createRunner('structure', cfg, weights, { precision: 'fp32' })) as OnnxRunner).precision).toBe('fp32');
    expect(() => new OnnxRunner('structure', cfg, weights, { precision: 'fp16' as any })).toThrow(/precision/);
    expect(((await ex.createRunner('structure', cfg, weights, { precision: 'int8-static' })) as OnnxRunner).precision).toBe('int8-static');
  });

  it('per-channel weights: scale = max|w_c| / 127, values within half a step', () => {
    const w = Float32Array.of(0.5, -1, 0.25, 0, 0, 0, 2, -0.1, 0.3);
    const { q, scale } = quantizeWeightsPerChannel(w, 3);
    expect([...scale]).toEqual([Math.fround(1 / 127), 1, Math.fround(2 / 127)]);
    expect([...q]).toEqual([64, -127, 32, 0, 0, 0, 127, -6, 19]);
  });

  it('a padded conv: zero padding stays exact (ConvInteger pads with the zero point)', async () => {
    const C = 16;
    const O = 8;
    const H = 12;
    const rng = new SeededNoise(3);
    const wData = Float32Array.from(rng.normal([O, C, 3, 3]), (v) => v * 0.1);
    const bData = Float32Array.from(rng.normal([O]), (v) => v * 0.1);
    // inputs far from zero on average, so a pad with raw 0 instead of the zero point would show
    const x = Float32Array.from(rng.normal([1, C, H, H]), (v) => 2 + v);
    const build = (precision: 'fp32' | 'int8') => {
      const g = new GraphBuilder();
      const ops = new SymOps(g, precision);
      const xs = g.input('x', [1, C, H, H]);
      g.output(ops.conv2d(xs, g.initializerF32(wData, [O, C, 3, 3], 'w'), g.initializerF32(bData, [O], 'b'), { pad: 1 }), 'out');
      expect(ops.quantStats.int8).toBe(precision === 'int8' ? 1 : 0);
      g.pruneUnusedInitializers();
      return g.toBytes();
    };
    const run = async (bytes: Uint8Array) => {
      const s = await ort.InferenceSession.create(bytes, sessionOptions({ threads: 1 }));
      try {
        return (await s.run({ x: new ort.Tensor('float32', x, [1, C, H, H]) })).out!.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    const a = await run(build('fp32'));
    const b = await run(build('int8'));
    let border = 0;
    let inner = 0;
    let scale = 0;
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < H; i++) {
        for (let j = 0; j < H; j++) {
          const k = (o * H + i) * H + j;
          const d = Math.abs(a[k]! - b[k]!);
          scale = Math.max(scale, Math.abs(a[k]!));
          if (i === 0 || j === 0 || i === H - 1 || j === H - 1) border = Math.max(border, d);
          else inner = Math.max(inner, d);
        }
      }
    }
    expect(inner / scale).toBeLessThan(0.02);
    expect(border / scale).toBeLessThan(0.02);
  });
});

describe('int8-static (calibrated QLinearConv) export', () => {
  const shape = { batch: 1, height: 32, width: 32 };

  it('uint8 parameters: the range is widened to contain 0, zero maps exactly', () => {
    expect(uint8Params(-1, 3)).toEqual({ scale: Math.fround(4 / 255), zero: Math.round(1 / Math.fround(4 / 255)) });
    expect(uint8Params(2, 5)).toEqual({ scale: Math.fround(5 / 255), zero: 0 });
    expect(uint8Params(-4, -1)).toEqual({ scale: Math.fround(4 / 255), zero: 255 });
    expect(uint8Params(0, 0)).toEqual({ scale: 1, zero: 0 });
  });

  it('needs a calibration that matches the graph; the calibration graph computes the float32 result', async () => {
    const { cfg, weights } = net('structure');
    expect(() => exportOnnx('structure', cfg, weights, shape, { precision: 'int8-static' })).toThrow(/calibration/);
    expect(() => exportOnnx('structure', cfg, weights, shape, { precision: 'int8-static', quant: { calibration: [{ x: [0, 1], y: [0, 1] }] } })).toThrow(/calibration has 1/);
    const { bytes, convs } = exportCalibrationOnnx('structure', cfg, weights, shape);
    expect(convs).toBeGreaterThan(10);
    const inputs = caseInputs('net_structure_t40');
    const run = async (b: Uint8Array) => {
      const s = await ort.InferenceSession.create(b, sessionOptions({ threads: 1 }));
      try {
        const feeds = { x: new ort.Tensor('float32', inputs.x.data, inputs.x.shape), mu: new ort.Tensor('float32', inputs.mu!.data, inputs.mu!.shape), t: new ort.Tensor('float32', Float32Array.from(inputs.t), [1]) };
        return await s.run(feeds);
      } finally {
        await s.release();
      }
    };
    const cal = await run(bytes);
    const plain = await run(exportOnnx('structure', cfg, weights, shape));
    expect(cal.cal_min!.dims).toEqual([2 * convs]);
    expect(Array.from(cal.out!.data as Float32Array)).toEqual(Array.from(plain.out!.data as Float32Array));
    const mn = cal.cal_min!.data as Float32Array;
    const mx = cal.cal_max!.data as Float32Array;
    for (let i = 0; i < mn.length; i++) expect(mn[i]!).toBeLessThanOrEqual(mx[i]!);
  });

  // Measured on these fixture nets (calibrated on the case input + autoCalibrationInputs' variants),
  // all net_ cases: structure max-abs 3.1-4.3 % of the output's max |value|, mean-abs 0.7-1.1 %;
  // texture 4.2-6.6 %, 0.9-1.3 % (dynamic int8: 2.5-3.9 %, 0.6-0.8 %). t40: 3.4 % / 5.7 %.
  it.each([
    ['texture', 'net_texture_t40'],
    ['structure', 'net_structure_t40'],
  ] as [NetKind, string][])('%s (%s): calibrates once per size, runs QLinearConv, within 8 percent of float32', async (kind, caseName) => {
    const { cfg, weights } = net(kind);
    const inputs = caseInputs(caseName);
    const ex = new OnnxExecutor({ threads: 1 });
    const f = await ex.createRunner(kind, cfg, weights);
    const q = (await ex.createRunner(kind, cfg, weights, { precision: 'int8-static' })) as OnnxRunner;
    expect(q.precision).toBe('int8-static');
    try {
      const a = await f.run(inputs);
      const b = await q.run(inputs);
      expect(q.calibrations).toBe(1);
      const again = await q.run(inputs);
      expect(q.calibrations).toBe(1); // the session (and its ranges) are cached per size
      expect(q.exports).toBe(1);
      expect(Array.from(again.data)).toEqual(Array.from(b.data));
      const e = errors(a.data, b.data);
      expect(e.relMax).toBeGreaterThan(0);
      expect(e.relMax).toBeLessThan(0.08);
      expect(e.relMean).toBeLessThan(0.02);

      const cal = q.calibration(shape)!;
      const bytes = exportOnnx(kind, cfg, weights, shape, { precision: 'int8-static', quant: { calibration: cal } });
      const ops = opTypes(bytes);
      expect(ops.filter((o) => o === 'QLinearConv').length).toBe(cal.length);
      expect(ops).toContain('QuantizeLinear');
      expect(ops).not.toContain('ConvInteger');
      expect(bytes.byteLength).toBeLessThan(exportOnnx(kind, cfg, weights, shape).byteLength);

      // another size: a second calibration and session
      const variants = autoCalibrationInputs(kind, inputs);
      expect(variants.length).toBe(5);
      expect(variants.every((i) => i.x.shape.join() === inputs.x.shape.join())).toBe(true);
      const other = syntheticCalibrationInputs(kind, cfg, { batch: 1, height: 16, width: 16 }, 100)[0]!;
      await q.run(other);
      expect(q.calibrations).toBe(2);
      expect(q.sessionCount).toBe(2);
    } finally {
      f.dispose();
      q.dispose();
    }
  });

  it('explicit calibrate(): no automatic calibration afterwards; the discriminator quantises too', async () => {
    const { cfg, weights } = net('discriminator');
    const q = (await new OnnxExecutor({ threads: 1, precision: 'int8-static' }).createRunner('discriminator', cfg, weights)) as OnnxRunner;
    const f = await new OnnxExecutor({ threads: 1 }).createRunner('discriminator', cfg, weights);
    try {
      const set = syntheticCalibrationInputs('discriminator', cfg, shape, 100);
      expect(set.length).toBe(3);
      const cal = await q.calibrate(set);
      expect(cal.length).toBeGreaterThan(0);
      expect(q.calibrations).toBe(1);
      const out = await q.run(set[1]!);
      expect(q.calibrations).toBe(1);
      const ref = await f.run(set[1]!);
      expect(out.shape).toEqual(ref.shape);
      expect(Math.abs(out.data[0]! - ref.data[0]!)).toBeLessThan(0.1 * Math.max(1, Math.abs(ref.data[0]!)));
    } finally {
      q.dispose();
      f.dispose();
    }
  });
});

describe('calibration inputs of networks with per-level tables', () => {
  it("never ask for a level past T (the 'x0' prediction tables end there)", () => {
    const shape = [1, 1, 4, 4];
    const x = { shape, data: new Float32Array(16).fill(0.3) };
    const inputs = { x, mu: { shape, data: new Float32Array(16) }, t: [40] };
    const free = autoCalibrationInputs('structure', inputs).map((v) => v.t[0]!);
    expect(Math.max(...free)).toBe(80);
    const capped = autoCalibrationInputs('structure', inputs, 50).map((v) => v.t[0]!);
    expect(Math.max(...capped)).toBe(50);
    expect(capped).toContain(1);
  });
});
