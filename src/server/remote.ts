/**
 * `serve --redis`: the server's jobs run on queue workers (`strdiffusion worker`) instead of its
 * own model threads. The server keeps its API, queue limits and events; a job becomes a one-item
 * batch on the Redis queue, its progress comes from the worker, its result PNG back through Redis.
 * No previews (the states stay on the worker). Cancelling a job that a worker has started stops
 * the server waiting for it; the worker finishes it and its result is dropped.
 */
import { checkpointDirs, mergeModelMeta, modelFiles } from '../model/checkpoints.js';
import { samplingOf } from '../inpaint/sampling.js';
import { checkJobOptions, modelIdentity, type JobOptions, type JobProgress, type ModelIdentity } from '../queue/jobs.js';
import { submitBatch, type ItemResult } from '../queue/submit.js';
import type { SamplerVariant } from '../sampler/index.js';

export interface RemoteQueue {
  redis: string;
  queue: string;
  maxJobBytes: number;
  /** jobs sent to the workers at once (default 8) */
  maxRunning?: number;
}

export interface RemoteCallbacks {
  progress(p: JobProgress): void;
  done(r: ItemResult): void;
  error(message: string): void;
}

export class RemoteRunner {
  private model: ModelIdentity | null = null;
  private readonly dirs: string[];
  private readonly running = new Map<string, { stop: AbortController; ended: Promise<void> }>();

  constructor(
    readonly q: RemoteQueue,
    checkpoints: string | string[] | undefined,
    private readonly T: number | undefined,
  ) {
    this.dirs = checkpointDirs(checkpoints);
  }

  get maxRunning(): number {
    return this.q.maxRunning ?? 8;
  }

  /** The model's settings from its folder (no network is loaded here: the workers hold it). */
  async start(): Promise<{ T: number; fixedT: boolean; sampler: SamplerVariant; solver: ReturnType<typeof samplingOf>['solver']; steps: number; spacing: ReturnType<typeof samplingOf>['spacing'] }> {
    checkJobOptions(this.dirs, { T: this.T });
    this.model = modelIdentity(this.dirs);
    const meta = mergeModelMeta(this.dirs, modelFiles(this.dirs));
    const T = this.T ?? meta.T!;
    return { T, fixedT: meta.T !== undefined, sampler: (meta.sampler as SamplerVariant | undefined) ?? 'official', ...samplingOf({}, meta, T) };
  }

  run(id: string, image: Buffer, mask: Buffer, options: JobOptions, cb: RemoteCallbacks): void {
    const stop = new AbortController();
    let settled = false;
    const ended = submitBatch({
      ...this.q,
      items: [{ name: `upload ${id}`, image, mask }],
      options,
      model: this.model!,
      signal: stop.signal,
      onItemProgress: (_i, p) => cb.progress(p),
      onResult: (_i, _item, r) => {
        settled = true;
        cb.done(r);
      },
      onFailed: (_i, _item, message) => {
        settled = true;
        cb.error(message);
      },
      warn: () => {},
    })
      .catch((e: Error) => {
        if (!settled) cb.error(stop.signal.aborted ? 'cancelled' : `the queue failed: ${e.message}`);
      })
      .finally(() => this.running.delete(id));
    this.running.set(id, { stop, ended: ended.then(() => {}) });
  }

  cancel(id: string): void {
    this.running.get(id)?.stop.abort();
  }

  /** stops waiting for every job (those not started are taken out of the queue) */
  async close(): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) r.stop.abort();
    await Promise.all(all.map((r) => r.ended));
  }
}
