import { writeFile } from 'node:fs/promises';
import type { SimReport } from './sim.ts';
import type { SimAuditReport } from './audit.ts';
import type { CorrelationHeatmap } from '@fedtwin/models';

export interface ColumnHistogram {
  name: string;
  kind: 'numeric' | 'categorical';
  labels: string[];
  real: number[];
  synthetic: number[];
}

/** A self-contained HTML report (inline SVG, no scripts, no network): loss per round per node,
 *  per-column real-vs-synthetic distributions, utility bars. */
export async function writeHtmlReport(path: string, r: SimReport, hists: ColumnHistogram[], heat?: CorrelationHeatmap): Promise<void> {
  await writeFile(path, renderHtmlReport(r, hists, heat));
}

export function renderHtmlReport(r: SimReport, hists: ColumnHistogram[], heat?: CorrelationHeatmap): string {
  const u = r.utility;
  const bars = [
    { label: 'TRTR (real → real)', value: u.trtrAuc, color: '#555' },
    { label: 'TSTR centralized', value: u.tstrAuc.centralized, color: '#2a7' },
    { label: 'TSTR federated', value: u.tstrAuc.federated, color: '#27c' },
    { label: 'TSTR local-only (mean)', value: u.tstrAuc.localOnly, color: '#c72' },
  ];
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedtwin simulation report — ${esc(r.dataset)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:right}th:first-child,td:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:.8rem}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:.4rem .6rem}.muted{color:#777}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
.heat{display:flex;gap:2rem;flex-wrap:wrap}.heat table{border-collapse:separate;border-spacing:1px}.heat td{width:11px;height:11px;padding:0;border:0}
</style></head><body>
<h1>fedtwin simulation — ${esc(r.dataset)}</h1>
<p class="muted">${r.nodes} nodes · ${r.rounds} rounds · seed ${r.seed} · target <code>${esc(r.target)}</code> · Node ${esc(r.nodeVersion)} · tfjs backend ${esc(r.backend)} · wall ${r.wallSeconds.toFixed(1)} s</p>
<h2>Utility: does federating beat training alone?</h2>
<p>AUC of a logistic regression trained on synthetic data (TSTR) or real training data (TRTR), tested on the held-out real test set (${r.split.testRows} rows).</p>
${barChart(bars)}
<table><tr><th>node</th><th>rows</th><th>classes</th><th>TSTR AUC local-only</th></tr>
${r.split.rowsPerNode.map((n, i) => `<tr><td>${i}</td><td>${n}</td><td>${esc(JSON.stringify(r.split.classesPerNode[i]))}</td><td>${fmt(u.tstrAuc.localOnlyPerNode[i])}</td></tr>`).join('')}
</table>
<p>With a random forest (${u.forest.trees} trees; it also sees interactions): TRTR ${fmt(u.forest.trtrAuc)}, TSTR federated ${fmt(u.forest.tstrAuc)}${u.forest.minorityClass === null ? '' : `; recall of the rarest class (${esc(u.forest.minorityClass)}) ${fmt(u.forest.minorityRecall.trtr ?? undefined)} trained on real rows, ${fmt(u.forest.minorityRecall.federated ?? undefined)} on the release`}.</p>
<h2>Does the release copy its training rows?</h2>
<table><tr><th>check</th><th>value</th><th>healthy</th></tr>
<tr><td>median distance to the closest training row ÷ to the closest test row (DCR ratio, ${r.release.dcr.matchedRows} rows each)</td><td>${fmt(r.release.dcr.ratio)}</td><td>≈ 1</td></tr>
<tr><td>synthetic rows closer to a training row than to any test row</td><td>${fmt(r.release.dcr.closerToTrainShare)}</td><td>≈ 0.5</td></tr>
<tr><td>membership inference AUC (an attacker scoring records by their distance to the release)</td><td>${fmt(r.release.membershipInferenceAuc)}</td><td>≈ 0.5</td></tr>
</table>
<h2>Privacy and secure aggregation</h2>
<table><tr><th>what</th><th>value</th></tr>
<tr><td>generator</td><td>${r.generator === 'marginals' ? 'marginals (federated MST: three rounds of noisy counts; z is σ on the counts, C the sensitivity, q = 1, steps = count vectors)' : `vae (DP-SGD)${r.calibration ? `; round ${r.calibration.round} released ${r.calibration.columns} columns' 1-way counts (${Math.round(r.calibration.share * 100)} % of the budget's ρ, Skellam noise, summed masked) and the numeric columns are calibrated onto them` : ''}`}</td></tr>
<tr><td>differential privacy</td><td>${r.privacy.mode === 'off' ? 'off' : `${esc(r.privacy.mode)}-level`}</td></tr>
${r.privacy.mode === 'off' ? '' : `<tr><td>ε spent (largest member) / budget</td><td>${fmt(r.privacy.epsilon ?? undefined)} / ${r.privacy.budget}</td></tr>
<tr><td>δ</td><td>${r.privacy.delta}</td></tr>
<tr><td>noise multiplier z · clip C</td><td>${fmt(r.privacy.noiseMultiplier ?? undefined)} · ${r.privacy.clip}</td></tr>
<tr><td>sampling rate q · steps</td><td>${fmt(r.privacy.sampleRate ?? undefined, 4)} · ${r.privacy.steps}</td></tr>
<tr><td>baselines trained with the same DP</td><td>${r.privacy.baselinesPrivate ? 'yes' : 'no'}</td></tr>`}
<tr><td>secure aggregation</td><td>${esc(r.secureAggregation.scheme)}${r.secureAggregation.polyModulusDegree ? ` (N = ${r.secureAggregation.polyModulusDegree})` : ''}</td></tr>
<tr><td title="mean bytes of one member's upload in one round, divided by the number of values in the shared model">bytes per model value in each member's upload</td><td>${r.secureAggregation.bytesPerValue.toFixed(2)} (${r.secureAggregation.ratioToFloat32.toFixed(2)}× float32)</td></tr>
${r.secureAggregation.keyId ? `<tr><td>HE key id</td><td><code>${esc(r.secureAggregation.keyId.slice(0, 24))}…</code></td></tr>` : ''}
</table>
${r.privacy.audit ? auditSection(r.privacy.audit) : ''}
<h2>Training loss per round</h2>
${r.generator === 'marginals' ? '<p class="muted">The marginals generator trains nothing by gradient: its members send noisy counts (see docs/marginals.md).</p>' : lineChart(r.lossPerRound.map((n, i) => ({ name: `node ${n.node}`, color: palette(i), points: n.rounds.map((p) => [p.round, p.loss] as [number, number]) })))}
<h2>Fidelity: real vs synthetic, per column</h2>
<p>Mean score ${fmt(r.fidelity.mean)} (KS complement for numeric columns, TV complement for categorical; 1 = identical). Correlation-matrix distance ${fmt(r.fidelity.correlationDistance)} (0 = identical).</p>
<p class="legend"><span style="background:#999"></span>real test data (held out)<span style="background:#27c"></span>synthetic (federated)</p>
<div class="grid">${hists.map((h) => {
    const score = r.fidelity.columns.find((c) => c.name === h.name)?.score;
    return `<div class="card"><b>${esc(h.name)}</b> <span class="muted">${fmt(score)}</span>${histogram(h)}</div>`;
  }).join('')}</div>
${heat && heat.columns.length >= 2 ? heatmapSection(heat) : ''}
${r.fidelity.missingness ? missingnessSection(r.fidelity.missingness) : ''}
<h2>Bytes on the wire</h2>
<table><tr><th>party</th><th>sent</th><th>received</th></tr>
${r.bytes.nodes.map((b) => `<tr><td>node ${b.node}</td><td>${kb(b.sent)}</td><td>${kb(b.received)}</td></tr>`).join('')}
<tr><td>aggregator</td><td>${kb(r.bytes.aggregator.sent)}</td><td>${kb(r.bytes.aggregator.received)}</td></tr></table>
<h2>Timing</h2>
<table><tr><th>what</th><th>seconds</th></tr>
<tr><td>federation (processes up to last node done)</td><td>${r.timing.federatedSeconds.toFixed(1)}</td></tr>
<tr><td>baselines (local-only + centralized, in-process)</td><td>${r.timing.baselinesSeconds.toFixed(1)}</td></tr>
${r.timing.roundSeconds.map((s, i) => `<tr><td>round ${i + 1} (open → aggregate; slowest local training ${fmt(r.timing.trainSecondsPerRound[i], 2)})</td><td>${s.toFixed(2)}</td></tr>`).join('')}
</table>
</body></html>
`;
}

/** Missing cells per column that may hold them: the rate in the test rows and in the release (the histograms show present values). */
function missingnessSection(m: NonNullable<SimReport['fidelity']['missingness']>): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  return `<h2>Missing values</h2>
<p>Mean missingness-rate score ${fmt(m.mean)} (1 − |rate in the test rows − rate in the synthetic rows|; 1 = same rate). Column scores above compare present values only.</p>
<table><tr><th>column</th><th>missing, real test rows</th><th>missing, synthetic</th><th>score</th></tr>
${m.columns.map((c) => `<tr><td>${esc(c.name)}</td><td>${pct(c.real)}</td><td>${pct(c.synthetic)}</td><td>${fmt(c.score)}</td></tr>`).join('')}
</table>`;
}

/** The empirical audit: ε_lower next to the claim, what the guesses were, and the method's ceiling for this m. */
function auditSection(a: SimAuditReport): string {
  const claim = a.epsilonClaimed === null ? 'none (DP off)' : fmt(a.epsilonClaimed);
  const verdict = a.epsilonClaimed === null ? ''
    : a.epsilonLower > a.epsilonClaimed ? '<p><b>ε_lower exceeds the claimed ε: the run leaks more than its accounting says.</b></p>'
      : a.maxAttainable < a.epsilonClaimed ? `<p class="muted">Consistent with the claim, but no test of it: with ${a.canaries} canaries this audit cannot show more than ε = ${fmt(a.maxAttainable)}, below the claimed ${fmt(a.epsilonClaimed)}.</p>`
        : '<p class="muted">Consistent with the claim. A lower bound for this attack only: a stronger attack may find more.</p>';
  return `<h2>Empirical privacy audit</h2>
<p>${a.canaries} canary records offered to node ${a.node}, each kept with probability 1/2 (OS CSPRNG); ${a.included} went in. Each is scored by ${esc(a.score)} under the model node ${a.node} released; the highest are guessed in, the lowest out. ${esc(a.method)}; docs/privacy-audit.md.</p>
<table><tr><th>what</th><th>value</th></tr>
<tr><td>ε_lower (${Math.round(a.confidence * 100)} % confidence, δ = ${a.delta})</td><td><b>${fmt(a.epsilonLower)}</b></td></tr>
<tr><td>ε claimed (node ${a.node})</td><td>${claim}</td></tr>
<tr><td>guesses right (k+ in, k− out)</td><td>${a.correct} / ${a.guesses} (${a.kPlus}, ${a.kMinus})</td></tr>
<tr><td>largest ε_lower ${a.canaries} canaries can show</td><td>${fmt(a.maxAttainable)}</td></tr>
</table>
<table><tr><th>candidate (k+, k−)</th><th>right</th><th>ε_lower</th></tr>
${a.candidates.map((c) => `<tr><td>${c.kPlus}, ${c.kMinus}</td><td>${c.correct} / ${c.guesses}</td><td>${fmt(c.epsilonLower)}</td></tr>`).join('')}
</table>
${verdict}`;
}

function barChart(bars: Array<{ label: string; value: number; color: string }>): string {
  const w = 640, rowH = 28, left = 190, h = bars.length * rowH + 24;
  const x = (v: number) => left + (w - left - 50) * Math.max(0, Math.min(1, v));
  return `<svg width="${w}" height="${h}" role="img" aria-label="utility bars">
${[0, 0.25, 0.5, 0.75, 1].map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="0" y2="${h - 18}" stroke="#eee"/><text x="${x(t)}" y="${h - 4}" font-size="11" text-anchor="middle" fill="#777">${t}</text>`).join('')}
${bars.map((b, i) => `<text x="${left - 8}" y="${i * rowH + 18}" font-size="12" text-anchor="end">${esc(b.label)}</text>
<rect x="${left}" y="${i * rowH + 5}" width="${Math.max(0, x(b.value) - left)}" height="18" fill="${b.color}"/>
<text x="${x(b.value) + 4}" y="${i * rowH + 18}" font-size="12">${fmt(b.value)}</text>`).join('\n')}
</svg>`;
}

function lineChart(series: Array<{ name: string; color: string; points: Array<[number, number]> }>): string {
  const w = 640, h = 260, l = 50, b = 30, t = 10, rgt = 110;
  const pts = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
  if (!pts.length) return '<p class="muted">no loss recorded</p>';
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (v: number) => l + ((w - l - rgt) * (v - x0)) / Math.max(1e-9, x1 - x0);
  const sy = (v: number) => t + ((h - t - b) * (y1 - v)) / Math.max(1e-9, y1 - y0);
  return `<svg width="${w}" height="${h}" role="img" aria-label="loss per round">
<line x1="${l}" y1="${h - b}" x2="${w - rgt}" y2="${h - b}" stroke="#999"/><line x1="${l}" y1="${t}" x2="${l}" y2="${h - b}" stroke="#999"/>
<text x="${l}" y="${h - 8}" font-size="11" fill="#777">round ${x0}</text><text x="${w - rgt}" y="${h - 8}" font-size="11" text-anchor="end" fill="#777">round ${x1}</text>
<text x="${l - 4}" y="${t + 10}" font-size="11" text-anchor="end" fill="#777">${fmt(y1, 3)}</text><text x="${l - 4}" y="${h - b}" font-size="11" text-anchor="end" fill="#777">${fmt(y0, 3)}</text>
${series.map((s, i) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>
<text x="${w - rgt + 8}" y="${t + 14 + i * 16}" font-size="12" fill="${s.color}">${esc(s.name)}</text>`).join('\n')}
</svg>`;
}

function histogram(hist: ColumnHistogram): string {
  const w = 230, h = 90, n = hist.labels.length;
  const sr = hist.real.reduce((a, b) => a + b, 0) || 1, ss = hist.synthetic.reduce((a, b) => a + b, 0) || 1;
  const real = hist.real.map((v) => v / sr), syn = hist.synthetic.map((v) => v / ss);
  const max = Math.max(...real, ...syn, 1e-9);
  const bw = w / n;
  return `<svg width="${w}" height="${h + 14}" role="img" aria-label="${esc(hist.name)} histogram">
${real.map((v, i) => `<rect x="${(i * bw).toFixed(1)}" y="${(h - (h * v) / max).toFixed(1)}" width="${(bw / 2).toFixed(1)}" height="${((h * v) / max).toFixed(1)}" fill="#999"/>`).join('')}
${syn.map((v, i) => `<rect x="${(i * bw + bw / 2).toFixed(1)}" y="${(h - (h * v) / max).toFixed(1)}" width="${(bw / 2).toFixed(1)}" height="${((h * v) / max).toFixed(1)}" fill="#27c"/>`).join('')}
<text x="0" y="${h + 12}" font-size="10" fill="#777">${esc(hist.labels[0] ?? '')}</text><text x="${w}" y="${h + 12}" font-size="10" text-anchor="end" fill="#777">${esc(hist.labels[n - 1] ?? '')}</text>
</svg>`;
}

const palette = (i: number) => ['#27c', '#c72', '#2a7', '#a3c', '#c33', '#777', '#0aa', '#b90'][i % 8]!;
const fmt = (v: number | undefined, d = 3) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** r in [−1, 1] → blue (−1), white (0), red (+1); NaN (too few rows, constant column) grey. */
function heatColor(v: number): string {
  if (!Number.isFinite(v)) return '#ddd';
  const t = Math.min(1, Math.abs(v));
  const fade = (full: number) => Math.round(255 + (full - 255) * t);
  return v >= 0 ? `rgb(${fade(200)},${fade(40)},${fade(40)})` : `rgb(${fade(40)},${fade(90)},${fade(200)})`;
}

/** The real (held-out test) and synthetic correlation matrices of the numeric columns, side by side. */
function heatmapSection(h: CorrelationHeatmap): string {
  const grid = (title: string, m: number[][]) => `<div><b>${esc(title)}</b><table role="img" aria-label="${esc(title)} correlation matrix">${m.map((row, i) => `<tr>${row.map((v, j) => `<td style="background:${heatColor(v)}" title="${esc(h.columns[i]!)} × ${esc(h.columns[j]!)}: ${Number.isFinite(v) ? v.toFixed(2) : 'n/a'}"></td>`).join('')}</tr>`).join('')}</table></div>`;
  let sum = 0, n = 0;
  for (let i = 0; i < h.columns.length; i++) for (let j = i + 1; j < h.columns.length; j++) {
    const d = Math.abs(h.real[i]![j]! - h.synthetic[i]![j]!);
    if (Number.isFinite(d)) { sum += d; n++; }
  }
  return `<h2>Correlations: real vs synthetic</h2>
<p>Pearson r between the ${h.columns.length} numeric columns (in schema order; hover a cell for the pair), real test rows left, synthetic right; <span style="color:#c82828">red</span> +1, white 0, <span style="color:#285ac8">blue</span> −1. Mean |r_real − r_synthetic| over the ${n} pairs: ${fmt(n ? sum / n : undefined)}.</p>
<div class="heat">${grid('real (held-out test)', h.real)}${grid('synthetic', h.synthetic)}</div>`;
}
