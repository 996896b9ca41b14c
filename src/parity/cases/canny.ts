/**
 * Parity cases of the structure inputs (docs/design.md §2.2): `canny_*` — torch-style uint8 truncation,
 * skimage 0.19.3 `rgb2gray` (float64) and `feature.canny` edges for σ = 2 and σ = 3.
 */
import { canny, rgbToGray, toUint8Trunc } from '../../structure/index.js';
import { check, type CaseHandler, type CheckResult, type FileEntry, type ParityCase, type ParityContext } from '../types.js';

const EXEC = 'host';

function load(ctx: ParityContext, c: ParityCase, key: string, dtype: string): { shape: number[]; data: any } {
  const e = c.files[key] as FileEntry | undefined;
  if (!e) throw new Error(`${c.name}: no file "${key}" in the manifest`);
  const a = ctx.load(e);
  if (a.dtype !== dtype) throw new Error(`${c.name}/${key}: ${a.dtype}, expected ${dtype}`);
  return { shape: a.shape, data: a.data };
}

function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function count(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i]) n++;
  return n;
}

/** tolerance on differing edge pixels: 0 unless the case states a number */
function edgeTol(c: ParityCase): number {
  const t = c.tolerance?.edges;
  return typeof t === 'number' ? t : 0;
}

const cannyCase: CaseHandler = async (c, ctx) => {
  const out: CheckResult[] = [];
  const gray = load(ctx, c, 'gray_f64', 'float64');
  const [H, W] = gray.shape as [number, number];
  const ref64 = gray.data as Float64Array;

  // (a) uint8 input: truncation of the float image, or the stored uint8 photo
  let u8: Uint8Array;
  if (c.files.rgb_f32) {
    const rgb = load(ctx, c, 'rgb_f32', 'float32').data as Float32Array;
    const refU8 = load(ctx, c, 'rgb_trunc_u8', 'uint8').data as Uint8Array;
    u8 = toUint8Trunc(rgb);
    let vsRound = 0;
    for (let i = 0; i < rgb.length; i++) {
      // numpy-style rounding of the float32 product (half to even)
      const x = Math.fround(rgb[i]! * 255);
      let r = Math.round(x);
      if (r - x === 0.5 && r % 2 !== 0) r -= 1;
      if (r !== refU8[i]) vsRound++;
    }
    out.push(check(`${c.name}/trunc_u8`, EXEC, countDiff(u8, refU8), 0, `${rgb.length} values; rounding would differ in ${vsRound}`));
  } else {
    const refU8 = load(ctx, c, 'rgb_u8', 'uint8').data as Uint8Array;
    // the pipeline's float input is rgb_u8/255 in float32; trunc(255·v) must give rgb_u8 back
    const f = new Float32Array(refU8.length);
    for (let i = 0; i < f.length; i++) f[i] = refU8[i]! / 255;
    u8 = toUint8Trunc(f);
    out.push(check(`${c.name}/trunc_u8`, EXEC, countDiff(u8, refU8), 0, `roundtrip of ${refU8.length} values`));
  }

  // (b) gray
  const g = rgbToGray(u8, H, W);
  let err = 0;
  let same = 0;
  for (let i = 0; i < g.length; i++) {
    const d = Math.abs(g[i]! - ref64[i]!);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    if (g[i] === ref64[i]) same++;
  }
  const gtol = Number(c.tolerance?.gray_f64_atol ?? 1e-12);
  out.push(check(`${c.name}/gray_f64`, EXEC, err, gtol, `${same}/${g.length} bit-exact`));

  // (c) edges from our gray for σ = 2 and 3
  for (const [key, sigma] of [['edge_s2', 2.0], ['edge_s3', 3.0]] as const) {
    if (!c.files[key]) continue;
    const ref = load(ctx, c, key, 'uint8').data as Uint8Array;
    const e = canny(g, H, W, sigma);
    const n = countDiff(e, ref);
    out.push(check(`${c.name}/${key}`, EXEC, n, edgeTol(c), `${count(e)} edge px (ref ${count(ref)}), ${H}x${W}`));
  }
  return out;
};

export const handlers: Record<string, CaseHandler> = { canny: cannyCase };
