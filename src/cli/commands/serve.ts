/**
 * `strdiffusion serve`: the local web app (paint a mask, watch the sampler fill it) and its
 * JSON/SSE API; see src/server/index.ts for the routes.
 */
import type { Command } from 'commander';
import { startServer } from '../../server/index.js';
import { optionalNumber, parseNumberOption } from '../args.js';
import { EXECUTOR_NAMES, parseExecutor } from '../../exec/registry.js';
import { DEFAULT_MAX_MEGAPIXELS, parseMaxMegapixels } from '../../image/io.js';
import { DEFAULT_MAX_QUEUE, DEFAULT_MAX_WORKERS } from '../../server/jobs.js';
import { addQueueOptions, parseQueueOptions, type QueueFlags } from '../queue-options.js';
import { redactRedisUrl } from '../../queue/connection.js';

interface Opts extends QueueFlags {
  port: string;
  host: string;
  checkpoints?: string[];
  T?: string;
  size?: string;
  executor?: string;
  maxUploadMb: string;
  maxMegapixels: string;
  maxQueue: string;
  maxWorkers: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .description('local web app: open an image, paint the hole, watch StrDiffusion fill it')
    .option('--port <n>', 'port (0 = any free port)', '8080')
    .option('--host <addr>', 'address to bind; anything but loopback exposes the server to the network', '127.0.0.1')
    .option('--checkpoints <dirs...>', 'model folder(s) with the three networks (default: the bundled model)')
    .option('--T <n>', "default diffusion length T (default: the model's)")
    .option('--size <n>', "model window size (default: the model's, else 256)")
    .option('--executor <name>', `where the networks run: ${EXECUTOR_NAMES.join(' | ')} (default onnx)`)
    .option('--max-upload-mb <n>', 'largest accepted upload (image + mask) in MB', '20')
    .option('--max-megapixels <n>', 'largest accepted image in megapixels (413 above it)', String(DEFAULT_MAX_MEGAPIXELS))
    .option('--max-queue <n>', 'jobs allowed to wait behind the running one (503 + Retry-After above it)', String(DEFAULT_MAX_QUEUE))
    .option('--max-workers <n>', 'model workers alive at once, one per step count in use (jobs run one at a time)', String(DEFAULT_MAX_WORKERS))
    .option('--max-running <n>', 'with --redis: jobs handed to the queue workers at once', '8');
  addQueueOptions(cmd)
    .action(async (o: Opts & { maxRunning: string }) => {
      const queue = parseQueueOptions(o);
      if (queue?.sharedDir !== undefined) throw new Error('serve --redis sends the uploads inline: --shared-dir is for inpaint');
      const executor = parseExecutor(o.executor, '--executor');
      const size = optionalNumber(o.size, 'size', { min: 16 });
      const maxPixels = Math.round(parseMaxMegapixels(o.maxMegapixels, '--max-megapixels') * 1e6);
      const maxQueue = parseNumberOption(o.maxQueue, 'max-queue', { min: 1 });
      const maxWorkers = parseNumberOption(o.maxWorkers, 'max-workers', { min: 1 });
      console.error(o.redis ? 'reading the model folder ...' : 'loading the model ...');
      const srv = await startServer({
        port: parseNumberOption(o.port, 'port', { min: 0 }),
        host: o.host,
        checkpoints: o.checkpoints,
        T: optionalNumber(o.T, 'T', { min: 2 }),
        size,
        executor,
        maxUploadBytes: Math.round(parseNumberOption(o.maxUploadMb, 'max-upload-mb', { integer: false, min: 0.001 }) * 1e6),
        maxPixels,
        maxQueue,
        maxWorkers,
        remote: queue ? { redis: queue.redis, queue: queue.queue, maxJobBytes: queue.maxJobBytes, maxRunning: parseNumberOption(o.maxRunning, 'max-running', { min: 1 }) } : undefined,
        log: (m) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`),
      });
      const info = srv.jobs.info;
      console.error(queue ? `jobs go to the workers of queue ${queue.queue} on ${redactRedisUrl(queue.redis)} (T = ${info.T})` : `model ready (T = ${info.T}${size ? `, window ${size}px` : ''})`);
      if (!['127.0.0.1', 'localhost', '::1'].includes(o.host)) console.error(`warning: listening on ${o.host}: anyone who can reach this address can run jobs`);
      console.log(`StrDiffusion is serving on ${srv.url}  (Ctrl+C to stop)`);
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = () => {
          if (stopping) process.exit(130);
          stopping = true;
          console.error('stopping (a running job is cancelled at its next step; Ctrl+C again to quit now) ...');
          void srv.close().then(() => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            done();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
