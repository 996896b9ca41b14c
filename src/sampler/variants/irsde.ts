/**
 * `irsde`: IR-SDE's own inpainting sampler, the paper's plain texture diffusion: the unguided
 * texture network's reverse process from y_T = μ + λz to y_0, one solver step per grid level, no
 * structure, no paste of the known region (it is composited once at the end, as for every variant).
 */
import type { TextureStep } from '../resample.js';

export const irsdeStep: TextureStep = async (ctx, ops, y, index, prev) => {
  const s = ctx.grid[index]!;
  const t = ctx.grid[index + 1]!;
  const r = await ops.stepY(y, s, t, null, prev);
  return { y: r.state, history: r.history, k: 0 };
};
