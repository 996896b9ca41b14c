/**
 * Random access to a checkpoint's bytes, so the readers can check a file's declarations (zip
 * directory, pickle, safetensors header) before they read, inflate or allocate any tensor data.
 * A file is read piece by piece through a descriptor (never whole); in-memory bytes are viewed.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { BytesSource, type ByteSource } from './bytes.js';

export { checkFinite, float32View, LITTLE_ENDIAN, BytesSource, type ByteSource } from './bytes.js';

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

