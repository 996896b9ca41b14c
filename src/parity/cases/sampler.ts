/**
 * `sampler` cases: the official two-stage sampler replayed on the recorded noise tape.
 * (1) teacher-forced single steps from the recorded states (errors do not accumulate, so the
 * per-step tolerance is tight) and (2) one free run over the whole tape, where decisions are
 * forced from the recording only when a D margin is within the D score tolerance.
 */
import { IRSDE, type TapeNoise } from '../../sde/index.js';
import { tapeFromDir } from '../tape.js';
import { fixtureRunner } from '../fixture-nets.js';
import { check, type CaseHandler, type CheckResult, type ParityCase, type ParityContext } from '../types.js';
import { maxAbsDiff, type F32Tensor } from '../../util/tensor.js';
import {
  makeContext,
  sample,
  step,
  terminalStates,
  toUint8,
  type Decision,
  type DecisionQuery,
  type SamplerNets,
  type SamplerOptions,
  type StepInfo,
} from '../../sampler/index.js';

interface RefIteration {
  i: number;
  Dp: number;
  margin_Dp_minus_Dn: number;
  decision: Decision;
}

interface RefStep {
  t: number;
  stage: 'early' | 'late';
  k?: number;
  Dn?: number;
  iterations?: RefIteration[];
  end?: string;
  forwards: { structure: number; texture: number; discriminator: number };
  tape_range: [number, number];
}

const runner = fixtureRunner;

const tapes = new Map<string, TapeNoise>();

function tape(ctx: ParityContext, dir: string, n?: number): TapeNoise {
  const p = ctx.path(dir);
  let t = tapes.get(p);
  if (!t) {
    t = tapeFromDir(p, n);
    tapes.set(p, t);
  }
  t.seek(0);
  return t;
}

function tensor(ctx: ParityContext, c: ParityCase, key: string): F32Tensor {
  const e = c.files[key];
  if (!e) throw new Error(`${c.name}: no file "${key}" in the manifest`);
  const a = ctx.load(e);
  return { shape: a.shape, data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data) };
}

/** slice [k] of a stacked [N, ...] array */
function slice(a: F32Tensor, k: number): Float32Array {
  const per = a.data.length / a.shape[0]!;
  return a.data.subarray(k * per, (k + 1) * per);
}

/** force the recorded decision when either margin is within the D tolerance */
function decisionTapeFor(steps: RefStep[], tol: number, log: DecisionQuery[]) {
  const byKey = new Map<string, RefIteration>();
  for (const s of steps) for (const it of s.iterations ?? []) byKey.set(`${s.t}/${it.i}`, it);
  return (q: DecisionQuery): Decision | undefined => {
    const ref = byKey.get(`${q.t}/${q.i}`);
    if (!ref) return undefined;
    if (Math.abs(q.Dp - q.Dn) < tol || Math.abs(ref.margin_Dp_minus_Dn) < tol) {
      log.push(q);
      return ref.decision;
    }
    return undefined;
  };
}

interface StepComparison {
  decisionsTotal: number;
  decisionsAgree: number;
  firstDisagreement?: string;
  maxD: number;
  countMismatch: string[];
}

function compareStep(info: StepInfo, ref: RefStep, acc: StepComparison): void {
  const refIts = ref.iterations ?? [];
  const n = Math.max(refIts.length, info.resampling.length);
  for (let j = 0; j < n; j++) {
    acc.decisionsTotal++;
    const a = info.resampling[j];
    const b = refIts[j];
    if (a && b && a.decision === b.decision && a.i === b.i) acc.decisionsAgree++;
    else acc.firstDisagreement ??= `t=${ref.t} i=${b?.i ?? a?.i}: ${a?.decision ?? '-'} vs ${b?.decision ?? '-'}`;
    if (a && b && Number.isFinite(b.Dp)) acc.maxD = Math.max(acc.maxD, Math.abs(a.Dp - b.Dp));
  }
  if (ref.stage === 'early' && ref.Dn !== undefined) acc.maxD = Math.max(acc.maxD, Math.abs(info.Dn - ref.Dn));
  const f = ref.forwards;
  const c = info.calls;
  if (c.structure !== f.structure || c.texture !== f.texture || c.discriminator !== f.discriminator) {
    acc.countMismatch.push(`t=${ref.t}: calls ${c.structure}/${c.texture}/${c.discriminator} vs ${f.structure}/${f.texture}/${f.discriminator}`);
  }
  if (info.stage !== ref.stage) acc.countMismatch.push(`t=${ref.t}: stage ${info.stage} vs ${ref.stage}`);
  const drawsRef = ref.tape_range[1] - ref.tape_range[0] + 1;
  if (info.draws !== drawsRef) acc.countMismatch.push(`t=${ref.t}: ${info.draws} draws vs ${drawsRef}`);
  if ((ref.k ?? 0) !== info.k) acc.countMismatch.push(`t=${ref.t}: k ${info.k} vs ${ref.k}`);
}

function newAcc(): StepComparison {
  return { decisionsTotal: 0, decisionsAgree: 0, maxD: 0, countMismatch: [] };
}

const samplerCase: CaseHandler = async (c, ctx) => {
  const cfg = c.config;
  const tol = c.tolerance ?? {};
  const atolY = Number(tol.per_step_atol_y ?? 3.1e-4);
  const atolX = Number(tol.per_step_atol_x ?? 1.4e-3);
  const atolD = Number(tol.D_score_atol ?? 1.5e-4);
  const atolOut = Number(tol.final_out_free_running_atol ?? 2.4e-3);
  const steps = c.steps as RefStep[];
  const rs = cfg.resampling ?? {};
  const sde = new IRSDE({ T: cfg.T, maxSigma: cfg.max_sigma ?? 30, eps: cfg.eps ?? 0.005, schedule: cfg.schedule ?? 'cosine' });
  const inputs = {
    image: tensor(ctx, c, 'GT'),
    mask: tensor(ctx, c, 'mask'),
    gray: tensor(ctx, c, 'gray'),
    edge: tensor(ctx, c, 'edge'),
  };
  const yT = tensor(ctx, c, 'y_T');
  const xT = tensor(ctx, c, 'x_T');
  const yAfter = tensor(ctx, c, 'y_after');
  const xAfter = tensor(ctx, c, 'x_after');
  const outRef = tensor(ctx, c, 'out');
  const outU8Ref = ctx.load(c.files.out_u8).data;
  const tapeDir: string = c.tape?.dir ?? 'sampler/tape';
  const baseOptions: SamplerOptions = {
    uMax: rs.u_max,
    uMin: rs.u_min,
    jump: rs.jump,
    re: rs.re,
    variant: 'official',
  };
  const name = (s: string) => `${c.name}/${s}`;
  const results: CheckResult[] = [];

  for (const exec of ctx.executors) {
    const nets: SamplerNets = {
      structure: await runner(ctx, exec, 'structure'),
      texture: await runner(ctx, exec, 'texture'),
      discriminator: await runner(ctx, exec, 'discriminator'),
    };

    // ---- (1) teacher-forced steps -------------------------------------------------------------
    const forcedTF: DecisionQuery[] = [];
    const sctx = makeContext(sde, nets, inputs, { ...baseOptions, decisionTape: decisionTapeFor(steps, atolD, forcedTF) });
    const noise = tape(ctx, tapeDir, c.tape?.n_draws);
    const init = terminalStates(sctx, noise);
    results.push(check(name('terminal_states'), exec, Math.max(maxAbsDiff(init.y, yT.data), maxAbsDiff(init.x!, xT.data)), 1e-7, 'y_T, x_T from tape draws 0, 1'));

    const err = { early: { y: 0, x: 0, at: 0, atX: 0 }, late: { y: 0, at: 0 } };
    const acc = newAcc();
    const nEarly = xAfter.shape[0]!;
    for (let k = 0; k < steps.length; k++) {
      const ref = steps[k]!;
      const state =
        k === 0
          ? { y: yT.data, x: xT.data }
          : { y: slice(yAfter, k - 1), x: k - 1 < nEarly ? slice(xAfter, k - 1) : null };
      noise.seek(ref.tape_range[0]);
      const r = await step(sctx, state, ref.t, noise);
      if (noise.position !== ref.tape_range[1] + 1) acc.countMismatch.push(`t=${ref.t}: tape at ${noise.position}, expected ${ref.tape_range[1] + 1}`);
      compareStep(r.info, ref, acc);
      const ey = maxAbsDiff(r.y, slice(yAfter, k));
      if (ref.stage === 'early') {
        if (ey > err.early.y) (err.early.y = ey), (err.early.at = ref.t);
        const ex = maxAbsDiff(r.x!, slice(xAfter, k));
        if (ex > err.early.x) (err.early.x = ex), (err.early.atX = ref.t);
      } else if (ey > err.late.y) (err.late.y = ey), (err.late.at = ref.t);
    }
    const nE = steps.filter((s) => s.stage === 'early').length;
    results.push(check(name('teacher_forced_y_early'), exec, err.early.y, atolY, `max over ${nE} steps at t=${err.early.at}`));
    results.push(check(name('teacher_forced_x_early'), exec, err.early.x, atolX, `max over ${nE} steps at t=${err.early.atX}`));
    results.push(check(name('teacher_forced_y_late'), exec, err.late.y, atolY, `max over ${steps.length - nE} steps at t=${err.late.at}`));
    results.push(check(name('teacher_forced_D'), exec, acc.maxD, atolD, 'max |Dn − ref|, |Dp − ref|'));
    results.push(
      check(
        name('teacher_forced_decisions'),
        exec,
        acc.decisionsTotal - acc.decisionsAgree,
        0,
        `${acc.decisionsAgree}/${acc.decisionsTotal} agree, ${forcedTF.length} forced${acc.firstDisagreement ? `; first: ${acc.firstDisagreement}` : ''}`,
      ),
    );
    results.push(
      check(name('teacher_forced_calls_draws'), exec, acc.countMismatch.length, 0, acc.countMismatch.length ? acc.countMismatch.slice(0, 3).join('; ') : 'calls, draws, k per step match'),
    );

    // ---- (2) free running over the whole tape ------------------------------------------------
    const forcedFree: DecisionQuery[] = [];
    const accF = newAcc();
    let drift = 0;
    let k = 0;
    const res = await sample({
      nets,
      sde,
      inputs,
      noise: tape(ctx, tapeDir, c.tape?.n_draws),
      options: {
        ...baseOptions,
        decisionTape: decisionTapeFor(steps, atolD, forcedFree),
        onStep: (info) => {
          const ref = steps[info.index];
          if (ref && ref.t === info.t) compareStep(info, ref, accF);
          else accF.countMismatch.push(`step ${info.index}: t=${info.t} vs ${ref?.t}`);
        },
        onState: (_t, y) => {
          if (k < yAfter.shape[0]!) drift = Math.max(drift, maxAbsDiff(y, slice(yAfter, k)));
          k++;
        },
      },
    });
    const ft = cfg.forwards_total;
    if (ft && (res.stats.calls.structure !== ft.structure || res.stats.calls.texture !== ft.texture || res.stats.calls.discriminator !== ft.discriminator)) {
      accF.countMismatch.push(`total calls ${JSON.stringify(res.stats.calls)} vs ${JSON.stringify(ft)}`);
    }
    if (c.tape?.n_draws !== undefined && res.stats.draws !== c.tape.n_draws) accF.countMismatch.push(`${res.stats.draws} draws vs ${c.tape.n_draws}`);
    results.push(check(name('free_out'), exec, maxAbsDiff(res.out, outRef.data), atolOut, `max drift of y over the run ${drift.toExponential(2)}`));
    const u8 = toUint8(res.out);
    let du8 = 0;
    let nDiff = 0;
    for (let i = 0; i < u8.length; i++) {
      const d = Math.abs(u8[i]! - outU8Ref[i]!);
      if (d) nDiff++;
      du8 = Math.max(du8, d);
    }
    // out within atolOut (< 1/255) can still flip one rounding step.
    results.push(check(name('free_out_u8'), exec, du8, Math.max(1, Math.ceil(atolOut * 255)), `${nDiff}/${u8.length} bytes differ`));
    results.push(
      check(
        name('free_decisions'),
        exec,
        accF.decisionsTotal - accF.decisionsAgree,
        0,
        `${accF.decisionsAgree}/${accF.decisionsTotal} agree, ${forcedFree.length} forced (${res.stats.forcedAgainstScores} against the scores)${accF.firstDisagreement ? `; first: ${accF.firstDisagreement}` : ''}`,
      ),
    );
    results.push(check(name('free_D'), exec, accF.maxD, atolD, 'max |Dn − ref|, |Dp − ref| over the run'));
    results.push(
      check(name('free_calls_draws'), exec, accF.countMismatch.length, 0, accF.countMismatch.length ? accF.countMismatch.slice(0, 3).join('; ') : `calls ${JSON.stringify(res.stats.calls)}, ${res.stats.draws} draws`),
    );
  }
  return results;
};

export const handlers: Record<string, CaseHandler> = { sampler: samplerCase };
