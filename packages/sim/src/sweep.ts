import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runSimulation, type SimOptions } from './sim.ts';

export interface SweepPoint {
  epsilon: number | 'inf';
  federated: number;
  localOnly: number;
  centralized: number;
  trtr: number;
  spentEpsilon: number | null;
  noiseMultiplier: number | null;
  /** With --audit: the run's empirical ε_lower (privacy.audit), else null. */
  epsilonLower: number | null;
}

/** The utility–privacy trade-off: one full simulation per ε (same seed, split and model), each in
 *  OUT/eps-<ε>/, then sweep.json and sweep.html (TSTR AUC against ε). ε = Infinity runs without DP. */
export async function runEpsilonSweep(base: SimOptions, epsilons: number[]): Promise<{ outDir: string; points: SweepPoint[] }> {
  const outDir = resolve(base.out);
  await mkdir(outDir, { recursive: true });
  const points: SweepPoint[] = [];
  for (const e of epsilons) {
    const label = Number.isFinite(e) ? String(e) : 'inf';
    const { report } = await runSimulation({ ...base, epsilon: e, dp: Number.isFinite(e) ? (base.dp === 'off' ? 'record' : base.dp) : 'off', out: join(outDir, `eps-${label}`) });
    points.push({
      epsilon: Number.isFinite(e) ? e : 'inf',
      federated: report.utility.tstrAuc.federated, localOnly: report.utility.tstrAuc.localOnly, centralized: report.utility.tstrAuc.centralized,
      trtr: report.utility.trtrAuc, spentEpsilon: report.privacy.epsilon, noiseMultiplier: report.privacy.noiseMultiplier,
      epsilonLower: report.privacy.audit?.epsilonLower ?? null,
    });
  }
  await writeFile(join(outDir, 'sweep.json'), JSON.stringify({ dataset: base.dataset, nodes: base.nodes, rounds: base.rounds, seed: base.seed, mode: base.dp, delta: base.delta, points }, null, 2));
  await writeFile(join(outDir, 'sweep.html'), renderSweep(points, base));
  return { outDir, points };
}

function renderSweep(points: SweepPoint[], o: SimOptions): string {
  const w = 640, h = 300, l = 60, b = 40, t = 20, r = 160;
  const xs = points.map((_, i) => l + ((w - l - r) * i) / Math.max(1, points.length - 1));
  const y = (v: number) => t + (h - t - b) * (1 - Math.max(0, Math.min(1, v)));
  const series = [
    { key: 'federated' as const, name: 'TSTR federated', color: '#27c' },
    { key: 'localOnly' as const, name: 'TSTR local-only', color: '#c72' },
    { key: 'centralized' as const, name: 'TSTR centralized', color: '#2a7' },
  ];
  const lines = series.map((s, k) => `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.map((p, i) => `${xs[i]!.toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ')}"/>
${points.map((p, i) => `<circle cx="${xs[i]!.toFixed(1)}" cy="${y(p[s.key]).toFixed(1)}" r="3" fill="${s.color}"/>`).join('')}
<text x="${w - r + 10}" y="${t + 14 + k * 16}" font-size="12" fill="${s.color}">${s.name}</text>`).join('\n');
  const rows = points.map((p) => `<tr><td>${p.epsilon}</td><td>${p.federated.toFixed(3)}</td><td>${p.localOnly.toFixed(3)}</td><td>${p.centralized.toFixed(3)}</td><td>${p.spentEpsilon === null ? '—' : p.spentEpsilon.toFixed(3)}</td><td>${p.noiseMultiplier === null ? '—' : p.noiseMultiplier.toFixed(3)}</td></tr>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fedtwin utility–privacy trade-off</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:900px;padding:0 1rem}td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:right}</style></head><body>
<h1>Utility against privacy budget — ${o.dataset}</h1>
<p>${o.nodes} nodes, ${o.rounds} rounds, seed ${o.seed}, ${o.dp}-level DP, δ = ${o.delta}. TSTR AUC on the held-out real test set; ε = inf is training without DP.</p>
<svg width="${w}" height="${h}" role="img" aria-label="TSTR AUC against epsilon">
<line x1="${l}" y1="${h - b}" x2="${w - r}" y2="${h - b}" stroke="#999"/><line x1="${l}" y1="${t}" x2="${l}" y2="${h - b}" stroke="#999"/>
${[0, 0.25, 0.5, 0.75, 1].map((v) => `<text x="${l - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end" fill="#777">${v}</text><line x1="${l}" x2="${w - r}" y1="${y(v)}" y2="${y(v)}" stroke="#f0f0f0"/>`).join('')}
${points.map((p, i) => `<text x="${xs[i]!.toFixed(1)}" y="${h - b + 16}" font-size="11" text-anchor="middle" fill="#777">ε=${p.epsilon}</text>`).join('')}
${lines}
</svg>
<table><tr><th>ε budget</th><th>federated</th><th>local-only</th><th>centralized</th><th>ε spent (max member)</th><th>noise z</th></tr>${rows}</table>
</body></html>
`;
}
