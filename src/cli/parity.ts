/** `npm run parity -- <fixtures-dir> [--executor tfjs,onnx] [--filter REGEX]` */
import { runParity, formatResult } from '../parity/runner.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let dir = '../shared/fixtures/parity';
  let executors: string[] | undefined;
  let filter: RegExp | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--executor' || a === '--executors') executors = (args[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--filter') filter = new RegExp(args[++i] ?? '');
    else if (a === '-h' || a === '--help') {
      console.log('usage: npm run parity -- [FIXTURES_DIR] [--executor tfjs,onnx] [--filter REGEX]');
      return;
    } else dir = a;
  }
  const report = await runParity(dir, {
    executors,
    filter,
    onResult: (r) => console.log(formatResult(r)),
    onSkip: (s) => console.log(`SKIP  ${s.name.padEnd(44)} ${s.reason}`),
  });
  console.log(`parity: ${report.passed} passed, ${report.failed} failed, ${report.skipped.length} skipped`);
  process.exitCode = report.failed > 0 ? 1 : 0;
}

main().catch((e: Error) => {
  console.error(`parity: ${e.message}`);
  process.exit(2);
});
