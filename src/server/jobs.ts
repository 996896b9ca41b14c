/**
 * Job queue, bounded in memory and CPU:
 * - one queue for the whole server, at most `maxQueue` jobs waiting (past it `checkRoom()` and
 *   `submit()` answer 503 with Retry-After); a place is taken only by a complete, checked upload,
 *   so a slow client holds none; a waiting job holds its uploads as sent (compressed bytes), never
 *   decoded pixels;
 * - one job runs at a time (each model worker already uses every core through onnxruntime);
 * - model workers are keyed by the step count T (the schedule depends on it). At most `maxWorkers`
 *   are alive: a job for another T reuses its worker if there is one, else the least recently used
 *   idle worker is stopped to make room. A worker for a non-default T is also stopped once idle
 *   for `idleWorkerMs`;
 * - finished jobs are forgotten beyond `keepFinished` of them or `maxResultBytes` of result PNGs.
 * Every job keeps the latest event of each kind so a client that connects late (or reconnects) is
 * brought up to date at once.
 */
import { progressOf, type InpaintProgress } from '../inpaint/progress.js';
import { samplingOf } from '../inpaint/sampling.js';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import type { SamplerVariant, Solver, StepRule } from '../sampler/index.js';
import type { Spacing } from '../options.js';
import type { FromWorker, RunRequest, WorkerInit } from './protocol.js';
import { rawToPngDataUrl } from './images.js';
import { HttpError } from './errors.js';
import type { ExecutorName } from '../exec/registry.js';
import type { RemoteRunner } from './remote.js';
import type { JobOptions } from '../queue/jobs.js';

export type JobEventName = 'queued' | 'progress' | 'preview' | 'done' | 'error';
export type JobListener = (event: JobEventName, data: Record<string, unknown>) => void;
export type JobStatus = 'queued' | 'running' | 'done' | 'error' | 'cancelled';

export const DEFAULT_MAX_QUEUE = 8;
export const DEFAULT_MAX_WORKERS = 2;

export interface Job {
  id: string;
  status: JobStatus;
  /** diffusion length */
  T: number;
  /** sampling steps asked for (undefined: the model's default); the run's count once known */
  steps?: number;
  solver?: Solver;
  spacing?: Spacing;
  seed: number;
  sampler: SamplerVariant;
  stepRule?: StepRule;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  result?: Buffer;
  width: number;
  height: number;
  /** the uploads as sent (PNG/JPEG/WebP bytes), dropped once the job has started or ended */
  image?: Buffer;
  mask?: Buffer;
  /** the model worker (by T) that runs it */
  workerKey: string;
  cancel: SharedArrayBuffer;
  cancelRequested: boolean;
  listeners: Set<JobListener>;
  last: Partial<Record<JobEventName, Record<string, unknown>>>;
  /** serialises the job's events (previews are encoded asynchronously) */
  chain: Promise<void>;
}

export interface JobManagerOptions {
  checkpoints?: string[];
  /** default number of steps (undefined: the model's own T) */
  T?: number;
  size?: number;
  executor?: ExecutorName;
  /** the server's pixel limit, handed to the worker's decoder */
  maxPixels?: number;
  /** finished jobs (and their results) kept for clients to fetch; default 50 */
  keepFinished?: number;
  /** result PNGs kept in memory, in bytes: the oldest finished jobs are forgotten past it (the
   * newest result is always kept); default 512 MB */
  maxResultBytes?: number;
  /** jobs allowed to wait (not counting the running one); default 8 */
  maxQueue?: number;
  /** model workers alive at once (one per step count in use); default 2 */
  maxWorkers?: number;
  /** a worker for a non-default step count is stopped after being idle this long */
  idleWorkerMs?: number;
  /** run the jobs on queue workers (`serve --redis`) instead of model threads; several at once */
  remote?: RemoteRunner;
}

/** What a job runs with: its own choices, else the model's defaults (the rule of inpaint/sampling.ts). */
export function jobSampling(job: Job, info: ModelInfo): { T: number; steps: number; solver: Solver; spacing: Spacing } {
  return { T: job.T, ...samplingOf(job, info, job.T) };
}

export interface ModelInfo {
  T: number;
  fixedT: boolean;
  /** the model's sampling defaults */
  solver: Solver;
  steps: number;
  spacing: Spacing;
  /** the sampler of a job that names none (model.json `sampler`, else official) */
  sampler: SamplerVariant;
}

/** One model worker thread: the three networks loaded for one step count. */
class ModelWorker {
  worker: Worker | null = null;
  ready: Promise<ModelInfo> | null = null;
  /** the job it is running (at most one) */
  job: Job | null = null;
  lastUsed = Date.now();
  idleTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly key: string,
    readonly T: number | undefined,
    private readonly mgr: JobManager,
  ) {}

  start(): Promise<ModelInfo> {
    if (this.ready) return this.ready;
    const init: WorkerInit = { checkpoints: this.mgr.opts.checkpoints, T: this.T, size: this.mgr.opts.size, executor: this.mgr.opts.executor };
    // from the sources a worker must register tsx first (worker-boot.mjs); compiled, it runs worker.js directly
    const entry = import.meta.url.endsWith('.ts') ? './worker-boot.mjs' : './worker.js';
    const worker = new Worker(new URL(entry, import.meta.url), { workerData: init });
    this.worker = worker;
    // once Node reports the thread dead, messages it had already posted must not reach the job,
    // which has had its final error event
    let dead = false;
    this.ready = new Promise<ModelInfo>((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (dead) return;
        if (m.type === 'ready') resolve({ T: m.T, fixedT: m.fixedT, solver: m.solver, steps: m.steps, spacing: m.spacing, sampler: m.sampler });
        else this.mgr.onWorkerMessage(this, m);
      });
      worker.on('error', (e: Error) => {
        dead = true;
        reject(e);
        if (this.worker === worker) this.crashed(`the model worker failed: ${e.message}`);
      });
      worker.on('exit', (code) => {
        dead = true;
        reject(new Error(`the model worker exited (code ${code}) while loading`));
        if (this.worker === worker) this.crashed(`the model worker exited (code ${code})`);
      });
    });
    this.ready.catch(() => {});
    return this.ready;
  }

  private crashed(message: string): void {
    this.worker = null;
    this.ready = null;
    this.mgr.forget(this);
    const job = this.job;
    if (job) {
      this.job = null;
      this.wakeIdle();
      this.mgr.jobEnded(job);
      this.mgr.finishError(job, job.cancelRequested ? 'cancelled' : message, job.cancelRequested);
    }
  }

  wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Stop the worker. A running job is cancelled first and given time to reach its next step:
   * terminating a worker inside an onnxruntime call aborts the whole process.
   */
  async stop(graceMs = 15_000): Promise<void> {
    clearTimeout(this.idleTimer);
    const job = this.job;
    if (job) {
      job.cancelRequested = true;
      Atomics.store(new Int32Array(job.cancel), 0, 1);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    const w = this.worker;
    this.worker = null;
    this.ready = null;
    if (!w) return;
    if (this.job) w.unref();
    else await w.terminate();
  }

  get isDefault(): boolean {
    return this.key === 'default';
  }
}

export class JobManager {
  readonly jobs = new Map<string, Job>();
  /** waiting jobs, oldest first */
  private readonly queue: Job[] = [];
  /** jobs running: one on the server's model threads, up to remote.maxRunning on queue workers */
  private readonly running = new Set<Job>();
  private readonly workers = new Map<string, ModelWorker>();
  private defaultInfo: ModelInfo | null = null;
  /** seconds of recent jobs, for Retry-After */
  private readonly durations: number[] = [];
  closed = false;

  constructor(readonly opts: JobManagerOptions) {
    const int = (v: number | undefined, name: string, min: number) => {
      if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new Error(`${name} must be an integer >= ${min} (got ${v})`);
    };
    int(opts.maxQueue, 'maxQueue', 1);
    int(opts.maxWorkers, 'maxWorkers', 1);
  }

  get maxQueue(): number {
    return this.opts.maxQueue ?? DEFAULT_MAX_QUEUE;
  }

  get maxWorkers(): number {
    return this.opts.maxWorkers ?? DEFAULT_MAX_WORKERS;
  }

  /** model worker threads alive (loading or loaded) */
  get liveWorkers(): number {
    return this.workers.size;
  }

  /** jobs run at once */
  private get slots(): number {
    return this.opts.remote ? this.opts.remote.maxRunning : 1;
  }

  /** Loads the default model (so a bad checkpoint fails at startup) and returns its T. */
  async start(): Promise<ModelInfo> {
    this.defaultInfo = this.opts.remote ? await this.opts.remote.start() : await this.workerFor('default').start();
    return this.defaultInfo;
  }

  get info(): ModelInfo {
    if (!this.defaultInfo) throw new Error('JobManager.start() has not finished');
    return this.defaultInfo;
  }

  /** The worker for `key` ('default' or a step count), started on demand; evicts the least
   * recently used idle worker when `maxWorkers` are alive. */
  private workerFor(key: string): ModelWorker {
    let w = this.workers.get(key);
    if (!w) {
      while (this.workers.size >= this.maxWorkers) {
        const idle = [...this.workers.values()].filter((x) => !x.job).sort((a, b) => a.lastUsed - b.lastUsed)[0];
        if (!idle) break; // cannot happen with one job at a time
        this.workers.delete(idle.key);
        void idle.stop();
      }
      w = new ModelWorker(key, key === 'default' ? this.opts.T : Number(key), this);
      this.workers.set(key, w);
    }
    clearTimeout(w.idleTimer);
    w.lastUsed = Date.now();
    return w;
  }

  /** a crashed worker is dropped (the next job for its T starts a new one) */
  forget(w: ModelWorker): void {
    if (this.workers.get(w.key) === w) this.workers.delete(w.key);
  }

  /** A rough wait in seconds for a client refused by a full queue. */
  private retryAfter(): number {
    const avg = this.durations.length ? this.durations.reduce((a, b) => a + b, 0) / this.durations.length : 10;
    return Math.max(1, Math.min(600, Math.ceil(avg)));
  }

  /**
   * Throws 503 (with Retry-After) when `maxQueue` jobs already wait. The server asks before it reads
   * an upload (a full queue costs no memory) and submit() asks again when the upload is complete.
   */
  checkRoom(): void {
    if (this.closed) throw new HttpError(503, 'the server is shutting down', { 'Retry-After': '10' });
    // an idle server starts the next job at once: it takes no place in the queue
    if (this.queue.length >= this.maxQueue + Math.max(0, this.slots - this.running.size)) {
      const s = this.retryAfter();
      throw new HttpError(503, `the queue is full (${this.maxQueue} jobs waiting, the most this server keeps); try again in ${s} s`, { 'Retry-After': String(s) });
    }
  }

  submit(input: { image: Buffer; mask: Buffer; width: number; height: number; seed: number; sampler: SamplerVariant; stepRule?: StepRule; T?: number; steps?: number; solver?: Solver; spacing?: Spacing }): Job {
    const info = this.info;
    const T = input.T ?? info.T;
    if (T !== info.T && info.fixedT) throw new HttpError(400, `T must be ${info.T} for this model (its schedule is fixed by model.json)`);
    // refused here, by the rule the worker applies, so a job that cannot run never takes a queue place
    try {
      samplingOf(input, info, T);
    } catch (e) {
      throw new HttpError(400, (e as Error).message);
    }
    this.checkRoom();
    this.prune();
    const job: Job = {
      id: randomBytes(9).toString('base64url'),
      status: 'queued',
      T,
      steps: input.steps,
      solver: input.solver,
      spacing: input.spacing,
      seed: input.seed,
      sampler: input.sampler,
      stepRule: input.stepRule,
      createdAt: Date.now(),
      width: input.width,
      height: input.height,
      image: input.image,
      mask: input.mask,
      // the default model's worker serves its own T; other step counts need a model instance of their own
      workerKey: T === info.T ? 'default' : String(T),
      cancel: new SharedArrayBuffer(4),
      cancelRequested: false,
      listeners: new Set(),
      last: {},
      chain: Promise.resolve(),
    };
    this.jobs.set(job.id, job);
    this.queue.push(job);
    this.announcePositions();
    this.pump();
    return job;
  }

  get(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, `no job with id "${id}" (unknown, or finished long ago and forgotten)`);
    return job;
  }

  /** Place in the queue: 1 = runs next. null when not queued. */
  position(job: Job): { position: number; ahead: number } | null {
    const i = this.queue.indexOf(job);
    return i >= 0 ? { position: i + 1, ahead: i + this.running.size } : null;
  }

  announcePositions(): void {
    this.queue.forEach((job, i) => this.emit(job, 'queued', { position: i + 1, ahead: i + this.running.size, queueLength: this.queue.length }));
  }

  private pump(): void {
    if (this.closed || this.running.size >= this.slots || this.queue.length === 0) return;
    const started: Job[] = [];
    while (this.running.size < this.slots && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running.add(job);
      started.push(job);
    }
    this.announcePositions();
    for (const job of started) void this.run(job);
  }

  /** the running job is over (result, error, cancellation or a crash): start the next one */
  jobEnded(job: Job): void {
    if (job.startedAt !== undefined) {
      this.durations.push((Date.now() - job.startedAt) / 1000);
      if (this.durations.length > 10) this.durations.shift();
    }
    if (!this.running.has(job)) return;
    this.running.delete(job);
    const w = this.workers.get(job.workerKey);
    // a model instance for a non-default step count holds a copy of the weights: free it when idle
    if (w && !w.isDefault) {
      clearTimeout(w.idleTimer);
      w.idleTimer = setTimeout(() => {
        if (!w.job && this.workers.get(w.key) === w) {
          this.workers.delete(w.key);
          void w.stop();
        }
      }, this.opts.idleWorkerMs ?? 60_000);
      w.idleTimer.unref();
    }
    this.pump();
  }

  private async run(job: Job): Promise<void> {
    job.status = 'running';
    job.startedAt = Date.now();
    // the documented progress fields, in their one type (resampling was missing from this event)
    const loading: InpaintProgress = { step: 0, T: jobSampling(job, this.info).steps, t: job.T, stage: 'loading', resampling: 0, elapsed: 0, eta: null };
    this.emit(job, 'progress', { ...loading });
    if (this.opts.remote) return this.runRemote(job, this.opts.remote);
    const w = this.workerFor(job.workerKey);
    let info: ModelInfo;
    try {
      info = await w.start();
    } catch (e) {
      this.jobEnded(job);
      this.finishError(job, `the model could not be loaded: ${(e as Error).message}`, false);
      return;
    }
    if (!this.running.has(job)) return;
    if (job.cancelRequested || !w.worker || this.closed) {
      this.jobEnded(job);
      this.finishError(job, job.cancelRequested || this.closed ? 'cancelled' : 'the model worker stopped', job.cancelRequested || this.closed);
      return;
    }
    job.T = info.T;
    w.job = job;
    w.lastUsed = Date.now();
    const req: RunRequest = {
      type: 'run',
      jobId: job.id,
      image: job.image!,
      mask: job.mask!,
      maxPixels: this.opts.maxPixels ?? 50e6,
      seed: job.seed,
      sampler: job.sampler,
      stepRule: job.stepRule,
      steps: job.steps,
      solver: job.solver,
      spacing: job.spacing,
      previewEvery: Math.max(1, Math.round(jobSampling(job, info).steps / 25)),
      cancel: job.cancel,
    };
    job.image = undefined;
    job.mask = undefined;
    w.worker.postMessage(req);
  }

  /** A job on the queue workers: progress from the worker, the PNG back through Redis (remote.ts). */
  private runRemote(job: Job, remote: RemoteRunner): void {
    const options: JobOptions = { seed: job.seed, sampler: job.sampler, T: job.T, maxMegapixels: (this.opts.maxPixels ?? 50e6) / 1e6 };
    for (const [k, v] of Object.entries({ stepRule: job.stepRule, steps: job.steps, solver: job.solver, spacing: job.spacing, size: this.opts.size, executor: this.opts.executor })) {
      if (v !== undefined) (options as Record<string, unknown>)[k] = v;
    }
    const image = job.image!;
    const mask = job.mask!;
    job.image = undefined;
    job.mask = undefined;
    remote.run(job.id, image, mask, options, {
      progress: (p) => {
        job.steps = p.T;
        const progress = progressOf({ index: p.step - 1, t: p.t, stage: p.stage, k: p.resampling }, p.T, (Date.now() - (job.startedAt ?? Date.now())) / 1000);
        job.chain = job.chain.then(() => this.emit(job, 'progress', { ...progress }));
      },
      done: (r) => {
        this.jobEnded(job);
        job.chain = job.chain.then(() => {
          if (job.status !== 'running') return;
          job.result = r.png;
          job.status = 'done';
          job.finishedAt = Date.now();
          this.prune();
          this.emit(job, 'done', { id: job.id, width: r.width, height: r.height, holePixels: r.holePixels, seconds: r.seconds, result: `/api/jobs/${job.id}/result` });
        });
      },
      error: (message) => {
        this.jobEnded(job);
        this.finishError(job, job.cancelRequested ? 'cancelled' : message, job.cancelRequested);
      },
    });
  }

  /** Cancel a queued or running job; a finished one keeps its state, and a done one is
   * forgotten (its result freed). */
  cancel(id: string): Job {
    const job = this.get(id);
    if (job.status === 'queued') {
      const i = this.queue.indexOf(job);
      if (i >= 0) {
        this.queue.splice(i, 1);
        this.announcePositions();
      }
      this.finishError(job, 'cancelled', true);
    } else if (job.status === 'running') {
      // checked by the worker before decoding and after every step (a worker is never terminated mid-step: see stop())
      job.cancelRequested = true;
      Atomics.store(new Int32Array(job.cancel), 0, 1);
      this.opts.remote?.cancel(job.id);
    } else if (job.status === 'done') {
      this.jobs.delete(id);
    }
    return job;
  }

  subscribe(job: Job, fn: JobListener): () => void {
    // replay the current state in event order, so a late client sees what an early one saw last
    for (const ev of ['queued', 'progress', 'preview', 'done', 'error'] as JobEventName[]) {
      const d = job.last[ev];
      if (!d) continue;
      if (ev === 'queued' && job.status !== 'queued') continue;
      fn(ev, d);
    }
    job.listeners.add(fn);
    return () => job.listeners.delete(fn);
  }

  emit(job: Job, event: JobEventName, data: Record<string, unknown>): void {
    job.last[event] = data;
    for (const fn of job.listeners) fn(event, data);
  }

  finishError(job: Job, message: string, cancelled: boolean): void {
    job.image = undefined;
    job.mask = undefined;
    job.chain = job.chain.then(() => {
      if (job.status === 'done' || job.status === 'error' || job.status === 'cancelled') return;
      job.status = cancelled ? 'cancelled' : 'error';
      job.finishedAt = Date.now();
      this.emit(job, 'error', { message, cancelled });
    });
  }

  onWorkerMessage(w: ModelWorker, m: FromWorker): void {
    if (m.type === 'ready') return;
    const job = this.jobs.get(m.jobId) ?? (w.job?.id === m.jobId ? w.job : undefined);
    if (m.type === 'done' || m.type === 'error') {
      // the worker is free again, whatever became of the job
      if (w.job && w.job.id === m.jobId) {
        const ended = w.job;
        w.job = null;
        w.lastUsed = Date.now();
        w.wakeIdle();
        this.jobEnded(ended);
      }
    }
    if (!job) return;
    const elapsed = (Date.now() - (job.startedAt ?? Date.now())) / 1000;
    switch (m.type) {
      case 'progress': {
        // the progress' T is the run's step count
        job.steps = m.T;
        const progress = progressOf(m, m.T, elapsed);
        job.chain = job.chain.then(() => this.emit(job, 'progress', { ...progress }));
        break;
      }
      case 'preview': {
        const pngs = Promise.all([rawToPngDataUrl(m.texture, m.size, m.size, 3), rawToPngDataUrl(m.structure, m.size, m.size, 1)]);
        job.chain = job.chain.then(async () => {
          const [texture, structure] = await pngs;
          if (job.status !== 'running') return;
          this.emit(job, 'preview', { step: m.index + 1, T: m.T, t: m.t, size: m.size, structureState: m.structureState, texture, structure });
        });
        break;
      }
      case 'done': {
        const png = Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength);
        job.chain = job.chain.then(() => {
          if (job.status !== 'running') return;
          job.result = png;
          job.status = 'done';
          job.finishedAt = Date.now();
          this.prune();
          this.emit(job, 'done', {
            id: job.id,
            width: m.width,
            height: m.height,
            holePixels: m.holePixels,
            seconds: m.seconds,
            result: `/api/jobs/${job.id}/result`,
          });
        });
        break;
      }
      case 'error':
        this.finishError(job, m.message, m.cancelled);
        break;
    }
  }

  /** Forget the oldest finished jobs beyond the configured number and result bytes. */
  private prune(): void {
    const keep = this.opts.keepFinished ?? 50;
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== undefined).sort((a, b) => a.finishedAt! - b.finishedAt!);
    const drop = finished.splice(0, Math.max(0, finished.length - keep));
    let bytes = finished.reduce((n, j) => n + (j.result?.length ?? 0), 0);
    const maxBytes = this.opts.maxResultBytes ?? 512e6;
    while (bytes > maxBytes && finished.length > 1) {
      const j = finished.shift()!;
      bytes -= j.result?.length ?? 0;
      drop.push(j);
    }
    for (const j of drop) this.jobs.delete(j.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.jobs.values()) {
      for (const fn of j.listeners) fn('error', { message: 'the server is shutting down', cancelled: true });
      j.listeners.clear();
    }
    await this.opts.remote?.close();
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(workers.map((w) => w.stop()));
  }
}
