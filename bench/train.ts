/**
 * `npm run bench -- --train [--json] [--steps 3] [--batch 4] [--size 64,128] [--preset small,mini]
 * [--nets structure,texture,discriminator] [--executors onnx] [--threads 1]`: one training
 * step (forward + backward + Adam) of each network on each training executor (TRAIN_EXECUTORS).
 * Each case runs in its own child process so that its peak RSS is its own; per case: median
 * wall seconds per step, CPU seconds per step (user + system, all threads) and peak RSS, after
 * one warm-up step (which includes building the graph / session).
 *
 * `--official DIR` (the extracted official repository; python from $STRD_PYTHON or /usr/bin/python3,
 * einops on $PYTHONPATH) also runs the official PyTorch training step of the two U-Nets on the same
 * case, right after ours, and prints our speed as a ratio to it: the machine's speed drifts, so
 * only ratios measured in one run mean anything. Its peak RSS includes the recording it does.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { presetConfigs } from '../src/nn/config.js';
import { NET_KINDS } from '../src/nn/models.js';
import type { NetKind } from '../src/exec/types.js';
import { SeededNoise } from '../src/util/noise.js';
import { initWeights } from '../src/train/init.js';
import { createTrainer, isTrainExecutor, trainStep, TRAIN_EXECUTORS, type TrainExecutor } from '../src/train/trainer.js';
import type { ObjectiveBatch } from '../src/train/objectives.js';
import { unknownExecutor } from '../src/exec/registry.js';

function opt(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : def;
}

function randomBatch(B: number, size: number, rng: SeededNoise): ObjectiveBatch {
  const img = (c: number, f: () => number) => ({ shape: [B, c, size, size], data: Float32Array.from({ length: B * c * size * size }, f) });
  const mask = img(1, () => 1);
  // a square hole in the middle of every sample
  for (let b = 0; b < B; b++) for (let y = size >> 2; y < (3 * size) >> 2; y++) for (let x = size >> 2; x < (3 * size) >> 2; x++) mask.data[b * size * size + y * size + x] = 0;
  return { GT: img(3, () => rng.uniform()), gray: img(1, () => rng.uniform()), edge: img(1, () => (rng.uniform() < 0.1 ? 1 : 0)), mask };
}

interface CaseSpec {
  executor: TrainExecutor;
  net: NetKind;
  preset: string;
  batch: number;
  size: number;
  steps: number;
  threads: number;
}

/** One case in this process: prints one JSON line. */
async function runCase(c: CaseSpec): Promise<void> {
  const cfg = presetConfigs(c.preset)[c.net];
  const weights = initWeights(c.net, cfg, 1);
  const params = [...weights.values()].reduce((a, v) => a + v.data.length, 0);
  const trainer = await createTrainer(c.executor, c.net, cfg, weights, { T: 100, threads: c.threads });
  const batch = randomBatch(c.batch, c.size, new SeededNoise(1));
  const noise = new SeededNoise(7);
  const wall: number[] = [];
  const cpu: number[] = [];
  let loss = NaN;
  for (let i = 0; i <= c.steps; i++) {
    const t0 = performance.now();
    const u0 = process.cpuUsage();
    loss = (await trainStep(c.net, trainer, batch, noise)).loss;
    const u = process.cpuUsage(u0);
    if (i > 0) {
      wall.push((performance.now() - t0) / 1000);
      cpu.push((u.user + u.system) / 1e6);
    }
  }
  await trainer.dispose();
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
  console.log(JSON.stringify({ ...c, params, s_per_step: med(wall), cpu_s_per_step: med(cpu), min_s: Math.min(...wall), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024), last_loss: loss }));
}

/** The official PyTorch step of a U-Net on the same case (scripts/official-parity/official_multistep.py). */
function runOfficial(c: CaseSpec, officialDir: string): Record<string, unknown> {
  const nf = (presetConfigs(c.preset)[c.net] as { nf: number }).nf;
  const out = mkdtempSync(join(tmpdir(), 'strd-bench-official-'));
  const script = fileURLToPath(new URL('../scripts/official-parity/official_multistep.py', import.meta.url));
  try {
    const r = spawnSync(process.env.STRD_PYTHON ?? '/usr/bin/python3', [script, '--which', c.net, '--nf', String(nf), '--size', String(c.size), '--batch', String(c.batch),
      '--steps', String(c.steps + 1), '--every', '1000', '--T', '100', '--threads', String(c.threads), '--out', out], {
      encoding: 'utf8',
      // torch.set_num_threads alone still let a second thread run (CPU s = 2× wall): pin the pools
      env: { ...process.env, STRD_OFFICIAL: officialDir, OMP_NUM_THREADS: String(c.threads), MKL_NUM_THREADS: String(c.threads) },
    });
    if (r.status !== 0) return { ...c, executor: 'pytorch', error: (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ') };
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as { step_s_median: number; step_cpu_s_median: number };
    return { ...c, executor: 'pytorch', s_per_step: meta.step_s_median, cpu_s_per_step: meta.step_cpu_s_median };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export async function main(args: string[]): Promise<void> {
  const one = opt(args, 'case', '');
  if (one) return runCase(JSON.parse(one) as CaseSpec);
  const json = args.includes('--json');
  const steps = Math.max(1, Number(opt(args, 'steps', '3')));
  const batch = Number(opt(args, 'batch', '4'));
  const sizes = opt(args, 'size', '64,128').split(',').map(Number);
  const presets = opt(args, 'preset', 'small,mini').split(',');
  const threads = Number(opt(args, 'threads', '1'));
  const nets = opt(args, 'nets', NET_KINDS.join(',')).split(',') as NetKind[];
  const executors = opt(args, 'executors', TRAIN_EXECUTORS.join(',')).split(',');
  const official = opt(args, 'official', '');
  for (const e of executors) if (!isTrainExecutor(e)) throw unknownExecutor(e, '--executors', TRAIN_EXECUTORS);
  for (const p of presets) presetConfigs(p);
  const self = fileURLToPath(import.meta.url);
  const results: Record<string, unknown>[] = [];
  for (const preset of presets) for (const size of sizes) for (const net of nets) for (const executor of executors) {
    const spec: CaseSpec = { executor: executor as TrainExecutor, net, preset, batch, size, steps, threads };
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--case', JSON.stringify(spec)], { encoding: 'utf8', env: { ...process.env, STRDIFFUSION_THREADS: String(threads) } });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let res: Record<string, unknown>;
    try {
      res = JSON.parse(line);
    } catch {
      res = { ...spec, error: (r.stderr || line).trim().split('\n').slice(-3).join(' ') };
    }
    report(res);
    if (official && net !== 'discriminator' && executor === executors[executors.length - 1]) {
      const ref = runOfficial(spec, official);
      report(ref);
      for (const r of results.slice(0, -1)) {
        if (r.net === net && r.size === size && r.preset === preset && typeof r.s_per_step === 'number' && typeof ref.s_per_step === 'number') {
          r.vs_pytorch = (ref.s_per_step as number) / (r.s_per_step as number);
          if (!json) console.log(`${''.padEnd(24)}${String(r.executor).padEnd(5)} is ${(r.vs_pytorch as number).toFixed(2)}× the official PyTorch step's speed`);
        }
      }
    }
  }
  function report(res: Record<string, unknown>): void {
    results.push(res);
    if (json) return;
    const f = (k: string, d = 3) => (typeof res[k] === 'number' ? (res[k] as number).toFixed(d) : '-');
    console.log(`${String(res.preset).padEnd(6)} ${String(res.size).padStart(3)}² ${String(res.net).padEnd(13)} ${String(res.executor).padEnd(7)} ${f('s_per_step')} s/step  cpu ${f('cpu_s_per_step')} s  peak ${res.peak_rss_mb ?? '-'} MB${res.error ? `  ERROR ${res.error}` : ''}`);
  }
  if (json) console.log(JSON.stringify({ bench: 'train_step', batch, threads, results }, null, 2));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
