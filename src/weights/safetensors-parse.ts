/**
 * The safetensors format (https://github.com/huggingface/safetensors, format section) read from a
 * ByteSource, with no file access (safetensors.ts opens files; the browser build fetches bytes):
 * u64 little-endian header length N, N bytes of JSON header, then the byte buffer. Each entry is
 * {dtype, shape, data_offsets: [begin, end]} relative to the buffer; `__metadata__` is a
 * string->string map. The rules are the reference implementation's (offsets contiguous from 0
 * and covering the whole buffer) so files accepted here load in Python too.
 */
import { numel } from '../util/tensor.js';
import type { CheckpointReader, StateDict, TensorHeader } from './types.js';
import { checkFinite, float32View, LITTLE_ENDIAN, type ByteSource } from './bytes.js';

export const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
  U16: 2, U32: 4, U64: 8, F8_E4M3: 1, F8_E5M2: 1,
};

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
  if (dtype === 'F32' && LITTLE_ENDIAN) return float32View(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
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

/** The reference implementation's limit on the JSON header (safetensors MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;
const SUPPORTED = ['F32', 'F16', 'BF16', 'F64'];

export interface SafetensorsContents {
  tensors: StateDict;
  metadata: Record<string, string>;
}

export interface SafetensorsReader extends CheckpointReader {
  readonly metadata: Record<string, string>;
}

/**
 * Opens a safetensors file and checks its header (dtypes, shapes, offsets covering the data
 * section exactly) having read only the header; `read()` then reads each tensor once into its own
 * buffer (F32: used as is; F16/BF16/F64: converted to float32). Other dtypes are refused here.
 */
export function parseSafetensors(src: ByteSource): SafetensorsReader {
  const label = src.label;
  const bad = (msg: string): never => {
    throw new Error(`checkpoint ${label}: invalid safetensors file: ${msg}`);
  };
  try {
    if (src.size < 8) bad(`only ${src.size} bytes`);
    const n = Number(new DataView(src.read(0, 8).slice().buffer).getBigUint64(0, true));
    if (n > src.size - 8) bad(`header length ${n} exceeds the file size ${src.size} (truncated?)`);
    if (n > MAX_HEADER_BYTES) bad(`header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n)));
    } catch (e) {
      bad(`header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
    const dataStart = 8 + n;
    const dataLen = src.size - dataStart;
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
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`entry "${key}" has an invalid shape`);
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) bad(`entry "${key}" has invalid data_offsets`);
      const [begin, end] = offs as number[];
      const count = numel(shape as number[]);
      if (end! < begin!) bad(`entry "${key}" has data_offsets [${begin}, ${end}] with end < begin`);
      if (end! > dataLen) bad(`entry "${key}" ends at byte ${end} but the data section has ${dataLen} bytes (truncated?)`);
      if (end! - begin! !== count * DTYPE_BYTES[dtype as string]!) {
        bad(`entry "${key}" has ${end! - begin!} bytes, shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${count * DTYPE_BYTES[dtype as string]!}`);
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
    for (const e of sorted) {
      if (!SUPPORTED.includes(e.dtype)) {
        throw new Error(`checkpoint ${label}: tensor "${e.key}" has dtype ${e.dtype}; only F32, F16, BF16 and F64 are supported`);
      }
    }
    // Data order is the writer's key order; JSON.parse would put integer-like keys first.
    const headers = new Map<string, TensorHeader>(sorted.map((e) => [e.key, { shape: [...e.shape], dtype: e.dtype }]));
    return {
      label,
      headers,
      metadata,
      close: () => src.close(),
      read: () => {
        try {
          const tensors: StateDict = new Map();
          for (const e of sorted) {
            const data = decode(e.dtype, src.read(dataStart + e.begin, e.end - e.begin), numel(e.shape));
            checkFinite(data, e.key, label);
            tensors.set(e.key, { shape: [...e.shape], data });
          }
          return tensors;
        } finally {
          src.close();
        }
      },
    };
  } catch (e) {
    src.close();
    throw e;
  }
}

