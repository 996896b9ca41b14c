export { IRSDE, BoundIRSDE, matchingLoss } from './irsde.js';
export type { IRSDEOptions, Level, ReverseMeanCoefs, OptimumCoefs, MarginalCoefs } from './irsde.js';
export { makeSchedule, cosineThetas } from './schedule.js';
export type { Schedule, ScheduleOptions, ScheduleKind } from './schedule.js';
export { SeededNoise, TapeNoise } from '../util/noise.js';
export type { NoiseSource, TapeDraw } from '../util/noise.js';
