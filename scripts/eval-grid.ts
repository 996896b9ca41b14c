/**
 * The model card's image grid (docs/eval-default-grid.png): an `eval` report's sample images as one
 * PNG, one row per sample (bucket and index, as in the report), columns input (hole white) | the
 * model | OpenCV Telea | OpenCV Navier–Stokes | ground truth, each at the evaluation size.
 *   npx tsx scripts/eval-grid.ts REPORT_DIR OUT.png [--scale N=1]
 */
import sharp from 'sharp';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { scale: { type: 'string', default: '1' } } });
const [dir, out] = positionals;
if (!dir || !out) throw new Error('usage: eval-grid.ts REPORT_DIR OUT.png [--scale N]');
const scale = Number(values.scale);
if (!Number.isInteger(scale) || scale < 1) throw new Error(`--scale must be a positive integer (got "${values.scale}")`);
const samples = join(dir, 'samples');
if (!existsSync(samples)) throw new Error(`${dir} has no samples folder (an eval report folder has one)`);
const cols = ['input', 'strdiffusion', 'telea', 'ns', 'gt'];
const rows = [...new Set(readdirSync(samples).filter((f) => f.endsWith('_gt.png')).map((f) => f.slice(0, -'_gt.png'.length)))].sort();
const first = await sharp(join(samples, `${rows[0]}_gt.png`)).metadata();
const S = first.width! * scale;
const gap = 4;
const parts = [];
for (const [r, row] of rows.entries()) {
  for (const [c, col] of cols.entries()) {
    const f = join(samples, `${row}_${col}.png`);
    if (!existsSync(f)) throw new Error(`${f} not found (the report must include the ${col} method)`);
    parts.push({ input: await sharp(f).resize(S, S, { kernel: 'nearest' }).png().toBuffer(), left: c * (S + gap), top: r * (S + gap) });
  }
}
await sharp({ create: { width: cols.length * (S + gap) - gap, height: rows.length * (S + gap) - gap, channels: 3, background: '#ffffff' } })
  .composite(parts)
  .png()
  .toFile(out);
console.log(`wrote ${out}: ${rows.length} rows (${rows.join(', ')}) × ${cols.join(' | ')}`);
