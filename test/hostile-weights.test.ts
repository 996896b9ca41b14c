/**
 * Issue #22 ("Hostile round two"), items 4, 5 and 12 and the FIFO model.json: small crafted files
 * that must be refused (or read) cheaply, with one clean line.
 *
 * Every hostile load runs in a child process with a small V8 heap (--max-old-space-size), which
 * reports its error and the growth of its peak RSS and ArrayBuffer memory across the call: a reader
 * that allocated what the file asks for dies there (the test fails) instead of taking the runner
 * down. Nothing here asserts on time.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, deflateRawSync } from 'node:zlib';
import { bytes, enc, f32bytes, P, pthZip, rawZip, u16, u32, type RawEntry } from './pickle.js';
import { readPth } from '../src/weights/index.js';
import { fixture, REPO_ROOT } from './fixtures.js';

const NETS = fixture('parity/nets');
const MB = 2 ** 20;
const tmp = () => mkdtempSync(join(tmpdir(), 'hostile-weights-'));

interface Measured {
  results: { error: string | null; value?: unknown }[];
  peakRssMB: number;
  arrayBuffersMB: number;
  inflatedMB: number;
}

/**
 * Runs `body` (an async function body with `w` = src/weights, `pth` = src/weights/pth.ts, `ck` =
 * src/model/checkpoints.ts and `arg` in scope) once per arg in a child with a 256 MiB heap; each
 * call's error message (or its JSON-able return value) comes back.
 */
function measure(body: string, args: unknown[], heapMB = 256, timeout = 120_000): Measured {
  const script = `
    import { register } from 'tsx/esm/api';
    register();
    const w = await import(${JSON.stringify(join(REPO_ROOT, 'src/weights/index.ts'))});
    const pth = await import(${JSON.stringify(join(REPO_ROOT, 'src/weights/pth.ts'))});
    const ck = await import(${JSON.stringify(join(REPO_ROOT, 'src/model/checkpoints.ts'))});
    const args = JSON.parse(process.env.HOSTILE_ARGS);
    globalThis.gc?.();
    const rss0 = process.resourceUsage().maxRSS;
    const ab0 = process.memoryUsage().arrayBuffers;
    const inf0 = pth.pthInflatedBytes?.() ?? 0;
    const results = [];
    for (const arg of args) {
      try { const value = await (async () => { ${body} })(); results.push({ error: null, value }); }
      catch (e) { results.push({ error: e.message }); }
    }
    const ab1 = process.memoryUsage().arrayBuffers;
    const rss1 = process.resourceUsage().maxRSS;
    const inf1 = pth.pthInflatedBytes?.() ?? NaN;
    console.log('RESULT ' + JSON.stringify({ results, peakRssMB: (rss1 - rss0) / 1024, arrayBuffersMB: (ab1 - ab0) / 2 ** 20, inflatedMB: (inf1 - inf0) / 2 ** 20 }));
  `;
  const r = spawnSync(process.execPath, [`--max-old-space-size=${heapMB}`, '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, HOSTILE_ARGS: JSON.stringify(args) },
    timeout,
    maxBuffer: 16 * MB,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`child failed (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-1500)}`);
  return JSON.parse(line.slice('RESULT '.length)) as Measured;
}

function expectOneLine(msg: string | null | undefined, re: RegExp): void {
  expect(msg).toBeTruthy();
  expect(msg!).toMatch(re);
  expect(msg!).not.toContain('\n');
}


/**
 * A raw deflate stream of `head` followed by `mb` MiB of the byte `fill`, about 1 KiB per MiB:
 * each MiB is the same sync-flushed block, so the stream is built without the MiBs in memory.
 */
function deflatedRepeat(head: Uint8Array, fill: number, mb: number): Uint8Array {
  const first = head.length ? deflateRawSync(head, { finishFlush: constants.Z_SYNC_FLUSH }) : new Uint8Array(0);
  const block = deflateRawSync(Buffer.alloc(MB, fill), { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
  const out = new Uint8Array(first.length + block.length * mb + 2);
  out.set(first, 0);
  for (let i = 0; i < mb; i++) out.set(block, first.length + i * block.length);
  out.set([0x03, 0x00], first.length + block.length * mb); // a final, empty fixed-Huffman block
  return out;
}

/** A .pth whose data.pkl is `head` then `mb` MiB of the one-byte opcode `op` (then nothing: no STOP). */
function opcodeFlood(op: number, mb: number, head: number[] = [0x80, 2]): Uint8Array {
  return rawZip([{ name: 'm/data.pkl', data: deflatedRepeat(Uint8Array.from(head), op, mb), method: 8, size: head.length + mb * MB }]);
}

/** A model folder: the fixture networks (T given in model.json), with `override` replacing files. */
function netsFolder(override: Record<string, Uint8Array> = {}): string {
  const dir = tmp();
  for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(NETS, `${k}.pth`), join(dir, `${k}.pth`));
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ T: 10 }));
  for (const [name, v] of Object.entries(override)) writeFileSync(join(dir, name), v);
  return dir;
}

const contiguous = (shape: number[]) => shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));

// =================================================================================================
describe('item 4: the pickle VM bounds the objects it creates, not only the pickle bytes', () => {
  it('floods of EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, MARK, NONE and MEMOIZE are refused with one line, in small memory', () => {
    const dir = tmp();
    // each data.pkl would create 50 M objects (or stack slots, memo or container entries)
    const files: Record<string, Uint8Array> = {
      dicts: opcodeFlood(0x7d, 48),
      lists: opcodeFlood(0x5d, 48),
      marks: opcodeFlood(0x28, 48),
      memo: opcodeFlood(0x94, 48, [0x80, 2, 0x7d]), // one dict, memoized 50 M times
      tuples: opcodeFlood(0x29, 48), // EMPTY_TUPLE
      nones: opcodeFlood(0x4e, 48), // NONE: no object, but a stack slot each
    };
    const paths: string[] = [];
    for (const [name, z] of Object.entries(files)) {
      expect(z.length, name).toBeLessThan(MB / 8);
      const p = join(dir, `${name}.pth`);
      writeFileSync(p, z);
      paths.push(p);
    }
    // one child per file: each is measured on its own
    for (const [i, p] of paths.entries()) {
      const name = Object.keys(files)[i]!;
      const m = measure('return w.readPth(arg).size', [p]);
      expectOneLine(m.results[0]!.error, new RegExp(`^checkpoint .*${name}\\.pth: data\\.pkl creates more than [\\d,]+ objects`));
      // the child survived a 256 MiB heap; the 48 MiB pickle itself is held while it runs, and at
      // most MAX_PICKLE_OBJECTS small values (about 110 MiB for 2 M empty dicts), not 50 M of them
      expect(m.peakRssMB, `${name}: peak RSS grew by ${m.peakRssMB.toFixed(1)} MiB`).toBeLessThan(48 + 250);
    }
  });

  it('a list appended to 16 M times and one memoized value pushed 24 M times are bounded too', () => {
    const dir = tmp();
    const flood = (head: number[], unit: number[], mb: number) => {
      const piece = Buffer.alloc(MB - (MB % unit.length));
      for (let i = 0; i < piece.length; i++) piece[i] = unit[i % unit.length]!;
      const first = deflateRawSync(Buffer.from(head), { finishFlush: constants.Z_SYNC_FLUSH });
      const block = deflateRawSync(piece, { level: 9, finishFlush: constants.Z_SYNC_FLUSH });
      const data = new Uint8Array(first.length + block.length * mb + 2);
      data.set(first);
      for (let i = 0; i < mb; i++) data.set(block, first.length + i * block.length);
      data.set([0x03, 0x00], first.length + block.length * mb);
      return rawZip([{ name: 'm/data.pkl', data, method: 8, size: head.length + piece.length * mb }]);
    };
    const files = {
      // `]` then (BININT1 0, APPEND) x 16 M: a 16 M element list
      appends: flood([0x80, 2, 0x5d], [0x4b, 0x00, 0x61], 48),
      // `}` memoized in slot 0, then BINGET 0 x 24 M: no new object, but a stack slot each
      binget: flood([0x80, 2, 0x7d, 0x71, 0x00], [0x68, 0x00], 48),
    };
    const paths = Object.entries(files).map(([name, z]) => {
      const p = join(dir, `${name}.pth`);
      writeFileSync(p, z);
      return p;
    });
    for (const p of paths) {
      const m = measure('return w.readPth(arg).size', [p]);
      expectOneLine(m.results[0]!.error, /data\.pkl creates more than [\d,]+ objects/);
      expect(m.peakRssMB).toBeLessThan(48 + 250);
    }
  });

  it('the CLI exits 1 with one line for such a checkpoint', () => {
    const dir = netsFolder({ 'structure.pth': opcodeFlood(0x7d, 64) });
    const out = join(tmp(), 'never.png');
    const r = spawnSync(
      process.execPath,
      ['--max-old-space-size=512', join(REPO_ROOT, 'bin/strdiffusion.js'), 'inpaint', '--image', join(REPO_ROOT, 'examples/ladybird.jpg'), '--mask', join(REPO_ROOT, 'examples/ladybird_mask.png'), '--out', out, '--checkpoints', dir, '--size', '32', '-q'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr.trim()).toMatch(/^strdiffusion: checkpoint .*structure\.pth: data\.pkl creates more than [\d,]+ objects/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('the library refuses it as BAD_CHECKPOINT', async () => {
    const { loadModel, StrDiffusionError } = await import('../src/index.js');
    const dir = netsFolder({ 'structure.pth': opcodeFlood(0x5d, 16) });
    const err = await loadModel(dir).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StrDiffusionError);
    expect((err as InstanceType<typeof StrDiffusionError>).code).toBe('BAD_CHECKPOINT');
    expect((err as Error).message).toMatch(/structure\.pth: data\.pkl creates more than [\d,]+ objects/);
  });

  it('real checkpoints stay far below the bound', async () => {
    const { MAX_PICKLE_OBJECTS } = await import('../src/weights/pth.js');
    expect(MAX_PICKLE_OBJECTS).toBeGreaterThanOrEqual(1_000_000);
    expect(MAX_PICKLE_OBJECTS).toBeLessThanOrEqual(8_000_000);
    for (const k of ['structure', 'texture', 'discriminator']) expect(readPth(join(NETS, `${k}.pth`)).size).toBeGreaterThan(10);
  });
});

// =================================================================================================
describe('item 5: only the bytes a tensor views are read', () => {
  it('a weight whose deflated storage declares 256 MiB more than it views loads at the cost of its own bytes', () => {
    const sd = readPth(join(NETS, 'structure.pth'));
    const key = [...sd.keys()].find((k) => sd.get(k)!.data.length > 100)!;
    const n = sd.get(key)!.data.length;
    const file = join(tmp(), 'structure.pth');
    const extra = 256 * MB / 4;
    // the real bytes are the head of a deflate stream of zeros that fills the declaration
    const items: Uint8Array[] = [];
    const entries: RawEntry[] = [];
    let i = 0;
    for (const [k, t] of sd) {
      const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (k === key) {
        items.push(bytes(P.str(k), P.tensor(String(i), n + extra, 0, t.shape, contiguous(t.shape))));
        entries.push({ name: `m/data/${i}`, data: deflatedRepeat(raw, 0, 256), method: 8, size: (n + extra) * 4 });
      } else {
        items.push(bytes(P.str(k), P.tensor(String(i), t.data.length, 0, t.shape, contiguous(t.shape))));
        entries.push({ name: `m/data/${i}`, data: raw, method: 0 });
      }
      i++;
    }
    writeFileSync(file, rawZip([{ name: 'm/data.pkl', data: bytes(P.proto, P.od(), '(', ...items, 'u', '.'), method: 0 }, ...entries]));
    expect(statSync(file).size).toBeLessThan(statSync(join(NETS, 'structure.pth')).size + MB);
    const m = measure(`const sd = w.readPth(arg); const t = sd.get(${JSON.stringify(key)}); return [t.data.length, Array.from(t.data.slice(0, 4))];`, [file]);
    expect(m.results[0]!.error).toBeNull();
    const [len, head] = m.results[0]!.value as [number, number[]];
    expect(len).toBe(n);
    expect(head).toEqual(Array.from(sd.get(key)!.data.slice(0, 4)));
    // robust measures: what the reader inflated (one 16 KiB piece of zeros inflates to 16 MiB at most), and memory
    expect(m.inflatedMB, `inflated ${m.inflatedMB.toFixed(1)} MiB`).toBeLessThan(40);
    expect(m.peakRssMB, `peak RSS grew by ${m.peakRssMB.toFixed(1)} MiB`).toBeLessThan(100);
  });

  it('a tensor whose strides spread a few elements over a huge storage is refused before reading', () => {
    const dir = tmp();
    const file = join(dir, 'sparse.pth');
    const declared = 128 * MB / 4;
    // 784 elements, one every 40000 floats: 125 MiB of storage to read for 3 KiB of weights
    const pkl = bytes(P.proto, P.od(), '(', P.str('w'), P.tensor('0', declared, 0, [784], [40000]), 'u', '.');
    writeFileSync(file, rawZip([{ name: 'm/data.pkl', data: pkl, method: 0 }, { name: 'm/data/0', data: deflatedRepeat(new Uint8Array(0), 0, 128), method: 8, size: declared * 4 }]));
    // two 1-element tensors at both ends of one storage
    const ends = join(dir, 'ends.pth');
    const pkl2 = bytes(P.proto, P.od(), '(', P.str('a'), P.tensor('0', declared, 0, [1], [1]), P.str('b'), P.tensor('0', declared, declared - 1, [1], [1]), 'u', '.');
    writeFileSync(ends, rawZip([{ name: 'm/data.pkl', data: pkl2, method: 0 }, { name: 'm/data/0', data: deflatedRepeat(new Uint8Array(0), 0, 128), method: 8, size: declared * 4 }]));
    const m = measure('return w.readPth(arg).size', [file, ends]);
    expectOneLine(m.results[0]!.error, /storage "m\/data\/0": its tensors hold 784 elements spread over 31320001 \(more than twice as many\); refusing to read the gaps/);
    expectOneLine(m.results[1]!.error, /storage "m\/data\/0": its tensors hold 2 elements spread over 33554432/);
    expect(m.inflatedMB).toBeLessThan(1);
    expect(m.peakRssMB).toBeLessThan(100);
  });

  it('views that share a storage and contiguous slices still read right', () => {
    // storage [0..11]; a = [3, 4] view at offset 0, b = its transpose, c = elements 4..7 as [2, 2]
    const data = f32bytes(Array.from({ length: 12 }, (_, i) => i));
    const pkl = bytes(
      P.proto, P.od(), '(',
      P.str('a'), P.tensor('0', 12, 0, [3, 4], [4, 1]),
      P.str('b'), P.tensor('0', 12, 0, [4, 3], [1, 4]),
      P.str('c'), P.tensor('0', 12, 4, [2, 2], [2, 1]),
      P.str('d'), P.tensor('1', 8, 2, [3], [1]),
      'u', '.',
    );
    const stored = pthZip('m', pkl, { '0': data, '1': f32bytes([9, 8, 7, 6, 5, 4, 3, 2]) });
    const deflated = rawZip([
      { name: 'm/data.pkl', data: pkl, method: 0 },
      { name: 'm/data/0', data: deflateRawSync(data), method: 8, size: 48 },
      { name: 'm/data/1', data: deflateRawSync(f32bytes([9, 8, 7, 6, 5, 4, 3, 2])), method: 8, size: 32 },
    ]);
    for (const z of [stored, deflated]) {
      const sd = readPth(z);
      expect(Array.from(sd.get('a')!.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(Array.from(sd.get('b')!.data)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
      expect(Array.from(sd.get('c')!.data)).toEqual([4, 5, 6, 7]);
      expect(Array.from(sd.get('d')!.data)).toEqual([7, 6, 5]);
    }
  });
});

// =================================================================================================
describe('item 12: no fallback to a folder outside the package', () => {
  it('without the bundled model there is no default model (the fixtures are not one)', async () => {
    const ck = await import('../src/model/checkpoints.js');
    const empty = tmp();
    expect(() => ck.defaultModelDirs(join(empty, 'default'))).toThrow(/^no default model: .*default does not exist/);
    expect('FIXTURE_MODEL_DIR' in ck).toBe(false);
    expect(readFileSync(join(REPO_ROOT, 'src/model/checkpoints.ts'), 'utf8')).not.toMatch(/shared\/fixtures|\.\.\/shared/);
  });

  it('the fixture networks have no implicit T: a caller that wants them says which T', async () => {
    const { loadModel } = await import('../src/model/checkpoints.js');
    expect(() => loadModel([NETS], { kinds: ['discriminator'] })).toThrow(/the diffusion length T of .* is unknown/);
    expect(loadModel([NETS], { kinds: ['discriminator'], T: 100 }).T).toBe(100);
  });
});

// =================================================================================================
describe('a FIFO (or any non-regular file) is refused, never read (it would block)', () => {
  it('model.json and a weight file that are FIFOs fail with one line', () => {
    const dir = netsFolder();
    const fifoJson = tmp();
    for (const k of ['structure', 'texture', 'discriminator']) copyFileSync(join(NETS, `${k}.pth`), join(fifoJson, `${k}.pth`));
    const mk = spawnSync('mkfifo', [join(fifoJson, 'model.json'), join(dir, 'weights.pth')]);
    expect(mk.status).toBe(0);
    const m = measure('return ck.loadModel([arg]).T', [fifoJson], 256, 30_000);
    expectOneLine(m.results[0]!.error, /model\.json: not a regular file/);
    const m2 = measure('return w.readPth(arg).size', [join(dir, 'weights.pth')], 256, 30_000);
    expectOneLine(m2.results[0]!.error, /weights\.pth: not a file/);
    // a folder named model.json too
    const d2 = tmp();
    mkdirSync(join(d2, 'model.json'));
    const m3 = measure('return ck.readModelJson(arg)', [d2]);
    expectOneLine(m3.results[0]!.error, /model\.json: not a regular file/);
  });
});
