/**
 * `npm run bench [-- --size 256] [--json] [--config official|mini] [--executor onnx]
 *  [--nets texture,structure,discriminator] [--reps 3] [--threads N]
 *  [--batch 1] [--precision fp32|int8|int8-static]`
 *
 * One forward of each network (random weights, batch --batch, default 1) per executor: median seconds of `reps`
 * runs after one warm-up run, GFLOP/s from the analytic count (bench/flops.ts) and peak RSS. Each
 * (network, executor) runs in its own child process, so peak RSS is that case's own, and a case
 * that runs out of memory is reported as "did not fit" instead of ending the benchmark.
 * `--precision int8` runs the onnx executor's dynamically quantised graphs, `--precision
 * int8-static` its QLinearConv graphs (calibrated on the warm-up input, so the setup time includes
 * the calibration); with `--batch B` the table also gives seconds per image (= seconds per forward / B).
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { NetConfig, NetKind, NetRunner } from '../src/exec/types.js';
import { presetConfigs, type DiscConfig, type UNetConfig } from '../src/nn/config.js';
import { NET_KINDS } from '../src/nn/models.js';
import { SeededNoise } from '../src/util/noise.js';
import { countOps, paramCount, randomWeights } from './flops.js';
import { EXECUTOR_NAMES, parseExecutor, unknownExecutor } from '../src/exec/registry.js';

/** Official PyTorch 1.13 CPU, 2 threads, 256x256, batch 1, "fast phase" minimum (docs/design.md §9). */
const PYTORCH_256: Record<NetKind, number> = { texture: 5.18, structure: 4.66, discriminator: 2.17 };

interface Options {
  size: number;
  json: boolean;
  config: string;
  executors: string[];
  nets: NetKind[];
  reps: number;
  threads: number;
  batch: number;
  precision: 'fp32' | 'int8' | 'int8-static';
}

interface CaseResult {
  net: NetKind;
  executor: string;
  status: 'ok' | 'did not fit' | 'failed';
  detail?: string;
  params?: number;
  /** first call: export + session creation, plus one forward */
  setupSeconds?: number;
  seconds?: number;
  minSeconds?: number;
  times?: number[];
  /** process CPU time (user + system) per forward, median: unlike wall time, barely changed by
   * other jobs competing for the cores, so cpuSeconds / threads estimates an idle machine's time */
  cpuSeconds?: number;
  gflop: number;
  batch?: number;
  precision?: string;
  /** seconds / batch */
  secondsPerImage?: number;
  gflops?: number;
  peakRssMiB?: number;
  pytorchSeconds?: number;
}

function parseArgs(args: string[]): Options & { child?: { net: NetKind; executor: string } } {
  const get = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const int = (name: string, def: number): number => {
    const v = get(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer (got "${v}")`);
    return n;
  };
  const executors = (get('--executor') ?? EXECUTOR_NAMES.join(',')).split(',').filter(Boolean);
  for (const e of executors) parseExecutor(e, '--executor');
  const nets = (get('--nets') ?? NET_KINDS.join(',')).split(',').filter(Boolean) as NetKind[];
  for (const n of nets) if (!NET_KINDS.includes(n)) throw new Error(`--nets: unknown network "${n}"`);
  const reps = int('--reps', 3);
  if (reps < 3) throw new Error('--reps must be at least 3 (the figure is a median)');
  const child = get('--child');
  const precision = get('--precision') ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'int8' && precision !== 'int8-static') throw new Error(`--precision must be fp32, int8 or int8-static (got "${precision}")`);
  return {
    batch: int('--batch', 1),
    precision,
    size: int('--size', 256),
    json: args.includes('--json'),
    config: get('--config') ?? 'official',
    executors,
    nets,
    reps,
    threads: int('--threads', Number(process.env.STRDIFFUSION_THREADS) || availableParallelism()),
    child: child ? { net: child.split(':')[0] as NetKind, executor: child.split(':')[1]! } : undefined,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function inputsFor(kind: NetKind, cfg: NetConfig, size: number, batch = 1) {
  const rng = new SeededNoise(7);
  const img = (c: number) => ({ shape: [batch, c, size, size], data: rng.normal([batch, c, size, size]) });
  const S = { shape: [batch, 1, size, size], data: Float32Array.from(rng.normal([batch, 1, size, size]), (v) => (v > 1 ? 1 : 0)) };
  const t = Array.from({ length: batch }, () => 50);
  if (kind === 'discriminator') return { x: img((cfg as DiscConfig).nc - 1), S, t };
  const c = cfg as UNetConfig;
  return { x: img(c.inNc), mu: img(c.inNc), S: c.spade ? S : undefined, t };
}

/** One (network, executor) case, in this process. */
async function runCase(o: Options, net: NetKind, executor: string): Promise<CaseResult> {
  const cfg = presetConfigs(o.config)[net];
  const gflop = countOps(net, cfg, o.batch, o.size, o.size).flop / 1e9;
  const base: CaseResult = { net, executor, status: 'ok', gflop, batch: o.batch, precision: o.precision };
  let runner: NetRunner | undefined;
  try {
    const weights = randomWeights(net, cfg);
    base.params = paramCount(weights);
    const inputs = inputsFor(net, cfg, o.size, o.batch);
    if (executor !== 'onnx') throw unknownExecutor(executor);
    const { OnnxExecutor } = await import('../src/exec/onnx/executor.js');
    runner = await new OnnxExecutor({ threads: o.threads, precision: o.precision }).createRunner(net, cfg, weights);
    const t0 = performance.now();
    await runner.run(inputs);
    base.setupSeconds = (performance.now() - t0) / 1000;
    const times: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < o.reps; i++) {
      const c = process.cpuUsage();
      const t = performance.now();
      await runner.run(inputs);
      times.push((performance.now() - t) / 1000);
      const d = process.cpuUsage(c);
      cpu.push((d.user + d.system) / 1e6);
    }
    base.times = times;
    base.cpuSeconds = median(cpu);
    base.seconds = median(times);
    base.secondsPerImage = base.seconds / o.batch;
    base.minSeconds = Math.min(...times);
    base.gflops = gflop / base.seconds;
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    base.status = /memory|OOM|alloc|Aborted|out of bounds/i.test(msg) ? 'did not fit' : 'failed';
    base.detail = msg.split('\n')[0]!.slice(0, 200);
  } finally {
    runner?.dispose();
  }
  base.peakRssMiB = process.resourceUsage().maxRSS / 1024;
  return base;
}

const MARK = 'BENCH_RESULT ';

/** Run one case in a child process; a crash (e.g. out of memory) becomes a result. */
function runChild(o: Options, net: NetKind, executor: string, args: string[]): Promise<CaseResult> {
  const gflop = countOps(net, presetConfigs(o.config)[net], o.batch, o.size, o.size).flop / 1e9;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args, '--child', `${net}:${executor}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STRDIFFUSION_THREADS: String(o.threads) },
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(MARK));
      if (line) return resolve(JSON.parse(line.slice(MARK.length)) as CaseResult);
      const tail = err.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
      const oom = signal === 'SIGKILL' || /memory|OOM|alloc|Aborted/i.test(err);
      resolve({ net, executor, status: oom ? 'did not fit' : 'failed', detail: `child exited (${signal ?? code}): ${tail}`, gflop });
    });
  });
}

function fmt(n: number | undefined, d: number): string {
  return n === undefined ? '-' : n.toFixed(d);
}

export async function main(args: string[]): Promise<void> {
  const o = parseArgs(args);
  if (o.child) {
    const r = await runCase(o, o.child.net, o.child.executor);
    process.stdout.write(`${MARK}${JSON.stringify(r)}\n`);
    return;
  }
  const passOn = args.filter((a, i) => a !== '--json' && args[i - 1] !== '--child' && a !== '--child');
  const results: CaseResult[] = [];
  const load0 = loadavg()[0]!;
  if (!o.json) {
    console.log(`load average at start ${load0.toFixed(1)}`);
    console.log(`forward benchmark: ${o.config} config, batch ${o.batch}, ${o.size}x${o.size}, ${o.threads} thread(s) (onnx, ${o.precision}), median of ${o.reps} after 1 warm-up`);
  }
  for (const net of o.nets) {
    const byExec = new Map<string, CaseResult>();
    for (const executor of o.executors) {
      if (!o.json) process.stderr.write(`  ${net} / ${executor} ...\n`);
      const r = await runChild(o, net, executor, passOn);
      byExec.set(executor, r);
      results.push(r);
    }
    const on = byExec.get('onnx');
    if (o.size === 256 && o.config === 'official' && o.batch === 1 && on?.seconds) on.pytorchSeconds = PYTORCH_256[net];
  }
  if (o.json) {
    console.log(JSON.stringify({ config: o.config, size: o.size, batch: o.batch, precision: o.precision, threads: o.threads, reps: o.reps, loadavg: [load0, loadavg()[0]], cores: availableParallelism(), results }, null, 2));
    return;
  }
  const head = ['network', 'executor', 'status', 'params', 'GFLOP', 'setup s', 'median s', 's/image', 'min s', 'CPU s', 'GFLOP/s', 'peak RSS MiB', 'PyTorch s'];
  const rows = results.map((r) => [
    r.net, r.executor, r.status, r.params ? `${(r.params / 1e6).toFixed(1)} M` : '-', fmt(r.gflop, 1), fmt(r.setupSeconds, 2),
    fmt(r.seconds, 3), fmt(r.secondsPerImage, 3), fmt(r.minSeconds, 3), fmt(r.cpuSeconds, 2), fmt(r.gflops, 1), fmt(r.peakRssMiB, 0), fmt(r.pytorchSeconds, 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  for (const r of results) if (r.detail) console.log(`  ${r.net}/${r.executor}: ${r.detail}`);
  const load = loadavg()[0]!;
  if (load > o.threads + 0.5) console.log(`note: load average ${load.toFixed(1)} on ${availableParallelism()} cores: other jobs compete for the CPU, so wall times are inflated; CPU s / threads estimates an idle machine`);
  console.log('GFLOP = 2 x (dense conv + linear + attention matmul MACs), as counted for docs/design.md §9; PyTorch s = official code, 2 threads (docs/design.md §9)');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
