/**
 * The pipeline from a decoded image and its hole map to the inpainted image, with no file, codec
 * or runtime import: window layout (tiling.ts), the sampler in each window, hole-only pasting.
 * The Node library (index.ts) and the browser build (src/browser/worker.ts) both run this, so
 * the same seed and options give the same pixels up to the runtimes' float rounding.
 */
import type { RasterImage } from '../image/raster.js';
import { copySamples } from '../image/raster.js';
import { pastePixels, windowInputs, type WindowPlan } from './window.js';
import { samplingOf, type SamplingChoice } from './sampling.js';
import { planWindows, type PlannedWindow, type WindowKind } from './tiling.js';
import type { Model } from '../model/meta.js';
import type { NetKind, NetRunner } from '../exec/types.js';
import { IRSDE } from '../sde/index.js';
import { SeededNoise, type NoiseSource } from '../util/noise.js';
import { structureOf } from '../structure/index.js';
import { sample, type SamplerOptions, type SamplerVariant, type StepInfo } from '../sampler/index.js';
import { guideStructureRunner, parseDiagnosticStructureGuide, prepareGuide, type DiagnosticStructureGuide } from '../sampler/fill-structure.js';
import { progressOf, type InpaintProgress } from './progress.js';
import { StrDiffusionError } from '../util/errors.js';
import { textureOnly } from '../sampler/strdiffusion.js';
import { isOneOf, SCORING_VARIANTS, TEXTURE_VARIANTS, UNSCORED_VARIANTS } from '../options.js';

/** What a run needs of a model besides its runners. */
export type RunModel = Pick<Model, 'T' | 'meta' | 'size' | 'fill' | 'structureKind'>;

/** The per-run options this part reads (InpaintOptions documents each). */
export interface HoleFillOptions extends SamplingChoice {
  seed?: number;
  sampler?: SamplerVariant;
  samplerOptions?: Partial<SamplerOptions>;
  /** the user guides and, for eval's diagnostic runs only, `oracle` (sampler/fill-structure.ts);
   * the entry points that fill holes for real refuse `oracle` before they get here */
  structure?: DiagnosticStructureGuide;
  size?: number;
  onProgress?: (progress: InpaintProgress) => void;
  onState?: (t: number, y: Float32Array, x: Float32Array | null, window: { index: number; count: number; plan: WindowPlan; kind: WindowKind }) => void;
  noise?: NoiseSource;
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

const bad = (code: 'BAD_INPUT' | 'BAD_OPTION', msg: string) => new StrDiffusionError(code, msg);

/**
 * Inpaint the hole pixels (`holes`: 1 = hole, at least one, not all) of `img` with the model's
 * networks; only hole pixels of the returned image differ from `img`.
 */
export async function inpaintHoles(a: {
  img: RasterImage;
  holes: Uint8Array;
  holeCount: number;
  model: RunModel;
  runners: Record<NetKind, NetRunner>;
  options: HoleFillOptions;
  warn: (msg: string) => void;
  /** performance.now() at the call's start (progress and seconds count from it) */
  t0: number;
}): Promise<InpaintResult> {
  const { img, holes, model, runners, options, warn, t0 } = a;
  const nHoles = a.holeCount;
  const size = options.size ?? model.size ?? 256;
  const sampling = samplingOf(options, model.meta, model.T);
  const steps = sampling.steps;
  // refused before any work (and before the window warnings)
  const variant = samplerOf(options.sampler, model);
  if (isOneOf(SCORING_VARIANTS, variant) && !runners.discriminator) {
    throw bad('BAD_OPTION', `sampler ${variant} needs a discriminator network, and this model has none: use ${UNSCORED_VARIANTS.slice(0, -1).join(', ')} or ${UNSCORED_VARIANTS.at(-1)}`);
  }
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
  const guide = parseDiagnosticStructureGuide(options.structure ?? (model.meta.structureGuide as string | undefined) ?? 'network', 'structure')!;
  await prepareGuide(guide);
  const total = steps * layout.windows.length;
  // the image as filled so far: a window sees the pixels written by the windows before it as known
  const working: RasterImage = { ...img, data: copySamples(img.data) };
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
  model: RunModel;
  options: HoleFillOptions;
  sde: IRSDE;
  noise: NoiseSource;
  guide: DiagnosticStructureGuide;
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
  // the guide's runner in place of the structure network (fill, oracle), for this window's own
  // gray and edges: `rgb` still holds the pixels under the hole (the sampler masks them itself)
  const guided = guideStructureRunner(a.guide, { sde, kind: model.structureKind, variant: a.variant, gray: { shape: shape4(1), data: gray }, edge: { shape: shape4(1), data: edge }, mask: { shape: shape4(1), data: m } });
  const nets = guided ? { ...a.runners, structure: guided } : a.runners;
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
