/**
 * `improved`: the official step with docs/design.md §6.1 items 1, 4 and 5 fixed: the HIGHER score
 * wins (D is trained high = real); before denoising from any level τ a fresh q(x_τ | x_0) sample of
 * the known structure is pasted, as RePaint does; re-noising from t−1+j to t+j uses θ, σ of t+j.
 * The carried structure is the chosen candidate (the next step pastes its own level anyway).
 */
import { paste } from '../ops.js';
import { candidate, earlyResult, gridRenoiseDepth, guidedPair, judgeBy, levelsAt, resampleLoop, type EarlyStep } from '../resample.js';

export const improvedEarly: EarlyStep = async (ctx, ops, y, xIn, index, h) => {
  const { s, t } = levelsAt(ctx, index);
  const first = await guidedPair(ops, paste(ops.qS(s), xIn, ctx.mask), y, s, t, h);
  const Dn = await ops.score(first.y, first.x, s);
  const k = gridRenoiseDepth(ctx, index);
  const rules = { renoiseLevel: (_from: number, to: number) => to, known: (level: number) => ops.qS(level) };
  const loop = await resampleLoop(ctx, first, k, (xc) => candidate(ctx, ops, y, xc, index, k, rules), judgeBy(ctx, ops, s, Dn, (Dp, Dn) => Dp > Dn));
  return earlyResult(first, loop, loop.x, k, Dn);
};
