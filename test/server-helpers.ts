/** Upload fixtures shared by the server tests: generated PNGs, a smooth photo and rectangular holes. */
import sharp from 'sharp';

/** A W×H PNG with C channels whose sample (x, y, c) is px(x, y, c). */
export async function png(W: number, H: number, C: 1 | 2 | 3 | 4, px: (x: number, y: number, c: number) => number): Promise<Buffer> {
  const d = Buffer.alloc(W * H * C);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) d[(y * W + x) * C + c] = px(x, y, c);
  return sharp(d, { raw: { width: W, height: H, channels: C } }).png().toBuffer();
}

/** A smooth, colourful test picture. */
export const photo = (x: number, y: number, c: number) => Math.round(127 + 100 * Math.sin((x + 13 * c) / 9) * Math.cos(y / 7));

/** A mask with the rectangle [x0, x1) × [y0, y1) white (the hole). */
export const holeAt = (x0: number, y0: number, x1: number, y1: number) => (x: number, y: number) => (x >= x0 && x < x1 && y >= y0 && y < y1 ? 255 : 0);
