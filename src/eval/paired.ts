/**
 * Paired comparison of methods evaluated on the same (photo, mask, seed) pairs: for each method
 * against a reference method, the mean per-pair difference of a metric, on how many pairs the
 * method is better and worse, and the two-sided sign test's p-value. The ablation's rows differ
 * by tenths of a dB while single photos differ by several: pairing removes the photos' spread and
 * says which of the table's differences are more than noise.
 */
import type { PairRecord } from './index.js';

export interface PairedMetric {
  key: 'psnr' | 'ssim' | 'holeSwd';
  label: string;
  higherIsBetter: boolean;
}

/** the three numbers of the ablation table */
export const PAIRED_METRICS: readonly PairedMetric[] = [
  { key: 'psnr', label: 'PSNR (dB)', higherIsBetter: true },
  { key: 'ssim', label: 'SSIM', higherIsBetter: true },
  { key: 'holeSwd', label: 'hole SWD', higherIsBetter: false },
];

export interface PairedStat {
  /** pairs where both methods produced a result */
  n: number;
  /** mean of (method − reference) over the pairs */
  meanDiff: number;
  /** pairs where the method is better / worse than the reference (equal pairs count in neither) */
  better: number;
  worse: number;
  /** two-sided exact sign test over the unequal pairs: how likely a split at least this uneven is if neither method were better */
  p: number;
}

/** P(|X − n/2| ≥ |k − n/2|) for X ~ Binomial(n, ½), summed in logs (2^−n underflows for large n). */
export function signTestP(better: number, worse: number): number {
  const n = better + worse;
  if (n === 0) return 1;
  const k = Math.min(better, worse);
  let logTerm = -n * Math.LN2; // log P(X = 0)
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logTerm += Math.log((n - i + 1) / i);
    tail += Math.exp(logTerm);
  }
  return Math.min(1, 2 * tail);
}

/** `psnrCap`: per-image PSNRs of +∞ (null in results.json) count as the cap, as in the table's means. */
export function pairedStat(pairs: readonly PairRecord[], method: string, reference: string, metric: PairedMetric, psnrCap: number): PairedStat {
  const value = (r: PairRecord['results'][string] | undefined): number => {
    if (!r || 'error' in r) return NaN;
    const v = r[metric.key] as number | null;
    if (metric.key === 'psnr') return v === null || v > psnrCap ? psnrCap : v;
    return v ?? NaN;
  };
  let n = 0, sum = 0, better = 0, worse = 0;
  for (const p of pairs) {
    const a = value(p.results[method]);
    const b = value(p.results[reference]);
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    const d = a - b;
    n++;
    sum += d;
    if (d !== 0) (d > 0 === metric.higherIsBetter ? better++ : worse++);
  }
  return { n, meanDiff: n ? sum / n : NaN, better, worse, p: signTestP(better, worse) };
}
