/**
 * Submitting a batch: one `inpaint` job per image under one `batch` parent (a BullMQ flow), then
 * waiting for each to finish and handing its result over as it completes. Events from the queue
 * say when to look; a slow poll of the jobs still pending catches anything an event stream missed
 * (a Redis restart, a reconnect), so the batch finishes whatever happens to the connection.
 */
import { FlowProducer, Job, Queue, QueueEvents } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { connectionFor, probeRedis, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF, DEFAULT_QUEUE } from './connection.js';
import { BATCH_JOB, DEFAULT_MAX_JOB_MB, INPAINT_JOB, JOB_FORMAT, mb, resolveShared, sharedPath, type InpaintJobData, type InpaintJobResult, type JobOptions, type JobProgress, type ModelIdentity, type Payload } from './jobs.js';

export interface SubmitItem {
  /** for messages (the image's file name) */
  name: string;
  /** a file path, or the bytes of an encoded image */
  image: string | Uint8Array;
  mask: string | Uint8Array;
  /** this item's own options over the batch's (eval: a seed per pair) */
  options?: Partial<JobOptions>;
}

export interface ItemResult {
  png: Buffer;
  width: number;
  height: number;
  holePixels: number;
  seconds: number;
  worker: string;
}

export interface SubmitOptions {
  redis: string;
  queue?: string;
  items: SubmitItem[];
  options: JobOptions;
  model: ModelIdentity;
  /** files are named by their path under this folder (workers read them from their own mount) */
  sharedDir?: string;
  /** largest image + mask (and result) a job carries inline, in bytes (default DEFAULT_MAX_JOB_MB) */
  maxJobBytes?: number;
  /** attempts per job for failures outside its input (default DEFAULT_ATTEMPTS) */
  attempts?: number;
  /** how often the pending jobs are looked at besides the events (default 2000 ms) */
  pollMs?: number;
  /** `done`: finished jobs plus the fractions of the running ones */
  onProgress?: (done: number, total: number, counts: { completed: number; failed: number }) => void;
  /** called once per item, in completion order; the batch waits for it (write the file here) */
  /** a running job's progress as its worker reports it (a few times a second at most) */
  onItemProgress?: (index: number, progress: JobProgress) => void;
  onResult: (index: number, item: SubmitItem, result: ItemResult) => Promise<void> | void;
  onFailed?: (index: number, item: SubmitItem, message: string) => void;
  warn?: (msg: string) => void;
  /** stops waiting (the jobs already queued stay in the queue until they run or expire) */
  signal?: AbortSignal;
}

export interface BatchOutcome {
  batchId: string;
  completed: number;
  failed: { index: number; name: string; message: string }[];
}

function payloadOf(src: string | Uint8Array, sharedDir: string | undefined, what: string): { payload: Payload; bytes: number } {
  if (typeof src !== 'string') return { payload: { bytes: Buffer.from(src.buffer, src.byteOffset, src.byteLength).toString('base64') }, bytes: src.byteLength };
  if (sharedDir !== undefined) return { payload: { path: sharedPath(sharedDir, src, what) }, bytes: 0 };
  const buf = readFileSync(src);
  return { payload: { bytes: buf.toString('base64') }, bytes: buf.length };
}

export async function submitBatch(o: SubmitOptions): Promise<BatchOutcome> {
  const queueName = o.queue ?? DEFAULT_QUEUE;
  const maxBytes = o.maxJobBytes ?? DEFAULT_MAX_JOB_MB * 1e6;
  const warn = o.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  if (o.items.length === 0) throw new Error('nothing to submit');
  // every job is built (and its size checked) before anything is sent: a batch goes in whole or not at all
  const data: InpaintJobData[] = o.items.map((it) => {
    const image = payloadOf(it.image, o.sharedDir, 'image');
    const mask = payloadOf(it.mask, o.sharedDir, 'mask');
    if (image.bytes + mask.bytes > maxBytes) {
      throw new Error(`${it.name}: the image and its mask are ${mb(image.bytes + mask.bytes)}, more than the ${mb(maxBytes)} a queued job may carry (--max-job-mb); put the files on a shared filesystem and pass --shared-dir`);
    }
    return { format: JOB_FORMAT, name: it.name, image: image.payload, mask: mask.payload, options: { ...o.options, ...it.options }, model: o.model, maxBytes };
  });

  const connection = connectionFor(o.redis);
  await probeRedis(o.redis);
  const queue = new Queue(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  const flows = new FlowProducer({ connection });
  const batchId = `b${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  const ids = o.items.map((_, i) => `${batchId}-${i}`);
  const pending = new Map(ids.map((id, i) => [id, i]));
  const fraction = new Map<string, number>();
  const busy = new Set<string>();
  const outcome: BatchOutcome = { batchId, completed: 0, failed: [] };
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));
  let lostRedis = false;

  const report = () => {
    let running = 0;
    for (const [id, f] of fraction) if (pending.has(id)) running += f;
    o.onProgress?.(outcome.completed + outcome.failed.length + running, o.items.length, { completed: outcome.completed, failed: outcome.failed.length });
  };

  /** Look at one job; a finished one is handed over exactly once. */
  const check = async (id: string): Promise<void> => {
    const index = pending.get(id);
    if (index === undefined || busy.has(id)) return;
    busy.add(id);
    try {
      const state = await queue.getJobState(id);
      if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return;
      const item = o.items[index]!;
      if (state === 'unknown') {
        fail(id, index, `the job ${id} is gone from Redis (was Redis restarted without AOF, or the queue emptied?)`);
        return;
      }
      const job = await Job.fromId(queue, id);
      if (!job) return;
      if (state === 'failed') {
        fail(id, index, job.failedReason || 'failed without a reason');
        return;
      }
      const r = job.returnvalue as InpaintJobResult;
      let png: Buffer;
      let sharedFile: string | null = null;
      if ('path' in r.result) {
        try {
          sharedFile = resolveShared(o.sharedDir!, r.result.path, 'result');
          png = readFileSync(sharedFile);
        } catch (e) {
          fail(id, index, `the worker's result ${r.result.path} cannot be read under --shared-dir ${o.sharedDir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): do the workers mount the same folder?`);
          return;
        }
      } else png = Buffer.from(r.result.bytes, 'base64');
      try {
        await o.onResult(index, item, { png, width: r.width, height: r.height, holePixels: r.holePixels, seconds: r.seconds, worker: r.worker });
      } catch (e) {
        throw new HandoverError(e);
      }
      if (sharedFile) rmSync(sharedFile, { force: true });
      // written: free its copy in Redis now (the parent keeps one until the batch ends; a failed removal is retried there)
      void queue.remove(id).catch(() => 0);
      pending.delete(id);
      outcome.completed++;
      report();
      if (pending.size === 0) finish();
    } finally {
      busy.delete(id);
    }
  };

  const fail = (id: string, index: number, message: string) => {
    pending.delete(id);
    outcome.failed.push({ index, name: o.items[index]!.name, message });
    o.onFailed?.(index, o.items[index]!, message);
    report();
    if (pending.size === 0) finish();
  };

  // a failure while handing a result over (a full disk) ends the batch with that error; a Redis
  // error (connection lost, LOADING after a restart) only means: look again at the next poll
  let handoverError: unknown = null;
  const trouble = (e: unknown) => {
    if (e instanceof HandoverError) {
      handoverError ??= e.cause;
      finish();
    } else if (!lostRedis) {
      lostRedis = true;
      warn(`Redis: ${(e as Error).message}; retrying until it answers`);
    }
  };
  const look = (id: string) => void check(id).catch(trouble);

  events.on('progress', ({ jobId, data }) => {
    if (!pending.has(jobId)) return;
    const p = data as JobProgress;
    if (typeof p?.step !== 'number' || typeof p?.T !== 'number' || !(p.T > 0)) return;
    fraction.set(jobId, Math.min(1, p.step / p.T));
    o.onItemProgress?.(pending.get(jobId)!, p);
    report();
  });
  events.on('completed', ({ jobId }) => look(jobId));
  events.on('failed', ({ jobId }) => look(jobId));
  events.on('error', () => {});
  queue.on('error', () => {});
  flows.on('error', () => {});

  try {
    await events.waitUntilReady();
    await flows.add({
      name: BATCH_JOB,
      queueName,
      data: { format: JOB_FORMAT, count: o.items.length },
      opts: { jobId: batchId, removeOnComplete: true, removeOnFail: true },
      children: data.map((d, i) => ({
        name: INPAINT_JOB,
        queueName,
        data: d,
        opts: { jobId: ids[i], attempts: o.attempts ?? DEFAULT_ATTEMPTS, backoff: DEFAULT_BACKOFF, ignoreDependencyOnFailure: true },
      })),
    });
    report();
    const pollMs = o.pollMs ?? 2000;
    const timer = setInterval(() => {
      void (async () => {
        try {
          for (const id of [...pending.keys()]) await check(id);
          if (lostRedis) warn('Redis answers again: the batch goes on');
          lostRedis = false;
        } catch (e) {
          trouble(e);
        }
      })();
    }, pollMs);
    const abort = () => {
      handoverError ??= new Error('the batch was abandoned');
      finish();
    };
    o.signal?.addEventListener('abort', abort);
    if (o.signal?.aborted) abort();
    try {
      await finished;
    } finally {
      clearInterval(timer);
      o.signal?.removeEventListener('abort', abort);
    }
    if (o.signal?.aborted) {
      // abandoned: jobs still waiting are taken out of the queue (one on a worker runs to its end, unread)
      await Promise.all([...pending.keys()].map((id) => queue.remove(id).catch(() => 0)));
    }
    if (handoverError) throw handoverError;
    // the results are on disk: free Redis of the batch (a job still locked by a worker is left to expire)
    await Promise.all(ids.map((id) => queue.remove(id).catch(() => 0)));
    return outcome;
  } finally {
    await Promise.allSettled([events.close(), flows.close(), queue.close()]);
  }
}

/** An error of the caller's onResult (writing the output), as opposed to one of Redis. */
class HandoverError extends Error {
  constructor(override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}
