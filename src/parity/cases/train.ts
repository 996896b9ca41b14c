/**
 * Training-step parity (`train_step` cases: train_structure, train_texture, train_discriminator):
 * one official iteration replayed with the recorded t and noise tape on each selected training
 * executor (onnxruntime), compared on the host-side inputs, the network outputs, the loss, every
 * gradient, every parameter after the Adam step, the texture net's spectral-norm u/v, and Adam
 * alone on the reference gradients.
 */
import type { CaseHandler, CheckResult, ParityCase, ParityContext } from '../types.js';
import { check } from '../types.js';
import type { NetKind } from '../../exec/types.js';
import { fixtureNet } from '../fixture-nets.js';
import { readPth } from '../../weights/pth.js';
import { maxAbs, maxAbsDiff, type F32Tensor } from '../../util/tensor.js';
import { TapeNoise } from '../../util/noise.js';
import { isSpectralBuffer } from '../../nn/spade.js';
import { createTrainer, isTrainExecutor, trainStep, type TrainExecutor } from '../../train/trainer.js';
import { Adam } from '../../train/adam.js';
import type { ObjectiveBatch } from '../../train/objectives.js';

function f32(ctx: ParityContext, entry: any): F32Tensor {
  const a = ctx.load(entry);
  return { shape: a.shape, data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data) };
}

function kindOf(c: ParityCase): NetKind {
  const k = c.name.replace(/^train_/, '');
  if (k === 'structure' || k === 'texture' || k === 'discriminator') return k;
  throw new Error(`train_step case "${c.name}": cannot tell the network (expected train_structure|texture|discriminator)`);
}

/** max-abs error over several (ours, reference) pairs, with the worst pair's label */
function worst(pairs: [string, ArrayLike<number>, ArrayLike<number>][]): { err: number; label: string } {
  let err = 0;
  let label = '-';
  for (const [l, a, b] of pairs) {
    const e = maxAbsDiff(a, b);
    if (!(e <= err)) {
      err = e;
      label = l;
    }
  }
  return { err, label };
}

const trainStepCase: CaseHandler = async (c, ctx) => {
  const out: CheckResult[] = [];
  for (const exec of ctx.executors) {
    if (!isTrainExecutor(exec)) continue;
    out.push(...(await trainStepOn(exec, c, ctx)));
  }
  return out;
};

/** One official iteration replayed on one executor. */
async function trainStepOn(exec: TrainExecutor, c: ParityCase, ctx: ParityContext): Promise<CheckResult[]> {
  const kind = kindOf(c);
  const f = c.files;
  const tol = c.tolerance ?? {};
  const opt = c.config?.optimizer ?? {};
  const name = c.name;
  const out: CheckResult[] = [];

  const batch: ObjectiveBatch = { GT: f32(ctx, f.GT), gray: f32(ctx, f.gray), edge: f32(ctx, f.edge), mask: f32(ctx, f.mask) };
  const t = Array.from(ctx.load(f.t).data);
  const tape = new TapeNoise((c.tape as any[]).map((d) => {
    const a = f32(ctx, d);
    return { shape: a.shape, data: a.data };
  }), `${name} tape`);
  const { cfg, weights } = fixtureNet(ctx, kind, f.init_weights);
  const adamOpts = { lr: opt.lr ?? 1e-4, betas: (opt.betas ?? [0.9, 0.99]) as [number, number], eps: opt.eps ?? 1e-8, weightDecay: opt.weight_decay ?? 0 };
  const state = await createTrainer(exec, kind, cfg, weights, { T: c.config?.T ?? 400, adam: adamOpts });
  try {
    const r = await trainStep(kind, state, batch, tape, { t, grads: true, inspect: true });
    const p = r.prepared!;

    // host-side SDE inputs (float32-emulated: expected within an ulp or two)
    const nc = c.net_calls as any[];
    const inputs: [string, ArrayLike<number>, ArrayLike<number>][] = [['state', p.state.data, ctx.load(f.state).data]];
    if (kind === 'discriminator') {
      inputs.push(['y* (real)', p.target.data, ctx.load(nc[0].y).data], ['y_t (fake)', p.state.data, ctx.load(nc[1].y).data],
        ['anchor', p.anchor!.data, ctx.load(nc[2].y).data], ['S', p.S!.data, ctx.load(nc[0].S).data]);
    } else {
      inputs.push(['mu', p.mu.data, ctx.load(nc[0].mu).data], ['target', p.target.data, ctx.load(c.loss_calls[0].target).data]);
      if (p.S) inputs.push(['S', p.S.data, ctx.load(nc[0].S).data]);
    }
    const wi = worst(inputs);
    out.push(check(`${name} sde inputs`, exec, wi.err, 2e-6, `worst ${wi.label}; ${inputs.map((x) => x[0]).join(', ')}`));

    // network outputs
    const outs: [string, ArrayLike<number>, ArrayLike<number>][] = kind === 'discriminator'
      ? nc.map((n, i) => [`D call ${i}`, r.aux![i]!.data, ctx.load(n.out).data] as [string, ArrayLike<number>, ArrayLike<number>])
      : [['eps', r.aux![0]!.data, ctx.load(nc[0].out).data], ['x_hat', r.aux![1]!.data, ctx.load(c.loss_calls[0].predict).data]];
    const wo = worst(outs);
    out.push(check(`${name} net outputs`, exec, wo.err, tol.net_out_atol ?? 1e-4, `worst ${wo.label}`));

    // loss
    const refLoss = c.values?.loss ?? ctx.load(f.loss).data[0];
    out.push(check(`${name} loss`, exec, Math.abs(r.loss - refLoss), tol.loss_atol ?? 1e-6, `ours ${r.loss.toPrecision(9)} ref ${Number(refLoss).toPrecision(9)} `));

    // gradients, per tensor: |ours − ref| ≤ rtol·max|ref| + atol
    const rtol = tol.grad_rtol_of_tensor_max ?? 1e-5;
    const atol = tol.grad_atol ?? 1e-7;
    let within = 0;
    let total = 0;
    let worstRatio = 0;
    let worstRel = 0;
    let worstKey = '-';
    const refGrads = new Map<string, F32Tensor>();
    for (const [key, entry] of Object.entries(c.grads as Record<string, any>)) {
      total++;
      const ref = f32(ctx, entry);
      refGrads.set(key, ref);
      const ours = r.grads!.get(key);
      if (!ours || ours.data.length !== ref.data.length) {
        worstRatio = Infinity;
        worstKey = `${key} (missing or mis-shaped)`;
        continue;
      }
      const e = maxAbsDiff(ours.data, ref.data);
      const m = maxAbs(ref.data);
      const lim = rtol * m + atol;
      if (e <= lim) within++;
      const ratio = e / lim;
      if (!(ratio <= worstRatio)) {
        worstRatio = ratio;
        worstKey = key;
      }
      worstRel = Math.max(worstRel, m > 0 ? e / m : e);
    }
    const extra = [...r.grads!.keys()].filter((k) => !(k in (c.grads as object)));
    out.push(check(`${name} grads`, exec, worstRatio, 1,
      `error/tolerance; ${within}/${total} within; max |err|/max|ref| ${worstRel.toExponential(2)} (rtol ${rtol}); worst ${worstKey}${extra.length ? `; ${extra.length} grads not in the reference: ${extra.slice(0, 3).join(', ')}` : ''}`));

    // parameters after the optimizer step (u/v separately below)
    const after = readPth(ctx.path(f.after));
    const sd = state.toStateDict();
    const afterPairs: [string, ArrayLike<number>, ArrayLike<number>][] = [];
    const missing: string[] = [];
    for (const [k, ref] of after) {
      if (isSpectralBuffer(k)) continue;
      const ours = sd.get(k);
      if (!ours) missing.push(k);
      else afterPairs.push([k, ours.data, ref.data]);
    }
    const wa = worst(afterPairs);
    out.push(check(`${name} params after step`, exec, missing.length ? Infinity : wa.err, tol.after_param_atol ?? 1e-5,
      `${afterPairs.length} tensors; worst ${wa.label}${missing.length ? `; missing ${missing.join(', ')}` : ''}`));

    // spectral-norm u/v after the train-mode power iteration
    const sn = Object.entries((c.sn_after ?? {}) as Record<string, any>);
    if (sn.length > 0) {
      const pairs = sn.map(([k, e]) => [k, sd.get(k)?.data ?? new Float32Array(0), ctx.load(e).data] as [string, ArrayLike<number>, ArrayLike<number>]);
      const ws = worst(pairs);
      const inPth = [...after.keys()].filter(isSpectralBuffer).map((k) => [k, sd.get(k)!.data, after.get(k)!.data] as [string, ArrayLike<number>, ArrayLike<number>]);
      const wp = worst(inPth);
      out.push(check(`${name} spectral u/v`, exec, Math.max(ws.err, wp.err), tol.after_param_atol ?? 1e-6, `${sn.length} buffers; worst ${ws.label}`));
    }

    // the optimizer alone, on the reference gradients
    const adam = new Adam(adamOpts);
    const host = new Map<string, Float32Array>();
    for (const k of refGrads.keys()) host.set(k, Float32Array.from(weights.get(k)!.data));
    adam.update(host, new Map([...refGrads].map(([k, g]) => [k, g.data])), adamOpts.lr);
    const wr = worst([...host].map(([k, a]) => [k, a, after.get(k)!.data] as [string, ArrayLike<number>, ArrayLike<number>]));
    out.push(check(`${name} adam on reference grads`, exec, wr.err, tol.after_from_reference_grads_atol ?? 1e-7, `worst ${wr.label}`));
  } finally {
    await state.dispose();
  }
  return out;
}

export const handlers: Record<string, CaseHandler> = {
  train_step: trainStepCase,
};
