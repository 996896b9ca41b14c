/**
 * In-memory checkpoint bytes and the helpers every reader shares, with no file access: the
 * browser build parses fetched safetensors through these (source.ts adds files for Node).
 */
export interface ByteSource {
  /** how errors name the checkpoint */
  readonly label: string;
  readonly size: number;
  /** `len` bytes at `off`: a fresh buffer (files) or a view (in-memory bytes) */
  read(off: number, len: number): Uint8Array;
  /** releases the file descriptor; idempotent */
  close(): void;
}

export class BytesSource implements ByteSource {
  readonly size: number;
  constructor(private readonly bytes: Uint8Array, readonly label: string) {
    this.size = bytes.length;
  }
  read(off: number, len: number): Uint8Array {
    if (off < 0 || len < 0 || off + len > this.size) throw new Error(`checkpoint ${this.label} is truncated or corrupt (reads bytes ${off}..${off + len} of ${this.size})`);
    return this.bytes.subarray(off, off + len);
  }
  close(): void {}
}

/** float32 view of `bytes` when aligned (no copy), else one copy. Little-endian hosts only. */
export function float32View(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  return new Float32Array(bytes.slice().buffer, 0, bytes.byteLength >> 2);
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Refuses NaN and ±Infinity in a weight tensor, naming it: such weights only make NaN images. */
export function checkFinite(data: Float32Array, key: string, label: string): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v - v !== 0) throw new Error(`checkpoint ${label}: tensor "${key}" holds a non-finite value (${v} at index ${i})`);
  }
}
