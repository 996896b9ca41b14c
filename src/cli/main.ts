/**
 * `strdiffusion <command>`: every module in ./commands exports `register(program)` and adds its
 * own sub-command, so commands are added without touching this file.
 */
import { Command } from 'commander';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(here, '../../package.json'), 'utf8')) as { version: string };

const program = new Command();
program
  .name('strdiffusion')
  .description('StrDiffusion image inpainting (structure-guided diffusion), in TypeScript')
  .version(pkg.version)
  .showHelpAfterError();

for (const f of readdirSync(join(here, 'commands')).sort()) {
  if (!/\.(ts|js)$/.test(f) || f.endsWith('.d.ts')) continue;
  const mod = (await import(pathToFileURL(join(here, 'commands', f)).href)) as { register?: (p: Command) => void };
  mod.register?.(program);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // one clear line for the user; the stack only when asked for
  console.error(`strdiffusion: ${(e as Error).message}`);
  if (process.env.STRDIFFUSION_DEBUG) console.error(e);
  process.exit(1);
}
