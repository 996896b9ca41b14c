/** Executors by name, loaded lazily so a user of one never pays for loading the other. */
import type { Executor } from './types.js';

export const EXECUTOR_NAMES = ['tfjs', 'onnx'] as const;

export async function getExecutor(name: string): Promise<Executor> {
  switch (name) {
    case 'tfjs': {
      const { TfjsExecutor } = await import('./tfjs.js');
      return new TfjsExecutor();
    }
    case 'onnx': {
      const { OnnxExecutor } = await import('./onnx/executor.js');
      return new OnnxExecutor();
    }
    default:
      throw new Error(`unknown executor "${name}" (expected one of ${EXECUTOR_NAMES.join(', ')})`);
  }
}
