/** Command-line option parsers: one parser, one wording for every command's errors. */
import { isStepRule, type StepRule } from '../sampler/strdiffusion.js';
import { PRECISIONS, type Precision } from '../exec/onnx/quant.js';
import { StrDiffusionError } from '../util/errors.js';
import { MAX_SIZE, MAX_T } from '../model/checkpoints.js';
import { parseChoice, SOLVERS, SPACINGS, type Solver, type Spacing } from '../options.js';

export interface NumberRule {
  /** default true */
  integer?: boolean;
  min?: number;
  /** strictly greater than 0 */
  positive?: boolean;
  /** at most this; default: MAX_T (10000) for an option named T, MAX_SIZE (4096) for one named
   * size, as model.json (a count that sizes arrays and loops needs an upper bound) */
  max?: number;
}

const DEFAULT_MAX: Record<string, number> = { T: MAX_T, size: MAX_SIZE };

export function parseNumberOption(v: string, name: string, rule: NumberRule = {}): number {
  const { integer = true, min, positive } = rule;
  // Number('') is 0 and parseInt('3x') is 3: reject both
  const n = v.trim() === '' ? NaN : Number(v);
  const ok = Number.isFinite(n) && (!integer || Number.isInteger(n)) && (min === undefined || n >= min) && (!positive || n > 0);
  if (!ok) {
    const kind = integer ? 'integer' : 'number';
    const what = positive ? `a positive ${kind}` : min !== undefined ? `${integer ? 'an' : 'a'} ${kind} >= ${min}` : `${integer ? 'an' : 'a'} ${kind}`;
    throw new Error(`--${name} must be ${what} (got "${v}")`);
  }
  const max = rule.max ?? (Object.hasOwn(DEFAULT_MAX, name) ? DEFAULT_MAX[name] : undefined);
  if (max !== undefined && n > max) throw new Error(`--${name} must be at most ${max} (got "${v}")`);
  return n;
}

/**
 * `--seed`: a non-negative safe integer. NaN, negative, fractional or rounded-off (> 2^53) seeds
 * would silently alias other seeds in the noise generator's integer seeding.
 */
export function parseSeed(v: string | undefined, name = 'seed'): number | undefined {
  if (v === undefined) return undefined;
  const n = v.trim() === '' ? NaN : Number(v);
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new StrDiffusionError('BAD_OPTION', `--${name} must be a non-negative safe integer (got "${v}")`);
  return n;
}

export function optionalNumber(v: string | undefined, name: string, rule: NumberRule = {}): number | undefined {
  return v === undefined ? undefined : parseNumberOption(v, name, rule);
}

export const STEP_RULE_HELP = "reverse step per network call: sde (official) or posterior (x0 prediction clamped to [0,1], steadier for small models); default: the model's model.json, else sde";

export function parseStepRule(v: string | undefined): StepRule | undefined {
  if (v === undefined) return undefined;
  if (!isStepRule(v)) throw new Error(`--step-rule must be sde or posterior (got "${v}")`);
  return v;
}

export const SOLVER_HELP = `how one network call moves a state to the next grid level: ${SOLVERS.join(' | ')} (sde: the official Euler step, every level only; posterior: exact posterior jump; mr-*: MR Sampler ODE/SDE solvers); default: the model's model.json, else sde`;
export const STEPS_HELP = "sampling steps N (network-call rounds), 1..T; fewer than T needs a solver other than sde (default: the model's model.json, else T)";
export const SPACING_HELP = `how the sampling grid spaces its levels: ${SPACINGS.join(' | ')} (default: the model's model.json, else uniform)`;

/** --solver, --steps, --spacing and the older --step-rule of inpaint and eval, parsed. */
export function parseSampling(o: { solver?: string; steps?: string; spacing?: string; stepRule?: string }): { solver?: Solver; steps?: number; spacing?: Spacing; stepRule?: StepRule } {
  return {
    solver: o.solver === undefined ? undefined : parseChoice(SOLVERS, o.solver, '--solver'),
    steps: optionalNumber(o.steps, 'steps', { min: 1 }),
    spacing: o.spacing === undefined ? undefined : parseChoice(SPACINGS, o.spacing, '--spacing'),
    stepRule: parseStepRule(o.stepRule),
  };
}

export function parsePrecision(v: string | undefined): Precision | undefined {
  if (v === undefined) return undefined;
  if (!(PRECISIONS as readonly string[]).includes(v)) throw new Error(`--precision must be one of ${PRECISIONS.join(', ')} (got "${v}")`);
  return v as Precision;
}
