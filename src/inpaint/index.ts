/**
 * `inpaint(image, mask, options)`: the one entry point for users. Loads (and caches) the model,
 * plans the windows over the holes (tiling.ts), runs the StrDiffusion sampler in each and pastes
 * only hole pixels back into the original image.
 */
import type { ImageInput, RasterImage } from '../image/io.js';
import { checkMegapixels, DEFAULT_MAX_MEGAPIXELS, loadImage, validateRaster } from '../image/io.js';
import { holeCount, loadHoles, type MaskOptions } from './mask.js';
import { pastePixels, windowInputs, type WindowPlan } from './window.js';
import { samplingOf } from './sampling.js';
import { planWindows, type PlannedWindow, type WindowKind } from './tiling.js';
import { MAX_SIZE, MAX_T, MIN_SIZE, type Model, type ModelMeta } from '../model/checkpoints.js';
import type { ExecutorName } from '../exec/registry.js';
import { acquireModel, type LoadedModel, type ModelRef } from './model-cache.js';
import type { NetKind, NetRunner } from '../exec/types.js';
import { IRSDE } from '../sde/index.js';
import { SeededNoise, type NoiseSource } from '../util/noise.js';
import { structureOf } from '../structure/index.js';
import { sample, type SamplerOptions, type SamplerVariant, type StepInfo, type StepRule } from '../sampler/index.js';
import { fillStructureRunner, parseStructureGuide, type StructureGuide } from '../sampler/fill-structure.js';
import { prepareFill } from '../sde/fill.js';
import { progressOf, type InpaintProgress } from './progress.js';
import { describeValue, StrDiffusionError } from '../util/errors.js';
import { isStepRule, resamplingProblem, SAMPLER_VARIANTS, STEP_RULES, textureOnly } from '../sampler/strdiffusion.js';
import { TEXTURE_VARIANTS } from '../options.js';
import { STRUCTURE_GUIDES } from '../sampler/fill-structure.js';
import { EXECUTOR_NAMES } from '../exec/registry.js';
import { SPACINGS, PRECISIONS, SOLVERS, type Spacing, type Precision, type Solver } from '../options.js';

export interface InpaintOptions extends MaskOptions {
  /** model folder(s); default: the bundled model */
  checkpoints?: string | string[];
  /** diffusion length; must match the checkpoint (default: its model.json) */
  T?: number;
  /** same seed -> same output, bit for bit, on the same machine */
  seed?: number;
  sampler?: SamplerVariant;
  /** how a state moves one level per network call: 'sde' (official) or 'posterior' (clamped x̂0;
   * see SamplerOptions.stepRule). Default: the model's `stepRule` in model.json, else 'sde'. */
  stepRule?: StepRule;
  /** sampling steps N (network-call rounds; default: the model's `steps` in model.json, else T = every level) */
  steps?: number;
  /** how one network call moves a state between grid levels (sampler/solvers/; wins over stepRule).
   * Default: the model's `solver`, else its `stepRule`, else 'sde' (the official step, every level only). */
  solver?: Solver;
  /** how the sampling grid spaces its levels: 'uniform' (default), 'quadratic' or 'logsnr' */
  spacing?: Spacing;
  /** resampling hyper-parameters etc. (official defaults) */
  samplerOptions?: Partial<SamplerOptions>;
  /** the texture network's structure guide: 'network' (default: the structure diffusion) or 'fill'
   * (the analytic structure posterior towards the Telea-filled grayscale; sampler/fill-structure.ts).
   * Default: the model's `structureGuide` in model.json, else 'network'. */
  structure?: StructureGuide;
  /** model window size (default: the model's `size` in model.json, else 256, the official training size) */
  size?: number;
  /** where the networks run: 'onnx' (onnxruntime, the only executor; STRDIFFUSION_EXECUTOR sets the default) */
  executor?: ExecutorName;
  /** onnx executor only: 'int8' runs dynamically quantised convolutions, 'int8-static' QLinearConv
   * calibrated on the first step's inputs (default 'fp32') */
  precision?: Precision;
  /** refuse an image or mask with more megapixels than this, from the file's header before decoding
   * (default DEFAULT_MAX_MEGAPIXELS = 50; the CLI's --max-megapixels) */
  maxMegapixels?: number;
  /** after every network step: the same fields as the HTTP API's `progress` event (the sampler's
   * full per-step record is `samplerOptions.onStep`) */
  onProgress?: (progress: InpaintProgress) => void;
  /** intermediate states (texture y [1,3,s,s], structure x [1,1,s,s] or null in the late stage) of
   * the window being sampled (`window`: its 0-based index of `count`, plan and kind) */
  onState?: (t: number, y: Float32Array, x: Float32Array | null, window: { index: number; count: number; plan: WindowPlan; kind: WindowKind }) => void;
  /** for tests: inject the noise source */
  noise?: NoiseSource;
  /** print warnings (default console.warn) */
  warn?: (msg: string) => void;
}

export interface InpaintResult {
  image: RasterImage;
  /** the (first) model-size window sampled: input, mask (1 known) and output [3,s,s]; null without a hole */
  window: { plan: WindowPlan; rgb: Float32Array; mask: Float32Array; out: Float32Array } | null;
  /** every window in sampling order: its plan (scale sw / w: 1 except for a `scaled` region's
   * window), kind (inpaint/tiling.ts) and how many hole pixels it wrote */
  windows: { plan: WindowPlan; kind: WindowKind; pixels: number }[];
  holePixels: number;
  seconds: number;
}

// the loaded models: shared by handles and calls, the one-shot cache bounded (model-cache.ts)
export { loadInpaintModel, releaseInpaintModel, type LoadedModel } from './model-cache.js';

/**
 * Checks of the public entry's arguments: JavaScript callers (and `as any`) can pass anything, and
 * a wrong type must fail here with one line naming the argument, not as a TypeError deep inside
 * or, worse, as a silently misread input (a 16-bit header over 8-bit data, a NaN seed).
 */
const bad = (code: 'BAD_INPUT' | 'BAD_OPTION', msg: string) => new StrDiffusionError(code, msg);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** A path, or a raw raster that agrees with its own header (image/io.ts: validateRaster). */
function checkImageArgument(v: unknown, name: 'image' | 'mask'): void {
  if (typeof v === 'string' && v !== '') return;
  if (!isObject(v)) throw bad('BAD_INPUT', `${name} must be a file path or a RasterImage {width, height, channels, bitDepth, data} (got ${describeValue(v)})`);
  validateRaster(v, name);
}

type OptionCheck = (v: unknown) => string | null;
const SAMPLER_NUMBERS = ['uMax', 'uMin', 'jump', 're', 'stageSwitch', 'startAt'];
const oneOf = (allowed: readonly string[]): OptionCheck => (v) => ((allowed as readonly unknown[]).includes(v) ? null : `must be one of ${allowed.join(', ')}`);
const intAtLeast = (min: number): OptionCheck => (v) => (isInt(v) && v >= min ? null : `must be an integer >= ${min}`);
const isFunction: OptionCheck = (v) => (typeof v === 'function' ? null : 'must be a function');
const isBoolean: OptionCheck = (v) => (typeof v === 'boolean' ? null : 'must be true or false');
const isPath = (v: unknown) => typeof v === 'string' && v !== '';

/** One check per option; `satisfies` makes a new InpaintOptions field without a check a type error. */
const OPTION_CHECKS = {
  checkpoints: (v) => (isPath(v) || (Array.isArray(v) && v.every(isPath)) ? null : 'must be a folder path or an array of folder paths'),
  T: intAtLeast(2),
  seed: (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? null : 'must be a non-negative safe integer'),
  sampler: oneOf(SAMPLER_VARIANTS),
  stepRule: (v) => (isStepRule(v) ? null : `must be one of ${STEP_RULES.join(', ')}`),
  steps: intAtLeast(1),
  solver: oneOf(SOLVERS),
  spacing: oneOf(SPACINGS),
  samplerOptions: (v) => {
    if (!isObject(v)) return 'must be an object';
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      if (SAMPLER_NUMBERS.includes(k) && !(typeof x === 'number' && Number.isFinite(x))) return `.${k} must be a finite number (got ${describeValue(x)})`;
      if ((k === 'onStep' || k === 'onState') && typeof x !== 'function') return `.${k} must be a function (got ${describeValue(x)})`;
    }
    // bounded: uMax: 1e9 would run a billion network calls per step
    const resampling = resamplingProblem(v, MAX_T, 'the largest T');
    if (resampling !== null) return `.${resampling} (got ${describeValue(v[resampling.split(' ')[0]!])})`;
    return null;
  },
  structure: oneOf(STRUCTURE_GUIDES),
  size: (v) => (isInt(v) && v >= MIN_SIZE && v <= MAX_SIZE ? null : `must be an integer from ${MIN_SIZE} to ${MAX_SIZE}`),
  executor: oneOf(EXECUTOR_NAMES),
  precision: oneOf(PRECISIONS),
  onProgress: isFunction,
  onState: isFunction,
  noise: (v) => (isObject(v) && typeof v.normal === 'function' ? null : 'must be an object with a normal(shape) method (a NoiseSource)'),
  warn: isFunction,
  invertMask: isBoolean,
  resizeMask: isBoolean,
  maxMegapixels: (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'must be a positive number of megapixels'),
} satisfies Record<keyof InpaintOptions, OptionCheck>;

/** Misspellings worth a hint: the CLI's names of library options. */
const OPTION_HINTS: Record<string, string> = { iterations: 'sampling steps are options.steps, the diffusion length options.T', checkpoint: 'did you mean options.checkpoints?' };

/**
 * The options as one plain object of their own enumerable properties, each read once (a getter is
 * called once: the value checked is the value used). An inherited enumerable property is refused:
 * it would be used (options.seed finds it) without being checked. Non-enumerable ones (a class's
 * methods) are not options.
 */
export function ownOptions<T extends object>(options: T): T {
  for (const key in options) {
    if (!Object.hasOwn(options, key)) throw bad('BAD_OPTION', `options.${key} is inherited from the options object's prototype: pass the options as own properties (e.g. { ...defaults, ${key}: … })`);
  }
  return { ...options };
}

function checkOptions(options: unknown): InpaintOptions {
  if (options === undefined) return {};
  if (!isObject(options)) throw bad('BAD_OPTION', `options must be an object (got ${describeValue(options)})`);
  const own = ownOptions(options);
  for (const [key, v] of Object.entries(own)) {
    const check = (OPTION_CHECKS as Record<string, OptionCheck>)[key];
    if (!Object.hasOwn(OPTION_CHECKS, key) || !check) {
      throw bad('BAD_OPTION', `options.${key} is not an option (${OPTION_HINTS[key] ?? `options are: ${Object.keys(OPTION_CHECKS).join(', ')}`})`);
    }
    if (v === undefined) continue; // not given
    const problem = check(v);
    if (problem !== null) throw bad('BAD_OPTION', problem.startsWith('.') ? `options.${key}${problem}` : `options.${key} ${problem} (got ${describeValue(v)})`);
  }
  return own as InpaintOptions;
}

export { samplingOf } from './sampling.js';

/**
 * Inpaint the holes of `image` marked in `mask`. The model comes from `held` (a reference the
 * caller holds, e.g. a loadModel() handle's), else from the one-shot cache, which keeps the models
 * of the last MAX_CACHED_MODELS (2) distinct folder/T/executor/precision uses and releases older
 * ones. Either way the call holds its model until it ends: no dispose() or cache eviction
 * releases the sessions of a running call.
 */
export async function inpaint(image: ImageInput, mask: ImageInput, options: InpaintOptions = {}, held?: ModelRef): Promise<InpaintResult> {
  let ref: ModelRef | undefined = held?.share();
  try {
    return await runInpaint(image, mask, options, async (o) => (ref ??= acquireModel(o, { cache: true })).loaded);
  } finally {
    await ref?.release();
  }
}

async function runInpaint(image: ImageInput, mask: ImageInput, options: InpaintOptions, useModel: (o: InpaintOptions) => Promise<LoadedModel>): Promise<InpaintResult> {
  checkImageArgument(image, 'image');
  checkImageArgument(mask, 'mask');
  options = checkOptions(options);
  const t0 = performance.now();
  const warn = options.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  // the pixel limit is checked from the header, before a file is decoded; in-memory images are held to it too
  const maxMegapixels = options.maxMegapixels ?? DEFAULT_MAX_MEGAPIXELS;
  const img = await loadImage(image, 'image', { maxMegapixels });
  if (typeof image !== 'string') checkMegapixels(img.width, img.height, 'image', maxMegapixels);
  const maskImg = await loadImage(mask, 'mask', { maxMegapixels });
  if (typeof mask !== 'string') checkMegapixels(maskImg.width, maskImg.height, 'mask', maxMegapixels);
  const holes = await loadHoles(maskImg, img.width, img.height, options);
  const nHoles = holeCount(holes);
  if (nHoles === 0) {
    warn('the mask has no hole: nothing to inpaint, the output equals the input');
    return { image: { ...img, data: img.data.slice() }, window: null, windows: [], holePixels: 0, seconds: (performance.now() - t0) / 1000 };
  }
  if (nHoles === holes.length) throw bad('BAD_INPUT', 'the mask covers the whole image: there is no known pixel to inpaint from');
  const { model, runners } = await useModel(options);
  const size = options.size ?? model.size ?? 256;
  const sampling = samplingOf(options, model.meta, model.T);
  const steps = sampling.steps;
  const W = img.width;
  const H = img.height;
  // the holes at the photo's own resolution: model-size windows at scale 1, a scaled window only
  // for a region no window can see at scale 1 (tiling.ts explains the layout, order and writing)
  const layout = planWindows(holes, W, H, size);
  const scaled = layout.windows.filter((w) => w.kind === 'scaled');
  if (scaled.length > 0) {
    const what = (w: PlannedWindow) => `${w.plan.w}x${w.plan.h} px at ${w.plan.x},${w.plan.y} scaled by ${(w.plan.sw / w.plan.w).toFixed(3)}`;
    warn(
      scaled.length === 1
        ? `a hole region is too large for the ${size}-px model window at full resolution: it is inpainted in a window of ${what(scaled[0]!)} (its fill is blurred by the scaling back)`
        : `${scaled.length} hole regions are too large for the ${size}-px model window at full resolution: they are inpainted in scaled-down windows (${scaled.map(what).join('; ')})`,
    );
  }
  const sde = new IRSDE({ T: model.T });
  // one stream for the whole run, consumed window after window in the layout's fixed order: the
  // same seed gives the same pixels however many windows there are
  const noise = options.noise ?? new SeededNoise(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  const variant = samplerOf(options.sampler, model);
  const guide = options.structure ?? (model.meta.structureGuide as StructureGuide | undefined) ?? 'network';
  parseStructureGuide(guide, 'structure');
  if (guide === 'fill') await prepareFill('telea');
  const total = steps * layout.windows.length;
  // the image as filled so far: a window sees the pixels written by the windows before it as known
  const working: RasterImage = { ...img, data: img.data.slice() };
  const open = holes.slice();
  let first: InpaintResult['window'] = null;
  for (let k = 0; k < layout.windows.length; k++) {
    const win = layout.windows[k]!;
    const { plan } = win;
    const { rgb, mask: m } = windowInputs(working, open, plan);
    if (m.every((v) => v === 0)) throw bad('BAD_INPUT', 'the hole fills the whole model window: there is no known context');
    const info = { index: k, count: layout.windows.length, plan, kind: win.kind };
    const out = await sampleWindow({
      runners, model, options, sde, noise, guide, size, rgb, mask: m, sampling, variant,
      onStep: (step) => {
        options.samplerOptions?.onStep?.(step);
        // steps of all windows in one count: step k·steps + i + 1 of T = steps × windows
        options.onProgress?.(progressOf({ ...step, index: k * steps + step.index }, total, (performance.now() - t0) / 1000));
      },
      onState: options.onState ? (t, y, x) => options.onState!(t, y, x, info) : undefined,
    });
    pastePixels(working, win.pixels, plan, out);
    for (const i of win.pixels) open[i] = 0;
    if (k === 0) first = { plan, rgb, mask: m, out };
  }
  return {
    image: working,
    window: first,
    windows: layout.windows.map((w) => ({ plan: w.plan, kind: w.kind, pixels: w.pixels.length })),
    holePixels: nHoles,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * The run's sampler: the option, else the model's model.json, else `official` (`irsde` for a
 * texture-only model). A structure-guided sampler needs a structure-guided model and a texture-only
 * one an unguided texture network: anything else is refused with one line.
 */
export function samplerOf(option: SamplerVariant | undefined, model: Pick<Model, 'meta' | 'structureKind'>): SamplerVariant {
  const plain = model.structureKind === 'none';
  const v = option ?? (model.meta.sampler as SamplerVariant | undefined) ?? (plain ? 'irsde' : 'official');
  if (plain && !textureOnly(v)) throw bad('BAD_OPTION', `sampler ${v} needs a structure-guided model, but this model's texture network has no structure guide (an IR-SDE baseline): use sampler ${TEXTURE_VARIANTS.join(' or ')}`);
  if (!plain && textureOnly(v)) throw bad('BAD_OPTION', `sampler ${v} runs an unguided IR-SDE texture network (trained with --structure-kind none), but this model's texture network is guided by ${model.structureKind} structure`);
  return v;
}

/** One model window through the sampler (the texture mean and structure guide built for it). */
async function sampleWindow(a: {
  runners: Record<NetKind, NetRunner>;
  model: Model;
  options: InpaintOptions;
  sde: IRSDE;
  noise: NoiseSource;
  guide: StructureGuide;
  size: number;
  rgb: Float32Array;
  mask: Float32Array;
  sampling: ReturnType<typeof samplingOf>;
  variant: SamplerVariant;
  onStep: (info: StepInfo) => void;
  onState?: (t: number, y: Float32Array, x: Float32Array | null) => void;
}): Promise<Float32Array> {
  const { model, options, sde, size, rgb, mask: m } = a;
  const { gray, edge } = structureOf(rgb, size, size, 2);
  const shape4 = (c: number) => [1, c, size, size];
  let nets = a.runners;
  if (a.guide === 'fill' && !textureOnly(a.variant) && model.structureKind !== 'gray2edge') throw bad('BAD_OPTION', `the fill structure guide is the gray2edge structure posterior, but this model was trained for ${model.structureKind} structure`);
  if (a.guide === 'fill' && !textureOnly(a.variant)) nets = { ...a.runners, structure: fillStructureRunner(sde, { shape: shape4(1), data: gray }, { shape: shape4(1), data: m }) };
  const res = await sample({
    nets,
    sde,
    inputs: {
      image: { shape: shape4(3), data: rgb },
      mask: { shape: shape4(1), data: m },
      gray: { shape: shape4(1), data: gray },
      edge: { shape: shape4(1), data: edge },
    },
    noise: a.noise,
    options: {
      ...options.samplerOptions,
      variant: a.variant,
      ...a.sampling,
      // the structure process the networks were trained for
      ...(model.structureKind !== 'none' ? { structureKind: model.structureKind } : {}),
      // the texture mean must hold what it held in training
      fill: model.fill,
      onStep: a.onStep,
      onState: a.onState,
    },
  });
  const out = res.out;
  // NaN or infinity would be written as black (or saturated) hole pixels with exit code 0
  let nonFinite = 0;
  let first = -1;
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (v - v !== 0 && nonFinite++ === 0) first = i;
  }
  if (nonFinite > 0) {
    throw new Error(`the sampler's output holds non-finite values (${nonFinite} of ${out.length}, first ${out[first]} at index ${first}): the model's weights or the noise source are broken`);
  }
  return out;
}
