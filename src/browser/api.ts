/**
 * The browser library, the Node library's shape:
 *
 *   const model = await loadModel('./models/default/', { executionProviders: ['wasm'] });
 *   const out = await model.inpaint(imageData, maskImageData, { seed: 0, steps, onProgress }); // ImageData
 *   await model.dispose();
 *
 * Everything heavy runs in a Web Worker started from this same module (worker.ts), so the page
 * never freezes; `signal` (an AbortSignal) or `model.cancel()` stops a run between network calls.
 */
import type { FromWorker, LoadedInfo, ToWorker, BrowserRunOptions } from './protocol.js';
import type { DownloadProgress } from './model.js';
import type { InpaintProgress } from '../inpaint/progress.js';
import { StrDiffusionError } from '../util/errors.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from './runtime.js';

export type { DownloadProgress } from './model.js';
export type { InpaintProgress } from '../inpaint/progress.js';
export type { BrowserRunOptions, LoadedInfo } from './protocol.js';
export type { ExecutionProvider } from './runtime.js';

/** The marker on the worker's URL: the entry module starts the worker side when it sees it. */
export const WORKER_MARK = '#strdiffusion-worker';

export interface LoadOptions {
  /** in order of preference (default ['wasm']); ['webgpu', 'wasm'] tries WebGPU and falls back with a note */
  executionProviders?: ExecutionProvider[];
  /** wasm threads (default: min(4, cores) when the page is cross-origin isolated, else 1) */
  threads?: number;
  /** keep the weights in the Cache API (default true) */
  cache?: boolean;
  /** bytes of the model's files received so far (for a progress bar) */
  onDownload?: (p: DownloadProgress) => void;
  /** where onnxruntime-web's .mjs/.wasm files are (default: ./ort/ beside this module) */
  ortBase?: string;
}

export interface RunOptions extends BrowserRunOptions {
  onProgress?: (p: InpaintProgress) => void;
  signal?: AbortSignal;
}

/** What one run reports besides its image. */
export interface RunStats {
  holePixels: number;
  seconds: number;
  networkCalls: number;
  networkSeconds: number;
}

const BASE = import.meta.url;

function defaultThreads(): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  return isolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

function checkImageData(v: unknown, what: string): ImageData {
  const ok = typeof v === 'object' && v !== null && (v as ImageData).data instanceof Uint8ClampedArray && Number.isInteger((v as ImageData).width) && Number.isInteger((v as ImageData).height);
  if (!ok) throw new StrDiffusionError('BAD_INPUT', `${what} must be an ImageData (from a canvas' getImageData), got ${v === null ? 'null' : typeof v}`);
  const d = v as ImageData;
  if (d.data.length !== d.width * d.height * 4) throw new StrDiffusionError('BAD_INPUT', `${what} holds ${d.data.length} bytes, not ${d.width}x${d.height}x4`);
  return d;
}

export class BrowserModel {
  #worker: Worker | null;
  #next = 1;
  #pending = new Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void; onMessage?: (m: FromWorker) => void }>();
  #runningId: number | null = null;
  /** what was loaded: T, window size, the provider in use (and why, if not the first asked for) */
  readonly info: LoadedInfo;
  /** set by each finished inpaint() */
  lastRun: RunStats | null = null;

  #health: { error: string | null };

  /** use loadModel() */
  constructor(worker: Worker, info: LoadedInfo, pending: Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void; onMessage?: (m: FromWorker) => void }>, next: number, health: { error: string | null }) {
    this.#worker = worker;
    this.info = info;
    this.#pending = pending;
    this.#next = next;
    this.#health = health;
  }

  get provider(): ExecutionProvider {
    return this.info.provider;
  }

  /** Fill the holes of `image` (white or opaque in `mask`, the Node library's rule): the result has
   * the image's size; only hole pixels differ. */
  async inpaint(image: ImageData, mask: ImageData, options: RunOptions = {}): Promise<ImageData> {
    const worker = this.#worker;
    if (!worker) throw new StrDiffusionError('BAD_OPTION', 'this model was disposed: load it again with loadModel()');
    if (this.#health.error) throw new StrDiffusionError('BAD_INPUT', `${this.#health.error}: load the model again with loadModel()`);
    checkImageData(image, 'image');
    checkImageData(mask, 'mask');
    if (mask.width !== image.width || mask.height !== image.height) throw new StrDiffusionError('BAD_INPUT', `mask is ${mask.width}x${mask.height} but the image is ${image.width}x${image.height}`);
    if (typeof options !== 'object' || options === null) throw new StrDiffusionError('BAD_OPTION', 'options must be an object');
    const { onProgress, signal, ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new StrDiffusionError('BAD_OPTION', 'options.onProgress must be a function');
    if (signal?.aborted) throw new StrDiffusionError('BAD_OPTION', 'cancelled');
    const id = this.#next++;
    const onAbort = () => worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
    signal?.addEventListener('abort', onAbort);
    this.#runningId = id;
    try {
      const done = await new Promise<FromWorker>((resolve, reject) => {
        this.#pending.set(id, { resolve, reject, onMessage: (m) => m.type === 'progress' && onProgress?.(m.progress) });
        // copies: the caller keeps its ImageData
        const img = image.data.slice();
        const msk = mask.data.slice();
        worker.postMessage({ type: 'inpaint', id, width: image.width, height: image.height, image: img, mask: msk, maskWidth: mask.width, maskHeight: mask.height, options: rest } satisfies ToWorker, [img.buffer, msk.buffer]);
      });
      if (done.type !== 'done') throw new Error(`unexpected worker message ${done.type}`);
      this.lastRun = { holePixels: done.holePixels, seconds: done.seconds, networkCalls: done.networkCalls, networkSeconds: done.networkMs / 1000 };
      return new ImageData(new Uint8ClampedArray(done.data.buffer as ArrayBuffer, done.data.byteOffset, done.data.length), done.width, done.height);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#runningId = null;
    }
  }

  /** Stop the running inpaint() (it rejects with a StrDiffusionError whose `cancelled` is true). */
  cancel(): void {
    if (this.#worker && this.#runningId !== null) this.#worker.postMessage({ type: 'cancel', id: this.#runningId } satisfies ToWorker);
  }

  /** Release the sessions and stop the worker; a later inpaint() is refused. */
  async dispose(): Promise<void> {
    const w = this.#worker;
    if (!w) return;
    this.#worker = null;
    w.terminate();
    for (const p of this.#pending.values()) p.reject(new StrDiffusionError('BAD_OPTION', 'the model was disposed'));
    this.#pending.clear();
  }
}

/** Load the model folder at `url` (model.json + .safetensors) in a new worker. */
export async function loadModel(url: string, options: LoadOptions = {}): Promise<BrowserModel> {
  if (typeof url !== 'string' || url === '') throw new StrDiffusionError('BAD_OPTION', `loadModel: the model folder must be a URL string (got ${JSON.stringify(url)})`);
  if (typeof options !== 'object' || options === null) throw new StrDiffusionError('BAD_OPTION', 'loadModel: options must be an object');
  for (const k of Object.keys(options)) {
    if (!['executionProviders', 'threads', 'cache', 'onDownload', 'ortBase'].includes(k)) throw new StrDiffusionError('BAD_OPTION', `loadModel: options.${k} is not an option (executionProviders, threads, cache, onDownload, ortBase)`);
  }
  const eps = options.executionProviders ?? ['wasm'];
  if (!Array.isArray(eps) || eps.length === 0 || !eps.every((e) => (EXECUTION_PROVIDERS as readonly string[]).includes(e))) {
    throw new StrDiffusionError('BAD_OPTION', `loadModel: executionProviders must be a non-empty list of ${EXECUTION_PROVIDERS.join(', ')} (got ${JSON.stringify(eps)})`);
  }
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new StrDiffusionError('BAD_OPTION', `loadModel: options.threads must be a positive integer (got ${JSON.stringify(threads)})`);
  const worker = new Worker(new URL(WORKER_MARK, BASE), { type: 'module', name: 'strdiffusion' });
  const pending = new Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void; onMessage?: (m: FromWorker) => void }>();
  worker.addEventListener('message', (ev: MessageEvent<FromWorker>) => {
    const m = ev.data;
    const p = pending.get(m.id);
    if (!p) return;
    if (m.type === 'download' || m.type === 'progress') p.onMessage?.(m);
    else {
      pending.delete(m.id);
      if (m.type === 'error') {
        const e = new StrDiffusionError((m.code as 'BAD_INPUT') ?? 'BAD_INPUT', m.message);
        (e as StrDiffusionError & { cancelled?: boolean }).cancelled = m.cancelled === true;
        p.reject(e);
      } else p.resolve(m);
    }
  });
  // a worker that fails (a script error, out of memory) fails every waiting call and every later one
  const health = { error: null as string | null };
  worker.addEventListener('error', (ev) => {
    health.error = `the strdiffusion worker failed (${ev.message || 'script error'})`;
    for (const p of pending.values()) p.reject(new StrDiffusionError('BAD_INPUT', health.error));
    pending.clear();
  });
  const ortBase = options.ortBase ?? new URL('./ort/', BASE).href;
  const modelUrl = new URL(url, globalThis.location?.href ?? BASE).href;
  try {
    const loaded = await new Promise<FromWorker>((resolve, reject) => {
      pending.set(0, { resolve, reject, onMessage: (m) => m.type === 'download' && options.onDownload?.(m.progress) });
      worker.postMessage({ type: 'load', id: 0, url: modelUrl, executionProviders: eps, threads, ortBase, cache: options.cache ?? true } satisfies ToWorker);
    });
    if (loaded.type !== 'loaded') throw new Error(`unexpected worker message ${loaded.type}`);
    return new BrowserModel(worker, loaded.info, pending, 1, health);
  } catch (e) {
    worker.terminate();
    throw e;
  }
}
