/**
 * `strdiffusion analyze --images DIR [--masks DIR] --method NAME=DIRS[@SAMPLER][,GUIDE] ...`: the paper's
 * semantic-discrepancy analysis (src/eval/analyze.ts): per step, PSNR and SSIM of the hole and of
 * the known region for the state and x̂0 of both processes; writes analysis.json, the figure
 * (discrepancy.svg / .png) and the strip of states (strip.svg / .png).
 */
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { analyze, type AnalyzeMethodSpec } from '../../eval/analyze.js';
import { writeAnalysis } from '../../eval/analyze-plot.js';
import { parseRatioList, DEFAULT_BUCKETS } from '../../eval/pairs.js';
import { modelWindowSize } from '../../model/checkpoints.js';
import { DIAGNOSTIC_STRUCTURE_GUIDES, isOneOf, SAMPLER_VARIANTS, type DiagnosticStructureGuide, type SamplerVariant } from '../../options.js';
import { optionalNumber, parseSampling, parseSeed, SOLVER_HELP, SPACING_HELP, STEPS_HELP } from '../args.js';
import { checkOutputDir, checkOutputFiles } from '../../util/files.js';

/**
 * `NAME=DIR[,DIR...][@CHOICES]` (NAME= optional: the first folder's name, the choices appended)
 * → a method. CHOICES: a sampler, a structure guide, or both comma-separated (e.g. `@official`,
 * `@oracle`, `@no-resampling,oracle`); the two lists share no name.
 */
export function parseMethod(spec: string, T?: number): AnalyzeMethodSpec {
  const m = /^(?:([A-Za-z0-9_-]+)=)?([^@]+)(?:@(.+))?$/.exec(spec.trim());
  if (!m) throw new Error(`--method must be NAME=DIR[,DIR...][@SAMPLER][,GUIDE] (got "${spec}")`);
  const dirs = m[2]!.split(',').filter(Boolean).map((d) => resolve(d));
  for (const d of dirs) if (!existsSync(d) || !statSync(d).isDirectory()) throw new Error(`--method ${spec}: model folder not found: ${d}`);
  let sampler: SamplerVariant | undefined;
  let structure: DiagnosticStructureGuide | undefined;
  for (const c of m[3] === undefined ? [] : m[3].split(',')) {
    if (isOneOf(SAMPLER_VARIANTS, c) && sampler === undefined) sampler = c;
    else if (isOneOf(DIAGNOSTIC_STRUCTURE_GUIDES, c) && structure === undefined) structure = c;
    else throw new Error(`--method ${spec}: the sampler must be one of ${SAMPLER_VARIANTS.join(', ')} and the structure guide one of ${DIAGNOSTIC_STRUCTURE_GUIDES.join(', ')}, at most one of each after @ (got "${c}")`);
  }
  const name = m[1] ?? `${basename(dirs[0]!).replace(/[^A-Za-z0-9_-]+/g, '_')}${sampler ? `-${sampler}` : ''}${structure ? `-${structure}` : ''}`;
  return { name, checkpoints: dirs, sampler, ...(structure ? { structure } : {}), T };
}

export function register(program: Command): void {
  program
    .command('analyze')
    .description("the paper's semantic-discrepancy analysis: hole vs known-region PSNR/SSIM of x̂0 and of the state at every step, per method; figure + JSON")
    .requiredOption('--images <dir>', 'folder of photos (recursive); centre-cropped and resized to --size')
    .requiredOption('--method <specs...>', 'NAME=DIR[,DIR...][@SAMPLER][,GUIDE], repeatable: a model (its folders), a sampler (default the model\'s; irsde for a texture-only model) and a structure guide (network | fill | oracle: the photo\'s own structure under the hole, a perfect structure network; default the model\'s), e.g. irsde=models/irsde strdiff=models/default@official oracle=models/default@official,oracle')
    .option('--masks <dir>', 'folder of masks (white = hole), bucketed by hole ratio; default: generated masks')
    .option('--mask-ratios <list>', 'hole-ratio buckets', DEFAULT_BUCKETS.map((r) => r.join('-')).join(','))
    .option('--count <n>', 'pairs per bucket', '1')
    .option('--seed <n>', 'fixes the pairs and the noise (the same for every method)', '0')
    .option('--size <n>', "images are analysed at size×size (default: the first model's window size, else 256)")
    .option('--every <k>', 'record every k-th step (and the last)', '1')
    .option('--strip-levels <list>', 'levels shown in the strip (default: T, 3T/4, T/2, T/4, 0)')
    .option('--T <n>', 'diffusion length T; must match the checkpoints (default: their model.json)')
    .option('--steps <n>', STEPS_HELP)
    .option('--solver <name>', SOLVER_HELP)
    .option('--spacing <kind>', SPACING_HELP)
    .option('--out <dir>', 'output folder', 'analysis')
    .option('-q, --quiet', 'no progress lines')
    .action(async (o: Record<string, string | string[] | boolean | undefined>) => {
      const images = String(o.images);
      if (!existsSync(images) || !statSync(images).isDirectory()) throw new Error(`--images must be a folder: ${images}`);
      if (o.masks !== undefined && !(existsSync(String(o.masks)) && statSync(String(o.masks)).isDirectory())) throw new Error(`--masks must be a folder: ${o.masks}`);
      const T = optionalNumber(o.T as string | undefined, 'T', { min: 2 });
      const methods = (o.method as string[]).map((s) => parseMethod(s, T));
      const size = optionalNumber(o.size as string | undefined, 'size', { min: 16 }) ?? modelWindowSize(methods[0]!.checkpoints) ?? 256;
      const stripLevels = o.stripLevels === undefined ? undefined : String(o.stripLevels).split(',').map((v) => optionalNumber(v.trim(), 'strip-levels', { min: 0 })!);
      const out = resolve(String(o.out));
      checkOutputDir(String(o.out));
      checkOutputFiles(out, ['analysis.json', 'discrepancy.svg', 'discrepancy.png', 'strip.svg', 'strip.png']);
      const { solver, steps, spacing, stepRule } = parseSampling(o as { solver?: string; steps?: string; spacing?: string });
      const t0 = performance.now();
      const { analysis, strip, stripInput } = await analyze({
        images,
        masks: o.masks as string | undefined,
        ratios: parseRatioList(String(o.maskRatios ?? '')),
        count: optionalNumber(String(o.count), 'count', { min: 1 }),
        seed: parseSeed(String(o.seed)),
        size,
        methods,
        every: optionalNumber(String(o.every), 'every', { min: 1 }),
        stripLevels,
        sampling: { solver: solver ?? stepRule, steps, spacing },
        onProgress: o.quiet ? undefined : (m) => console.error(m),
      });
      const paths = await writeAnalysis(analysis, strip, out, stripInput);
      for (const m of analysis.methods) {
        const last = m.steps[m.steps.length - 1];
        console.log(`${m.name.padEnd(16)} ${m.sampler.padEnd(16)} ${m.structureKind.padEnd(9)} mean x̂0 gap ${m.meanGap.toFixed(2)} dB; final hole PSNR ${last?.texture.state.holePsnr.toFixed(2) ?? '–'} dB`);
      }
      console.log(`wrote ${paths.json}, ${paths.png} and ${paths.stripPng} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    });
}
