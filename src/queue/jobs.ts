/**
 * What travels through the queue, defined once for submitters and workers: a job's data (the
 * encoded image and mask, or their paths on a shared filesystem; the run's options; the model's
 * name and hash) and its result (the PNG, or its path), with the size cap and the checks both
 * sides apply.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DEFAULT_MODEL_DIR, mergeModelMeta, modelFiles } from '../model/checkpoints.js';
import type { InpaintOptions } from '../inpaint/index.js';
import type { InpaintProgress } from '../inpaint/progress.js';
import { samplingOf } from '../inpaint/sampling.js';
import { StrDiffusionError } from '../util/errors.js';

/** Job names in the queue: one `inpaint` per image, under one `batch` parent per submission. */
export const INPAINT_JOB = 'inpaint';
export const BATCH_JOB = 'batch';

/** Bumped when the job format changes: a worker refuses jobs of another format. */
export const JOB_FORMAT = 1;

/** What a job may carry inline (image + mask in, the PNG out), in MB; past it use --shared-dir. */
export const DEFAULT_MAX_JOB_MB = 32;

/** The options that travel with a job: plain data, the model's own settings excluded (named by hash). */
export type JobOptions = Pick<
  InpaintOptions,
  'T' | 'seed' | 'sampler' | 'stepRule' | 'steps' | 'solver' | 'spacing' | 'structure' | 'size' | 'invertMask' | 'resizeMask' | 'executor' | 'precision' | 'maxMegapixels'
> & { samplerOptions?: { uMax?: number; uMin?: number; jump?: number; re?: number } };

const JOB_OPTION_KEYS = ['T', 'seed', 'sampler', 'stepRule', 'steps', 'solver', 'spacing', 'structure', 'size', 'invertMask', 'resizeMask', 'executor', 'precision', 'maxMegapixels', 'samplerOptions'] as const satisfies readonly (keyof JobOptions)[];

/** The options of a run as a job carries them (the given ones only: the worker's model fills in the rest, as in-process). */
export function jobOptionsOf(o: InpaintOptions): JobOptions {
  const out: Record<string, unknown> = {};
  for (const k of JOB_OPTION_KEYS) if (o[k] !== undefined) out[k] = o[k];
  return out as JobOptions;
}

/**
 * The checks a run's options get against the model before any job is sent (the worker applies
 * them again): T known, steps and solver possible. Without them every job of a batch would fail
 * on the workers with the same error.
 */
export function checkJobOptions(dirs: string[], o: JobOptions): void {
  const meta = mergeModelMeta(dirs, modelFiles(dirs));
  const T = o.T ?? meta.T;
  if (T === undefined) throw new StrDiffusionError('BAD_CHECKPOINT', (n) => `the diffusion length T of ${dirs.join(', ')} is unknown: pass ${n('T')} or add {"T": N} to model.json`, { option: 'T' });
  if (o.T !== undefined && meta.T !== undefined && o.T !== meta.T) throw new StrDiffusionError('BAD_OPTION', (n) => `T = ${o.T} does not match the checkpoint's schedule (model.json says T = ${meta.T}); use ${n('T', meta.T)}`, { option: 'T' });
  samplingOf(o, meta, T);
}

/** A file's bytes (base64) inline, or its path relative to the shared folder. */
export type Payload = { bytes: string } | { path: string };

export interface ModelIdentity {
  /** the folder name(s), for messages */
  name: string;
  /** sha256 over the three weight files and the folders' model.json */
  hash: string;
}

export interface InpaintJobData {
  format: number;
  /** the image's file name, for messages */
  name: string;
  image: Payload;
  mask: Payload;
  options: JobOptions;
  model: ModelIdentity;
  /** largest inline result in bytes (the submitter's cap) */
  maxBytes: number;
}

export interface InpaintJobResult {
  result: Payload;
  width: number;
  height: number;
  holePixels: number;
  seconds: number;
  /** which worker filled it */
  worker: string;
}

/** A job's BullMQ progress: the fields of the library's progress report that a remote reader can use. */
export type JobProgress = Pick<InpaintProgress, 'step' | 'T' | 't' | 'stage' | 'resampling'>;

export interface BatchJobData {
  format: number;
  count: number;
}

const hashes = new Map<string, ModelIdentity>();

/**
 * The model a folder list holds, by content: sha256 of each network's weight file (as loadModel
 * finds it) and of each folder's model.json (T, fill, prediction and defaults change the pixels).
 * Cached per folder list for the life of the process.
 */
export function modelIdentity(dirs: string[]): ModelIdentity {
  const key = dirs.map((d) => resolve(d)).join('|');
  const known = hashes.get(key);
  if (known) return known;
  for (const d of dirs) if (!existsSync(d)) throw new Error(`checkpoint folder not found: ${d}`);
  const files = modelFiles(dirs);
  const h = createHash('sha256');
  for (const [kind, f] of Object.entries(files)) h.update(`${kind}:${createHash('sha256').update(readFileSync(f)).digest('hex')}\n`);
  for (const d of dirs) {
    const meta = join(d, 'model.json');
    h.update(`model.json:${existsSync(meta) ? createHash('sha256').update(readFileSync(meta)).digest('hex') : '-'}\n`);
  }
  const name = dirs.map((d) => (resolve(d) === resolve(DEFAULT_MODEL_DIR) ? 'the bundled model' : basename(resolve(d)))).join('+');
  const id = { name, hash: h.digest('hex') };
  hashes.set(key, id);
  return id;
}

/** A path under `root` as the job carries it (relative, with /); one-line error outside the root. */
export function sharedPath(root: string, path: string, what: string): string {
  const rel = relative(resolve(root), resolve(path));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${what} ${path} is not inside --shared-dir ${root}: every file a job names must be on the shared filesystem`);
  return rel.split(sep).join('/');
}

/** The local path of a job's shared-folder path; a path leaving the folder is refused. */
export function resolveShared(root: string, rel: string, what: string): string {
  const full = resolve(root, rel);
  const back = relative(resolve(root), full);
  if (isAbsolute(rel) || back === '' || back.startsWith('..') || isAbsolute(back)) throw new Error(`the job's ${what} path "${rel}" leaves the shared folder`);
  return full;
}

export const mb = (bytes: number) => (bytes < 1e5 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`);
