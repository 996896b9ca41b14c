/**
 * `npm run bench [-- --train | --sampler | --queue | --browser | --fill] [--size 256] [--json] ...`: dispatches to one benchmark
 * module (bench/forward.ts by default). Each module exports `main(args: string[])` and prints figures.
 */
const args = process.argv.slice(2);
const MODULES = ['train', 'sampler', 'queue', 'browser', 'fill'] as const;
const which = MODULES.find((m) => args.includes(`--${m}`)) ?? 'forward';
const mod = (await import(`./${which}.ts`)) as { main: (a: string[]) => Promise<void> };
await mod.main(args.filter((a) => !MODULES.some((m) => a === `--${m}`)));
