/**
 * The structure process of each structure kind (options.ts STRUCTURE_KINDS): which of the photo's
 * two structure images is the clean x0 at t = 0 and which (masked) is the mean μ it reverts to at
 * t = T. The same pair builds the structure network's training target, the texture network's guide
 * (training) and the sampler's known structure and μS, so the three can never disagree.
 */
import { STRUCTURE_KINDS, TEXTURE_GUIDE_KINDS, parseChoice, type StructureKind, type TextureGuideKind } from '../options.js';
import { canny } from './canny.js';

export { STRUCTURE_KINDS, TEXTURE_GUIDE_KINDS, type StructureKind, type TextureGuideKind } from '../options.js';

/** The official code's (and every old model's) kind. */
export const DEFAULT_STRUCTURE_KIND: StructureKind = 'gray2edge';

/** `kind`, or a one-line error naming `what` and the choices. */
export function parseStructureKind(kind: unknown, what = 'structure kind'): StructureKind {
  return parseChoice(STRUCTURE_KINDS, kind, what);
}

export function parseTextureGuideKind(kind: unknown, what = 'structure kind'): TextureGuideKind {
  return parseChoice(TEXTURE_GUIDE_KINDS, kind, what);
}

/** x0 (clean structure) and the unmasked μ endpoint of the structure process for a kind (the arrays themselves, not copies). */
export function structureEnds<A>(kind: StructureKind, gray: A, edge: A): { x0: A; end: A } {
  switch (parseStructureKind(kind)) {
    case 'gray2edge': return { x0: gray, end: edge };
    case 'gray2gray': return { x0: gray, end: gray };
    case 'edge2edge': return { x0: edge, end: edge };
    case 'edge2gray': return { x0: edge, end: gray };
  }
}

/** Whether the kind's clean structure (what the texture is guided by near t = 0) is the edge map. */
export function edgeAtZero(kind: StructureKind): boolean {
  return kind === 'edge2edge' || kind === 'edge2gray';
}

/** Canny σ of the sampler (official test value 2; training uses 3). */
export const SAMPLING_CANNY_SIGMA = 2;

/**
 * The late stage's guide from a gray image [H·W] (the official: the plain channel mean of the noisy
 * texture): the gray image itself for gray-x0 kinds; its Canny edges (σ 2, as at test time) for
 * edge-x0 kinds, whose texture network only ever saw edge-like guides near t = 0.
 */
export function lateGuide(kind: StructureKind, gray: Float32Array, H: number, W: number, out: Float32Array = new Float32Array(H * W)): Float32Array {
  if (!edgeAtZero(kind)) {
    out.set(gray);
    return out;
  }
  // Canny reads a [0,1] image: the noisy mean may leave it by a little
  const g = new Float64Array(H * W);
  for (let i = 0; i < g.length; i++) g[i] = Math.min(1, Math.max(0, gray[i]!));
  const e = canny(g, H, W, SAMPLING_CANNY_SIGMA);
  for (let i = 0; i < e.length; i++) out[i] = e[i]!;
  return out;
}
