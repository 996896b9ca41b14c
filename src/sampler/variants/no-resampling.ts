/**
 * `no-resampling`: the paper's ablation: structure guidance at every early step (official paste
 * level), no discriminator, no resampling.
 */
import { paste } from '../ops.js';
import { earlyResult, guidedPair, levelsAt, officialKnown, type EarlyStep } from '../resample.js';

export const noResamplingEarly: EarlyStep = async (ctx, ops, y, xIn, index, h) => {
  const { s, t } = levelsAt(ctx, index);
  const xk = officialKnown(ops, s);
  const first = await guidedPair(ops, paste(xk, xIn, ctx.mask), y, s, t, h);
  return earlyResult(first, { y: first.y, records: [], end: 'no_resample' }, paste(xk, first.x, ctx.mask), 0, NaN);
};
