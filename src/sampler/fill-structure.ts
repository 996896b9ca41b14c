/**
 * Structure guides without a structure network (not in the official code). A structure "network"
 * for a fixed x0 estimate g returns the exact noise of the structure SDE,
 * ε = (x − μS − (g − μS)·e_t)/σ̄_t; with it the sampler's structure steps are the exact posterior
 * steps towards g, so the texture network is guided by the same analytic structure posterior it
 * was trained with, built from g instead of the structure network's own inpainting. The estimates:
 * - `fill`: the grayscale with its hole filled by OpenCV Telea (gray2edge models), for models whose
 *   structure network is weaker than the fill;
 * - `oracle` (a diagnostic, eval only): the structure x0 of the window's own pixels, the hole
 *   included; in eval these are the ground truth's, so the run scores what a perfect structure
 *   network would give (an upper bound). On a real photo it would guide the hole back to the
 *   object being removed, so where a hole is filled for real it is refused.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NetInputs, NetRunner } from '../exec/types.js';
import type { F32Tensor } from '../util/tensor.js';
import { filledMean, prepareFill } from '../sde/fill.js';
import { structureEnds } from '../structure/kinds.js';
import { textureOnly } from './strdiffusion.js';
import { StrDiffusionError } from '../util/errors.js';
import {
  DIAGNOSTIC_STRUCTURE_GUIDES,
  diagnosticGuideRefusal,
  isDiagnosticOnlyGuide,
  isOneOf,
  STRUCTURE_GUIDES,
  type DiagnosticStructureGuide,
  type SamplerVariant,
  type StructureGuide,
  type StructureKind,
  type TextureGuideKind,
} from '../options.js';

/** How the texture network's structure guide is made. */
export { STRUCTURE_GUIDES, DIAGNOSTIC_STRUCTURE_GUIDES, type StructureGuide, type DiagnosticStructureGuide } from '../options.js';

/** A user's guide (inpaint): `oracle` is refused with one line saying why. */
export function parseStructureGuide(v: string | undefined, what = '--structure'): StructureGuide | undefined {
  if (v === undefined) return undefined;
  if (isOneOf(STRUCTURE_GUIDES, v)) return v;
  if (isDiagnosticOnlyGuide(v)) throw new Error(diagnosticGuideRefusal(`${what} ${v}`));
  throw new Error(`${what} must be one of ${STRUCTURE_GUIDES.join(', ')} (got "${v}")`);
}

/** A diagnostic run's guide (eval, the pipeline): the user guides and `oracle`. */
export function parseDiagnosticStructureGuide(v: string | undefined, what = '--structure'): DiagnosticStructureGuide | undefined {
  if (v === undefined) return undefined;
  if (isOneOf(DIAGNOSTIC_STRUCTURE_GUIDES, v)) return v;
  throw new Error(`${what} must be one of ${DIAGNOSTIC_STRUCTURE_GUIDES.join(', ')} (got "${v}")`);
}

const GUIDES_HELP = "the texture network's structure guide: network (the structure diffusion, default) | fill (the analytic structure posterior towards the Telea-filled grayscale)";
export const STRUCTURE_HELP = `${GUIDES_HELP}; default: the model's model.json`;
/** eval's --structure: the user guides and the diagnostic oracle. */
export const EVAL_STRUCTURE_HELP = `${GUIDES_HELP} | oracle (diagnostic: the analytic posterior towards the ground truth's own structure under the hole, i.e. a perfect structure network: an upper bound); default: the model's model.json`;

/**
 * The structure runner of a fixed x0 estimate g [H·W] for one window: ε = (x − μS − (g − μS)·e_t)/σ̄_t,
 * so that the x̂0 the sampler derives from it is g at every level. Reads g, never copies it.
 */
export function knownStructureRunner(sde: IRSDE, g: Float32Array, what = 'known structure guide'): NetRunner {
  return {
    kind: 'structure',
    async run(inp: NetInputs): Promise<F32Tensor> {
      const t = inp.t[0]!;
      if (!inp.mu || inp.x.data.length !== g.length || inp.t.some((v) => v !== t)) throw new Error(`${what}: expects the sampler's [1,1,H,W] structure state and mean`);
      const e = sde.meanFactor(t);
      const s = sde.sigmaBar(t);
      const x = inp.x.data;
      const mu = inp.mu.data;
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = (x[i]! - mu[i]! - (g[i]! - mu[i]!) * e) / s;
      return { shape: [...inp.x.shape], data: out };
    },
    dispose() {},
  };
}

/** The structure runner of the `fill` guide for one image: gray [1,1,H,W], mask [1,1,H,W] (1 = known). Needs OpenCV loaded (prepareFill('telea')). */
export function fillStructureRunner(sde: IRSDE, gray: F32Tensor, mask: F32Tensor): NetRunner {
  return knownStructureRunner(sde, filledMean('telea', gray, mask), 'fill structure guide');
}

/** The structure runner of the `oracle` guide for one window: g = the kind's clean structure x0 of the window's own gray / edges [1,1,H,W], hole pixels included. */
export function oracleStructureRunner(sde: IRSDE, kind: StructureKind, gray: F32Tensor, edge: F32Tensor): NetRunner {
  return knownStructureRunner(sde, structureEnds(kind, gray.data, edge.data).x0, 'oracle structure guide');
}

/** What a guide needs loaded before its first window (fill: OpenCV.js). */
export async function prepareGuide(guide: DiagnosticStructureGuide): Promise<void> {
  if (guide === 'fill') await prepareFill('telea');
}

/**
 * The runner a guide puts in place of the structure network for one window, or null where the
 * structure network runs: the `network` guide, and every guide under a texture-only sampler (it
 * has no structure process to guide, so the guide is moot, as the model's default guide is).
 * `fill` is the gray2edge posterior only; `oracle` works for every structure kind.
 */
export function guideStructureRunner(
  guide: DiagnosticStructureGuide,
  a: { sde: IRSDE; kind: TextureGuideKind; variant: SamplerVariant; gray: F32Tensor; edge: F32Tensor; mask: F32Tensor },
): NetRunner | null {
  if (guide === 'network' || textureOnly(a.variant) || a.kind === 'none') return null;
  if (guide === 'fill') {
    if (a.kind !== 'gray2edge') throw new StrDiffusionError('BAD_OPTION', `the fill structure guide is the gray2edge structure posterior, but this model was trained for ${a.kind} structure`);
    return fillStructureRunner(a.sde, a.gray, a.mask);
  }
  return oracleStructureRunner(a.sde, a.kind, a.gray, a.edge);
}
