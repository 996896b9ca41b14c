/**
 * Random access to a checkpoint's bytes, so the readers can check a file's declarations (zip
 * directory, pickle, safetensors header) before they read, inflate or allocate any tensor data.
 * A file is read piece by piece through a descriptor (never whole); in-memory bytes are viewed.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

export interface ByteSource {
  /** how errors name the checkpoint */
  readonly label: string;
  readonly size: number;
  /** `len` bytes at `off`: a fresh buffer (files) or a view (in-memory bytes) */
  read(off: number, len: number): Uint8Array;
  /** releases the file descriptor; idempotent */
  close(): void;
}

class BytesSource implements ByteSource {
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

class FileSource implements ByteSource {
  private fd: number | undefined;
  readonly size: number;
  constructor(fd: number, readonly label: string) {
    this.fd = fd;
    this.size = fstatSync(fd).size;
  }
  read(off: number, len: number): Uint8Array {
    if (this.fd === undefined) throw new Error(`checkpoint ${this.label}: read after close`);
    if (off < 0 || len < 0 || off + len > this.size) throw new Error(`checkpoint ${this.label} is truncated or corrupt (reads bytes ${off}..${off + len} of ${this.size})`);
    const out = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, out, got, Math.min(len - got, 1 << 30), off + got);
      if (n === 0) throw new Error(`checkpoint ${this.label} is truncated or corrupt (the file ended at byte ${off + got}, it changed while being read?)`);
      got += n;
    }
    return out;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Opens `path` for reading and checks that it is a regular file: opened non-blocking, so a FIFO
 * (or a device) is refused at once instead of blocking the open or the read until a writer comes.
 * `checkpoint not found: PATH` when it does not exist.
 */
export function openRegularFile(path: string, label = path): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new Error(`checkpoint not found: ${path}`);
    throw new Error(`checkpoint ${label}: cannot read (${err.message})`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`checkpoint ${label}: not a file`);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Opens a checkpoint file (or wraps bytes); `checkpoint not found: PATH` when it does not exist. */
export function openSource(pathOrBytes: string | Uint8Array, name?: string): ByteSource {
  if (typeof pathOrBytes !== 'string') return new BytesSource(pathOrBytes, name ?? '<bytes>');
  const label = name ?? pathOrBytes;
  const fd = openRegularFile(pathOrBytes, label);
  try {
    return new FileSource(fd, label);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
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
