/**
 * Calibration for the 'int8-static' precision: run the float32 graph with per-conv min/max
 * outputs (exportCalibrationOnnx) on representative inputs and take the union of the ranges.
 */
import * as ort from 'onnxruntime-node';
import type { F32Tensor } from '../../util/tensor.js';
import type { NetConfig, NetInputs, NetKind } from '../types.js';
import type { UNetConfig } from '../../nn/config.js';
import { SeededNoise } from '../../util/noise.js';
import { hostFeeds } from './feeds.js';
import { describeModel, exportCalibrationOnnx, type Calibration, type ExportShape, type QuantOptions } from './export.js';

/** The graph's feeds for one NetInputs as onnxruntime-node tensors (feeds.ts checks them). */
export function feedsFor(kind: NetKind, cfg: NetConfig, inputs: NetInputs): { shape: ExportShape; feeds: Record<string, ort.Tensor> } {
  const { shape, feeds } = hostFeeds(kind, cfg, inputs);
  return { shape, feeds: Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])) };
}

/**
 * Activation ranges of the convs that int8-static quantises, as the union (min of mins, max of
 * maxes) over `inputsList` (all of one shape). Plain min/max: no percentile clipping.
 */
export async function calibrateRanges(
  kind: NetKind,
  cfg: NetConfig,
  weights: Parameters<typeof exportCalibrationOnnx>[2],
  inputsList: NetInputs[],
  sessionOptions: ort.InferenceSession.SessionOptions,
  quant: QuantOptions = {},
): Promise<Calibration> {
  if (inputsList.length === 0) throw new Error('calibrate: no inputs');
  const first = feedsFor(kind, cfg, inputsList[0]!).shape;
  const { bytes, convs } = exportCalibrationOnnx(kind, cfg, weights, first, quant);
  const session = await ort.InferenceSession.create(bytes, sessionOptions);
  const lo = new Float64Array(2 * convs).fill(Infinity);
  const hi = new Float64Array(2 * convs).fill(-Infinity);
  try {
    for (const inputs of inputsList) {
      const { shape, feeds } = feedsFor(kind, cfg, inputs);
      if (shape.batch !== first.batch || shape.height !== first.height || shape.width !== first.width) throw new Error('calibrate: all inputs must have one shape');
      const r = await session.run(feeds, ['cal_min', 'cal_max']);
      const mn = r.cal_min!.data as Float32Array;
      const mx = r.cal_max!.data as Float32Array;
      for (let i = 0; i < 2 * convs; i++) {
        lo[i] = Math.min(lo[i]!, mn[i]!);
        hi[i] = Math.max(hi[i]!, mx[i]!);
      }
    }
  } finally {
    await session.release();
  }
  const cal: Calibration = [];
  for (let c = 0; c < convs; c++) cal.push({ x: [lo[2 * c]!, hi[2 * c]!], y: [lo[2 * c + 1]!, hi[2 * c + 1]!] });
  return cal;
}

function scaleAround(x: F32Tensor, mu: F32Tensor, k: number): F32Tensor {
  const d = new Float32Array(x.data.length);
  for (let i = 0; i < d.length; i++) d[i] = mu.data[i]! + k * (x.data[i]! - mu.data[i]!);
  return { shape: [...x.shape], data: d };
}

/**
 * What the runner calibrates on when the first run at a size arrives: that very input, plus
 * variants that imitate the rest of a sampling trajectory (the runner does not know T).
 * U-Nets: (x, t), (x, 2t), (mu + 0.5 (x - mu), max(1, t/2)), (mu + 0.1 (x - mu), 1),
 * (mu + 1.5 (x - mu), t). Discriminator: its input at t, max(1, t/2) and 1.
 */
export function autoCalibrationInputs(kind: NetKind, inputs: NetInputs, maxLevel = Infinity): NetInputs[] {
  // networks with per-level tables ('x0' prediction) cannot look past their T
  const ts = (f: (t: number) => number) => inputs.t.map((t) => Math.min(maxLevel, f(t)));
  const half = ts((t) => Math.max(1, Math.round(t / 2)));
  if (kind === 'discriminator' || !inputs.mu) {
    return [inputs, { ...inputs, t: half }, { ...inputs, t: ts(() => 1) }];
  }
  const mu = inputs.mu;
  return [
    inputs,
    { ...inputs, t: ts((t) => 2 * t) },
    { ...inputs, x: scaleAround(inputs.x, mu, 0.5), t: half },
    { ...inputs, x: scaleAround(inputs.x, mu, 0.1), t: ts(() => 1) },
    { ...inputs, x: scaleAround(inputs.x, mu, 1.5), t: inputs.t },
  ];
}

/** A smooth random field in [-1, 1]: a few random low-frequency sinusoids per channel. */
function smoothImage(rng: SeededNoise, shape: number[]): F32Tensor {
  const [B, C, H, W] = shape as [number, number, number, number];
  const d = new Float32Array(B * C * H * W);
  for (let bc = 0; bc < B * C; bc++) {
    const waves = Array.from({ length: 6 }, () => ({ fy: rng.uniform() * 6, fx: rng.uniform() * 6, ph: rng.uniform() * 2 * Math.PI, a: rng.uniform() }));
    const norm = waves.reduce((s, w) => s + w.a, 0);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let v = 0;
        for (const w of waves) v += w.a * Math.sin((2 * Math.PI * (w.fy * y)) / H + (2 * Math.PI * (w.fx * x)) / W + w.ph);
        d[(bc * H + y) * W + x] = v / norm;
      }
    }
  }
  return { shape, data: d };
}

/**
 * Synthetic calibration set for exports without a real input (the export CLI): a smooth random
 * image as mu (and S), plus Gaussian noise at scales 1, 0.5, 0.1 with t = T, T/2, T/10. The
 * accuracy of a file calibrated this way depends on how close real inputs' ranges come.
 */
export function syntheticCalibrationInputs(kind: NetKind, cfg: NetConfig, shape: ExportShape, T: number, seed = 1): NetInputs[] {
  const rng = new SeededNoise(seed);
  const { batch: B, height: H, width: W } = shape;
  const out: NetInputs[] = [];
  const levels: [number, number][] = [[1, T], [0.5, Math.max(1, Math.round(T / 2))], [0.1, Math.max(1, Math.round(T / 10))]];
  if (kind === 'discriminator') {
    const nc = describeModel(kind, cfg, shape).inputs[0]!.shape[1]!;
    const S = smoothImage(rng, [B, 1, H, W]);
    for (const [, t] of levels) out.push({ x: smoothImage(rng, [B, nc, H, W]), S, t: Array(B).fill(t) });
    return out;
  }
  const c = cfg as UNetConfig;
  const mu = smoothImage(rng, [B, c.inNc, H, W]);
  const S = c.spade ? smoothImage(rng, [B, 1, H, W]) : undefined;
  for (const [k, t] of levels) {
    const n = rng.normal([B, c.inNc, H, W]);
    const x = Float32Array.from(mu.data, (v, i) => v + k * n[i]!);
    out.push({ x: { shape: [B, c.inNc, H, W], data: x }, mu, S, t: Array(B).fill(t) });
  }
  return out;
}
