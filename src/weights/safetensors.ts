/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors, format section):
 * u64 little-endian header length N, N bytes of JSON header, then the byte buffer. Each entry is
 * {dtype, shape, data_offsets: [begin, end]} relative to the buffer; `__metadata__` is a
 * string->string map. The reader enforces the same rules as the reference implementation
 * (offsets contiguous from 0 and covering the whole buffer) so files it accepts load in Python too.
 * Only the header is read before the caller can check names and shapes (`openSafetensors`); each
 * tensor is then read once, into its own buffer, and refused if it holds NaN or infinity.
 */
import { writeFileAtomic } from '../util/files.js';
import { numel } from '../util/tensor.js';
import type { F32Tensor } from '../util/tensor.js';
import type { StateDict } from './types.js';
import { LITTLE_ENDIAN, openSource } from './source.js';
import { parseSafetensors, type SafetensorsContents, type SafetensorsReader } from './safetensors-parse.js';

export { halfToFloat, parseSafetensors, type SafetensorsContents, type SafetensorsReader } from './safetensors-parse.js';

/**
 * Opens a safetensors file (or wraps bytes) and checks its header having read only the header
 * (safetensors-parse.ts); `read()` then reads each tensor once.
 */
export function openSafetensors(pathOrBytes: string | Uint8Array, name?: string): SafetensorsReader {
  return parseSafetensors(openSource(pathOrBytes, name));
}

/** Reads a safetensors file; F32 as is, F16/BF16/F64 converted to float32, other dtypes rejected.
 * Tensors read from in-memory bytes may be views of those bytes. */
export function readSafetensorsWithMetadata(pathOrBytes: string | Uint8Array, name?: string): SafetensorsContents {
  const r = openSafetensors(pathOrBytes, name);
  return { metadata: r.metadata, tensors: r.read() };
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
    const n = numel(t.shape);
    if (n !== t.data.length) throw new Error(`tensor "${key}": shape [${t.shape.join(', ')}] does not match ${t.data.length} values`);
    const size = n * 4;
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
  writeFileAtomic(path, encodeSafetensors(sd, metadata));
}
