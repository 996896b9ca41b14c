/**
 * The early step of each guided sampler variant, the step of each texture-only one; a new variant is
 * one file and one line here. `split` has no step of its own: it combines two samples (sampleSplit
 * in ../strdiffusion.ts).
 */
import type { GuidedVariant, TextureVariant } from '../../options.js';
import type { EarlyStep, TextureStep } from '../resample.js';
import { irsdeStep } from './irsde.js';
import { repaintStep } from './repaint.js';
import { officialEarly } from './official.js';
import { improvedEarly } from './improved.js';
import { noResamplingEarly } from './no-resampling.js';
import { noDiscriminatorEarly } from './no-discriminator.js';
import { oneCallEarly } from './one-call.js';

export const EARLY_STEPS = {
  official: officialEarly,
  improved: improvedEarly,
  'no-resampling': noResamplingEarly,
  'no-discriminator': noDiscriminatorEarly,
  'one-call': oneCallEarly,
} satisfies Record<Exclude<GuidedVariant, 'split'>, EarlyStep>;

export const TEXTURE_STEPS = {
  irsde: irsdeStep,
  repaint: repaintStep,
} satisfies Record<TextureVariant, TextureStep>;
