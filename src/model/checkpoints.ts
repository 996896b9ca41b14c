/**
 * A model = the three networks' weights + their configs + the diffusion length T they were trained
 * with. It is read from one or more folders (e.g. the three run folders written by `train`, or a
 * folder with the authors' released .pth files). Configs are inferred from the weights' shapes, so
 * the official checkpoints need no metadata; T cannot be inferred and comes from `model.json`
 * or the caller (the authors' Places2 checkpoint is T = 400, the PSV one T = 100).
 */
import type { TextureGuideKind } from '../options.js';
import type { Fill } from '../sde/fill.js';
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { StrDiffusionError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiscConfig, ModelConfigs, UNetConfig } from '../nn/config.js';
import type { NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { loadStrict, openCheckpoint, stripModulePrefix } from '../weights/statedict.js';
import { checkWeights, NET_KINDS, paramSpec } from '../nn/models.js';
import type { Prediction } from '../nn/config.js';
import { IRSDE } from '../sde/irsde.js';
import { withLevelTables } from '../sde/prediction.js';
import { MAX_T } from '../sde/schedule.js';
import { checkT, inferDiscConfig, inferUNetConfig, predictionIn, validateModelMeta, type Model, type ModelMeta } from './meta.js';

export { checkSize, checkT, inferDiscConfig, inferUNetConfig, MAX_SIZE, MIN_SIZE, validateModelMeta, type Model, type ModelMeta } from './meta.js';

/** The largest diffusion length T accepted (model.json, --T, the API; defined with the schedule):
 * the official checkpoints use 100 and 400; T = 1e7 would run for days and 1e9 exhausts memory. */
export { MAX_T };
/** File stems accepted for each network, most specific first. */
const ALIASES: Record<NetKind, string[]> = {
  structure: ['structure', 'netS', 'Gs', 'structure_G', 'str'],
  texture: ['texture', 'netG', 'G', 'texture_G', 'latest_G', 'new_G'],
  discriminator: ['discriminator', 'netD', 'D', 'dis', 'latest_D', 'new_D'],
};
const EXTS = ['.safetensors', '.pth', '.pt'];

const here = dirname(fileURLToPath(import.meta.url));
export const PROJECT_ROOT = resolve(here, '../..');
/** The bundled model, shipped in the package (models/default). */
export const DEFAULT_MODEL_DIR = join(PROJECT_ROOT, 'models', 'default');

/** The folders of the default model: the bundled one, nothing else (no folder outside the package). */
export function defaultModelDirs(dir = DEFAULT_MODEL_DIR): string[] {
  if (existsSync(join(dir, 'model.json'))) return [dir];
  throw new StrDiffusionError('BAD_CHECKPOINT', (n) => `no default model: ${dir} does not exist (an incomplete install?); name a model folder with ${n('checkpoints')}`, { option: 'checkpoints' });
}

function findFile(dirs: string[], kind: NetKind, metas: Map<string, ModelMeta>): string | undefined {
  for (const d of dirs) {
    const named = metas.get(d)?.files?.[kind];
    if (named) return join(d, named);
  }
  for (const d of dirs) {
    const names = new Set(readdirSync(d));
    for (const stem of ALIASES[kind]) for (const ext of EXTS) if (names.has(stem + ext)) return join(d, stem + ext);
  }
  return undefined;
}

/** The weight file of each network that loadModel would read from `dirs` (none read here);
 * a network without a file is an error naming the folders. */
export function modelFiles(dirs: string[]): Record<NetKind, string> {
  const metas = new Map(dirs.map((d) => [d, readModelJson(d)]));
  const files = {} as Record<NetKind, string>;
  for (const kind of NET_KINDS) {
    const f = findFile(dirs, kind, metas);
    if (!f) throw new Error(`checkpoint folder ${dirs.join(', ')} has no ${kind} network`);
    files[kind] = f;
  }
  return files;
}

/** model.json holds a few settings: a few KB; anything near this is not one */
const MAX_MODEL_JSON_BYTES = 16 * 2 ** 20;

/** The text of a small regular file; a FIFO, device or folder is refused without blocking on it. */
function readRegularFile(p: string, max: number): string {
  const fd = openSync(p, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > max) throw new Error(`${st.size} bytes, more than a model.json can need (${max})`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Reads and checks `dir/model.json`, keeping every field; {} when there is none. */
export function readModelJson(dir: string): ModelMeta {
  const p = join(dir, 'model.json');
  if (!existsSync(p)) return {};
  try {
    return validateModelMeta(JSON.parse(readRegularFile(p, MAX_MODEL_JSON_BYTES)));
  } catch (e) {
    throw new Error(`${p}: ${e instanceof SyntaxError ? 'not valid JSON (' + e.message + ')' : (e as Error).message}`);
  }
}

/** Checks `meta` as readModelJson would and writes `dir/model.json` atomically (temp file + rename). */
export function writeModelJson(dir: string, meta: ModelMeta): void {
  const p = join(dir, 'model.json');
  try {
    validateModelMeta(meta);
  } catch (e) {
    throw new Error(`${p}: refusing to write: ${(e as Error).message}`);
  }
  writeFileAtomic(p, JSON.stringify(meta, null, 2) + '\n');
}

/** model.json fields that describe one training run's network rather than a model */
const PER_RUN_FIELDS = ['kind', 'config', 'files'];

/**
 * One model.json for the model `dirs` make together: each field from the first folder that sets it
 * (as T and size always were), except what belongs to one network: `prediction` is resolved per U-Net
 * from the folder holding its file, `fill` as modelFill resolves it, and a run folder's `kind`,
 * `config` and `files` are dropped when several folders are merged. One folder: its model.json as is.
 */
export function mergeModelMeta(dirs: string[], files: Partial<Record<NetKind, string>>, fill?: Fill, kind?: TextureGuideKind): ModelMeta {
  const metas = dirs.map((d) => readModelJson(d));
  if (metas.length === 1) return { ...metas[0]! };
  const merged: ModelMeta = {};
  for (const m of metas) for (const [k, v] of Object.entries(m)) if (!(k in merged) && !PER_RUN_FIELDS.includes(k)) merged[k] = v;
  const pred: Partial<Record<'structure' | 'texture', Prediction>> = {};
  for (const kind of ['structure', 'texture'] as const) {
    const p = files[kind] ? predictionOf(files[kind]!, kind, dirs) : undefined;
    if (p !== undefined) pred[kind] = p;
  }
  delete merged.prediction;
  if (Object.keys(pred).length > 0) merged.prediction = pred;
  delete merged.fill;
  if (fill !== undefined && metas.some((m) => m.fill !== undefined)) merged.fill = fill;
  delete merged.structureKind;
  if (kind !== undefined && metas.some((m) => m.structureKind !== undefined)) merged.structureKind = kind;
  return merged;
}

/** The prediction of the U-Net in `file`: from the model.json of the folder holding it. */
function predictionOf(file: string, kind: 'structure' | 'texture', dirs: string[]): Prediction | undefined {
  const dir = dirs.find((d) => resolve(d) === resolve(dirname(file))) ?? dirname(file);
  return predictionIn(readModelJson(dir), kind);
}

/** The window size the model was made for (`size` in the first model.json that has one). */
export function modelWindowSize(dirs: string[]): number | undefined {
  for (const d of dirs) {
    const s = existsSync(d) ? readModelJson(d).size : undefined; // checked by readModelJson: MIN_SIZE..MAX_SIZE
    if (s !== undefined) return s;
  }
  return undefined;
}

/**
 * The hole fill of the texture mean a model was trained with: `fill` in the model.json of the
 * folders holding the texture and discriminator networks (both were trained with μ), else of any
 * folder given; 'zero' (the official μ) when none says. Folders that disagree are an error.
 * (The structure network never sees μ, so its folder's value is only a fallback.)
 */
export function modelFill(dirs: string[], files?: Partial<Record<NetKind, string>>): Fill {
  const metas = dirs.map((d) => ({ dir: d, meta: existsSync(d) ? readModelJson(d) : ({} as ModelMeta) }));
  const owners = new Set<string>();
  for (const k of ['texture', 'discriminator'] as NetKind[]) {
    const f = files?.[k];
    if (f) owners.add(resolve(dirname(f)));
  }
  const relevant = owners.size ? metas.filter((m) => owners.has(resolve(m.dir))) : metas;
  const declared = (relevant.some((m) => m.meta.fill !== undefined) ? relevant : metas).filter((m) => m.meta.fill !== undefined);
  const first = declared[0];
  if (!first) return 'zero';
  const other = declared.find((m) => m.meta.fill !== first.meta.fill);
  if (other) {
    throw new Error(
      `the model folders disagree on the fill: ${join(first.dir, 'model.json')} says "${first.meta.fill}", ${join(other.dir, 'model.json')} says "${other.meta.fill}"`,
    );
  }
  return first.meta.fill!;
}

/**
 * The structure kind each network was trained for: `structureKind` in the model.json of the folder
 * holding its file (absent: gray2edge, the official kind). The networks must agree: a texture
 * network guided by one structure process cannot read another's states. A texture network
 * without SPADE is 'none' whatever its folder says.
 */
export function modelStructureKind(dirs: string[], files: Partial<Record<NetKind, string>>, plainTexture = false): TextureGuideKind {
  if (plainTexture) return 'none';
  const kinds: { kind: NetKind; sk: TextureGuideKind; file: string }[] = [];
  for (const k of NET_KINDS) {
    const f = files[k];
    if (!f) continue;
    const dir = dirs.find((d) => resolve(d) === resolve(dirname(f))) ?? dirname(f);
    kinds.push({ kind: k, sk: (existsSync(dir) ? readModelJson(dir).structureKind : undefined) ?? 'gray2edge', file: f });
  }
  const first = kinds[0];
  if (!first) return 'gray2edge';
  for (const o of kinds) {
    if (o.sk === 'none') throw new Error(`${o.file}: model.json says structureKind "none" (an unguided texture network), but the ${o.kind} network's checkpoint ${o.kind === 'texture' ? 'has SPADE blocks' : 'is part of a structure-guided model'}`);
    if (o.sk !== first.sk) {
      throw new Error(`the networks were trained for different structure kinds: the ${first.kind} network (${first.file}) for ${first.sk}, the ${o.kind} network (${o.file}) for ${o.sk}; train them with the same --structure-kind`);
    }
  }
  return first.sk;
}

/**
 * Load the three networks from `dirs` (searched in order). `T` comes from model.json or `opts.T`
 * (which must agree with it); a folder without either is an error naming the option `T`.
 */
export function loadModel(dirs: string[], opts: { T?: number; kinds?: NetKind[] } = {}): Model {
  if (dirs.length === 0) throw new Error('no checkpoint folder given');
  // cheap checks first: a bad T or model.json fails before any weight is read
  if (opts.T !== undefined) {
    try {
      checkT(opts.T);
    } catch (e) {
      throw new StrDiffusionError('BAD_OPTION', (e as Error).message, { option: 'T' });
    }
  }
  for (const d of dirs) {
    if (!existsSync(d)) throw new Error(`checkpoint folder not found: ${d}`);
    if (!statSync(d).isDirectory()) throw new Error(`checkpoint path is not a folder: ${d}`);
  }
  const metas = new Map(dirs.map((d) => [d, readModelJson(d)]));
  const metaT = dirs.map((d) => metas.get(d)!.T).find((t) => t !== undefined);
  if (opts.T !== undefined && metaT !== undefined && opts.T !== metaT) {
    throw new StrDiffusionError('BAD_OPTION', (n) => `T = ${opts.T} does not match the checkpoint's schedule (model.json says T = ${metaT}); the schedule depends on T, so use ${n('T', metaT)}`, { option: 'T' });
  }
  const T = opts.T ?? metaT;
  if (T === undefined) {
    throw new StrDiffusionError(
      'BAD_CHECKPOINT',
      (n) => `the diffusion length T of ${dirs.join(', ')} is unknown: pass ${n('T')} (the authors' Places2 checkpoint uses 400, PSV 100) or add {"T": N} to model.json`,
      { option: 'T' },
    );
  }
  checkT(T);
  const size = modelWindowSize(dirs);
  // a present texture network first: an unguided (IR-SDE) one makes a texture-only model
  const kinds: NetKind[] = [...(opts.kinds ?? NET_KINDS)];
  if (findFile(dirs, 'texture', metas)) kinds.sort((a, b) => (a === 'texture' ? -1 : b === 'texture' ? 1 : 0));
  const files = {} as Record<NetKind, string>;
  const weights = {} as Record<NetKind, StateDict>;
  const configs = {} as ModelConfigs;
  let plainTexture = false;
  for (const kind of kinds) {
    if (plainTexture && kind !== 'texture') continue;
    const f = findFile(dirs, kind, metas);
    // without a discriminator the model still samples with every variant that does not score
    // candidates (split, no-resampling, one-call, …); the sampler refuses the others by name
    if (!f && kind === 'discriminator') continue;
    if (!f) {
      const tried = ALIASES[kind].slice(0, 3).map((s) => `${s}.safetensors|.pth`).join(', ');
      throw new Error(`checkpoint folder ${dirs.join(', ')} has no ${kind} network (looked for ${tried}, ...)`);
    }
    // names and shapes are checked from the file's header, before its data is read or inflated
    const reader = openCheckpoint(f);
    let cfg: UNetConfig | DiscConfig;
    let sd: StateDict;
    try {
      const headers = stripModulePrefix(reader.headers);
      cfg = kind === 'discriminator' ? inferDiscConfig(headers, f) : inferUNetConfig(headers, f);
      if (kind === 'texture' && (cfg as UNetConfig).inNc !== 3) throw new Error(`${f}: expected the texture network, but the checkpoint has ${(cfg as UNetConfig).inNc} image channel(s), not 3 (is it the structure network?)`);
      // a texture network without SPADE is IR-SDE's unguided one: a texture-only model
      if (kind === 'texture' && !(cfg as UNetConfig).spade) plainTexture = true;
      if (kind === 'structure' && (cfg as UNetConfig).spade) throw new Error(`${f}: expected the structure network, but the checkpoint has SPADE blocks (is it the texture network?)`);
      loadStrict(headers, paramSpec(kind, cfg), `${f} (${kind} network)`);
      sd = stripModulePrefix(reader.read());
    } finally {
      reader.close();
    }
    weights[kind] = checkWeights(kind, cfg, sd, f);
    (configs as any)[kind] = cfg;
    files[kind] = f;
  }
  // 'x0' prediction comes from the model.json beside each U-Net's file; its graph needs the SDE's tables
  const sde = new IRSDE({ T });
  for (const kind of ['structure', 'texture'] as const) {
    if (!configs[kind]) continue;
    if (predictionOf(files[kind], kind, dirs) === 'x0') configs[kind] = withLevelTables({ ...configs[kind], prediction: 'x0' }, sde);
  }
  const fill = modelFill(dirs, files);
  const structureKind = modelStructureKind(dirs, files, plainTexture);
  return { T, configs, weights, files, meta: mergeModelMeta(dirs, files, fill, structureKind), size, fill, structureKind };
}

/** `--checkpoints a,b,c` or repeated: folders in search order; none -> the default model. */
export function checkpointDirs(arg?: string | string[]): string[] {
  if (!arg || (Array.isArray(arg) && arg.length === 0)) return defaultModelDirs();
  const list = (Array.isArray(arg) ? arg : [arg]).flatMap((a) => a.split(',')).filter(Boolean);
  return list.map((d) => resolve(d));
}
