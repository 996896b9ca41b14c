/**
 * Issue #22 ("Hostile round two"), the server's items: one malformed or abandoned upload must not
 * end the process (item 1); slow uploads must not hold queue places, and slow requests time out in
 * seconds (item 6); a job without a sampler runs the model's default sampler, which /api/info
 * reports (item 11); a server bound to another loopback address answers requests for it (minor a);
 * a model worker that dies mid-job fails the job, not the server (minor b).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer, type ServerOptions } from '../src/server/index.js';
import { fixture } from './fixtures.js';
import { holeAt, photo, png } from './server-helpers.js';

const NETS = fixture('parity/nets');
const W = 40, H = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let image: Buffer;
let mask: Buffer;
beforeAll(async () => {
  image = await png(W, H, 3, photo);
  mask = await png(W, H, 1, holeAt(10, 10, 20, 18));
});

function form(fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  f.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'image.png');
  f.append('mask', new Blob([new Uint8Array(mask)], { type: 'image/png' }), 'mask.png');
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

/** Submits a job and polls its status until it ends; returns the 202 body and the final status. */
async function runJob(base: string, fields: Record<string, string> = {}): Promise<{ accepted: any; final: any }> {
  const r = await fetch(`${base}api/jobs`, { method: 'POST', body: form(fields) });
  const accepted = await r.json();
  expect(r.status, accepted.error).toBe(202);
  const t0 = Date.now();
  for (;;) {
    const final = await (await fetch(`${base}api/jobs/${accepted.id}`)).json();
    if (final.status !== 'queued' && final.status !== 'running') return { accepted, final };
    if (Date.now() - t0 > 120_000) throw new Error(`job ${accepted.id} still ${final.status} after 120 s`);
    await sleep(50);
  }
}

/** A raw connection: what the server sent, and a promise of it all once the socket closes. */
interface Raw {
  sock: Socket;
  text(): string;
  closed: Promise<{ text: string; at: number }>;
}

function raw(port: number, host = '127.0.0.1'): Raw {
  const sock = connect(port, host);
  let text = '';
  sock.on('data', (c) => (text += c.toString('latin1')));
  sock.on('error', () => {});
  const closed = new Promise<{ text: string; at: number }>((ok) => sock.on('close', () => ok({ text, at: Date.now() })));
  return { sock, text: () => text, closed };
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

function postHead(port: number, length: number, extra = ''): string {
  return `POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: multipart/form-data; boundary=QQ\r\nContent-Length: ${length}\r\n${extra}\r\n`;
}

const FILE_PART = '--QQ\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n';

/** The server still answers and still runs a job to the end. */
async function stillServes(srv: RunningServer): Promise<void> {
  const info = await fetch(`${srv.url}api/info`);
  expect(info.status).toBe(200);
  const { final } = await runJob(srv.url, { seed: '1' });
  expect(final.status, final.error).toBe('done');
}

// ---------- item 1: a bad upload ends its request only ----------

describe('serve survives malformed and abandoned uploads (issue #22 item 1)', () => {
  let srv: RunningServer;
  // what would have ended `strdiffusion serve` (vitest catches it, so the test looks for it)
  const uncaught: string[] = [];
  const onUncaught = (e: Error) => void uncaught.push(e.message);
  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32 });
  });
  afterAll(async () => {
    process.off('uncaughtException', onUncaught);
    await srv?.close();
  });

  it('a file part that never ends gets 400, and the server keeps serving', async () => {
    const body = `${FILE_PART}xxxx`;
    const c = raw(srv.port);
    c.sock.write(postHead(srv.port, body.length, 'Connection: close\r\n') + body);
    const { text } = await c.closed;
    expect(statusOf(text)).toBe(400);
    expect(text).toMatch(/bad multipart body: Unexpected end of form/);
    await sleep(100);
    expect(uncaught).toEqual([]);
    await stillServes(srv);
  });

  it('a client that disconnects mid-file, or mid-headers of a part, ends its request only', async () => {
    for (const sent of [`${FILE_PART}${'x'.repeat(5000)}`, '--QQ\r\nContent-Disposition: form-da']) {
      const c = raw(srv.port);
      c.sock.write(postHead(srv.port, 100_000) + sent);
      await sleep(200);
      c.sock.destroy();
      await c.closed;
    }
    // and one that half-closes its side mid-file (the body ends early)
    const c = raw(srv.port);
    c.sock.end(postHead(srv.port, 100_000) + `${FILE_PART}${'x'.repeat(5000)}`);
    await c.closed;
    await sleep(200);
    expect(uncaught).toEqual([]);
    await stillServes(srv);
  });
});

// ---------- item 6: idle uploads cannot starve the queue ----------

describe('slow uploads hold no queue place and time out in seconds (issue #22 item 6)', () => {
  let srv: RunningServer;
  const timeouts = { headersTimeoutMs: 1000, requestTimeoutMs: 3000, idleTimeoutMs: 1500 } satisfies ServerOptions;
  beforeAll(async () => {
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32, maxQueue: 1, ...timeouts });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('a real job is accepted and runs while uploads trickle; the slow ones get 408 or are closed', async () => {
    const t0 = Date.now();
    const slow: Raw[] = [];
    const timers: NodeJS.Timeout[] = [];
    // four bodies that trickle a byte every 300 ms (under the idle limit), one that stalls, one that trickles its headers
    for (let i = 0; i < 4; i++) {
      const c = raw(srv.port);
      c.sock.write(postHead(srv.port, 100_000) + FILE_PART);
      timers.push(setInterval(() => c.sock.writable && c.sock.write('x'), 300));
      slow.push(c);
    }
    const stalled = raw(srv.port);
    stalled.sock.write(postHead(srv.port, 100_000) + FILE_PART + 'xxxx');
    slow.push(stalled);
    const head = raw(srv.port);
    const headText = postHead(srv.port, 100);
    let k = 0;
    timers.push(setInterval(() => head.sock.writable && k < headText.length && head.sock.write(headText[k++]!), 300));
    slow.push(head);
    try {
      await sleep(300);
      const { accepted, final } = await runJob(srv.url, { seed: '2' });
      expect(accepted.status).toMatch(/^(queued|running)$/);
      expect(final.status, final.error).toBe('done');
      const ends = await Promise.all(slow.map((c) => c.closed));
      for (const [i, e] of ends.entries()) {
        // refused with 408 (or closed without an answer), well before Node's 300 s default
        if (e.text !== '') expect(statusOf(e.text), `${i}: ${e.text}`).toBe(408);
        expect(e.at - t0, `connection ${i}`).toBeLessThan(timeouts.requestTimeoutMs + 3000);
      }
      expect(statusOf(ends[4]!.text)).toBe(408);
      expect(ends[4]!.text).toMatch(/no data for 1\.5 s/);
      expect(ends[0]!.text).toMatch(/took longer than this server's limit of 3 s/);
    } finally {
      for (const t of timers) clearInterval(t);
      for (const c of slow) c.sock.destroy();
    }
  });

  it('refuses a timeout that is not a positive number, before loading the model', async () => {
    await expect(startServer({ port: 0, checkpoints: [NETS], requestTimeoutMs: -1 })).rejects.toThrow(/^requestTimeoutMs must be a positive number of milliseconds \(got -1\)$/);
    await expect(startServer({ port: 0, checkpoints: [NETS], idleTimeoutMs: 0 })).rejects.toThrow(/idleTimeoutMs must be a positive number/);
  });
});

// ---------- item 11 and minor a: the model's sampler; another loopback address ----------

describe("a job without a sampler runs the model's (issue #22 item 11); --host 127.0.0.2 (minor a)", () => {
  let srv: RunningServer;
  let base: string;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-server-model-'));
    for (const f of ['structure.pth', 'texture.pth', 'discriminator.pth']) symlinkSync(join(NETS, f), join(dir, f));
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ T: 10, sampler: 'no-resampling' }));
    srv = await startServer({ port: 0, host: '127.0.0.2', checkpoints: [dir], size: 32 });
    base = srv.url;
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('serves requests addressed to the loopback address it is bound to', async () => {
    expect(base).toBe(`http://127.0.0.2:${srv.port}/`);
    const page = await fetch(base);
    expect(page.status).toBe(200);
    expect((await fetch(`${base}api/info`)).status).toBe(200);
    // DNS rebinding is still refused
    const c = raw(srv.port, '127.0.0.2');
    c.sock.write(`GET /api/info HTTP/1.1\r\nHost: evil.example:${srv.port}\r\nConnection: close\r\n\r\n`);
    expect(statusOf((await c.closed).text)).toBe(403);
  });

  it("/api/info reports the model's sampler; a job without one runs it, a job may still choose", async () => {
    const info = await (await fetch(`${base}api/info`)).json();
    expect(info.sampler).toBe('no-resampling');
    const byDefault = await runJob(base, { seed: '3' });
    expect(byDefault.accepted.sampler).toBe('no-resampling');
    expect(byDefault.final).toMatchObject({ status: 'done', sampler: 'no-resampling' });
    const chosen = await runJob(base, { seed: '3', sampler: 'official' });
    expect(chosen.accepted.sampler).toBe('official');
    expect(chosen.final).toMatchObject({ status: 'done', sampler: 'official' });
  });

  it('a model without a sampler in model.json defaults to official', async () => {
    const own = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32 });
    try {
      expect((await (await fetch(`${own.url}api/info`)).json()).sampler).toBe('official');
    } finally {
      await own.close();
    }
  });
});

// ---------- minor b: a model worker that dies mid-job ----------

describe('a model worker that dies mid-job fails the job, not the server (issue #22 minor b)', () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32 });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('the job gets one final error event; the next jobs run on a new worker', async () => {
    const r = await fetch(`${srv.url}api/jobs`, { method: 'POST', body: form({ seed: '4', T: '400' }) });
    expect(r.status).toBe(202);
    const { id } = await r.json();
    const job = srv.jobs.get(id);
    const seen: string[] = [];
    srv.jobs.subscribe(job, (ev) => void seen.push(ev));
    const t0 = Date.now();
    while (!((job.last.progress?.step as number) >= 1) && Date.now() - t0 < 60_000) await sleep(20);
    const thread = (srv.jobs as any).workers.get('400').worker as import('node:worker_threads').Worker;
    // what Node reports when a worker thread dies (an uncaught error in it; its heap limit): the
    // report is simulated, since terminating a thread inside an onnxruntime call aborts the process
    thread.emit('error', new Error('simulated crash'));
    thread.emit('exit', 1);
    while (job.status === 'running' && Date.now() - t0 < 60_000) await sleep(20);
    expect(job.status).toBe('error');
    expect(job.last.error).toEqual({ message: 'the model worker failed: simulated crash', cancelled: false });
    // the thread, still alive here, reaches its next step: nothing it says reaches the failed job
    const orphanDone = new Promise<void>((ok) => thread.on('message', (m) => m.type === 'error' && ok()));
    Atomics.store(new Int32Array(job.cancel), 0, 1);
    await orphanDone;
    await sleep(100);
    await thread.terminate();
    expect(seen.slice(seen.indexOf('error'))).toEqual(['error']);
    expect((await (await fetch(`${srv.url}api/jobs/${id}`)).json()).error).toEqual({ message: 'the model worker failed: simulated crash', cancelled: false });
    await stillServes(srv);
    const again = await runJob(srv.url, { seed: '4', T: '400', solver: 'mr-ode-2', steps: '3' });
    expect(again.final.status, again.final.error).toBe('done');
  });
});
