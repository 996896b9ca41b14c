/**
 * Decoded images in memory, independent of any platform API (files and codecs are image/io.ts):
 * interleaved HWC samples at the file's own bit depth and channel count.
 */
export interface RasterImage {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA */
  channels: 1 | 2 | 3 | 4;
  /** 8 -> Uint8Array, 16 -> Uint16Array; interleaved rows (HWC) */
  bitDepth: 8 | 16;
  data: Uint8Array | Uint16Array;
}

export function hasAlpha(img: RasterImage): boolean {
  return img.channels === 2 || img.channels === 4;
}

export function maxValue(img: RasterImage): number {
  return img.bitDepth === 16 ? 65535 : 255;
}

/** RGB float32 CHW in [0,1] of the colour channels (grey replicated, alpha ignored). */
export function toRgbFloat(img: RasterImage): Float32Array {
  const { width: W, height: H, channels: C } = img;
  const n = W * H;
  const out = new Float32Array(3 * n);
  const max = maxValue(img);
  const grey = C <= 2;
  // division (not multiplication by 1/max) so 8-bit values equal the official float32 v/255
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = img.data[i * C + (grey ? 0 : c)]! / max;
  }
  return out;
}

/** A copy of the samples. Not `data.slice()`: a Node Buffer's slice is a view of the same memory,
 * so the caller's raw input would be overwritten with the result. */
export function copySamples(data: Uint8Array | Uint16Array): Uint8Array | Uint16Array {
  return data instanceof Uint16Array ? new Uint16Array(data) : new Uint8Array(data);
}
