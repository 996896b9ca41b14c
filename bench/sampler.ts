/**
 * `npm run bench -- --sampler [--size 256] [--config official|mini|small|default] [--json]
 *  [--executor onnx] [--T 100] [--precision fp32|int8]`
 *
 * Runs the real official sampler on a real photo (the fixtures' 256x256 camera image) with an
 * irregular mask, and times three kinds of step: an early step without resampling, an early step
 * with resampling (k = 5) and a late step. Every network call is timed too, so the report splits
 * each step into network forwards and everything else (SDE arithmetic, pastes, copies). From the
 * step times and the schedule it estimates the whole-image time, and reports the network forwards
 * per image and the peak RSS.
 *
 * Fast solvers: the network calls of a whole image for each (variant, solver, steps) below are
 * counted by running the sampler on stand-in networks (the calls do not depend on the picture; the
 * stand-in discriminator makes every resampling loop run to u_max, the most calls possible, as in
 * the measured resampling step above), then priced at this run's measured seconds per forward. The official PyTorch image is priced the same way from its per-forward times.
 */
import { resolve } from 'node:path';
import { availableParallelism, loadavg } from 'node:os';
import type { NetKind, NetRunner, NetInputs } from '../src/exec/types.js';
import { presetConfigs, type ModelConfigs } from '../src/nn/config.js';
import { getExecutor } from '../src/exec/registry.js';
import { IRSDE } from '../src/sde/index.js';
import { SeededNoise } from '../src/util/noise.js';
import { makeContext, renoiseDepth, sample, step, switchLevel, terminalStates, OFFICIAL_RESAMPLING, type SamplerVariant, type Solver } from '../src/sampler/index.js';
import { structureOf } from '../src/structure/index.js';
import { generateMask } from '../src/data/masks.js';
import { readNpy } from '../src/weights/npy.js';
import { randomWeights } from './flops.js';
import { loadModel, DEFAULT_MODEL_DIR } from '../src/model/checkpoints.js';
import { resizePlanes } from '../src/image/resize.js';
import type { StateDict } from '../src/weights/types.js';

/** Official PyTorch CPU figures on this machine, fast phase (docs/design.md §9). */
const PYTORCH = { texture: 5.18, structure: 4.66, discriminator: 2.17, early: 11.9, resample: 106.5, late: 5.4, image: [35 * 60, 48 * 60] };

class Timed implements NetRunner {
  seconds = 0;
  calls = 0;
  constructor(private inner: NetRunner) {}
  get kind() {
    return this.inner.kind;
  }
  async run(inputs: NetInputs) {
    const t0 = performance.now();
    const r = await this.inner.run(inputs);
    this.seconds += (performance.now() - t0) / 1000;
    this.calls++;
    return r;
  }
  dispose() {
    this.inner.dispose();
  }
}

function arg(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
}

export async function main(args: string[]): Promise<void> {
  const size = Number(arg(args, 'size', '256'));
  const configName = arg(args, 'config', 'official');
  const execName = arg(args, 'executor', 'onnx');
  const precision = arg(args, 'precision', 'fp32');
  const json = args.includes('--json');
  let T = Number(arg(args, 'T', '100'));
  let configs: ModelConfigs;
  let weights: Record<NetKind, StateDict>;
  if (configName === 'default') {
    const m = loadModel([DEFAULT_MODEL_DIR]);
    configs = m.configs;
    weights = m.weights;
    T = m.T;
  } else {
    configs = presetConfigs(configName);
    weights = {
      structure: randomWeights('structure', configs.structure, 1),
      texture: randomWeights('texture', configs.texture, 2),
      discriminator: randomWeights('discriminator', configs.discriminator, 3),
    };
  }
  // a real photo: the fixtures' camera image (grey, replicated to RGB), resized to the model size
  const cam = readNpy(resolve(import.meta.dirname, '../../shared/fixtures/parity/canny/canny_camera_256/rgb_u8.npy'));
  const [, H0, W0] = cam.shape as [number, number, number];
  const rgb0 = Float32Array.from(cam.data, (v) => v / 255);
  const rgb = resizePlanes(rgb0, 3, H0, W0, size, size);
  const holes = generateMask(size, [0.2, 0.3], new SeededNoise(5));
  const mask = Float32Array.from(holes, (h) => 1 - h);
  const { gray, edge } = structureOf(rgb, size, size, 2);
  const exec = await getExecutor(execName);
  const nets = {} as Record<NetKind, Timed>;
  const setup0 = performance.now();
  for (const k of ['structure', 'texture', 'discriminator'] as NetKind[]) {
    const opts = precision !== 'fp32' ? { precision } : undefined;
    nets[k] = new Timed(await (exec as any).createRunner(k, configs[k], weights[k], opts));
  }
  const sde = new IRSDE({ T });
  const shape = (c: number) => [1, c, size, size];
  const ctx = makeContext(sde, nets, {
    image: { shape: shape(3), data: rgb },
    mask: { shape: shape(1), data: mask },
    gray: { shape: shape(1), data: gray },
    edge: { shape: shape(1), data: edge },
  });
  const noise = new SeededNoise(11);
  let state = terminalStates(ctx, noise);
  // warm-up: session creation / graph export happen on first use
  const warm = await step(ctx, state, T, noise);
  state = { y: warm.y, x: warm.x };
  const setupSeconds = (performance.now() - setup0) / 1000;
  const kinds: { name: string; t: number }[] = [
    { name: 'early, no resampling', t: T - 1 },
    { name: 'early, resampling (k = 5)', t: T - OFFICIAL_RESAMPLING.jump },
    { name: 'late', t: switchLevel(T, 0.4) - 1 },
  ];
  const rows: any[] = [];
  for (const kind of kinds) {
    for (const n of Object.values(nets)) {
      n.seconds = 0;
      n.calls = 0;
    }
    const st = kind.t < switchLevel(T, 0.4) ? { y: state.y, x: null } : state;
    const t0 = performance.now();
    const r = await step(ctx, st, kind.t, noise);
    const total = (performance.now() - t0) / 1000;
    const netSeconds = Object.values(nets).reduce((a, n) => a + n.seconds, 0);
    rows.push({
      step: kind.name,
      t: kind.t,
      seconds: total,
      networkSeconds: netSeconds,
      otherSeconds: total - netSeconds,
      calls: { structure: nets.structure.calls, texture: nets.texture.calls, discriminator: nets.discriminator.calls },
      perForward: {
        structure: nets.structure.calls ? nets.structure.seconds / nets.structure.calls : null,
        texture: nets.texture.calls ? nets.texture.seconds / nets.texture.calls : null,
        discriminator: nets.discriminator.calls ? nets.discriminator.seconds / nets.discriminator.calls : null,
      },
      resamplingIterations: r.info.resampling.length,
    });
  }
  // schedule: early steps t = T … switch, resampling where k > 0; late steps below
  const sw = switchLevel(T, 0.4);
  let nResample = 0;
  for (let t = T; t >= sw; t--) if (renoiseDepth(T, t, OFFICIAL_RESAMPLING.jump, OFFICIAL_RESAMPLING.re) > 0) nResample++;
  const nEarly = T - sw + 1 - nResample;
  const nLate = sw - 1;
  const [plain, resample, late] = rows as [any, any, any];
  const estimate = nEarly * plain.seconds + nResample * resample.seconds + nLate * late.seconds;
  const fwd = (k: NetKind) => nEarly * plain.calls[k] + nResample * resample.calls[k] + nLate * late.calls[k];
  const result = {
    machine: { cores: availableParallelism(), loadavg: loadavg().map((v) => Number(v.toFixed(2))) },
    config: configName,
    executor: execName,
    precision,
    size,
    T,
    setupSeconds,
    steps: rows,
    schedule: { earlyPlain: nEarly, earlyResampling: nResample, late: nLate },
    estimatedImageSeconds: estimate,
    forwardsPerImage: { structure: fwd('structure'), texture: fwd('texture'), discriminator: fwd('discriminator') },
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    pytorchReference: configName === 'official' && size === 256 && T === 100 ? PYTORCH : undefined,
  };
  // fast solvers: calls counted on stand-in nets, priced at the measured per-forward times
  const perForward = (k: NetKind) => {
    const r = rows.find((x) => x.perForward[k] !== null);
    return r ? (r.perForward[k] as number) : 0;
  };
  const fast: { variant: SamplerVariant; solver: Solver; steps: number; calls: Record<NetKind, number>; seconds: number; pytorchSeconds?: number; callRatio: number }[] = [];
  let officialCalls = 0;
  for (const [variant, solver, n] of FAST_CASES(T)) {
    const calls = await countCalls(T, variant, solver, n);
    officialCalls ||= calls.structure + calls.texture + calls.discriminator;
    const seconds = (['structure', 'texture', 'discriminator'] as NetKind[]).reduce((a, k) => a + calls[k] * perForward(k), 0);
    const pytorchSeconds = result.pytorchReference ? calls.structure * PYTORCH.structure + calls.texture * PYTORCH.texture + calls.discriminator * PYTORCH.discriminator : undefined;
    fast.push({ variant, solver, steps: n, calls, seconds, pytorchSeconds, callRatio: (calls.structure + calls.texture + calls.discriminator) / officialCalls });
  }
  (result as Record<string, unknown>).fastSolvers = fast;
  for (const n of Object.values(nets)) n.dispose();
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`sampler benchmark: ${configName} config, ${execName} ${precision}, ${size}x${size}, T = ${T}, load ${result.machine.loadavg.join(' ')} on ${result.machine.cores} cores`);
  console.log(`setup (export, sessions, first step): ${setupSeconds.toFixed(1)} s`);
  console.log('step kind                    t   seconds  forwards  other   calls S/Y/D   s per forward S/Y/D');
  for (const r of rows) {
    const pf = (v: number | null) => (v === null ? '   -  ' : v.toFixed(3).padStart(6));
    console.log(
      `${r.step.padEnd(27)} ${String(r.t).padStart(3)} ${r.seconds.toFixed(2).padStart(8)} ${r.networkSeconds.toFixed(2).padStart(8)} ${r.otherSeconds.toFixed(3).padStart(6)}   ${r.calls.structure}/${r.calls.texture}/${r.calls.discriminator}`.padEnd(78) +
        `${pf(r.perForward.structure)} ${pf(r.perForward.texture)} ${pf(r.perForward.discriminator)}`,
    );
  }
  const f = result.forwardsPerImage;
  console.log(`schedule: ${nEarly} plain early + ${nResample} resampling + ${nLate} late steps; forwards per image S/Y/D = ${f.structure}/${f.texture}/${f.discriminator}`);
  console.log(`estimated whole image: ${(estimate / 60).toFixed(1)} min; peak RSS ${result.peakRssMiB} MiB`);
  if (result.pytorchReference) {
    const ref = PYTORCH.image;
    console.log(`official PyTorch on this machine (docs/design.md §9, fast phase): ${ref[0]! / 60}-${ref[1]! / 60} min per image -> speed-up ${(ref[0]! / estimate).toFixed(2)}-${(ref[1]! / estimate).toFixed(2)}x`);
    console.log(`  per step: early ${PYTORCH.early} s, resampling ${PYTORCH.resample} s, late ${PYTORCH.late} s; texture forward ${PYTORCH.texture} s`);
  }
  console.log('\nwhole image by sampler (network calls counted on stand-in nets, priced at the seconds per forward measured above):');
  console.log('variant            solver      steps   calls S/Y/D     calls vs official   est. s (ours)   est. s (PyTorch, its per-forward times)');
  for (const f of fast) {
    console.log(
      `${f.variant.padEnd(18)} ${f.solver.padEnd(10)} ${String(f.steps).padStart(5)}   ${`${f.calls.structure}/${f.calls.texture}/${f.calls.discriminator}`.padEnd(14)} ${(f.callRatio * 100).toFixed(1).padStart(8)} %   ${f.seconds.toFixed(1).padStart(12)}   ${f.pytorchSeconds === undefined ? '-' : f.pytorchSeconds.toFixed(1)}`,
    );
  }
}

/** The samplers compared in the whole-image table: the official one first, then the fast solvers at 20 and 10 steps. */
function FAST_CASES(T: number): [SamplerVariant, Solver, number][] {
  const out: [SamplerVariant, Solver, number][] = [['official', 'sde', T]];
  for (const n of [20, 10]) {
    if (n >= T) continue;
    for (const solver of ['posterior', 'mr-ode-2'] as Solver[]) out.push(['official', solver, n], ['no-resampling', solver, n]);
  }
  return out;
}

/** Network calls of one whole image (size-independent), on stand-in networks at 16×16. */
async function countCalls(T: number, variant: SamplerVariant, solver: Solver, steps: number): Promise<Record<NetKind, number>> {
  const calls: Record<NetKind, number> = { structure: 0, texture: 0, discriminator: 0 };
  const S = 16;
  const stand = (kind: NetKind): NetRunner => ({
    kind,
    dispose() {},
    async run(inp: NetInputs) {
      calls[kind]++;
      // zero noise for the U-Nets; D scores each candidate lower than the last, which the official
      // rule accepts every time: every resampling loop runs to u_max, the most calls a step can make
      return kind === 'discriminator' ? { shape: [1], data: Float32Array.of(-calls.discriminator) } : { shape: [...inp.x.shape], data: new Float32Array(inp.x.data.length) };
    },
  });
  const mask = new Float32Array(S * S).fill(1);
  mask.fill(0, 5 * S, 9 * S);
  const sh = (c: number) => [1, c, S, S];
  await sample({
    nets: { structure: stand('structure'), texture: stand('texture'), discriminator: stand('discriminator') },
    sde: new IRSDE({ T }),
    inputs: { image: { shape: sh(3), data: new Float32Array(3 * S * S).fill(0.5) }, mask: { shape: sh(1), data: mask }, gray: { shape: sh(1), data: new Float32Array(S * S).fill(0.5) }, edge: { shape: sh(1), data: new Float32Array(S * S) } },
    noise: new SeededNoise(1),
    options: { variant, solver, steps },
  });
  return calls;
}
