/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors, format section):
 * u64 little-endian header length N, N bytes of JSON header, then the byte buffer. Each entry is
 * {dtype, shape, data_offsets: [begin, end]} relative to the buffer; `__metadata__` is a
 * string->string map. The reader enforces the same rules as the reference implementation
 * (offsets contiguous from 0 and covering the whole buffer) so files it accepts load in Python too.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { F32Tensor } from '../util/tensor.js';
import type { StateDict } from './types.js';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
  U16: 2, U32: 4, U64: 8, F8_E4M3: 1, F8_E5M2: 1,
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE half -> number (also used by the .pth reader for HalfStorage). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function decode(dtype: string, bytes: Uint8Array, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) {
        out.set(new Float32Array(bytes.slice().buffer, 0, n));
        break;
      }
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(2 * i, true) << 16;
      break;
    }
    default:
      throw new Error(`unsupported dtype ${dtype}`);
  }
  return out;
}

function readBytes(pathOrBytes: string | Uint8Array): { buf: Uint8Array; label: string } {
  if (typeof pathOrBytes !== 'string') return { buf: pathOrBytes, label: '<bytes>' };
  try {
    const b = readFileSync(pathOrBytes);
    return { buf: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), label: pathOrBytes };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`checkpoint not found: ${pathOrBytes}`);
    throw new Error(`checkpoint ${pathOrBytes}: cannot read (${err.message})`);
  }
}

export interface SafetensorsContents {
  tensors: StateDict;
  metadata: Record<string, string>;
}

/** Reads a safetensors file; F32 as is, F16/BF16/F64 converted to float32, other dtypes rejected. */
export function readSafetensorsWithMetadata(pathOrBytes: string | Uint8Array, name?: string): SafetensorsContents {
  const { buf, label: l0 } = readBytes(pathOrBytes);
  const label = name ?? l0;
  const bad = (msg: string): never => {
    throw new Error(`checkpoint ${label}: invalid safetensors file: ${msg}`);
  };
  if (buf.length < 8) bad(`only ${buf.length} bytes`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > buf.length - 8) bad(`header length ${n} exceeds the file size ${buf.length} (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch (e) {
    bad(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { key: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [key, v] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad('__metadata__ is not an object');
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== 'string') bad(`__metadata__["${mk}"] is not a string`);
        metadata[mk] = mv as string;
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) bad(`entry "${key}" is not an object`);
    const { dtype, shape, data_offsets: offs } = e;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) bad(`entry "${key}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) bad(`entry "${key}" has an invalid shape`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0)) bad(`entry "${key}" has invalid data_offsets`);
    const [begin, end] = offs as number[];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end! < begin!) bad(`entry "${key}" has data_offsets [${begin}, ${end}] with end < begin`);
    if (end! > dataLen) bad(`entry "${key}" ends at byte ${end} but the data section has ${dataLen} bytes (truncated?)`);
    if (end! - begin! !== numel * DTYPE_BYTES[dtype as string]!) {
      bad(`entry "${key}" has ${end! - begin!} bytes, shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${numel * DTYPE_BYTES[dtype as string]!}`);
    }
    entries.push({ key, dtype: dtype as string, shape: shape as number[], begin: begin!, end: end! });
  }
  // The reference implementation rejects holes and overlaps; mirroring it keeps both sides consistent.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin !== cursor) bad(`entry "${e.key}" starts at byte ${e.begin}, expected ${cursor} (overlap or gap)`);
    cursor = e.end;
  }
  if (cursor !== dataLen) bad(`tensors cover ${cursor} bytes but the data section has ${dataLen}`);

  const tensors: StateDict = new Map();
  // Data order is the writer's key order; JSON.parse would put integer-like keys first.
  for (const e of sorted) {
    if (!['F32', 'F16', 'BF16', 'F64'].includes(e.dtype)) {
      throw new Error(`checkpoint ${label}: tensor "${e.key}" has dtype ${e.dtype}; only F32, F16, BF16 and F64 are supported`);
    }
    const numel = e.shape.reduce((a, b) => a * b, 1);
    tensors.set(e.key, { shape: [...e.shape], data: decode(e.dtype, buf.subarray(dataStart + e.begin, dataStart + e.end), numel) });
  }
  return { tensors, metadata };
}

export function readSafetensors(pathOrBytes: string | Uint8Array, name?: string): StateDict {
  return readSafetensorsWithMetadata(pathOrBytes, name).tensors;
}

/** Serialises float32 tensors, keeping the map's key order in both header and data section. */
export function encodeSafetensors(sd: StateDict, metadata?: Record<string, string>): Uint8Array {
  // The header is assembled by hand because a JS object would reorder integer-like keys.
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const m = Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(String(v))}`);
    parts.push(`"__metadata__":{${m.join(',')}}`);
  }
  let offset = 0;
  const tensors: F32Tensor[] = [];
  for (const [key, t] of sd) {
    if (key === '__metadata__') throw new Error('cannot write a tensor named "__metadata__" to safetensors');
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new Error(`tensor "${key}": shape [${t.shape.join(', ')}] does not match ${t.data.length} values`);
    const size = numel * 4;
    parts.push(`${JSON.stringify(key)}:{"dtype":"F32","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + size}]}`);
    offset += size;
    tensors.push(t);
  }
  let header = `{${parts.join(',')}}`;
  let headerBytes = new TextEncoder().encode(header);
  // Spaces keep the JSON valid and align the data section to 8 bytes, as the reference writer does.
  const pad = (8 - (headerBytes.length % 8)) % 8;
  if (pad) {
    header += ' '.repeat(pad);
    headerBytes = new TextEncoder().encode(header);
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
      pos += t.data.byteLength;
    } else {
      for (let i = 0; i < t.data.length; i++, pos += 4) dv.setFloat32(pos, t.data[i]!, true);
    }
  }
  return out;
}

/** Writes atomically (temp file, fsync, rename) so a crash never leaves a half-written checkpoint. */
export function writeSafetensors(path: string, sd: StateDict, metadata?: Record<string, string>): void {
  const bytes = encodeSafetensors(sd, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}
