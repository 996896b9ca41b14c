/**
 * The library's loaded models (the networks' weights and onnxruntime sessions), shared per key:
 * model folders, T, executor and precision.
 *
 * - Every user of a model holds a reference (`ModelRef`): each `loadModel()` handle one, and every
 *   running call one for its duration. A model's sessions are released when its last reference
 *   goes, unless the one-shot cache keeps it: disposing one handle never breaks another handle
 *   of the same folder, nor a call still running.
 * - The one-shot cache (the one-shot `inpaint()`, `loadInpaintModel`) keeps the models of the
 *   MAX_CACHED_MODELS most recently used keys; an older one is released as soon as nothing holds
 *   it (a model in use by a running call is released when that call ends, never mid-run).
 */
import { checkpointDirs, loadModel, type Model } from '../model/checkpoints.js';
import { getExecutor, parseExecutor } from '../exec/registry.js';
import type { NetKind, NetRunner } from '../exec/types.js';
import { StrDiffusionError } from '../util/errors.js';
import { parseChoice, PRECISIONS, type ExecutorName, type Precision } from '../options.js';

export interface LoadedModel {
  model: Model;
  runners: Record<NetKind, NetRunner>;
}

/** The options that decide which model (and which sessions) a call uses. */
export interface ModelKeyOptions {
  checkpoints?: string | string[];
  T?: number;
  executor?: ExecutorName;
  precision?: Precision;
}

/** How many models the one-shot cache keeps (each is the weights plus three sessions: ~275 MB for
 * the official networks). */
export const MAX_CACHED_MODELS = 2;

/** one model as the cache knows it (internal) */
export interface ModelEntry {
  key: string;
  T: number | undefined;
  loaded: Promise<LoadedModel>;
  /** references held: handles and running calls */
  refs: number;
  /** kept by the one-shot cache */
  cached: boolean;
  /** when it was last used (a counter): the one-shot cache releases the least recently used first */
  lastUse: number;
}

const entries = new Map<string, ModelEntry>();
let clock = 0;

function keyOf(opts: ModelKeyOptions): { key: string; dirs: string[]; exec: ExecutorName; precision: Precision } {
  const dirs = checkpointDirs(opts.checkpoints);
  const exec = parseExecutor(opts.executor) ?? parseExecutor(process.env.STRDIFFUSION_EXECUTOR || undefined, 'STRDIFFUSION_EXECUTOR') ?? 'onnx';
  const precision = opts.precision ?? 'fp32';
  return { key: `${dirs.join('|')}|${opts.T ?? ''}|${exec}|${precision}`, dirs, exec, precision };
}

async function load(dirs: string[], T: number | undefined, exec: ExecutorName, precision: Precision): Promise<LoadedModel> {
  parseChoice(PRECISIONS, precision, 'precision');
  if (precision !== 'fp32' && exec !== 'onnx') throw new Error(`precision ${precision} needs the onnx executor (got ${exec})`);
  let model: Model;
  try {
    model = loadModel(dirs, { T });
  } catch (e) {
    // a caller must be able to tell a bad checkpoint from its own bad option (a T the model was not made for)
    if (e instanceof StrDiffusionError) throw e;
    const msg = (e as Error).message;
    throw new StrDiffusionError(T !== undefined && msg.startsWith(`T = ${T} `) ? 'BAD_OPTION' : 'BAD_CHECKPOINT', msg, { cause: e });
  }
  const executor = await getExecutor(exec);
  const runners = {} as Record<NetKind, NetRunner>;
  // a texture-only (IR-SDE) model has no structure or discriminator network
  const kinds = (['structure', 'texture', 'discriminator'] as NetKind[]).filter((k) => model.weights[k]);
  try {
    if (precision !== 'fp32') {
      const { OnnxExecutor } = await import('../exec/onnx/executor.js');
      if (!(executor instanceof OnnxExecutor)) throw new Error(`precision ${precision} needs the onnx executor`);
      for (const k of kinds) runners[k] = await executor.createRunner(k, model.configs[k], model.weights[k], { precision });
    } else {
      for (const k of kinds) runners[k] = await executor.createRunner(k, model.configs[k], model.weights[k]);
    }
  } catch (e) {
    for (const r of Object.values(runners)) r.dispose();
    throw e;
  }
  return { model, runners };
}

/** The entry of `opts`' key, loading it if there is none. */
function entryOf(opts: ModelKeyOptions): ModelEntry {
  const { key, dirs, exec, precision } = keyOf(opts);
  let e = entries.get(key);
  if (!e) {
    const entry: ModelEntry = { key, T: opts.T, loaded: load(dirs, opts.T, exec, precision), refs: 0, cached: false, lastUse: ++clock };
    entries.set(key, entry);
    // a model that failed to load is forgotten (the next call tries again); its holders get the error
    entry.loaded.catch(() => {
      if (entries.get(key) === entry) entries.delete(key);
    });
    e = entry;
  }
  return e;
}

/** Forgets the entry and releases its sessions (once loaded). */
async function close(e: ModelEntry): Promise<void> {
  if (entries.get(e.key) === e) entries.delete(e.key);
  const loaded = await e.loaded.catch(() => null);
  for (const r of Object.values(loaded?.runners ?? {})) r.dispose();
}

/** Releases the least recently used models the one-shot cache keeps beyond MAX_CACHED_MODELS
 * that nothing holds; a held one counts, and goes when its last holder lets it go. */
async function trim(reserve = 0): Promise<void> {
  const cached = [...entries.values()].filter((e) => e.cached).sort((a, b) => a.lastUse - b.lastUse);
  let over = cached.length + reserve - MAX_CACHED_MODELS;
  const closing: Promise<void>[] = [];
  for (const e of cached) {
    if (over <= 0) break;
    if (e.refs > 0) continue;
    e.cached = false;
    closing.push(close(e));
    over--;
  }
  await Promise.all(closing);
}

/** One reference to a loaded model; `release()` it when done (idempotent). */
export class ModelRef {
  #entry: ModelEntry;
  #released = false;

  /** use `acquireModel()` or `share()` */
  constructor(entry: ModelEntry) {
    this.#entry = entry;
    entry.refs++;
    entry.lastUse = ++clock;
  }

  /** the model and its sessions (rejects when it cannot be loaded) */
  get loaded(): Promise<LoadedModel> {
    return this.#entry.loaded;
  }

  /** Another reference to the same model (e.g. for one call of a handle), independent of this one. */
  share(): ModelRef {
    if (this.#released) throw new Error('the model reference was released');
    return new ModelRef(this.#entry);
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const e = this.#entry;
    e.refs--;
    e.lastUse = ++clock;
    if (e.refs > 0) return;
    await (e.cached ? trim() : close(e));
  }
}

/**
 * A reference to the model of `opts` (loading it if needed). `cache`: the one-shot cache keeps it
 * too (it is released only once it is among the least recently used and nothing holds it);
 * otherwise its sessions go with its last reference.
 */
export function acquireModel(opts: ModelKeyOptions, { cache }: { cache: boolean }): ModelRef {
  // a model new to the one-shot cache: older idle ones go first, before this one is read
  if (cache && !entries.get(keyOf(opts).key)?.cached) trim(1).catch(() => {});
  const e = entryOf(opts);
  const ref = new ModelRef(e);
  if (cache) e.cached = true;
  return ref;
}

/** Load (or find) a model in the one-shot cache, without holding it. */
export async function loadInpaintModel(opts: ModelKeyOptions = {}): Promise<LoadedModel> {
  const ref = acquireModel(opts, { cache: true });
  try {
    return await ref.loaded;
  } finally {
    await ref.release();
  }
}

/** Drop a model from the one-shot cache; its sessions are released now, or when its last holder
 * (a handle, a running call) lets it go. */
export async function releaseInpaintModel(opts: ModelKeyOptions = {}): Promise<void> {
  const e = entries.get(keyOf(opts).key);
  if (!e) return;
  e.cached = false;
  if (e.refs === 0) await close(e);
}

/** @internal for tests: the models loaded now, least recently used first */
export function modelCacheState(): { key: string; T: number | undefined; refs: number; cached: boolean }[] {
  return [...entries.values()].sort((a, b) => a.lastUse - b.lastUse).map((e) => ({ key: e.key, T: e.T, refs: e.refs, cached: e.cached }));
}
