/**
 * What a model folder declares and what its weights imply, with no file access: model.json's
 * fields and their checks, the network configs read from the weights' shapes, the window-size and
 * T bounds. checkpoints.ts reads folders with these; the browser build reads fetched files.
 */
import { SPACINGS, isOneOf, SAMPLER_VARIANTS, SOLVERS, STEP_RULES, STRUCTURE_GUIDES, diagnosticGuideRefusal, isDiagnosticOnlyGuide, TEXTURE_GUIDE_KINDS, type Spacing, type Solver, type StepRule, type TextureGuideKind } from '../options.js';
import { FILLS, isFill, type Fill } from '../sde/fill.js';
import type { DiscConfig, ModelConfigs, UNetConfig } from '../nn/config.js';
import type { NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { NET_KINDS } from '../nn/models.js';
import { isPrediction, PREDICTIONS, type Prediction } from '../nn/config.js';
import { MAX_T } from '../sde/schedule.js';

/** The smallest and largest model window (`size`): 256 is the official training size. */
export const MIN_SIZE = 16;
export const MAX_SIZE = 4096;

/** Optional `model.json` beside the weights (read by readModelJson, written by writeModelJson). */
export interface ModelMeta {
  /** diffusion length, an integer from 2 to MAX_T */
  T?: number;
  /** weight file per network, relative to the folder */
  files?: Partial<Record<NetKind, string>>;
  /** model window size the model was made for, an integer from MIN_SIZE to MAX_SIZE */
  size?: number;
  /** the sampler step rule the model was made for (default 'sde', the official one) */
  stepRule?: StepRule;
  /** the solver the model was made for (wins over stepRule; default stepRule, else 'sde') */
  solver?: Solver;
  /** sampling steps N (default T, the full grid) */
  steps?: number;
  /** how the sampling grid spaces its levels (default 'uniform') */
  spacing?: Spacing;
  /** what the texture mean μ holds in the hole, as trained (src/sde/fill.ts; default 'zero', the official μ) */
  fill?: Fill;
  /** what the U-Nets' last conv predicts (nn/config.ts; default 'eps', official): one value for
   * every U-Net in the folder (a run folder) or one per network ({"structure": "x0", ...}) */
  prediction?: Prediction | Partial<Record<'structure' | 'texture', Prediction>>;
  /** the structure process the networks were trained for (src/structure/kinds.ts; default 'gray2edge',
   * official); 'none': an unguided IR-SDE texture network */
  structureKind?: TextureGuideKind;
  [k: string]: unknown;
}

export interface Model {
  T: number;
  configs: ModelConfigs;
  weights: Record<NetKind, StateDict>;
  files: Record<NetKind, string>;
  /** model.json of the folders together (mergeModelMeta): each setting from the first folder that
   * has it, `prediction` per U-Net; one folder: its model.json as is */
  meta: ModelMeta;
  /** window size the model was made for (modelWindowSize of its folders) */
  size?: number;
  /** the texture mean's hole fill the model was trained with (`modelFill`): pass it to the sampler */
  fill: Fill;
  /**
   * the structure process the networks were trained for (`modelStructureKind`): pass it to the
   * sampler. 'none': a texture-only model (an IR-SDE texture network without SPADE; no structure
   * or discriminator network is loaded, `weights`/`configs` hold the texture alone).
   */
  structureKind: TextureGuideKind;
}

/** The U-Net's config from its checkpoint's shapes (a state_dict, or a reader's headers). */
export function inferUNetConfig(sd: ReadonlyMap<string, { shape: readonly number[] }>, what: string): UNetConfig {
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

export function inferDiscConfig(sd: ReadonlyMap<string, { shape: readonly number[] }>, what: string): DiscConfig {
  const start = sd.get('start_conv.weight');
  const temb = sd.get('t_embed.main.0.weight');
  if (!start || !temb) throw new Error(`${what}: not a StrDiffusion discriminator checkpoint (no start_conv.weight / t_embed.main.0.weight)`);
  return { nc: start.shape[1]!, ngf: start.shape[0]! / 2, tEmbDim: temb.shape[0]! };
}

const show = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v));

/** `T`: an integer from 2 to MAX_T; one-line error naming the value otherwise. */
export function checkT(T: unknown, what = 'T'): number {
  if (typeof T !== 'number' || !Number.isInteger(T) || T < 2) throw new Error(`${what} must be an integer >= 2 (got ${show(T)})`);
  if (T > MAX_T) throw new Error(`${what} must be at most ${MAX_T} (got ${show(T)}): the official checkpoints use 100 and 400`);
  return T;
}

/** `size` (the model window): an integer from MIN_SIZE to MAX_SIZE. */
export function checkSize(size: unknown, what = 'size'): number {
  if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_SIZE) throw new Error(`${what} must be an integer >= ${MIN_SIZE} (got ${show(size)})`);
  if (size > MAX_SIZE) throw new Error(`${what} must be at most ${MAX_SIZE} (got ${show(size)})`);
  return size;
}

/** Checks every field of model.json that something reads; other fields (descriptions) pass as they are. */
export function validateModelMeta(meta: unknown): ModelMeta {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error(`must hold a JSON object (got ${Array.isArray(meta) ? 'an array' : show(meta)})`);
  const m = meta as ModelMeta;
  if (m.T !== undefined) checkT(m.T);
  if (m.size !== undefined) checkSize(m.size);
  if (m.stepRule !== undefined && !isOneOf(STEP_RULES, m.stepRule)) {
    throw new Error(`stepRule must be "sde" or "posterior" (got ${JSON.stringify(m.stepRule)})`);
  }
  if (m.solver !== undefined && !isOneOf(SOLVERS, m.solver)) throw new Error(`solver must be one of ${SOLVERS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(m.solver)})`);
  if (m.spacing !== undefined && !isOneOf(SPACINGS, m.spacing)) throw new Error(`spacing must be one of ${SPACINGS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(m.spacing)})`);
  if (m.steps !== undefined && !(typeof m.steps === 'number' && Number.isInteger(m.steps) && m.steps >= 1 && (m.T === undefined || m.steps <= m.T))) {
    throw new Error(`steps must be an integer from 1 to T (got ${JSON.stringify(m.steps)})`);
  }
  const preds = m.prediction === undefined ? [] : typeof m.prediction === 'object' && m.prediction !== null ? Object.values(m.prediction) : [m.prediction];
  for (const v of preds) if (!isPrediction(v)) throw new Error(`prediction must be one of ${PREDICTIONS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(v)})`);
  if (m.sampler !== undefined && !isOneOf(SAMPLER_VARIANTS, m.sampler)) {
    throw new Error(`sampler must be one of ${SAMPLER_VARIANTS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(m.sampler)})`);
  }
  // a model's default guide fills holes for real: the diagnostic oracle is eval's --structure only
  if (isDiagnosticOnlyGuide(m.structureGuide)) throw new Error(diagnosticGuideRefusal(`structureGuide "${m.structureGuide}"`));
  if (m.structureGuide !== undefined && !isOneOf(STRUCTURE_GUIDES, m.structureGuide)) {
    throw new Error(`structureGuide must be one of ${STRUCTURE_GUIDES.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(m.structureGuide)})`);
  }
  if (m.structureKind !== undefined && !isOneOf(TEXTURE_GUIDE_KINDS, m.structureKind)) {
    throw new Error(`structureKind must be one of ${TEXTURE_GUIDE_KINDS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(m.structureKind)})`);
  }
  if (m.fill !== undefined && !isFill(m.fill)) {
    throw new Error(`fill must be one of ${FILLS.map((f) => `"${f}"`).join(', ')} (got ${JSON.stringify(m.fill)})`);
  }
  if (m.files !== undefined) {
    if (typeof m.files !== 'object' || m.files === null || Array.isArray(m.files)) throw new Error('files must be an object {"structure": "...", "texture": "...", "discriminator": "..."}');
    for (const [k, v] of Object.entries(m.files)) {
      if (!(NET_KINDS as string[]).includes(k)) throw new Error(`files: unknown network "${k}" (expected ${NET_KINDS.join(', ')})`);
      if (typeof v !== 'string' || v === '') throw new Error(`files.${k} must be a file name (got ${show(v)})`);
    }
  }
  return m;
}

/** The prediction `meta` (one folder's model.json) declares for a U-Net, if any. */
export function predictionIn(meta: ModelMeta, kind: 'structure' | 'texture'): Prediction | undefined {
  return typeof meta.prediction === 'object' && meta.prediction !== null ? meta.prediction[kind] : meta.prediction;
}
