/**
 * A minimal Redis client (RESP2 over TCP or TLS) with the shape of Bun's `RedisClient` (`send`,
 * `connected`, `onconnect`/`onclose`, `duplicate`), which BullMQ wraps in its own adapter
 * (scripts, transactions, reconnects with backoff). BullMQ 6 leaves the Redis driver to the
 * application and none is installed with it; this keeps the project on one dependency for the
 * queue. One connection per instance; replies come back in request order (pipelining is free).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

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
  if (!Number.isInteger(db) || db < 0) throw new Error(`${option}: the database after the host must be a non-negative integer (got "${dbText}")`);
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

type Reply = string | number | null | Error | Reply[];
interface Pending {
  resolve: (v: Reply) => void;
  reject: (e: Error) => void;
}

/** Incremental RESP2 parser: bulk strings as UTF-8 text (BullMQ stores JSON), nested errors as Error values. */
class Parser {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** chunks not yet joined to `buf`: a large reply (a result PNG) is joined once, not once per chunk */
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** bytes the current reply needs at least (known once a bulk string's length is read) */
  private need = 0;
  private replyStart = 0;

  push(chunk: Buffer): void {
    this.parts.push(chunk);
    this.partsLength += chunk.length;
  }

  /** the next complete reply, or undefined when more bytes are needed */
  next(): { value: Reply } | undefined {
    if (this.parts.length > 0) {
      if (this.buf.length - this.pos + this.partsLength < this.need) return undefined;
      this.buf = Buffer.concat([this.buf.subarray(this.pos), ...this.parts]);
      this.pos = 0;
      this.parts = [];
      this.partsLength = 0;
    }
    this.replyStart = this.pos;
    this.need = 0;
    const v = this.read();
    if (v === undefined) {
      this.pos = this.replyStart;
      return undefined;
    }
    return v;
  }

  private line(): string | undefined {
    const end = this.buf.indexOf('\r\n', this.pos);
    if (end < 0) return undefined;
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 2;
    return s;
  }

  private read(): { value: Reply } | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const type = String.fromCharCode(this.buf[this.pos]!);
    this.pos++;
    const head = this.line();
    if (head === undefined) return undefined;
    switch (type) {
      case '+':
        return { value: head };
      case '-':
        return { value: new Error(head) };
      case ':':
        return { value: Number(head) };
      case '$': {
        const n = Number(head);
        if (n < 0) return { value: null };
        if (this.buf.length < this.pos + n + 2) {
          this.need = this.pos + n + 2 - this.replyStart;
          return undefined;
        }
        const s = this.buf.toString('utf8', this.pos, this.pos + n);
        this.pos += n + 2;
        return { value: s };
      }
      case '*': {
        const n = Number(head);
        if (n < 0) return { value: null };
        const out: Reply[] = [];
        for (let i = 0; i < n; i++) {
          const item = this.read();
          if (item === undefined) return undefined;
          out.push(item.value);
        }
        return { value: out };
      }
      default:
        throw new Error(`unexpected reply type "${type}" from Redis`);
    }
  }
}

function encode(command: string, args: readonly unknown[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length + 1}\r\n`)];
  for (const a of [command, ...args]) {
    const b = Buffer.isBuffer(a) ? a : a instanceof Uint8Array ? Buffer.from(a) : Buffer.from(a === undefined || a === null ? '' : String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

const CLOSED = 'Connection closed';

export class RespClient {
  connected = false;
  onconnect?: () => void;
  onclose?: (error?: Error) => void;
  onerror?: (error: Error) => void;
  private socket: Socket | null = null;
  private pending: Pending[] = [];
  private parser = new Parser();
  private closedByUs = false;
  readonly target: RedisTarget;

  constructor(
    readonly url: string,
    private readonly connectTimeoutMs = 10_000,
  ) {
    this.target = parseRedisUrl(url);
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    this.closedByUs = false;
    const { host, port, tls } = this.target;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket = tls ? tlsConnect({ host, port, servername: host }) : netConnect({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`${CLOSED}: no answer from ${host}:${port} within ${this.connectTimeoutMs / 1000} s`));
      }, this.connectTimeoutMs);
      s.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`${CLOSED}: cannot reach ${host}:${port} (${e.message})`));
      });
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    this.socket = socket;
    this.parser = new Parser();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.onerror?.(e));
    socket.on('close', () => this.lost());
    this.connected = true;
    try {
      const { username, password, db } = this.target;
      if (password !== undefined) await this.send('AUTH', username ? [username, password] : [password]);
      if (db !== 0) await this.send('SELECT', [db]);
    } catch (e) {
      this.close();
      throw e;
    }
    this.onconnect?.();
  }

  private onData(chunk: Buffer): void {
    this.parser.push(chunk);
    for (;;) {
      let r: { value: Reply } | undefined;
      try {
        r = this.parser.next();
      } catch (e) {
        this.socket?.destroy(e as Error);
        return;
      }
      if (!r) return;
      const p = this.pending.shift();
      if (!p) continue;
      if (r.value instanceof Error) p.reject(r.value);
      else p.resolve(r.value);
    }
  }

  private lost(): void {
    if (!this.connected && this.pending.length === 0) return;
    this.connected = false;
    this.socket = null;
    const err = new Error(CLOSED);
    for (const p of this.pending.splice(0)) p.reject(err);
    this.onclose?.(this.closedByUs ? undefined : err);
  }

  send(command: string, args: readonly unknown[] = []): Promise<any> {
    if (!this.connected || !this.socket) return Promise.reject(new Error(CLOSED));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket!.write(encode(command, args));
    });
  }

  close(): void {
    this.closedByUs = true;
    const s = this.socket;
    if (s) s.destroy();
    else this.lost();
  }

  disconnect(): void {
    this.close();
  }

  /** a new, unconnected client for the same server (BullMQ's adapter connects it) */
  async duplicate(): Promise<RespClient> {
    return new RespClient(this.url, this.connectTimeoutMs);
  }
}
