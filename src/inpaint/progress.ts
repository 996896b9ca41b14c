/**
 * What a running inpainting reports, once for everyone: the library's `onProgress` callback, the
 * CLI's progress bar and the HTTP API's `progress` event carry these same fields.
 */
export interface InpaintProgress {
  /** network steps done, 1..T (0 while the model loads) */
  step: number;
  /** steps of the whole run */
  T: number;
  /** the diffusion level just reached (T at the start, 0 at the end) */
  t: number;
  /** 'loading' before the first step, then the sampler's stage: 'early' (structure + texture, the
   * discriminator choosing between resampled structures) or 'late' (texture alone) */
  stage: string;
  /** re-noising depth of this step's resampling (0: none) */
  resampling: number;
  /** seconds since the run started */
  elapsed: number;
  /** estimated seconds left (null before the first step) */
  eta: number | null;
}

/** The progress after the sampler step at 0-based `index` of a T-step schedule. */
export function progressOf(info: { index: number; t: number; stage: string; k: number }, T: number, elapsed: number): InpaintProgress {
  const step = info.index + 1;
  return { step, T, t: info.t, stage: info.stage, resampling: info.k, elapsed, eta: step > 0 ? (elapsed / step) * (T - step) : null };
}
