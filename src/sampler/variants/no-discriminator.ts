/**
 * `no-discriminator`: the official resampling schedule and re-noising without scoring: iterations
 * i = 1 … u_min − 1 average their candidate into the current one (the official "average" branch),
 * then the loop stops without drawing an i = u_min candidate. D is never called.
 */
import { paste } from '../ops.js';
import { candidate, earlyResult, gridRenoiseDepth, guidedPair, levelsAt, officialKnown, resampleLoop, type EarlyStep } from '../resample.js';

export const noDiscriminatorEarly: EarlyStep = async (ctx, ops, y, xIn, index, h) => {
  const { s, t } = levelsAt(ctx, index);
  const xk = officialKnown(ops, s);
  const first = await guidedPair(ops, paste(xk, xIn, ctx.mask), y, s, t, h);
  const k = gridRenoiseDepth(ctx, index);
  const rules = { renoiseLevel: (from: number) => from, known: () => xk };
  const average = async () => ({ decision: 'average' as const, Dp: NaN });
  const loop = await resampleLoop(ctx, first, k, (xc) => candidate(ctx, ops, y, xc, index, k, rules), average, ctx.opts.uMin);
  return earlyResult(first, loop, paste(xk, loop.x, ctx.mask), k, NaN);
};
