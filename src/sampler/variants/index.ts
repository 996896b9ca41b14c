/** The early step of each sampler variant; a new variant is one file and one line here. */
import type { SamplerVariant } from '../../options.js';
import type { EarlyStep } from '../resample.js';
import { officialEarly } from './official.js';
import { improvedEarly } from './improved.js';
import { noResamplingEarly } from './no-resampling.js';
import { noDiscriminatorEarly } from './no-discriminator.js';

export const EARLY_STEPS = {
  official: officialEarly,
  improved: improvedEarly,
  'no-resampling': noResamplingEarly,
  'no-discriminator': noDiscriminatorEarly,
} satisfies Record<SamplerVariant, EarlyStep>;
