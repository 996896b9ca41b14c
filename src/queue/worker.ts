/**
 * A queue worker: takes `inpaint` jobs from the BullMQ queue and fills them with the model it
 * loaded once, in a worker thread (thread.ts) so that the BullMQ worker's own thread keeps
 * renewing the job's lock during a long forward. Progress goes to the job's BullMQ progress.
 *
 * What it refuses, failing the job once (UnrecoverableError: no retry burned): a job of another
 * format, a job for another model (hash mismatch), a bad input or option. Anything else (the
 * thread dying, a full disk) fails the attempt and BullMQ retries it with backoff; a worker
 * killed mid-job loses its lock and the job is run again by another worker.
 */
import { Worker as BullWorker, UnrecoverableError, type Job } from 'bullmq';
import { Worker as Thread } from 'node:worker_threads';
import { hostname } from 'node:os';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectionFor, probeRedis, DEFAULT_QUEUE, DEFAULT_TIMING, type QueueTiming } from './connection.js';
import { BATCH_JOB, INPAINT_JOB, JOB_FORMAT, mb, modelIdentity, resolveShared, type InpaintJobData, type InpaintJobResult, type JobProgress, type ModelIdentity, type Payload } from './jobs.js';
import type { FromThread, ThreadInit, ThreadRun } from './thread.js';
import { writeFileAtomic } from '../util/files.js';
import { checkpointDirs } from '../model/checkpoints.js';

export interface QueueWorkerOptions {
  redis: string;
  queue?: string;
  /** model folder(s); default the bundled model */
  checkpoints?: string | string[];
  /** diffusion length to load the model with (default: its model.json) */
  T?: number;
  /** the shared folder as mounted on this machine (jobs submitted with --shared-dir) */
  sharedDir?: string;
  /** jobs run at once, each in its own model thread (default 1) */
  concurrency?: number;
  timing?: Partial<QueueTiming>;
  /** a line per job started, done or refused */
  log?: (msg: string) => void;
}

export interface QueueWorker {
  model: ModelIdentity;
  /** this worker's name in results and logs (host:pid) */
  id: string;
  /** stop taking jobs, let a running one finish (force: abandon it; another worker runs it again) */
  close(force?: boolean): Promise<void>;
}

/** One model thread, running one job at a time. */
class ModelThread {
  private thread: Thread;
  private current: { id: string; resolve: (m: FromThread) => void; onProgress: (p: JobProgress) => void } | null = null;
  readonly ready: Promise<void>;
  dead: Error | null = null;

  constructor(init: ThreadInit) {
    const entry = import.meta.url.endsWith('.ts') ? './thread-boot.mjs' : './thread.js';
    this.thread = new Thread(new URL(entry, import.meta.url), { workerData: init });
    this.ready = new Promise<void>((resolve, reject) => {
      this.thread.on('message', (m: FromThread) => {
        if (m.type === 'ready') return resolve();
        const cur = this.current;
        if (!cur || m.id !== cur.id) return;
        if (m.type === 'progress') cur.onProgress(m.progress);
        else {
          this.current = null;
          cur.resolve(m);
        }
      });
      const die = (e: Error) => {
        this.dead ??= e;
        reject(e);
        const cur = this.current;
        this.current = null;
        cur?.resolve({ type: 'error', id: cur.id, message: `the model thread died: ${e.message}`, input: false });
      };
      this.thread.on('error', die);
      this.thread.on('exit', (code) => die(new Error(`the model thread exited (code ${code})`)));
    });
    this.ready.catch(() => {});
  }

  get busy(): boolean {
    return this.current !== null;
  }

  run(req: ThreadRun, onProgress: (p: JobProgress) => void): Promise<FromThread> {
    if (this.dead) return Promise.resolve({ type: 'error', id: req.id, message: `the model thread died: ${this.dead.message}`, input: false });
    return new Promise((resolve) => {
      this.current = { id: req.id, resolve, onProgress };
      this.thread.postMessage(req, [req.image.buffer as ArrayBuffer, req.mask.buffer as ArrayBuffer].filter((b, i, all) => all.indexOf(b) === i));
    });
  }

  terminate(): Promise<number> {
    return this.thread.terminate();
  }

  unref(): void {
    this.thread.unref();
  }
}

/** A job's input file: its bytes from the job, or read from the shared folder. */
function payloadBytes(p: Payload, sharedDir: string | undefined, what: string): Uint8Array {
  if ('bytes' in p && typeof p.bytes === 'string') return new Uint8Array(Buffer.from(p.bytes, 'base64'));
  if ('path' in p && typeof p.path === 'string') {
    if (!sharedDir) throw new UnrecoverableError(`the job's ${what} is on a shared folder, but this worker was started without --shared-dir`);
    const full = resolveShared(sharedDir, p.path, what);
    try {
      return new Uint8Array(readFileSync(full));
    } catch (e) {
      throw new UnrecoverableError(`the job's ${what} ${full} cannot be read on this worker (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is --shared-dir the same folder as the submitter's?`);
    }
  }
  throw new UnrecoverableError(`the job's ${what} is neither inline bytes nor a shared path`);
}

/** Where a shared-folder result goes: one file per job id, so a repeated job replaces its own file. */
export const resultPathOf = (jobId: string) => join('.strdiffusion-results', `${jobId.replace(/[^A-Za-z0-9_.-]/g, '_')}.png`);

export async function startQueueWorker(o: QueueWorkerOptions): Promise<QueueWorker> {
  const log = o.log ?? (() => {});
  const dirs = checkpointDirs(o.checkpoints);
  const model = modelIdentity(dirs);
  const concurrency = o.concurrency ?? 1;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new Error(`concurrency must be a positive integer (got ${concurrency})`);
  const timing = { ...DEFAULT_TIMING, ...o.timing };
  const id = `${hostname()}:${process.pid}`;
  // Redis first: a wrong URL or password fails before the model is loaded
  await probeRedis(o.redis);
  log('loading the model ...');
  const init: ThreadInit = { checkpoints: dirs, T: o.T };
  const threads = Array.from({ length: concurrency }, () => new ModelThread(init));
  try {
    await Promise.all(threads.map((t) => t.ready));
  } catch (e) {
    await Promise.all(threads.map((t) => t.terminate()));
    throw new Error(`the model could not be loaded: ${(e as Error).message}`);
  }

  const processor = async (job: Job): Promise<InpaintJobResult | { children: number }> => {
    if (job.name === BATCH_JOB) return { children: (job.data as { count?: number }).count ?? 0 };
    if (job.name !== INPAINT_JOB) throw new UnrecoverableError(`unknown job "${job.name}" (this worker runs ${INPAINT_JOB} jobs)`);
    const d = job.data as InpaintJobData;
    const label = `${job.id} (${d.name})`;
    try {
      if (d.format !== JOB_FORMAT) throw new UnrecoverableError(`the job has format ${d.format}, this worker reads format ${JOB_FORMAT}: update the submitter or the worker`);
      if (d.model?.hash !== model.hash) {
        throw new UnrecoverableError(
          `worker ${id} has other weights (${model.name}, hash ${model.hash.slice(0, 12)}) than the job asks for (${d.model?.name}, hash ${String(d.model?.hash).slice(0, 12)}): start workers with the submitter's --checkpoints`,
        );
      }
      const image = payloadBytes(d.image, o.sharedDir, 'image');
      const mask = payloadBytes(d.mask, o.sharedDir, 'mask');
      // a thread that died (its job failed and is retried, with backoff, on any worker) is replaced
      for (const [i, t] of threads.entries()) {
        if (!t.dead) continue;
        log(`the model thread died (${t.dead.message}): starting a new one`);
        threads[i] = new ModelThread(init);
      }
      const thread = threads.find((t) => !t.busy);
      if (!thread) throw new Error(`worker ${id} has no free model thread`);
      await thread.ready;
      log(`started ${label}, attempt ${job.attemptsMade + 1}`);
      // progress is written to Redis at most every 250 ms; a failed write (Redis restarting) is not the job's failure
      let last = 0;
      const m = await thread.run({ type: 'run', id: String(job.id), name: d.name, image, mask, options: d.options }, (p) => {
        const now = Date.now();
        if (now - last < 250 && p.step < p.T) return;
        last = now;
        job.updateProgress(p).catch(() => {});
      });
      if (m.type === 'error') throw m.input ? new UnrecoverableError(m.message) : new Error(m.message);
      if (m.type !== 'done') throw new Error(`unexpected message ${m.type} from the model thread`);
      let result: Payload;
      if ('path' in d.image) {
        // shared folder in, shared folder out; the file is named by the job id (a retry replaces it whole)
        const rel = resultPathOf(String(job.id));
        const full = resolveShared(o.sharedDir!, rel, 'result');
        mkdirSync(join(o.sharedDir!, '.strdiffusion-results'), { recursive: true });
        writeFileAtomic(full, m.png);
        result = { path: rel };
      } else {
        if (m.png.length > d.maxBytes) throw new UnrecoverableError(`the result of ${d.name} is ${mb(m.png.length)}, more than the ${mb(d.maxBytes)} a job may carry: submit with --shared-dir, or raise --max-job-mb`);
        result = { bytes: Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength).toString('base64') };
      }
      log(`done ${label} in ${m.seconds.toFixed(1)} s`);
      return { result, width: m.width, height: m.height, holePixels: m.holePixels, seconds: m.seconds, worker: id };
    } catch (e) {
      log(`${e instanceof UnrecoverableError ? 'refused' : 'failed'} ${label}: ${(e as Error).message}`);
      throw e;
    }
  };

  const worker = new BullWorker(o.queue ?? DEFAULT_QUEUE, processor, {
    connection: connectionFor(o.redis),
    concurrency,
    lockDuration: timing.lockDurationMs,
    stalledInterval: timing.stalledIntervalMs,
    maxStalledCount: timing.maxStalledCount,
    autorun: false,
  });
  // connection trouble is reported, not thrown: BullMQ reconnects by itself
  let lastError = '';
  worker.on('error', (e) => {
    if (e.message !== lastError) log(`redis: ${e.message} (reconnecting)`);
    lastError = e.message;
  });
  worker.on('ready', () => (lastError = ''));
  void worker.run().catch((e) => log(`the worker stopped: ${(e as Error).message}`));
  await worker.waitUntilReady();

  return {
    model,
    id,
    close: async (force = false) => {
      await worker.close(force);
      // a thread inside an onnxruntime call is not terminated (that aborts the process): it goes with the process
      await Promise.all(threads.map((t) => (t.busy ? t.unref() : t.terminate())));
    },
  };
}
