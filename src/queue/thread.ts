/**
 * The network side of a queue worker, in a worker thread: onnxruntime's run() holds its thread
 * for a whole forward, and the BullMQ worker's main thread must stay free to renew job locks and
 * answer stalled-job checks. The model is loaded once, at start; jobs run one after the other.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { inpaint, loadInpaintModel } from '../inpaint/index.js';
import { encodeImage, readImageBuffer } from '../image/io.js';
import { isStrDiffusionError } from '../util/errors.js';
import type { JobOptions, JobProgress } from './jobs.js';

export interface ThreadInit {
  checkpoints: string[];
  T?: number;
}

export interface ThreadRun {
  type: 'run';
  id: string;
  /** the image's file name, for messages */
  name: string;
  image: Uint8Array;
  mask: Uint8Array;
  options: JobOptions;
}

export type FromThread =
  | { type: 'ready'; T: number }
  | { type: 'progress'; id: string; progress: JobProgress }
  | { type: 'done'; id: string; png: Uint8Array; width: number; height: number; holePixels: number; seconds: number }
  /** `input`: the job's own input or options are at fault (running it again cannot help) */
  | { type: 'error'; id: string; message: string; input: boolean };

const init = workerData as ThreadInit;
const port = parentPort!;
const send = (m: FromThread, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

async function run(req: ThreadRun): Promise<void> {
  try {
    const maxMegapixels = req.options.maxMegapixels;
    const image = await readImageBuffer(req.image, `image ${req.name}`, { maxMegapixels });
    const mask = await readImageBuffer(req.mask, `mask of ${req.name}`, { maxMegapixels });
    const res = await inpaint(image, mask, {
      ...req.options,
      // the loaded model's own T named explicitly is the same model: keep its cache key (no second copy)
      T: req.options.T === model.T ? init.T : req.options.T,
      checkpoints: init.checkpoints,
      warn: () => {},
      onProgress: (p) => send({ type: 'progress', id: req.id, progress: { step: p.step, T: p.T, t: p.t, stage: p.stage, resampling: p.resampling } }),
    });
    const png = new Uint8Array(await encodeImage(res.image, 'png'));
    send({ type: 'done', id: req.id, png, width: res.image.width, height: res.image.height, holePixels: res.holePixels, seconds: res.seconds }, [png.buffer as ArrayBuffer]);
  } catch (e) {
    send({ type: 'error', id: req.id, message: (e as Error).message, input: isStrDiffusionError(e, 'BAD_INPUT') || isStrDiffusionError(e, 'BAD_OPTION') });
  }
}

// load the networks up front: a worker with a broken model fails at start, before taking any job
const { model } = await loadInpaintModel({ checkpoints: init.checkpoints, T: init.T });
send({ type: 'ready', T: model.T });

let chain = Promise.resolve();
port.on('message', (m: ThreadRun) => {
  if (m.type === 'run') chain = chain.then(() => run(m));
});
