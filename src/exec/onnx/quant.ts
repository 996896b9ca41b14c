/**
 * int8 quantisation of exported graphs: the precision list, activation ranges (calibration), and
 * the weight / activation quantisation parameters. The tracer (./tracer.ts) emits the quantised
 * convolutions with these.
 */
/**
 * Numeric precision of an exported graph's convolutions. 'int8': dynamic quantisation
 * (DynamicQuantizeLinear + ConvInteger). 'int8-static': calibrated static quantisation
 * (QuantizeLinear + QLinearConv + DequantizeLinear, activation ranges from `QuantOptions.calibration`).
 */
import type { Precision } from '../../options.js';

export { PRECISIONS, type Precision } from '../../options.js';

/** Observed value range of one quantised conv's input (x) and output (y, bias included). */
export interface ConvRange {
  x: [number, number];
  y: [number, number];
}
/** One ConvRange per quantised conv, in trace order (what `exportCalibrationOnnx` measures). */
export type Calibration = ConvRange[];

/**
 * Asymmetric uint8 parameters covering [min, max] (widened to contain 0, so zero padding and
 * ReLU zeros are exact): scale = (hi - lo) / 255, zero point = round(-lo / scale).
 */
export function uint8Params(min: number, max: number): { scale: number; zero: number } {
  const lo = Math.min(0, Number.isFinite(min) ? min : 0);
  const hi = Math.max(0, Number.isFinite(max) ? max : 0);
  const scale = hi - lo > 1e-30 ? Math.fround((hi - lo) / 255) : 1;
  const zero = Math.max(0, Math.min(255, Math.round(-lo / scale)));
  return { scale, zero };
}

/**
 * How `int8` graphs quantise (dynamic quantisation: weights offline, activations at run time).
 * Only convolutions with a constant weight and groups = 1 are quantised; the rest stays float32.
 */
export interface QuantOptions {
  /** convs with fewer input or output channels stay float32 (init/final convs, SPADE's 1-channel input); default 8 */
  minChannels?: number;
  /** keep 1x1 convs (residual, attention projections) in float32 (default true: on the fixture
   * nets it cuts the int8 error by about a quarter, and they are a small share of the work) */
  skipPointwise?: boolean;
  /** 'int8-static' only: the activation ranges of the quantised convs (see exportCalibrationOnnx) */
  calibration?: Calibration;
  /** 'int8-static': widen every calibrated range by this factor (headroom for inputs beyond the
   * calibration set, at the price of resolution); default 1 */
  rangeMargin?: number;
}

/** Per-output-channel symmetric int8 weights: scale_c = max|w_c| / 127, q = round(w / scale_c). */
export function quantizeWeightsPerChannel(w: Float32Array, outChannels: number): { q: Int8Array; scale: Float32Array } {
  const per = w.length / outChannels;
  if (!Number.isInteger(per)) throw new Error(`quantize: ${w.length} weights do not split into ${outChannels} channels`);
  const q = new Int8Array(w.length);
  const scale = new Float32Array(outChannels);
  for (let c = 0; c < outChannels; c++) {
    const off = c * per;
    let m = 0;
    for (let i = 0; i < per; i++) m = Math.max(m, Math.abs(w[off + i]!));
    // an all-zero channel: any scale reproduces it; 1 avoids a division by zero
    const sc = m > 0 ? Math.fround(m / 127) : 1;
    scale[c] = sc;
    for (let i = 0; i < per; i++) q[off + i] = Math.max(-127, Math.min(127, Math.round(w[off + i]! / sc)));
  }
  return { q, scale };
}
