/** A one-line progress bar on stderr (redrawn in place on a TTY, every ~10 % otherwise). */
export class ProgressBar {
  private start = performance.now();
  private lastPct = -1;
  constructor(private total: number, private label = '', private stream: NodeJS.WriteStream = process.stderr) {}

  /** `total` changes when the work turns out larger (e.g. several model windows) */
  update(done: number, extra = '', total = this.total): void {
    this.total = total;
    const frac = Math.min(1, done / this.total);
    const pct = Math.floor(frac * 100);
    const elapsed = (performance.now() - this.start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : NaN;
    const width = 24;
    const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
    const line = `${this.label}${bar} ${String(pct).padStart(3)}% ${done}/${this.total} ${extra} ETA ${fmtTime(eta)}`;
    if (this.stream.isTTY) this.stream.write(`\r${line}\x1b[K`);
    else if (pct >= this.lastPct + 10 || done === this.total) {
      this.stream.write(`${line}\n`);
      this.lastPct = pct;
    }
  }

  done(msg = ''): void {
    if (this.stream.isTTY) this.stream.write('\n');
    if (msg) this.stream.write(`${msg}\n`);
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
