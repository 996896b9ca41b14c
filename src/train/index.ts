export { Adam, ADAM_DISC, ADAM_UNET } from './adam.js';
export type { AdamOptions, AdamStateDump } from './adam.js';
export { MultiStepLR, officialUNetSchedule } from './lr.js';
export { matchingLoss, tripletMarginLoss, discriminatorLoss, reverseMeanFromNoise, objective } from './loss-ops.js';
export { drawTraining, prepareObjective, maskMul } from './objectives.js';
export type { ObjectiveBatch, TrainDraws, TrainNoise, PreparedObjective } from './objectives.js';
export { createTrainer, trainStep, TRAIN_EXECUTORS, isTrainExecutor } from './trainer.js';
export type { NetTrainer, TrainerOptions, TrainExecutor, TrainStepOptions, TrainStepResult } from './trainer.js';
