import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import {
  encodeSafetensors,
  loadCheckpoint,
  loadStrict,
  readNpy,
  readPth,
  readSafetensors,
  readSafetensorsWithMetadata,
  stripModulePrefix,
  writeSafetensors,
  type ParamSpec,
  type StateDict,
} from '../src/weights/index.js';
import { fixture } from './fixtures.js';
import { bytes, enc, f32bytes, P, pthZip } from './pickle.js';

const FIX = fixture('parity');
const manifest = JSON.parse(readFileSync(join(FIX, 'manifest.json'), 'utf8'));
const tmp = () => mkdtempSync(join(tmpdir(), 'weights-test-'));

const numelOf = (sd: StateDict, filter: (k: string) => boolean = () => true) =>
  [...sd].filter(([k]) => filter(k)).reduce((a, [, t]) => a + t.data.length, 0);

const specOf = (sd: StateDict): ParamSpec => new Map([...sd].map(([k, t]) => [k, [...t.shape]]));


describe('readPth on the fixture checkpoints', () => {
  const nets = manifest.groups.nets.weights as Record<string, { file: string; n_params: number; n_state_dict_entries: number; buffers: string[] }>;

  for (const [name, info] of Object.entries(nets)) {
    it(`${name}: entry count and parameter count match the manifest`, () => {
      const sd = readPth(join(FIX, info.file));
      expect(sd.size).toBe(info.n_state_dict_entries);
      // n_params counts parameters only; spectral-norm u/v are buffers on top of it.
      const buffers = new Set(info.buffers);
      expect(numelOf(sd, (k) => !buffers.has(k))).toBe(info.n_params);
      for (const b of info.buffers) expect(sd.has(b)).toBe(true);
      for (const t of sd.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
    });
  }

  it('known shapes and totals', () => {
    const s = readPth(join(FIX, 'nets/structure.pth'));
    const t = readPth(join(FIX, 'nets/texture.pth'));
    const d = readPth(join(FIX, 'nets/discriminator.pth'));
    expect(numelOf(s)).toBe(654_945);
    expect(numelOf(t)).toBe(827_243); // 824,843 parameters + 2,400 spectral-norm buffer values
    expect(numelOf(d)).toBe(202_577);
    expect(s.get('init_conv.weight')!.shape).toEqual([4, 2, 7, 7]);
    expect(t.get('init_conv.weight')!.shape).toEqual([4, 6, 7, 7]);
    expect(t.get('downs.0.4.conv_0.weight_orig')!.shape).toEqual([8, 8, 3, 3]);
    expect(t.get('downs.0.4.conv_0.weight_u')!.shape).toEqual([8]);
    expect(t.get('downs.0.4.conv_0.weight_v')!.shape).toEqual([72]);
    expect([...s.keys()][0]).toBe('init_conv.weight');
    expect(d.get('start_conv.weight')!.shape).toEqual([8, 4, 1, 1]);
    expect(d.get('end_linear.bias')!.shape).toEqual([1]);
  });

  it('texture after.pth holds the spectral-norm vectors of sn_after/', () => {
    const after = readPth(join(FIX, 'train/texture/after.pth'));
    const sn = manifest.cases.find((c: { name: string }) => c.name === 'train_texture').sn_after as Record<string, { file: string; shape: number[] }>;
    expect(Object.keys(sn).length).toBe(16);
    for (const [key, e] of Object.entries(sn)) {
      const ref = readNpy(join(FIX, e.file));
      expect(after.get(key)!.shape).toEqual(e.shape);
      expect(Array.from(after.get(key)!.data)).toEqual(Array.from(ref.data));
    }
  });

  it('after.pth = init + one Adam step of the reference gradients', () => {
    for (const which of ['structure', 'texture']) {
      const init = readPth(join(FIX, `nets/${which}.pth`));
      const after = readPth(join(FIX, `train/${which}/after.pth`));
      const grads = manifest.cases.find((c: { name: string }) => c.name === `train_${which}`).grads as Record<string, { file: string }>;
      let worst = 0;
      for (const key of ['init_conv.weight', 'time_mlp.1.weight', 'final_conv.bias']) {
        const g = readNpy(join(FIX, grads[key]!.file)).data;
        const a = init.get(key)!.data;
        const b = after.get(key)!.data;
        for (let i = 0; i < a.length; i++) {
          const expected = a[i]! - (1e-4 * g[i]!) / (Math.abs(g[i]!) + 1e-8);
          worst = Math.max(worst, Math.abs(expected - b[i]!));
        }
      }
      expect(worst).toBeLessThan(6e-7);
    }
  });

  it('reads from bytes and from any folder name inside the zip', () => {
    const bytesIn = readFileSync(join(FIX, 'nets/discriminator.pth'));
    const a = readPth(new Uint8Array(bytesIn));
    const b = readPth(join(FIX, 'train/discriminator/after.pth')); // folder "step1_after/"
    expect([...a.keys()]).toEqual([...b.keys()]);
  });
});

describe('readPth on crafted checkpoints', () => {
  it('refuses a forbidden global and executes nothing', () => {
    const dir = tmp();
    const marker = join(dir, 'pwned');
    const pkl = bytes(P.proto, P.global('os', 'system'), P.tuple(P.str(`touch ${marker}`)), 'R.');
    const file = join(dir, 'evil.pth');
    writeFileSync(file, pthZip('evil', pkl));
    expect(() => readPth(file)).toThrow(`checkpoint ${file}: refusing to load: pickle references forbidden global "os.system"`);
    expect(() => loadCheckpoint(file)).toThrow(/forbidden global "os\.system"/);
    expect(existsSync(marker)).toBe(false);
    const evalPkl = bytes(P.proto, P.global('builtins', 'eval'), P.tuple(P.str('1')), 'R.');
    expect(() => readPth(pthZip('x', evalPkl))).toThrow(/forbidden global "builtins\.eval"/);
  });

  it('rebuilds offset / non-contiguous tensors and unwraps Parameters and wrappers', () => {
    const storage = f32bytes([0, 1, 2, 3, 4, 5, 6, 7]);
    const pkl = bytes(
      P.proto,
      P.od(),
      P.str('transposed'),
      P.tensor('0', 8, 1, [3, 2], [1, 3]), // values at 1 + i + 3j
      's',
      P.str('param'),
      P.global('torch._utils', '_rebuild_parameter'),
      '(',
      P.tensor('0', 8, 2, [2, 2], [2, 1]),
      [0x88],
      P.od(),
      't',
      'R',
      's',
      P.str('scalar'),
      P.tensor('0', 8, 7, [], []),
      's',
      '.',
    );
    const sd = readPth(pthZip('whatever_name', pkl, { '0': storage }));
    expect(sd.get('transposed')).toEqual({ shape: [3, 2], data: Float32Array.from([1, 4, 2, 5, 3, 6]) });
    expect(sd.get('param')).toEqual({ shape: [2, 2], data: Float32Array.from([2, 3, 4, 5]) });
    expect(sd.get('scalar')).toEqual({ shape: [], data: Float32Array.from([7]) });

    const wrapped = bytes(P.proto, '}', P.str('epoch'), P.int(3), 's', P.str('state_dict'), P.od(), P.str('w'), P.tensor('0', 8, 0, [2], [1]), 's', 's', '.');
    expect(readPth(pthZip('ckpt', wrapped, { '0': storage })).get('w')!.data).toEqual(Float32Array.from([0, 1]));

    const half = new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer); // 1.0, -2.0
    const halfPkl = bytes(P.proto, P.od(), P.str('h'), P.tensor('0', 2, 0, [2], [1], 'HalfStorage'), 's', '.');
    expect(readPth(pthZip('h', halfPkl, { '0': half })).get('h')!.data).toEqual(Float32Array.from([1, -2]));
  });

  it('clear errors for truncated, legacy, missing entries and small storages', () => {
    const dir = tmp();
    const real = readFileSync(join(FIX, 'nets/texture.pth'));
    const cut = join(dir, 'cut.pth');
    writeFileSync(cut, real.subarray(0, real.length >> 1));
    expect(() => readPth(cut)).toThrow(new RegExp(`^checkpoint ${cut} is truncated or corrupt \\(`));

    expect(() => readPth(bytes([0x80, 0x02, 0x8a, 0x0a]))).toThrow(/legacy \(non-zip\) torch\.save format is not supported; re-save with torch >= 1\.6/);
    expect(() => readPth(bytes('hello world'))).toThrow(/not a PyTorch zip checkpoint/);
    expect(() => readPth(zipSync({ 'a/b.txt': enc.encode('x') }))).toThrow(/no <folder>\/data\.pkl/);

    const pkl = bytes(P.proto, P.od(), P.str('w'), P.tensor('7', 8, 0, [2, 4], [4, 1]), 's', '.');
    expect(() => readPth(pthZip('m', pkl))).toThrow(/storage entry "m\/data\/7" is missing/);
    expect(() => readPth(pthZip('m', pkl, { '7': f32bytes([1, 2, 3]) }))).toThrow(/storage "m\/data\/7" has 12 bytes/);
    const big = bytes(P.proto, P.od(), P.str('w'), P.tensor('7', 4, 1, [2, 2], [2, 1]), 's', '.');
    expect(() => readPth(pthZip('m', big, { '7': f32bytes([1, 2, 3, 4]) }))).toThrow(/too small for a tensor of shape \[2, 2\] at offset 1/);
    expect(() => readPth(pthZip('m', bytes(P.proto, [0x81])))).toThrow(/unsupported pickle opcode 0x81/);
  });
});

describe('loadStrict and stripModulePrefix', () => {
  const structure = readPth(join(FIX, 'nets/structure.pth'));
  const texture = readPth(join(FIX, 'nets/texture.pth'));
  const spec = specOf(structure);

  it('accepts a matching checkpoint and returns it in spec order', () => {
    const shuffled = new Map([...structure].reverse());
    const out = loadStrict(shuffled, spec, 'structure net');
    expect([...out.keys()]).toEqual([...spec.keys()]);
    expect(out.get('init_conv.weight')).toBe(structure.get('init_conv.weight'));
  });

  it('module. prefix loads identically', () => {
    const prefixed: StateDict = new Map([...structure].map(([k, v]) => [`module.${k}`, v]));
    expect(stripModulePrefix(prefixed)).toEqual(structure);
    expect(loadStrict(prefixed, spec, 'structure net')).toEqual(loadStrict(structure, spec, 'structure net'));
    // A partial prefix is not DataParallel's, so it is left alone.
    const mixed: StateDict = new Map([['module.a', structure.get('init_conv.weight')!], ['b', structure.get('init_conv.weight')!]]);
    expect([...stripModulePrefix(mixed).keys()]).toEqual(['module.a', 'b']);
  });

  it('reports a wrong shape', () => {
    const sd = new Map(structure);
    sd.set('init_conv.weight', { shape: [4, 6, 7, 7], data: new Float32Array(4 * 6 * 49) });
    expect(() => loadStrict(sd, spec, 'structure net')).toThrow(
      'structure net: checkpoint does not match the network (1 wrong shape): key "init_conv.weight": checkpoint has shape [4, 6, 7, 7], network expects [4, 2, 7, 7]',
    );
  });

  it('reports missing and unexpected keys', () => {
    const sd = new Map(structure);
    sd.delete('downs.0.0.mlp.1.weight');
    sd.set('foo', { shape: [3], data: new Float32Array(3) });
    let msg = '';
    try {
      loadStrict(sd, spec, 'structure net');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg.startsWith('structure net: ')).toBe(true);
    expect(msg).toContain('missing key "downs.0.0.mlp.1.weight" (expected shape [8, 16])');
    expect(msg).toContain('unexpected key "foo" with shape [3]');
    expect(msg).not.toContain('\n');
  });

  it('summarises many problems on one line with an architecture hint', () => {
    let msg = '';
    try {
      loadStrict(texture, spec, 'structure net');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^structure net: /);
    expect(msg).toMatch(/\(and \d+ more\)/);
    expect(msg).toContain('looks like a texture network checkpoint');
    expect(msg).not.toContain('\n');
    expect(() => loadStrict(structure, specOf(texture), 'texture net')).toThrow(/looks like a structure network checkpoint/);
    const disc = readPth(join(FIX, 'nets/discriminator.pth'));
    expect(() => loadStrict(disc, spec, 'structure net')).toThrow(/looks like a discriminator checkpoint/);
  });
});

describe('safetensors', () => {
  const sd: StateDict = new Map([
    ['z.weight', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-30, -0]) }],
    ['10', { shape: [1], data: Float32Array.from([42]) }],
    ['a.bias', { shape: [], data: Float32Array.from([Math.PI]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);

  it('round trips tensors, key order and metadata', () => {
    const dir = tmp();
    const file = join(dir, 'w.safetensors');
    writeSafetensors(file, sd, { format: 'pt', note: 'hello' });
    expect(readdirSync(dir)).toEqual(['w.safetensors']); // no temp file left behind
    const { tensors, metadata } = readSafetensorsWithMetadata(file);
    expect([...tensors.keys()]).toEqual(['z.weight', '10', 'a.bias', 'empty']);
    expect(tensors).toEqual(sd);
    expect(metadata).toEqual({ format: 'pt', note: 'hello' });
    expect(loadCheckpoint(file)).toEqual(sd);

    const raw = readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect(raw.length).toBe(8 + n + 4 * (6 + 1 + 1));
    expect(encodeSafetensors(sd, { format: 'pt', note: 'hello' })).toEqual(new Uint8Array(raw));

    const other = join(dir, 'weights.bin.unknown');
    writeFileSync(other, raw);
    expect(loadCheckpoint(other)).toEqual(sd); // found by its magic, not its name
  });

  it('round trips a real checkpoint', () => {
    const dir = tmp();
    const tex = readPth(join(FIX, 'nets/texture.pth'));
    writeSafetensors(join(dir, 't.safetensors'), tex);
    const back = readSafetensors(join(dir, 't.safetensors'));
    expect([...back.keys()]).toEqual([...tex.keys()]);
    for (const [k, t] of tex) {
      // Byte comparison: vitest's deep equality is slow on ~10^6 elements.
      const b = back.get(k)!;
      expect(b.shape).toEqual(t.shape);
      expect(Buffer.compare(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))).toBe(0);
    }
  });

  it('converts F16 / BF16 / F64', () => {
    const header = JSON.stringify({
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
      d: { dtype: 'F64', shape: [1], data_offsets: [6, 14] },
    });
    const data = new Uint8Array(14);
    const dv = new DataView(data.buffer);
    dv.setUint16(0, 0x3c00, true);
    dv.setUint16(2, 0x3800, true); // 0.5
    dv.setUint16(4, 0x4040, true); // bf16 3.0
    dv.setFloat64(6, 0.25, true);
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(header.length), true);
    const out = readSafetensors(bytes(len, header, data));
    expect(out.get('h')!.data).toEqual(Float32Array.from([1, 0.5]));
    expect(out.get('b')!.data).toEqual(Float32Array.from([3]));
    expect(out.get('d')!.data).toEqual(Float32Array.from([0.25]));
  });

  it('rejects corrupt headers, bad offsets and unsupported dtypes', () => {
    const good = encodeSafetensors(sd);
    const corrupt = good.slice();
    corrupt[8] = 0x21; // '!' instead of '{'
    expect(() => readSafetensors(corrupt)).toThrow(/invalid safetensors file: header is not valid JSON/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => readSafetensors(huge)).toThrow(/header length \d+ exceeds the file size/);
    expect(() => readSafetensors(good.subarray(0, good.length - 4))).toThrow(/invalid safetensors file/);
    const mk = (h: object, dataLen: number) => {
      const s = JSON.stringify(h);
      const len = new Uint8Array(8);
      new DataView(len.buffer).setBigUint64(0, BigInt(s.length), true);
      return bytes(len, s, new Uint8Array(dataLen));
    };
    expect(() => readSafetensors(mk({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8))).toThrow(/has 8 bytes, shape \[3\] of F32 needs 12/);
    expect(() => readSafetensors(mk({ x: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8))).toThrow(/dtype I64; only F32, F16, BF16 and F64 are supported/);
    expect(() => readSafetensors(mk({ x: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8))).toThrow(/overlap or gap/);
  });
});

describe('loadCheckpoint', () => {
  it('reports a missing file', () => {
    expect(() => loadCheckpoint('/nonexistent/dir/model.pth')).toThrow('checkpoint not found: /nonexistent/dir/model.pth');
    expect(() => readPth('/nonexistent/x.pth')).toThrow('checkpoint not found: /nonexistent/x.pth');
  });

  it('dispatches .pth by extension', () => {
    expect(loadCheckpoint(join(FIX, 'nets/structure.pth')).size).toBe(151);
  });
});

describe('model.json settings', () => {
  it('window size and step rule are read and checked', async () => {
    const { modelWindowSize, loadModel, DEFAULT_MODEL_DIR } = await import('../src/model/checkpoints.js');
    const dir = mkdtempSync(join(tmpdir(), 'strd-meta-'));
    expect(modelWindowSize([dir])).toBeUndefined();
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ T: 50, size: 96 }));
    expect(modelWindowSize([dir, DEFAULT_MODEL_DIR])).toBe(96);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ T: 50, size: 'big' }));
    expect(() => modelWindowSize([dir])).toThrow(/model\.json: size must be an integer >= 16 \(got "big"\)/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ T: 50, stepRule: 'euler' }));
    expect(() => loadModel([dir])).toThrow(/model\.json: stepRule must be "sde" or "posterior" \(got "euler"\)/);
    writeFileSync(join(dir, 'model.json'), '{"T": 5');
    expect(() => loadModel([dir])).toThrow(/model\.json: not valid JSON/);
  });
});
