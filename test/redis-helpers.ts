/**
 * A real Redis for the queue tests and the queue benchmark: Debian's redis-server on a free
 * loopback port with its own temporary folder, stopped (and restarted, AOF kept) on request; and
 * CLI processes started in the background whose output lines can be waited for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const hasRedis = existsSync(REDIS_SERVER);
// import.meta.url, not __dirname: the benchmark imports this file as an ES module
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** SIGTERM (Redis writes its AOF and exits), then start again on the same port and folder */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(opts: { aof?: boolean; password?: string } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--maxmemory-policy', 'noeviction', '--appendonly', opts.aof ? 'yes' : 'no', '--appendfsync', 'always', ...(opts.password ? ['--requirepass', opts.password] : [])];
  let proc: ChildProcess | null = null;
  const launch = async () => {
    const p = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let out = '';
    await new Promise<void>((res, rej) => {
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes('Ready to accept connections')) res();
      };
      p.stdout!.on('data', onData);
      p.once('exit', (code) => rej(new Error(`redis-server exited (code ${code}): ${out.slice(-500)}`)));
    });
  };
  const halt = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((res) => {
      p.once('exit', () => res());
      p.kill('SIGTERM');
    });
  };
  await launch();
  return {
    url: `redis://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ''}127.0.0.1:${port}`,
    port,
    dir,
    restart: async (downMs = 500) => {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A CLI process in the background: its output so far, a wait for a line, its exit. */
export interface Background {
  proc: ChildProcess;
  out(): string;
  err(): string;
  /** resolves with the first line of stdout+stderr matching `re` (already printed or to come) */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

export function background(args: string[], env: NodeJS.ProcessEnv = {}): Background {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; res: (l: string) => void }[] = [];
  const scan = () => {
    const lines = (out + '\n' + err).split(/\r?\n|\r/);
    for (const w of waiters.slice()) {
      const hit = lines.find((l) => w.re.test(l));
      if (hit !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.res(hit);
      }
    }
  };
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    scan();
  });
  proc.stderr!.on('data', (b: Buffer) => {
    err += b.toString();
    scan();
  });
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return {
    proc,
    out: () => out,
    err: () => err,
    line: (re, timeoutMs = 120_000) =>
      new Promise<string>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no line matching ${re} within ${timeoutMs / 1000} s; output:\n${out}\n${err}`)), timeoutMs);
        waiters.push({ re, res: (l) => (clearTimeout(timer), res(l)) });
        void exited.then(() => setTimeout(() => rej(new Error(`the process exited without a line matching ${re}; output:\n${out}\n${err}`)), 50));
        scan();
      }),
    exited,
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
  };
}
