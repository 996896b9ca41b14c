/**
 * `inpaint(image, mask, options)`: the one entry point for users. Loads (and caches) the model,
 * plans the windows over the holes (tiling.ts), runs the StrDiffusion sampler in each and pastes
 * only hole pixels back into the original image.
 */
import type { ImageInput, RasterImage } from '../image/io.js';
import { copySamples } from '../image/raster.js';
import { checkMegapixels, DEFAULT_MAX_MEGAPIXELS, loadImage, validateRaster } from '../image/io.js';
import { holeCount, loadHoles, type MaskOptions } from './mask.js';
import type { WindowPlan } from './window.js';
import type { WindowKind } from './tiling.js';
import { MAX_SIZE, MAX_T, MIN_SIZE } from '../model/checkpoints.js';
import type { ExecutorName } from '../exec/registry.js';
import { acquireModel, type LoadedModel, type ModelRef } from './model-cache.js';
import type { NoiseSource } from '../util/noise.js';
import type { SamplerOptions, SamplerVariant, StepRule } from '../sampler/index.js';
import type { DiagnosticStructureGuide, StructureGuide } from '../sampler/fill-structure.js';
import type { InpaintProgress } from './progress.js';
import { describeValue, StrDiffusionError } from '../util/errors.js';
import { isStepRule, resamplingProblem, SAMPLER_VARIANTS, STEP_RULES } from '../sampler/strdiffusion.js';
import { DIAGNOSTIC_STRUCTURE_GUIDES, STRUCTURE_GUIDES } from '../sampler/fill-structure.js';
import { EXECUTOR_NAMES } from '../exec/registry.js';
import { diagnosticGuideRefusal, isDiagnosticOnlyGuide, isOneOf, SPACINGS, PRECISIONS, SOLVERS, type Spacing, type Precision, type Solver } from '../options.js';

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
   * Default: the model's `structureGuide` in model.json, else 'network'. (`oracle`, a diagnostic
   * that guides the fill by the pixels under the hole, is eval's only: inpaintDiagnostic.) */
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

export type { InpaintResult } from './run.js';
import { inpaintHoles, type InpaintResult } from './run.js';
export { samplerOf } from './run.js';

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
  // the diagnostic guides pass the list; checkOptions refuses them unless the call is diagnostic
  structure: (v) => (isOneOf(DIAGNOSTIC_STRUCTURE_GUIDES, v) ? null : `must be one of ${STRUCTURE_GUIDES.join(', ')}`),
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

function checkOptions(options: unknown, diagnostic: boolean): DiagnosticInpaintOptions {
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
    if (key === 'structure' && !diagnostic && isDiagnosticOnlyGuide(v)) throw bad('BAD_OPTION', diagnosticGuideRefusal(`options.structure "${String(v)}"`));
  }
  return own as DiagnosticInpaintOptions;
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
  return runHeld(image, mask, options, held, false);
}

/** inpaint()'s options for a diagnostic run: `structure` may also be a diagnostic guide. */
export type DiagnosticInpaintOptions = Omit<InpaintOptions, 'structure'> & { structure?: DiagnosticStructureGuide };

/**
 * inpaint() for eval's diagnostic runs: the same checks and pipeline, and options.structure may
 * also be `oracle` (the exact structure posterior towards the structure of the pixels under the
 * hole: in eval the ground truth's, so a perfect structure network's score). Not a way to fill a
 * hole: the package's entry points and the CLI's inpaint refuse `oracle`.
 */
export async function inpaintDiagnostic(image: ImageInput, mask: ImageInput, options: DiagnosticInpaintOptions = {}, held?: ModelRef): Promise<InpaintResult> {
  return runHeld(image, mask, options, held, true);
}

async function runHeld(image: ImageInput, mask: ImageInput, options: DiagnosticInpaintOptions, held: ModelRef | undefined, diagnostic: boolean): Promise<InpaintResult> {
  let ref: ModelRef | undefined = held?.share();
  try {
    return await runInpaint(image, mask, options, diagnostic, async (o) => (ref ??= acquireModel(o, { cache: true })).loaded);
  } finally {
    await ref?.release();
  }
}

async function runInpaint(image: ImageInput, mask: ImageInput, options: DiagnosticInpaintOptions, diagnostic: boolean, useModel: (o: DiagnosticInpaintOptions) => Promise<LoadedModel>): Promise<InpaintResult> {
  checkImageArgument(image, 'image');
  checkImageArgument(mask, 'mask');
  options = checkOptions(options, diagnostic);
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
    return { image: { ...img, data: copySamples(img.data) }, window: null, windows: [], holePixels: 0, seconds: (performance.now() - t0) / 1000 };
  }
  if (nHoles === holes.length) throw bad('BAD_INPUT', 'the mask covers the whole image: there is no known pixel to inpaint from');
  const { model, runners } = await useModel(options);
  return inpaintHoles({ img, holes, holeCount: nHoles, model, runners, options, warn, t0 });
}
