/**
 * `analyze` on fixture nets (issue 25): the structure-guided parity networks and an unguided
 * texture network, two photos, T = 10 at 32 px. The test recomputes the recorded numbers from an
 * independent run of the sampler (same pairs, same seeds) and reads the figure's numbers back from
 * the SVG: each line must carry the JSON's values and be drawn at their heights.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { analyze, meanGap, stripSteps, type Analysis, type StripCell } from '../src/eval/analyze.js';
import { writeAnalysis } from '../src/eval/analyze-plot.js';
import { regionPsnr, regionSsim } from '../src/eval/region-metrics.js';
import { loadEvalImage, planPairs } from '../src/eval/pairs.js';
import { FIXTURE } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import { writeSafetensors } from '../src/weights/safetensors.js';
import { writeModelJson } from '../src/model/checkpoints.js';
import { loadInpaintModel } from '../src/inpaint/index.js';
import { sample } from '../src/sampler/index.js';
import { IRSDE, SeededNoise } from '../src/sde/index.js';
import { structureOf } from '../src/structure/gray.js';
import type { NetRunner } from '../src/exec/types.js';
import { parseMethod } from '../src/cli/commands/analyze.js';
import { fixture } from './fixtures.js';

const NETS = fixture('parity/nets');
const SIZE = 32;
const root = mkdtempSync(join(tmpdir(), 'sd-analyze-'));
const images = join(root, 'images');
const plain = join(root, 'plain');
let res: Awaited<ReturnType<typeof analyze>>;
let paths: Awaited<ReturnType<typeof writeAnalysis>>;
const opts = () => ({ images, ratios: [[0.2, 0.35]] as [number, number][], count: 2, seed: 3, size: SIZE });

beforeAll(async () => {
  mkdirSync(images, { recursive: true });
  for (const [i, f] of [[0, 'a.png'], [1, 'b.png']] as const) {
    const raw = Buffer.alloc(40 * 40 * 3);
    for (let p = 0; p < 40 * 40; p++) {
      const x = p % 40, y = Math.floor(p / 40);
      raw[p * 3] = (x * 6 + i * 90) % 256;
      raw[p * 3 + 1] = y * 6;
      raw[p * 3 + 2] = ((x + y) % 8 < 4 ? 200 : 40) - i * 30;
    }
    await sharp(raw, { raw: { width: 40, height: 40, channels: 3 } }).png().toFile(join(images, f));
  }
  mkdirSync(plain, { recursive: true });
  writeSafetensors(join(plain, 'texture.safetensors'), initWeights('texture', { ...FIXTURE.texture, spade: false }, 4));
  writeModelJson(plain, { T: 10, structureKind: 'none' });
  res = await analyze({
    ...opts(),
    every: 1,
    methods: [
      { name: 'irsde', checkpoints: [plain] },
      { name: 'strd', checkpoints: [NETS], T: 10, sampler: 'official' },
    ],
  });
  paths = await writeAnalysis(res.analysis, res.strip, join(root, 'out'), res.stripInput);
}, 180_000);

describe('analyze', () => {
  it('records every step of both methods on both pairs, with the structure process only where there is one', () => {
    const [irsde, strd] = res.analysis.methods;
    expect(irsde!.sampler).toBe('irsde');
    expect(irsde!.structureKind).toBe('none');
    expect(strd!.structureKind).toBe('gray2edge');
    for (const m of [irsde!, strd!]) {
      expect(m.perPair).toHaveLength(2);
      expect(m.steps.map((s) => s.t)).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      expect(m.grid).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    }
    expect(irsde!.steps.every((s) => s.structure === null)).toBe(true);
    // official stage switch int(0.4·10) = 4: structure at t = 10 … 4
    expect(strd!.steps.filter((s) => s.structure !== null).map((s) => s.t)).toEqual([10, 9, 8, 7, 6, 5, 4]);
  });

  it('the recorded numbers equal an independent run of the sampler (same pairs and seeds)', async () => {
    const plan = await planPairs(opts());
    const { model, runners } = await loadInpaintModel({ checkpoints: [plain] });
    const sde = new IRSDE({ T: model.T });
    for (let pi = 0; pi < plan.pairs.length; pi++) {
      const pair = plan.pairs[pi]!;
      const img = await loadEvalImage(pair.imagePath, SIZE);
      const HW = SIZE * SIZE;
      const rgb = new Float32Array(3 * HW);
      for (let p = 0; p < HW; p++) for (let c = 0; c < 3; c++) rgb[c * HW + p] = img.data[p * 3 + c]! / 255;
      const mask = Float32Array.from(pair.holes, (h) => 1 - h);
      const known = Uint8Array.from(pair.holes, (h) => 1 - h);
      const st = structureOf(rgb, SIZE, SIZE, 2);
      const x0s: Float32Array[] = [];
      const states: Float32Array[] = [];
      const texture: NetRunner = {
        kind: 'texture',
        dispose() {},
        async run(inp) {
          const out = await runners.texture.run(inp);
          // x̂0 = μ + (x − μ − σ̄_t ε̂)/e^{−θ̄_t dt}, clamped to [0, 1]
          const t = inp.t[0]!;
          const e = sde.meanFactor(t), sb = sde.sigmaBar(t);
          x0s.push(Float32Array.from(inp.x.data, (v, i) => Math.min(1, Math.max(0, inp.mu!.data[i]! + (v - inp.mu!.data[i]! - sb * out.data[i]!) / e))));
          return out;
        },
      };
      const shape = (c: number) => [1, c, SIZE, SIZE];
      await sample({
        nets: { texture },
        sde,
        inputs: { image: { shape: shape(3), data: rgb }, mask: { shape: shape(1), data: mask }, gray: { shape: shape(1), data: st.gray }, edge: { shape: shape(1), data: st.edge } },
        noise: new SeededNoise(pair.seed),
        options: { variant: 'irsde', fill: model.fill, onState: (_t, y) => states.push(Float32Array.from(y)) },
      });
      const rec = res.analysis.methods[0]!.perPair[pi]!;
      expect(rec).toHaveLength(x0s.length);
      for (let k = 0; k < rec.length; k++) {
        // PSNR by hand: 10·log10(1/MSE) over the hole's values
        let se = 0, n = 0;
        for (let c = 0; c < 3; c++) for (let p = 0; p < HW; p++) if (pair.holes[p]) { se += (x0s[k]![c * HW + p]! - rgb[c * HW + p]!) ** 2; n++; }
        expect(rec[k]!.texture.x0.holePsnr).toBeCloseTo(10 * Math.log10(n / se), 3);
        expect(rec[k]!.texture.state.knownPsnr).toBeCloseTo(regionPsnr(states[k]!, rgb, known, 3), 9);
        expect(rec[k]!.texture.x0.holeSsim).toBeCloseTo(regionSsim(x0s[k]!, rgb, pair.holes, 3, SIZE, SIZE), 6);
      }
    }
  }, 120_000);

  it('the means over pairs and the gap follow from the per-pair records', () => {
    for (const m of res.analysis.methods) {
      for (let k = 0; k < m.steps.length; k++) {
        const vals = m.perPair.map((p) => p[k]!.texture.x0.holePsnr);
        expect(m.steps[k]!.texture.x0.holePsnr).toBeCloseTo(vals.reduce((a, b) => a + b, 0) / vals.length, 9);
      }
      const gaps = m.steps.map((s) => s.texture.x0.knownPsnr - s.texture.x0.holePsnr);
      expect(m.meanGap).toBeCloseTo(gaps.reduce((a, b) => a + b, 0) / gaps.length, 9);
      expect(meanGap(m.steps)).toBe(m.meanGap);
    }
  });

  it('the figure carries the JSON numbers, drawn at their heights, and is written as SVG and PNG', async () => {
    const svg = readFileSync(paths.svg, 'utf8');
    const json = JSON.parse(readFileSync(paths.json, 'utf8')) as Analysis;
    const lines = [...svg.matchAll(/<polyline data-method="([^"]+)" data-process="(\w+)" data-series="([\w-]+)" data-t="([^"]*)" data-values="([^"]*)" points="([^"]*)"/g)];
    // texture: 4 series per method; structure: 4 for strd only
    expect(lines.length).toBe(4 + 4 + 4);
    const heights: [number, number][] = [];
    for (const [, method, proc, series, ts, values, points] of lines) {
      const m = json.methods.find((x) => x.name === method)!;
      const steps = proc === 'texture' ? m.steps : m.steps.filter((s) => s.structure);
      const [of, region] = series!.split('-') as ['x0' | 'state', 'hole' | 'known'];
      const want = steps.map((s) => (proc === 'texture' ? s.texture : s.structure!)[of][region === 'hole' ? 'holePsnr' : 'knownPsnr']);
      // x̂0 at the level it is predicted at, the state at the level it reaches
      expect(ts!.split(',').map(Number)).toEqual(steps.map((s) => (of === 'x0' ? s.t : s.next)));
      expect(values!.split(',').map(Number)).toEqual(want.map((v) => Number(v.toFixed(4))));
      const pys = points!.split(' ').map((p) => Number(p.split(',')[1]));
      pys.forEach((y, i) => heights.push([want[i]!, y]));
    }
    // one linear map from dB to y for the whole figure (same axis in every panel row): fit on two points, check all
    const panelY = (y: number) => ((y - 44) % 240);
    const sorted = [...heights].sort((p, q) => p[0] - q[0]);
    const [a, b] = [sorted[0]!, sorted[sorted.length - 1]!];
    expect(b[0] - a[0]).toBeGreaterThan(1);
    const slope = (panelY(b[1]) - panelY(a[1])) / (b[0] - a[0]);
    expect(slope).toBeLessThan(0); // higher PSNR is drawn higher
    // points are written to 0.1 px
    for (const [v, y] of heights) expect(Math.abs(panelY(y) - (panelY(a[1]) + slope * (v - a[0])))).toBeLessThan(0.3);
    // the shaded gap of each texture panel
    expect((svg.match(/class="gap"/g) ?? []).length).toBeGreaterThanOrEqual(2);
    expect(svg).toContain(`irsde — texture (gap ${json.methods[0]!.meanGap.toFixed(2)} dB)`);
    const meta = await sharp(paths.png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(600);
    expect(existsSync(paths.stripPng)).toBe(true);
  });

  it('the strip shows the first pair at the levels nearest T, 3T/4, T/2, T/4, 0', async () => {
    expect(stripSteps([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0], [10, 8, 5, 3, 0])).toEqual([0, 1, 4, 6, 9]);
    const levels = res.strip.filter((c) => c.method === 'strd').map((c) => c.level);
    expect(levels).toEqual([9, 8, 5, 3, 0]);
    for (const c of res.strip) expect(c.state.every((v) => v >= 0 && v <= 1)).toBe(true);
    const meta = await sharp(paths.stripPng).metadata();
    // the input row, then a state and an x̂0 row per method
    expect(meta.height).toBeGreaterThan(5 * 96);
  });

  it('method specs: NAME=DIRS@SAMPLER, bad ones refused with one line', () => {
    expect(parseMethod(`a=${plain}@repaint`)).toMatchObject({ name: 'a', checkpoints: [plain], sampler: 'repaint' });
    expect(parseMethod(plain).name).toBe('plain');
    expect(() => parseMethod(`a=${plain}@fast`)).toThrow(/the sampler must be one of official, improved, no-resampling, no-discriminator, one-call, split, irsde, repaint/);
    expect(() => parseMethod(`a=${join(root, 'nope')}`)).toThrow(/model folder not found/);
  });

  it('method specs: @SAMPLER,GUIDE, @GUIDE alone; a guide or sampler twice is refused', () => {
    expect(parseMethod(`a=${NETS}@official,oracle`)).toMatchObject({ name: 'a', sampler: 'official', structure: 'oracle' });
    expect(parseMethod(`${NETS}@oracle`)).toMatchObject({ name: 'nets-oracle', sampler: undefined, structure: 'oracle' });
    expect(parseMethod(`${NETS}@fill,no-resampling`)).toMatchObject({ name: 'nets-no-resampling-fill', sampler: 'no-resampling', structure: 'fill' });
    expect(parseMethod(`a=${NETS}@official`).structure).toBeUndefined();
    expect(() => parseMethod(`a=${NETS}@oracle,fill`)).toThrow(/the structure guide one of network, fill, oracle, at most one of each after @ \(got "fill"\)$/);
  });
});

describe('analyze with the oracle structure guide', () => {
  it('the oracle method\'s structure x̂0 is the photo\'s own gray in the hole at every early step; the network\'s is not', async () => {
    const r = await analyze({
      ...opts(),
      count: 1,
      methods: [
        { name: 'net', checkpoints: [NETS], T: 10, sampler: 'no-resampling' },
        { name: 'oracle', checkpoints: [NETS], T: 10, sampler: 'no-resampling', structure: 'oracle' },
      ],
    });
    const [net, oracle] = r.analysis.methods;
    expect(net!.structureGuide).toBe('network');
    expect(oracle!.structureGuide).toBe('oracle');
    expect(oracle!.label).toContain('gray2edge structure, oracle guide');
    const early = (m: typeof net) => m!.steps.filter((s) => s.structure !== null);
    expect(early(oracle).map((s) => s.t)).toEqual([10, 9, 8, 7, 6, 5, 4]);
    // x̂0 = the ground truth's gray up to float rounding (the PSNR of identical arrays is +∞)
    for (const s of early(oracle)) expect(s.structure!.x0.holePsnr).toBeGreaterThan(80);
    for (const s of early(net)) expect(s.structure!.x0.holePsnr).toBeLessThan(40);
    // and the texture it guides is another
    expect(oracle!.steps.at(-1)!.texture.state.holePsnr).not.toBe(net!.steps.at(-1)!.texture.state.holePsnr);
  }, 180_000);
});
