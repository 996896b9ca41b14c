/**
 * `official`: the authors' early step exactly (docs/design.md §5.3/5.4), quirks of §6.1 included:
 * the known structure of level s − 1 (the next level on the full grid) is pasted before denoising
 * from s, and the same sample at every level of the resampling loop (item 4); re-noising uses θ, σ of the level it comes from
 * (item 5); the candidate with the LOWER discriminator score wins (item 1).
 */
import { paste } from '../ops.js';
import { candidate, earlyResult, gridRenoiseDepth, guidedPair, judgeBy, levelsAt, officialKnown, resampleLoop, type EarlyStep } from '../resample.js';

export const officialEarly: EarlyStep = async (ctx, ops, y, xIn, index, h) => {
  const { s, t } = levelsAt(ctx, index);
  const xk = officialKnown(ops, s);
  const first = await guidedPair(ops, paste(xk, xIn, ctx.mask), y, s, t, h);
  const Dn = await ops.score(first.y, first.x, s);
  const k = gridRenoiseDepth(ctx, index);
  const rules = { renoiseLevel: (from: number) => from, known: () => xk };
  const loop = await resampleLoop(ctx, first, k, (xc) => candidate(ctx, ops, y, xc, index, k, rules), judgeBy(ctx, ops, s, Dn, (Dp, Dn) => Dp < Dn));
  return earlyResult(first, loop, paste(xk, loop.x, ctx.mask), k, Dn);
};
