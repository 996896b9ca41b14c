/**
 * How every BullMQ object of this project reaches Redis: a `--redis` URL (redis:// or rediss://
 * for TLS, user and password in the URL), through the project's own RESP client (resp.ts), and
 * the queue settings shared by submitters and workers, defined once.
 */
import { createBunRedisClient, RedisConnection, type ConnectionOptions } from 'bullmq';
import { parseRedisUrl, redactRedisUrl, RespClient } from './resp.js';

export { parseRedisUrl, redactRedisUrl } from './resp.js';

/** The queue both sides use unless told otherwise (`--queue`). */
export const DEFAULT_QUEUE = 'strdiffusion';

/**
 * Lock and stall timing. A worker holds a job's lock for `lockDurationMs`, renewed every half of
 * it from the worker's main thread (the network runs in a worker thread, so a long forward never
 * delays a renewal); a job whose lock has lapsed (its worker was killed) is found by another
 * worker's check every `stalledIntervalMs` and run again, up to `maxStalledCount` times.
 * Recovery after a kill takes at most about lockDurationMs + stalledIntervalMs.
 */
export interface QueueTiming {
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
}

export const DEFAULT_TIMING: QueueTiming = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 2 };

/** Attempts of a job that fails for a reason outside its input (a worker error), with backoff. */
export const DEFAULT_ATTEMPTS = 3;
export const DEFAULT_BACKOFF = { type: 'exponential' as const, delay: 2_000 };

let installed = false;

/** BullMQ builds each of its connections through this factory: our client, wrapped by BullMQ's adapter. */
function installClientFactory(): void {
  if (installed) return;
  installed = true;
  RedisConnection.clientFactory = (opts) => {
    const url = (opts as { url?: string }).url;
    if (!url) throw new Error('internal: a BullMQ connection was made without a redis URL');
    return createBunRedisClient(new RespClient(url) as never);
  };
}

/** The `connection` option of a Queue, Worker, FlowProducer or QueueEvents for `url` (checked here). */
export function connectionFor(url: string, option = '--redis'): ConnectionOptions {
  parseRedisUrl(url, option);
  installClientFactory();
  return { url } as ConnectionOptions;
}

/** `--queue`: letters, digits, `-`, `_` and `.` (the name becomes part of Redis keys). */
export function checkQueueName(name: string, option = '--queue'): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) throw new Error(`${option} must be 1-100 letters, digits, -, _ or . (got "${name}")`);
  return name;
}

/**
 * One connection and a PING before the real work, so an unreachable server, a wrong password or a
 * server that is not Redis fails at once with one line (BullMQ itself would keep reconnecting).
 */
export async function probeRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const c = new RespClient(url, timeoutMs);
  try {
    await c.connect();
    await c.send('PING');
  } catch (e) {
    const m = (e as Error).message.replace(/^Connection closed: /, '');
    const hint = /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(m) ? ' (check the user and password in the URL)' : '';
    throw new Error(`Redis at ${redactRedisUrl(url)}: ${m}${hint}`);
  } finally {
    c.close();
  }
}
