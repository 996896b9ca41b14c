/**
 * Where the shared test fixtures live: `../shared/fixtures` beside the repository, resolved from
 * this file (no absolute paths, so a checkout anywhere finds them).
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES_ROOT = resolve(REPO_ROOT, '../shared/fixtures');

/** A path inside the fixtures root, e.g. `fixture('parity/nets')`. */
export function fixture(...parts: string[]): string {
  return join(FIXTURES_ROOT, ...parts);
}
