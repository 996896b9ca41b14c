/**
 * Job queue: one worker thread per model (checkpoints + T), running one job at a time; later jobs
 * wait in that model's queue and are told their place. Every job keeps the latest event of each
 * kind so a client that connects late (or reconnects) is brought up to date at once.
 */
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import type { RasterImage } from '../image/io.js';
import type { SamplerVariant, StepRule } from '../sampler/index.js';
import type { FromWorker, RunRequest, WorkerInit } from './protocol.js';
import { encodePng, rawToPngDataUrl } from './images.js';
import { HttpError } from './errors.js';
import type { ExecutorName } from '../exec/registry.js';

export type JobEventName = 'queued' | 'progress' | 'preview' | 'done' | 'error';
export type JobListener = (event: JobEventName, data: Record<string, unknown>) => void;
export type JobStatus = 'queued' | 'running' | 'done' | 'error' | 'cancelled';

export interface Job {
  id: string;
  status: JobStatus;
  T: number;
  seed: number;
  sampler: SamplerVariant;
  stepRule?: StepRule;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  result?: Buffer;
  width: number;
  height: number;
  /** inputs, dropped once the job has started or ended */
  image?: RasterImage;
  mask?: RasterImage;
  cancel: SharedArrayBuffer;
  cancelRequested: boolean;
  listeners: Set<JobListener>;
  last: Partial<Record<JobEventName, Record<string, unknown>>>;
  /** serialises the job's events (previews and the result are encoded asynchronously) */
  chain: Promise<void>;
}

export interface JobManagerOptions {
  checkpoints?: string[];
  /** default number of steps (undefined: the model's own T) */
  T?: number;
  size?: number;
  executor?: ExecutorName;
  /** finished jobs (and their results) kept for clients to fetch */
  keepFinished?: number;
  /** a worker for a non-default step count is stopped after being idle this long */
  idleWorkerMs?: number;
}

export interface ModelInfo {
  T: number;
  fixedT: boolean;
  stepRule: StepRule;
}

class ModelRunner {
  worker: Worker | null = null;
  ready: Promise<ModelInfo> | null = null;
  queue: Job[] = [];
  running: Job | null = null;
  /** resolved whenever the running job ends */
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly T: number | undefined,
    private readonly mgr: JobManager,
  ) {}

  start(): Promise<ModelInfo> {
    if (this.ready) return this.ready;
    const init: WorkerInit = { checkpoints: this.mgr.opts.checkpoints, T: this.T, size: this.mgr.opts.size, executor: this.mgr.opts.executor };
    const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), { workerData: init });
    this.worker = worker;
    this.ready = new Promise<ModelInfo>((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') resolve({ T: m.T, fixedT: m.fixedT, stepRule: m.stepRule });
        else this.mgr.onWorkerMessage(this, m);
      });
      worker.on('error', (e: Error) => {
        reject(e);
        if (this.worker === worker) this.crashed(`the model worker failed: ${e.message}`);
      });
      worker.on('exit', (code) => {
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
    const job = this.running;
    if (job) {
      this.running = null;
      this.mgr.finishError(job, job.cancelRequested ? 'cancelled' : message, job.cancelRequested);
      this.wakeIdle();
    }
    this.pump();
  }

  private wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Stop the worker. A running job is cancelled first and given time to reach its next step:
   * terminating a worker inside an onnxruntime call aborts the whole process.
   */
  async stop(graceMs = 15_000): Promise<void> {
    const job = this.running;
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
    if (this.running) w.unref();
    else await w.terminate();
  }

  pump(): void {
    if (this.mgr.closed || this.running || this.queue.length === 0) return;
    const job = this.queue.shift()!;
    this.running = job;
    this.mgr.announcePositions(this);
    void this.run(job);
  }

  private async run(job: Job): Promise<void> {
    job.status = 'running';
    job.startedAt = Date.now();
    this.mgr.emit(job, 'progress', { step: 0, T: job.T, t: job.T, stage: 'loading', elapsed: 0, eta: null });
    let info: ModelInfo;
    try {
      info = await this.start();
    } catch (e) {
      if (this.running === job) {
        this.running = null;
        this.mgr.finishError(job, `the model could not be loaded: ${(e as Error).message}`, false);
        this.pump();
      }
      return;
    }
    if (this.running !== job || !this.worker) return;
    job.T = info.T;
    const req: RunRequest = {
      type: 'run',
      jobId: job.id,
      image: job.image!,
      mask: job.mask!,
      seed: job.seed,
      sampler: job.sampler,
      stepRule: job.stepRule,
      previewEvery: Math.max(1, Math.round(info.T / 25)),
      cancel: job.cancel,
    };
    job.image = undefined;
    job.mask = undefined;
    this.worker.postMessage(req);
  }

  /** the worker is done with `job` (result, error or cancellation) */
  release(job: Job): void {
    if (this.running === job) {
      this.running = null;
      this.wakeIdle();
      this.pump();
    }
    // a model instance for a non-default step count holds a copy of the weights: free it when idle
    if (!this.isDefault && !this.running && this.queue.length === 0) {
      setTimeout(() => {
        if (!this.running && this.queue.length === 0) void this.stop();
      }, this.mgr.opts.idleWorkerMs ?? 60_000).unref();
    }
  }

  get isDefault(): boolean {
    return this.T === this.mgr.opts.T;
  }
}

export class JobManager {
  readonly jobs = new Map<string, Job>();
  private readonly runners = new Map<string, ModelRunner>();
  private defaultInfo: ModelInfo | null = null;
  closed = false;

  constructor(readonly opts: JobManagerOptions) {}

  /** Loads the default model (so a bad checkpoint fails at startup) and returns its T. */
  async start(): Promise<ModelInfo> {
    this.defaultInfo = await this.runner(this.opts.T).start();
    return this.defaultInfo;
  }

  get info(): ModelInfo {
    if (!this.defaultInfo) throw new Error('JobManager.start() has not finished');
    return this.defaultInfo;
  }

  private runner(T: number | undefined): ModelRunner {
    const key = T === undefined ? 'default' : String(T);
    let r = this.runners.get(key);
    if (!r) {
      r = new ModelRunner(T, this);
      this.runners.set(key, r);
    }
    return r;
  }

  submit(input: { image: RasterImage; mask: RasterImage; seed: number; sampler: SamplerVariant; stepRule?: StepRule; steps?: number }): Job {
    const info = this.info;
    const steps = input.steps ?? info.T;
    if (steps !== info.T && info.fixedT) throw new HttpError(400, `steps must be ${info.T} for this model (its schedule is fixed by model.json)`);
    // the default model's runner serves its own T; other step counts get their own model instance
    const runner = steps === info.T ? this.runner(this.opts.T) : this.runner(steps);
    this.prune();
    const job: Job = {
      id: randomBytes(9).toString('base64url'),
      status: 'queued',
      T: steps,
      seed: input.seed,
      sampler: input.sampler,
      stepRule: input.stepRule,
      createdAt: Date.now(),
      width: input.image.width,
      height: input.image.height,
      image: input.image,
      mask: input.mask,
      cancel: new SharedArrayBuffer(4),
      cancelRequested: false,
      listeners: new Set(),
      last: {},
      chain: Promise.resolve(),
    };
    this.jobs.set(job.id, job);
    runner.queue.push(job);
    this.announcePositions(runner);
    runner.pump();
    return job;
  }

  get(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, `no job with id "${id}" (unknown, or finished long ago and forgotten)`);
    return job;
  }

  /** Place in the queue: 1 = runs next. null when not queued. */
  position(job: Job): { position: number; ahead: number } | null {
    for (const r of this.runners.values()) {
      const i = r.queue.indexOf(job);
      if (i >= 0) return { position: i + 1, ahead: i + (r.running ? 1 : 0) };
    }
    return null;
  }

  announcePositions(runner: ModelRunner): void {
    runner.queue.forEach((job, i) => this.emit(job, 'queued', { position: i + 1, ahead: i + (runner.running ? 1 : 0), queueLength: runner.queue.length }));
  }

  /** Cancel a queued or running job; a finished one keeps its state, and a done one is
   * forgotten (its result freed). */
  cancel(id: string): Job {
    const job = this.get(id);
    if (job.status === 'queued') {
      for (const r of this.runners.values()) {
        const i = r.queue.indexOf(job);
        if (i >= 0) {
          r.queue.splice(i, 1);
          this.announcePositions(r);
        }
      }
      this.finishError(job, 'cancelled', true);
    } else if (job.status === 'running') {
      // checked by the worker after every step (a worker is never terminated mid-step: see stop())
      job.cancelRequested = true;
      Atomics.store(new Int32Array(job.cancel), 0, 1);
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
    job.chain = job.chain.then(() => {
      if (job.status === 'done' || job.status === 'error' || job.status === 'cancelled') return;
      job.status = cancelled ? 'cancelled' : 'error';
      job.finishedAt = Date.now();
      job.image = undefined;
      job.mask = undefined;
      this.emit(job, 'error', { message, cancelled });
    });
  }

  onWorkerMessage(runner: ModelRunner, m: FromWorker): void {
    if (m.type === 'ready') return;
    const job = this.jobs.get(m.jobId);
    if (!job) {
      // forgotten while running (cannot happen through cancel, which keeps running jobs)
      if (m.type === 'done' || m.type === 'error') runner.running = null, runner.pump();
      return;
    }
    const elapsed = (Date.now() - (job.startedAt ?? Date.now())) / 1000;
    switch (m.type) {
      case 'progress': {
        const step = m.index + 1;
        job.T = m.T;
        const eta = step > 0 ? (elapsed / step) * (m.T - step) : null;
        job.chain = job.chain.then(() => this.emit(job, 'progress', { step, T: m.T, t: m.t, stage: m.stage, resampling: m.k, elapsed, eta }));
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
        const png = encodePng(m.image);
        png.catch(() => {});
        runner.release(job);
        job.chain = job.chain.then(async () => {
          try {
            job.result = await png;
          } catch (e) {
            this.finishError(job, `the result could not be encoded: ${(e as Error).message}`, false);
            return;
          }
          job.status = 'done';
          job.finishedAt = Date.now();
          this.emit(job, 'done', {
            id: job.id,
            width: m.image.width,
            height: m.image.height,
            holePixels: m.holePixels,
            seconds: m.seconds,
            result: `/api/jobs/${job.id}/result`,
          });
        });
        break;
      }
      case 'error':
        runner.release(job);
        this.finishError(job, m.message, m.cancelled);
        break;
    }
  }

  /** Forget the oldest finished jobs beyond the configured number. */
  private prune(): void {
    const keep = this.opts.keepFinished ?? 50;
    const finished = [...this.jobs.values()].filter((j) => j.finishedAt !== undefined).sort((a, b) => a.finishedAt! - b.finishedAt!);
    for (const j of finished.slice(0, Math.max(0, finished.length - keep))) this.jobs.delete(j.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const j of this.jobs.values()) {
      for (const fn of j.listeners) fn('error', { message: 'the server is shutting down', cancelled: true });
      j.listeners.clear();
    }
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
  }
}
