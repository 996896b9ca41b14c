/**
 * The StrDiffusion model as an evaluation method whose pairs run on queue workers: `start`
 * submits every pair as one batch (each with its pair's seed, so the numbers are those of the
 * in-process run), `run` waits for the pair's result. The time per image is the worker's.
 */
import { encodeImage, readImageBuffer, type RasterImage } from '../image/io.js';
import { checkpointDirs } from '../model/checkpoints.js';
import { checkJobOptions, jobOptionsOf, modelIdentity, type ModelIdentity } from '../queue/jobs.js';
import { submitBatch } from '../queue/submit.js';
import { holesToMaskRaster, type Method, type MethodInput, type ModelMethodOptions } from './methods.js';

export interface QueueTarget {
  redis: string;
  queue: string;
  maxJobBytes: number;
}

interface Slot {
  promise: Promise<{ png: Buffer; seconds: number }>;
  resolve: (r: { png: Buffer; seconds: number }) => void;
  reject: (e: Error) => void;
  seconds?: number;
}

export function queueModelMethod(q: QueueTarget, o: ModelMethodOptions, name = 'strdiffusion'): Method {
  // queue workers fill holes for real (inpaint()): the diagnostic oracle runs in-process only
  if (o.structure === 'oracle') throw new Error('--structure oracle is a diagnostic that runs in-process only (queue workers fill holes for real and refuse it): drop --redis');
  const dirs = checkpointDirs(o.checkpoints);
  const options = jobOptionsOf({ ...o, structure: o.structure }); // a user guide here (checked above)
  let model: ModelIdentity;
  let slots: Slot[] = [];
  const stop = new AbortController();
  return {
    name,
    label: `StrDiffusion on queue workers (${o.sampler ?? 'model default'} sampler${o.solver ?? o.stepRule ? ', ' + (o.solver ?? o.stepRule) : ''}${o.steps ? ', ' + o.steps + ' steps' : ''})`,
    prepare: async () => {
      checkJobOptions(dirs, options);
      model = modelIdentity(dirs);
    },
    start: (inputs: MethodInput[]) => {
      slots = inputs.map(() => {
        const s = {} as Slot;
        s.promise = new Promise((resolve, reject) => Object.assign(s, { resolve, reject }));
        s.promise.catch(() => {});
        return s;
      });
      void (async () => {
        const items = [];
        for (const [i, x] of inputs.entries()) {
          items.push({ name: `pair ${i}`, image: await encodeImage(x.image, 'png'), mask: await encodeImage(holesToMaskRaster(x.holes, x.image.width, x.image.height), 'png'), options: { seed: x.seed } });
        }
        await submitBatch({
          redis: q.redis,
          queue: q.queue,
          maxJobBytes: q.maxJobBytes,
          items,
          options,
          model,
          signal: stop.signal,
          onResult: (i, _item, r) => slots[i]!.resolve({ png: r.png, seconds: r.seconds }),
          onFailed: (i, _item, message) => slots[i]!.reject(new Error(message)),
          warn: () => {},
        });
      })().catch((e: Error) => {
        for (const s of slots) s.reject(e);
      });
    },
    run: async (_image, _holes, ctx): Promise<RasterImage> => {
      const slot = slots[ctx.index ?? -1];
      if (!slot) throw new Error('internal: the queue method ran a pair it was not started with');
      const r = await slot.promise;
      slot.seconds = r.seconds;
      return readImageBuffer(r.png, 'result');
    },
    secondsOf: (i) => slots[i]?.seconds,
    dispose: () => stop.abort(),
    info: () => ({ checkpoints: o.checkpoints ?? '(bundled default)', model: model?.name, modelHash: model?.hash, T: o.T ?? null, sampler: o.sampler ?? '(model default)', solver: o.solver ?? o.stepRule ?? '(model default)', steps: o.steps ?? '(model default)', size: o.size ?? 256, queue: q.queue }),
  };
}
