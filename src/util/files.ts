/**
 * Writing output files safely: destinations are checked before any (long) computation, files are
 * written to a temporary name next to the destination and renamed into place, and a failed write
 * removes its temporary file. Temporary names carry the writer's pid (`.NAME.tmp-PID…`,
 * `NAME.tmp-PID`) so leftovers of a killed process can be told from a live writer's.
 */
import { accessSync, closeSync, constants, existsSync, fsyncSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** Whether a process with this pid is running (a process we may not signal counts as running). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The nearest existing ancestor of a path (the path itself when it exists). */
function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

/** Throws unless files can be created in folder `dir` (which may not exist yet: its nearest existing ancestor decides). */
function checkCreatable(dir: string, option: string, target: string): void {
  const base = nearestExisting(dir);
  if (!statSync(base).isDirectory()) throw new Error(`${option} ${target}: ${base} is not a folder`);
  try {
    accessSync(base, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot write ${option} ${target}: ${base} is ${code === 'EROFS' ? 'read-only' : 'not writable'}`);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * What `path` is when it exists and is not a regular file ("a FIFO", "a character device", "a
 * folder", "a symlink to a character device", ...), else null. Outputs are written to a temporary
 * file renamed over the path, which would replace a device, a FIFO or a link to one with a plain
 * file (`--out /dev/null` as root). A link to a regular file, or a dangling one, is an ordinary
 * destination.
 */
export function specialFileKind(path: string): string | null {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return null;
  }
  if (st.isFile()) return null;
  if (!st.isSymbolicLink()) return kindOf(st);
  let target: Stats;
  try {
    target = statSync(path);
  } catch {
    return null;
  }
  return target.isFile() ? null : `a symlink to ${kindOf(target)}`;
}

/** Throws unless writing `path` would replace nothing but a regular file (or create it). */
export function checkReplaceable(path: string): void {
  const kind = specialFileKind(path);
  if (kind) throw new Error(`cannot write ${path}: it is ${kind} (outputs replace only regular files)`);
}

/** checkReplaceable for the named files of an output folder, before any work. */
export function checkOutputFiles(dir: string, names: Iterable<string>): void {
  for (const name of names) checkReplaceable(join(dir, name));
}

/**
 * Pre-flight check of an output file, before any work: it must not be a folder or another special
 * file, and its folder must exist or be creatable, and be writable.
 */
export function checkOutputFile(path: string, option = '--out'): void {
  const p = resolve(path);
  const kind = specialFileKind(p);
  if (kind === 'a folder' || kind === 'a symlink to a folder') throw new Error(`${option} ${path} is ${kind}: give an output file name`);
  if (kind) throw new Error(`${option} ${path} is ${kind} (outputs replace only regular files)`);
  checkCreatable(dirname(p), option, path);
}

/** Pre-flight check of an output folder, before any work: not a file, and creatable/writable. */
export function checkOutputDir(path: string, option = '--out'): void {
  const p = resolve(path);
  if (existsSync(p) && !statSync(p).isDirectory()) throw new Error(`${option} ${path} is ${specialFileKind(p) ?? 'a file'}, not a folder`);
  checkCreatable(p, option, path);
}

/** One line for a failed write (sharp's errors span several lines). */
export function writeError(e: unknown, path: string): Error {
  const err = e as NodeJS.ErrnoException;
  const msg = String(err?.message ?? e);
  let out: NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC' || /no space left on device/i.test(msg)) {
    out = new Error(`disk full while writing ${path}`);
    out.code = 'ENOSPC';
  } else {
    const sys = /system error: (.+)/i.exec(msg)?.[1]?.trim();
    const first = msg.split('\n')[0]!.trim();
    out = new Error(`could not write ${path}: ${sys && !first.includes(sys) ? `${first} (${sys})` : first}`);
    if (err?.code) out.code = err.code;
  }
  return out;
}

/**
 * Remove `dir/<prefix><PID><suffix>` files left by writers that are no longer running (a killed
 * inpaint or export); a live writer's temporary file is left alone.
 */
export function removeStaleTemps(dir: string, prefix: string, suffix: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(suffix)) continue;
    const pid = name.slice(prefix.length, name.length - suffix.length);
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid || processAlive(Number(pid))) continue;
    rmSync(join(dir, name), { force: true, recursive: true });
  }
}

/** The temporary name a file is written to before being renamed to `path` (same folder, same extension). */
export function tempPathFor(path: string, ext = ''): string {
  return `${resolve(path)}.tmp-${process.pid}${ext}`;
}

/**
 * Write to `tmp` with `write`, then rename it to `path`; on any failure the temporary file is
 * removed and a one-line error naming `path` is thrown. A `path` that is not a regular file (a
 * device, a FIFO, a folder, a link to one) is refused before writing.
 */
export async function replaceAtomically(path: string, tmp: string, write: (tmp: string) => Promise<void> | void): Promise<void> {
  checkReplaceable(path);
  try {
    await write(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true, recursive: true });
    throw writeError(e, path);
  }
}

/** Write bytes or text atomically (temp file, fsync, rename); a failure leaves neither a temp file nor a partial `path`.
 * A `path` that is not a regular file is refused before writing (checkReplaceable). */
export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  checkReplaceable(path);
  const tmp = tempPathFor(path);
  removeStaleTemps(dirname(tmp), `${basename(resolve(path))}.tmp-`, '');
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw writeError(e, path);
  }
}

/**
 * Takes the lock file `path` for `owner` (a folder being written by one process at a time): the
 * file is created with the `wx` flag and holds this process's pid and start time. A lock of a live
 * process (this one included: two runs of one process into one folder) is refused with one line
 * naming `owner`; a lock of a dead process (killed with SIGKILL, power loss) or an unreadable one
 * is taken over, said through `warn`. Returns the release function (idempotent); the lock is also
 * removed when the process exits normally (process.exit included).
 */
/** This boot of the machine (Linux), or null: a lock written before a reboot names a pid of another boot. */
function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export function acquireLock(path: string, owner: string, warn: (msg: string) => void = () => {}): () => void {
  const boot = bootId();
  const body = `${JSON.stringify({ pid: process.pid, started: new Date().toISOString(), ...(boot ? { boot } : {}) })}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, body, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`${owner} is in use: another process took its lock ${basename(path)} at the same time`);
        throw new Error(`cannot lock ${owner}: ${(e as Error).message}`);
      }
    }
    let held: { pid?: unknown; started?: unknown; boot?: unknown } | null = null;
    try {
      held = JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown; started?: unknown; boot?: unknown };
    } catch {
      held = null;
    }
    const pid = typeof held?.pid === 'number' ? held.pid : NaN;
    // after a reboot (or on another machine's lock) the pid may belong to an unrelated live process
    const otherBoot = typeof held?.boot === 'string' && boot !== null && held.boot !== boot;
    if (otherBoot) {
      warn(`taking over the stale lock ${path} (written before this machine last started)`);
      rmSync(path, { force: true });
      continue;
    }
    if (processAlive(pid)) {
      throw new Error(`${owner} is in use by another training (pid ${pid}${typeof held?.started === 'string' ? `, started ${held.started}` : ''}): wait for it to end or choose another folder`);
    }
    warn(`taking over the stale lock ${path} (${Number.isNaN(pid) ? 'unreadable' : `pid ${pid} is not running`})`);
    rmSync(path, { force: true });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    try {
      // only our own lock: never one another process took over after ours was removed by hand
      if ((JSON.parse(readFileSync(path, 'utf8')) as { pid?: unknown }).pid === process.pid) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
  process.on('exit', release);
  return release;
}
