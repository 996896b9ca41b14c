/**
 * The one rule for a run's solver, sampling steps and grid spacing: the call's options, else the
 * model's model.json, else the official full grid with its Euler step. Kept apart from the
 * pipeline so the server's main thread (which checks and reports jobs) can use it without loading
 * the networks' runtime.
 */
import type { ModelMeta } from '../model/checkpoints.js';
import type { Solver, Spacing, StepRule } from '../options.js';
import { StrDiffusionError } from '../util/errors.js';

export interface SamplingChoice {
  /** the sampler variant (else the model's): `one-call` has no grid, so its steps are 1 whatever was asked */
  sampler?: string;
  solver?: Solver;
  /** the older name of `solver` */
  stepRule?: StepRule;
  steps?: number;
  spacing?: Spacing;
}

/**
 * A `steps` above T, or fewer steps than T with the one-level `sde` solver, is a BAD_OPTION error.
 * The `one-call` sampler makes one network call and no solver step: its steps are 1, so progress
 * and job reports count what runs.
 */
export function samplingOf(o: SamplingChoice, meta: Pick<ModelMeta, 'solver' | 'stepRule' | 'steps' | 'spacing'> & { sampler?: unknown }, T: number): { solver: Solver; steps: number; spacing: Spacing } {
  // a call's stepRule is the older name of its solver: it beats the model's default solver
  const solver = o.solver ?? o.stepRule ?? meta.solver ?? meta.stepRule ?? 'sde';
  if ((o.sampler ?? meta.sampler) === 'one-call') return { solver, steps: 1, spacing: o.spacing ?? meta.spacing ?? 'uniform' };
  // the official step moves one level at a time: with it, the model's default step count gives way to the full grid
  const steps = o.steps ?? (solver === 'sde' ? T : (meta.steps ?? T));
  if (steps > T) throw new StrDiffusionError('BAD_OPTION', `steps ${steps} is more than the model's diffusion length T = ${T}`);
  if (solver === 'sde' && steps !== T) throw new StrDiffusionError('BAD_OPTION', `the sde solver moves one level per step: ${steps} steps need another solver (posterior, mr-ode-1, mr-ode-2, mr-sde-2), or steps = T = ${T}`);
  return { solver, steps, spacing: o.spacing ?? meta.spacing ?? 'uniform' };
}
