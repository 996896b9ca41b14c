/**
 * The discrepancy analysis' figures, drawn as SVG by this code and rasterised to PNG by sharp:
 * the paper-style curves (PSNR of the hole and of the known region against t, one panel per
 * method, texture above, structure below, the gap between the x̂0 curves shaded) and the strip of
 * the states and x̂0 along the process. Every plotted line carries its numbers (`data-values`, with
 * its levels in `data-t`), so a reader — or a test — can check the figure against analysis.json.
 */
import sharp from 'sharp';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../util/files.js';
import type { Analysis, MethodAnalysis, ProcessScores, StripCell, StripInput } from './analyze.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** PSNRs above this are drawn at it (a pasted known region reaches the 100 dB cap at t = 0) */
export const PLOT_MAX_DB = 60;
const COLORS = { hole: '#d9480f', known: '#1f5fbf' };

/** The series of a panel: x̂0 and state, hole and known region. */
export const SERIES = [
  { key: 'x0-hole', of: 'x0', region: 'holePsnr', color: COLORS.hole, dash: false, label: 'x̂0, hole (masked)' },
  { key: 'x0-known', of: 'x0', region: 'knownPsnr', color: COLORS.known, dash: false, label: 'x̂0, known (unmasked)' },
  { key: 'state-hole', of: 'state', region: 'holePsnr', color: COLORS.hole, dash: true, label: 'state, hole' },
  { key: 'state-known', of: 'state', region: 'knownPsnr', color: COLORS.known, dash: true, label: 'state, known' },
] as const;

type Proc = 'texture' | 'structure';
const valueOf = (s: ProcessScores | null, of: 'x0' | 'state', region: 'holePsnr' | 'knownPsnr') => (s ? s[of][region] : NaN);

function niceRange(values: number[]): [number, number] {
  const f = values.filter(Number.isFinite).map((v) => Math.min(v, PLOT_MAX_DB));
  if (f.length === 0) return [0, 10];
  const lo = Math.floor(Math.min(...f) / 5) * 5;
  const hi = Math.max(lo + 5, Math.ceil(Math.max(...f) / 5) * 5);
  return [lo, hi];
}

/** One panel: x = level t (T at the left, 0 at the right: the denoising direction), y = PSNR (dB). */
function panel(m: MethodAnalysis, proc: Proc, x: number, y: number, w: number, h: number, range: [number, number]): string[] {
  const out: string[] = [];
  const L = 44, B = 30, Tp = 24;
  const pw = w - L - 10, ph = h - Tp - B;
  const px = (t: number) => x + L + ((m.T - t) / m.T) * pw;
  const py = (v: number) => y + Tp + (1 - (Math.min(v, PLOT_MAX_DB) - range[0]) / (range[1] - range[0])) * ph;
  const steps = m.steps.filter((s) => (proc === 'texture' ? true : s.structure !== null));
  const scores = (s: (typeof steps)[number]) => (proc === 'texture' ? s.texture : s.structure);
  const title = proc === 'texture' ? `${m.name} — texture (gap ${Number.isFinite(m.meanGap) ? m.meanGap.toFixed(2) : '–'} dB)` : `${m.name} — structure`;
  out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="white"/>`);
  out.push(`<text x="${x + L}" y="${y + 15}" font-size="13" font-weight="bold">${esc(title)}</text>`);
  out.push(`<line x1="${x + L}" y1="${y + Tp + ph}" x2="${x + L + pw}" y2="${y + Tp + ph}" stroke="black"/><line x1="${x + L}" y1="${y + Tp}" x2="${x + L}" y2="${y + Tp + ph}" stroke="black"/>`);
  for (let v = range[0]; v <= range[1] + 1e-9; v += (range[1] - range[0]) / 4) {
    out.push(`<line x1="${x + L - 3}" y1="${py(v).toFixed(1)}" x2="${x + L + pw}" y2="${py(v).toFixed(1)}" stroke="#eee"/><text x="${x + L - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${Number(v.toFixed(1))}</text>`);
  }
  for (const t of [m.T, Math.round(m.T / 2), 0]) out.push(`<text x="${px(t).toFixed(1)}" y="${y + Tp + ph + 14}" text-anchor="middle">${t}</text>`);
  out.push(`<text x="${x + L + pw / 2}" y="${y + h - 2}" text-anchor="middle">level t (denoising →)</text>`);
  if (steps.length === 0) {
    out.push(`<text x="${x + L + pw / 2}" y="${y + Tp + ph / 2}" text-anchor="middle" fill="#888">no ${proc === 'structure' ? 'structure process' : 'steps'}</text>`);
    return out;
  }
  // the discrepancy: the band between the x̂0 curves
  const hole = steps.map((s) => [s.t, valueOf(scores(s), 'x0', 'holePsnr')] as const).filter(([, v]) => Number.isFinite(v));
  const known = steps.map((s) => [s.t, valueOf(scores(s), 'x0', 'knownPsnr')] as const).filter(([, v]) => Number.isFinite(v));
  if (hole.length > 1 && known.length > 1) {
    const pts = [...known, ...[...hole].reverse()].map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ');
    out.push(`<polygon class="gap" points="${pts}" fill="${COLORS.hole}" fill-opacity="0.13" stroke="none"/>`);
  }
  for (const s of SERIES) {
    const vals = steps.map((r) => valueOf(scores(r), s.of, s.region));
    // x̂0 is predicted at the step's level, the state reached is at the next one
    const at = (r: (typeof steps)[number]) => (s.of === 'x0' ? r.t : r.next);
    const pts = steps.map((r, i) => [at(r), vals[i]!] as const).filter(([, v]) => Number.isFinite(v));
    if (pts.length === 0) continue;
    out.push(
      `<polyline data-method="${esc(m.name)}" data-process="${proc}" data-series="${s.key}" data-t="${steps.map(at).join(',')}" data-values="${vals.map((v) => (Number.isFinite(v) ? v.toFixed(4) : 'NaN')).join(',')}" ` +
        `points="${pts.map(([t, v]) => `${px(t).toFixed(1)},${py(v).toFixed(1)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.dash ? 1.2 : 2.2}"${s.dash ? ' stroke-dasharray="5 4"' : ''}/>`,
    );
  }
  return out;
}

/** The paper-style figure: one column per method, texture panels above, structure panels below. */
export function discrepancySvg(a: Analysis): string {
  const n = a.methods.length;
  const pw = 340, ph = 240, top = 44, legend = 34;
  const W = Math.max(2, n) * pw + 20;
  const H = top + 2 * ph + legend;
  const all = a.methods.flatMap((m) => m.steps.flatMap((s) => [s.texture, s.structure].flatMap((p) => (p ? [p.x0.holePsnr, p.x0.knownPsnr, p.state.holePsnr, p.state.knownPsnr] : []))));
  const range = niceRange(all);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="10" y="20" font-size="15">Semantic discrepancy: PSNR (dB) against the ground truth along the denoising process</text>`,
    `<text x="10" y="36" fill="#555">${a.pairs.length} pair(s), ${esc(String(a.settings.size))} px; shaded: the gap between the x̂0 curves; values above ${PLOT_MAX_DB} dB drawn at ${PLOT_MAX_DB}</text>`,
  ];
  a.methods.forEach((m, i) => {
    out.push(...panel(m, 'texture', 10 + i * pw, top, pw - 10, ph - 8, range));
    out.push(...panel(m, 'structure', 10 + i * pw, top + ph, pw - 10, ph - 8, range));
  });
  let lx = 20;
  const ly = top + 2 * ph + 16;
  for (const s of SERIES) {
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${s.color}" stroke-width="${s.dash ? 1.2 : 2.2}"${s.dash ? ' stroke-dasharray="5 4"' : ''}/><text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`);
    lx += 170;
  }
  out.push(`<rect x="${lx}" y="${ly - 6}" width="24" height="12" fill="${COLORS.hole}" fill-opacity="0.13"/><text x="${lx + 30}" y="${ly + 4}">discrepancy (x̂0 gap)</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** [3,s,s] float in [0,1] → PNG bytes */
async function png(planes: Float32Array, size: number): Promise<Buffer> {
  const hw = size * size;
  const c = planes.length / hw;
  const raw = Buffer.alloc(hw * 3);
  for (let p = 0; p < hw; p++) for (let k = 0; k < 3; k++) raw[p * 3 + k] = Math.round(Math.min(1, Math.max(0, planes[(c === 3 ? k : 0) * hw + p]!)) * 255);
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/** The strip: per method a row of states and a row of x̂0 at the strip levels (images embedded). */
export async function stripSvg(cells: StripCell[], size: number, input?: StripInput): Promise<string> {
  const methods = [...new Set(cells.map((c) => c.method))];
  const cols = Math.max(1, ...methods.map((m) => cells.filter((c) => c.method === m).length));
  const cs = Math.max(96, size);
  const L = 150, top = 30;
  const W = L + cols * (cs + 6) + 10;
  const H = top + (methods.length * 2 + (input ? 1 : 0)) * (cs + 22) + 10;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="10" y="18" font-size="14">State at level t and the x̂0 predicted on the way to it (first pair)</text>`];
  let y = top;
  if (input) {
    // the photo with its hole painted white, and the ground truth
    const holed = Float32Array.from(input.rgb, (v, i) => (input.holes[i % input.holes.length] ? 1 : v));
    out.push(`<text x="10" y="${y + cs / 2}">input</text>`);
    for (const [i, [img, caption]] of ([[holed, 'hole white'], [input.rgb, 'ground truth']] as const).entries()) {
      const data = (await png(img, size)).toString('base64');
      const x = L + i * (cs + 6);
      out.push(`<image x="${x}" y="${y}" width="${cs}" height="${cs}" preserveAspectRatio="none" style="image-rendering:pixelated" xlink:href="data:image/png;base64,${data}" href="data:image/png;base64,${data}"/>`);
      out.push(`<text x="${x + cs / 2}" y="${y + cs + 14}" text-anchor="middle">${caption}</text>`);
    }
    y += cs + 22;
  }
  for (const m of methods) {
    const row = cells.filter((c) => c.method === m);
    for (const what of ['state', 'x0'] as const) {
      out.push(`<text x="10" y="${y + cs / 2}">${esc(m)}</text><text x="10" y="${y + cs / 2 + 16}" fill="#555">${what === 'state' ? 'state' : 'x̂0'}</text>`);
      for (let i = 0; i < row.length; i++) {
        const c = row[i]!;
        const data = (await png(what === 'state' ? c.state : c.x0, size)).toString('base64');
        const x = L + i * (cs + 6);
        out.push(`<image x="${x}" y="${y}" width="${cs}" height="${cs}" preserveAspectRatio="none" style="image-rendering:pixelated" xlink:href="data:image/png;base64,${data}" href="data:image/png;base64,${data}"/>`);
        out.push(`<text x="${x + cs / 2}" y="${y + cs + 14}" text-anchor="middle">t = ${c.level}</text>`);
      }
      y += cs + 22;
    }
  }
  out.push('</svg>');
  return out.join('\n');
}

export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** analysis.json, discrepancy.svg/.png and strip.svg/.png in `outDir`. */
export async function writeAnalysis(a: Analysis, strip: StripCell[], outDir: string, input?: StripInput): Promise<Record<'json' | 'svg' | 'png' | 'stripSvg' | 'stripPng', string>> {
  mkdirSync(outDir, { recursive: true });
  const p = { json: join(outDir, 'analysis.json'), svg: join(outDir, 'discrepancy.svg'), png: join(outDir, 'discrepancy.png'), stripSvg: join(outDir, 'strip.svg'), stripPng: join(outDir, 'strip.png') };
  writeFileAtomic(p.json, `${JSON.stringify(a, null, 1)}\n`);
  const svg = discrepancySvg(a);
  writeFileAtomic(p.svg, svg);
  writeFileAtomic(p.png, await svgToPng(svg));
  const s = await stripSvg(strip, Number(a.settings.size), input);
  writeFileAtomic(p.stripSvg, s);
  writeFileAtomic(p.stripPng, await svgToPng(s));
  return p;
}
