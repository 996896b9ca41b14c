/**
 * `strdiffusion <command>`: every module in ./commands exports `register(program)` and adds its
 * own sub-command, so commands are added without touching this file.
 */
import { Command } from 'commander';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StrDiffusionError, type OptionNamer } from '../util/errors.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(here, '../../package.json'), 'utf8')) as { version: string };

/** A library option as the CLI's flag: `T` -> `--T`, `resizeMask` -> `--resize-mask`; with a value, `--T 20`. */
const cliFlag: OptionNamer = (option, value) => {
  const flag = `--${/^[a-z]/.test(option) ? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`) : option}`;
  return value === undefined ? flag : `${flag} ${value}`;
};

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
  // one clear line for the user, naming options as flags (a library error says options.T, here --T);
  // the stack only when asked for
  const message = e instanceof StrDiffusionError ? e.wordedFor(cliFlag) : (e as Error).message;
  console.error(`strdiffusion: ${message}`);
  if (process.env.STRDIFFUSION_DEBUG) console.error(e);
  process.exit(1);
}
