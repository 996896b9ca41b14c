/**
 * NumPy `.npy` (format 1.0/2.0) reader and writer for the dtypes the parity fixtures use:
 * little-endian float32/float64/int64/int32 and uint8/bool. C order only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { DType } from '../util/tensor.js';

export interface NpyArray {
  dtype: DType;
  shape: number[];
  /** float32 -> Float32Array, float64 -> Float64Array, int64 -> Float64Array (exact below 2^53),
   * int32 -> Int32Array, uint8/bool -> Uint8Array. */
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}

const DESCR: Record<string, { dtype: DType; bytes: number }> = {
  '<f4': { dtype: 'float32', bytes: 4 },
  '<f8': { dtype: 'float64', bytes: 8 },
  '<i8': { dtype: 'int64', bytes: 8 },
  '<i4': { dtype: 'int32', bytes: 4 },
  '|u1': { dtype: 'uint8', bytes: 1 },
  '|b1': { dtype: 'bool', bytes: 1 },
};

export function parseNpy(buf: Uint8Array, name = 'npy'): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw new Error(`${name}: not a .npy file (bad magic)`);
  const major = buf[6]!;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (major !== 1 && major !== 2 && major !== 3) throw new Error(`${name}: unsupported .npy format version ${major}`);
  if (major !== 1 && buf.length < 12) throw new Error(`${name}: truncated .npy header`);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > buf.length) throw new Error(`${name}: truncated .npy header (${headerLen} bytes declared, ${buf.length - start} present)`);
  const header = new TextDecoder('latin1').decode(buf.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeTxt = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeTxt === undefined) throw new Error(`${name}: unreadable .npy header`);
  if (fortran === 'True') throw new Error(`${name}: Fortran-order arrays are not supported`);
  const d = DESCR[descr];
  if (!d) throw new Error(`${name}: unsupported dtype ${descr}`);
  const dims = shapeTxt.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  // a negative, fractional or non-numeric dimension would make a wrong-sized (or NaN-sized) array
  if (!dims.every((s) => /^\d+L?$/.test(s))) throw new Error(`${name}: invalid .npy shape (${shapeTxt})`);
  const shape = dims.map((s) => Number(s.replace(/L$/, '')));
  const n = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n * d.bytes)) throw new Error(`${name}: .npy shape (${shapeTxt}) is too large`);
  const off = start + headerLen;
  if (buf.length < off + n * d.bytes) throw new Error(`${name}: truncated .npy (${buf.length - off} data bytes, need ${n * d.bytes})`);
  const bytes = buf.slice(off, off + n * d.bytes); // copy: aligned
  let data: NpyArray['data'];
  switch (d.dtype) {
    case 'float32': data = new Float32Array(bytes.buffer, 0, n); break;
    case 'float64': data = new Float64Array(bytes.buffer, 0, n); break;
    case 'int32': data = new Int32Array(bytes.buffer, 0, n); break;
    case 'int64': {
      const big = new BigInt64Array(bytes.buffer, 0, n);
      data = Float64Array.from(big, (v) => Number(v));
      break;
    }
    default: data = bytes;
  }
  return { dtype: d.dtype, shape, data };
}

export function readNpy(path: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

export function encodeNpy(arr: { shape: number[]; data: Float32Array | Float64Array | Uint8Array | Int32Array }): Uint8Array {
  const descr = arr.data instanceof Float32Array ? '<f4' : arr.data instanceof Float64Array ? '<f8' : arr.data instanceof Int32Array ? '<i4' : '|u1';
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + arr.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength), 10 + header.length);
  return out;
}

export function writeNpy(path: string, arr: Parameters<typeof encodeNpy>[0]): void {
  writeFileSync(path, encodeNpy(arr));
}
