/**
 * Batch inpainting on BullMQ workers (issue 24), against a real redis-server on a free loopback
 * port and three real `strdiffusion worker` processes: the outputs are bit-identical to the
 * in-process run, a worker killed with SIGKILL mid-job loses nothing, a Redis restart (AOF) does
 * not stop the batch, bad input fails its own job once, and a worker with other weights refuses.
 * Small lock and stall timings (--lock-ms, --stalled-ms) make the recovery take seconds.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeImage } from '../src/image/io.js';
import { cli, image, NETS } from './file-helpers.js';
import { background, hasRedis, startRedis, type Background, type RedisServer } from './redis-helpers.js';
import { parseRedisUrl, redactRedisUrl } from '../src/queue/redis-url.js';
import { probeRedis } from '../src/queue/connection.js';
import { createServer, type Server, type Socket } from 'node:net';
import { resolveShared, sharedPath } from '../src/queue/jobs.js';

const dir = mkdtempSync(join(tmpdir(), 'queue-'));
const N = 12;
const RUN = ['--checkpoints', NETS, '--T', '10', '--size', '32', '--seed', '3'];
const TIMING = ['--lock-ms', '3000', '--stalled-ms', '1000'];
let redis: RedisServer;
let queueNo = 0;
const live: Background[] = [];

/** Three (or n) workers on a fresh queue, ready. */
async function workers(n: number, extra: string[] = []): Promise<{ queue: string; ws: Background[] }> {
  const queue = `test${++queueNo}`;
  const ws = Array.from({ length: n }, () => background(['worker', '--redis', redis.url, '--queue', queue, '--threads', '1', ...TIMING, ...extra]));
  live.push(...ws);
  await Promise.all(ws.map((w) => w.line(/^worker .* ready/)));
  return { queue, ws };
}

async function stopAll(ws: Background[]): Promise<void> {
  for (const w of ws) w.kill('SIGKILL');
  await Promise.all(ws.map((w) => w.exited));
}

const outputs = (d: string) => readdirSync(d).filter((f) => f.endsWith('.png')).sort();
function expectSameAsLocal(out: string): void {
  expect(outputs(out)).toEqual(outputs(join(dir, 'local')));
  for (const f of outputs(join(dir, 'local'))) expect(readFileSync(join(out, f)).equals(readFileSync(join(dir, 'local', f))), f).toBe(true);
}
/** how many times each output was written by the submitter */
const wrote = (stdout: string) => [...stdout.matchAll(/^wrote .*\/(img\d+\.png) /gm)].map((m) => m[1]!).sort();

describe.skipIf(!hasRedis)('queue: batch inpainting on BullMQ workers', () => {
  beforeAll(async () => {
    mkdirSync(join(dir, 'in'));
    mkdirSync(join(dir, 'masks'));
    for (let k = 0; k < N; k++) {
      const name = `img${String(k).padStart(2, '0')}.png`;
      await writeImage(join(dir, 'in', name), image(40, 32, (x, y, c) => (x * 3 + y * (k + 1) + c * 40) & 255));
      await writeImage(join(dir, 'masks', name), image(40, 32, (x, y) => (Math.abs(x - 20 - (k % 5)) < 5 && Math.abs(y - 16) < 5 ? 255 : 0), 1));
    }
    // the reference: the same batch in-process
    const r = cli('inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'masks'), '--out', join(dir, 'local'), ...RUN, '-q');
    expect(r.status, r.err).toBe(0);
    expect(outputs(join(dir, 'local'))).toHaveLength(N);
    redis = await startRedis({ aof: true });
  });

  afterAll(async () => {
    await stopAll(live);
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('12 images on 3 workers: every output bit-identical to the in-process run; also with --shared-dir', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    const { queue, ws } = await workers(3, ['--checkpoints', NETS, '--T', '10', '--shared-dir', shared]);
    const sub = background(['inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'masks'), '--out', join(dir, 'q1'), ...RUN, '--redis', redis.url, '--queue', queue]);
    expect(await sub.exited, sub.err()).toBe(0);
    expectSameAsLocal(join(dir, 'q1'));
    expect(wrote(sub.out())).toEqual(outputs(join(dir, 'local')));
    // the work was shared: more than one worker filled images
    expect(new Set([...sub.out().matchAll(/ on (\S+)\)$/gm)].map((m) => m[1])).size).toBeGreaterThan(1);
    // one progress bar for the batch
    expect(sub.err()).toMatch(/^queue .* 12\/12 12 done/m);

    // files on a shared folder: the jobs carry paths, the workers read and write there
    mkdirSync(join(shared, 'in'));
    mkdirSync(join(shared, 'masks'));
    for (const f of ['img00.png', 'img01.png', 'img02.png']) {
      copyFileSync(join(dir, 'in', f), join(shared, 'in', f));
      copyFileSync(join(dir, 'masks', f), join(shared, 'masks', f));
    }
    const viaShared = background(['inpaint', '--image', join(shared, 'in'), '--mask', join(shared, 'masks'), '--out', join(dir, 'q1s'), ...RUN, '--redis', redis.url, '--queue', queue, '--shared-dir', shared, '-q']);
    expect(await viaShared.exited, viaShared.err()).toBe(0);
    for (const f of outputs(join(dir, 'q1s'))) expect(readFileSync(join(dir, 'q1s', f)).equals(readFileSync(join(dir, 'local', f))), f).toBe(true);
    expect(outputs(join(dir, 'q1s'))).toHaveLength(3);
    // the workers' result files were collected and removed
    expect(existsSync(join(shared, '.strdiffusion-results')) ? readdirSync(join(shared, '.strdiffusion-results')) : []).toEqual([]);
    await stopAll(ws);
  });

  it('a worker killed with SIGKILL in the middle of a job: all 12 complete, once each, identical', async () => {
    const { queue, ws } = await workers(3, ['--checkpoints', NETS, '--T', '10']);
    const sub = background(['inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'masks'), '--out', join(dir, 'q2'), ...RUN, '--redis', redis.url, '--queue', queue, '-q']);
    // the first worker to start a job is killed while it holds it
    const started = await Promise.race(ws.map((w, i) => w.line(/started \S+ \(img\d+\.png\), attempt 1/).then((l) => ({ i, l }))));
    ws[started.i]!.kill('SIGKILL');
    const jobId = /started (\S+) /.exec(started.l)![1]!;
    expect(await sub.exited, sub.err()).toBe(0);
    expectSameAsLocal(join(dir, 'q2'));
    expect(wrote(sub.out())).toEqual(outputs(join(dir, 'local')));
    // the killed worker's job was run again by another worker, after its lock lapsed
    const survivors = ws.filter((_, i) => i !== started.i);
    expect(survivors.some((w) => new RegExp(`done ${jobId} `).test(w.err()))).toBe(true);
    expect(ws[started.i]!.err()).not.toMatch(new RegExp(`done ${jobId} `));
    await stopAll(ws);
  });

  it('Redis restarted (AOF) during the batch: the batch completes', async () => {
    const { queue, ws } = await workers(3, ['--checkpoints', NETS, '--T', '10']);
    const sub = background(['inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'masks'), '--out', join(dir, 'q3'), ...RUN, '--redis', redis.url, '--queue', queue, '-q']);
    await sub.line(/^wrote /);
    await redis.restart(1000);
    expect(await sub.exited, sub.err()).toBe(0);
    expectSameAsLocal(join(dir, 'q3'));
    expect(wrote(sub.out())).toEqual(outputs(join(dir, 'local')));
    await stopAll(ws);
  });

  it('a fill much longer than the lock: the lock is renewed while the network runs, so the job runs once', async () => {
    // the bundled model on all 50 levels takes seconds on any CPU; the lock lasts 1 s (renewed every 0.5 s)
    const { queue, ws } = await workers(2, ['--lock-ms', '1000', '--stalled-ms', '500']);
    const sub = background(['inpaint', '--image', join(dir, 'in', 'img04.png'), '--mask', join(dir, 'masks', 'img04.png'), '--out', join(dir, 'long.png'), '--steps', '50', '--solver', 'posterior', '--redis', redis.url, '--queue', queue, '-q']);
    expect(await sub.exited, sub.err()).toBe(0);
    const logs = ws.map((w) => w.err()).join('\n');
    expect([...logs.matchAll(/started \S+ \(img04\.png\)/g)]).toHaveLength(1);
    expect(logs).toMatch(/started \S+ \(img04\.png\), attempt 1/);
    expect([...logs.matchAll(/done \S+ \(img04\.png\)/g)]).toHaveLength(1);
    await stopAll(ws);
  });

  it('bad input in one job: that job fails once with its error, the others complete', async () => {
    const { queue, ws } = await workers(3, ['--checkpoints', NETS, '--T', '10']);
    const bad = join(dir, 'bad');
    mkdirSync(join(bad, 'in'), { recursive: true });
    mkdirSync(join(bad, 'masks'));
    for (const f of ['img00.png', 'img01.png', 'img02.png']) {
      copyFileSync(join(dir, 'in', f), join(bad, 'in', f));
      copyFileSync(join(dir, 'masks', f), join(bad, 'masks', f));
    }
    // a mask that covers the whole image: nothing to inpaint from
    await writeImage(join(bad, 'masks', 'img01.png'), image(40, 32, () => 255, 1));
    const sub = background(['inpaint', '--image', join(bad, 'in'), '--mask', join(bad, 'masks'), '--out', join(dir, 'q4'), ...RUN, '--redis', redis.url, '--queue', queue, '-q']);
    expect(await sub.exited).toBe(1);
    expect(sub.err()).toMatch(/^failed img01\.png: the mask covers the whole image/m);
    expect(sub.err()).toMatch(/^strdiffusion: 1 of 3 images failed \(first: img01\.png: /m);
    expect(outputs(join(dir, 'q4'))).toEqual(['img00.png', 'img02.png']);
    for (const f of ['img00.png', 'img02.png']) expect(readFileSync(join(dir, 'q4', f)).equals(readFileSync(join(dir, 'local', f)))).toBe(true);
    // refused once: no retry burned on bad input
    const refusals = ws.flatMap((w) => [...w.err().matchAll(/refused \S+ \(img01\.png\)/g)]);
    expect(refusals).toHaveLength(1);
    await stopAll(ws);
  });

  it('a worker with other weights refuses the jobs with a clear error', async () => {
    // the bundled model, while the jobs ask for the fixture networks
    const { queue, ws } = await workers(1);
    const sub = background(['inpaint', '--image', join(dir, 'in', 'img00.png'), '--mask', join(dir, 'masks', 'img00.png'), '--out', join(dir, 'q5.png'), ...RUN, '--redis', redis.url, '--queue', queue, '-q']);
    expect(await sub.exited).toBe(1);
    expect(sub.err()).toMatch(/^failed img00\.png: worker \S+ has other weights \(the bundled model, hash [0-9a-f]{12}\) than the job asks for \(nets, hash [0-9a-f]{12}\): start workers with the submitter's --checkpoints$/m);
    expect(existsSync(join(dir, 'q5.png'))).toBe(false);
    expect([...ws[0]!.err().matchAll(/refused /g)]).toHaveLength(1);
    await stopAll(ws);
  });

  it('eval --redis: the pairs run on the workers and score exactly as in-process', async () => {
    const { queue, ws } = await workers(2, ['--checkpoints', NETS, '--T', '10']);
    const args = ['eval', '--images', join(dir, 'in'), '--count', '2', '--mask-ratios', '0.1-0.2,0.2-0.3', '--size', '32', '--baselines', 'none', '--checkpoints', NETS, '--T', '10', '-q'];
    const local = cli(...args, '--out', join(dir, 'ev-local'));
    expect(local.status, local.err).toBe(0);
    const viaQueue = background([...args, '--out', join(dir, 'ev-queue'), '--redis', redis.url, '--queue', queue]);
    expect(await viaQueue.exited, viaQueue.err()).toBe(0);
    type Pairs = { pairs: { results: { strdiffusion: Record<string, number> } }[] };
    const scores = (d: string) => (JSON.parse(readFileSync(join(d, 'results.json'), 'utf8')) as Pairs).pairs.map((p) => [p.results.strdiffusion.psnr, p.results.strdiffusion.ssim, p.results.strdiffusion.holeSwd]);
    expect(scores(join(dir, 'ev-queue'))).toEqual(scores(join(dir, 'ev-local')));
    expect(scores(join(dir, 'ev-local'))).toHaveLength(4);
    expect(ws.filter((w) => /done /.test(w.err())).length).toBeGreaterThan(0);
    await stopAll(ws);
  });

  it('refused before anything is sent: a job over the size cap, a bad URL, --shared-dir without --redis', () => {
    const args = ['inpaint', '--image', join(dir, 'in'), '--mask', join(dir, 'masks'), '--out', join(dir, 'never'), ...RUN, '-q'];
    const big = cli(...args, '--redis', redis.url, '--max-job-mb', '0.0001');
    expect(big.status).toBe(1);
    expect(big.err).toMatch(/^strdiffusion: img00\.png: the image and its mask are [\d.]+ kB, more than the 0\.1 kB a queued job may carry \(--max-job-mb\); put the files on a shared filesystem and pass --shared-dir$/);
    const url = cli(...args, '--redis', 'http://localhost:6379');
    expect(url.err).toBe('strdiffusion: --redis must start with redis:// or rediss:// (TLS) (got "http://localhost:6379")');
    const shared = cli(...args, '--shared-dir', dir);
    expect(shared.err).toBe('strdiffusion: --shared-dir needs --redis (it names files for queue workers)');
    const outside = cli(...args, '--redis', redis.url, '--shared-dir', join(dir, 'masks'));
    expect(outside.err).toMatch(/^strdiffusion: image .*img00\.png is not inside --shared-dir /);
    const down = cli(...args, '--redis', 'redis://127.0.0.1:1');
    expect(down.err).toMatch(/^strdiffusion: Redis at redis:\/\/127\.0\.0\.1:1: cannot reach 127\.0\.0\.1:1 \(connect ECONNREFUSED/);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('a Redis with a password: the URL\'s password is used, a wrong one is one clear line', async () => {
    const locked = await startRedis({ password: 'pa ss' });
    try {
      const wrong = cli('worker', '--redis', locked.url.replace('pa%20ss', 'nope'), '--checkpoints', NETS, '--T', '10');
      expect(wrong.status).toBe(1);
      expect(wrong.err).toMatch(/^strdiffusion: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: WRONGPASS .* \(check the user and password in the URL\)$/);
      const none = cli('worker', '--redis', locked.url.replace(':pa%20ss@', ''), '--checkpoints', NETS, '--T', '10');
      expect(none.err).toMatch(/NOAUTH Authentication required\. \(check the user and password in the URL\)$/);
      const w = background(['worker', '--redis', locked.url, '--queue', 'auth', '--checkpoints', NETS, '--T', '10', '--threads', '1']);
      live.push(w);
      await w.line(/^worker .* ready/);
      const sub = background(['inpaint', '--image', join(dir, 'in', 'img03.png'), '--mask', join(dir, 'masks', 'img03.png'), '--out', join(dir, 'q6.png'), ...RUN, '--redis', locked.url, '--queue', 'auth', '-q']);
      expect(await sub.exited, sub.err()).toBe(0);
      expect(readFileSync(join(dir, 'q6.png')).equals(readFileSync(join(dir, 'local', 'img03.png')))).toBe(true);
      await stopAll([w]);
    } finally {
      await locked.stop();
    }
  });
});

describe('queue: URLs and shared paths (no Redis needed)', () => {
  it('parses redis:// and rediss:// URLs with user, password and database; refuses others in one line', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6380')).toEqual({ host: '127.0.0.1', port: 6380, tls: false, username: undefined, password: undefined, db: 0 });
    expect(parseRedisUrl('rediss://worker:p%40ss@redis.example:6390/3')).toEqual({ host: 'redis.example', port: 6390, tls: true, username: 'worker', password: 'p@ss', db: 3 });
    expect(parseRedisUrl('redis://:secret@[::1]')).toMatchObject({ host: '::1', port: 6379, password: 'secret' });
    expect(() => parseRedisUrl('localhost:6379')).toThrow(/^--redis must (be a URL|start with redis:\/\/)/);
    expect(() => parseRedisUrl('redis://h/x')).toThrow('--redis: the database after the host must be a non-negative integer (got "x")');
    expect(redactRedisUrl('redis://u:secret@h:1/2')).toBe('redis://u:***@h:1/2');
  });

  it('probing a server that is silent, or not Redis: one line, no reconnecting, within the timeout', async () => {
    const listen = async (onSocket: (s: Socket) => void): Promise<{ server: Server; url: string }> => {
      const server = createServer(onSocket);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return { server, url: `redis://127.0.0.1:${(server.address() as { port: number }).port}` };
    };
    const silent = await listen(() => {});
    const http = await listen((s) => s.on('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    try {
      const t0 = Date.now();
      await expect(probeRedis(silent.url, 800)).rejects.toThrow(/^Redis at redis:\/\/127\.0\.0\.1:\d+: no answer from 127\.0\.0\.1:\d+ within 0\.8 s$/);
      expect(Date.now() - t0).toBeLessThan(5000);
      await expect(probeRedis(http.url, 5000)).rejects.toThrow(/^Redis at redis:\/\/127\.0\.0\.1:\d+: 127\.0\.0\.1:\d+ does not answer as Redis does \(Protocol error, got "H" as reply type byte\)$/);
    } finally {
      silent.server.close();
      http.server.close();
      for (const s of [silent.server, http.server]) (s as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    }
  });

  it('a job names files under the shared folder only, and a worker resolves none outside it', () => {
    expect(sharedPath('/data', '/data/photos/a.png', 'image')).toBe('photos/a.png');
    expect(() => sharedPath('/data', '/elsewhere/a.png', 'image')).toThrow('image /elsewhere/a.png is not inside --shared-dir /data: every file a job names must be on the shared filesystem');
    expect(resolveShared('/mnt/share', 'photos/a.png', 'image')).toBe('/mnt/share/photos/a.png');
    for (const bad of ['../etc/passwd', '/etc/passwd', 'photos/../../x', '']) expect(() => resolveShared('/mnt/share', bad, 'image')).toThrow(/leaves the shared folder/);
  });
});
