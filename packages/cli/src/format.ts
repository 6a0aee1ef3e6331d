/**
 * ε (and δ) for people: 3 significant digits. An accountant's ε is a float sum (7.999999999997287 for a
 * budget of 8 spent); its last digits are rounding noise no decision depends on. --json output keeps the
 * full value for scripts and audits.
 */
export function formatEpsilon(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  return String(Number(x.toPrecision(3)));
}
