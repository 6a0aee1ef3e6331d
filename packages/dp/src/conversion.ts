// RDP → (ε, δ) and back. Edge cases follow Google dp_accounting's compute_epsilon / compute_delta
// (rdp_privacy_accountant.py): negative RDP → 0, δ = 0 → ε = 0 only if every RDP is 0, ε clamped at 0,
// first minimising order wins ties.
import { badArgument, checkDelta, checkEpsilon, checkOrders } from './validate.ts';

export type Conversion = 'improved' | 'classic';
export const CONVERSIONS: readonly Conversion[] = ['improved', 'classic'];

/** ε (or δ) together with the RDP order α at which the minimum was attained. */
export interface EpsilonResult {
  epsilon: number;
  order: number;
}
export interface DeltaResult {
  delta: number;
  order: number;
}

export function checkConversion(c: unknown): Conversion {
  if (c !== 'improved' && c !== 'classic') {
    throw badArgument(`conversion must be "improved" or "classic", got ${JSON.stringify(c)}`, 'improved (Balle et al. 2020) is the default and never worse than classic (Mironov 2017).');
  }
  return c;
}

function checkPair(orders: unknown, rdp: unknown): { orders: readonly number[]; rdp: readonly number[] } {
  const o = checkOrders(orders, true);
  if (!Array.isArray(rdp) || rdp.length !== o.length) {
    throw badArgument('rdp must be an array with one value per order', 'Pass the output of computeRdp for the same orders.');
  }
  for (const r of rdp) {
    if (typeof r !== 'number' || Number.isNaN(r)) throw badArgument(`rdp values must be numbers, got ${String(r)}`, 'RDP may be +Infinity but not NaN.');
  }
  return { orders: o, rdp: rdp as readonly number[] };
}

function argmin(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] < values[best]) best = i;
  return best;
}

/**
 * ε for a target δ from RDP curves.
 * improved (default): ε = min_α RDP(α) + log((α-1)/α) − (log δ + log α)/(α−1)
 *   (Balle et al. 2020, Thm 21; Canonne, Kamath & Steinke 2020, Prop. 12) — used for α > 1.01 only;
 *   an order whose RDP r satisfies δ² > 1 − e^{−r} gives ε = 0 (KL/Pinsker bound), as in dp_accounting.
 * classic: ε = min_α RDP(α) + log(1/δ)/(α−1) (Mironov 2017, Prop. 3).
 */
export function rdpToEpsilon(init: { orders: readonly number[]; rdp: readonly number[]; delta: number; conversion?: Conversion }): EpsilonResult {
  const { orders, rdp } = checkPair(init.orders, init.rdp);
  const delta = checkDelta(init.delta);
  const conversion = checkConversion(init.conversion ?? 'improved');
  if (delta === 0) {
    // No finite order helps with δ = 0 (dp_accounting returns order 0 here, meaning "none").
    return rdp.every((r) => r === 0) ? { epsilon: 0, order: 0 } : { epsilon: Infinity, order: 0 };
  }
  const eps = orders.map((a, k) => {
    const r = rdp[k];
    if (conversion === 'classic') {
      if (r < 0) return 0;
      if (a === 1) return Infinity; // the classic bound is vacuous at α = 1
      return r - Math.log(delta) / (a - 1);
    }
    if (r < 0) return 0;
    if (delta ** 2 + Math.expm1(-r) > 0) return 0;
    if (a > 1.01) return r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    return Infinity;
  });
  const k = argmin(eps);
  return { epsilon: Math.max(0, eps[k]), order: orders[k] };
}

/**
 * δ for a target ε from RDP curves (the inverse of rdpToEpsilon).
 * improved: log δ = min_α min( ½·log(1 − e^{−r}),  (α−1)(r − ε + log(1 − 1/α)) − log α ) (the second for α > 1.01);
 * classic: δ = min_α exp((r − ε)(α − 1)). Capped at 1.
 */
export function rdpToDelta(init: { orders: readonly number[]; rdp: readonly number[]; epsilon: number; conversion?: Conversion }): DeltaResult {
  const { orders, rdp } = checkPair(init.orders, init.rdp);
  const epsilon = checkEpsilon(init.epsilon);
  const conversion = checkConversion(init.conversion ?? 'improved');
  const logDeltas = orders.map((a, k) => {
    const r = rdp[k];
    if (conversion === 'classic') return (r - epsilon) * (a - 1);
    let logDelta: number;
    if (r <= 0) logDelta = -Infinity;
    else logDelta = 0.5 * Math.log1p(-Math.exp(-r));
    if (a > 1.01 && r >= 0) {
      logDelta = Math.min(logDelta, (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a));
    }
    return logDelta;
  });
  const k = argmin(logDeltas);
  return { delta: Math.min(Math.exp(logDeltas[k]), 1), order: orders[k] };
}
