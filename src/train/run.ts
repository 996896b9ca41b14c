/**
 * A training run in a folder: config, checkpoints (official keys, .safetensors), optimizer state,
 * metrics.jsonl and a loss curve. Every save is atomic: a checkpoint is written completely into a
 * temporary folder (its `state.json` last: the completeness marker), then renamed to `ckpt-N`
 * (a `ckpt-N` left by a killed run is moved aside first and deleted after), and only then is the
 * `latest` pointer swapped by rename. `--resume` continues from the newest complete `ckpt-N`
 * whatever `latest` says, so a kill (or a full disk) at any moment leaves a loadable checkpoint
 * and never blocks a later save; temporary folders of dead processes are removed at start.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, openSync, fsyncSync, closeSync, truncateSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { NetConfig, NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { openSafetensors, readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { loadCheckpoint } from '../weights/statedict.js';
import { checkWeights, paramSpec } from '../nn/models.js';
import { readModelJson, writeModelJson } from '../model/checkpoints.js';
import { predictionIn } from '../model/meta.js';
import { createTrainer, trainStep, type NetTrainer, type TrainExecutor } from './trainer.js';
import { MultiStepLR } from './lr.js';
import { ADAM_DISC, ADAM_UNET } from './adam.js';
import { initWeights } from './init.js';
import { ImageFolderLoader } from './data.js';
import { IrregularMaskGenerator, MaskFolder, RATIO_BUCKETS, type MaskSource, type RatioRange } from '../data/masks.js';
import { SkippedFiles } from '../data/images.js';
import { SeededNoise } from '../util/noise.js';
import { lossCurveSvg } from './plot.js';
import { parseFill, prepareFill, type Fill } from '../sde/fill.js';
import { parseTextureGuideKind, type TextureGuideKind } from '../structure/kinds.js';
import { diagnoseUNet, diagnosticsSvg, discriminatorAccuracy, type DiagnosticsEntry } from './diagnostics.js';
import type { ObjectiveBatch } from './objectives.js';
import type { UNetConfig } from '../nn/config.js';
import { withLevelTables } from '../sde/prediction.js';
import { isSpectralBuffer } from '../nn/spade.js';
import { refreshSpectralVectors } from '../nn/spectral.js';
// writeFileAtomic keeps an error's code (ENOSPC), which diskError reads
import { acquireLock, checkOutputFiles, processAlive, writeError, writeFileAtomic } from '../util/files.js';

export interface RunConfig {
  kind: NetKind;
  net: NetConfig;
  T: number;
  size: number;
  batch: number;
  lr: number;
  /** MultiStepLR milestones (U-Nets); the discriminator's LR is constant as in the official code */
  milestones: number[];
  data: string;
  masks: string | null;
  maskRatios: RatioRange[];
  seed: number;
  ema: number | null;
  saveEvery: number;
  /** start from these weights instead of the official random init (new runs only) */
  init?: string | null;
  /** texture / discriminator: what the SDE mean holds in the hole (src/sde/fill.ts; default zero = official) */
  fill?: Fill;
  /** scale augmentation of the crops (data.ts `zoom`; 1 or absent = native-scale crops) */
  zoom?: number;
  /**
   * The structure process (src/structure/kinds.ts): what the structure network diffuses between
   * and what guides the texture / discriminator; `none` (texture only) an IR-SDE texture network
   * without SPADE. Absent = gray2edge (the official kind; older run folders have none).
   */
  structureKind?: TextureGuideKind;
}

export interface RunProgress {
  step: number;
  steps: number;
  loss: number;
  smoothLoss: number;
  lr: number;
  secondsPerStep: number;
}

export interface TrainRunOptions {
  out: string;
  steps: number;
  resume?: boolean;
  command?: string;
  onProgress?: (p: RunProgress) => void;
  onLog?: (msg: string) => void;
  /** stop early (e.g. on SIGINT) after saving */
  shouldStop?: () => boolean;
  /** where forward + backward run (default onnx) */
  executor?: TrainExecutor;
  /** onnx: intra-op threads */
  threads?: number;
  /** U-Nets: write diagnostics (x̂0 hole error against t) every this many iterations (0 = never; default 1000) */
  diagEvery?: number;
  /** images for the diagnostics batch (default: the training folder) */
  diagData?: string;
  /** skip training images and masks over this many megapixels, from their header (default 50) */
  maxMegapixels?: number;
}

/** Settings that must agree between a run folder and `--resume`. */
const IDENTITY: (keyof RunConfig)[] = ['kind', 'net', 'T', 'size'];

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** The files a run writes at its top level (checked before any work: each must be a regular file or absent). */
/** The lock file of a run folder: one training at a time writes a folder (util/files.ts acquireLock). */
export const RUN_LOCK = 'train.lock';
const RUN_FILES = ['config.json', 'model.json', 'latest', 'metrics.jsonl', 'diagnostics.jsonl', 'loss.svg', 'diagnostics.svg', RUN_LOCK];

/** A JSON file of the run folder; a parse error names the file. */
function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Append one line to a log of the run (metrics.jsonl, diagnostics.jsonl). A failed append (a full
 * disk) is cut back off, so the log never keeps half a line, and fails with one line naming the file.
 */
export function appendLogLine(path: string, line: string): void {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    /* a new log */
  }
  try {
    appendFileSync(path, line + '\n');
  } catch (e) {
    try {
      truncateSync(path, size);
    } catch {
      /* the reader ignores a torn last line */
    }
    throw writeError(e, path);
  }
}

/**
 * The records of a run log up to `iteration`, the iteration the run continues from. A last line
 * without its newline is what a kill or a full disk during an append leaves: it is ignored (and
 * said). Lines of steps after `iteration` belong to an interrupted run whose weights were never
 * saved; those steps are trained again, so they are dropped rather than repeated. The file is
 * rewritten when either happened, so the next append starts on a clean line. Any other line that
 * does not parse is an error naming the file and line.
 */
function readRunLog<T extends { step: number }>(path: string, iteration: number, log: (msg: string) => void): T[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  // '' when the file ends with its newline
  const torn = lines.pop()!.trim() !== '';
  const kept: { raw: string; rec: T }[] = [];
  let dropped = 0;
  lines.forEach((raw, i) => {
    if (raw.trim() === '') return;
    let rec: T;
    try {
      rec = JSON.parse(raw) as T;
    } catch (e) {
      throw new Error(`${path}: line ${i + 1} is not valid JSON (${(e as Error).message}); fix or delete that line`);
    }
    if (typeof rec?.step !== 'number') throw new Error(`${path}: line ${i + 1} has no "step"; fix or delete that line`);
    if (rec.step <= iteration) kept.push({ raw, rec });
    else dropped++;
  });
  const name = basename(path);
  if (torn) log(`${name}: ignored a torn last line`);
  if (dropped) log(`${name}: dropped ${dropped} line(s) of steps after iteration ${iteration} (not in the checkpoint; trained again)`);
  if (torn || dropped) writeFileAtomic(path, kept.map((k) => k.raw + '\n').join(''));
  return kept.map((k) => k.rec);
}

/** Make renames inside a folder durable (a no-op where folders cannot be fsynced). */
function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported here */
  }
}

function diskError(e: unknown, where: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return new Error(`disk full while saving the checkpoint in ${where}; the previous checkpoint is kept`);
  return new Error(`could not save the checkpoint in ${where}: ${(e as Error).message}; the previous checkpoint is kept`);
}

const CKPT = /^ckpt-(\d+)$/;

/**
 * Whether a checkpoint folder is complete: its state.json (written last, atomically) parses, names
 * the folder's iteration, and the weights and optimizer state are there.
 */
function isCompleteCheckpoint(dir: string, iteration: number): boolean {
  try {
    const st = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { iteration?: unknown };
    if (st.iteration !== iteration) return false;
    const files = readdirSync(dir);
    return files.includes('optimizer.safetensors') && files.some((f) => f.endsWith('.safetensors') && f !== 'optimizer.safetensors' && !f.endsWith('_ema.safetensors'));
  } catch {
    return false;
  }
}

/**
 * Why a complete-looking checkpoint cannot be loaded, or null: each .safetensors file's header must
 * agree with the file's size. A truncated file (a copy cut short, a crash of the file system before
 * its data reached the disk) is caught from the header alone, without reading the tensors.
 */
function checkpointDamage(dir: string): string | null {
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.safetensors'))) {
    try {
      openSafetensors(join(dir, f)).close();
    } catch (e) {
      return (e as Error).message;
    }
  }
  return null;
}

/** The run's checkpoint folders, newest first. */
function checkpointFolders(out: string): { name: string; iteration: number }[] {
  if (!existsSync(out)) return [];
  return readdirSync(out)
    .map((name) => ({ name, m: CKPT.exec(name) }))
    .filter((x) => x.m !== null)
    .map(({ name, m }) => ({ name, iteration: Number(m![1]) }))
    .sort((a, b) => b.iteration - a.iteration);
}

/**
 * Folder of the newest complete checkpoint, or null. The `latest` pointer is not trusted: a kill
 * between renaming `ckpt-N` into place and moving `latest` leaves it one checkpoint behind. A
 * complete checkpoint with a damaged (truncated) file is passed over for the one before it, with a
 * warning through `warn`.
 */
export function latestCheckpoint(out: string, warn?: (msg: string) => void): string | null {
  for (const c of checkpointFolders(out)) {
    const dir = join(out, c.name);
    if (!isCompleteCheckpoint(dir, c.iteration)) continue;
    const damage = checkpointDamage(dir);
    if (!damage) return dir;
    warn?.(`warning: skipped the damaged checkpoint ${c.name} (${damage}); trying an older one`);
  }
  return null;
}

/** what saves leave behind when killed: [name, tmp|old, pid] (only these names, never a user's file) */
const STALE = /^\.?(ckpt-\d+|latest|config\.json|model\.json|(?:structure|texture|discriminator)\.safetensors)\.(tmp|old)-(\d+)$/;

/**
 * Removes what killed processes left in a run folder: temporary checkpoint folders
 * (`.ckpt-N.tmp-PID`) and files (`latest.tmp-PID`, `<kind>.safetensors.tmp-PID`, ...). A complete
 * checkpoint moved aside (`.ckpt-N.old-PID`, a kill while replacing ckpt-N) is put back when
 * `ckpt-N` is missing. Temporaries of running processes (another pid) are left alone.
 */
function cleanStaleTemps(out: string, log: (msg: string) => void): void {
  if (!existsSync(out)) return;
  for (const f of readdirSync(out)) {
    const m = STALE.exec(f);
    if (!m) continue;
    const pid = Number(m[3]);
    if (pid !== process.pid && processAlive(pid)) continue;
    const path = join(out, f);
    const ck = CKPT.exec(m[1]!);
    if (m[2] === 'old' && ck && !existsSync(join(out, m[1]!)) && statSync(path).isDirectory() && isCompleteCheckpoint(path, Number(ck[1]))) {
      renameSync(path, join(out, m[1]!));
      log(`restored ${m[1]} (left aside by a killed process)`);
      continue;
    }
    rmSync(path, { recursive: true, force: true });
  }
}

/** The EMA weights as a state dict, with spectral-norm vectors refitted to the averaged W (from the trainer's current u). */
function emaWeights(ema: Map<string, Float32Array>, current: StateDict): StateDict {
  const sd: StateDict = new Map([...ema].map(([k, a]) => [k, { shape: current.get(k)!.shape, data: a }]));
  return refreshSpectralVectors(sd, current);
}

/** The folder name of a run's checkpoint at `iteration` (ckpt-NNNNNNNN). */
export function checkpointName(iteration: number): string {
  return `ckpt-${String(iteration).padStart(8, '0')}`;
}

function saveCheckpoint(out: string, cfg: RunConfig, state: NetTrainer, ema: Map<string, Float32Array> | null): void {
  const name = checkpointName(state.iteration);
  const tmp = join(out, `.${name}.tmp-${process.pid}`);
  const final = join(out, name);
  const aside = join(out, `.${name}.old-${process.pid}`);
  const latestTmp = join(out, `latest.tmp-${process.pid}`);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const weights = state.toStateDict();
    writeSafetensors(join(tmp, `${cfg.kind}.safetensors`), weights, { kind: cfg.kind, iteration: String(state.iteration) });
    const adam = state.adam.stateDict();
    const opt: StateDict = new Map();
    for (const [k, a] of adam.m) opt.set(`exp_avg.${k}`, { shape: [a.length], data: a });
    for (const [k, a] of adam.v) opt.set(`exp_avg_sq.${k}`, { shape: [a.length], data: a });
    writeSafetensors(join(tmp, 'optimizer.safetensors'), opt);
    const emaSd = ema ? emaWeights(ema, weights) : null;
    if (emaSd) writeSafetensors(join(tmp, `${cfg.kind}_ema.safetensors`), emaSd);
    // written last: a folder with a valid state.json is complete (isCompleteCheckpoint)
    writeJsonAtomic(join(tmp, 'state.json'), { iteration: state.iteration, adamStep: adam.step, lastEpoch: state.schedule.lastEpoch });
    fsyncDir(tmp);
    // a ckpt-N left by a killed run (renamed into place, `latest` never moved) is replaced: rename
    // it aside, rename the new one in, delete the old (a rename cannot replace a non-empty folder)
    if (existsSync(final)) {
      rmSync(aside, { recursive: true, force: true });
      renameSync(final, aside);
    }
    renameSync(tmp, final);
    fsyncDir(out);
    rmSync(aside, { recursive: true, force: true });
    // the top-level weights are what `inpaint --checkpoints RUN_DIR` reads
    writeSafetensors(join(out, `${cfg.kind}.safetensors`), emaSd ?? weights, { kind: cfg.kind, iteration: String(state.iteration) });
    writeFileAtomic(join(out, 'latest'), name);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(latestTmp, { force: true });
    // the new folder never made it: put a moved-aside old one back
    try {
      if (!existsSync(final) && existsSync(aside)) renameSync(aside, final);
      else rmSync(aside, { recursive: true, force: true });
    } catch {
      /* left for cleanStaleTemps at the next start */
    }
    throw diskError(e, out);
  }
  // keep the two newest checkpoints
  for (const old of checkpointFolders(out).slice(2)) rmSync(join(out, old.name), { recursive: true, force: true });
}

function sameIdentity(a: RunConfig, b: RunConfig): string | null {
  for (const k of IDENTITY) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) return `${k} is ${JSON.stringify(a[k])} in the run folder but ${JSON.stringify(b[k])} now`;
  }
  return null;
}

async function maskSource(cfg: RunConfig, maxMegapixels: number | undefined, onSkip: (file: string, e: Error) => void): Promise<MaskSource> {
  if (cfg.masks) return MaskFolder.open(cfg.masks, { size: cfg.size, seed: cfg.seed, maxMegapixels, onSkip });
  return new IrregularMaskGenerator({ size: cfg.size, ratios: cfg.maskRatios.length ? cfg.maskRatios : [...RATIO_BUCKETS], seed: cfg.seed });
}

/**
 * The `prediction` of U-Net `kind` recorded in the model.json beside an --init checkpoint (its
 * folder, or the run folder above a ckpt-NNNNNNNN folder); undefined when there is none or it is
 * unreadable.
 */
export function initPrediction(path: string, kind: 'structure' | 'texture'): string | undefined {
  for (const dir of [dirname(path), dirname(dirname(path))]) {
    if (!existsSync(join(dir, 'model.json'))) continue;
    try {
      return predictionIn(readModelJson(dir), kind);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export async function trainRun(cfg: RunConfig, opts: TrainRunOptions): Promise<{ iteration: number; loss: number }> {
  const log = opts.onLog ?? (() => {});
  if (cfg.kind === 'discriminator' && cfg.batch > 4 && cfg.batch % 4 !== 0) {
    throw new Error(`--batch ${cfg.batch}: the discriminator's minibatch-stddev needs a batch <= 4 or a multiple of 4`);
  }
  mkdirSync(opts.out, { recursive: true });
  // before anything is read or written: a FIFO here would block, a link to a device swallow the run
  checkOutputFiles(opts.out, [...RUN_FILES, `${cfg.kind}.safetensors`]);
  // two trainings into one folder would interleave their logs and checkpoints
  const release = acquireLock(join(opts.out, RUN_LOCK), opts.out, log);
  try {
    return await trainLocked(cfg, opts, log);
  } finally {
    release();
  }
}

async function trainLocked(cfg: RunConfig, opts: TrainRunOptions, log: (msg: string) => void): Promise<{ iteration: number; loss: number }> {
  const structureKind = parseTextureGuideKind(cfg.structureKind ?? 'gray2edge', 'structureKind');
  const spade = cfg.kind === 'texture' ? (cfg.net as UNetConfig).spade : null;
  if (structureKind === 'none' && cfg.kind !== 'texture') throw new Error(`--structure-kind none is for the texture network only (an IR-SDE texture network without structure guide), not the ${cfg.kind} network`);
  if (spade !== null && spade !== (structureKind !== 'none')) {
    throw new Error(structureKind === 'none' ? 'an unguided texture network (--structure-kind none) must have no SPADE blocks (spade: false)' : `a texture network guided by ${structureKind} structure needs SPADE blocks (spade: true)`);
  }
  const cfgPath = join(opts.out, 'config.json');
  let weights: StateDict;
  let resumeDir: string | null = null;
  let resumeState: { iteration: number; adamStep: number; lastEpoch: number } | null = null;
  if (opts.resume) {
    if (!existsSync(cfgPath)) throw new Error(`--resume: ${opts.out} has no config.json (not a run folder)`);
    const prev = readJson<{ run: RunConfig }>(cfgPath).run;
    const why = sameIdentity(prev, cfg);
    if (why) throw new Error(`--resume: ${opts.out} is a run of another configuration (${why})`);
    // runs from before the fill option have none: they used the official zero fill
    if ((prev.fill ?? 'zero') !== (cfg.fill ?? 'zero')) throw new Error(`--resume: ${opts.out} was trained with --fill ${prev.fill ?? 'zero'}, not ${cfg.fill ?? 'zero'}`);
    if ((prev.structureKind ?? 'gray2edge') !== (cfg.structureKind ?? 'gray2edge')) throw new Error(`--resume: ${opts.out} was trained with --structure-kind ${prev.structureKind ?? 'gray2edge'}, not ${cfg.structureKind ?? 'gray2edge'}`);
    cleanStaleTemps(opts.out, log);
    resumeDir = latestCheckpoint(opts.out, log);
    if (!resumeDir) throw new Error(`--resume: ${opts.out} has no complete checkpoint yet`);
    // a kill between a checkpoint's rename and the pointer's leaves `latest` behind: catch it up
    const latestFile = join(opts.out, 'latest');
    const resumeName = basename(resumeDir);
    if (!existsSync(latestFile) || readFileSync(latestFile, 'utf8').trim() !== resumeName) writeFileAtomic(latestFile, resumeName);
    weights = checkWeights(cfg.kind, cfg.net, readSafetensors(join(resumeDir, `${cfg.kind}.safetensors`)), resumeDir);
    resumeState = readJson(join(resumeDir, 'state.json'));
  } else {
    // a damaged checkpoint still marks a run: a new one here would drop its logs
    if (checkpointFolders(opts.out).some((c) => isCompleteCheckpoint(join(opts.out, c.name), c.iteration))) {
      throw new Error(`${opts.out} already holds a run: pass --resume to continue it, or choose another --out`);
    }
    cleanStaleTemps(opts.out, log);
    // names and shapes are checked from the file's headers before its data is read
    weights = cfg.init ? checkWeights(cfg.kind, cfg.net, loadCheckpoint(cfg.init, { expect: paramSpec(cfg.kind, cfg.net), what: cfg.init }), cfg.init) : initWeights(cfg.kind, cfg.net, cfg.seed);
    // 'x0' prediction starts from r = 0, i.e. x̂0 = μ (the fill): a zero last conv; weights of an
    // x0-trained net keep theirs (zeroing them would silently throw away the learned residual)
    if (cfg.kind !== 'discriminator' && (cfg.net as UNetConfig).prediction === 'x0' && !(cfg.init && initPrediction(cfg.init, cfg.kind) === 'x0')) {
      if (cfg.init) log(`--init ${cfg.init}: not an x0-prediction checkpoint (no model.json beside it says so), so its last conv is zeroed: the run starts from x̂0 = μ`);
      for (const k of ['final_conv.weight', 'final_conv.bias']) {
        const w = weights.get(k);
        if (w) weights.set(k, { shape: w.shape, data: new Float32Array(w.data.length) });
      }
    }
  }
  // the logs, read before any work: a torn last line is cut, steps past the checkpoint dropped
  const diagPath = join(opts.out, 'diagnostics.jsonl');
  const metricsPath = join(opts.out, 'metrics.jsonl');
  const diagHistory = readRunLog<DiagnosticsEntry>(diagPath, resumeState?.iteration ?? 0, log);
  const history = readRunLog<{ step: number; loss: number }>(metricsPath, resumeState?.iteration ?? 0, log);
  writeJsonAtomic(cfgPath, { run: cfg, command: opts.command ?? null, created: new Date().toISOString() });
  writeModelJson(opts.out, {
    T: cfg.T, kind: cfg.kind, config: cfg.net,
    ...(cfg.kind !== 'structure' ? { fill: cfg.fill ?? 'zero' } : {}),
    structureKind,
    ...(cfg.kind !== 'discriminator' && (cfg.net as UNetConfig).prediction === 'x0' ? { prediction: 'x0' } : {}),
    files: { [cfg.kind]: `${cfg.kind}.safetensors` },
  });
  const fill = parseFill(cfg.fill ?? 'zero', 'fill');
  await prepareFill(fill);
  const adamOpts = { ...(cfg.kind === 'discriminator' ? ADAM_DISC : ADAM_UNET), lr: cfg.lr };
  const state = await createTrainer(opts.executor ?? 'onnx', cfg.kind, cfg.net, weights, {
    threads: opts.threads,
    T: cfg.T,
    adam: adamOpts,
    schedule: new MultiStepLR(cfg.lr, cfg.kind === 'discriminator' ? [] : cfg.milestones, 0.5),
  });
  let ema: Map<string, Float32Array> | null = null;
  if (resumeDir && resumeState) {
    const st = resumeState;
    const opt = readSafetensors(join(resumeDir, 'optimizer.safetensors'));
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const [k, t] of opt) {
      if (k.startsWith('exp_avg_sq.')) v.set(k.slice('exp_avg_sq.'.length), t.data);
      else if (k.startsWith('exp_avg.')) m.set(k.slice('exp_avg.'.length), t.data);
    }
    state.adam.loadStateDict({ step: st.adamStep, m, v });
    state.iteration = st.iteration;
    state.schedule.lastEpoch = st.lastEpoch;
    if (cfg.ema && existsSync(join(resumeDir, `${cfg.kind}_ema.safetensors`))) {
      ema = new Map([...readSafetensors(join(resumeDir, `${cfg.kind}_ema.safetensors`))].map(([k, t]) => [k, t.data]));
    }
    log(`resumed ${opts.out} at iteration ${st.iteration}`);
  }
  if (cfg.ema && !ema) ema = new Map([...state.toStateDict()].map(([k, t]) => [k, Float32Array.from(t.data)]));

  // resumed runs continue with fresh but reproducible streams
  const streamSeed = cfg.seed + state.iteration * 7919;
  // skipped files (unreadable, over the megapixel limit) are reported when first met and counted at the end
  const skippedImages = new SkippedFiles('image');
  const skippedMasks = new SkippedFiles('mask');
  const reportSkip = (to: SkippedFiles) => (file: string, e: Error) => {
    const line = to.add(file, e);
    if (line) log(line);
  };
  const maxMegapixels = opts.maxMegapixels;
  const loader = await ImageFolderLoader.open({ root: cfg.data, size: cfg.size, batchSize: cfg.batch, seed: streamSeed, sigma: 3, zoom: cfg.zoom ?? 1, maxMegapixels, onSkip: reportSkip(skippedImages) });
  const masks = await maskSource({ ...cfg, seed: streamSeed }, maxMegapixels, reportSkip(skippedMasks));
  // a fixed batch (its own seeds, unaffected by resuming) for the diagnostics of the U-Nets
  const diagEvery = opts.diagEvery ?? 1000;
  let diagBatch: ObjectiveBatch | null = null;
  if (diagEvery > 0 && cfg.kind !== 'discriminator') {
    const dl = await ImageFolderLoader.open({ root: opts.diagData ?? cfg.data, size: cfg.size, batchSize: 4, seed: 12345, sigma: 3, maxMegapixels, onSkip: reportSkip(skippedImages) });
    const b = await dl.next();
    await dl.close();
    const dm = new IrregularMaskGenerator({ size: cfg.size, ratios: [[0.3, 0.4]], seed: 12345 });
    diagBatch = { GT: b.GT, gray: b.gray, edge: b.edge, mask: await dm.batch(4), fill: cfg.fill, structureKind };
  }
  const runDiagnostics = async () => {
    if (!diagBatch || cfg.kind === 'discriminator') return;
    // the EMA is what gets shipped, so it is what is diagnosed
    const cur = state.toStateDict();
    const weights: StateDict = ema ? emaWeights(ema, cur) : cur;
    const d = await diagnoseUNet(cfg.kind, withLevelTables(cfg.net, state.sde), weights, state.sde, diagBatch, { seed: 1, threads: 1 });
    const entry: DiagnosticsEntry = { step: state.iteration, levels: d.levels, marginal: d.marginal, trajectory: d.trajectory, muBaseline: d.muBaseline, meanFill: d.meanFill };
    diagHistory.push(entry);
    appendLogLine(diagPath, JSON.stringify(entry));
    writeFileAtomic(join(opts.out, 'diagnostics.svg'), diagnosticsSvg(diagHistory, `${cfg.kind} network`));
  };
  const noise = new SeededNoise(streamSeed + 1);
  let smooth = history.length ? history[history.length - 1]!.loss : NaN;
  let last = NaN;
  const target = state.iteration + opts.steps;
  try {
    while (state.iteration < target) {
      const t0 = performance.now();
      const batch = await loader.next();
      const mask = await masks.batch(cfg.batch);
      // the discriminator's scores are tiny: keep them for its accuracy
      const r = await trainStep(cfg.kind, state, { GT: batch.GT, gray: batch.gray, edge: batch.edge, mask, fill, structureKind }, noise, { inspect: cfg.kind === 'discriminator' });
      if (!Number.isFinite(r.loss)) throw new Error(`loss became ${r.loss} at iteration ${state.iteration}; lower --lr`);
      if (ema) {
        const cur = state.toStateDict();
        const b = cfg.ema!;
        for (const [k, a] of ema) {
          // spectral-norm vectors are not averaged (averaged unit vectors shrink): emaWeights refits them
          if (isSpectralBuffer(k)) continue;
          const p = cur.get(k)!.data;
          for (let i = 0; i < a.length; i++) a[i] = b * a[i]! + (1 - b) * p[i]!;
        }
      }
      const sec = (performance.now() - t0) / 1000;
      last = r.loss;
      smooth = Number.isNaN(smooth) ? r.loss : 0.98 * smooth + 0.02 * r.loss;
      const rec: Record<string, unknown> = { step: state.iteration, loss: r.loss, lr: r.lr, seconds_per_step: Number(sec.toFixed(4)), t: r.t };
      // fraction of the batch where D scores the real y* above the fake y_t
      if (cfg.kind === 'discriminator' && r.aux) rec.d_accuracy = discriminatorAccuracy(r.aux);
      appendLogLine(metricsPath, JSON.stringify(rec));
      history.push({ step: state.iteration, loss: r.loss });
      opts.onProgress?.({ step: state.iteration, steps: target, loss: r.loss, smoothLoss: smooth, lr: r.lr, secondsPerStep: sec });
      const stop = opts.shouldStop?.() ?? false;
      if (state.iteration % cfg.saveEvery === 0 || state.iteration === target || stop) {
        saveCheckpoint(opts.out, cfg, state, ema);
        writeFileAtomic(join(opts.out, 'loss.svg'), lossCurveSvg(history, `${cfg.kind} network`));
      }
      if (diagEvery > 0 && (state.iteration % diagEvery === 0 || (stop && diagHistory.length === 0))) await runDiagnostics();
      if (stop) break;
    }
  } finally {
    for (const line of [...skippedImages.summary(), ...skippedMasks.summary()]) log(line);
    await loader.close();
    await state.dispose();
  }
  return { iteration: state.iteration, loss: last };
}
