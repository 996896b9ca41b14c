/**
 * The options that send a command's work to a Redis queue (`--redis`, `--queue`, `--shared-dir`,
 * `--max-job-mb`), defined once for inpaint, eval and serve.
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { checkQueueName, DEFAULT_QUEUE, parseRedisUrl } from '../queue/connection.js';
import { DEFAULT_MAX_JOB_MB } from '../queue/jobs.js';
import { parseNumberOption } from './args.js';

export interface QueueFlags {
  redis?: string;
  queue: string;
  sharedDir?: string;
  maxJobMb: string;
}

export interface QueueChoice {
  redis: string;
  queue: string;
  sharedDir?: string;
  maxJobBytes: number;
}

export function addQueueOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'send the work to queue workers (`strdiffusion worker`) through this Redis: redis://[USER:PASSWORD@]HOST:PORT[/DB], rediss:// for TLS')
    .option('--queue <name>', 'queue name (the workers\' --queue)', DEFAULT_QUEUE)
    .option('--shared-dir <dir>', 'with --redis: jobs name their files by path under this folder (a filesystem every worker mounts) instead of carrying them')
    .option('--max-job-mb <n>', 'with --redis: the most image + mask (and result) bytes one job carries inline', String(DEFAULT_MAX_JOB_MB));
}

/** null without --redis; the queue-only options without it are an error (they would be silently ignored). */
export function parseQueueOptions(o: QueueFlags): QueueChoice | null {
  if (o.redis === undefined) {
    if (o.sharedDir !== undefined) throw new Error('--shared-dir needs --redis (it names files for queue workers)');
    return null;
  }
  parseRedisUrl(o.redis);
  checkQueueName(o.queue);
  if (o.sharedDir !== undefined && !(existsSync(o.sharedDir) && statSync(o.sharedDir).isDirectory())) throw new Error(`--shared-dir is not a folder: ${o.sharedDir}`);
  return { redis: o.redis, queue: o.queue, sharedDir: o.sharedDir, maxJobBytes: Math.round(parseNumberOption(o.maxJobMb, 'max-job-mb', { integer: false, positive: true }) * 1e6) };
}
