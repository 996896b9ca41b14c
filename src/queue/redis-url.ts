/**
 * The `--redis` URL: checked here so that a bad one is one line before anything connects, and
 * shown without its password in messages and logs. The connections themselves are ioredis's
 * (connection.ts), which reads the same URL.
 */

export interface RedisTarget {
  host: string;
  port: number;
  tls: boolean;
  username?: string;
  password?: string;
  db: number;
}

/** `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS; one-line error otherwise. */
export function parseRedisUrl(url: string, option = '--redis'): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${option} must be a URL like redis://HOST:PORT or rediss://USER:PASSWORD@HOST:PORT/DB (got "${url}")`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`${option} must start with redis:// or rediss:// (TLS) (got "${url}")`);
  if (!u.hostname) throw new Error(`${option} has no host (got "${url}")`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!/^\d*$/.test(dbText) || !Number.isInteger(db) || db < 0) throw new Error(`${option}: the database after the host must be a non-negative integer (got "${dbText}")`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    tls: u.protocol === 'rediss:',
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
  };
}

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
