/**
 * A model = the three networks' weights + their configs + the diffusion length T they were trained
 * with. It is read from one or more folders (e.g. the three run folders written by `train`, or a
 * folder with the authors' released .pth files). Configs are inferred from the weights' shapes, so
 * the official checkpoints need no metadata; T cannot be inferred and comes from `model.json`
 * or the caller (the authors' Places2 checkpoint is T = 400, the PSV one T = 100).
 */
import { isStepRule, SAMPLER_VARIANTS, type StepRule } from '../sampler/strdiffusion.js';
import { STRUCTURE_GUIDES } from '../sampler/fill-structure.js';
import { FILLS, isFill, type Fill } from '../sde/fill.js';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DiscConfig, ModelConfigs, UNetConfig } from '../nn/config.js';
import type { NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { loadCheckpoint } from '../weights/statedict.js';
import { stripModulePrefix } from '../weights/statedict.js';
import { checkWeights, NET_KINDS } from '../nn/models.js';
import { isPrediction, PREDICTIONS, type Prediction } from '../nn/config.js';
import { IRSDE } from '../sde/irsde.js';
import { withLevelTables } from '../sde/prediction.js';

/** Optional `model.json` beside the weights. */
export interface ModelMeta {
  T?: number;
  /** weight file per network, relative to the folder */
  files?: Partial<Record<NetKind, string>>;
  /** model window size the model was made for */
  size?: number;
  /** the sampler step rule the model was made for (default 'sde', the official one) */
  stepRule?: StepRule;
  /** what the texture mean μ holds in the hole, as trained (src/sde/fill.ts; default 'zero', the official μ) */
  fill?: Fill;
  /** what the U-Nets' last conv predicts (nn/config.ts; default 'eps', official): one value for
   * every U-Net in the folder (a run folder) or one per network ({"structure": "x0", ...}) */
  prediction?: Prediction | Partial<Record<'structure' | 'texture', Prediction>>;
  [k: string]: unknown;
}

export interface Model {
  T: number;
  configs: ModelConfigs;
  weights: Record<NetKind, StateDict>;
  files: Record<NetKind, string>;
  meta: ModelMeta;
  /** window size the model was made for (modelWindowSize of its folders) */
  size?: number;
  /** the texture mean's hole fill the model was trained with (`modelFill`): pass it to the sampler */
  fill: Fill;
}

/** File stems accepted for each network, most specific first. */
const ALIASES: Record<NetKind, string[]> = {
  structure: ['structure', 'netS', 'Gs', 'structure_G', 'str'],
  texture: ['texture', 'netG', 'G', 'texture_G', 'latest_G', 'new_G'],
  discriminator: ['discriminator', 'netD', 'D', 'dis', 'latest_D', 'new_D'],
};
const EXTS = ['.safetensors', '.pth', '.pt'];

const here = dirname(fileURLToPath(import.meta.url));
export const PROJECT_ROOT = resolve(here, '../..');
export const DEFAULT_MODEL_DIR = join(PROJECT_ROOT, 'models', 'default');
/** Until a trained default model ships, the parity fixtures' small networks stand in (T = 100). */
export const FIXTURE_MODEL_DIR = resolve(PROJECT_ROOT, '../shared/fixtures/parity/nets');

export function defaultModelDirs(): string[] {
  if (existsSync(join(DEFAULT_MODEL_DIR, 'model.json'))) return [DEFAULT_MODEL_DIR];
  if (existsSync(FIXTURE_MODEL_DIR)) return [FIXTURE_MODEL_DIR];
  throw new Error(`no default model: ${DEFAULT_MODEL_DIR} does not exist; pass --checkpoints DIR`);
}

export function inferUNetConfig(sd: StateDict, what: string): UNetConfig {
  const init = sd.get('init_conv.weight');
  const fin = sd.get('final_conv.weight');
  if (!init || !fin) throw new Error(`${what}: not a StrDiffusion U-Net checkpoint (no init_conv.weight / final_conv.weight)`);
  let depth = 0;
  while (sd.has(`downs.${depth}.0.block1.proj.weight`)) depth++;
  return {
    nf: init.shape[0]!,
    inNc: init.shape[1]! / 2,
    outNc: fin.shape[0]!,
    depth,
    spade: sd.has('downs.0.4.conv_0.weight_orig'),
  };
}

export function inferDiscConfig(sd: StateDict, what: string): DiscConfig {
  const start = sd.get('start_conv.weight');
  const temb = sd.get('t_embed.main.0.weight');
  if (!start || !temb) throw new Error(`${what}: not a StrDiffusion discriminator checkpoint (no start_conv.weight / t_embed.main.0.weight)`);
  return { nc: start.shape[1]!, ngf: start.shape[0]! / 2, tEmbDim: temb.shape[0]! };
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

function readMeta(dir: string): ModelMeta {
  const p = join(dir, 'model.json');
  if (!existsSync(p)) return {};
  try {
    const meta = JSON.parse(readFileSync(p, 'utf8')) as ModelMeta;
    if (meta.stepRule !== undefined && !isStepRule(meta.stepRule)) {
      throw new Error(`stepRule must be "sde" or "posterior" (got ${JSON.stringify(meta.stepRule)})`);
    }
    const preds = meta.prediction === undefined ? [] : typeof meta.prediction === 'object' ? Object.values(meta.prediction) : [meta.prediction];
    for (const v of preds) if (!isPrediction(v)) throw new Error(`prediction must be one of ${PREDICTIONS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(v)})`);
    if (meta.sampler !== undefined && !(SAMPLER_VARIANTS as readonly unknown[]).includes(meta.sampler)) {
      throw new Error(`sampler must be one of ${SAMPLER_VARIANTS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(meta.sampler)})`);
    }
    if (meta.structureGuide !== undefined && !(STRUCTURE_GUIDES as readonly unknown[]).includes(meta.structureGuide)) {
      throw new Error(`structureGuide must be one of ${STRUCTURE_GUIDES.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(meta.structureGuide)})`);
    }
    if (meta.fill !== undefined && !isFill(meta.fill)) {
      throw new Error(`fill must be one of ${FILLS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(meta.fill)})`);
    }
    return meta;
  } catch (e) {
    throw new Error(`${p}: ${e instanceof SyntaxError ? 'not valid JSON (' + e.message + ')' : (e as Error).message}`);
  }
}

/** The window size the model was made for (`size` in the first model.json that has one). */
export function modelWindowSize(dirs: string[]): number | undefined {
  for (const d of dirs) {
    const s = existsSync(d) ? readMeta(d).size : undefined;
    if (s !== undefined) {
      if (!Number.isInteger(s) || s < 16) throw new Error(`${join(d, 'model.json')}: size must be an integer >= 16 (got ${JSON.stringify(s)})`);
      return s;
    }
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
  const metas = dirs.map((d) => ({ dir: d, meta: existsSync(d) ? readMeta(d) : ({} as ModelMeta) }));
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
 * Load the three networks from `dirs` (searched in order). `T` overrides model.json. Fixture
 * folders (no model.json) default to T = 100, like the parity fixtures' sampler run.
 */
export function loadModel(dirs: string[], opts: { T?: number; kinds?: NetKind[] } = {}): Model {
  if (dirs.length === 0) throw new Error('no checkpoint folder given');
  for (const d of dirs) {
    if (!existsSync(d)) throw new Error(`checkpoint folder not found: ${d}`);
    if (!statSync(d).isDirectory()) throw new Error(`checkpoint path is not a folder: ${d}`);
  }
  const metas = new Map(dirs.map((d) => [d, readMeta(d)]));
  const kinds = opts.kinds ?? NET_KINDS;
  const files = {} as Record<NetKind, string>;
  const weights = {} as Record<NetKind, StateDict>;
  const configs = {} as ModelConfigs;
  for (const kind of kinds) {
    const f = findFile(dirs, kind, metas);
    if (!f) {
      const tried = ALIASES[kind].slice(0, 3).map((s) => `${s}.safetensors|.pth`).join(', ');
      throw new Error(`checkpoint folder ${dirs.join(', ')} has no ${kind} network (looked for ${tried}, ...)`);
    }
    const sd = stripModulePrefix(loadCheckpoint(f));
    const cfg = kind === 'discriminator' ? inferDiscConfig(sd, f) : inferUNetConfig(sd, f);
    if (kind === 'texture' && !(cfg as UNetConfig).spade) throw new Error(`${f}: expected the texture network, but the checkpoint has no SPADE blocks (is it the structure network?)`);
    if (kind === 'structure' && (cfg as UNetConfig).spade) throw new Error(`${f}: expected the structure network, but the checkpoint has SPADE blocks (is it the texture network?)`);
    weights[kind] = checkWeights(kind, cfg, sd, f);
    (configs as any)[kind] = cfg;
    files[kind] = f;
  }
  const metaT = dirs.map((d) => metas.get(d)!.T).find((t) => t !== undefined);
  const fixture = dirs.every((d) => !existsSync(join(d, 'model.json')));
  const T = opts.T ?? metaT ?? (fixture && resolve(dirs[0]!) === FIXTURE_MODEL_DIR ? 100 : undefined);
  if (T === undefined) {
    throw new Error(`the diffusion length T of ${dirs.join(', ')} is unknown: pass --T (the authors' Places2 checkpoint uses 400, PSV 100) or add {"T": N} to model.json`);
  }
  if (opts.T !== undefined && metaT !== undefined && opts.T !== metaT) {
    throw new Error(`T = ${opts.T} does not match the checkpoint's schedule (model.json says T = ${metaT}); the schedule depends on T, so use --T ${metaT}`);
  }
  if (!Number.isInteger(T) || T < 2) throw new Error(`T must be an integer >= 2 (got ${T})`);
  // 'x0' prediction comes from the model.json beside each U-Net's file; its graph needs the SDE's tables
  const sde = new IRSDE({ T });
  for (const kind of ['structure', 'texture'] as const) {
    if (!configs[kind]) continue;
    const meta = metas.get(dirs.find((d) => resolve(d) === resolve(dirname(files[kind]))) ?? '') ?? readMeta(dirname(files[kind]));
    const p = typeof meta.prediction === 'object' ? meta.prediction[kind] : meta.prediction;
    if (p === 'x0') configs[kind] = withLevelTables({ ...configs[kind], prediction: p }, sde);
  }
  return { T, configs, weights, files, meta: metas.get(dirs[0]!)!, size: modelWindowSize(dirs), fill: modelFill(dirs, files) };
}

/** `--checkpoints a,b,c` or repeated: folders in search order; none -> the default model. */
export function checkpointDirs(arg?: string | string[]): string[] {
  if (!arg || (Array.isArray(arg) && arg.length === 0)) return defaultModelDirs();
  const list = (Array.isArray(arg) ? arg : [arg]).flatMap((a) => a.split(',')).filter(Boolean);
  return list.map((d) => resolve(d));
}
