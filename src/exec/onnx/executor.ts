/**
 * Inference executor: each network is exported to ONNX once per input size (batch, height,
 * width) and run by an onnxruntime-node session that is kept for the runner's lifetime.
 *
 * Precision 'int8-static' (QLinearConv; official config at 256^2 on a 2-core AVX-512 VNNI EPYC,
 * 2 threads: texture 2.58 -> 1.19 s, structure 2.59 -> 1.25 s, discriminator 0.54 -> 0.21 s per
 * forward) needs activation ranges. When the first run() at a size arrives, the runner exports
 * the float32 graph with per-conv min/max outputs, runs it on that input and on variants that
 * imitate the rest of a sampling trajectory (autoCalibrationInputs: the same x at 2t, and x pulled
 * towards mu by 0.5 / 0.1 at t/2 / 1, pushed away by 1.5 at t), takes the union of the ranges and
 * only then exports the int8 graph: for inpainting this calibrates on the image being inpainted
 * (the first step's state), at the price of ~25 s extra setup per U-Net at 256^2. The ranges and
 * the session are kept per size; later inputs beyond the ranges are clipped. calibrate() sets the
 * ranges explicitly instead.
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { StateDict } from '../../weights/types.js';
import type { F32Tensor } from '../../util/tensor.js';
import type { Executor, NetConfig, NetInputs, NetKind, NetRunner } from '../types.js';
import { exportOnnx, PRECISIONS, type Calibration, type ExportShape, type Precision, type QuantOptions } from './export.js';
import { autoCalibrationInputs, calibrateRanges, feedsFor } from './calibrate.js';

/** Per-runner choices (also accepted by OnnxExecutor as defaults for all its runners). */
export interface OnnxRunnerOptions {
  /**
   * 'fp32' (default), 'int8' (dynamically quantised convolutions) or 'int8-static' (QLinearConv,
   * calibrated on the first input at each size unless `calibrate()` was called; see exportOnnx)
   */
  precision?: Precision;
  quant?: QuantOptions;
}

export interface OnnxExecutorOptions extends OnnxRunnerOptions {
  /** intra-op threads; default STRDIFFUSION_THREADS or the number of cores */
  threads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  enableCpuMemArena?: boolean;
  enableMemPattern?: boolean;
}

export function defaultThreads(): number {
  const env = process.env.STRDIFFUSION_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`STRDIFFUSION_THREADS must be a positive integer (got "${env}")`);
    return n;
  }
  return availableParallelism();
}

export function sessionOptions(o: OnnxExecutorOptions = {}): ort.InferenceSession.SessionOptions {
  const threads = o.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive integer (got ${threads})`);
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    // the graphs are chains of large ops: parallelism within ops is what pays
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: o.graphOptimizationLevel ?? 'all',
    enableCpuMemArena: o.enableCpuMemArena ?? true,
    enableMemPattern: o.enableMemPattern ?? true,
  };
}

function shapeKey(s: ExportShape): string {
  return `${s.batch}x${s.height}x${s.width}`;
}

export class OnnxRunner implements NetRunner {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  /** how many graphs this runner has exported (one per distinct input size) */
  exports = 0;
  /** how many calibrations this runner has run (int8-static: one per distinct input size) */
  calibrations = 0;
  private readonly ranges = new Map<string, Calibration>();
  private disposed = false;

  constructor(
    readonly kind: NetKind,
    private readonly cfg: NetConfig,
    private readonly weights: StateDict,
    private readonly opts: OnnxExecutorOptions = {},
  ) {
    const p = opts.precision ?? 'fp32';
    if (!PRECISIONS.includes(p)) throw new Error(`unknown precision "${p}" (expected ${PRECISIONS.join(', ')})`);
  }

  get precision(): Precision {
    return this.opts.precision ?? 'fp32';
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * The session for one input size, exported and created on first use. int8-static: calibrated
   * first, on `calibInputs` and variants of it (autoCalibrationInputs) unless `calibrate()` already
   * gave ranges for this size; the ranges and the session are kept for the runner's lifetime.
   */
  session(shape: ExportShape, calibInputs?: NetInputs): Promise<ort.InferenceSession> {
    if (this.disposed) throw new Error(`the ${this.kind} ONNX runner has been disposed`);
    const key = shapeKey(shape);
    let s = this.sessions.get(key);
    if (!s) {
      this.exports++;
      s = this.precision === 'int8-static' ? this.createStatic(shape, calibInputs) : this.createPlain(shape);
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  private createPlain(shape: ExportShape): Promise<ort.InferenceSession> {
    // the exported bytes are only referenced here, so they can be collected once the session owns its copy
    const bytes = exportOnnx(this.kind, this.cfg, this.weights, shape, { precision: this.opts.precision, quant: this.opts.quant });
    return ort.InferenceSession.create(bytes, sessionOptions(this.opts));
  }

  private async createStatic(shape: ExportShape, calibInputs?: NetInputs): Promise<ort.InferenceSession> {
    const key = shapeKey(shape);
    let cal = this.ranges.get(key);
    if (!cal) {
      if (!calibInputs) throw new Error(`${this.kind}: int8-static needs a calibration at ${key} (run() calibrates on its first input; or call calibrate())`);
      const tables = (this.cfg as { levelTables?: { meanFactor: Float32Array } }).levelTables;
      cal = await this.measure(autoCalibrationInputs(this.kind, calibInputs, tables ? tables.meanFactor.length - 1 : Infinity));
      this.ranges.set(key, cal);
    }
    const bytes = exportOnnx(this.kind, this.cfg, this.weights, shape, { precision: 'int8-static', quant: { ...this.opts.quant, calibration: cal } });
    return ort.InferenceSession.create(bytes, sessionOptions(this.opts));
  }

  private measure(inputsList: NetInputs[]): Promise<Calibration> {
    this.calibrations++;
    return calibrateRanges(this.kind, this.cfg, this.weights, inputsList, sessionOptions(this.opts), this.opts.quant);
  }

  /**
   * Explicit int8-static calibration on `inputsList` (one shape; taken as given, no variants):
   * replaces the ranges of that size and drops its session, so the next run re-exports with them.
   */
  async calibrate(inputsList: NetInputs[]): Promise<Calibration> {
    if (inputsList.length === 0) throw new Error('calibrate: no inputs');
    const { shape } = feedsFor(this.kind, this.cfg, inputsList[0]!);
    const cal = await this.measure(inputsList);
    const key = shapeKey(shape);
    this.ranges.set(key, cal);
    const old = this.sessions.get(key);
    if (old) {
      this.sessions.delete(key);
      old.then((x) => x.release()).catch(() => {});
    }
    return cal;
  }

  /** The int8-static ranges in use at one size, if calibrated. */
  calibration(shape: ExportShape): Calibration | undefined {
    return this.ranges.get(shapeKey(shape));
  }

  async run(inputs: NetInputs): Promise<F32Tensor> {
    const { shape, feeds } = feedsFor(this.kind, this.cfg, inputs);
    const session = await this.session(shape, inputs);
    const res = await session.run(feeds);
    const out = res.out;
    if (!out) throw new Error(`${this.kind}: the session returned no "out"`);
    // onnxruntime-node hands back outputs in fresh JS-owned arrays: no copy needed
    return { shape: [...out.dims], data: out.data as Float32Array };
  }

  dispose(): void {
    this.disposed = true;
    for (const s of this.sessions.values()) s.then((x) => x.release()).catch(() => {});
    this.sessions.clear();
  }
}

export class OnnxExecutor implements Executor {
  readonly name = 'onnx';
  constructor(readonly options: OnnxExecutorOptions = {}) {}
  /** `opts` overrides the executor's precision for this one runner. */
  async createRunner(kind: NetKind, cfg: NetConfig, weights: StateDict, opts: OnnxRunnerOptions = {}): Promise<NetRunner> {
    const o: OnnxExecutorOptions = { ...this.options };
    if (opts.precision !== undefined) o.precision = opts.precision;
    if (opts.quant !== undefined) o.quant = opts.quant;
    return new OnnxRunner(kind, cfg, weights, o);
  }
}
