import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import sharp from 'sharp';
import { startServer, type RunningServer } from '../src/server/index.js';
import { fixture } from './fixtures.js';
import { holeAt, photo, png } from './server-helpers.js';

const NETS = fixture('parity/nets');
// a long schedule for the fixture networks, so there is time to cancel and to queue behind it
const SLOW_STEPS = 400;

interface Raw {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
}


async function raw(buf: Buffer | ArrayBuffer): Promise<Raw> {
  const { data, info } = await sharp(Buffer.from(buf as ArrayBuffer)).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}


const blobPart = (x: Buffer | string) => (typeof x === 'string' ? x : new Uint8Array(x));

function form(parts: { image?: Buffer | string; mask?: Buffer | string; fields?: Record<string, string>; imageType?: string }): FormData {
  const f = new FormData();
  if (parts.image !== undefined) f.append('image', new Blob([blobPart(parts.image)], { type: parts.imageType ?? 'image/png' }), 'image.png');
  if (parts.mask !== undefined) f.append('mask', new Blob([blobPart(parts.mask)], { type: 'image/png' }), 'mask.png');
  for (const [k, v] of Object.entries(parts.fields ?? {})) f.append(k, v);
  return f;
}

interface Ev {
  event: string;
  data: any;
}

/** Reads a job's SSE stream until `done`/`error` (or `stop` says so). */
async function events(base: string, id: string, onEvent: (e: Ev, all: Ev[]) => void | boolean = () => {}): Promise<Ev[]> {
  const res = await fetch(`${base}api/jobs/${id}/events`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const all: Ev[] = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return all;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!ev || data === undefined) continue;
      const e = { event: ev, data: JSON.parse(data) };
      all.push(e);
      const stop = onEvent(e, all);
      if (e.event === 'done' || e.event === 'error' || stop === true) {
        await reader.cancel();
        return all;
      }
    }
  }
}

/** A request exactly as written (fetch would normalise `..` away before sending). */
function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => ok({ status: res.statusCode!, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

/** A chunked POST (no Content-Length), written in pieces. */
function rawPost(port: number, path: string, type: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'Content-Type': type, 'Transfer-Encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => ok({ status: res.statusCode!, body: text }));
    });
    req.on('error', fail);
    for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
    req.end();
  });
}

describe('strdiffusion serve: API', () => {
  let srv: RunningServer;
  let base: string;
  let image: Buffer;
  let mask: Buffer;
  const W = 72, H = 52;

  beforeAll(async () => {
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32, maxUploadBytes: 300_000, maxPixels: 200_000 });
    base = srv.url;
    image = await png(W, H, 3, photo);
    mask = await png(W, H, 1, holeAt(20, 15, 45, 32));
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('serves the page and its info', async () => {
    const page = await fetch(base);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('app.js');
    const js = await fetch(`${base}app.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const info = await (await fetch(`${base}api/info`)).json();
    expect(info).toMatchObject({ T: 10, size: 32, maxUploadBytes: 300_000, maxPixels: 200_000 });
    expect(info.samplers).toContain('official');
    expect(info).toMatchObject({ solver: 'sde', steps: 10, spacing: 'uniform' });
    expect(info.solvers).toContain('mr-ode-2');
  });

  it('a job with fewer sampling steps runs that many network rounds; sde with fewer steps than T is refused', async () => {
    const res = await fetch(`${base}api/jobs`, { method: 'POST', body: form({ image, mask, fields: { seed: '5', sampler: 'no-resampling', solver: 'mr-ode-2', steps: '4' } }) });
    expect(res.status).toBe(202);
    const { id, solver, steps, T } = await res.json();
    expect({ solver, steps, T }).toEqual({ solver: 'mr-ode-2', steps: 4, T: 10 });
    const evs = await events(base, id);
    expect(evs.at(-1)!.event).toBe('done');
    expect(evs.filter((e) => e.event === 'progress' && e.data.step > 0).map((e) => [e.data.step, e.data.T])).toEqual([[1, 4], [2, 4], [3, 4], [4, 4]]);
    const bad = await fetch(`${base}api/jobs`, { method: 'POST', body: form({ image, mask, fields: { solver: 'sde', steps: '4' } }) });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/sde solver moves one level per step/);
  });

  it('runs a job: queued/progress/preview/done events, then a PNG whose known pixels are the input', async () => {
    const res = await fetch(`${base}api/jobs`, { method: 'POST', body: form({ image, mask, fields: { seed: '5', sampler: 'official', stepRule: 'posterior' } }) });
    expect(res.status).toBe(202);
    const { id, solver } = await res.json();
    expect(typeof id).toBe('string');
    expect(solver).toBe('posterior');
    const evs = await events(base, id);
    const names = evs.map((e) => e.event);
    expect(names.at(-1)).toBe('done');
    const steps = evs.filter((e) => e.event === 'progress' && e.data.step > 0);
    expect(steps.map((e) => e.data.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set(steps.map((e) => e.data.stage))).toEqual(new Set(['early', 'late']));
    const previews = evs.filter((e) => e.event === 'preview');
    expect(previews.length).toBeGreaterThan(0);
    expect(previews[0]!.data.texture).toMatch(/^data:image\/png;base64,/);
    const tex = await raw(Buffer.from(previews[0]!.data.texture.split(',')[1], 'base64'));
    expect([tex.width, tex.height]).toEqual([32, 32]);
    expect(previews[0]!.data.structure).toMatch(/^data:image\/png;base64,/);
    const done = evs.at(-1)!.data;
    expect(done).toMatchObject({ width: W, height: H, holePixels: 25 * 17 });

    const out = await fetch(`${base}api/jobs/${id}/result`);
    expect(out.status).toBe(200);
    expect(out.headers.get('content-type')).toBe('image/png');
    const got = await raw(await out.arrayBuffer());
    const want = await raw(image);
    expect([got.width, got.height, got.channels]).toEqual([W, H, 3]);
    let knownDiff = 0, holeDiff = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const hole = holeAt(20, 15, 45, 32)(x, y) > 0;
        for (let c = 0; c < 3; c++) {
          const d = got.data[(y * W + x) * 3 + c] !== want.data[(y * W + x) * 3 + c];
          if (hole) holeDiff += d ? 1 : 0;
          else knownDiff += d ? 1 : 0;
        }
      }
    }
    expect(knownDiff).toBe(0);
    expect(holeDiff).toBeGreaterThan(0);

    const st = await (await fetch(`${base}api/jobs/${id}`)).json();
    expect(st.status).toBe('done');
    // a late subscriber gets the final event at once
    const again = await events(base, id);
    expect(again.at(-1)!.event).toBe('done');
  });

  it('keeps an RGBA input RGBA, alpha included', async () => {
    const rgba = await png(40, 30, 4, (x, y, c) => (c === 3 ? 200 + (x % 50) : photo(x, y, c)));
    const m = await png(40, 30, 1, holeAt(10, 10, 20, 18));
    const res = await fetch(`${base}api/jobs`, { method: 'POST', body: form({ image: rgba, mask: m, fields: { seed: '1' } }) });
    const { id } = await res.json();
    expect((await events(base, id)).at(-1)!.event).toBe('done');
    const got = await raw(await (await fetch(`${base}api/jobs/${id}/result`)).arrayBuffer());
    const want = await raw(rgba);
    expect(got.channels).toBe(4);
    for (let i = 0; i < 40 * 30; i++) {
      const x = i % 40, y = Math.floor(i / 40);
      if (holeAt(10, 10, 20, 18)(x, y)) continue;
      for (let c = 0; c < 4; c++) expect(got.data[i * 4 + c]).toBe(want.data[i * 4 + c]);
    }
  });

  it('queues jobs of one model with their place, and cancels running and queued jobs', async () => {
    const submit = async () => {
      const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form({ image, mask, fields: { seed: '2', T: String(SLOW_STEPS) } }) });
      expect(r.status).toBe(202);
      return (await r.json()) as { id: string; position?: number };
    };
    const a = await submit();
    const b = await submit();
    const c = await submit();
    expect(b.position).toBe(1);
    expect(c.position).toBe(2);

    const cEvents: Ev[] = [];
    const cDone = events(base, c.id, (e) => void cEvents.push(e));
    // B is told its place; after A is cancelled B starts and C moves up to place 1
    const cancelAt = (id: string) => {
      let sent = false;
      return (e: Ev) => {
        if (e.event !== 'progress' || e.data.step < 1 || sent) return;
        sent = true;
        void fetch(`${base}api/jobs/${id}`, { method: 'DELETE' });
      };
    };
    const aEvents = await events(base, a.id, cancelAt(a.id));
    expect(aEvents.at(-1)).toMatchObject({ event: 'error', data: { cancelled: true } });
    expect((await fetch(`${base}api/jobs/${a.id}/result`)).status).toBe(409);
    expect((await (await fetch(`${base}api/jobs/${a.id}`)).json()).status).toBe('cancelled');

    const bEvents = await events(base, b.id, cancelAt(b.id));
    expect(bEvents.at(-1)).toMatchObject({ event: 'error', data: { cancelled: true } });
    expect(bEvents.some((e) => e.event === 'progress' && e.data.step >= 1)).toBe(true);

    // C was queued all along; cancel it from the queue
    await new Promise((r) => setTimeout(r, 50));
    const del = await fetch(`${base}api/jobs/${c.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    await cDone;
    const queued = cEvents.filter((e) => e.event === 'queued').map((e) => e.data.position);
    expect(queued[0]).toBe(2);
    expect(queued).toContain(1);
    // C may have just started when the DELETE arrived; either way it ends cancelled
    expect(cEvents.at(-1)).toMatchObject({ event: 'error', data: { cancelled: true } });
  });

  describe('refuses bad requests with clear 4xx errors', () => {
    const post = async (f: FormData | string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${base}api/jobs`, { method: 'POST', body: f, headers });
      return { status: r.status, body: (await r.json()) as { error: string } };
    };

    it('413 for an upload over the size limit', async () => {
      const bytes = randomBytes(400 * 300 * 3);
      const noise = await png(400, 300, 3, (x, y, c) => bytes[(y * 400 + x) * 3 + c]!);
      expect(noise.length).toBeGreaterThan(300_000);
      const r = await post(form({ image: noise, mask }));
      expect(r.status).toBe(413);
      expect(r.body.error).toMatch(/larger than .*limit/);
      // without a Content-Length the limit is enforced while reading
      const body = new Response(form({ image: noise, mask }));
      const chunked = await rawPost(srv.port, '/api/jobs', body.headers.get('content-type')!, Buffer.from(await body.arrayBuffer()));
      expect(chunked.status).toBe(413);
    });

    it('413 for an image with too many pixels', async () => {
      const big = await png(600, 400, 1, () => 128);
      const bigMask = await png(600, 400, 1, holeAt(0, 0, 10, 10));
      const r = await post(form({ image: big, mask: bigMask }));
      expect(r.status).toBe(413);
      expect(r.body.error).toMatch(/megapixels/);
    });

    it('422 when mask and image sizes differ', async () => {
      const r = await post(form({ image, mask: await png(W + 1, H, 1, holeAt(1, 1, 5, 5)) }));
      expect(r.status).toBe(422);
      expect(r.body.error).toMatch(/same size/);
    });

    it('415 for uploads that are not images (or not PNG/JPEG/WebP)', async () => {
      const r = await post(form({ image: 'hello, this is text', mask, imageType: 'text/plain' }));
      expect(r.status).toBe(415);
      expect(r.body.error).toMatch(/image is not an image/);
      const gif = await sharp(image).gif().toBuffer();
      const g = await post(form({ image: gif, mask }));
      expect(g.status).toBe(415);
      expect(g.body.error).toMatch(/GIF/);
      const truncated = image.subarray(0, 200);
      expect((await post(form({ image: truncated, mask }))).status).toBe(415);
      expect((await post('image=1', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    });

    it('400/422 for missing files, bad fields and empty masks', async () => {
      expect((await post(form({ image }))).status).toBe(400);
      const bad = await post(form({ image, mask, fields: { sampler: 'nope' } }));
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/sampler must be one of/);
      const badRule = await post(form({ image, mask, fields: { stepRule: 'euler' } }));
      expect(badRule.status).toBe(400);
      expect(badRule.body.error).toMatch(/stepRule must be sde or posterior/);
      expect((await post(form({ image, mask, fields: { seed: '-1' } }))).status).toBe(400);
      expect((await post(form({ image, mask, fields: { steps: 'ten' } }))).status).toBe(400);
      const empty = await post(form({ image, mask: await png(W, H, 1, () => 0) }));
      expect(empty.status).toBe(422);
      expect(empty.body.error).toMatch(/no hole/);
    });

    it('404 for unknown job ids', async () => {
      for (const [method, path] of [['GET', ''], ['GET', '/events'], ['GET', '/result'], ['DELETE', '']]) {
        const r = await fetch(`${base}api/jobs/no-such-job${path}`, { method });
        expect(r.status).toBe(404);
        expect((await r.json()).error).toMatch(/no job with id "no-such-job"/);
      }
    });

    it('serves only its own static files (no path traversal)', async () => {
      for (const p of ['/../package.json', '/%2e%2e/package.json', '/%2E%2E%2Fpackage.json', '/..%2fpackage.json', '/web/../../package.json', '/..\\package.json', '/%2e%2e%5cpackage.json', '/package.json', '/%00index.html']) {
        const r = await rawGet(srv.port, p);
        expect(r.status, p).toBeGreaterThanOrEqual(400);
        expect(r.status, p).toBeLessThan(500);
        expect(r.body, p).not.toContain('"devDependencies"');
      }
      expect((await fetch(`${base}api/jobs`, { method: 'PUT' })).status).toBe(405);
    });

    it('403 for requests from other sites', async () => {
      expect((await rawGet(srv.port, '/api/info', { Host: 'evil.example:80' })).status).toBe(403);
      const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form({ image, mask }), headers: { Origin: 'http://evil.example' } });
      expect(r.status).toBe(403);
    });
  });
});
