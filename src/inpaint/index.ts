/**
 * `inpaint(image, mask, options)`: the one entry point for users. Loads (and caches) the model,
 * plans the window around the hole, runs the StrDiffusion sampler there and pastes only the hole
 * back into the original image.
 */
import type { ImageInput, RasterImage } from '../image/io.js';
import { loadImage } from '../image/io.js';
import { holeBox, holeCount, loadHoles, type MaskOptions } from './mask.js';
import { pasteResult, planWindow, windowInputs, type WindowPlan } from './window.js';
import { checkpointDirs, loadModel, type Model } from '../model/checkpoints.js';
import { getExecutor, parseExecutor, type ExecutorName } from '../exec/registry.js';
import type { NetKind, NetRunner } from '../exec/types.js';
import { IRSDE } from '../sde/index.js';
import { SeededNoise, type NoiseSource } from '../sde/noise.js';
import { structureOf } from '../structure/index.js';
import { sample, type SamplerOptions, type SamplerVariant, type StepInfo, type StepRule } from '../sampler/index.js';
import { fillStructureRunner, parseStructureGuide, type StructureGuide } from '../sampler/fill-structure.js';
import { prepareFill } from '../sde/fill.js';

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
  precision?: 'fp32' | 'int8' | 'int8-static';
  onProgress?: (info: StepInfo & { T: number }) => void;
  /** intermediate states (texture y [1,3,s,s], structure x [1,1,s,s] or null in the late stage) */
  onState?: (t: number, y: Float32Array, x: Float32Array | null) => void;
  /** for tests: inject the noise source */
  noise?: NoiseSource;
  /** print warnings (default console.warn) */
  warn?: (msg: string) => void;
}

export interface InpaintResult {
  image: RasterImage;
  /** the model-size window: input, mask (1 known) and output [3,s,s] */
  window: { plan: WindowPlan; rgb: Float32Array; mask: Float32Array; out: Float32Array } | null;
  holePixels: number;
  seconds: number;
}

interface LoadedModel {
  model: Model;
  runners: Record<NetKind, NetRunner>;
}

const cache = new Map<string, Promise<LoadedModel>>();

export async function loadInpaintModel(opts: Pick<InpaintOptions, 'checkpoints' | 'T' | 'executor' | 'precision'> = {}): Promise<LoadedModel> {
  const dirs = checkpointDirs(opts.checkpoints);
  const exec = parseExecutor(opts.executor) ?? parseExecutor(process.env.STRDIFFUSION_EXECUTOR || undefined, 'STRDIFFUSION_EXECUTOR') ?? 'onnx';
  const precision = opts.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'int8' && precision !== 'int8-static') throw new Error(`precision must be fp32, int8 or int8-static (got "${precision}")`);
  if (precision !== 'fp32' && exec !== 'onnx') throw new Error(`precision ${precision} needs the onnx executor (got ${exec})`);
  const key = `${dirs.join('|')}|${opts.T ?? ''}|${exec}|${precision}`;
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const model = loadModel(dirs, { T: opts.T });
      const e = await getExecutor(exec);
      const runners = {} as Record<NetKind, NetRunner>;
      if (precision !== 'fp32') {
        const { OnnxExecutor } = await import('../exec/onnx/executor.js');
        if (!(e instanceof OnnxExecutor)) throw new Error(`precision ${precision} needs the onnx executor`);
        for (const k of ['structure', 'texture', 'discriminator'] as NetKind[]) runners[k] = await e.createRunner(k, model.configs[k], model.weights[k], { precision });
      } else {
        for (const k of ['structure', 'texture', 'discriminator'] as NetKind[]) runners[k] = await e.createRunner(k, model.configs[k], model.weights[k]);
      }
      return { model, runners };
    })();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

export async function inpaint(image: ImageInput, mask: ImageInput, options: InpaintOptions = {}): Promise<InpaintResult> {
  const t0 = performance.now();
  const warn = options.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  if (options.size !== undefined && !(Number.isInteger(options.size) && options.size >= 16)) throw new Error(`size must be an integer >= 16 (got ${options.size})`);
  const img = await loadImage(image, 'image');
  const holes = await loadHoles(mask, img.width, img.height, options);
  const nHoles = holeCount(holes);
  if (nHoles === 0) {
    warn('the mask has no hole: nothing to inpaint, the output equals the input');
    return { image: { ...img, data: img.data.slice() }, window: null, holePixels: 0, seconds: (performance.now() - t0) / 1000 };
  }
  if (nHoles === holes.length) throw new Error('the mask covers the whole image: there is no known pixel to inpaint from');
  const { model, runners } = await loadInpaintModel(options);
  const size = options.size ?? model.size ?? 256;
  const plan = planWindow(holeBox(holes, img.width, img.height)!, img.width, img.height, size);
  const { rgb, mask: m } = windowInputs(img, holes, plan);
  if (m.every((v) => v === 0)) throw new Error('the hole fills the whole model window: there is no known context');
  const { gray, edge } = structureOf(rgb, size, size, 2);
  const sde = new IRSDE({ T: model.T });
  const noise = options.noise ?? new SeededNoise(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  const shape4 = (c: number) => [1, c, size, size];
  const guide = options.structure ?? (model.meta.structureGuide as StructureGuide | undefined) ?? 'network';
  parseStructureGuide(guide, 'structure');
  let nets = runners;
  if (guide === 'fill') {
    await prepareFill('telea');
    nets = { ...runners, structure: fillStructureRunner(sde, { shape: shape4(1), data: gray }, { shape: shape4(1), data: m }) };
  }
  const res = await sample({
    nets,
    sde,
    inputs: {
      image: { shape: shape4(3), data: rgb },
      mask: { shape: shape4(1), data: m },
      gray: { shape: shape4(1), data: gray },
      edge: { shape: shape4(1), data: edge },
    },
    noise,
    options: {
      ...options.samplerOptions,
      variant: options.sampler ?? (model.meta.sampler as SamplerVariant | undefined) ?? 'official',
      stepRule: options.stepRule ?? model.meta.stepRule ?? 'sde',
      // the texture mean must hold what it held in training
      fill: model.fill,
      onStep: options.onProgress ? (info: StepInfo) => options.onProgress!({ ...info, T: model.T }) : undefined,
      onState: options.onState,
    },
  });
  const out = res.out;
  return {
    image: pasteResult(img, holes, plan, out),
    window: { plan, rgb, mask: m, out },
    holePixels: nHoles,
    seconds: (performance.now() - t0) / 1000,
  };
}
