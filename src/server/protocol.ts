/** Messages between the job manager (main thread) and an inpainting worker. */
import type { SamplerVariant, Solver, StepRule } from '../sampler/index.js';
import type { Spacing } from '../options.js';
import type { ExecutorName } from '../exec/registry.js';

export interface WorkerInit {
  checkpoints?: string[];
  /** undefined: the model's own T */
  T?: number;
  size?: number;
  executor?: ExecutorName;
}

export interface RunRequest {
  type: 'run';
  jobId: string;
  /** the uploads as sent (PNG/JPEG/WebP bytes): decoded in the worker, never on the main thread */
  image: Uint8Array;
  mask: Uint8Array;
  /** the server's pixel limit (already checked on the headers; the decoder enforces it again) */
  maxPixels: number;
  seed: number;
  sampler: SamplerVariant;
  /** undefined: the model's default (model.json), else 'sde' */
  stepRule?: StepRule;
  /** sampling steps, solver and grid spacing; undefined: the model's defaults (model.json) */
  steps?: number;
  solver?: Solver;
  spacing?: Spacing;
  /** a preview every this many steps (and at the last step) */
  previewEvery: number;
  /** Int32Array view: [0] != 0 asks the run to stop at the next step */
  cancel: SharedArrayBuffer;
}

export interface ProgressMsg {
  type: 'progress';
  jobId: string;
  index: number;
  t: number;
  T: number;
  stage: string;
  k: number;
}

/** Model-window states as 8-bit pixels: texture RGB interleaved, structure grey. */
export interface PreviewMsg {
  type: 'preview';
  jobId: string;
  index: number;
  t: number;
  T: number;
  size: number;
  texture: Uint8Array;
  structure: Uint8Array;
  /** false in the late stage, where the structure view is the texture's channel mean */
  structureState: boolean;
}

export interface DoneMsg {
  type: 'done';
  jobId: string;
  /** the result, encoded in the worker */
  png: Uint8Array;
  width: number;
  height: number;
  holePixels: number;
  seconds: number;
}

export interface ErrorMsg {
  type: 'error';
  jobId: string;
  message: string;
  cancelled: boolean;
}

export interface ReadyMsg {
  type: 'ready';
  T: number;
  /** the checkpoint's model.json fixes T (other step counts are refused) */
  fixedT: boolean;
  /** the model's default solver (model.json `solver`, else `stepRule`, else sde), sampling steps and spacing */
  solver: Solver;
  steps: number;
  spacing: Spacing;
  /** the model's default sampler (model.json `sampler`, else official) */
  sampler: SamplerVariant;
}

export type FromWorker = ProgressMsg | PreviewMsg | DoneMsg | ErrorMsg | ReadyMsg;
