/** Parity runner plumbing: a fixtures folder has a manifest.json listing cases by `kind`. */
import { join } from 'node:path';
import { readNpy, type NpyArray } from '../weights/npy.js';

export interface FileEntry {
  file: string;
  dtype: string;
  shape: number[];
}

/** One case of manifest.json; the fields beyond name/kind depend on the kind. */
export interface ParityCase {
  name: string;
  kind: string;
  config?: any;
  values?: any;
  files: Record<string, any>;
  tolerance?: any;
  [k: string]: any;
}

export interface Manifest {
  format: string;
  cases: ParityCase[];
  [k: string]: any;
}

/** One reported comparison: one line of the runner's output. */
export interface CheckResult {
  name: string;
  executor: string;
  /** max-abs error (or count of differing items for exact comparisons) */
  error: number;
  tolerance: number;
  pass: boolean;
  detail?: string;
}

export interface ParityContext {
  dir: string;
  manifest: Manifest;
  /** load an array of the fixtures folder by its manifest entry or relative path */
  load(entry: FileEntry | string): NpyArray;
  path(rel: string): string;
  /** executors selected on the command line (e.g. ['onnx']) */
  executors: string[];
}

export type CaseHandler = (c: ParityCase, ctx: ParityContext) => Promise<CheckResult[]>;

export function makeContext(dir: string, manifest: Manifest, executors: string[]): ParityContext {
  return {
    dir,
    manifest,
    executors,
    path: (rel) => join(dir, rel),
    load(entry) {
      const rel = typeof entry === 'string' ? entry : entry.file;
      return readNpy(join(dir, rel));
    },
  };
}

export function check(name: string, executor: string, error: number, tolerance: number, detail?: string): CheckResult {
  return { name, executor, error, tolerance, pass: Number.isFinite(error) && error <= tolerance, detail };
}
