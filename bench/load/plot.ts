// Latency-by-percentile plot as SVG, like HdrHistogram's plotter: x is the
// percentile on a log "nines" axis (0, 90, 99, 99.9, ...), y is latency.
import { writeFileSync } from 'node:fs';

export interface Series { label: string; curve: { p: number; us: number }[] }

const W = 900, H = 520, L = 80, R = 210, T = 50, B = 60;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function nines(p: number): number {
  return p >= 100 ? Infinity : -Math.log10(1 - p / 100);
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[ch]!);
}

/** Rounds up to 1, 2 or 5 times a power of ten. */
function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

export function renderPlot(series: Series[], title: string): string {
  // The last point of each curve is the max (p=100): drawn at the right edge.
  const maxX = Math.max(2, ...series.flatMap((s) => s.curve.map((pt) => nines(pt.p)).filter(Number.isFinite)));
  const xMax = Math.ceil(maxX);
  const yMaxMs = niceCeil(Math.max(0.001, ...series.flatMap((s) => s.curve.map((pt) => pt.us / 1000))));
  const pw = W - L - R, ph = H - T - B;
  const x = (n: number): number => L + (Math.min(n, xMax) / xMax) * pw;
  const y = (ms: number): number => T + ph - (ms / yMaxMs) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16">${esc(title)}</text>`);
  for (let i = 0; i <= xMax; i++) {
    const label = i === 0 ? '0%' : `${(100 - Math.pow(10, 2 - i)).toFixed(Math.max(0, i - 2))}%`;
    out.push(`<line x1="${x(i)}" y1="${T}" x2="${x(i)}" y2="${T + ph}" stroke="#ddd"/>`);
    out.push(`<text x="${x(i)}" y="${T + ph + 18}" text-anchor="middle">${label}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const ms = (yMaxMs * i) / 5;
    out.push(`<line x1="${L}" y1="${y(ms)}" x2="${L + pw}" y2="${y(ms)}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 8}" y="${y(ms) + 4}" text-anchor="end">${Number(ms.toPrecision(3))}</text>`);
  }
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${L + pw / 2}" y="${H - 15}" text-anchor="middle">percentile (log scale of nines; right edge = max)</text>`);
  out.push(`<text transform="translate(20 ${T + ph / 2}) rotate(-90)" text-anchor="middle">latency (ms)</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const pts = s.curve.map((pt) => `${x(Number.isFinite(nines(pt.p)) ? nines(pt.p) : xMax).toFixed(1)},${y(pt.us / 1000).toFixed(1)}`);
    if (pts.length > 0) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    const ly = T + 10 + i * 20;
    out.push(`<line x1="${L + pw + 15}" y1="${ly}" x2="${L + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${L + pw + 46}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function writePlot(path: string, series: Series[], title: string): void {
  writeFileSync(path, renderPlot(series, title));
}
