/**
 * ε (and δ) for people: 3 significant digits, rounded **up**. An ε is an upper bound, so a printed figure
 * below the computed one would over-claim privacy (1.7117 prints 1.72, never 1.71). An accountant's ε is a
 * float sum (7.999999999997287 for a budget of 8 spent): a value within 1e-9 (relative) of the 3-digit
 * figure below it is that figure, because its last digits are rounding noise no decision depends on.
 * --json output keeps the full value for scripts and audits.
 */
export function formatEpsilon(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (x === 0) return '0';
  if (x < 0) return `-${formatEpsilonDown(-x)}`;
  const nearest = Number(x.toPrecision(3));
  if (nearest >= x || Math.abs(nearest - x) <= 1e-9 * x) return String(nearest);
  return String(Number(nextUp3(x).toPrecision(3)));
}

/** The next 3-significant-digit figure above x (x not on the grid). */
function nextUp3(x: number): number {
  const unit = 10 ** (Math.floor(Math.log10(x)) - 2);
  // Scaled by the unit, x lies between two integers; the ceiling is the figure above (toPrecision tidies 0.1+0.2 noise).
  return Math.ceil(x / unit - 1e-9) * unit;
}

/**
 * A lower bound for people (an audit's ε_lower, a noise multiplier): 3 significant digits rounded **down**,
 * so the figure never claims more than was measured or more noise than was added.
 */
export function formatLowerBound(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (x === 0) return '0';
  return x > 0 ? formatEpsilonDown(x) : `-${formatEpsilon(-x)}`;
}

/** |x| rounded down to 3 significant digits (x > 0), tolerant of float noise just below a grid figure. */
function formatEpsilonDown(x: number): string {
  const unit = 10 ** (Math.floor(Math.log10(x)) - 2);
  return String(Number((Math.floor(x / unit + 1e-9) * unit).toPrecision(3)));
}
