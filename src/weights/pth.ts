/**
 * Reader for PyTorch's zip `torch.save` format (torch >= 1.6), restricted to state_dicts.
 *
 * A checkpoint is untrusted input: its `data.pkl` is interpreted by a tiny pickle VM that knows
 * only the opcodes a state_dict needs and resolves only an allow-list of globals to built-in
 * behaviours. Nothing is ever imported or executed, so a malicious `os.system` reference fails
 * with an error instead of running.
 */
import { halfToFloat } from './safetensors.js';
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import type { F32Tensor } from '../util/tensor.js';
import type { StateDict } from './types.js';

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

class PyDict {
  readonly map = new Map<unknown, unknown>();
}

class PyStorage {
  constructor(readonly kind: StorageKind, readonly key: string, readonly numel: number) {}
}

class PyTensor {
  constructor(readonly tensor: F32Tensor) {}
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
// Zip container

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

interface Archive {
  prefix: string;
  files: Record<string, Uint8Array>;
}

function openArchive(buf: Uint8Array, label: string): Archive {
  if (buf.length === 0) throw new Error(`checkpoint ${label} is empty`);
  if (!ZIP_MAGIC.every((b, i) => buf[i] === b)) {
    // Pre-1.6 torch.save wrote a bare pickle stream starting with PROTO (0x80).
    if (buf[0] === 0x80) {
      throw new Error(`checkpoint ${label}: legacy (non-zip) torch.save format is not supported; re-save with torch >= 1.6`);
    }
    throw new Error(`checkpoint ${label} is not a PyTorch zip checkpoint (no zip signature)`);
  }
  let files: Record<string, Uint8Array>;
  try {
    // Only data.pkl and storages are needed; skipping the rest avoids copying unrelated entries.
    files = unzipSync(buf, { filter: (f) => /(^|\/)data\.pkl$/.test(f.name) || /(^|\/)data\/[^/]+$/.test(f.name) });
  } catch (e) {
    throw new Error(`checkpoint ${label} is truncated or corrupt (${(e as Error).message})`);
  }
  const pkls = Object.keys(files).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length === 0) throw new Error(`checkpoint ${label}: no <folder>/data.pkl entry in the zip (not a torch.save file?)`);
  if (pkls.length > 1) throw new Error(`checkpoint ${label}: several data.pkl entries (${pkls.join(', ')})`);
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  return { prefix, files };
}

// ---------------------------------------------------------------------------------------------
// Tensor reconstruction

function asInt(v: unknown, what: string, label: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`checkpoint ${label}: ${what} is not an integer`);
}

function asIntTuple(v: unknown, what: string, label: string): number[] {
  if (!(v instanceof PyTuple)) throw new Error(`checkpoint ${label}: ${what} is not a tuple`);
  return v.items.map((x) => asInt(x, what, label));
}

class StorageCache {
  private readonly decoded = new Map<string, Float32Array>();
  constructor(private readonly archive: Archive, private readonly label: string) {}

  get(s: PyStorage): Float32Array {
    let arr = this.decoded.get(s.key);
    if (arr) return arr;
    const entry = `${this.archive.prefix}data/${s.key}`;
    const bytes = this.archive.files[entry];
    if (!bytes) throw new Error(`checkpoint ${this.label}: storage entry "${entry}" is missing from the zip`);
    const n = Math.floor(bytes.byteLength / s.kind.bytes);
    if (n < s.numel) {
      throw new Error(`checkpoint ${this.label}: storage "${entry}" has ${bytes.byteLength} bytes, the pickle declares ${s.numel} ${s.kind.name} elements`);
    }
    if (s.kind.bytes === 4 && s.kind.name === 'float32' && bytes.byteOffset % 4 === 0) {
      // Fast path for the common case: a view, copied per tensor later.
      arr = new Float32Array(bytes.buffer, bytes.byteOffset, n);
    } else {
      arr = s.kind.decode(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, n);
    }
    this.decoded.set(s.key, arr);
    return arr;
  }
}

function rebuildTensor(args: unknown[], cache: StorageCache, label: string): PyTensor {
  if (args.length < 6) throw new Error(`checkpoint ${label}: _rebuild_tensor_v2 called with ${args.length} arguments`);
  const storage = args[0];
  if (!(storage instanceof PyStorage)) throw new Error(`checkpoint ${label}: _rebuild_tensor_v2 without a storage`);
  const offset = asInt(args[1], 'storage offset', label);
  const shape = asIntTuple(args[2], 'tensor size', label);
  const stride = asIntTuple(args[3], 'tensor stride', label);
  if (stride.length !== shape.length) throw new Error(`checkpoint ${label}: size and stride ranks differ`);
  const src = cache.get(storage);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  if (n > 0) {
    let last = offset;
    for (let d = 0; d < shape.length; d++) last += (shape[d]! - 1) * stride[d]!;
    if (offset < 0 || last >= src.length) {
      throw new Error(`checkpoint ${label}: storage "${storage.key}" has ${src.length} elements, too small for a tensor of shape [${shape.join(', ')}] at offset ${offset}`);
    }
    let contiguous = true;
    for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
      if (shape[d]! !== 1 && stride[d]! !== expect) contiguous = false;
      expect *= shape[d]!;
    }
    if (contiguous) {
      out.set(src.subarray(offset, offset + n));
    } else {
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
    }
  }
  return new PyTensor({ shape, data: out });
}

// ---------------------------------------------------------------------------------------------
// Pickle VM

function runPickle(pkl: Uint8Array, cache: StorageCache, label: string): unknown {
  const dv = new DataView(pkl.buffer, pkl.byteOffset, pkl.byteLength);
  const text = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;

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
      case 0x63: { const m = line(); const n = line(); stack.push(global(m, n)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const n = pop(); const m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') fail(`STACK_GLOBAL with non-string names at byte ${at}`);
        stack.push(global(m as string, n as string));
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET / LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`reads unset memo slot ${k} at byte ${at}`);
        stack.push(memo.get(k));
        break;
      }
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x28: stack.push(MARK); break; // MARK
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x58: stack.push(text.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(text.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: { // BINUNICODE8
        const lo = u32(); const hi = u32();
        stack.push(text.decode(bytes(hi * 2 ** 32 + lo)));
        break;
      }
      case 0x55: stack.push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x54: stack.push(latin1.decode(bytes(u32()))); break; // BINSTRING
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: { // LONG1
        const b = bytes(u8());
        let v = 0n;
        for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (b.length > 0 && b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: stack.push((need(8), (p += 8), dv.getFloat64(p - 8, false))); break; // BINFLOAT (big-endian)
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail(`APPEND to a non-list at byte ${at}`); (l as unknown[]).push(v); break; }
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail(`APPENDS to a non-list at byte ${at}`); (l as unknown[]).push(...items); break; }
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
        stack.push(new PyStorage(STORAGE_KINDS[(type as PyGlobal).name]!, key as string, asInt(numel, 'storage size', label)));
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
            stack.push(new PyDict());
            break;
          }
          case 'torch._utils._rebuild_tensor_v2': stack.push(rebuildTensor(a, cache, label)); break;
          case 'torch._utils._rebuild_parameter': {
            // A Parameter only adds requires_grad; the data tensor is what matters.
            if (!(a[0] instanceof PyTensor)) fail(`_rebuild_parameter without a tensor at byte ${at}`);
            stack.push(a[0]);
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

function toStateDict(obj: unknown, label: string): StateDict {
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
  const sd: StateDict = new Map();
  for (const [k, v] of d.map) {
    if (typeof k !== 'string') throw new Error(`checkpoint ${label}: state_dict has a non-string key`);
    if (!(v instanceof PyTensor)) throw new Error(`checkpoint ${label}: entry "${k}" is not a tensor`);
    sd.set(k, v.tensor);
  }
  return sd;
}

/** Reads a PyTorch zip checkpoint holding a state_dict; every tensor comes back as float32. */
export function readPth(pathOrBytes: string | Uint8Array, name?: string): StateDict {
  let buf: Uint8Array;
  let label: string;
  if (typeof pathOrBytes === 'string') {
    label = name ?? pathOrBytes;
    try {
      const b = readFileSync(pathOrBytes);
      buf = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') throw new Error(`checkpoint not found: ${pathOrBytes}`);
      throw new Error(`checkpoint ${label}: cannot read (${err.message})`);
    }
  } else {
    label = name ?? '<bytes>';
    buf = pathOrBytes;
  }
  const archive = openArchive(buf, label);
  const pkl = archive.files[`${archive.prefix}data.pkl`]!;
  const cache = new StorageCache(archive, label);
  return toStateDict(runPickle(pkl, cache, label), label);
}
