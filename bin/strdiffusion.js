#!/usr/bin/env node
// An installed package runs the compiled CLI (dist/). A source checkout (src/ beside bin/, which the
// package does not ship) runs the TypeScript sources through tsx, so development has no build step
// to forget.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/cli/main.js');
}
