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
