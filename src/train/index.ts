export { Adam, ADAM_DISC, ADAM_UNET } from './adam.js';
export type { AdamOptions, AdamStateDump } from './adam.js';
export { MultiStepLR, officialUNetSchedule } from './lr.js';
export { matchingLossTf, tripletMarginLossTf, discriminatorLossTf, reverseMeanFromNoiseTf } from './losses.js';
export { drawTraining, prepareObjective, objectiveForward, objectiveLoss, maskMul } from './objectives.js';
export type { ObjectiveBatch, TrainDraws, TrainNoise, PreparedObjective, ObjectiveOutputs } from './objectives.js';
export { createTrainState, trainStep, trainStepPrepared, applyAdam, disposeTrainState } from './step.js';
export type { TrainState, TrainStateOptions, TrainStepOptions, TrainStepResult } from './step.js';
