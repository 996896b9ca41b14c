/**
 * report.md, report.html (self-contained apart from the sample PNGs next to it, referenced
 * relatively, so the folder can be moved or zipped) and results.json with every number.
 */
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../util/files.js';
import { join } from 'node:path';
import type { EvalResults, Row } from './index.js';
import { SWD_DEFAULTS } from './swd.js';
import { PAIRED_METRICS, pairedStat } from './paired.js';

const f = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '–');

const COLS = ['method', 'bucket', 'n', 'PSNR (dB)', 'SSIM', 'hole PSNR (dB)', 'hole L1', 'hole SWD', 's/img'] as const;

function cells(r: Row): string[] {
  return [r.method, r.bucket, String(r.n) + (r.errors ? ` (+${r.errors} failed)` : ''), f(r.psnr, 2), f(r.ssim, 4), f(r.holePsnr, 2), f(r.holeL1, 4), f(r.holeSwd, 2), f(r.secondsPerImage, 2)];
}

function notes(res: EvalResults): string[] {
  const s = res.settings;
  const out = [
    'PSNR and SSIM: the official `calculate_psnr` / `calculate_ssim` (utils/img_utils.py) on the full uint8 composite (generated pixels in the hole, ground truth elsewhere); SSIM uses an 11×11 Gaussian window (σ 1.5), 5-pixel border discarded, mean over RGB channels.',
    'hole PSNR / hole L1: over the hole pixels only (all channels); L1 is the mean absolute error in [0, 1] units.',
    `hole SWD: sliced Wasserstein distance (×1e3, lower is better; Karras et al. 2018) between the 7×7 patches of the result's and the ground truth's Laplacian pyramids (${SWD_DEFAULTS.levels} levels, per-level normalised) around the hole (bounding box + ${SWD_DEFAULTS.margin} px); it punishes lost texture (blur, flat fills) that PSNR and L1 reward, and forgives texture that is right but not pixel-aligned.`,
    `Values are means over images. A PSNR of +∞ (output identical to the ground truth) is counted as ${res.psnrCap} dB.`,
    `Seconds per image: wall time of the method alone (model loading excluded).`,
    `Pairs: ${s.count} per bucket, seed ${s.seed}, ${s.size}×${s.size} centre crops; masks: ${s.masks}.`,
  ];
  const capped = res.rows.reduce((a, r) => a + r.capped, 0);
  if (capped) out.push(`${capped} image result(s) hit the ${res.psnrCap} dB cap.`);
  return out;
}

/** The paper-style ablation table: one row per method, per bucket PSNR / SSIM / hole SWD, then s/img. */
export function ablationTable(res: EvalResults): { head: string[]; rows: string[][] } | null {
  if (!res.ablation) return null;
  const head = ['', 'method', 'what', ...res.buckets.map((b) => `${b.label} PSNR / SSIM / SWD`), 's/img'];
  const rows = res.ablation.rows.map((a) => {
    const rs = res.rows.filter((r) => r.method === a.method);
    const n = rs.reduce((x, r) => x + r.n, 0);
    const sec = n ? rs.reduce((x, r) => x + (r.n ? r.secondsPerImage * r.n : 0), 0) / n : NaN;
    return [a.id ? `(${a.id})` : '', a.method, a.what, ...res.buckets.map((b) => {
      const r = rs.find((x) => x.bucket === b.label);
      return r ? `${f(r.psnr, 2)} / ${f(r.ssim, 4)} / ${f(r.holeSwd, 2)}` : '–';
    }), f(sec, 2)];
  });
  return { head, rows };
}

const signed = (v: number, d: number) => (Number.isFinite(v) ? `${v > 0 ? '+' : v < 0 ? '−' : '±'}${Math.abs(v).toFixed(d)}` : '–');
const pValue = (p: number) => (p < 0.001 ? '<0.001' : p.toPrecision(2));

/**
 * Every other ablation row against D on the same pairs (./paired.ts), pooled over the buckets:
 * per metric the mean difference, the pairs better : worse than D and the sign test's p.
 */
export function pairedTable(res: EvalResults): { reference: string; n: number; head: string[]; rows: string[][] } | null {
  const ref = res.ablation?.rows.find((a) => a.id === 'D');
  if (!ref) return null;
  const digits = { psnr: 2, ssim: 4, holeSwd: 2 };
  let n = 0;
  const rows = res.ablation!.rows.filter((a) => a !== ref).map((a) => [a.id ? `(${a.id})` : '', a.method, ...PAIRED_METRICS.map((m) => {
    const st = pairedStat(res.pairs, a.method, ref.method, m, res.psnrCap);
    n = Math.max(n, st.n);
    return `${signed(st.meanDiff, digits[m.key])}; ${st.better} : ${st.worse}; p ${pValue(st.p)}`;
  })]);
  return { reference: ref.method, n, head: ['', 'method', ...PAIRED_METRICS.map((m) => `Δ ${m.label}; better : worse; p`)], rows };
}

const PAIRED_NOTE = (ref: string, n: number) =>
  `Each row minus ${ref} on the same ${n} pairs (all buckets): the mean difference, the pairs where the row is better : worse than ${ref}, and the two-sided sign test's p (the chance of a split at least this uneven if neither were better). A small p with a small difference is a consistent small effect; p above ~0.05 is within the pairs' noise.`;

export function renderMarkdown(res: EvalResults): string {
  const lines: string[] = ['# StrDiffusion evaluation', ''];
  const abl = ablationTable(res);
  if (abl) {
    lines.push('## Ablation', '', `| ${abl.head.join(' | ')} |`, `|${abl.head.map((_, i) => (i < 3 ? ' --- ' : ' ---: ')).join('|')}|`);
    for (const r of abl.rows) lines.push(`| ${r.join(' | ')} |`);
    lines.push('', 'Same pairs and seeds for every row; PSNR / SSIM on the full composite, SWD around the hole (×1e3, lower is better); details below.', ...res.ablation!.notes.map((n) => `- ${n}`), '');
    const pt = pairedTable(res);
    if (pt) {
      lines.push(`## Paired against ${pt.reference}`, '', `| ${pt.head.join(' | ')} |`, `|${pt.head.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`);
      for (const r of pt.rows) lines.push(`| ${r.join(' | ')} |`);
      lines.push('', PAIRED_NOTE(pt.reference, pt.n), '');
    }
    lines.push('## All numbers', '');
  }
  lines.push(`| ${COLS.join(' | ')} |`, `|${COLS.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const r of res.rows) lines.push(`| ${cells(r).join(' | ')} |`);
  lines.push('', ...notes(res).map((n) => `- ${n}`), '', '## Methods', '');
  for (const m of res.methods) lines.push(`- **${m.name}**: ${m.label}${Object.keys(m.info).length ? ` — \`${JSON.stringify(m.info)}\`` : ''}`);
  if (res.samples.length) {
    lines.push('', '## Samples', '');
    const titles = res.samples[0]!.cells.map((c) => c.title);
    lines.push(`| bucket | ${titles.join(' | ')} |`, `| --- |${titles.map(() => ' --- ').join('|')}|`);
    for (const s of res.samples) {
      lines.push(`| ${s.bucket} #${s.index}<br>${s.image} | ${s.cells.map((c) => `![${c.title}](${c.file})${c.caption ? `<br>${c.caption}` : ''}`).join(' | ')} |`);
    }
  }
  lines.push('', `Full numbers (per image too) and settings: [results.json](results.json). Run took ${f(res.seconds, 1)} s.`, '');
  return lines.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** `` `code` `` in the notes → <code> (the notes are written for the markdown report). */
const inline = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

export function renderHtml(res: EvalResults): string {
  const h: string[] = [];
  h.push('<!doctype html>', '<html lang="en"><head><meta charset="utf-8"><title>StrDiffusion evaluation</title>');
  h.push(
    '<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}' +
      'th,td{border:1px solid #ccc;padding:4px 8px}td.num{text-align:right;font-variant-numeric:tabular-nums}' +
      'tr.first td{border-top:2px solid #888}figure{margin:0;text-align:center}figure img{image-rendering:pixelated;width:160px;height:160px;display:block}' +
      'figcaption{font-size:12px;color:#555}ul{max-width:60em}code{background:#f4f4f4;padding:0 3px}</style></head><body>',
  );
  h.push('<h1>StrDiffusion evaluation</h1>');
  const abl = ablationTable(res);
  if (abl) {
    h.push('<h2>Ablation</h2><table><thead><tr>', ...abl.head.map((c) => `<th>${esc(c)}</th>`), '</tr></thead><tbody>');
    for (const r of abl.rows) h.push(`<tr>${r.map((v, i) => `<td${i >= 3 ? ' class="num"' : ''}>${esc(v)}</td>`).join('')}</tr>`);
    h.push('</tbody></table>', '<ul>', ...res.ablation!.notes.map((n) => `<li>${inline(n)}</li>`), '</ul>');
    const pt = pairedTable(res);
    if (pt) {
      h.push(`<h2>Paired against ${esc(pt.reference)}</h2><table><thead><tr>`, ...pt.head.map((c) => `<th>${esc(c)}</th>`), '</tr></thead><tbody>');
      for (const r of pt.rows) h.push(`<tr>${r.map((v, i) => `<td${i >= 2 ? ' class="num"' : ''}>${esc(v)}</td>`).join('')}</tr>`);
      h.push('</tbody></table>', `<p>${esc(PAIRED_NOTE(pt.reference, pt.n))}</p>`);
    }
    h.push('<h2>All numbers</h2>');
  }
  h.push('<table><thead><tr>', ...COLS.map((c) => `<th>${esc(c)}</th>`), '</tr></thead><tbody>');
  let prev = '';
  for (const r of res.rows) {
    const c = cells(r);
    h.push(`<tr${r.method !== prev ? ' class="first"' : ''}>${c.map((v, i) => `<td${i >= 2 ? ' class="num"' : ''}>${esc(v)}</td>`).join('')}</tr>`);
    prev = r.method;
  }
  h.push('</tbody></table>', '<ul>', ...notes(res).map((n) => `<li>${inline(n)}</li>`), '</ul>');
  h.push('<h2>Methods</h2><ul>', ...res.methods.map((m) => `<li><b>${esc(m.name)}</b>: ${esc(m.label)} <code>${esc(JSON.stringify(m.info))}</code></li>`), '</ul>');
  if (res.samples.length) {
    h.push('<h2>Samples</h2><table>');
    for (const s of res.samples) {
      h.push(`<tr><td>${esc(s.bucket)} #${s.index}<br><small>${esc(s.image)}</small></td>`);
      for (const c of s.cells) h.push(`<td><figure><img src="${esc(c.file)}" alt="${esc(c.title)}"><figcaption>${esc(c.title)}${c.caption ? `<br>${esc(c.caption)}` : ''}</figcaption></figure></td>`);
      h.push('</tr>');
    }
    h.push('</table>');
  }
  h.push(`<p>Full numbers (per image too) and settings: <a href="results.json">results.json</a>. Run took ${f(res.seconds, 1)} s.</p>`, '</body></html>', '');
  return h.join('\n');
}

/** temp file + rename; a failed write (full disk) removes the temp file */

export function writeReport(res: EvalResults, outDir: string): { markdown: string; html: string; json: string } {
  mkdirSync(outDir, { recursive: true });
  const paths = { markdown: join(outDir, 'report.md'), html: join(outDir, 'report.html'), json: join(outDir, 'results.json') };
  // NaN (no hole, empty bucket) becomes null in JSON; everything else is a plain number
  writeFileAtomic(paths.json, `${JSON.stringify(res, null, 2)}\n`);
  writeFileAtomic(paths.markdown, renderMarkdown(res));
  writeFileAtomic(paths.html, renderHtml(res));
  return paths;
}
