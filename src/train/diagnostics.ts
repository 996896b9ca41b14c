/**
 * Training diagnostics: is a U-Net learning what the sampler needs?
 *
 * The training loss (docs/design.md §1.7) is a one-step quantity at a random level; what the sampler needs
 * is a usable x0 prediction at every level along ITS OWN trajectory. `diagnoseUNet` measures,
 * on one fixed batch and per level t, the mean absolute error of the implied
 *
 *     x̂0 = clamp(μ + (x_t − μ − σ̄_t·ε̂) / e^{−θ̄_t dt}, 0, 1)          (IRSDE.predictX0)
 *
 * against the true x0, **inside the hole only** (mask < 0.5), for
 *
 *  (a) `marginal`:   x_t drawn from the true forward marginal at t (`generateStates`), as in training;
 *  (b) `trajectory`: the network's own reverse trajectory with the `posterior` step rule, started
 *                    like the sampler at t = T from `noiseState(μ, z)`, stepping x̂0 → `posteriorStep`
 *                    down to t = 1; the error is recorded at each listed level (at t = 1 the step
 *                    returns x̂0, so the level-1 value is the error of the final output);
 *
 * and two flat baselines (the same value at every level; arrays for plotting):
 *  (c) `muBaseline`: the hole MAE of μ itself (the trivial predictor ε̂ = (x_t − μ)/σ̄_t gives x̂0 = μ);
 *      for the official zero fill μ is 0 in the hole, so this is the mean hole intensity;
 *  (d) `meanFill`:   the hole MAE of the per-sample, per-channel mean of the known pixels.
 *
 * A net worth sampling with has `trajectory` below both baselines at the low levels; `marginal`
 * far below `trajectory` means the net only works on training-distribution states (exposure bias).
 *
 * Texture net: the structure guide S is the ANALYTIC structure posterior mean at the same level, as
 * in training (prepareObjective: S = reverseOptimumStep of a structure marginal sample at t, with
 * its own noise draw): in (a) with a fresh draw per level, and in (b) at every step — an "oracle
 * guide" built from the ground-truth grayscale in the hole. The texture trajectory therefore does
 * not measure the structure net, only how the texture net uses a perfect structure.
 *
 * Randomness: everything comes from one `SeededNoise(opts.seed ?? 0)`, trajectory draws first (their
 * count depends only on T and the kind), then the marginal draws, so two calls with the same weights,
 * batch and options give the same numbers.
 */
import { structureEnds } from '../structure/kinds.js';
import type { IRSDE } from '../sde/irsde.js';
import { SeededNoise, type NoiseSource } from '../util/noise.js';
import { filledMean, parseFill } from '../sde/fill.js';
import type { NetConfig, NetRunner } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import type { F32Tensor } from '../util/tensor.js';
import { OnnxRunner } from '../exec/onnx/executor.js';
import { maskMul, type ObjectiveBatch } from './objectives.js';

export type DiagnosedKind = 'structure' | 'texture';

export interface DiagnoseOptions {
  /** levels t in 1..T to report (sorted ascending, duplicates dropped); default `defaultLevels(T)` */
  levels?: number[];
  /** seed of the SeededNoise all draws come from (default 0) */
  seed?: number;
  /**
   * The SDE mean μ to use (shape of the state) instead of the training one: texture GT⊙m (or with the
   * batch's `fill`, GT⊙m + F⊙(1−m) as prepareObjective builds it), structure edge⊙m. A fill option
   * of the sampler changes μ, so pass the one it uses.
   */
  mu?: F32Tensor;
  /** the network to use instead of an ONNX runner built from cfg/weights (not disposed here; tests inject oracles) */
  runner?: NetRunner;
  /** intra-op threads of the ONNX runner (default 1: diagnostics run beside a training) */
  threads?: number;
}

export interface UNetDiagnostics {
  kind: DiagnosedKind;
  T: number;
  /** the levels the arrays below refer to, ascending */
  levels: number[];
  /** hole MAE of x̂0 from forward-marginal states, per level */
  marginal: number[];
  /** hole MAE of x̂0 along the net's own posterior-rule trajectory, per level */
  trajectory: number[];
  /** hole MAE of μ (x̂0 = μ), repeated per level */
  muBaseline: number[];
  /** hole MAE of the per-sample mean-colour fill, repeated per level */
  meanFill: number[];
  /** the trajectory's final state x_0 (= x̂0 at t = 1), shape of the state */
  output: F32Tensor;
  /** network forward calls made (T + levels.length) */
  netCalls: number;
  /** wall-clock seconds of the call, session creation included */
  seconds: number;
}

/** Up to `n` distinct levels spread evenly over 1..T, both ends included. */
export function defaultLevels(T: number, n = 8): number[] {
  if (!Number.isInteger(T) || T < 1) throw new Error(`defaultLevels: T must be a positive integer (got ${T})`);
  const k = Math.min(n, T);
  if (k === 1) return [T];
  const out = new Set<number>();
  for (let i = 0; i < k; i++) out.add(Math.round(1 + (i * (T - 1)) / (k - 1)));
  return [...out].sort((a, b) => a - b);
}

/**
 * Mean absolute difference of `a` and `b` [B,C,H,W] over the hole (mask [B,1,H,W] < 0.5) of every
 * channel; NaN when the batch has no hole pixel.
 */
export function holeMAE(a: ArrayLike<number>, b: ArrayLike<number>, shape: readonly number[], mask: F32Tensor): number {
  const [B, C, H, W] = shape as [number, number, number, number];
  const hw = H * W;
  if (a.length !== B * C * hw || b.length !== a.length) throw new Error(`holeMAE: arrays of ${a.length}/${b.length} values for shape [${shape.join(', ')}]`);
  if (mask.data.length !== B * hw) throw new Error(`holeMAE: mask [${mask.shape.join(', ')}] does not match [${shape.join(', ')}]`);
  let sum = 0;
  let n = 0;
  for (let bi = 0; bi < B; bi++) {
    const m = mask.data.subarray(bi * hw, (bi + 1) * hw);
    for (let c = 0; c < C; c++) {
      const o = (bi * C + c) * hw;
      for (let k = 0; k < hw; k++) {
        if (m[k]! >= 0.5) continue;
        sum += Math.abs(a[o + k]! - b[o + k]!);
        n++;
      }
    }
  }
  return n === 0 ? NaN : sum / n;
}

function checkLevels(levels: readonly number[], T: number): number[] {
  if (levels.length === 0) throw new Error('diagnoseUNet: no levels');
  for (const l of levels) if (!Number.isInteger(l) || l < 1 || l > T) throw new Error(`diagnoseUNet: level ${l} outside 1..${T}`);
  return [...new Set(levels)].sort((a, b) => a - b);
}

/** x0, μ and the structure quantities of one batch, as prepareObjective builds them. */
function setup(kind: DiagnosedKind, batch: ObjectiveBatch, mu?: F32Tensor) {
  const m = batch.mask;
  // the structure process of the batch's kind (gray2edge: x0 = gray, μS = edge⊙m); `none` has none
  const sk = batch.structureKind ?? 'gray2edge';
  const ends = sk === 'none' ? null : structureEnds(sk, batch.gray, batch.edge);
  const muS = maskMul(ends?.end ?? batch.edge, m);
  const sx0 = ends?.x0 ?? batch.gray;
  const x0 = kind === 'structure' ? sx0 : batch.GT;
  let muData: Float32Array;
  if (mu) {
    if (mu.data.length !== x0.data.length || mu.shape.some((d, i) => d !== x0.shape[i])) {
      throw new Error(`diagnoseUNet: mu [${mu.shape.join(', ')}] does not match the ${kind} state [${x0.shape.join(', ')}]`);
    }
    muData = mu.data;
  } else if (kind === 'structure') {
    muData = muS;
  } else {
    const fill = batch.fill === undefined ? 'zero' : parseFill(batch.fill, 'ObjectiveBatch.fill');
    muData = fill === 'zero' ? maskMul(batch.GT, m) : filledMean(fill, batch.GT, m);
  }
  return { x0, shape: [...x0.shape], mu: muData, muS, sx0: sx0.data, guided: ends !== null, gShape: [...batch.gray.shape] };
}

/**
 * Per-level x0-prediction errors of a structure or texture U-Net on one batch (see the module
 * comment for what each curve means). Makes T + levels.length forward calls at the batch's size.
 */
export async function diagnoseUNet(
  kind: DiagnosedKind,
  cfg: NetConfig,
  weights: StateDict,
  sde: IRSDE,
  batch: ObjectiveBatch,
  opts: DiagnoseOptions = {},
): Promise<UNetDiagnostics> {
  if (kind !== 'structure' && kind !== 'texture') throw new Error(`diagnoseUNet: kind must be structure or texture (got ${String(kind)})`);
  const start = performance.now();
  const T = sde.T;
  const levels = checkLevels(opts.levels ?? defaultLevels(T), T);
  const { x0, shape, mu, muS, sx0, guided, gShape } = setup(kind, batch, opts.mu);
  const B = shape[0]!;
  const gray = sx0;
  const noise: NoiseSource = new SeededNoise(opts.seed ?? 0);
  const runner = opts.runner ?? new OnnxRunner(kind, cfg, weights, { threads: opts.threads ?? 1 });
  let netCalls = 0;
  const muT: F32Tensor = { shape, data: mu };

  /** the analytic structure posterior mean at level t (training's S), one draw */
  const guide = (t: number): F32Tensor => {
    const xS = sde.generateStates(gray, muS, t, noise.normal([...gShape]), gShape);
    return { shape: gShape, data: sde.reverseOptimumStep(xS, gray, muS, t, gShape) };
  };
  const x0hat = async (x: Float32Array, t: number): Promise<Float32Array> => {
    const S = kind === 'texture' && guided ? guide(t) : undefined;
    netCalls++;
    const eps = await runner.run({ x: { shape, data: x }, mu: muT, S, t: new Array<number>(B).fill(t) });
    if (eps.data.length !== x.length) throw new Error(`diagnoseUNet: the ${kind} net returned ${eps.data.length} values for a state of ${x.length}`);
    return sde.predictX0(x, mu, eps.data, t, shape, [0, 1]);
  };

  try {
    // (b) trajectory: the sampler's start, then posterior steps T → 1
    const want = new Set(levels);
    const traj = new Map<number, number>();
    let x = sde.noiseState(mu, noise.normal([...shape]));
    for (let t = T; t >= 1; t--) {
      const xh = await x0hat(x, t);
      if (want.has(t)) traj.set(t, holeMAE(xh, x0.data, shape, batch.mask));
      x = sde.posteriorStep(x, xh, mu, t, noise.normal([...shape]), shape);
    }
    // (a) forward marginal at each level
    const marginal: number[] = [];
    for (const t of levels) {
      const xt = sde.generateStates(x0.data, mu, t, noise.normal([...shape]), shape);
      marginal.push(holeMAE(await x0hat(xt, t), x0.data, shape, batch.mask));
    }
    // (c), (d) baselines
    const muErr = holeMAE(mu, x0.data, shape, batch.mask);
    const fillErr = holeMAE(filledMean('mean', x0, batch.mask), x0.data, shape, batch.mask);
    return {
      kind,
      T,
      levels,
      marginal,
      trajectory: levels.map((l) => traj.get(l)!),
      muBaseline: levels.map(() => muErr),
      meanFill: levels.map(() => fillErr),
      output: { shape, data: x },
      netCalls,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    if (!opts.runner) runner.dispose();
  }
}

/**
 * Fraction of the batch the discriminator ranks correctly, D_real > D_fake, from a discriminator
 * training step's aux outputs [D_real, D_fake, D_anchor] (each [B] or [B,1]). NaN for an empty batch.
 */
export function discriminatorAccuracy(aux: F32Tensor[]): number {
  const real = aux[0];
  const fake = aux[1];
  if (!real || !fake) throw new Error(`discriminatorAccuracy: expected the aux outputs [D_real, D_fake, D_anchor], got ${aux.length} tensors`);
  if (real.data.length !== fake.data.length) throw new Error(`discriminatorAccuracy: D_real has ${real.data.length} values, D_fake ${fake.data.length}`);
  const n = real.data.length;
  if (n === 0) return NaN;
  let ok = 0;
  for (let i = 0; i < n; i++) if (real.data[i]! > fake.data[i]!) ok++;
  return ok / n;
}

/** One diagnostics record of a run (a UNetDiagnostics plus the training step it was taken at). */
export interface DiagnosticsEntry {
  step: number;
  levels: number[];
  marginal: number[];
  trajectory: number[];
  muBaseline: number[];
  meanFill: number[];
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" tick step (1, 2 or 5 × 10^k) giving about `n` ticks over `span`. */
function niceStep(span: number, n: number): number {
  const raw = span / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

const COLORS = { marginal: '#1f5fbf', trajectory: '#d9480f', mu: '#666666', fill: '#2b8a3e' };

/**
 * A self-contained SVG of the latest diagnostics entry: x = level t, y = x̂0 hole MAE; solid lines
 * (with dots) for the marginal and trajectory errors, dashed lines for the μ and mean-fill baselines,
 * and faint marginal/trajectory lines for up to 3 earlier entries (fainter = older). Every data line
 * is a `<polyline>` (4 for the latest entry, 2 per earlier entry shown); non-finite values break a line.
 */
export function diagnosticsSvg(history: DiagnosticsEntry[], title: string): string {
  const W = 760, H = 420, L = 64, R = 236, Tp = 44, Bm = 48;
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`;
  if (history.length === 0) {
    return `${head}\n<rect width="${W}" height="${H}" fill="white"/>\n<text x="20" y="30" font-size="14">${esc(title)}: no diagnostics yet</text>\n</svg>`;
  }
  const last = history[history.length - 1]!;
  const earlier = history.slice(Math.max(0, history.length - 4), history.length - 1);
  const shown = [...earlier, last];
  const xsAll = shown.flatMap((e) => e.levels).filter(Number.isFinite);
  const x0 = Math.min(...xsAll, 1);
  const x1 = Math.max(...xsAll, x0 + 1);
  const ysAll = shown
    .flatMap((e) => [...e.marginal, ...e.trajectory])
    .concat(last.muBaseline, last.meanFill)
    .filter(Number.isFinite);
  const yMax0 = ysAll.length ? Math.max(...ysAll) : 1;
  const yStep = niceStep(yMax0 > 0 ? yMax0 : 1, 5);
  const yMax = Math.max(yStep, Math.ceil((yMax0 * 1.04) / yStep) * yStep);
  const pw = W - L - R, ph = H - Tp - Bm;
  const px = (t: number) => L + ((t - x0) / (x1 - x0)) * pw;
  const py = (v: number) => Tp + (1 - v / yMax) * ph;
  const fmt = (v: number) => (Math.abs(v) < 1e-12 ? '0' : Math.abs(v) < 1e-4 ? v.toExponential(1) : String(Number(v.toPrecision(Math.abs(v) < 0.01 ? 2 : 3))));

  /** one polyline per run of finite points (a single polyline per series when all are finite) */
  const series = (lv: number[], vs: number[], attrs: string): string[] => {
    const runs: string[][] = [[]];
    for (let i = 0; i < lv.length; i++) {
      const v = vs[i]!;
      if (Number.isFinite(v) && Number.isFinite(lv[i]!)) runs[runs.length - 1]!.push(`${px(lv[i]!).toFixed(1)},${py(v).toFixed(1)}`);
      else if (runs[runs.length - 1]!.length) runs.push([]);
    }
    const ok = runs.filter((r) => r.length);
    return (ok.length ? ok : [[]]).map((r) => `<polyline points="${r.join(' ')}" fill="none" ${attrs}/>`);
  };
  const dots = (lv: number[], vs: number[], color: string): string[] =>
    lv.flatMap((t, i) => (Number.isFinite(vs[i]!) ? [`<circle cx="${px(t).toFixed(1)}" cy="${py(vs[i]!).toFixed(1)}" r="3" fill="${color}"/>`] : []));

  const out: string[] = [head, `<rect width="${W}" height="${H}" fill="white"/>`];
  out.push(`<text x="${L}" y="20" font-size="15" font-weight="bold">${esc(title)} — x̂0 error in the hole, step ${last.step}</text>`);
  out.push(`<text x="${L}" y="36" fill="#555">mean |x̂0 − x0| over hole pixels, per noise level t (lower is better)</text>`);
  // grid + y ticks
  for (let v = 0; v <= yMax + yStep / 2; v += yStep) {
    const y = py(v).toFixed(1);
    out.push(`<line x1="${L}" y1="${y}" x2="${L + pw}" y2="${y}" stroke="#e6e6e6"/>`);
    out.push(`<text x="${L - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  // x ticks at the latest entry's levels
  for (const t of last.levels) {
    const x = px(t).toFixed(1);
    out.push(`<line x1="${x}" y1="${Tp + ph}" x2="${x}" y2="${Tp + ph + 5}" stroke="black"/>`);
    out.push(`<text x="${x}" y="${Tp + ph + 18}" text-anchor="middle">${t}</text>`);
  }
  out.push(`<line x1="${L}" y1="${Tp + ph}" x2="${L + pw}" y2="${Tp + ph}" stroke="black"/><line x1="${L}" y1="${Tp}" x2="${L}" y2="${Tp + ph}" stroke="black"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 10}" text-anchor="middle">noise level t (1 = clean, ${x1} = start of sampling)</text>`);
  out.push(`<text transform="translate(16 ${Tp + ph / 2}) rotate(-90)" text-anchor="middle">hole MAE of x̂0</text>`);
  // earlier entries, faint (older = fainter)
  earlier.forEach((e, i) => {
    const op = (0.15 + (0.3 * (i + 1)) / earlier.length).toFixed(2);
    out.push(...series(e.levels, e.marginal, `stroke="${COLORS.marginal}" stroke-width="1.5" stroke-opacity="${op}"`));
    out.push(...series(e.levels, e.trajectory, `stroke="${COLORS.trajectory}" stroke-width="1.5" stroke-opacity="${op}"`));
  });
  // baselines (dashed), then the latest curves on top
  out.push(...series(last.levels, last.muBaseline, `stroke="${COLORS.mu}" stroke-width="2" stroke-dasharray="7 5"`));
  out.push(...series(last.levels, last.meanFill, `stroke="${COLORS.fill}" stroke-width="2" stroke-dasharray="7 5"`));
  out.push(...series(last.levels, last.marginal, `stroke="${COLORS.marginal}" stroke-width="2.5"`));
  out.push(...series(last.levels, last.trajectory, `stroke="${COLORS.trajectory}" stroke-width="2.5"`));
  out.push(...dots(last.levels, last.marginal, COLORS.marginal), ...dots(last.levels, last.trajectory, COLORS.trajectory));
  // legend
  const lx = L + pw + 16;
  let ly = Tp + 8;
  const item = (color: string, dash: boolean, label: string, value?: number, opacity = 1, color2?: string) => {
    const w = dash ? 2 : 2.5;
    const seg = (c: string, x: number, len: number) =>
      `<line x1="${x}" y1="${ly}" x2="${x + len}" y2="${ly}" stroke="${c}" stroke-width="${w}"${dash ? ' stroke-dasharray="7 5"' : ''} stroke-opacity="${opacity}"/>`;
    out.push(color2 ? `${seg(color, lx, 12)}${seg(color2, lx + 14, 12)}` : seg(color, lx, 26));
    out.push(`<text x="${lx + 32}" y="${ly + 4}">${esc(label)}${value !== undefined && Number.isFinite(value) ? `: ${fmt(value)}` : ''}</text>`);
    ly += 20;
  };
  out.push(`<text x="${lx}" y="${ly + 4}" font-weight="bold">step ${last.step}</text>`);
  ly += 20;
  item(COLORS.marginal, false, 'forward marginal', last.marginal[0]);
  item(COLORS.trajectory, false, 'own trajectory', last.trajectory[0]);
  item(COLORS.mu, true, 'x̂0 = μ', last.muBaseline[0]);
  item(COLORS.fill, true, 'mean-colour fill', last.meanFill[0]);
  out.push(`<text x="${lx}" y="${ly}" fill="#555" font-size="11">values at t = ${last.levels[0]}${last.levels[0] === 1 ? ' (trajectory: the output)' : ''}</text>`);
  ly += 26;
  if (earlier.length) {
    out.push(`<text x="${lx}" y="${ly}" fill="#555">earlier (marginal, trajectory):</text>`);
    ly += 18;
    earlier.forEach((e, i) => {
      const op = 0.15 + (0.3 * (i + 1)) / earlier.length;
      item(COLORS.marginal, false, `step ${e.step}`, undefined, op, COLORS.trajectory);
    });
  }
  ly += 6;
  out.push(`<text x="${lx}" y="${ly}" fill="#555" font-size="11">marginal: x_t drawn as in training;</text>`);
  out.push(`<text x="${lx}" y="${ly + 14}" fill="#555" font-size="11">trajectory: the net's own samples</text>`);
  out.push(`<text x="${lx}" y="${ly + 28}" fill="#555" font-size="11">(posterior step rule, from t = ${x1})</text>`);
  out.push('</svg>');
  return out.join('\n');
}
