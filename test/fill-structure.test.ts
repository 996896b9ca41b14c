/** The `fill` structure guide: its ε makes every x̂0 equal the Telea-filled grayscale, and bad option values are one-line errors. */
import { describe, it, expect } from 'vitest';
import { IRSDE } from '../src/sde/irsde.js';
import { prepareFill, filledMean } from '../src/sde/fill.js';
import { SeededNoise } from '../src/util/noise.js';
import { fillStructureRunner, parseStructureGuide } from '../src/sampler/fill-structure.js';

describe('fill structure guide', () => {
  it('predicts x̂0 = the Telea-filled gray at every level; known pixels keep the gray', async () => {
    await prepareFill('telea');
    const sde = new IRSDE({ T: 30 });
    const H = 24;
    const shape = [1, 1, H, H];
    const gray = { shape, data: Float32Array.from({ length: H * H }, (_, i) => (i % H) / H) };
    const mask = { shape, data: Float32Array.from({ length: H * H }, (_, i) => (Math.abs((i % H) - 12) < 4 && Math.abs(Math.floor(i / H) - 12) < 4 ? 0 : 1)) };
    const g = filledMean('telea', gray, mask);
    const runner = fillStructureRunner(sde, gray, mask);
    const rng = new SeededNoise(2);
    const mu = rng.normal(shape).map((v) => Math.abs(v) * 0.2);
    for (const t of [1, 10, 30]) {
      const x = sde.generateStates(gray.data, mu, t, rng.normal(shape), shape);
      const eps = await runner.run({ x: { shape, data: x }, mu: { shape, data: mu }, t: [t] });
      const x0 = sde.predictX0(x, mu, eps.data, t, shape);
      let err = 0;
      for (let i = 0; i < x0.length; i++) err = Math.max(err, Math.abs(x0[i]! - g[i]!));
      expect(err).toBeLessThan(t === 30 ? 1e-3 : 1e-5);
    }
    for (let i = 0; i < g.length; i++) if (mask.data[i] === 1) expect(g[i]).toBe(gray.data[i]);
  });

  it('rejects unknown guides with a one-line error', () => {
    expect(parseStructureGuide(undefined)).toBeUndefined();
    expect(parseStructureGuide('fill')).toBe('fill');
    expect(() => parseStructureGuide('edges')).toThrow(/--structure must be one of network, fill \(got "edges"\)/);
  });
});
