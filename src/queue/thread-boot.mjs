// Thread entry in plain JS: the thread has its own module loader, so TypeScript support must be
// registered here before the sampler's sources can be imported (as src/server/worker-boot.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
