/**
 * `strdiffusion/core`: everything that runs on any JavaScript runtime (a browser, a worker, Deno,
 * Bun): the networks written once against an operator interface, the IR-SDE, the StrDiffusion
 * sampler, the structure pipeline (grayscale + Canny), the window planning and compositing around
 * a hole, and the ONNX export of the networks (to run them with onnxruntime-web, say). Nothing here
 * touches files, `Buffer`, sharp or onnxruntime-node; a test walks this module's imports to keep it
 * so. The Node pipeline (`strdiffusion`) adds image files, checkpoints and onnxruntime-node.
 *
 * Conventions: tensors are NCHW float32 (`F32Tensor`); masks are 1 = known pixel, 0 = hole; image
 * values are in [0, 1]. See docs/design.md.
 */
export * from './options.js';
export type { F32Tensor, HostTensor } from './util/tensor.js';
export { SeededNoise, TapeNoise, type NoiseSource, type TapeDraw } from './util/noise.js';

// networks
export type { Ops, NetContext, ParamStore, Conv2dOptions } from './nn/ops.js';
export { unetForward } from './nn/unet.js';
export { discriminatorForward } from './nn/discriminator.js';
export { paramSpec, configOf, checkWeights } from './nn/models.js';
export { OFFICIAL, SMALL, MINI, presetConfigs, type UNetConfig, type DiscConfig, type NetConfig, type ModelConfigs } from './nn/config.js';
export type { NetRunner, NetInputs, Executor } from './exec/types.js';
export type { StateDict, ParamSpec } from './weights/types.js';

// the SDE and the sampler
export { IRSDE, BoundIRSDE, matchingLoss, makeSchedule, cosineThetas } from './sde/index.js';
export { holeFill, filledMean, prepareFill } from './sde/fill.js';
export { sample, step, composite, textureOnly, type SampleArgs, type SampleResult, type SamplerOptions, type SamplerNets, type SamplerInputs, type StepInfo } from './sampler/index.js';
export { fillStructureRunner, knownStructureRunner } from './sampler/fill-structure.js';

// structure pipeline
export { structureOf, rgbToGray, canny } from './structure/index.js';
export { structureEnds, lateGuide, edgeAtZero, parseStructureKind, DEFAULT_STRUCTURE_KIND } from './structure/kinds.js';

// around the hole: window planning, model inputs, compositing
export { planWindow, windowInputs, pasteResult, type WindowPlan } from './inpaint/window.js';
export { holesFromRaster, holeBox, holeCount, loadHoles, type MaskOptions } from './inpaint/mask.js';
export { toRgbFloat, type RasterImage } from './image/raster.js';
export { progressOf, type InpaintProgress } from './inpaint/progress.js';

// ONNX export
export { exportOnnx, describeModel, type ExportShape, type ExportOptions, type ModelDesc } from './exec/onnx/export.js';

export { StrDiffusionError, isStrDiffusionError, type StrDiffusionErrorCode } from './util/errors.js';
