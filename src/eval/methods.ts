/**
 * The `Method` interface every evaluated inpainter implements, and the StrDiffusion model as one.
 * New methods (other samplers, other models) plug into `evaluate` through this interface only.
 */
import type { RasterImage } from '../image/io.js';
import { inpaintDiagnostic, loadInpaintModel, type DiagnosticInpaintOptions } from '../inpaint/index.js';

export interface MethodContext {
  /** per-pair seed derived from the run seed, so a pair gets the same noise in every run */
  seed: number;
  /** the pair's position in the run (the index into what `start` received; evaluate always sets it) */
  index?: number;
}

/** One pair as `start` receives it. */
export interface MethodInput {
  image: RasterImage;
  holes: Uint8Array;
  seed: number;
}

export interface Method {
  /** short id used in tables, file names and results.json (letters, digits, - and _) */
  name: string;
  /** human-readable description for the report */
  label: string;
  /** one-time setup (model loading) kept out of the per-image timing */
  prepare?(): Promise<void>;
  /** every pair, before the first run(): a method that works on many at once (queue workers) starts them here */
  start?(inputs: MethodInput[]): void;
  /** `image`: 8-bit RGB size×size; `holes`: 1 = hole per pixel. Returns 8-bit RGB of the same size. */
  run(image: RasterImage, holes: Uint8Array, ctx: MethodContext): Promise<RasterImage>;
  /** the seconds pair `index` took, where the method measures them itself (a queue: the worker's time, not the wait) */
  secondsOf?(index: number): number | undefined;
  /** after the run, also when it failed */
  dispose?(): Promise<void> | void;
  /** settings recorded in results.json */
  info?(): Record<string, unknown>;
}

/** `structure` may be the diagnostic `oracle`: eval runs the pipeline through inpaintDiagnostic. */
export type ModelMethodOptions = Pick<DiagnosticInpaintOptions, 'checkpoints' | 'T' | 'size' | 'sampler' | 'stepRule' | 'solver' | 'steps' | 'spacing' | 'executor' | 'samplerOptions' | 'structure' | 'precision'>;

export function holesToMaskRaster(holes: Uint8Array, width: number, height: number): RasterImage {
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = holes[i] ? 255 : 0;
  return { width, height, channels: 1, bitDepth: 8, data };
}

export function modelMethod(o: ModelMethodOptions, name = 'strdiffusion'): Method {
  let T: number | undefined;
  // the variant that runs: the option, else the model's model.json, else official (as inpaint resolves it)
  let sampler: string = o.sampler ?? '(model default)';
  return {
    name,
    label: `StrDiffusion (${o.sampler ?? 'model default'} sampler${o.solver ?? o.stepRule ? ', ' + (o.solver ?? o.stepRule) : ''}${o.steps ? ', ' + o.steps + ' steps' : ''}${o.spacing ? ' (' + o.spacing + ')' : ''}${o.structure ? ', ' + o.structure + ' structure guide' + (o.structure === 'oracle' ? " (the ground truth's structure: a perfect structure network)" : '') : ''}${o.precision && o.precision !== 'fp32' ? ', ' + o.precision : ''})`,
    prepare: async () => {
      const { model } = await loadInpaintModel(o);
      T = model.T;
      sampler = o.sampler ?? (model.meta.sampler as string | undefined) ?? 'official';
    },
    run: async (image, holes, ctx) => {
      // the diagnostic entry: eval may guide by the ground truth's structure (--structure oracle)
      const res = await inpaintDiagnostic(image, holesToMaskRaster(holes, image.width, image.height), {
        ...o,
        seed: ctx.seed,
        // an evaluation mask without a hole is a data issue reported by evaluate, not a per-image warning
        warn: () => {},
      });
      return res.image;
    },
    info: () => ({ checkpoints: o.checkpoints ?? '(bundled default)', T: T ?? o.T ?? null, sampler, precision: o.precision ?? 'fp32', solver: o.solver ?? o.stepRule ?? '(model default)', steps: o.steps ?? '(model default)', spacing: o.spacing ?? '(model default)', structure: o.structure ?? '(model default)', size: o.size ?? 256, executor: o.executor ?? process.env.STRDIFFUSION_EXECUTOR ?? 'onnx' }),
  };
}
