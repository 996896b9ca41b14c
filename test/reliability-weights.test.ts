/**
 * Issue #14, items 4, 7, 9, 10: hostile checkpoints and model folders.
 *
 * Every malicious file is crafted here, in memory or as a sparse file in a temp dir. Memory is a
 * resource bound, not a timing assertion: the risky loads run in a child process, which reports the
 * growth of its peak RSS (getrusage's high-water mark) and of its ArrayBuffer memory across the one
 * call, so nothing the test runner itself allocated can hide or inflate the number.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, deflateRawSync } from 'node:zlib';
import { bytes, enc, f32bytes, P, pthZip, rawZip, u16, u32, type RawEntry } from './pickle.js';
import { encodeSafetensors, parseNpy, readPth, readSafetensors, loadCheckpoint, type StateDict } from '../src/weights/index.js';
import { fixture } from './fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FIX = fixture('parity');
const DEFAULT_MODEL = join(ROOT, 'models/default');
const tmp = () => mkdtempSync(join(tmpdir(), 'reliability-weights-'));
const MB = 2 ** 20;
/** the bound on memory growth for a refused file (the crafted files would take 0.3-1 GB) */
const SMALL_MB = 100;

// --- a child process that runs one load and reports its memory growth ---------------------------
interface Measured {
  error: string | null;
  /** growth of the peak resident set during the call, MiB */
  peakRssMB: number;
  /** ArrayBuffer memory still allocated right after the call, MiB */
  arrayBuffersMB: number;
}

/** `body` is the body of an async function with `w` (src/weights), `ck` (src/model/checkpoints)
 * and `arg` (the JSON value given) in scope. */
function measure(body: string, arg: unknown): Measured {
  const script = `
    import { register } from 'tsx/esm/api';
    register();
    const w = await import(${JSON.stringify(join(ROOT, 'src/weights/index.ts'))});
    const ck = await import(${JSON.stringify(join(ROOT, 'src/model/checkpoints.ts'))});
    const arg = JSON.parse(process.env.RELIABILITY_ARG);
    const run = async () => { ${body} };
    globalThis.gc?.();
    const rss0 = process.resourceUsage().maxRSS;
    const ab0 = process.memoryUsage().arrayBuffers;
    let error = null;
    try { await run(); } catch (e) { error = e.message; }
    const ab1 = process.memoryUsage().arrayBuffers;
    const rss1 = process.resourceUsage().maxRSS;
    console.log('RESULT ' + JSON.stringify({ error, peakRssMB: (rss1 - rss0) / 1024, arrayBuffersMB: (ab1 - ab0) / 2 ** 20 }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, RELIABILITY_ARG: JSON.stringify(arg) },
    timeout: 300_000,
    maxBuffer: 16 * MB,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child failed (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(line.slice('RESULT '.length)) as Measured;
}

function expectSmall(m: Measured): void {
  expect(m.peakRssMB, `peak RSS grew by ${m.peakRssMB.toFixed(1)} MiB`).toBeLessThan(SMALL_MB);
  expect(m.arrayBuffersMB, `ArrayBuffers grew by ${m.arrayBuffersMB.toFixed(1)} MiB`).toBeLessThan(SMALL_MB);
}

function expectOneLine(msg: string | null, re: RegExp): void {
  expect(msg).not.toBeNull();
  expect(msg!).toMatch(re);
  expect(msg!).not.toContain('\n');
}

interface PthTensor {
  key: string;
  storage: string;
  numel: number;
  offset?: number;
  shape: number[];
  stride?: number[];
  kind?: string;
}
const contiguous = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
function statePkl(tensors: PthTensor[]): Uint8Array {
  const items = tensors.map((t) => bytes(P.str(t.key), P.tensor(t.storage, t.numel, t.offset ?? 0, t.shape, t.stride ?? contiguous(t.shape), t.kind)));
  return bytes(P.proto, P.od(), '(', ...items, 'u', '.');
}


/** A raw deflate stream of `mb` MiB of zeros, ~1 KiB per MiB: the same sync-flushed block repeated. */
function zeroBomb(mb: number): Uint8Array {
  const block = deflateRawSync(Buffer.alloc(MB), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
  const out = new Uint8Array(block.length * mb + 2);
  for (let i = 0; i < mb; i++) out.set(block, i * block.length);
  out.set([0x03, 0x00], block.length * mb); // a final, empty fixed-Huffman block
  return out;
}

function safetensorsHeader(entries: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>): Uint8Array {
  let h = JSON.stringify(entries);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(h.length), true);
  return bytes(len, h);
}

/** A model folder: the bundled model's files, with `override` replacing some of them. */
function modelFolder(override: Record<string, Uint8Array | string> = {}, modelJson?: object): string {
  const dir = tmp();
  for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(DEFAULT_MODEL, `${k}.safetensors`), join(dir, `${k}.safetensors`));
  const meta = modelJson ?? JSON.parse(readFileSync(join(DEFAULT_MODEL, 'model.json'), 'utf8'));
  writeFileSync(join(dir, 'model.json'), JSON.stringify(meta));
  for (const [name, v] of Object.entries(override)) {
    if (name.endsWith('.pth')) rmSync(join(dir, name.replace(/\.pth$/, '.safetensors')), { force: true });
    writeFileSync(join(dir, name), v);
  }
  return dir;
}

// =================================================================================================
describe('item 4: tiny crafted checkpoints cannot exhaust memory', () => {
  it('a stride-0 tensor with more elements than its storage is refused before anything is allocated', () => {
    const dir = tmp();
    const file = join(dir, 'stride0.pth');
    // 16384 x 16384 float32 = 1 GiB from a 4-byte storage (the probe used 65535 x 65535: 17 GB)
    writeFileSync(file, pthZip('m', statePkl([{ key: 'w', storage: '0', numel: 1, shape: [16384, 16384], stride: [0, 0] }]), { '0': f32bytes([1]) }));
    expect(readFileSync(file).length).toBeLessThan(1024);
    const m = measure('w.readPth(arg)', file);
    expectOneLine(m.error, /tensor "w" has shape \[16384, 16384\] \(268435456 elements\) but its storage "m\/data\/0" holds 1 float32 elements/);
    expectSmall(m);
  });

  it('a storage entry whose declared size disagrees with the pickle is refused before inflating', () => {
    const dir = tmp();
    const file = join(dir, 'bomb.pth');
    const pkl = statePkl([{ key: 'w', storage: '0', numel: 4, shape: [4] }]);
    const bomb = zeroBomb(1024); // 1 GiB of zeros in ~1 MiB
    writeFileSync(file, rawZip([
      { name: 'm/data.pkl', data: pkl, method: 0 },
      { name: 'm/data/0', data: bomb, method: 8, size: 1024 * MB },
    ]));
    expect(readFileSync(file).length).toBeLessThan(3 * MB);
    const m = measure('w.readPth(arg)', file);
    expectOneLine(m.error, /storage "m\/data\/0" has 1073741824 bytes, the pickle declares 4 float32 elements \(16 bytes\)/);
    expectSmall(m);
  });

  it('a storage entry that inflates beyond its declared size is cut off', () => {
    const dir = tmp();
    const file = join(dir, 'liar.pth');
    const pkl = statePkl([{ key: 'w', storage: '0', numel: 4, shape: [4] }]);
    writeFileSync(file, rawZip([
      { name: 'm/data.pkl', data: pkl, method: 0 },
      { name: 'm/data/0', data: zeroBomb(1024), method: 8, size: 16 },
    ]));
    const m = measure('w.readPth(arg)', file);
    expectOneLine(m.error, /storage entry "m\/data\/0" inflates to more than its declared 16 bytes/);
    expectSmall(m);
    // and one that inflates to less is corrupt too
    const short = rawZip([
      { name: 'm/data.pkl', data: pkl, method: 0 },
      { name: 'm/data/0', data: deflateRawSync(Buffer.alloc(8)), method: 8, size: 16 },
    ]);
    expect(() => readPth(short)).toThrow(/storage entry "m\/data\/0" inflates to 8 bytes, the zip declares 16/);
  });

  it('an honest 1 GiB bomb under a name the network does not have is refused by the key check before inflating', () => {
    // structure.pth = the fixture structure network's tensors plus one extra 1 GiB tensor
    const fixture = readPth(join(FIX, 'nets/structure.pth'));
    const tensors: PthTensor[] = [];
    const storages: RawEntry[] = [];
    let i = 0;
    for (const [key, t] of fixture) {
      tensors.push({ key, storage: String(i), numel: t.data.length, shape: t.shape });
      storages.push({ name: `m/data/${i}`, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), method: 0 });
      i++;
    }
    tensors.push({ key: 'extra.weight', storage: 'bomb', numel: 256 * MB, shape: [16384, 16384] });
    storages.push({ name: 'm/data/bomb', data: zeroBomb(1024), method: 8, size: 1024 * MB });
    const pth = rawZip([{ name: 'm/data.pkl', data: statePkl(tensors), method: 0 }, ...storages]);
    const dir = modelFolder({ 'structure.pth': pth }, { T: 100 });
    const m = measure('ck.loadModel([arg])', dir);
    expectOneLine(m.error, /structure\.pth \(structure network\): checkpoint does not match the network \(1 unexpected\): unexpected key "extra\.weight" with shape \[16384, 16384\]/);
    expectSmall(m);
  });

  it('a valid 300 MiB safetensors file with wrong keys is refused after reading its header only', () => {
    const dir = modelFolder();
    const n = 300 * MB;
    const header = safetensorsHeader({ 'wrong.weight': { dtype: 'F32', shape: [n / 4], data_offsets: [0, n] } });
    const file = join(dir, 'structure.safetensors');
    writeFileSync(file, header);
    truncateSync(file, header.length + n); // sparse: 300 MiB of zeros that cost no disk
    const m = measure('ck.loadModel([arg])', dir);
    expectOneLine(m.error, /structure\.safetensors: not a StrDiffusion U-Net checkpoint \(no init_conv\.weight \/ final_conv\.weight\)/);
    expectSmall(m);
  });

  it('right keys plus one 300 MiB unexpected tensor: refused by the key check, the data never read', () => {
    const dir = modelFolder();
    const real = readSafetensors(join(DEFAULT_MODEL, 'structure.safetensors'));
    // the real tensors, then a huge one at the end of the data section (sparse)
    const head = encodeSafetensors(real);
    const hlen = Number(new DataView(head.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + hlen)));
    const realBytes = head.length - 8 - hlen;
    const n = 300 * MB;
    header['extra.weight'] = { dtype: 'F32', shape: [n / 4], data_offsets: [realBytes, realBytes + n] };
    const h2 = safetensorsHeader(header);
    const file = join(dir, 'structure.safetensors');
    writeFileSync(file, bytes(h2, head.subarray(8 + hlen)));
    truncateSync(file, h2.length + realBytes + n);
    const m = measure('ck.loadModel([arg])', dir);
    expectOneLine(m.error, /checkpoint does not match the network \(1 unexpected\): unexpected key "extra\.weight" with shape \[78643200\]/);
    expectSmall(m);
  });

  it('a valid safetensors file is read with about one copy of its data', () => {
    const dir = tmp();
    const n = 256 * MB;
    const header = safetensorsHeader({ a: { dtype: 'F32', shape: [n / 8], data_offsets: [0, n / 2] }, b: { dtype: 'F32', shape: [n / 8], data_offsets: [n / 2, n] } });
    const file = join(dir, 'big.safetensors');
    writeFileSync(file, header);
    truncateSync(file, header.length + n);
    const m = measure('globalThis.keep = w.readSafetensors(arg); if (globalThis.keep.get("b").data.length !== ' + n / 8 + ') throw new Error("bad")', file);
    expect(m.error).toBeNull();
    // one copy is 256 MiB; the old reader peaked at three (the file, a slice, the output)
    expect(m.peakRssMB).toBeLessThan(256 * 1.4);
  });

  it('a pth whose stored storage lies past the end of the file is reported as truncated', () => {
    const pkl = statePkl([{ key: 'w', storage: '0', numel: 4, shape: [4] }]);
    const z = rawZip([{ name: 'm/data.pkl', data: pkl, method: 0 }, { name: 'm/data/0', data: f32bytes([1, 2, 3, 4]), method: 0 }]);
    // point the storage's local header offset past the end
    const dv = new DataView(z.buffer);
    const eocd = z.length - 22;
    const cd = dv.getUint32(eocd + 16, true);
    const second = cd + 46 + 'm/data.pkl'.length;
    dv.setUint32(second + 42, z.length + 100, true);
    expect(() => readPth(z)).toThrow(/is truncated or corrupt \(zip entry "m\/data\/0" lies outside the file\)/);
  });

  it('a huge data.pkl declaration is refused before inflating', () => {
    const z = rawZip([{ name: 'm/data.pkl', data: zeroBomb(4), method: 8, size: 2 ** 31 }]);
    expect(() => readPth(z)).toThrow(/data\.pkl declares 2147483648 bytes/);
  });

  it('the reader checks names and shapes before any data is read (loadCheckpoint with an expected spec)', () => {
    const file = join(FIX, 'nets/discriminator.pth');
    const spec = new Map([['start_conv.weight', [8, 4, 1, 1]]]);
    expect(() => loadCheckpoint(file, { expect: spec, what: 'disc' })).toThrow(/^disc: checkpoint does not match the network \(\d+ unexpected\)/);
  });
});

// =================================================================================================
describe('item 9: non-finite values never pass through', () => {
  it('negative strides are refused, naming the tensor', () => {
    const pkl = statePkl([{ key: 'flipped', storage: '0', numel: 4, offset: 3, shape: [4], stride: [-1] }]);
    expect(() => readPth(pthZip('m', pkl, { '0': f32bytes([1, 2, 3, 4]) }))).toThrow(/tensor "flipped" has a negative stride \(\[-1\]\)/);
    const pkl2 = statePkl([{ key: 'x', storage: '0', numel: 4, offset: 0, shape: [2, 2], stride: [2, -5] }]);
    expect(() => readPth(pthZip('m', pkl2, { '0': f32bytes([1, 2, 3, 4]) }))).toThrow(/tensor "x" has a negative stride/);
  });

  it('non-finite weights are refused at load time, naming the tensor (pth, safetensors, F16, F64 overflow)', () => {
    const pkl = statePkl([{ key: 'ok', storage: '0', numel: 2, shape: [2] }, { key: 'bad.bias', storage: '1', numel: 3, shape: [3] }]);
    expect(() => readPth(pthZip('m', pkl, { '0': f32bytes([1, 2]), '1': f32bytes([0, NaN, 1]) }))).toThrow(
      /^checkpoint <bytes>: tensor "bad\.bias" holds a non-finite value \(NaN at index 1\)$/,
    );
    const sd: StateDict = new Map([['a', { shape: [2], data: Float32Array.from([1, Infinity]) }]]);
    expect(() => readSafetensors(encodeSafetensors(sd))).toThrow(/tensor "a" holds a non-finite value \(Infinity at index 1\)/);
    const h16 = safetensorsHeader({ h: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } });
    expect(() => readSafetensors(bytes(h16, [0x00, 0xfc]))).toThrow(/tensor "h" holds a non-finite value \(-Infinity at index 0\)/);
    const h64 = safetensorsHeader({ d: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } });
    const big = new Uint8Array(new Float64Array([1e300]).buffer);
    expect(() => readSafetensors(bytes(h64, big))).toThrow(/tensor "d" holds a non-finite value \(Infinity at index 0\)/);
  });

  it('a model folder with a NaN weight does not load, and convert exits non-zero with one line', () => {
    const tex = readSafetensors(join(DEFAULT_MODEL, 'texture.safetensors'));
    const t = tex.get('final_conv.bias')!;
    const data = t.data.slice();
    data[1] = NaN;
    tex.set('final_conv.bias', { shape: t.shape, data });
    const dir = modelFolder({ 'texture.safetensors': encodeSafetensors(tex) });
    expect(() => loadCheckpoint(join(dir, 'texture.safetensors'))).toThrow(/tensor "final_conv\.bias" holds a non-finite value \(NaN at index 1\)/);
    const out = join(tmp(), 'converted');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'convert', '--checkpoints', dir, '--out', out], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/tensor "final_conv\.bias" holds a non-finite value/);
    expect(r.stderr.trim().split('\n').length).toBe(1);
  });

  it('inpaint refuses non-finite raw pixel data', async () => {
    // A JavaScript caller can put floats (NaN included) into RasterImage.data; they are refused as
    // floats by the argument check, and were they to reach the sampler, by its output check.
    const { inpaint } = await import('../src/inpaint/index.js');
    const W = 32, H = 32;
    const data = new Float32Array(W * H * 3).fill(100);
    data[5] = NaN;
    const img = { width: W, height: H, channels: 3 as const, bitDepth: 8 as const, data: data as unknown as Uint8Array };
    const mask = { width: W, height: H, channels: 1 as const, bitDepth: 8 as const, data: new Uint8Array(W * H) };
    mask.data.fill(255, 0, 40);
    await expect(inpaint(img, mask, { size: 16 })).rejects.toThrow(/^(image\.data must be a Uint8Array for bitDepth 8|the sampler's output holds non-finite values)/);
  });

  it("inpaint throws when the sampler's output is not finite", async () => {
    const { inpaint } = await import('../src/inpaint/index.js');
    const W = 32, H = 32;
    const img = { width: W, height: H, channels: 3 as const, bitDepth: 8 as const, data: new Uint8Array(W * H * 3).fill(100) };
    const mask = { width: W, height: H, channels: 1 as const, bitDepth: 8 as const, data: new Uint8Array(W * H) };
    mask.data.fill(255, 8 * W, 12 * W);
    const nanNoise = { normal: (shape: number[]) => new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN) };
    // the bundled networks with the official zero fill: no OpenCV needed for this check
    const { fill: _fill, ...meta } = JSON.parse(readFileSync(join(DEFAULT_MODEL, 'model.json'), 'utf8'));
    const checkpoints = modelFolder({}, meta);
    await expect(inpaint(img, mask, { checkpoints, size: 16, noise: nanNoise, stepRule: 'sde' })).rejects.toThrow(/^the sampler's output holds non-finite values \(\d+ of 768, first NaN at index \d+\)/);
  });
});

// =================================================================================================
describe('item 7: model.json and option counts have upper bounds', () => {
  it('model.json T above 10000 is refused with one line, before any weight is read', async () => {
    const { loadModel, MAX_T } = await import('../src/model/checkpoints.js');
    expect(MAX_T).toBe(10000);
    const meta = JSON.parse(readFileSync(join(DEFAULT_MODEL, 'model.json'), 'utf8'));
    for (const T of [100000, 10001]) {
      const dir = modelFolder({}, { ...meta, T });
      expect(() => loadModel([dir])).toThrow(new RegExp(`model\\.json: T must be at most 10000 \\(got ${T}\\): the official checkpoints use 100 and 400$`));
    }
    const ok = modelFolder({}, { ...meta, T: 10000 });
    expect(() => loadModel([ok], { kinds: ['discriminator'] })).not.toThrow();
    // an option T too
    const dir = modelFolder({}, { ...meta, T: undefined });
    expect(() => loadModel([dir], { T: 20000 })).toThrow(/^T must be at most 10000 \(got 20000\)/);
    expect(() => loadModel([dir], { T: 1.5 })).toThrow(/^T must be an integer >= 2 \(got 1\.5\)$/);
  });

  it('model.json size above 4096 is refused', async () => {
    const { modelWindowSize, loadModel } = await import('../src/model/checkpoints.js');
    const dir = modelFolder({}, { T: 50, size: 1e6 });
    expect(() => modelWindowSize([dir])).toThrow(/model\.json: size must be at most 4096 \(got 1000000\)$/);
    expect(() => loadModel([dir])).toThrow(/model\.json: size must be at most 4096/);
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ T: 50, size: 4096 }));
    expect(modelWindowSize([dir])).toBe(4096);
  });

  it('command-line T and size have the same bounds in every command', async () => {
    const { parseNumberOption, optionalNumber } = await import('../src/cli/args.js');
    expect(() => parseNumberOption('1e9', 'T', { min: 2 })).toThrow(/^--T must be at most 10000 \(got "1e9"\)$/);
    expect(parseNumberOption('10000', 'T', { min: 2 })).toBe(10000);
    expect(() => optionalNumber('100000', 'size')).toThrow(/^--size must be at most 4096 \(got "100000"\)$/);
    expect(optionalNumber('4096', 'size', { min: 16 })).toBe(4096);
    // inpaint and serve take T as --T; the CLI hands it to loadModel, which bounds it
    const out = spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'inpaint', '--image', join(ROOT, 'examples/ladybird.jpg'), '--mask', join(ROOT, 'examples/ladybird_mask.png'), '--out', join(tmp(), 'o.png'), '--T', '20000'], { encoding: 'utf8', timeout: 120_000 });
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/^strdiffusion: --T must be at most 10000 \(got "20000"\)$/m);
  });
});

// =================================================================================================
describe('item 10: convert keeps every model.json field', () => {
  const convert = (dirs: string[], out: string, extra: string[] = []) =>
    spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'convert', '--checkpoints', ...dirs, '--out', out, ...extra], { encoding: 'utf8', timeout: 120_000 });

  it('convert of models/default keeps all fields, and the converted folder loads with the same settings', async () => {
    const out = join(tmp(), 'converted');
    const r = convert([DEFAULT_MODEL], out);
    expect(r.status, r.stderr).toBe(0);
    const src = JSON.parse(readFileSync(join(DEFAULT_MODEL, 'model.json'), 'utf8'));
    const dst = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    for (const [k, v] of Object.entries(src)) expect(dst[k], k).toEqual(v);
    const { loadModel } = await import('../src/model/checkpoints.js');
    const a = loadModel([DEFAULT_MODEL]);
    const b = loadModel([out]);
    expect(b.size).toBe(128);
    expect(b.meta.solver).toBe('mr-ode-1');
    expect(b.meta.sampler).toBe('split');
    expect(b.fill).toBe('bridge');
    expect(b.configs).toEqual(a.configs);
  });

  it('convert of three run folders keeps each network its own prediction and the settings of any folder', async () => {
    // run folders as `train` writes them: one network each, its own model.json
    const root = tmp();
    const runs: string[] = [];
    const metas: Record<string, object> = {
      structure: { T: 50, kind: 'structure', prediction: 'x0', files: { structure: 'structure.safetensors' } },
      texture: { T: 50, kind: 'texture', fill: 'telea', size: 96, stepRule: 'posterior', sampler: 'no-resampling', files: { texture: 'texture.safetensors' } },
      discriminator: { T: 50, kind: 'discriminator', fill: 'telea', structureGuide: 'fill', files: { discriminator: 'discriminator.safetensors' } },
    };
    for (const k of ['structure', 'texture', 'discriminator']) {
      const d = join(root, k);
      mkdirSync(d);
      copyFileSync(join(DEFAULT_MODEL, `${k}.safetensors`), join(d, `${k}.safetensors`));
      writeFileSync(join(d, 'model.json'), JSON.stringify(metas[k]));
      runs.push(d);
    }
    const { loadModel } = await import('../src/model/checkpoints.js');
    const before = loadModel(runs);
    expect(before.configs.structure.prediction).toBe('x0');
    expect(before.configs.texture.prediction ?? 'eps').toBe('eps');
    const out = join(root, 'converted');
    const r = convert(runs, out);
    expect(r.status, r.stderr).toBe(0);
    const after = loadModel([out]);
    expect(after.configs.structure.prediction).toBe('x0');
    expect(after.configs.texture.prediction ?? 'eps').toBe('eps');
    expect(after.size).toBe(96);
    expect(after.meta.stepRule).toBe('posterior');
    expect(after.meta.sampler).toBe('no-resampling');
    expect(after.meta.structureGuide).toBe('fill');
    expect(after.fill).toBe('telea');
    // the same settings as the three folders loaded directly
    expect(before.size).toBe(96);
    expect(before.meta.stepRule).toBe('posterior');
  });

  it('model.json is written by one function that refuses an invalid field', async () => {
    const { writeModelJson, readModelJson } = await import('../src/model/checkpoints.js');
    const dir = tmp();
    writeModelJson(dir, { T: 50, size: 128, stepRule: 'posterior', custom: { a: 1 } });
    expect(readModelJson(dir)).toEqual({ T: 50, size: 128, stepRule: 'posterior', custom: { a: 1 } });
    expect(() => writeModelJson(dir, { T: 1e9 })).toThrow(/model\.json: refusing to write: T must be at most 10000/);
    expect(readModelJson(dir).T).toBe(50); // unchanged
  });
});

// =================================================================================================
describe('the same class of bug nearby: .npy headers', () => {
  it('a .npy shape that is negative, fractional or not a number is refused; a header past the end too', () => {
    const withShape = (shape: string, data = f32bytes([1, 2])) => {
      let h = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
      h += ' '.repeat(63 - ((10 + h.length) % 64)) + '\n';
      return bytes([0x93], 'NUMPY', [1, 0], u16(h.length), h, data);
    };
    const good = withShape('(2,)');
    expect(parseNpy(withShape('(2,)')).data).toEqual(Float32Array.from([1, 2]));
    expect(() => parseNpy(withShape('(-5,)'), 'x.npy')).toThrow(/^x\.npy: invalid \.npy shape \(-5,\s*\)$/);
    expect(() => parseNpy(withShape('(a,)'), 'x.npy')).toThrow(/^x\.npy: invalid \.npy shape/);
    const cut = good.slice(0, 20);
    expect(() => parseNpy(cut, 'x.npy')).toThrow(/^x\.npy: truncated \.npy header/);
  });
});
