/**
 * Issue #14, items 5, 6, 8 (found by a hostile probe): the server bounds its memory and CPU (queue
 * cap, worker cap, no big synchronous work on the main thread, 413 for any image over the pixel
 * limit), the CLI and the library refuse images over the megapixel limit from their header, and the
 * server refuses cross-site job submissions (Origin: null, foreign origins, Sec-Fetch-Site).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { startServer, type RunningServer } from '../src/server/index.js';
import { DEFAULT_MAX_MEGAPIXELS, readImage, readImageBuffer } from '../src/image/io.js';
import { holeCount, holesFromRaster } from '../src/inpaint/mask.js';
import { inpaint } from '../src/inpaint/index.js';
import { loadEvalImage } from '../src/eval/pairs.js';
import { holeAt, photo, png } from './server-helpers.js';
import { fixture } from './fixtures.js';

const ROOT = resolve(__dirname, '..');
const NETS = fixture('parity/nets');
const dir = mkdtempSync(join(tmpdir(), 'reliability-server-'));

// ---------- helpers ----------

function crc32(buf: Buffer): number {
  let crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    let c = (crc ^ buf[n]!) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A grey PNG whose header says W x H but whose pixel data holds only its first rows: a few hundred
 * bytes that a decoder would try to turn into W*H samples. Only a header check refuses it cleanly.
 */
function hugePng(W: number, H: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grey
  const idat = deflateSync(Buffer.alloc(4 * (W + 1)));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}



function form(image: Buffer, mask: Buffer, fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  f.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'image.png');
  f.append('mask', new Blob([new Uint8Array(mask)], { type: 'image/png' }), 'mask.png');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Cancel every job the server knows and wait until none is queued or running. */
async function drain(srv: RunningServer): Promise<void> {
  for (const j of [...srv.jobs.jobs.values()]) if (j.status === 'queued' || j.status === 'running') srv.jobs.cancel(j.id);
  const t0 = Date.now();
  while ([...srv.jobs.jobs.values()].some((j) => j.status === 'queued' || j.status === 'running') && Date.now() - t0 < 60_000) await sleep(50);
}

// ---------- item 5: bounded memory and CPU ----------

describe('server: bounded memory and CPU (issue #14 item 5)', () => {
  let srv: RunningServer;
  let base: string;
  let image: Buffer;
  let mask: Buffer;
  const W = 72, H = 52;

  beforeAll(async () => {
    // the fixture networks have no model.json: their T is given, and their schedule is not fixed,
    // so every T and steps value is a valid request
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 100, size: 32, maxQueue: 2, maxResultBytes: 1 });
    base = srv.url;
    image = await png(W, H, 3, photo);
    mask = await png(W, H, 1, holeAt(20, 15, 45, 32));
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('answers 413 (not 415) for an image far over the pixel limit, from its header', async () => {
    const huge = hugePng(20000, 20000);
    const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form(huge, huge) });
    expect(r.status).toBe(413);
    const body = await r.json();
    expect(body.error).toMatch(/^image is 20000x20000 = 400\.0 megapixels; this server accepts at most 50\.0 megapixels/);
  });

  it('caps the queue: past max-queue a job gets 503 with Retry-After', async () => {
    const submit = () => fetch(`${base}api/jobs`, { method: 'POST', body: form(image, mask, { T: '400', seed: '1' }) });
    try {
      const running = await submit();
      expect(running.status).toBe(202);
      expect((await submit()).status).toBe(202);
      expect((await submit()).status).toBe(202);
      const full = await submit();
      expect(full.status).toBe(503);
      expect(Number(full.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await full.json()).error).toMatch(/queue is full \(2 jobs waiting/);
    } finally {
      await drain(srv);
    }
    // the cap counts waiting jobs only: with the queue drained, jobs are accepted again
    const again = await submit();
    expect(again.status).toBe(202);
    await drain(srv);
  });

  it('caps open event streams: past max-event-streams GET …/events gets 503 with Retry-After; a closed stream frees its place', async () => {
    const own = await startServer({ port: 0, checkpoints: [NETS], T: 100, size: 32, maxEventStreams: 2 });
    const aborts: AbortController[] = [];
    try {
      const job = await (await fetch(`${own.url}api/jobs`, { method: 'POST', body: form(image, mask, { T: '400', seed: '1' }) })).json();
      const open = async () => {
        const a = new AbortController();
        aborts.push(a);
        return fetch(`${own.url}api/jobs/${job.id}/events`, { signal: a.signal });
      };
      expect((await open()).status).toBe(200);
      expect((await open()).status).toBe(200);
      const third = await open();
      expect(third.status).toBe(503);
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await third.json()).error).toMatch(/too many open event streams \(2\)/);
      aborts[0]!.abort();
      let again = 503;
      for (let i = 0; i < 100 && again === 503; i++) {
        await sleep(20);
        again = (await open()).status;
      }
      expect(again).toBe(200);
    } finally {
      for (const a of aborts) a.abort();
      await drain(own);
      await own.close();
    }
  });

  it('distinct steps values share a bounded number of model workers and run one job at a time', async () => {
    const ids: string[] = [];
    try {
      // one running, two waiting (the queue cap of this server)
      for (const steps of ['301', '302', '303']) {
        const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form(image, mask, { T: steps, seed: '2' }) });
        expect(r.status).toBe(202);
        ids.push((await r.json()).id);
      }
      let maxRunning = 0;
      let maxWorkers = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 3000) {
        const st = await Promise.all(ids.map(async (id) => (await (await fetch(`${base}api/jobs/${id}`)).json()).status as string));
        maxRunning = Math.max(maxRunning, st.filter((s) => s === 'running').length);
        maxWorkers = Math.max(maxWorkers, srv.jobs.liveWorkers);
        // move on: cancel the running job so the next steps value needs its own schedule
        const running = ids.find((_, i) => st[i] === 'running');
        if (running) await fetch(`${base}api/jobs/${running}`, { method: 'DELETE' });
        await sleep(100);
      }
      expect(maxRunning).toBe(1);
      expect(maxWorkers).toBeGreaterThanOrEqual(1);
      expect(maxWorkers).toBeLessThanOrEqual(2);
    } finally {
      await drain(srv);
    }
    expect(srv.jobs.liveWorkers).toBeLessThanOrEqual(2);
  });

  it('checks the mask on the main thread without decoding it there, by the rule of holesFromRaster (alpha included)', async () => {
    const inHole = (x: number, y: number) => x >= 20 && x < 45 && y >= 15 && y < 32;
    const raw16 = (C: 1 | 2, on: number) => {
      const d = new Uint16Array(W * H * C);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) d[(y * W + x) * C + c] = c === 1 ? 65535 : inHole(x, y) ? on : 0;
      return sharp(d, { raw: { width: W, height: H, channels: C } }).toColourspace('grey16').png().toBuffer();
    };
    const masks: [string, Buffer][] = [
      ['grey 0/1', await png(W, H, 1, (x, y) => (inHole(x, y) ? 1 : 0))],
      ['RGB (1,0,0): luma 0.299, no hole', await png(W, H, 3, (x, y, c) => (inHole(x, y) && c === 0 ? 1 : 0))],
      ['RGB (0,1,0): luma 0.587', await png(W, H, 3, (x, y, c) => (inHole(x, y) && c === 1 ? 1 : 0))],
      ['RGB (255,0,0): luma 76, no hole', await png(W, H, 3, (x, y, c) => (inHole(x, y) && c === 0 ? 255 : 0))],
      ['RGB (0,255,0): luma 150', await png(W, H, 3, (x, y, c) => (inHole(x, y) && c === 1 ? 255 : 0))],
      ['16-bit 0/1', await raw16(1, 1)],
      ['16-bit 0/40000', await raw16(1, 40000)],
      ['16-bit 0/30000: no hole', await raw16(1, 30000)],
      ['all white', await png(W, H, 1, () => 255)],
      ['all black', await png(W, H, 1, () => 0)],
    ];
    // issue 22: a mask with alpha that is not opaque everywhere is read by its alpha (opaque = hole)
    const area = 25 * 17;
    const alphaHole = (x: number, y: number) => (inHole(x, y) ? 255 : 0);
    const alphaMasks: [string, Buffer, number][] = [
      ['grey+alpha, black: alpha marks the hole', await png(W, H, 2, (x, y, c) => (c === 1 ? alphaHole(x, y) : 0)), area],
      ['RGBA, black: alpha marks the hole', await png(W, H, 4, (x, y, c) => (c === 3 ? alphaHole(x, y) : 0)), area],
      ['RGBA, red on transparent: alpha marks the hole', await png(W, H, 4, (x, y, c) => (c === 3 ? alphaHole(x, y) : c === 0 ? 255 : 0)), area],
      ['RGBA, white everywhere, transparent outside the hole', await png(W, H, 4, (x, y, c) => (c === 3 ? alphaHole(x, y) : 255)), area],
      ['RGBA opaque everywhere: read by its colour', await png(W, H, 4, (x, y, c) => (c === 3 ? 255 : alphaHole(x, y))), area],
      ['RGBA transparent everywhere: no hole', await png(W, H, 4, (x, y, c) => (c === 3 ? 0 : 255)), 0],
    ];
    for (const [name, m, want] of alphaMasks) {
      expect(holeCount(holesFromRaster(await readImageBuffer(m, 'mask'))), name).toBe(want);
      masks.push([name, m]);
    }
    for (const [name, m] of masks) {
      const holes = holeCount(holesFromRaster(await readImageBuffer(m, 'mask')));
      const want = holes === 0 ? /no hole/ : holes === W * H ? /covers the whole image/ : null;
      const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form(image, m, { T: '10' }) });
      const body = await r.json();
      if (want) {
        expect(r.status, name).toBe(422);
        expect(body.error, name).toMatch(want);
      } else {
        expect(r.status, `${name}: ${body.error}`).toBe(202);
        await drain(srv);
      }
    }
  });

  it('keeps finished results within maxResultBytes (the newest result is always kept)', async () => {
    const run = async () => {
      const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form(image, mask, { T: '10', seed: '3' }) });
      expect(r.status).toBe(202);
      const { id } = await r.json();
      const t0 = Date.now();
      while (srv.jobs.get(id).status !== 'done' && Date.now() - t0 < 60_000) await sleep(50);
      return id as string;
    };
    const first = await run();
    expect((await fetch(`${base}api/jobs/${first}/result`)).status).toBe(200);
    const second = await run();
    expect((await fetch(`${base}api/jobs/${second}/result`)).status).toBe(200);
    const gone = await fetch(`${base}api/jobs/${first}/result`);
    expect(gone.status).toBe(404);
    expect((await gone.json()).error).toMatch(/forgotten/);
  });

  it('queues a 49-megapixel upload as sent (not decoded on the main thread), behind the running job', async () => {
    const S = 7000;
    const bigImage = await sharp({ create: { width: S, height: S, channels: 3, background: { r: 90, g: 140, b: 200 } } }).png().toBuffer();
    const hole = await sharp({ create: { width: 200, height: 200, channels: 3, background: { r: 255, g: 255, b: 255 } } }).png().toBuffer();
    const bigMask = await sharp({ create: { width: S, height: S, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .composite([{ input: hole, left: 3000, top: 3000 }])
      .png()
      .toBuffer();
    try {
      // a slow job runs, so the big one waits in the queue
      const slow = await fetch(`${base}api/jobs`, { method: 'POST', body: form(image, mask, { T: '400' }) });
      expect(slow.status).toBe(202);
      const memBefore = process.memoryUsage().arrayBuffers;
      const h = monitorEventLoopDelay({ resolution: 10 });
      h.enable();
      const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form(bigImage, bigMask, { T: '400' }) });
      const body = await r.json();
      await sleep(200);
      h.disable();
      expect(r.status, body.error).toBe(202);
      expect(body.position).toBe(1);
      // Reported, not asserted (no timed assertions: on a loaded machine any bound flakes). What
      // keeps the loop free is that the upload is not decoded here, which the memory check pins.
      console.log(`49-megapixel upload: longest event-loop stall ${(h.max / 1e6).toFixed(0)} ms`);
      // the waiting job holds its upload as sent (a few hundred KB), not 49 M decoded pixels
      const job = srv.jobs.get(body.id);
      expect(job.status).toBe('queued');
      expect(Buffer.isBuffer(job.image) && job.image.length).toBe(bigImage.length);
      const grown = (process.memoryUsage().arrayBuffers - memBefore) / 1e6;
      expect(grown, `${grown.toFixed(0)} MB more array buffers`).toBeLessThan(60);
    } finally {
      await drain(srv);
    }
  });
});

// ---------- item 6: pixel cap in the library and the CLI ----------

describe('pixel cap in the library and the CLI (issue #14 item 6)', () => {
  let hugeFile: string;
  let smallImage: string;
  let smallMask: string;

  beforeAll(async () => {
    hugeFile = join(dir, 'huge.png');
    writeFileSync(hugeFile, hugePng(16000, 16000));
    smallImage = join(dir, 'small.png');
    smallMask = join(dir, 'small-mask.png');
    writeFileSync(smallImage, await png(120, 80, 3, photo));
    writeFileSync(smallMask, await png(120, 80, 1, holeAt(50, 30, 70, 50)));
  });

  it('one default limit: 50 megapixels', () => {
    expect(DEFAULT_MAX_MEGAPIXELS).toBe(50);
  });

  it('readImage refuses a 16000x16000 PNG from its header, naming the file, its size, the limit and the override', async () => {
    await expect(readImage(hugeFile, 'image')).rejects.toThrow(
      `image ${hugeFile} is 16000x16000 (256.0 megapixels), over the limit of 50 megapixels (raise it with --max-megapixels N, or the maxMegapixels option)`,
    );
    // the override lets it through to the decoder (which then finds the data truncated)
    await expect(readImage(hugeFile, 'image', { maxMegapixels: 300 })).rejects.toThrow(/could not be decoded/);
  });

  it('inpaint() applies the limit to the image and the mask, with maxMegapixels as the override', async () => {
    await expect(inpaint(hugeFile, smallMask, { checkpoints: [NETS], T: 10, size: 32 })).rejects.toThrow(/^image .*huge\.png is 16000x16000 \(256\.0 megapixels\), over the limit of 50 megapixels/);
    await expect(inpaint(smallImage, hugeFile, { checkpoints: [NETS], T: 10, size: 32, resizeMask: true })).rejects.toThrow(/^mask .*huge\.png is 16000x16000/);
    await expect(inpaint(smallImage, smallMask, { checkpoints: [NETS], T: 10, size: 32, maxMegapixels: 0.005 })).rejects.toThrow(
      /^image .*small\.png is 120x80 \(0\.0096 megapixels\), over the limit of 0\.005 megapixels/,
    );
    // in-memory images are held to the same limit
    const raster = await readImage(smallImage);
    await expect(inpaint(raster, smallMask, { checkpoints: [NETS], T: 10, size: 32, maxMegapixels: 0.005 })).rejects.toThrow(/^image is 120x80 \(0\.0096 megapixels\), over the limit of 0\.005 megapixels/);
    const ok = await inpaint(smallImage, smallMask, { checkpoints: [NETS], T: 10, size: 32, maxMegapixels: 0.01 });
    expect(ok.image.width).toBe(120);
  });

  it('eval applies the same limit to its images, from the header', async () => {
    await expect(loadEvalImage(hugeFile, 32)).rejects.toThrow(
      `image ${hugeFile} is 16000x16000 (256.0 megapixels), over the limit of 50 megapixels (raise it with --max-megapixels N, or the maxMegapixels option)`,
    );
    await expect(loadEvalImage(smallImage, 32, 0.005)).rejects.toThrow(/small\.png is 120x80 \(0\.0096 megapixels\), over the limit of 0\.005 megapixels/);
    expect((await loadEvalImage(smallImage, 32)).width).toBe(32);
  });

  it('strdiffusion inpaint: one line naming the image and --max-megapixels; the flag overrides', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'inpaint', ...args], { cwd: ROOT, encoding: 'utf8' });
    const common = ['--checkpoints', NETS, '--T', '10', '--size', '32', '-q'];
    const r = run('--image', hugeFile, '--mask', smallMask, '--out', join(dir, 'out.png'), ...common);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`strdiffusion: image ${hugeFile} is 16000x16000 (256.0 megapixels), over the limit of 50 megapixels (raise it with --max-megapixels N, or the maxMegapixels option)`);
    const small = run('--image', smallImage, '--mask', smallMask, '--out', join(dir, 'out.png'), '--max-megapixels', '0.005', ...common);
    expect(small.status).toBe(1);
    expect(small.stderr.trim()).toMatch(/^strdiffusion: image .*small\.png is 120x80 \(0\.0096 megapixels\), over the limit of 0\.005 megapixels/);
    const bad = run('--image', smallImage, '--mask', smallMask, '--out', join(dir, 'out.png'), '--max-megapixels', 'lots', ...common);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^strdiffusion: --max-megapixels must be a positive number/);
  });
});

// ---------- item 8: cross-site job submission ----------

describe('server: refuses cross-site requests (issue #14 item 8)', () => {
  let srv: RunningServer;
  let base: string;
  let image: Buffer;
  let mask: Buffer;

  beforeAll(async () => {
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32 });
    base = srv.url;
    image = await png(40, 30, 3, photo);
    mask = await png(40, 30, 1, holeAt(10, 10, 20, 18));
  });
  afterAll(async () => {
    await srv?.close();
  });

  const post = (headers: Record<string, string>) => fetch(`${base}api/jobs`, { method: 'POST', body: form(image, mask), headers });

  it('403 for Origin: null (sandboxed iframes, some redirects), with a clear message; no job is created', async () => {
    const before = srv.jobs.jobs.size;
    const r = await post({ Origin: 'null' });
    expect(r.status).toBe(403);
    expect((await r.json()).error).toMatch(/^cross-origin request refused: Origin "null"/);
    expect(srv.jobs.jobs.size).toBe(before);
  });

  it('403 for another origin, also on the same host with another port', async () => {
    const u = new URL(base);
    // (the scheme is not compared: behind a TLS proxy the server's own page is https://its-host)
    for (const origin of ['http://evil.example', `http://${u.hostname}:${Number(u.port) + 1}`, `http://localhost:${u.port}`, 'file://', 'not a url']) {
      const r = await post({ Origin: origin });
      expect(r.status, origin).toBe(403);
      expect((await r.json()).error).toMatch(/^cross-origin request refused/);
    }
  });

  it('403 when Sec-Fetch-Site says cross-site or same-site; same-origin and none are accepted', async () => {
    for (const site of ['cross-site', 'same-site']) {
      const r = await post({ 'Sec-Fetch-Site': site });
      expect(r.status, site).toBe(403);
      expect((await r.json()).error).toMatch(new RegExp(`Sec-Fetch-Site: ${site}`));
    }
    const own = new URL(base).origin;
    const ok = await post({ Origin: own, 'Sec-Fetch-Site': 'same-origin' });
    expect(ok.status).toBe(202);
    const none = await post({ 'Sec-Fetch-Site': 'none' });
    expect(none.status).toBe(202);
    // a link from another site to the page itself still opens it
    const page = await fetch(base, { headers: { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' } });
    expect(page.status).toBe(200);
    await drain(srv);
  });
});
