/**
 * `serve --redis` (issue 24): the server hands its jobs to queue workers; the API answers as
 * before and the results are the bytes the server's own model threads produce. A real
 * redis-server and two real `strdiffusion worker` processes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startServer, type RunningServer } from '../src/server/index.js';
import { holeAt, photo, png } from './server-helpers.js';
import { NETS } from './file-helpers.js';
import { background, hasRedis, startRedis, type Background, type RedisServer } from './redis-helpers.js';

interface Ev {
  event: string;
  data: Record<string, unknown>;
}

/** posts a job and reads its event stream to the end; returns the events and the result bytes */
async function runJob(srv: RunningServer, image: Buffer, mask: Buffer, seed: string): Promise<{ events: Ev[]; result: Buffer | null }> {
  const f = new FormData();
  f.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'image.png');
  f.append('mask', new Blob([new Uint8Array(mask)], { type: 'image/png' }), 'mask.png');
  f.append('seed', seed);
  const res = await fetch(`${srv.url}api/jobs`, { method: 'POST', body: f });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const text = await (await fetch(`${srv.url}api/jobs/${id}/events`)).text();
  const events = text
    .split('\n\n')
    .map((b) => ({ event: /^event: (.*)$/m.exec(b)?.[1], data: /^data: (.*)$/m.exec(b)?.[1] }))
    .filter((e): e is { event: string; data: string } => !!e.event && e.data !== undefined)
    .map((e) => ({ event: e.event, data: JSON.parse(e.data) as Record<string, unknown> }));
  const done = events.some((e) => e.event === 'done');
  return { events, result: done ? Buffer.from(await (await fetch(`${srv.url}api/jobs/${id}/result`)).arrayBuffer()) : null };
}

describe.skipIf(!hasRedis)('serve --redis: jobs run on queue workers', () => {
  let redis: RedisServer;
  let ws: Background[] = [];
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    ws = [0, 1].map(() => background(['worker', '--redis', redis.url, '--queue', 'serve', '--checkpoints', NETS, '--T', '10', '--threads', '1', '--lock-ms', '3000', '--stalled-ms', '1000']));
    await Promise.all(ws.map((w) => w.line(/^worker .* ready/)));
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    for (const w of ws) w.kill('SIGKILL');
    await Promise.all(ws.map((w) => w.exited));
    await redis?.stop();
  });

  it('two jobs at once complete on the workers with the bytes of the in-process server; progress events come from the workers', async () => {
    const image = await png(40, 32, 3, photo);
    const masks = [await png(40, 32, 1, holeAt(14, 10, 24, 20)), await png(40, 32, 1, holeAt(5, 5, 12, 14))];
    const common = { port: 0, checkpoints: [NETS], T: 10, size: 32 };
    const local = await startServer(common);
    servers.push(local);
    const expected = [await runJob(local, image, masks[0]!, '5'), await runJob(local, image, masks[1]!, '6')];
    const remote = await startServer({ ...common, remote: { redis: redis.url, queue: 'serve', maxJobBytes: 1e6, maxRunning: 4 } });
    servers.push(remote);
    const info = (await (await fetch(`${remote.url}api/info`)).json()) as { T: number };
    expect(info.T).toBe(10);
    const got = await Promise.all([runJob(remote, image, masks[0]!, '5'), runJob(remote, image, masks[1]!, '6')]);
    for (const [k, g] of got.entries()) {
      const last = g.events[g.events.length - 1]!;
      expect(last.event, JSON.stringify(last.data)).toBe('done');
      expect(g.result!.equals(expected[k]!.result!)).toBe(true);
      // the worker's steps arrive as the API's progress events
      const steps = g.events.filter((e) => e.event === 'progress' && (e.data.step as number) > 0);
      expect(steps.length).toBeGreaterThan(0);
      const localSteps = expected[k]!.events.filter((e) => e.event === 'progress' && (e.data.step as number) > 0);
      const pick = (e: Ev) => ({ step: e.data.step, T: e.data.T, t: e.data.t, stage: e.data.stage });
      expect(pick(steps[steps.length - 1]!)).toEqual(pick(localSteps[localSteps.length - 1]!));
      expect(steps[steps.length - 1]!.data).toMatchObject({ step: 10, T: 10 });
    }
    // both workers' logs together show the two jobs done
    expect(ws.map((w) => [...w.err().matchAll(/done /g)].length).reduce((a, b) => a + b, 0)).toBe(2);
  });

  it('DELETE on a job sent to the workers: the job ends cancelled, and the server takes new jobs', async () => {
    const remote = servers[1]!;
    const f = new FormData();
    f.append('image', new Blob([new Uint8Array(await png(40, 32, 3, photo))], { type: 'image/png' }), 'image.png');
    f.append('mask', new Blob([new Uint8Array(await png(40, 32, 1, holeAt(14, 10, 24, 20)))], { type: 'image/png' }), 'mask.png');
    const { id } = (await (await fetch(`${remote.url}api/jobs`, { method: 'POST', body: f })).json()) as { id: string };
    expect((await fetch(`${remote.url}api/jobs/${id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    const text = await (await fetch(`${remote.url}api/jobs/${id}/events`)).text();
    expect(text).toMatch(/event: error\ndata: \{"message":"cancelled","cancelled":true\}/);
    const again = await runJob(remote, await png(40, 32, 3, photo), await png(40, 32, 1, holeAt(14, 10, 24, 20)), '5');
    expect(again.events[again.events.length - 1]!.event).toBe('done');
  });

  it('a server for other weights than the workers\': its job ends with the workers\' refusal on the event stream', async () => {
    // the server names the bundled model; the workers hold the fixture networks
    const other = await startServer({ port: 0, size: 32, remote: { redis: redis.url, queue: 'serve', maxJobBytes: 1e6 } });
    servers.push(other);
    const { events, result } = await runJob(other, await png(40, 32, 3, photo), await png(40, 32, 1, holeAt(14, 10, 24, 20)), '1');
    expect(result).toBeNull();
    const last = events[events.length - 1]!;
    expect(last.event).toBe('error');
    expect(last.data.message).toMatch(/^worker \S+ has other weights \(nets, hash [0-9a-f]{12}\) than the job asks for \(the bundled model, hash [0-9a-f]{12}\)/);
  });
});
