/**
 * The parity runner: reads a fixtures folder's manifest.json and runs every case whose kind a
 * module in ./cases handles. Each module in ./cases exports `handlers: Record<kind, CaseHandler>`,
 * so adding a kind of case means adding a file, not editing this one.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeContext, type CaseHandler, type CheckResult, type Manifest } from './types.js';
import { EXECUTOR_NAMES, parseExecutor } from '../exec/registry.js';

export interface ParityReport {
  results: CheckResult[];
  skipped: { name: string; kind: string; reason: string }[];
  passed: number;
  failed: number;
}

export async function loadHandlers(): Promise<Record<string, CaseHandler>> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'cases');
  const all: Record<string, CaseHandler> = {};
  for (const f of readdirSync(dir).sort()) {
    if (!/\.(ts|js)$/.test(f) || f.endsWith('.d.ts')) continue;
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { handlers?: Record<string, CaseHandler> };
    Object.assign(all, mod.handlers ?? {});
  }
  return all;
}

export interface RunOptions {
  /** default: every executor (EXECUTOR_NAMES) */
  executors?: string[];
  /** only cases whose name matches */
  filter?: RegExp;
  onResult?: (r: CheckResult) => void;
  onSkip?: (s: { name: string; kind: string; reason: string }) => void;
}

export async function runParity(dir: string, opts: RunOptions = {}): Promise<ParityReport> {
  const mpath = join(dir, 'manifest.json');
  if (!existsSync(mpath)) throw new Error(`no manifest.json in ${dir}`);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(mpath, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`${mpath}: not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(manifest.cases)) throw new Error(`${mpath}: no "cases" array`);
  const handlers = await loadHandlers();
  const executors = opts.executors ?? [...EXECUTOR_NAMES];
  for (const e of executors) parseExecutor(e);
  const ctx = makeContext(dir, manifest, executors);
  const report: ParityReport = { results: [], skipped: [], passed: 0, failed: 0 };
  for (const c of manifest.cases) {
    if (opts.filter && !opts.filter.test(c.name)) continue;
    const h = handlers[c.kind];
    if (!h) {
      const s = { name: c.name, kind: c.kind, reason: `kind "${c.kind}" not handled yet` };
      report.skipped.push(s);
      opts.onSkip?.(s);
      continue;
    }
    let rs: CheckResult[];
    try {
      rs = await h(c, ctx);
    } catch (e) {
      rs = [{ name: c.name, executor: '-', error: Infinity, tolerance: 0, pass: false, detail: `error: ${(e as Error).message}` }];
    }
    for (const r of rs) {
      report.results.push(r);
      if (r.pass) report.passed++;
      else report.failed++;
      opts.onResult?.(r);
    }
  }
  return report;
}

export function formatResult(r: CheckResult): string {
  const e = Number.isFinite(r.error) ? r.error.toExponential(2) : String(r.error);
  return `${r.pass ? 'PASS' : 'FAIL'}  ${r.name.padEnd(44)} ${r.executor.padEnd(6)} err ${e.padStart(9)}  tol ${r.tolerance.toExponential(1)}${r.detail ? `  ${r.detail}` : ''}`;
}
