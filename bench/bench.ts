/**
 * `npm run bench [-- --train | --sampler | --browser] [--size 256] [--json] ...`: dispatches to one benchmark
 * module (bench/forward.ts by default). Each module exports `main(args: string[])` and prints figures.
 */
const args = process.argv.slice(2);
const which = args.includes('--train') ? 'train' : args.includes('--sampler') ? 'sampler' : args.includes('--browser') ? 'browser' : 'forward';
const mod = (await import(`./${which}.ts`)) as { main: (a: string[]) => Promise<void> };
await mod.main(args.filter((a) => a !== '--train' && a !== '--sampler' && a !== '--browser'));
