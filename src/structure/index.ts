/** Structure branch inputs (docs/design.md §2.2): grayscale (torch truncation + skimage rgb2gray) and skimage Canny. */
export { toUint8Trunc, rgbToGray, rgbToGrayNaive, structureOf, structureOfBatch, fma, GRAY_COEFFS } from './gray.js';
export type { Structure } from './gray.js';
export {
  canny,
  cannyDetailed,
  gaussianFilterConstant,
  gaussianKernel1d,
  gaussianRadius,
  sobel,
  hypotLibm,
  expRN,
  pairwiseSum,
} from './canny.js';
export type { CannyDetail } from './canny.js';
