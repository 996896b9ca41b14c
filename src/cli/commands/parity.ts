import type { Command } from 'commander';
import { runParity, formatResult } from '../../parity/runner.js';
import { EXECUTOR_NAMES, parseExecutor } from '../../exec/registry.js';

export function register(program: Command): void {
  program
    .command('parity')
    .description('compare against the recorded official outputs of a fixtures folder')
    .argument('[dir]', 'fixtures folder with manifest.json', '../shared/fixtures/parity')
    .option('--executor <list>', `comma-separated executors (${EXECUTOR_NAMES.join(', ')})`, EXECUTOR_NAMES.join(','))
    .option('--filter <regex>', 'only cases whose name matches')
    .action(async (dir: string, o: { executor: string; filter?: string }) => {
      const report = await runParity(dir, {
        executors: o.executor.split(',').filter(Boolean).map((e) => parseExecutor(e, '--executor')!),
        filter: o.filter ? new RegExp(o.filter) : undefined,
        onResult: (r) => console.log(formatResult(r)),
        onSkip: (s) => console.log(`SKIP  ${s.name.padEnd(44)} ${s.reason}`),
      });
      console.log(`parity: ${report.passed} passed, ${report.failed} failed, ${report.skipped.length} skipped`);
      process.exitCode = report.failed > 0 ? 1 : 0;
    });
}
