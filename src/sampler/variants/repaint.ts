/**
 * `repaint`: RePaint's resampling (Lugmayr et al. 2022) on the texture process alone, the paper's
 * ablation A ("resampling without structure"). Every step pastes a fresh q(y_t | y_0) sample of the
 * known region over the denoised state at the level it reaches; at the official resampling
 * schedule's steps (grid position ≡ 0 mod jump) the state jumps back `re` grid levels (closed-form
 * re-noising) and is denoised down again, known region pasted at each level, u_max − 1 times: the
 * same schedule and iteration budget as StrDiffusion's structure resampling, so A and D compare
 * like with like. Draws per step: the solver's, then qY(t); per iteration: one jump, then per
 * level the solver's and a qY.
 */
import { paste } from '../ops.js';
import { gridRenoiseDepth, type TextureStep } from '../resample.js';

export const repaintStep: TextureStep = async (ctx, ops, y, index, prev) => {
  const g = ctx.grid;
  const r = await ops.stepY(y, g[index]!, g[index + 1]!, null, prev);
  let yt = paste(ops.qY(g[index + 1]!), r.state, ctx.mask);
  const k = gridRenoiseDepth(ctx, index);
  if (k === 0) return { y: yt, history: r.history, k };
  for (let i = 1; i < ctx.opts.uMax; i++) {
    let yj = ops.renoiseY(yt, g[index + 1]!, g[index + 1 - k]!);
    for (let j = index + 1 - k; j <= index; j++) {
      yj = paste(ops.qY(g[j + 1]!), (await ops.stepY(yj, g[j]!, g[j + 1]!, null)).state, ctx.mask);
    }
    yt = yj;
  }
  // after a jump back the state is no longer the solver's own continuation: multistep solvers restart
  return { y: yt, history: null, k };
};
