/**
 * `strdiffusion.js`, the browser build's one ES module (scripts/build-web.ts bundles this file):
 * the browser API for pages, and the Web Worker that api.ts starts from this same module (its URL
 * carries WORKER_MARK). onnxruntime-web and OpenCV.js are loaded by the worker only, on demand.
 */
import { WORKER_MARK } from './api.js';
import { startWorker } from './worker.js';

export { loadModel, BrowserModel, WORKER_MARK, type LoadOptions, type RunOptions, type RunStats, type DownloadProgress, type InpaintProgress, type LoadedInfo, type ExecutionProvider } from './api.js';
export { StrDiffusionError, isStrDiffusionError } from '../util/errors.js';
export { SAMPLER_VARIANTS, SOLVERS, SPACINGS } from '../options.js';

// a dedicated worker has no `document`; the mark tells ours from a user's worker importing the API
const scope = globalThis as { document?: unknown; location?: { hash?: string } };
if (scope.document === undefined && scope.location?.hash === WORKER_MARK) startWorker();
