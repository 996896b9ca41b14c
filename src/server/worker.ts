/**
 * Runs inpainting jobs off the main thread: the sampler is CPU-bound and keeps its thread busy for
 * whole steps, which would otherwise stall the server's SSE streams and its cancel requests. The
 * uploads are decoded here and the result is encoded here too: the main thread only sees bytes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { inpaint, loadInpaintModel, samplerOf, samplingOf } from '../inpaint/index.js';
import { encodeImage, readImageBuffer } from '../image/io.js';
import type { FromWorker, RunRequest, WorkerInit } from './protocol.js';
import type { SamplerVariant } from '../sampler/index.js';

class Cancelled extends Error {}

const init = workerData as WorkerInit;
const port = parentPort!;
const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function toByte(v: number): number {
  return v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
}

function previewPixels(y: Float32Array, x: Float32Array | null): { texture: Uint8Array; structure: Uint8Array; size: number } {
  // the window size is the model's (or the server's) choice: read it off the state [3, s, s]
  const size = Math.round(Math.sqrt(y.length / 3));
  const n = size * size;
  const texture = new Uint8Array(3 * n);
  const structure = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = y[i]!, g = y[n + i]!, b = y[2 * n + i]!;
    texture[3 * i] = toByte(r);
    texture[3 * i + 1] = toByte(g);
    texture[3 * i + 2] = toByte(b);
    structure[i] = toByte(x ? x[i]! : (r + g + b) / 3);
  }
  return { texture, structure, size };
}

async function run(req: RunRequest): Promise<void> {
  const flag = new Int32Array(req.cancel);
  let T = init.T ?? 0;
  // steps done: onState follows every sampler step (grid levels need not be T − index)
  let done = 0;
  const stopIfCancelled = () => {
    if (Atomics.load(flag, 0) !== 0) throw new Cancelled('cancelled');
  };
  try {
    stopIfCancelled();
    const maxMegapixels = req.maxPixels / 1e6;
    const image = await readImageBuffer(req.image, 'image', { maxMegapixels });
    const mask = await readImageBuffer(req.mask, 'mask', { maxMegapixels });
    stopIfCancelled();
    const res = await inpaint(image, mask, {
      checkpoints: init.checkpoints,
      T: init.T,
      size: init.size,
      executor: init.executor,
      seed: req.seed,
      sampler: req.sampler,
      stepRule: req.stepRule,
      steps: req.steps,
      solver: req.solver,
      spacing: req.spacing,
      maxMegapixels,
      warn: () => {},
      // the sampler has no abort signal; an exception from its step callback unwinds the run
      onProgress: (p) => {
        T = p.T;
        send({ type: 'progress', jobId: req.jobId, index: p.step - 1, t: p.t, T: p.T, stage: p.stage, k: p.resampling });
        stopIfCancelled();
      },
      onState: (t, y, x) => {
        const index = done++;
        const last = index + 1 === T;
        if (!last && (index + 1) % req.previewEvery !== 0) return;
        const { texture, structure, size } = previewPixels(y, x);
        send(
          { type: 'preview', jobId: req.jobId, index, t, T, size, texture, structure, structureState: x !== null },
          [texture.buffer as ArrayBuffer, structure.buffer as ArrayBuffer],
        );
      },
    });
    // a copy with its own ArrayBuffer, so handing it over cannot detach a pooled buffer
    const png = new Uint8Array(await encodeImage(res.image, 'png'));
    send({ type: 'done', jobId: req.jobId, png, width: res.image.width, height: res.image.height, holePixels: res.holePixels, seconds: res.seconds }, [png.buffer as ArrayBuffer]);
  } catch (e) {
    const cancelled = e instanceof Cancelled || Atomics.load(flag, 0) !== 0;
    send({ type: 'error', jobId: req.jobId, message: cancelled ? 'cancelled' : (e as Error).message, cancelled });
  }
}

// load the networks up front so a bad checkpoint is reported before any job is accepted
const { model } = await loadInpaintModel({ checkpoints: init.checkpoints, T: init.T, executor: init.executor });
// the sampler default as inpaint() resolves it, so a job without one runs what the CLI runs
const sampler: SamplerVariant = samplerOf(undefined, model);
send({ type: 'ready', T: model.T, fixedT: typeof model.meta.T === 'number', sampler, ...samplingOf({}, model.meta, model.T) });

let chain = Promise.resolve();
port.on('message', (m: RunRequest) => {
  if (m.type === 'run') chain = chain.then(() => run(m));
});
