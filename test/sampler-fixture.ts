/**
 * The 4×4 sampler inputs the sampler pin tests share (sampler-pins, texture-samplers): a 2×2 hole
 * in the middle and one hole pixel in a corner (mask: 1 = known), deterministic image, gray and
 * edge maps, the [1,1,H,W] structure and [1,3,H,W] texture shapes, and the official μ = GT ⊙ m.
 */
import type { SamplerInputs } from '../src/sampler/index.js';

const fr = Math.fround;
export const H = 4;
export const W = 4;
export const HW = H * W;
export const SX = [1, 1, H, W];
export const SY = [1, 3, H, W];
export const MASK = Float32Array.from({ length: HW }, (_, p) => ([5, 6, 9, 10, 15].includes(p) ? 0 : 1));
export const IMAGE = Float32Array.from({ length: 3 * HW }, (_, i) => fr(((i * 7) % 17) / 16));
export const GRAY = Float32Array.from({ length: HW }, (_, p) => fr(((p * 5) % 11) / 10));
export const EDGE = Float32Array.from({ length: HW }, (_, p) => (p % 3 === 0 ? 1 : 0));
export const inputs: SamplerInputs = {
  image: { shape: SY, data: IMAGE },
  mask: { shape: SX, data: MASK },
  gray: { shape: SX, data: GRAY },
  edge: { shape: SX, data: EDGE },
};
export const MU = Float32Array.from(IMAGE, (v, i) => fr(v * MASK[i % HW]!));
