/**
 * `strdiffusion worker --redis URL`: takes inpainting jobs from the queue (src/queue/worker.ts)
 * until stopped. SIGINT/SIGTERM let the running job finish; a second signal quits at once (the
 * job's lock lapses and another worker runs it again).
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { startQueueWorker } from '../../queue/worker.js';
import { checkQueueName, DEFAULT_QUEUE, DEFAULT_TIMING, parseRedisUrl, redactRedisUrl } from '../../queue/connection.js';
import { optionalNumber, parseNumberOption } from '../args.js';

interface Opts {
  redis: string;
  queue: string;
  checkpoints?: string[];
  T?: string;
  threads?: string;
  concurrency: string;
  sharedDir?: string;
  lockMs: string;
  stalledMs: string;
  maxStalled: string;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description('run inpainting jobs from a Redis queue (BullMQ) until stopped; start one per machine')
    .requiredOption('--redis <url>', 'redis://[USER:PASSWORD@]HOST:PORT[/DB], rediss:// for TLS')
    .option('--queue <name>', 'queue name (the submitter\'s --queue)', DEFAULT_QUEUE)
    .option('--checkpoints <dirs...>', 'model folder(s) (default: the bundled model); jobs for other weights are refused')
    .option('--T <n>', "diffusion length to load the model with (default: its model.json)")
    .option('--threads <n>', 'onnxruntime intra-op threads per job (default STRDIFFUSION_THREADS or all cores)')
    .option('--concurrency <n>', 'jobs at once, each with its own copy of the model', '1')
    .option('--shared-dir <dir>', 'the shared folder as mounted here (for jobs submitted with --shared-dir)')
    .option('--lock-ms <n>', 'job lock duration; a killed worker\'s job is run again after about lock + stalled interval', String(DEFAULT_TIMING.lockDurationMs))
    .option('--stalled-ms <n>', 'how often to look for jobs whose worker died', String(DEFAULT_TIMING.stalledIntervalMs))
    .option('--max-stalled <n>', 'times a job may lose its worker before it fails', String(DEFAULT_TIMING.maxStalledCount))
    .action(async (o: Opts) => {
      parseRedisUrl(o.redis);
      checkQueueName(o.queue);
      const threads = optionalNumber(o.threads, 'threads', { min: 1 });
      // read by the executor in every model thread
      if (threads !== undefined) process.env.STRDIFFUSION_THREADS = String(threads);
      if (o.sharedDir !== undefined && !(existsSync(o.sharedDir) && statSync(o.sharedDir).isDirectory())) throw new Error(`--shared-dir is not a folder: ${o.sharedDir}`);
      const log = (m: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
      const w = await startQueueWorker({
        redis: o.redis,
        queue: o.queue,
        checkpoints: o.checkpoints,
        T: optionalNumber(o.T, 'T', { min: 2 }),
        sharedDir: o.sharedDir,
        concurrency: parseNumberOption(o.concurrency, 'concurrency', { min: 1 }),
        timing: {
          lockDurationMs: parseNumberOption(o.lockMs, 'lock-ms', { min: 500 }),
          stalledIntervalMs: parseNumberOption(o.stalledMs, 'stalled-ms', { min: 100 }),
          maxStalledCount: parseNumberOption(o.maxStalled, 'max-stalled', { min: 0 }),
        },
        log,
      });
      console.log(`worker ${w.id} ready: ${w.model.name} (hash ${w.model.hash.slice(0, 12)}), queue ${o.queue} on ${redactRedisUrl(o.redis)}`);
      await new Promise<void>((done) => {
        let stopping = false;
        const stop = () => {
          if (stopping) process.exit(130);
          stopping = true;
          log('stopping: the running job finishes first (signal again to quit now; its job then runs elsewhere)');
          void w.close().then(done, done);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      process.exit(0);
    });
}
