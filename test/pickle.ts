/**
 * A tiny hand-written pickle and zip assembler for crafted PyTorch checkpoints (tests of the .pth
 * reader: what it accepts, and the hostile files it must refuse).
 */
import { zipSync } from 'fflate';

export const enc = new TextEncoder();
type Chunk = number[] | Uint8Array | string;
export function bytes(...chunks: Chunk[]): Uint8Array {
  const parts = chunks.map((c) => (typeof c === 'string' ? enc.encode(c) : Uint8Array.from(c)));
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
}
export const u16 = (n: number) => [n & 255, (n >> 8) & 255];
export const u32 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255];
export const P = {
  proto: [0x80, 2],
  global: (m: string, n: string) => bytes('c', `${m}\n${n}\n`),
  str: (s: string) => bytes('X', u32(enc.encode(s).length), s),
  int: (n: number) => bytes('J', u32(n >>> 0)),
  tuple: (...items: Uint8Array[]) => bytes('(', ...items, 't'),
  od: () => bytes(P.global('collections', 'OrderedDict'), ')', 'R'),
  tensor: (key: string, numel: number, offset: number, size: number[], stride: number[], storage = 'FloatStorage') =>
    bytes(
      P.global('torch._utils', '_rebuild_tensor_v2'),
      '(',
      P.tuple(P.str('storage'), P.global('torch', storage), P.str(key), P.str('cpu'), P.int(numel)),
      'Q',
      P.int(offset),
      P.tuple(...size.map(P.int)),
      P.tuple(...stride.map(P.int)),
      [0x89],
      P.od(),
      't',
      'R',
    ),
};
export function pthZip(stem: string, pkl: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Record<string, Uint8Array> = { [`${stem}/data.pkl`]: pkl, [`${stem}/version`]: enc.encode('3\n') };
  for (const [k, v] of Object.entries(storages)) files[`${stem}/data/${k}`] = v;
  return zipSync(files, { level: 0 });
}
export const f32bytes = (v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

/** A zip written by hand, so the declared sizes and the compression method can lie. */
export interface RawEntry {
  name: string;
  /** the bytes stored in the file (compressed for method 8) */
  data: Uint8Array;
  method: 0 | 8;
  /** declared uncompressed size (default: data.length) */
  size?: number;
}
export function rawZip(entries: RawEntry[]): Uint8Array {
  const local: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const size = e.size ?? e.data.length;
    const common = [...u16(20), ...u16(0), ...u16(e.method), ...u16(0), ...u16(0), ...u32(0), ...u32(e.data.length), ...u32(size), ...u16(name.length), ...u16(0)];
    const lh = bytes(u32(0x04034b50), common, name, e.data);
    central.push(bytes(u32(0x02014b50), u16(20), common, u16(0), u16(0), u16(0), u32(0), u32(off), name));
    local.push(lh);
    off += lh.length;
  }
  const cd = bytes(...central);
  const eocd = bytes(u32(0x06054b50), u16(0), u16(0), u16(entries.length), u16(entries.length), u32(cd.length), u32(off), u16(0));
  return bytes(...local, cd, eocd);
}
