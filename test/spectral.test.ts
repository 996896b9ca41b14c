/** Spectral-norm vectors of averaged (EMA) weights: averaged unit vectors shrink σ = uᵀWv; refreshSpectralVectors refits them. */
import { describe, it, expect } from 'vitest';
import { SeededNoise } from '../src/util/noise.js';
import { powerIteration, refreshSpectralVectors } from '../src/nn/spectral.js';
import { spectralSigma } from '../src/exec/onnx/params.js';

describe('refreshSpectralVectors', () => {
  it('brings σ of shrunken (averaged) u, v back to the top singular value', () => {
    const rng = new SeededNoise(4);
    const rows = 6;
    const cols = 10;
    const W = rng.normal([rows * cols]);
    let u: Float32Array = rng.normal([rows]);
    let v: Float32Array = new Float32Array(cols);
    for (let i = 0; i < 200; i++) ({ u, v } = powerIteration(W, rows, u));
    const sigmaTrue = spectralSigma(W, rows, u, v);
    // an EMA of unit vectors pointing in different directions is shorter than 1
    const shrunkU = u.map((x, i) => 0.5 * x + 0.5 * (i === 0 ? 1 : 0));
    const shrunkV = v.map((x) => 0.7 * x);
    expect(spectralSigma(W, rows, shrunkU, shrunkV)).toBeLessThan(0.8 * sigmaTrue);
    const sd = new Map([
      ['c.weight_orig', { shape: [rows, cols], data: W }],
      ['c.weight_u', { shape: [rows], data: shrunkU }],
      ['c.weight_v', { shape: [cols], data: shrunkV }],
      ['c.bias', { shape: [rows], data: new Float32Array(rows) }],
    ]);
    const fixed = refreshSpectralVectors(sd);
    expect(Math.abs(spectralSigma(W, rows, fixed.get('c.weight_u')!.data, fixed.get('c.weight_v')!.data) - sigmaTrue)).toBeLessThan(1e-3 * sigmaTrue);
    // the other entries are the same objects; the input map is not modified
    expect(fixed.get('c.bias')).toBe(sd.get('c.bias'));
    expect(sd.get('c.weight_u')!.data).toBe(shrunkU);
  });
});
