/**
 * The ablation report's paired comparison (src/eval/paired.ts): the exact sign test and the
 * per-pair differences, with equal pairs, failed runs and capped PSNRs.
 */
import { describe, it, expect } from 'vitest';
import { PAIRED_METRICS, pairedStat, signTestP } from '../src/eval/paired.js';
import type { PairRecord } from '../src/eval/index.js';

const metric = (key: string) => PAIRED_METRICS.find((m) => m.key === key)!;

function pair(results: Record<string, { psnr: number | null; holeSwd: number } | { error: string }>): PairRecord {
  const full = Object.fromEntries(
    Object.entries(results).map(([k, r]) => [k, 'error' in r ? r : { ssim: 0.9, holePsnr: 20, holeL1: 0.05, capped: r.psnr === null, seconds: 1, ...r }]),
  );
  return { bucket: '10-20%', index: 0, image: 'x.png', mask: 'generated', holeRatio: 0.15, seed: 1, results: full as PairRecord['results'] };
}

describe('signTestP', () => {
  it('is the two-sided binomial tail', () => {
    // 9 of 10: 2 · (C(10,0) + C(10,1)) / 2^10
    expect(signTestP(9, 1)).toBeCloseTo((2 * 11) / 1024, 15);
    expect(signTestP(1, 9)).toBeCloseTo((2 * 11) / 1024, 15);
    // reference values: scipy.stats.binomtest(k, n).pvalue
    expect(signTestP(60, 20) / 8.580559867049611e-6).toBeCloseTo(1, 9);
    // an even split, and nothing to test, are not evidence
    expect(signTestP(5, 5)).toBe(1);
    expect(signTestP(0, 0)).toBe(1);
    // thousands of pairs: no underflow of 2^-n to 0
    expect(signTestP(2000, 1900) / 0.11289365225934829).toBeCloseTo(1, 9);
  });
});

describe('pairedStat', () => {
  const pairs = [
    pair({ m: { psnr: 30, holeSwd: 50 }, ref: { psnr: 29, holeSwd: 60 } }),
    pair({ m: { psnr: 28, holeSwd: 70 }, ref: { psnr: 28, holeSwd: 60 } }),
    pair({ m: { psnr: 25, holeSwd: 40 }, ref: { psnr: 27, holeSwd: 45 } }),
    pair({ m: { error: 'out of memory' }, ref: { psnr: 20, holeSwd: 10 } }),
    pair({ m: { psnr: null, holeSwd: 0 }, ref: { psnr: 70, holeSwd: 1 } }),
  ];

  it('averages method − reference over the pairs both scored, equal pairs in neither count', () => {
    const st = pairedStat(pairs, 'm', 'ref', metric('psnr'), 100);
    // +1, 0, −2 and the capped +∞ counted as 100 against 70: +30; the failed run is skipped
    expect(st.n).toBe(4);
    expect(st.meanDiff).toBeCloseTo((1 + 0 - 2 + 30) / 4, 12);
    expect([st.better, st.worse]).toEqual([2, 1]);
    expect(st.p).toBe(signTestP(2, 1));
  });

  it('counts a lower SWD as better', () => {
    const st = pairedStat(pairs, 'm', 'ref', metric('holeSwd'), 100);
    expect(st.meanDiff).toBeCloseTo((-10 + 10 - 5 - 1) / 4, 12);
    expect([st.better, st.worse]).toEqual([3, 1]);
  });
});
