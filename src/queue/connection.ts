/**
 * How every BullMQ object of this project reaches Redis: a `--redis` URL (redis:// or rediss://
 * for TLS, user and password in the URL, a database number after the host) given to ioredis,
 * BullMQ's standard driver, and the queue settings shared by submitters and workers, defined once.
 * A single Redis server only: the URL cannot name Sentinel or Cluster nodes.
 */
import { Redis } from 'ioredis';
import { createIORedisClient, RedisConnection, type ConnectionOptions } from 'bullmq';
import { parseRedisUrl, redactRedisUrl } from './redis-url.js';

export { parseRedisUrl, redactRedisUrl } from './redis-url.js';

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

/**
 * BullMQ builds each of its connections (and owns and closes it) from the options below: the URL
 * plus its own settings (reconnect with backoff, `maxRetriesPerRequest: null` on blocking
 * connections). Left to itself it would make that ioredis client through `require('ioredis')`,
 * which an ES module does not have, so the same construction is done here with ioredis imported.
 */
function installClientFactory(): void {
  if (installed) return;
  installed = true;
  RedisConnection.clientFactory = (opts) => {
    const { url, ...rest } = opts;
    if (!url) throw new Error('internal: a BullMQ connection was made without a redis URL');
    // ioredis reads host, port, TLS, user, password and database from the URL (they win over the defaults in rest)
    return createIORedisClient(new Redis(url, rest));
  };
}

/** The `connection` option of a Queue, Worker, FlowProducer or QueueEvents for `url` (checked here). */
export function connectionFor(url: string, option = '--redis'): ConnectionOptions {
  parseRedisUrl(url, option);
  installClientFactory();
  return { url };
}

/** `--queue`: letters, digits, `-`, `_` and `.` (the name becomes part of Redis keys). */
export function checkQueueName(name: string, option = '--queue'): string {
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) throw new Error(`${option} must be 1-100 letters, digits, -, _ or . (got "${name}")`);
  return name;
}

/**
 * One connection and a PING before the real work, so an unreachable server, a wrong password or a
 * server that is not Redis fails at once with one line (BullMQ itself would keep reconnecting).
 * The probe never reconnects and queues nothing while disconnected; it gives up after `timeoutMs`.
 */
export async function probeRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const { host, port } = parseRedisUrl(url);
  let lastError: Error | undefined;
  const c = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    // the PING below is the check: a ready check (INFO) would hide its error behind "Ready check failed"
    enableReadyCheck: false,
  });
  // ioredis reports the cause (ECONNREFUSED, WRONGPASS) as an error event and then rejects with "Connection is closed"
  c.on('error', (e: Error) => (lastError ??= e));
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from ${host}:${port} within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const ping = (async () => {
      await c.connect();
      await c.ping();
    })();
    ping.catch(() => {}); // after a timeout its rejection (the disconnect below) is nobody's
    await Promise.race([ping, timeout]);
  } catch (e) {
    throw new Error(`Redis at ${redactRedisUrl(url)}: ${probeMessage(lastError ?? (e as Error), host, port)}`);
  } finally {
    clearTimeout(timer);
    c.disconnect();
  }
}

function probeMessage(e: Error & { code?: string; syscall?: string }, host: string, port: number): string {
  const m = e.message;
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || /^connect /.test(m)) return `cannot reach ${host}:${port} (${m})`;
  if (/^Protocol error/.test(m)) return `${host}:${port} does not answer as Redis does (${m.replace(/\.? Please report this\.?$/, '')})`;
  return /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(m) ? `${m} (check the user and password in the URL)` : m;
}
