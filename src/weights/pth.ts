/**
 * Reader for PyTorch's zip `torch.save` format (torch >= 1.6), restricted to state_dicts.
 *
 * A checkpoint is untrusted input: its `data.pkl` is interpreted by a tiny pickle VM that knows
 * only the opcodes a state_dict needs and resolves only an allow-list of globals to built-in
 * behaviours. Nothing is ever imported or executed, so a malicious `os.system` reference fails
 * with an error instead of running.
 *
 * Nor can a small file make the reader allocate much: the zip directory and the pickle are read
 * first (the pickle's size is capped, and so is the number of values it may create: a 250 KB file
 * of 250 M EMPTY_DICT opcodes is refused after MAX_PICKLE_OBJECTS), every tensor's declaration is
 * checked against its storage (non-negative strides, extent and element count within the storage)
 * and every storage's zip entry against the pickle (its declared size must be exactly the
 * storage's), all before any tensor data is read. Only the part of a storage its tensors view is
 * read (a deflated entry is inflated only that far, a declared tail is never touched), and a
 * storage whose tensors spread few elements over a far larger span is refused, so what a storage
 * declares beyond its tensors costs nothing; a whole entry (data.pkl) is inflated into a buffer of
 * its declared size and refused if it inflates to more or less. `openPth` stops there, so a caller
 * can check names and shapes before `read()`.
 */
import { halfToFloat } from './safetensors.js';
import { Inflate } from 'fflate';
import type { CheckpointReader, StateDict, TensorHeader } from './types.js';
import { checkFinite, float32View, LITTLE_ENDIAN, openSource, type ByteSource } from './source.js';
import { numel } from '../util/tensor.js';

// ---------------------------------------------------------------------------------------------
// Python values as the VM sees them

class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

class PyTuple {
  constructor(readonly items: unknown[]) {}
}
/** `()` is immutable: one object serves every EMPTY_TUPLE */
const EMPTY_TUPLE = new PyTuple(Object.freeze([]) as unknown as unknown[]);

class PyDict {
  // allocated on first use, so that an empty dict costs one small object
  private m: Map<unknown, unknown> | null = null;
  get map(): Map<unknown, unknown> {
    return (this.m ??= new Map());
  }
}

class PyStorage {
  constructor(readonly kind: StorageKind, readonly key: string, readonly numel: number) {}
}

/** A tensor as declared by `_rebuild_tensor_v2`; its data is read only by `read()`. */
class PyTensor {
  constructor(readonly storage: PyStorage, readonly offset: number, readonly shape: number[], readonly stride: number[]) {}
}

const MARK = Symbol('mark');

interface StorageKind {
  name: string;
  bytes: number;
  /** Decodes `n` elements starting at byte `off` of little-endian storage bytes into float32. */
  decode: (dv: DataView, off: number, n: number) => Float32Array;
}


function decoder(get: (dv: DataView, o: number) => number, bytes: number) {
  return (dv: DataView, off: number, n: number): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = get(dv, off + i * bytes);
    return out;
  };
}

// Integer storages are accepted because ordinary state_dicts carry them (e.g. BatchNorm's
// `num_batches_tracked`); the conversion is exact below 2^24, which covers such counters.
const STORAGE_KINDS: Record<string, StorageKind> = {
  FloatStorage: { name: 'float32', bytes: 4, decode: decoder((d, o) => d.getFloat32(o, true), 4) },
  DoubleStorage: { name: 'float64', bytes: 8, decode: decoder((d, o) => d.getFloat64(o, true), 8) },
  HalfStorage: { name: 'float16', bytes: 2, decode: decoder((d, o) => halfToFloat(d.getUint16(o, true)), 2) },
  BFloat16Storage: {
    name: 'bfloat16',
    bytes: 2,
    decode: (d, off, n) => {
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = d.getUint16(off + 2 * i, true) << 16;
      return new Float32Array(bits.buffer);
    },
  },
  LongStorage: { name: 'int64', bytes: 8, decode: decoder((d, o) => Number(d.getBigInt64(o, true)), 8) },
  IntStorage: { name: 'int32', bytes: 4, decode: decoder((d, o) => d.getInt32(o, true), 4) },
  ShortStorage: { name: 'int16', bytes: 2, decode: decoder((d, o) => d.getInt16(o, true), 2) },
  CharStorage: { name: 'int8', bytes: 1, decode: decoder((d, o) => d.getInt8(o), 1) },
  ByteStorage: { name: 'uint8', bytes: 1, decode: decoder((d, o) => d.getUint8(o), 1) },
  BoolStorage: { name: 'bool', bytes: 1, decode: decoder((d, o) => (d.getUint8(o) ? 1 : 0), 1) },
};

const ALLOWED_CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
]);

function isAllowedGlobal(module: string, name: string): boolean {
  if (ALLOWED_CALLABLES.has(`${module}.${name}`)) return true;
  return module === 'torch' && Object.prototype.hasOwnProperty.call(STORAGE_KINDS, name);
}

// ---------------------------------------------------------------------------------------------
// Zip container: the central directory is parsed here so that nothing is inflated or copied
// before it is needed, and an entry's declared size bounds what it may inflate to.

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** A state_dict's pickle is a few hundred bytes per tensor; 256 MiB is far beyond any real one. */
const MAX_PKL_BYTES = 256 * 2 ** 20;
/** inflate in pieces of this many compressed bytes: deflate expands at most ~1032x, so one piece
 * yields at most ~17 MB before the declared size is checked again */
const INFLATE_PIECE = 16 * 1024;
/** compressed bytes read from a file at a time */
const READ_PIECE = 1 << 20;
/**
 * The most values (objects, strings, numbers: everything pushed on the stack, plus every memo
 * entry) one data.pkl may create. A state_dict's pickle creates a few dozen per tensor, so even a
 * training checkpoint with optimizer state for 10,000 tensors stays far below; without the bound a
 * 255 KB file of 250 M EMPTY_DICT opcodes took 2.6 GB and aborted the process.
 */
export const MAX_PICKLE_OBJECTS = 2_000_000;
/** A storage's tensors may view a span of at most 2x the elements they hold (plus this slack); a
 * wider span (a few elements strided over a huge storage) is refused rather than read. */
const SPAN_SLACK = 4096;

let inflatedBytes = 0;
/** @internal for tests: the bytes this module has inflated so far (all calls together) */
export function pthInflatedBytes(): number {
  return inflatedBytes;
}

interface ZipEntry {
  name: string;
  flags: number;
  method: number;
  compSize: number;
  size: number;
  localOffset: number;
}

interface Archive {
  src: ByteSource;
  prefix: string;
  entries: Map<string, ZipEntry>;
}

function corrupt(label: string, why: string): never {
  throw new Error(`checkpoint ${label} is truncated or corrupt (${why})`);
}

const u16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 2 ** 32;

function readCentralDirectory(src: ByteSource): Map<string, ZipEntry> {
  const label = src.label;
  // end of central directory: 22 bytes + a comment of up to 65535, preceded by the zip64 locator
  const tailLen = Math.min(src.size, 22 + 65535 + 20);
  const tail = src.read(src.size - tailLen, tailLen);
  let e = tailLen - 22;
  while (e >= 0 && u32(tail, e) !== 0x06054b50) e--;
  if (e < 0) corrupt(label, 'no end of central directory record');
  let count = u16(tail, e + 10);
  let cdSize = u32(tail, e + 12);
  let cdOffset = u32(tail, e + 16);
  if (e >= 20 && u32(tail, e - 20) === 0x07064b50) {
    const z64 = u64(tail, e - 20 + 8);
    if (z64 + 56 > src.size) corrupt(label, 'zip64 end of central directory outside the file');
    const rec = src.read(z64, 56);
    if (u32(rec, 0) !== 0x06064b50) corrupt(label, 'bad zip64 end of central directory');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (cdOffset + cdSize > src.size) corrupt(label, `central directory (${cdSize} bytes at ${cdOffset}) lies outside the file`);
  const cd = src.read(cdOffset, cdSize);
  const entries = new Map<string, ZipEntry>();
  const names = new TextDecoder('utf-8');
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || u32(cd, p) !== 0x02014b50) corrupt(label, `central directory entry ${i} is malformed`);
    const flags = u16(cd, p + 8);
    const method = u16(cd, p + 10);
    let compSize = u32(cd, p + 20);
    let size = u32(cd, p + 24);
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    let localOffset = u32(cd, p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) corrupt(label, `central directory entry ${i} is malformed`);
    const name = names.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64: the real values of the fields saturated at 0xffffffff, in this order
    for (let x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen; ) {
      const id = u16(cd, x);
      const len = u16(cd, x + 2);
      if (id === 0x0001) {
        let q = x + 4;
        const next = () => {
          if (q + 8 > x + 4 + len) corrupt(label, `zip64 extra field of "${name}" is too short`);
          const v = u64(cd, q);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compSize === 0xffffffff) compSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      x += 4 + len;
    }
    if (entries.has(name)) corrupt(label, `duplicate zip entry "${name}"`);
    entries.set(name, { name, flags, method, compSize, size, localOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/**
 * Bytes [from, to) of one zip entry: one read for a stored entry; a deflated one is inflated from
 * its start only as far as `to`, in pieces read from the source as needed, into a buffer of
 * `to - from` bytes. Read whole (to = size), the entry must inflate to exactly its declared size;
 * read in part, its stream must reach `to` (what follows is never inflated).
 */
function readEntry(src: ByteSource, e: ZipEntry, what: string, from = 0, to = e.size): Uint8Array {
  const label = src.label;
  if (e.flags & 1) throw new Error(`checkpoint ${label}: ${what} is encrypted`);
  if (e.method !== 0 && e.method !== 8) throw new Error(`checkpoint ${label}: ${what} uses zip compression method ${e.method}; only stored (0) and deflate (8) are supported`);
  if (e.localOffset + 30 > src.size) corrupt(label, `zip entry "${e.name}" lies outside the file`);
  const lh = src.read(e.localOffset, 30);
  if (u32(lh, 0) !== 0x04034b50) corrupt(label, `zip entry "${e.name}" has no local header`);
  const start = e.localOffset + 30 + u16(lh, 26) + u16(lh, 28);
  if (start + e.compSize > src.size) corrupt(label, `zip entry "${e.name}" lies outside the file`);
  if (!(0 <= from && from <= to && to <= e.size)) throw new Error(`checkpoint ${label}: ${what}: bytes ${from}..${to} of ${e.size} requested`);
  if (e.method === 0) {
    if (e.compSize !== e.size) corrupt(label, `stored zip entry "${e.name}" has ${e.compSize} bytes but declares ${e.size}`);
    return src.read(start + from, to - from);
  }
  const whole = from === 0 && to === e.size;
  const out = new Uint8Array(to - from);
  let pos = 0; // inflated bytes so far
  const tooBig = new Error(`checkpoint ${label}: ${what} inflates to more than its declared ${e.size} bytes (a zip bomb?)`);
  const inf = new Inflate((chunk) => {
    inflatedBytes += chunk.length;
    if (pos + chunk.length > e.size) throw tooBig;
    // the part of [pos, pos + chunk.length) inside [from, to)
    const a = Math.max(pos, from);
    const b = Math.min(pos + chunk.length, to);
    if (a < b) out.set(chunk.subarray(a - pos, b - pos), a - from);
    pos += chunk.length;
  });
  try {
    if (e.compSize === 0) inf.push(new Uint8Array(0), true);
    for (let r = 0; r < e.compSize && (whole || pos < to); r += READ_PIECE) {
      const comp = src.read(start + r, Math.min(READ_PIECE, e.compSize - r));
      for (let i = 0; i < comp.length && (whole || pos < to); i += INFLATE_PIECE) {
        inf.push(comp.subarray(i, i + INFLATE_PIECE), r + i + INFLATE_PIECE >= e.compSize);
      }
    }
  } catch (err) {
    if (err === tooBig) throw err;
    corrupt(label, `${what}: ${(err as Error).message}`);
  }
  if (whole ? pos !== e.size : pos < to) throw new Error(`checkpoint ${label}: ${what} inflates to ${pos} bytes, the zip declares ${e.size}`);
  return out;
}

function openArchive(src: ByteSource): Archive {
  const label = src.label;
  if (src.size === 0) throw new Error(`checkpoint ${label} is empty`);
  const head = src.read(0, Math.min(4, src.size));
  if (!ZIP_MAGIC.every((b, i) => head[i] === b)) {
    // Pre-1.6 torch.save wrote a bare pickle stream starting with PROTO (0x80).
    if (head[0] === 0x80) {
      throw new Error(`checkpoint ${label}: legacy (non-zip) torch.save format is not supported; re-save with torch >= 1.6`);
    }
    throw new Error(`checkpoint ${label} is not a PyTorch zip checkpoint (no zip signature)`);
  }
  const entries = readCentralDirectory(src);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 0) throw new Error(`checkpoint ${label}: no <folder>/data.pkl entry in the zip (not a torch.save file?)`);
  if (pkls.length > 1) throw new Error(`checkpoint ${label}: several data.pkl entries (${pkls.join(', ')})`);
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  // torch >= 2.1 records the byte order; big-endian storages would decode to garbage
  const bo = entries.get(`${prefix}byteorder`);
  if (bo && bo.size <= 16) {
    const order = new TextDecoder('latin1').decode(readEntry(src, bo, `zip entry "${bo.name}"`)).trim();
    if (order !== 'little') throw new Error(`checkpoint ${label}: byte order "${order}" is not supported (only little-endian checkpoints)`);
  }
  return { src, prefix, entries };
}

// ---------------------------------------------------------------------------------------------
// Tensor reconstruction: declarations only; the data is read by `read()`

function asInt(v: unknown, what: string, label: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`checkpoint ${label}: ${what} is not an integer`);
}

function asIntTuple(v: unknown, what: string, label: string): number[] {
  if (!(v instanceof PyTuple)) throw new Error(`checkpoint ${label}: ${what} is not a tuple`);
  return v.items.map((x) => asInt(x, what, label));
}

function rebuildTensor(args: unknown[], label: string): PyTensor {
  if (args.length < 6) throw new Error(`checkpoint ${label}: _rebuild_tensor_v2 called with ${args.length} arguments`);
  const storage = args[0];
  if (!(storage instanceof PyStorage)) throw new Error(`checkpoint ${label}: _rebuild_tensor_v2 without a storage`);
  const offset = asInt(args[1], 'storage offset', label);
  const shape = asIntTuple(args[2], 'tensor size', label);
  const stride = asIntTuple(args[3], 'tensor stride', label);
  if (stride.length !== shape.length) throw new Error(`checkpoint ${label}: size and stride ranks differ`);
  return new PyTensor(storage, offset, shape, stride);
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * A tensor's declaration must fit its storage: non-negative sizes, strides and offset, no more
 * elements than the storage holds (a stride-0 "broadcast" of one value to 65535 x 65535 would
 * otherwise allocate 17 GB from a 409-byte file) and its last element inside the storage.
 */
function checkTensor(key: string, t: PyTensor, entry: string, label: string): { n: number; end: number } {
  const at = `checkpoint ${label}: tensor "${key}"`;
  const { shape, stride, offset, storage } = t;
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${at} has an invalid shape ${fmt(shape)}`);
  if (!stride.every((d) => Number.isSafeInteger(d))) throw new Error(`${at} has an invalid stride ${fmt(stride)}`);
  if (stride.some((d) => d < 0)) throw new Error(`${at} has a negative stride (${fmt(stride)}); only non-negative strides are supported`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`${at} has an invalid storage offset ${offset}`);
  const n = numel(shape);
  if (n > storage.numel) {
    throw new Error(`${at} has shape ${fmt(shape)} (${n} elements) but its storage "${entry}" holds ${storage.numel} ${storage.kind.name} elements`);
  }
  if (n === 0) return { n, end: offset };
  let last = offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d]! - 1) * stride[d]!;
  if (last >= storage.numel) {
    throw new Error(`${at}: storage "${entry}" has ${storage.numel} elements, too small for a tensor of shape ${fmt(shape)} at offset ${offset} with stride ${fmt(stride)}`);
  }
  return { n, end: last + 1 };
}

/** One storage as its tensors use it: `read()` reads elements [lo, hi) of it, nothing else. */
interface StorageUse {
  storage: PyStorage;
  entry: ZipEntry;
  users: number;
  /** the elements its tensors hold, together */
  held: number;
  lo: number;
  hi: number;
}

// ---------------------------------------------------------------------------------------------
// Pickle VM

function runPickle(pkl: Uint8Array, label: string): unknown {
  const dv = new DataView(pkl.buffer, pkl.byteOffset, pkl.byteLength);
  const text = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  // every value pushed and every memo entry counts: together they bound the stack, the memo, the
  // items of every list, tuple and dict, and the objects themselves
  let created = 0;
  const tooMany = () => {
    throw new Error(`checkpoint ${label}: data.pkl creates more than ${MAX_PICKLE_OBJECTS.toLocaleString('en-US')} objects (a state_dict's pickle needs a few dozen per tensor; at byte ${p})`);
  };
  const push = (v: unknown) => {
    if (++created > MAX_PICKLE_OBJECTS) tooMany();
    stack.push(v);
  };
  const memoize = (k: number, v: unknown) => {
    if (!memo.has(k) && ++created > MAX_PICKLE_OBJECTS) tooMany();
    memo.set(k, v);
  };

  const fail = (msg: string): never => {
    throw new Error(`checkpoint ${label}: data.pkl ${msg}`);
  };
  const need = (k: number) => {
    if (p + k > pkl.length) fail(`ends unexpectedly at byte ${p}`);
  };
  const u8 = () => (need(1), pkl[p++]!);
  const u16 = () => (need(2), (p += 2), dv.getUint16(p - 2, true));
  const u32 = () => (need(4), (p += 4), dv.getUint32(p - 4, true));
  const i32 = () => (need(4), (p += 4), dv.getInt32(p - 4, true));
  const bytes = (k: number) => (need(k), (p += k), pkl.subarray(p - k, p));
  const line = () => {
    const end = pkl.indexOf(0x0a, p);
    if (end < 0) fail(`ends inside a GLOBAL at byte ${p}`);
    const s = latin1.decode(pkl.subarray(p, end));
    p = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) fail(`pops an empty stack at byte ${p}`);
    const v = stack.pop();
    if (v === MARK) fail(`pops a MARK at byte ${p}`);
    return v;
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail(`has no MARK at byte ${p}`);
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => {
    if (stack.length === 0) fail(`reads an empty stack at byte ${p}`);
    return stack[stack.length - 1];
  };
  const global = (module: string, name: string) => {
    if (!isAllowedGlobal(module, name)) {
      throw new Error(`checkpoint ${label}: refusing to load: pickle references forbidden global "${module}.${name}"`);
    }
    return new PyGlobal(module, name);
  };
  const dictOf = (v: unknown): PyDict => (v instanceof PyDict ? v : fail(`sets an item on a non-dict at byte ${p}`));

  for (;;) {
    const at = p;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: bytes(8); break; // FRAME: framing is irrelevant when the whole pickle is in memory
      case 0x63: { const m = line(); const n = line(); push(global(m, n)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const n = pop(); const m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') fail(`STACK_GLOBAL with non-string names at byte ${at}`);
        push(global(m as string, n as string));
        break;
      }
      case 0x71: memoize(u8(), top()); break; // BINPUT
      case 0x72: memoize(u32(), top()); break; // LONG_BINPUT
      case 0x94: memoize(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET / LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`reads unset memo slot ${k} at byte ${at}`);
        push(memo.get(k));
        break;
      }
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x29: push(EMPTY_TUPLE); break; // EMPTY_TUPLE
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x28: push(MARK); break; // MARK
      case 0x74: push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x58: push(text.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: push(text.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: { // BINUNICODE8
        const lo = u32(); const hi = u32();
        push(text.decode(bytes(hi * 2 ** 32 + lo)));
        break;
      }
      case 0x55: push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x54: push(latin1.decode(bytes(u32()))); break; // BINSTRING
      case 0x43: push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: push(bytes(u32()).slice()); break; // BINBYTES
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: { // LONG1
        const b = bytes(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: push((need(8), (p += 8), dv.getFloat64(p - 8, false))); break; // BINFLOAT (big-endian)
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail(`APPEND to a non-list at byte ${at}`); (l as unknown[]).push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail(`APPENDS to a non-list at byte ${at}`); for (const x of items) (l as unknown[]).push(x); break; }
      case 0x73: { const v = pop(); const k = pop(); dictOf(top()).map.set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const d = dictOf(top());
        if (items.length % 2) fail(`SETITEMS with an odd item count at byte ${at}`);
        for (let i = 0; i < items.length; i += 2) d.map.set(items[i], items[i + 1]);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!(pid instanceof PyTuple) || pid.items[0] !== 'storage' || pid.items.length < 5) fail(`has an unknown persistent id at byte ${at}`);
        const [, type, key, , numel] = (pid as PyTuple).items;
        if (!(type instanceof PyGlobal) || !Object.prototype.hasOwnProperty.call(STORAGE_KINDS, type.name)) fail(`persistent id without a storage type at byte ${at}`);
        if (typeof key !== 'string') fail(`persistent id with a non-string key at byte ${at}`);
        push(new PyStorage(STORAGE_KINDS[(type as PyGlobal).name]!, key as string, asInt(numel, 'storage size', label)));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PyGlobal) || !(args instanceof PyTuple)) fail(`REDUCE on a non-callable at byte ${at}`);
        const g = fn as PyGlobal;
        const a = (args as PyTuple).items;
        switch (g.qualname) {
          case 'collections.OrderedDict': {
            if (a.length > 0) fail(`OrderedDict called with arguments at byte ${at}`);
            push(new PyDict());
            break;
          }
          case 'torch._utils._rebuild_tensor_v2': push(rebuildTensor(a, label)); break;
          case 'torch._utils._rebuild_parameter': {
            // A Parameter only adds requires_grad; the data tensor is what matters.
            if (!(a[0] instanceof PyTensor)) fail(`_rebuild_parameter without a tensor at byte ${at}`);
            push(a[0]);
            break;
          }
          default: fail(`calls "${g.qualname}", which is not callable here (byte ${at})`);
        }
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        // OrderedDict gets its `_metadata` attribute this way; tensors may get empty state. Both are
        // irrelevant for the weights, so the state is dropped.
        if (!(obj instanceof PyDict) && !(obj instanceof PyTensor)) fail(`BUILD on an unsupported object at byte ${at}`);
        void state;
        break;
      }
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      default:
        fail(`uses unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------

const WRAPPER_KEYS = ['state_dict', 'params', 'params_ema', 'model'];

function toStateDict(obj: unknown, label: string): Map<string, PyTensor> {
  if (!(obj instanceof PyDict)) throw new Error(`checkpoint ${label}: top-level object is not a dict`);
  let d = obj;
  const hasTensor = [...d.map.values()].some((v) => v instanceof PyTensor);
  if (!hasTensor) {
    // Training checkpoints often wrap the weights, e.g. {'state_dict': ..., 'epoch': 3}.
    for (const k of WRAPPER_KEYS) {
      const inner = d.map.get(k);
      if (inner instanceof PyDict) {
        d = inner;
        break;
      }
    }
  }
  const sd = new Map<string, PyTensor>();
  for (const [k, v] of d.map) {
    if (typeof k !== 'string') throw new Error(`checkpoint ${label}: state_dict has a non-string key`);
    if (!(v instanceof PyTensor)) throw new Error(`checkpoint ${label}: entry "${k}" is not a tensor`);
    sd.set(k, v);
  }
  return sd;
}

/**
 * Opens a PyTorch zip checkpoint holding a state_dict and checks everything it declares (zip
 * directory, pickle, every tensor against its storage, every storage against its zip entry)
 * without reading any tensor data: `headers` holds the names and shapes, `read()` the tensors.
 */
export function openPth(pathOrBytes: string | Uint8Array, name?: string): CheckpointReader {
  const src = openSource(pathOrBytes, name);
  const label = src.label;
  try {
    const archive = openArchive(src);
    const pklEntry = archive.entries.get(`${archive.prefix}data.pkl`)!;
    if (pklEntry.size > MAX_PKL_BYTES) throw new Error(`checkpoint ${label}: data.pkl declares ${pklEntry.size} bytes, more than a state_dict's pickle can need (${MAX_PKL_BYTES})`);
    const tensors = toStateDict(runPickle(readEntry(src, pklEntry, 'data.pkl'), label), label);
    // every storage once: its zip entry must hold exactly the bytes the pickle declares
    const storages = new Map<string, StorageUse>();
    for (const [key, t] of tensors) {
      const s = t.storage;
      const entryName = `${archive.prefix}data/${s.key}`;
      let known = storages.get(s.key);
      if (!known) {
        const entry = archive.entries.get(entryName);
        if (!entry) throw new Error(`checkpoint ${label}: storage entry "${entryName}" is missing from the zip`);
        if (!Number.isSafeInteger(s.numel) || s.numel < 0) throw new Error(`checkpoint ${label}: storage "${entryName}" declares an invalid size ${s.numel}`);
        const want = s.numel * s.kind.bytes;
        if (entry.size !== want) {
          throw new Error(`checkpoint ${label}: storage "${entryName}" has ${entry.size} bytes, the pickle declares ${s.numel} ${s.kind.name} elements (${want} bytes)`);
        }
        known = { storage: s, entry, users: 0, held: 0, lo: Infinity, hi: 0 };
        storages.set(s.key, known);
      } else if (known.storage.kind !== s.kind || known.storage.numel !== s.numel) {
        throw new Error(`checkpoint ${label}: storage "${entryName}" is declared twice, as ${known.storage.numel} ${known.storage.kind.name} and as ${s.numel} ${s.kind.name} elements`);
      }
      known.users++;
      const { n, end } = checkTensor(key, t, entryName, label);
      if (n > 0) {
        known.held += n;
        known.lo = Math.min(known.lo, t.offset);
        known.hi = Math.max(known.hi, end);
      }
    }
    // only the span the tensors view is read; a span far wider than what they hold (a few elements
    // strided over a huge storage) would cost its whole size for nothing
    for (const u of storages.values()) {
      if (u.held === 0) u.lo = u.hi = 0;
      const span = u.hi - u.lo;
      if (span > 2 * u.held + SPAN_SLACK) {
        throw new Error(`checkpoint ${label}: storage "${u.entry.name}": its tensors hold ${u.held} elements spread over ${span} (more than twice as many); refusing to read the gaps`);
      }
    }
    const headers = new Map<string, TensorHeader>([...tensors].map(([k, t]) => [k, { shape: [...t.shape], dtype: t.storage.kind.name }]));
    return {
      label,
      headers,
      close: () => src.close(),
      read: () => {
        try {
          return readTensors(tensors, storages, src);
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

function readTensors(tensors: Map<string, PyTensor>, storages: Map<string, StorageUse>, src: ByteSource): StateDict {
  const label = src.label;
  const decoded = new Map<string, Float32Array>();
  const left = new Map([...storages].map(([k, s]) => [k, s.users]));
  const sd: StateDict = new Map();
  for (const [key, t] of tensors) {
    const s = storages.get(t.storage.key)!;
    const kind = s.storage.kind;
    let arr = decoded.get(t.storage.key);
    if (!arr) {
      // elements [lo, hi) only: the part of the storage its tensors view
      const bytes = readEntry(src, s.entry, `storage entry "${s.entry.name}"`, s.lo * kind.bytes, s.hi * kind.bytes);
      arr = kind.name === 'float32' && LITTLE_ENDIAN ? float32View(bytes) : kind.decode(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, s.hi - s.lo);
      decoded.set(t.storage.key, arr);
    }
    const remaining = left.get(t.storage.key)! - 1;
    left.set(t.storage.key, remaining);
    if (remaining === 0) decoded.delete(t.storage.key); // the last user: let the storage go
    const data = gather(arr, t, t.offset - s.lo, s.users === 1);
    checkFinite(data, key, label);
    sd.set(key, { shape: [...t.shape], data });
  }
  return sd;
}

/** The tensor's elements in C order from `src` (the part of its storage read; `offset` is the
 * tensor's first element in it): `src` itself when it is exactly the tensor and has no other user,
 * a copy of a contiguous range, or a strided gather (strides checked non-negative). */
function gather(src: Float32Array, t: PyTensor, offset: number, soleUser: boolean): Float32Array {
  const { shape, stride } = t;
  const n = numel(shape);
  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d]! !== 1 && stride[d]! !== expect) contiguous = false;
    expect *= shape[d]!;
  }
  if (contiguous) {
    if (soleUser && offset === 0 && n === src.length) return src;
    return src.slice(offset, offset + n);
  }
  const out = new Float32Array(n);
  // Generic strided gather with an odometer over the multi-index.
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let pos = offset;
  for (let i = 0; i < n; i++) {
    out[i] = src[pos]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      pos += stride[d]!;
      if (idx[d]! < shape[d]!) break;
      pos -= idx[d]! * stride[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Reads a PyTorch zip checkpoint holding a state_dict; every tensor comes back as float32.
 * Tensors read from in-memory bytes may be views of those bytes. */
export function readPth(pathOrBytes: string | Uint8Array, name?: string): StateDict {
  return openPth(pathOrBytes, name).read();
}
