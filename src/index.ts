/**
 * `strdiffusion`: StrDiffusion image inpainting for Node.
 *
 *     import { loadModel } from 'strdiffusion';
 *     const model = await loadModel();                      // the bundled model
 *     const result = await model.inpaint('photo.jpg', 'mask.png', { seed: 1 });
 *     await result.save('filled.png');
 *
 * Masks: white = the hole (a mask with alpha that is not opaque everywhere: opaque = the hole;
 * README "Masks"). Errors the caller can act on are `StrDiffusionError`s with a `code`
 * ('BAD_INPUT', 'BAD_OPTION', 'BAD_CHECKPOINT'). The runtime-neutral pieces (networks, SDE, sampler,
 * Canny, compositing, ONNX export) are in `strdiffusion/core`.
 */
export { loadModel, inpaint, InpaintModel, type ImageSource, type RawImage, type ModelOptions, type RunOptions, type Inpainting } from './inpaint/pipeline.js';
export type { InpaintOptions, InpaintResult } from './inpaint/index.js';
export type { InpaintProgress } from './inpaint/progress.js';
export { StrDiffusionError, isStrDiffusionError, type StrDiffusionErrorCode } from './util/errors.js';
export { readImage, readImageBuffer, writeImage, encodeImage, DEFAULT_MAX_MEGAPIXELS, IMAGE_FORMATS, type ImageFormat } from './image/io.js';
export type { RasterImage } from './image/raster.js';
export { DEFAULT_MODEL_DIR } from './model/checkpoints.js';
export { SAMPLER_VARIANTS, STEP_RULES, STRUCTURE_GUIDES, STRUCTURE_KINDS, PRECISIONS, EXECUTOR_NAMES, type SamplerVariant, type StepRule, type StructureGuide, type StructureKind, type Precision, type ExecutorName } from './options.js';
