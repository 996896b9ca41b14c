/**
 * Executors by name, defined once (inpaint, eval, serve, parity) and loaded lazily so a user of one
 * never pays for loading another. onnxruntime is the only one; the list stays so another can be
 * added later.
 */
import type { Executor } from './types.js';

import { EXECUTOR_NAMES, type ExecutorName } from '../options.js';

export { EXECUTOR_NAMES, type ExecutorName } from '../options.js';

export function isExecutorName(s: string): s is ExecutorName {
  return (EXECUTOR_NAMES as readonly string[]).includes(s);
}

/** The one-line error for a name that is not an executor (`what`: the option or variable that gave it). */
export function unknownExecutor(name: string, what = 'executor', allowed: readonly string[] = EXECUTOR_NAMES): Error {
  const removed = name === 'tfjs' ? '; the TensorFlow.js executor was removed' : '';
  return new Error(`${what} must be ${allowed.length === 1 ? allowed[0] : `one of ${allowed.join(', ')}`} (got "${name}"${removed})`);
}

/** Validate an executor name (undefined passes through: the caller's default applies). */
export function parseExecutor(name: string | undefined, what = 'executor'): ExecutorName | undefined {
  if (name === undefined) return undefined;
  if (!isExecutorName(name)) throw unknownExecutor(name, what);
  return name;
}

export async function getExecutor(name: string): Promise<Executor> {
  switch (name) {
    case 'onnx': {
      const { OnnxExecutor } = await import('./onnx/executor.js');
      return new OnnxExecutor();
    }
    default:
      throw unknownExecutor(name);
  }
}
