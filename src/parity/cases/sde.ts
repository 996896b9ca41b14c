/**
 * Parity cases of the SDE module: `sde_schedule` (the θ/σ arrays and dt) and `sde_ops` (every
 * recorded operator at fixed and per-sample levels, with the official noise tape replayed).
 */
import { IRSDE, matchingLoss, TapeNoise, type TapeDraw } from '../../sde/index.js';
import { maxAbs, maxAbsDiff } from '../../util/tensor.js';
import { check, type CaseHandler, type CheckResult, type FileEntry, type ParityCase, type ParityContext } from '../types.js';

const EXEC = 'host';

/** max-abs error against atol + rtol·max|ref| (rtol only where the case gives one). */
function compare(c: ParityCase, name: string, got: ArrayLike<number>, ref: ArrayLike<number>): CheckResult {
  const atol = Number(c.tolerance?.atol ?? 0);
  const rtol = Number(c.tolerance?.rtol ?? 0);
  const tol = atol + rtol * maxAbs(ref);
  let err: number;
  let detail: string | undefined;
  try {
    err = maxAbsDiff(got, ref);
    let same = 0;
    for (let i = 0; i < ref.length; i++) if (Math.fround(got[i]!) === ref[i]) same++;
    detail = `${same}/${ref.length} bit-exact`;
  } catch (e) {
    err = Infinity;
    detail = (e as Error).message;
  }
  return check(`${c.name}/${name}`, EXEC, err, tol, detail);
}

function loadF32(ctx: ParityContext, c: ParityCase, key: string): { shape: number[]; data: Float32Array } {
  const e = c.files[key] as FileEntry | undefined;
  if (!e) throw new Error(`${c.name}: no file "${key}" in the manifest`);
  const a = ctx.load(e);
  if (a.dtype !== 'float32') throw new Error(`${c.name}/${key}: ${a.dtype}, expected float32`);
  return { shape: a.shape, data: a.data as Float32Array };
}

const sde_schedule: CaseHandler = async (c, ctx) => {
  const cfg = c.config ?? {};
  const sde = new IRSDE({ T: cfg.T, maxSigma: cfg.max_sigma ?? 30, eps: cfg.eps ?? 0.005, schedule: cfg.schedule ?? 'cosine' });
  const out: CheckResult[] = [];
  const arrays: [string, Float32Array][] = [
    ['thetas', sde.thetas],
    ['thetas_cumsum', sde.thetasCumsum],
    ['sigmas', sde.sigmas],
    ['sigma_bars', sde.sigmaBars],
  ];
  for (const [k, a] of arrays) out.push(compare(c, k, a, loadF32(ctx, c, k).data));
  out.push(compare(c, 'dt', [sde.dt], loadF32(ctx, c, 'dt').data));
  if (cfg.lambda !== undefined) out.push(compare(c, 'lambda', [sde.lambda], [cfg.lambda]));
  return out;
};

const sde_ops: CaseHandler = async (c, ctx) => {
  const cfg = c.config;
  const T: number = cfg.T;
  const sde = new IRSDE({ T, maxSigma: cfg.max_sigma ?? 30, eps: cfg.eps ?? 0.005 });
  const get = (k: string) => loadF32(ctx, c, k);
  const x0 = get('x0');
  const shape = x0.shape;
  const mu = get('mu').data;
  const xt = get('xt').data;
  const score = get('score').data;
  const noise = get('noise').data;
  const mask = get('mask');

  const tapeEntries = [...((c.tape ?? []) as (FileEntry & { i: number })[])].sort((a, b) => a.i - b.i);
  const draws: TapeDraw[] = tapeEntries.map((e) => {
    const a = ctx.load(e);
    return { shape: a.shape, data: a.data as Float32Array };
  });
  const tape = new TapeNoise(draws, `${c.name}/tape`);

  const out: CheckResult[] = [];
  const cmp = (k: string, got: ArrayLike<number>) => out.push(compare(c, k, got, get(k).data));

  // Tape order (manifest `tape_order`): per t in t_list, reverse_sde_step then forward_step;
  // then noise_state, then generate_states.
  for (const t of cfg.t_list as number[]) {
    cmp(`mu_bar_t${t}`, sde.muBar(x0.data, mu, t, shape));
    cmp(`reverse_optimum_step_t${t}`, sde.reverseOptimumStep(xt, x0.data, mu, t, shape));
    cmp(`reverse_sde_step_mean_t${t}`, sde.reverseSdeStepMean(xt, mu, score, t, shape));
    cmp(`score_from_noise_t${t}`, sde.scoreFromNoise(noise, t, shape));
    const sbRef = c.values?.[`sigma_bar_t${t}`];
    if (sbRef !== undefined) out.push(compare(c, `sigma_bar_t${t}`, [sde.sigmaBar(t)], [sbRef]));
    cmp(`reverse_sde_step_t${t}`, sde.reverseSdeStep(xt, mu, score, t, tape.normal(shape), shape));
    cmp(`forward_step_t${t}`, sde.forwardStep(xt, mu, t, tape.normal(shape), shape));
  }
  cmp('noise_state', sde.noiseState(mu, tape.normal(shape)));
  const gk: number = cfg.generate_states_t;
  cmp(`generate_states_t${gk}`, sde.generateStates(x0.data, mu, gk, tape.normal(shape), shape));
  out.push(check(`${c.name}/tape_consumed`, EXEC, tape.remaining, 0, `${tape.position}/${tape.length} draws used`));

  // Training indexing: one level per sample.
  const tb = Array.from(ctx.load(c.files.t_batched as FileEntry).data, Number);
  cmp('mu_bar_tb', sde.muBar(x0.data, mu, tb, shape));
  cmp('reverse_optimum_step_tb', sde.reverseOptimumStep(xt, x0.data, mu, tb, shape));
  cmp('reverse_sde_step_mean_tb', sde.reverseSdeStepMean(xt, mu, score, tb, shape));
  cmp('sigma_bar_tb', sde.sigmaBarBatch(tb));

  const loss = matchingLoss(xt, x0.data, mask.data, shape, mask.shape);
  cmp('matching_loss', [loss]);
  const lv = c.values?.matching_loss_xt_x0_mask;
  if (lv !== undefined) out.push(compare(c, 'matching_loss_value', [loss], [lv]));
  return out;
};

export const handlers: Record<string, CaseHandler> = { sde_schedule, sde_ops };
