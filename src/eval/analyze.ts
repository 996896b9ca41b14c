/**
 * The semantic-discrepancy analysis (the paper's motivating figure, issue 25): along the denoising
 * process, how well the hole's and the known region's content match the ground truth — PSNR and
 * SSIM per region of the state and of the prediction x̂0, for the texture and the structure
 * process — for each method (a model folder and a sampler) on the same (photo, mask) pairs and
 * seeds. The gap between the known-region and the hole curves is the discrepancy.
 *
 * Recording wraps the networks (each call's input and ε̂ give x̂0) and the sampler's `onState`;
 * the sampler itself is untouched. x̂0 of a step is that of its first network call of each process
 * (the main step's prediction from the step's input state; resampling candidates come after it).
 */
import type { NetInputs, NetKind, NetRunner } from '../exec/types.js';
import type { F32Tensor } from '../util/tensor.js';
import type { DiagnosticStructureGuide, SamplerVariant, Solver, Spacing } from '../options.js';
import { acquireModel } from '../inpaint/model-cache.js';
import { samplerOf } from '../inpaint/index.js';
import { samplingOf } from '../inpaint/sampling.js';
import { sample, textureOnly } from '../sampler/strdiffusion.js';
import { IRSDE } from '../sde/irsde.js';
import { SeededNoise } from '../util/noise.js';
import { structureOf } from '../structure/gray.js';
import { structureEnds, type TextureGuideKind } from '../structure/kinds.js';
import { guideStructureRunner, parseDiagnosticStructureGuide, prepareGuide } from '../sampler/fill-structure.js';
import type { RatioRange } from '../data/masks.js';
import { loadEvalImage, planPairs } from './pairs.js';
import { regionScores, type RegionScores } from './region-metrics.js';

export interface AnalyzeMethodSpec {
  /** id in the figure and the JSON (letters, digits, - and _) */
  name: string;
  checkpoints: string[];
  /** default: the model's (irsde for a texture-only model) */
  sampler?: SamplerVariant;
  /** the texture network's structure guide (default: the model's, else network); `oracle` guides
   * by the photo's own structure under the hole: the discrepancy with a perfect structure network */
  structure?: DiagnosticStructureGuide;
  T?: number;
}

export interface AnalyzeOptions {
  images: string;
  /** masks folder (white = hole); default: generated masks */
  masks?: string;
  ratios?: readonly RatioRange[];
  /** pairs per hole-ratio bucket (default 1) */
  count?: number;
  seed?: number;
  size: number;
  methods: AnalyzeMethodSpec[];
  /** record every k-th step (and always the last; default 1) */
  every?: number;
  /** levels shown in the image strip (default: 5 levels from T to 0) */
  stripLevels?: number[];
  /** the same for every method (default: each model's own) */
  sampling?: { solver?: Solver; steps?: number; spacing?: Spacing };
  onProgress?: (info: string) => void;
}

/** Scores of the state (at the step's end level) and of the step's x̂0. */
export interface ProcessScores {
  state: RegionScores;
  x0: RegionScores;
}

export interface StepRecord {
  /** position on the sampling grid */
  index: number;
  /** the level the step denoises from (x̂0 is predicted at it) */
  t: number;
  /** the level the state reaches */
  next: number;
  texture: ProcessScores;
  /** null in the late stage and for texture-only samplers */
  structure: ProcessScores | null;
}

export interface MethodAnalysis {
  name: string;
  label: string;
  checkpoints: string[];
  sampler: SamplerVariant;
  structureKind: TextureGuideKind;
  /** the guide that ran (moot for texture-only samplers) */
  structureGuide: DiagnosticStructureGuide;
  T: number;
  grid: number[];
  /** means over the pairs, per recorded step */
  steps: StepRecord[];
  /** each pair's records (same steps) */
  perPair: StepRecord[][];
  /** mean over the recorded steps of known − hole PSNR of the texture x̂0 (dB): the discrepancy */
  meanGap: number;
}

export interface Analysis {
  settings: Record<string, unknown>;
  pairs: { image: string; mask: string; holeRatio: number; seed: number }[];
  methods: MethodAnalysis[];
}

/** States of the first pair at the strip levels: for the strip figure (not in the JSON). */
export interface StripCell {
  method: string;
  /** the level shown (the state's level; x̂0 is predicted one grid step above) */
  level: number;
  state: Float32Array;
  x0: Float32Array;
}

/** A runner that reports each call's input and output; it does not own the runner it wraps. */
function recording(r: NetRunner, sink: (inp: NetInputs, out: F32Tensor) => void): NetRunner {
  return {
    kind: r.kind,
    dispose() {},
    async run(inp) {
      const out = await r.run(inp);
      sink(inp, out);
      return out;
    },
  };
}

const NAME = /^[A-Za-z0-9_-]+$/;

/** Mean of each score over the pairs' records (records of one method have the same steps). */
function meanRecords(perPair: StepRecord[][]): StepRecord[] {
  const first = perPair[0] ?? [];
  const avg = (xs: number[]) => {
    const f = xs.filter(Number.isFinite);
    return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
  };
  return first.map((r0, k) => {
    const at = perPair.map((p) => p[k]!);
    const m = (get: (r: StepRecord) => RegionScores | undefined): RegionScores => ({
      holePsnr: avg(at.map((r) => get(r)?.holePsnr ?? NaN)),
      knownPsnr: avg(at.map((r) => get(r)?.knownPsnr ?? NaN)),
      holeSsim: avg(at.map((r) => get(r)?.holeSsim ?? NaN)),
      knownSsim: avg(at.map((r) => get(r)?.knownSsim ?? NaN)),
    });
    return {
      index: r0.index,
      t: r0.t,
      next: r0.next,
      texture: { state: m((r) => r.texture.state), x0: m((r) => r.texture.x0) },
      structure: r0.structure ? { state: m((r) => r.structure?.state), x0: m((r) => r.structure?.x0) } : null,
    };
  });
}

/** Mean known − hole PSNR of the texture x̂0 over the steps (NaN-free steps only). */
export function meanGap(steps: readonly StepRecord[]): number {
  const gaps = steps.map((s) => s.texture.x0.knownPsnr - s.texture.x0.holePsnr).filter(Number.isFinite);
  return gaps.length ? gaps.reduce((a, b) => a + b, 0) / gaps.length : NaN;
}

/** The grid steps whose end level is nearest each wanted level (each step once). */
export function stripSteps(grid: readonly number[], levels: readonly number[]): number[] {
  const ends = grid.slice(1);
  const picked = new Set<number>();
  for (const l of levels) {
    let best = 0;
    for (let i = 1; i < ends.length; i++) if (Math.abs(ends[i]! - l) < Math.abs(ends[best]! - l)) best = i;
    picked.add(best);
  }
  return [...picked].sort((a, b) => a - b);
}

/** The first pair's photo and hole, shown with the strip. */
export interface StripInput {
  rgb: Float32Array;
  holes: Uint8Array;
}

export async function analyze(o: AnalyzeOptions): Promise<{ analysis: Analysis; strip: StripCell[]; stripInput: StripInput }> {
  if (o.methods.length === 0) throw new Error('analyze: no model folder given');
  const names = new Set<string>();
  for (const m of o.methods) {
    if (!NAME.test(m.name)) throw new Error(`analyze: method name "${m.name}" must use letters, digits, - and _ only`);
    if (names.has(m.name)) throw new Error(`analyze: method "${m.name}" is listed twice`);
    names.add(m.name);
  }
  const every = o.every ?? 1;
  if (!Number.isInteger(every) || every < 1) throw new Error(`analyze: every must be a positive integer (got ${every})`);
  const size = o.size;
  const plan = await planPairs({ images: o.images, masks: o.masks, ratios: o.ratios, count: o.count ?? 1, seed: o.seed ?? 0, size });
  if (plan.pairs.length === 0) throw new Error('analyze: no (image, mask) pair');
  const HW = size * size;
  const shape = (c: number) => [1, c, size, size];
  // every pair's inputs once: the same for every method
  const inputs = await Promise.all(
    plan.pairs.map(async (p) => {
      const img = await loadEvalImage(p.imagePath, size);
      const rgb = new Float32Array(3 * HW);
      for (let i = 0; i < HW; i++) for (let c = 0; c < 3; c++) rgb[c * HW + i] = img.data[i * 3 + c]! / 255;
      const mask = Float32Array.from(p.holes, (h) => (h ? 0 : 1));
      const known = Uint8Array.from(p.holes, (h) => (h ? 0 : 1));
      return { pair: p, rgb, mask, known, ...structureOf(rgb, size, size, 2) };
    }),
  );
  const methods: MethodAnalysis[] = [];
  const strip: StripCell[] = [];
  for (const spec of o.methods) {
    const ref = acquireModel({ checkpoints: spec.checkpoints, T: spec.T }, { cache: false });
    try {
      const { model, runners } = await ref.loaded;
      const variant = samplerOf(spec.sampler, model);
      const sampling = samplingOf(o.sampling ?? {}, model.meta, model.T);
      const sde = new IRSDE({ T: model.T });
      const kind = model.structureKind;
      const guide = parseDiagnosticStructureGuide(spec.structure ?? (model.meta.structureGuide as string | undefined) ?? 'network', `analyze: method ${spec.name}: the structure guide`)!;
      await prepareGuide(guide);
      const perPair: StepRecord[][] = [];
      // the first pair's clamped states and x̂0 at every step, for the strip
      const stripCandidates: { i: number; next: number; state: Float32Array; x0: Float32Array }[] = [];
      let grid: number[] = [];
      for (let pi = 0; pi < inputs.length; pi++) {
        const inp = inputs[pi]!;
        o.onProgress?.(`${spec.name}: ${inp.pair.image}`);
        const sx0 = kind === 'none' ? null : structureEnds(kind, inp.gray, inp.edge).x0;
        // the first call of each process in the current step
        let tex: { inp: NetInputs; out: F32Tensor } | null = null;
        let str: { inp: NetInputs; out: F32Tensor } | null = null;
        const nets: Partial<Record<NetKind, NetRunner>> = {
          texture: recording(runners.texture, (i, out) => (tex ??= { inp: i, out })),
        };
        // a guide other than network replaces the structure network for this pair (as inpaint does per window)
        const structureNet = guideStructureRunner(guide, { sde, kind, variant, gray: { shape: shape(1), data: inp.gray }, edge: { shape: shape(1), data: inp.edge }, mask: { shape: shape(1), data: inp.mask } }) ?? runners.structure;
        if (structureNet) nets.structure = recording(structureNet, (i, out) => (str ??= { inp: i, out }));
        if (runners.discriminator) nets.discriminator = runners.discriminator;
        const x0Of = (c: { inp: NetInputs; out: F32Tensor }) => sde.predictX0(c.inp.x.data, c.inp.mu!.data, c.out.data, c.inp.t[0]!, c.inp.x.shape, [0, 1]);
        const records: StepRecord[] = [];
        let index = 0;
        let stepsTotal = 0;
        await sample({
          nets: nets as { texture: NetRunner },
          sde,
          inputs: { image: { shape: shape(3), data: inp.rgb }, mask: { shape: shape(1), data: inp.mask }, gray: { shape: shape(1), data: inp.gray }, edge: { shape: shape(1), data: inp.edge } },
          noise: new SeededNoise(inp.pair.seed),
          options: {
            variant,
            ...sampling,
            fill: model.fill,
            ...(kind !== 'none' ? { structureKind: kind } : {}),
            onStep: (info) => {
              if (index === 0) {
                grid = [info.t];
                stepsTotal = sampling.steps;
              }
              grid.push(info.next);
            },
            onState: (t, y, x) => {
              const i = index++;
              const next = grid[grid.length - 1]!;
              const last = i === stepsTotal - 1;
              if (i % every === 0 || last) {
                if (!tex) throw new Error('analyze: a step made no texture network call');
                const tx0 = x0Of(tex);
                const rec: StepRecord = {
                  index: i,
                  t,
                  next,
                  texture: {
                    state: regionScores(y, inp.rgb, inp.pair.holes, inp.known, 3, size, size),
                    x0: regionScores(tx0, inp.rgb, inp.pair.holes, inp.known, 3, size, size),
                  },
                  structure: null,
                };
                if (x && str && sx0) {
                  rec.structure = {
                    state: regionScores(x, sx0, inp.pair.holes, inp.known, 1, size, size),
                    x0: regionScores(x0Of(str), sx0, inp.pair.holes, inp.known, 1, size, size),
                  };
                }
                records.push(rec);
              }
              if (pi === 0) stripCandidates.push({ i, next, state: Float32Array.from(y, (v) => Math.min(1, Math.max(0, v))), x0: tex ? x0Of(tex) : new Float32Array(y.length) });
              tex = null;
              str = null;
            },
          },
        });
        perPair.push(records);
      }
      // the strip: the first pair's states nearest the wanted levels
      const wanted = o.stripLevels ?? Array.from({ length: 5 }, (_, k) => Math.round((model.T * (4 - k)) / 4));
      for (const i of stripSteps(grid, wanted)) {
        const c = stripCandidates.find((s) => s.i === i);
        if (c) strip.push({ method: spec.name, level: c.next, state: c.state, x0: c.x0 });
      }
      const steps = meanRecords(perPair);
      methods.push({
        name: spec.name,
        label: `${spec.name}: ${variant} sampler, ${kind === 'none' || textureOnly(variant) ? 'no structure' : `${kind} structure${guide === 'network' ? '' : `, ${guide} guide`}`} (${spec.checkpoints.join(', ')})`,
        checkpoints: spec.checkpoints,
        sampler: variant,
        structureKind: kind,
        structureGuide: guide,
        T: model.T,
        grid,
        steps,
        perPair,
        meanGap: meanGap(steps),
      });
    } finally {
      await ref.release();
    }
  }
  return {
    analysis: {
      settings: { images: o.images, masks: o.masks ?? 'generated', count: o.count ?? 1, seed: o.seed ?? 0, size, every, sampling: o.sampling ?? '(model defaults)' },
      pairs: plan.pairs.map((p) => ({ image: p.image, mask: p.mask, holeRatio: p.holeRatio, seed: p.seed })),
      methods,
    },
    strip,
    stripInput: { rgb: inputs[0]!.rgb, holes: inputs[0]!.pair.holes },
  };
}
