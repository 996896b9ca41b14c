/**
 * Multi-step training parity, our side: replay a run recorded by official_multistep.py (same
 * initial weights, batch, flips, t and noise draws) with the project's trainer
 * (`createTrainer` + `trainStep`, onnxruntime) and compare along the trajectory.
 *
 *   npx tsx scripts/official-parity/replay.ts RUN_DIR [--mode free|restart|both] [--executor onnx] [--json OUT.json]
 *        [--steps N] [--draws official|own [--seed S]] [--save WEIGHTS.safetensors] [--init-seed S]
 *   --init-seed S: free run from the project's initWeights(kind, cfg, S) instead of init.pth.
 *   --draws own: t and noise from the project's SeededNoise (trainStep without injected t), as
 *   `strdiffusion train` draws them; same batch and flips. --save: the weights after the free run.
 *   npx tsx scripts/official-parity/replay.ts RUN_DIR --against RUN_DIR2   (two official runs, no training:
 *          the drift that float32 round-off alone causes, from official_multistep.py --replay RUN_DIR --perturb 1e-7)
 *
 * free:    from init.pth, all steps; per checkpoint K: loss windows, parameter distance to the
 *          official ckpt_K (relative to how far the official weights moved from init), spectral
 *          u/v, Adam m and v.
 * restart: for each pair (K, K+1) of checkpoints: load the official weights, u/v and Adam state of
 *          step K, do step K+1 with its recorded draws, compare with ckpt_{K+1} (one step from a
 *          late state: Adam's bias correction at step K+1, carried u/v, ...).
 * A dev tool, not a test. Keep it to one thread on a shared machine.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readPth } from '../../src/weights/pth.js';
import { readNpy } from '../../src/weights/npy.js';
import { checkWeights } from '../../src/nn/models.js';
import { createTrainer, isTrainExecutor, trainStep, type NetTrainer, type TrainExecutor } from '../../src/train/trainer.js';
import { SeededNoise, TapeNoise } from '../../src/util/noise.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { initWeights } from '../../src/train/init.js';
import { isSpectralBuffer } from '../../src/nn/spade.js';
import { MultiStepLR } from '../../src/train/lr.js';
import type { UNetConfig } from '../../src/nn/config.js';
import type { StateDict } from '../../src/weights/types.js';
import type { F32Tensor } from '../../src/util/tensor.js';
import type { ObjectiveBatch } from '../../src/train/objectives.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { mode: { type: 'string', default: 'both' }, json: { type: 'string' }, steps: { type: 'string' }, against: { type: 'string' }, executor: { type: 'string', default: 'onnx' }, draws: { type: 'string', default: 'official' }, seed: { type: 'string', default: '0' }, save: { type: 'string' }, 'init-seed': { type: 'string' } },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: replay.ts RUN_DIR [--mode free|restart|both] [--json OUT.json] [--steps N]');
const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
const kind = meta.which as 'structure' | 'texture';
const cfg: UNetConfig = { inNc: meta.net.in_nc, outNc: meta.net.out_nc, nf: meta.net.nf, depth: meta.net.depth, spade: meta.net.spade };
const steps = values.steps ? Number(values.steps) : meta.steps;
const B = meta.batch as number;
const S = meta.size as number;

const npy = (n: string) => readNpy(join(dir, n));
const f32 = (n: string): F32Tensor => {
  const a = npy(n);
  return { shape: a.shape, data: Float32Array.from(a.data) };
};
const base = { GT: f32('GT.npy'), gray: f32('gray.npy'), edge: f32('edge.npy'), mask: f32('mask.npy') };
const augA = npy('aug.npy');
const tA = npy('t.npy');
const zA = npy('z.npy');
const zSA = kind === 'texture' ? npy('zS.npy') : null;
const lossRef = npy('loss.npy').data;

/** flip W, flip H, then swap H and W (torch: x.flip(-1), x.flip(-2), x.transpose(-1,-2)) per sample */
function augmentSample(x: F32Tensor, flags: [boolean, boolean, boolean][]): F32Tensor {
  const [Bn, C] = x.shape as [number, number, number, number];
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < Bn; b++) {
    const [hf, vf, tr] = flags[b]!;
    for (let c = 0; c < C; c++) {
      const o = (b * C + c) * S * S;
      for (let y = 0; y < S; y++) for (let xx = 0; xx < S; xx++) {
        let sy = tr ? xx : y;
        let sx = tr ? y : xx;
        if (vf) sy = S - 1 - sy;
        if (hf) sx = S - 1 - sx;
        out[o + y * S + xx] = x.data[o + sy * S + sx]!;
      }
    }
  }
  return { shape: [...x.shape], data: out };
}

const nAug = augA.shape[2]!;
const maskIndependent = meta.mask_aug === 'independent';
function batchAt(i: number): ObjectiveBatch {
  const flags: [boolean, boolean, boolean][] = [];
  const maskFlags: [boolean, boolean, boolean][] = [];
  let any = false;
  for (let b = 0; b < B; b++) {
    const at = (k: number) => augA.data[(i * B + b) * nAug + k] !== 0;
    const f = [at(0), at(1), at(2)] as [boolean, boolean, boolean];
    any ||= f.some(Boolean) || (maskIndependent && at(3));
    flags.push(f);
    maskFlags.push(maskIndependent ? [at(3), false, false] : f);
  }
  if (!any) return base;
  return { GT: augmentSample(base.GT, flags), gray: augmentSample(base.gray, flags), edge: augmentSample(base.edge, flags), mask: augmentSample(base.mask, maskFlags) };
}

function drawsAt(i: number): { t: number[]; noise: TapeNoise } {
  const t = Array.from(tA.data.subarray(i * B, (i + 1) * B), Number);
  const C = kind === 'structure' ? 1 : 3;
  const nz = B * C * S * S;
  const draws = [{ shape: [B, C, S, S], data: Float32Array.from(zA.data.subarray(i * nz, (i + 1) * nz)) }];
  if (zSA) {
    const ns = B * S * S;
    draws.push({ shape: [B, 1, S, S], data: Float32Array.from(zSA.data.subarray(i * ns, (i + 1) * ns)) });
  }
  return { t, noise: new TapeNoise(draws, `step ${i + 1}`) };
}

const executor = values.executor as string;
if (!isTrainExecutor(executor)) throw new Error(`--executor ${executor}: not a trainer executor`);
const exec: TrainExecutor = executor;
function newState(weights: StateDict): Promise<NetTrainer> {
  return createTrainer(exec, kind, cfg, weights, {
    threads: 1,
    T: meta.T,
    adam: { lr: meta.lr, betas: meta.betas, eps: meta.eps, weightDecay: 0 },
    schedule: new MultiStepLR(meta.lr),
  });
}

const l2 = (a: ArrayLike<number>, b?: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) { const d = a[i]! - (b ? b[i]! : 0); s += d * d; }
  return s;
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

interface Cmp { params: number; paramsMax: number; worst: string; worstRel: number; uv: number; m?: number; v?: number }
/** ||ours − ref|| / ||ref − init|| over the trainable params; per-tensor worst; u/v max |diff| */
function compare(ours: StateDict, ref: StateDict, init: StateDict, adam?: { ours: NetTrainer['adam']; ref: StateDict }): Cmp {
  let num = 0, den = 0, mx = 0, uv = 0, worstRel = 0, worst = '-';
  for (const [k, r] of ref) {
    const o = ours.get(k);
    if (!o) throw new Error(`ours has no ${k}`);
    if (isSpectralBuffer(k)) { uv = Math.max(uv, maxAbsDiff(o.data, r.data)); continue; }
    const d = l2(o.data, r.data);
    const mv = l2(r.data, init.get(k)!.data);
    num += d; den += mv; mx = Math.max(mx, maxAbsDiff(o.data, r.data));
    const rel = Math.sqrt(d / Math.max(mv, 1e-30));
    if (mv > 0 && rel > worstRel) { worstRel = rel; worst = k; }
  }
  const out: Cmp = { params: Math.sqrt(num / den), paramsMax: mx, worst, worstRel, uv };
  if (adam) {
    let mn = 0, md = 0, vn = 0, vd = 0;
    for (const [k, r] of adam.ref) {
      const [which, ...rest] = k.split('.');
      const key = rest.join('.');
      const o = (which === 'exp_avg' ? adam.ours.m : adam.ours.v).get(key);
      if (!o) continue;
      if (which === 'exp_avg') { mn += l2(o, r.data); md += l2(r.data); } else { vn += l2(o, r.data); vd += l2(r.data); }
    }
    out.m = Math.sqrt(mn / md);
    out.v = Math.sqrt(vn / vd);
  }
  return out;
}

const load = (n: string) => checkWeights(kind, cfg, readPth(join(dir, n)), n);
const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));
const report: any = { dir, meta, free: [], restart: [] };

const init = load('init.pth');
const ckpts: number[] = meta.checkpoints.filter((k: number) => k <= steps);

if (values.against) {
  const other = values.against;
  const lossOther = readNpy(join(other, 'loss.npy')).data;
  console.log(`official vs official (${other}):`);
  console.log('   step | loss A (window) | loss B (window) | mean|Δloss| | ‖Δθ‖/‖θA−θ0‖ | max|Δθ| | worst tensor (rel) | max|Δu,v|');
  let last = 0;
  for (const k of ckpts) {
    if (!(k === 1 || k % meta.every === 0)) continue;
    const c = compare(readPth(join(other, `ckpt_${k}.pth`)), readPth(join(dir, `ckpt_${k}.pth`)), init);
    let a = 0, b = 0, d = 0;
    for (let j = last; j < k; j++) { a += lossRef[j]!; b += lossOther[j]!; d += Math.abs(lossRef[j]! - lossOther[j]!); }
    const n = k - last;
    console.log(`${String(k).padStart(7)} | ${(a / n).toFixed(5).padStart(15)} | ${(b / n).toFixed(5).padStart(15)} | ${fmt(d / n).padStart(11)} | ${fmt(c.params).padStart(12)} | ${fmt(c.paramsMax)} | ${c.worst} (${fmt(c.worstRel)}) | ${fmt(c.uv)}`);
    report.free.push({ step: k, lossA: a / n, lossB: b / n, meanAbsLossDiff: d / n, ...c });
    last = k;
  }
  values.mode = 'none';
}

if (values.mode === 'free' || values.mode === 'both') {
  const st = await newState(values['init-seed'] !== undefined ? initWeights(kind, cfg, Number(values['init-seed'])) : init);
  const ours: number[] = [];
  const t0 = performance.now();
  console.log(`free run (${executor}, ${values.draws} draws): ${kind}, ${steps} steps, T ${meta.T}, lr ${meta.lr}, B ${B}, ${S}², aug ${meta.aug}`);
  console.log('   step | loss ours (window) | loss official | mean|Δloss| | ‖Δθ‖/‖θref−θ0‖ | max|Δθ| | worst tensor (rel) | max|Δu,v| | ‖Δm‖/‖m‖ | ‖Δv‖/‖v‖');
  let last = 0;
  const own = values.draws === 'own' ? new SeededNoise(Number(values.seed)) : null;
  for (let i = 0; i < steps; i++) {
    const { t, noise } = drawsAt(i);
    const r = own ? await trainStep(kind, st, batchAt(i), own) : await trainStep(kind, st, batchAt(i), noise, { t });
    ours.push(r.loss);
    const k = i + 1;
    if (ckpts.includes(k) && existsSync(join(dir, `ckpt_${k}.pth`)) && (k === 1 || k % meta.every === 0)) {
      const ref = readPth(join(dir, `ckpt_${k}.pth`));
      const c = compare(st.toStateDict(), ref, init, { ours: st.adam, ref: readPth(join(dir, `adam_${k}.pth`)) });
      const w = ours.slice(last, k);
      const wr = Array.from(lossRef.subarray(last, k));
      const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
      const dl = mean(w.map((x, j) => Math.abs(x - wr[j]!)));
      console.log(`${String(k).padStart(7)} | ${mean(w).toFixed(5).padStart(18)} | ${mean(wr).toFixed(5).padStart(13)} | ${fmt(dl).padStart(11)} | ${fmt(c.params).padStart(14)} | ${fmt(c.paramsMax)} | ${c.worst} (${fmt(c.worstRel)}) | ${fmt(c.uv)} | ${fmt(c.m!)} | ${fmt(c.v!)}`);
      report.free.push({ step: k, lossOurs: mean(w), lossRef: mean(wr), meanAbsLossDiff: dl, ...c });
      last = k;
    }
  }
  report.lossOurs = ours;
  console.log(`free run: ${((performance.now() - t0) / 1000 / steps).toFixed(3)} s/step`);
  if (values.save) {
    writeSafetensors(values.save, st.toStateDict(), { kind, iteration: String(steps) });
    console.log(`weights after ${steps} steps -> ${values.save}`);
  }
  await st.dispose();
}

if (values.mode === 'restart' || values.mode === 'both') {
  console.log('restart: official state after step K -> our step K+1 vs official step K+1');
  console.log('      K | Adam step | loss ours | loss official | ‖Δθ‖/‖θ(K+1)−θ(K)‖ | max|Δθ| | max|Δu,v| | ‖Δm‖/‖m‖ | ‖Δv‖/‖v‖');
  for (const K of ckpts) {
    if (!ckpts.includes(K + 1) || K + 1 > steps) continue;
    const w = load(`ckpt_${K}.pth`);
    const st = await newState(w);
    const adamRef = readPth(join(dir, `adam_${K}.pth`));
    const aj = JSON.parse(readFileSync(join(dir, `adam_${K}.json`), 'utf8'));
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const [k, t] of adamRef) {
      if (k.startsWith('exp_avg_sq.')) v.set(k.slice(11), Float32Array.from(t.data));
      else if (k.startsWith('exp_avg.')) m.set(k.slice(8), Float32Array.from(t.data));
    }
    st.adam.loadStateDict({ step: aj.step, m, v });
    st.iteration = K;
    st.schedule.lastEpoch = K;
    const { t, noise } = drawsAt(K);
    const r = await trainStep(kind, st, batchAt(K), noise, { t });
    const ref = readPth(join(dir, `ckpt_${K + 1}.pth`));
    const c = compare(st.toStateDict(), ref, w, { ours: st.adam, ref: readPth(join(dir, `adam_${K + 1}.pth`)) });
    console.log(`${String(K).padStart(7)} | ${String(aj.step).padStart(9)} | ${r.loss.toFixed(6)} | ${lossRef[K]!.toFixed(6).padStart(13)} | ${fmt(c.params).padStart(18)} | ${fmt(c.paramsMax)} | ${fmt(c.uv)} | ${fmt(c.m!)} | ${fmt(c.v!)}`);
    report.restart.push({ K, lossOurs: r.loss, lossRef: lossRef[K], ...c });
    await st.dispose();
  }
}
if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 1));
