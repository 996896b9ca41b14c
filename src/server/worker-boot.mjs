// Worker entry in plain JS: the worker has its own module loader, so TypeScript support must be
// registered here before the sampler's sources can be imported (works under the CLI and vitest).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
