/** Messages between the page's API (api.ts) and its Web Worker (worker.ts). Types only. */
import type { InpaintProgress } from '../inpaint/progress.js';
import type { DownloadProgress } from './model.js';
import type { ExecutionProvider } from './runtime.js';
import type { SamplerVariant, Solver, Spacing } from '../options.js';
import type { StructureGuide } from '../sampler/fill-structure.js';

/** Per-call options of model.inpaint (the Node library's names; what the browser supports). */
export interface BrowserRunOptions {
  /** same seed, same pixels (default 0) */
  seed?: number;
  /** sampling steps (default: the model's) */
  steps?: number;
  sampler?: SamplerVariant;
  solver?: Solver;
  spacing?: Spacing;
  structure?: StructureGuide;
  /** the mask marks the known region instead of the hole */
  invertMask?: boolean;
}

export interface LoadedInfo {
  T: number;
  size: number;
  /** the provider the networks run on */
  provider: ExecutionProvider;
  /** wasm threads onnxruntime was asked for */
  threads: number;
  /** why the provider differs from the first one asked for (WebGPU unavailable or miscomputing), else null */
  note: string | null;
  /** the model's own sampling settings (model.json) */
  defaults: { sampler?: string; solver?: string; steps?: number; spacing?: string };
  /** WebGPU against wasm on the real networks, when WebGPU was tried */
  webgpuCheck: { kind: string; maxAbsDiff: number; maxAbs: number }[] | null;
  /** bytes of the model's weight files and whether they came from the cache */
  modelBytes: number;
  fromCache: boolean;
}

export type ToWorker =
  | { type: 'load'; id: number; url: string; executionProviders: ExecutionProvider[]; threads: number; ortBase: string; cache: boolean }
  | { type: 'inpaint'; id: number; width: number; height: number; image: Uint8ClampedArray; mask: Uint8ClampedArray; maskWidth: number; maskHeight: number; options: BrowserRunOptions }
  | { type: 'cancel'; id: number }
  | { type: 'dispose'; id: number };

export type FromWorker =
  | { type: 'download'; id: number; progress: DownloadProgress }
  | { type: 'loaded'; id: number; info: LoadedInfo }
  | { type: 'progress'; id: number; progress: InpaintProgress }
  | { type: 'done'; id: number; data: Uint8ClampedArray; width: number; height: number; holePixels: number; seconds: number; networkMs: number; networkCalls: number }
  | { type: 'disposed'; id: number }
  | { type: 'error'; id: number; message: string; code?: string; cancelled?: boolean };
