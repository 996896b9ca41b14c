/**
 * Minimal reader for Qt binary resource bundles (`.rcc`, as made by `rcc -binary`).
 *
 * Layout (all integers big-endian): the header is the magic "qres", then u32 version, u32 tree
 * offset, u32 data offset, u32 names offset (version >= 3 adds u32 flags). The tree is an array of
 * nodes, 14 bytes each in version 1 and 22 bytes from version 2 (a u64 modification time is
 * appended); node 0 is the root. A node is u32 name offset, u16 flags (1 = zlib-compressed,
 * 2 = directory, 4 = zstd-compressed), then either u32 child count + u32 index of the first
 * child (directories) or u16 country + u16 language + u32 data offset (files). A name is u16
 * length + u32 hash + UTF-16BE characters; a file's data is u32 length + bytes, where
 * zlib-compressed data starts with a u32 uncompressed length before the zlib stream.
 */
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

export interface RccEntry {
  /** path inside the bundle, e.g. `gcompris/src/activities/explore_world_animals/resource/tiger.jpg` */
  path: string;
  /** the stored bytes (decompressed) */
  data: () => Buffer;
}

const FLAG_COMPRESSED = 1;
const FLAG_DIRECTORY = 2;
const FLAG_COMPRESSED_ZSTD = 4;

/** Every file of the bundle at `file`, depth first, children in stored order. */
export function readRcc(file: string): RccEntry[] {
  const buf = readFileSync(file);
  if (buf.length < 20 || buf.toString('latin1', 0, 4) !== 'qres') throw new Error(`${file}: not a Qt resource bundle`);
  const version = buf.readUInt32BE(4);
  if (version < 1 || version > 3) throw new Error(`${file}: unsupported rcc version ${version}`);
  const tree = buf.readUInt32BE(8);
  const data = buf.readUInt32BE(12);
  const names = buf.readUInt32BE(16);
  const nodeSize = version >= 2 ? 22 : 14;
  const name = (off: number): string => {
    const p = names + off;
    const len = buf.readUInt16BE(p);
    const s = buf.subarray(p + 6, p + 6 + 2 * len);
    let out = '';
    for (let i = 0; i < len; i++) out += String.fromCharCode(s.readUInt16BE(2 * i));
    return out;
  };
  const out: RccEntry[] = [];
  const visit = (index: number, prefix: string, depth: number): void => {
    if (depth > 64) throw new Error(`${file}: resource tree too deep`);
    const p = tree + index * nodeSize;
    const flags = buf.readUInt16BE(p + 4);
    const path = index === 0 ? '' : prefix + name(buf.readUInt32BE(p));
    if (flags & FLAG_DIRECTORY) {
      const count = buf.readUInt32BE(p + 6);
      const first = buf.readUInt32BE(p + 10);
      for (let i = 0; i < count; i++) visit(first + i, path === '' ? '' : `${path}/`, depth + 1);
      return;
    }
    const off = data + buf.readUInt32BE(p + 10);
    out.push({
      path,
      data: () => {
        const len = buf.readUInt32BE(off);
        const raw = buf.subarray(off + 4, off + 4 + len);
        if (flags & FLAG_COMPRESSED_ZSTD) throw new Error(`${file}: ${path} is zstd-compressed (not supported)`);
        // the 4-byte uncompressed-length prefix comes before the zlib stream
        if (flags & FLAG_COMPRESSED) return inflateSync(raw.subarray(4));
        return Buffer.from(raw);
      },
    });
  };
  visit(0, '', 0);
  return out;
}
