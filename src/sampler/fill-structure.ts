/**
 * A structure "network" without a network (not in the official code): the exact noise of the
 * structure SDE for a fixed x0 estimate g, ε = (x − μS − (g − μS)·e_t)/σ̄_t. With it, the
 * sampler's structure steps are the exact posterior steps towards g, so the texture network is
 * guided by the same analytic structure posterior it was trained with, built from a classical
 * estimate g (the grayscale with its hole filled by OpenCV Telea) instead of the structure
 * network's own inpainting. For models whose structure network is weaker than the fill.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NetInputs, NetRunner } from '../exec/types.js';
import type { F32Tensor } from '../util/tensor.js';
import { filledMean } from '../sde/fill.js';
import { STRUCTURE_GUIDES, type StructureGuide } from '../options.js';

/** How the texture network's structure guide is made. */
export { STRUCTURE_GUIDES, type StructureGuide } from '../options.js';

export function parseStructureGuide(v: string | undefined, what = '--structure'): StructureGuide | undefined {
  if (v === undefined) return undefined;
  if ((STRUCTURE_GUIDES as readonly string[]).includes(v)) return v as StructureGuide;
  throw new Error(`${what} must be one of ${STRUCTURE_GUIDES.join(', ')} (got "${v}")`);
}

export const STRUCTURE_HELP = "the texture network's structure guide: network (the structure diffusion, default) | fill (the analytic structure posterior towards the Telea-filled grayscale); default: the model's model.json";

/** The structure runner of the `fill` guide for one image: gray [1,1,H,W], mask [1,1,H,W] (1 = known). Needs OpenCV loaded (prepareFill('telea')). */
export function fillStructureRunner(sde: IRSDE, gray: F32Tensor, mask: F32Tensor): NetRunner {
  const g = filledMean('telea', gray, mask);
  return {
    kind: 'structure',
    async run(inp: NetInputs): Promise<F32Tensor> {
      const t = inp.t[0]!;
      if (!inp.mu || inp.x.data.length !== g.length || inp.t.some((v) => v !== t)) throw new Error('fill structure guide: expects the sampler\'s [1,1,H,W] structure state and mean');
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
