/** The solvers by name; adding one is one file and one line here. */
import { SOLVERS, parseChoice, type Solver } from '../../options.js';
import { sdeSolver } from './sde.js';
import { posteriorSolver } from './posterior.js';
import { mrOde1Solver } from './mr-ode-1.js';
import { mrOde2Solver } from './mr-ode-2.js';
import { mrSde2Solver } from './mr-sde-2.js';
import type { SolverDef } from './types.js';

export type { SolverDef, SolverInput, SolverOutput, SolverHistory } from './types.js';
export { SOLVERS, type Solver } from '../../options.js';

const BY_NAME = {
  sde: sdeSolver,
  posterior: posteriorSolver,
  'mr-ode-1': mrOde1Solver,
  'mr-ode-2': mrOde2Solver,
  'mr-sde-2': mrSde2Solver,
} satisfies Record<Solver, SolverDef>;

export function solverOf(name: string): SolverDef {
  return BY_NAME[parseChoice(SOLVERS, name, 'solver')];
}
