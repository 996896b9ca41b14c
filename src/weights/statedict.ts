/**
 * Matching a loaded checkpoint against what a network expects. The official test code loads
 * non-strictly (docs/design.md §3.5), silently leaving random layers when the wrong file is given; here
 * every mismatch is reported at once so the user sees the whole picture in one error.
 */
import { existsSync, closeSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import type { CheckpointReader, ParamSpec, StateDict } from './types.js';
import { openPth } from './pth.js';
import { openSafetensors } from './safetensors.js';
import { openRegularFile } from './source.js';
import { loadStrict, stripModulePrefix, type Shaped } from './strict.js';

export { loadStrict, stripModulePrefix } from './strict.js';

function fail(msg: string): never {
  throw new Error(msg.replace(/\s*\n\s*/g, ' '));
}

function sniff(path: string): Uint8Array {
  const fd = openRegularFile(path);
  try {
    const head = new Uint8Array(16);
    const n = readSync(fd, head, 0, 16, 0);
    return head.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a `.pth`/`.pt`/`.bin`/`.ckpt` (torch zip) or `.safetensors` checkpoint (other names are
 * sniffed) and checks its declarations; no tensor data is read until `read()`.
 */
export function openCheckpoint(path: string): CheckpointReader {
  if (!existsSync(path)) throw new Error(`checkpoint not found: ${path}`);
  const ext = extname(path).toLowerCase();
  if (ext === '.pth' || ext === '.pt' || ext === '.bin' || ext === '.ckpt') return openPth(path);
  if (ext === '.safetensors') return openSafetensors(path);
  const head = sniff(path);
  // Zip (torch >= 1.6) or a bare pickle (legacy torch.save, which openPth reports clearly).
  if ((head[0] === 0x50 && head[1] === 0x4b) || head[0] === 0x80) return openPth(path);
  if (head.length >= 9 && head[8] === 0x7b /* '{' */) return openSafetensors(path);
  throw new Error(`checkpoint ${path}: unknown format (expected a PyTorch .pth zip or a .safetensors file)`);
}

export interface LoadCheckpointOptions {
  /** the keys and shapes the caller needs: checked (strictly, as loadStrict) before any data is read */
  expect?: ParamSpec;
  /** names the checkpoint in a mismatch error (default: the path) */
  what?: string;
  /** any other check of the names and shapes (after `module.` is stripped), before any data is read */
  check?: (headers: ReadonlyMap<string, Shaped>) => void;
}

/**
 * Loads a checkpoint. With `expect` (or `check`) a file of other names or shapes is refused having
 * read only its header, whatever sizes it declares; the tensors come back in the file's order.
 */
export function loadCheckpoint(path: string, opts: LoadCheckpointOptions = {}): StateDict {
  const reader = openCheckpoint(path);
  try {
    const headers = stripModulePrefix(reader.headers);
    opts.check?.(headers);
    if (opts.expect) loadStrict(headers, opts.expect, opts.what ?? path);
    return reader.read();
  } finally {
    reader.close();
  }
}
