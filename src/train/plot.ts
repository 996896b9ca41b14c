/** A dependency-free SVG loss curve: raw losses in light grey, an exponential moving average on top. */
export function lossCurveSvg(points: { step: number; loss: number }[], title: string): string {
  const W = 640, H = 360, L = 60, R = 20, T = 30, B = 40;
  if (points.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="30">${title}: no data yet</text></svg>`;
  const xs = points.map((p) => p.step);
  const ys = points.map((p) => p.loss).filter(Number.isFinite);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const lo = Math.min(...ys), hi = Math.max(...ys, lo * 1.0001 + 1e-12);
  // log scale when the loss spans more than a decade
  const useLog = lo > 0 && hi / lo > 10;
  const f = (v: number) => (useLog ? Math.log10(v) : v);
  const fy0 = f(lo), fy1 = f(hi);
  const px = (s: number) => L + ((s - x0) / (x1 - x0)) * (W - L - R);
  const py = (v: number) => T + (1 - (f(v) - fy0) / (fy1 - fy0 || 1)) * (H - T - B);
  const path = (pts: [number, number][]) => pts.map(([s, v], i) => `${i ? 'L' : 'M'}${px(s).toFixed(1)},${py(v).toFixed(1)}`).join('');
  let ema = points[0]!.loss;
  const smooth: [number, number][] = points.map((p) => {
    ema = 0.95 * ema + 0.05 * p.loss;
    return [p.step, ema];
  });
  const ticks = [lo, (useLog ? Math.sqrt(lo * hi) : (lo + hi) / 2), hi];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="18" font-size="14">${title} — loss${useLog ? ' (log scale)' : ''}, ${points.length} steps</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    ...ticks.map((v) => `<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v.toPrecision(3)}</text>`),
    `<text x="${L}" y="${H - B + 16}">${x0}</text><text x="${W - R}" y="${H - B + 16}" text-anchor="end">${x1}</text><text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">iteration</text>`,
    `<path d="${path(points.map((p) => [p.step, p.loss]))}" fill="none" stroke="#bbb" stroke-width="1"/>`,
    `<path d="${path(smooth)}" fill="none" stroke="#c03" stroke-width="2"/>`,
    '</svg>',
  ].join('\n');
}
