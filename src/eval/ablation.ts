/**
 * The paper's sampler ablation as evaluation methods (issue 25), all on the same pairs and seeds:
 * (A) RePaint-style resampling without structure, (B) no discriminator, (C) no adaptive resampling
 * (structure at every early step), (D) StrDiffusion; plus the plain IR-SDE texture diffusion, D with
 * the official quirks fixed (`improved`) and any structure-variant models (structure kinds) given
 * as folders. A and IR-SDE need an unguided texture network (trained with --structure-kind none);
 * without one they are left out, said so in the report.
 */
import { basename, dirname } from 'node:path';
import { readModelJson } from '../model/checkpoints.js';
import type { SamplerVariant } from '../options.js';
import { modelMethod, type Method, type ModelMethodOptions } from './methods.js';

export interface AblationRow {
  /** A, B, C, D, or '' for the baselines / variants */
  id: string;
  /** the method's name in the results */
  method: string;
  what: string;
}

export interface AblationPlan {
  rows: AblationRow[];
  /** what was left out and why */
  notes: string[];
}

export interface AblationOptions {
  /** the StrDiffusion model (B, C, D); undefined = the bundled one */
  checkpoints?: string[];
  /** an unguided IR-SDE texture model (IR-SDE and A) */
  irsde?: string[];
  /** structure-variant models, each run with D's sampler */
  variants?: string[][];
  /** shared settings (T, size, solver, steps, spacing, executor, precision) */
  common: Omit<ModelMethodOptions, 'checkpoints' | 'sampler'>;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '_');

export function ablationMethods(o: AblationOptions): { methods: Method[]; plan: AblationPlan } {
  const methods: Method[] = [];
  const rows: AblationRow[] = [];
  const notes: string[] = [];
  const add = (id: string, name: string, what: string, checkpoints: string[] | undefined, sampler: SamplerVariant) => {
    methods.push(modelMethod({ ...o.common, checkpoints, sampler }, name));
    rows.push({ id, method: name, what });
  };
  if (o.irsde) {
    add('', 'irsde', 'IR-SDE: plain texture diffusion, no structure', o.irsde, 'irsde');
    add('A', 'A-repaint', 'RePaint-style resampling, no structure', o.irsde, 'repaint');
  } else {
    notes.push('IR-SDE and (A) left out: they need an unguided texture model (`train texture --structure-kind none`), given with --irsde DIR.');
  }
  add('B', 'B-no-discriminator', 'structure + resampling, no discriminator', o.checkpoints, 'no-discriminator');
  add('C', 'C-no-resampling', 'structure at every early step, no adaptive resampling', o.checkpoints, 'no-resampling');
  add('D', 'D-strdiffusion', 'StrDiffusion (structure, discriminator, adaptive resampling)', o.checkpoints, 'official');
  // not in the paper: D without the official code's sampler quirks, to tell the method from them
  add('', 'D-improved', "D with the official sampler's quirks fixed (design.md §6.1 items 1, 4, 5)", o.checkpoints, 'improved');
  const seen = new Set(rows.map((r) => r.method));
  for (const dirs of o.variants ?? []) {
    const kind = dirs.map((d) => readModelJson(d).structureKind).find((k) => k !== undefined) ?? 'gray2edge';
    let name = `kind-${kind}`;
    if (seen.has(name)) name = `${name}-${safe(basename(dirs[0]!))}`;
    seen.add(name);
    // run folders are named for their network: name the folder that holds them instead
    const where = dirs.every((d) => ['structure', 'texture', 'discriminator'].includes(basename(d))) ? basename(dirname(dirs[0]!)) : dirs.map((d) => basename(d)).join(', ');
    add('', name, `${kind} structure (${where}), sampler of D`, dirs, 'official');
  }
  return { methods, plan: { rows, notes } };
}
