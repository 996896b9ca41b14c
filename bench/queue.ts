/**
 * `npm run bench -- --queue [--images 8] [--width 64] [--height 48] [--workers 1,2,3] [--threads 1]
 *  [--json]`
 *
 * Batch inpainting on BullMQ workers (issue 24) against the in-process run, with the bundled model
 * and its defaults: a real redis-server on a free loopback port, `strdiffusion worker` processes
 * (one model thread each, --threads intra-op threads). Reports images per minute in-process and
 * with 1, 2, 3 workers (the model is loaded before the clock starts in every case), and the
 * queue's overhead per job: seconds per image on one worker minus in-process, both with the same
 * threads. On a machine with C cores expect the rate to grow up to C workers and stay flat after.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeImage } from '../src/image/io.js';
import { loadModel } from '../src/inpaint/pipeline.js';
import { checkpointDirs } from '../src/model/checkpoints.js';
import { modelIdentity } from '../src/queue/jobs.js';
import { submitBatch } from '../src/queue/submit.js';
import { background, startRedis } from '../test/redis-helpers.js';

function arg(args: string[], name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
}

export async function main(args: string[]): Promise<void> {
  const n = Number(arg(args, '--images', '8'));
  const W = Number(arg(args, '--width', '64'));
  const H = Number(arg(args, '--height', '48'));
  const counts = arg(args, '--workers', '1,2,3').split(',').map(Number);
  const threads = arg(args, '--threads', '1');
  const dir = mkdtempSync(join(tmpdir(), 'bench-queue-'));
  const items: { name: string; image: string; mask: string }[] = [];
  mkdirSync(join(dir, 'in'));
  for (let k = 0; k < n; k++) {
    const d = new Uint8Array(W * H * 3);
    const m = new Uint8Array(W * H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < 3; c++) d[(y * W + x) * 3 + c] = Math.round(127 + 100 * Math.sin((x + 13 * c + k) / 9) * Math.cos(y / 7));
        m[y * W + x] = Math.abs(x - W / 2) < W / 8 && Math.abs(y - H / 2) < H / 6 ? 255 : 0;
      }
    }
    const image = join(dir, 'in', `img${k}.png`);
    const mask = join(dir, 'in', `img${k}_mask.png`);
    await writeImage(image, { width: W, height: H, channels: 3, bitDepth: 8, data: d });
    await writeImage(mask, { width: W, height: H, channels: 1, bitDepth: 8, data: m });
    items.push({ name: `img${k}.png`, image, mask });
  }
  const rows: { setting: string; seconds: number; perImage: number; perMinute: number }[] = [];
  const row = (setting: string, seconds: number) => {
    const r = { setting, seconds, perImage: seconds / n, perMinute: (n / seconds) * 60 };
    rows.push(r);
    if (!args.includes('--json')) console.log(`${setting.padEnd(22)} ${seconds.toFixed(1).padStart(7)} s  ${r.perImage.toFixed(2).padStart(6)} s/image  ${r.perMinute.toFixed(1).padStart(6)} images/min`);
  };
  console.error(`queue bench: ${n} images ${W}x${H}, bundled model, ${threads} thread(s) per run; ${availableParallelism()} cores, load ${loadavg()[0]!.toFixed(2)}`);

  // in-process, the model loaded first, with the workers' thread count
  process.env.STRDIFFUSION_THREADS = threads;
  const model = await loadModel();
  await model.inpaint(items[0]!.image, items[0]!.mask, { seed: 0 });
  let t = performance.now();
  for (const it of items) await model.inpaint(it.image, it.mask, { seed: 0 });
  row('in-process', (performance.now() - t) / 1000);
  await model.dispose();

  let overhead: number | null = null;
  const redis = await startRedis();
  try {
    const id = modelIdentity(checkpointDirs());
    for (const [i, k] of counts.entries()) {
      const queue = `bench${i}`;
      const ws = Array.from({ length: k }, () => background(['worker', '--redis', redis.url, '--queue', queue, '--threads', threads]));
      await Promise.all(ws.map((w) => w.line(/^worker .* ready/)));
      // one job first, so every worker has run once before the clock starts
      let filling = 0;
      const submit = (its: typeof items) => submitBatch({ redis: redis.url, queue, items: its, options: { seed: 0 }, model: id, pollMs: 500, onResult: (_i, _it, r) => void (filling += r.seconds) });
      await submit(items.slice(0, Math.min(k, n)));
      filling = 0;
      t = performance.now();
      const out = await submit(items);
      const seconds = (performance.now() - t) / 1000;
      row(`${k} worker${k > 1 ? 's' : ''}`, seconds);
      // on one worker the jobs run one after the other: what the wall clock has beyond the fills is the queue's
      if (k === 1) overhead = (seconds - filling) / n;
      if (out.failed.length) throw new Error(`${out.failed.length} jobs failed: ${out.failed[0]!.message}`);
      for (const w of ws) w.kill('SIGTERM');
      await Promise.all(ws.map((w) => w.exited));
    }
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const local = rows[0]!;
  const one = rows.find((r) => r.setting === '1 worker');
  if (args.includes('--json')) console.log(JSON.stringify({ images: n, width: W, height: H, threads: Number(threads), cores: availableParallelism(), rows, overheadPerJob: overhead }, null, 2));
  else {
    if (one) console.log(`1 worker vs in-process: ${(one.perImage - local.perImage).toFixed(2)} s more per image (${((one.perImage / local.perImage - 1) * 100).toFixed(0)} %)`);
    if (overhead !== null) console.log(`queue overhead per job on 1 worker (wall clock minus the worker's fill time: transfer, PNG decode/encode, Redis round trips): ${overhead.toFixed(3)} s`);
    for (const r of rows.slice(1)) console.log(`${r.setting}: ${(r.perMinute / local.perMinute).toFixed(2)}x the in-process rate`);
  }
}
