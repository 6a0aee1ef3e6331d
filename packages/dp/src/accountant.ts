// An RDP accountant over heterogeneous sampled Gaussian mechanisms. Its state is the list of composed
// mechanisms (plain JSON), so totals are always recomputed from scratch, never summed from rounded ε.
import { FedtwinError } from '@fedtwin/errors';
import { checkConversion, rdpToDelta, rdpToEpsilon } from './conversion.ts';
import type { Conversion, DeltaResult, EpsilonResult } from './conversion.ts';
import { DEFAULT_ORDERS, checkFractionalSeries, rdpPerStep } from './rdp.ts';
import { checkSkellamParams, skellamNoiseMultiplier, skellamRdpOrder } from './skellam.ts';
import type { FractionalSeries, SampledGaussian } from './rdp.ts';
import { checkDelta, checkEpsilon, checkNoiseMultiplier, checkOrders, checkSampleRate, checkSteps } from './validate.ts';

/** Most distinct (q, z) pairs one accountant holds (identical pairs merge into one entry). */
export const MAX_MECHANISMS = 100_000;

export interface RdpAccountantState {
  orders: number[];
  /** Absent means 'signed' (exact). */
  fractionalSeries?: FractionalSeries;
  mechanisms: SampledGaussian[];
}

export function checkMechanism(m: unknown, name = 'mechanism'): SampledGaussian {
  if (typeof m !== 'object' || m === null) {
    throw new FedtwinError('DP_BAD_ARGUMENT', `${name} must be an object {sampleRate, noiseMultiplier, steps}`, { hint: 'e.g. { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 100 }' });
  }
  const o = m as Record<string, unknown>;
  const out: SampledGaussian = {
    sampleRate: checkSampleRate(o.sampleRate, `${name}.sampleRate`),
    noiseMultiplier: checkNoiseMultiplier(o.noiseMultiplier, `${name}.noiseMultiplier`),
    steps: checkSteps(o.steps, `${name}.steps`),
  };
  if (o.skellam !== undefined) {
    // The Skellam bound is for the unsampled mechanism (q = 1), and z must be the one its μ and Δ₂ give, so a
    // record cannot show one noise level and be accounted at another.
    if (out.sampleRate !== 1) throw new FedtwinError('DP_BAD_ARGUMENT', `${name}: a Skellam mechanism has sampleRate 1, got ${out.sampleRate}`, { hint: 'Skellam steps are not sampled: record sampleRate 1' });
    const sk = checkSkellamParams(o.skellam, `${name}.skellam`);
    const z = skellamNoiseMultiplier(sk);
    if (!(Math.abs(out.noiseMultiplier - z) <= 1e-12 * z)) {
      throw new FedtwinError('DP_BAD_ARGUMENT', `${name}: noiseMultiplier ${out.noiseMultiplier} is not √(2μ)/l2 = ${z} of its Skellam parameters`, { hint: 'build the mechanism with skellamMechanism({ mu, l1, l2, steps })' });
    }
    out.skellam = sk;
  }
  return out;
}

/** Same mechanism (so their steps may merge): equal q and z, and equal Skellam parameters if any. */
function sameMechanism(a: SampledGaussian, b: SampledGaussian): boolean {
  if (a.sampleRate !== b.sampleRate || a.noiseMultiplier !== b.noiseMultiplier) return false;
  if (!a.skellam || !b.skellam) return !a.skellam && !b.skellam;
  return a.skellam.l1 === b.skellam.l1 && a.skellam.l2 === b.skellam.l2 && a.skellam.mu === b.skellam.mu;
}

/** Per-step RDP at each order: the sampled Gaussian's, or the Skellam bound (integer orders only). */
function perStep(m: SampledGaussian, orders: readonly number[], series: FractionalSeries): number[] {
  if (m.skellam) return orders.map((a) => skellamRdpOrder(m.skellam!, a));
  return rdpPerStep(m.sampleRate, m.noiseMultiplier, orders, series);
}

interface Entry {
  mechanism: SampledGaussian;
  perStep: number[];
}

export class RdpAccountant {
  readonly orders: readonly number[];
  readonly fractionalSeries: FractionalSeries;
  readonly #entries: Entry[] = [];

  constructor(init: { orders?: readonly number[]; fractionalSeries?: FractionalSeries; mechanisms?: readonly SampledGaussian[] } = {}) {
    this.orders = Object.freeze(init.orders === undefined ? [...DEFAULT_ORDERS] : [...checkOrders(init.orders)]);
    this.fractionalSeries = checkFractionalSeries(init.fractionalSeries ?? 'signed');
    for (const m of init.mechanisms ?? []) this.compose(m);
  }

  /**
   * Adds `steps` applications of a sampled Gaussian. Entries with the same (q, z) merge (steps add up), so
   * composing k times with steps = 1 gives exactly the same totals as once with steps = k.
   */
  compose(mechanism: SampledGaussian): this {
    const m = checkMechanism(mechanism);
    if (m.skellam && !this.orders.some((a) => Number.isInteger(a) && a >= 2)) {
      throw new FedtwinError('DP_BAD_ARGUMENT', 'a Skellam mechanism is accounted at integer orders only, and this accountant has none', { hint: 'use the default orders or include integers ≥ 2' });
    }
    const same = this.#entries.find((e) => sameMechanism(e.mechanism, m));
    if (same !== undefined) {
      const steps = same.mechanism.steps + m.steps;
      if (!Number.isSafeInteger(steps)) throw new FedtwinError('DP_BAD_ARGUMENT', 'total steps exceed 2^53 - 1', { hint: 'Split the accounting.' });
      same.mechanism = { ...same.mechanism, steps };
      return this;
    }
    if (this.#entries.length >= MAX_MECHANISMS) {
      throw new FedtwinError('DP_BAD_ARGUMENT', `an accountant holds at most ${MAX_MECHANISMS} distinct (sampleRate, noiseMultiplier) pairs`, { hint: 'Round noise multipliers to a grid so rounds merge.' });
    }
    this.#entries.push({ mechanism: m, perStep: perStep(m, this.orders, this.fractionalSeries) });
    return this;
  }

  /** The composed mechanisms, merged, in order of first appearance (copies). */
  get mechanisms(): SampledGaussian[] {
    return this.#entries.map((e) => ({ ...e.mechanism, ...(e.mechanism.skellam ? { skellam: { ...e.mechanism.skellam } } : {}) }));
  }

  /** Total RDP at each order: Σ over mechanisms of steps × per-step RDP. */
  rdp(): number[] {
    const total = new Array<number>(this.orders.length).fill(0);
    for (const e of this.#entries) {
      for (let k = 0; k < total.length; k++) total[k] += e.perStep[k] * e.mechanism.steps;
    }
    return total;
  }

  getEpsilon(delta: number, conversion: Conversion = 'improved'): EpsilonResult {
    return rdpToEpsilon({ orders: this.orders, rdp: this.rdp(), delta: checkDelta(delta), conversion: checkConversion(conversion) });
  }

  getDelta(epsilon: number, conversion: Conversion = 'improved'): DeltaResult {
    return rdpToDelta({ orders: this.orders, rdp: this.rdp(), epsilon: checkEpsilon(epsilon), conversion: checkConversion(conversion) });
  }

  clone(): RdpAccountant {
    const c = new RdpAccountant({ orders: this.orders, fractionalSeries: this.fractionalSeries });
    for (const e of this.#entries) c.#entries.push({ mechanism: { ...e.mechanism }, perStep: e.perStep });
    return c;
  }

  toJSON(): RdpAccountantState {
    return { orders: [...this.orders], fractionalSeries: this.fractionalSeries, mechanisms: this.mechanisms };
  }

  static fromJSON(state: unknown): RdpAccountant {
    if (typeof state !== 'object' || state === null) {
      throw new FedtwinError('DP_BAD_STATE', 'accountant state must be an object {orders, mechanisms}', { hint: 'Pass what toJSON() returned.' });
    }
    const s = state as Record<string, unknown>;
    if (!Array.isArray(s.mechanisms) || s.mechanisms.length > MAX_MECHANISMS) {
      throw new FedtwinError('DP_BAD_STATE', `accountant state needs a mechanisms array of at most ${MAX_MECHANISMS} entries`, { hint: 'Pass what toJSON() returned.' });
    }
    const mechanisms = s.mechanisms;
    try {
      const acc = new RdpAccountant({
        ...(s.orders === undefined ? {} : { orders: s.orders as readonly number[] }),
        ...(s.fractionalSeries === undefined ? {} : { fractionalSeries: s.fractionalSeries as FractionalSeries }),
      });
      mechanisms.forEach((m, i) => acc.compose(checkMechanism(m, `mechanisms[${i}]`)));
      return acc;
    } catch (err) {
      if (err instanceof FedtwinError) throw new FedtwinError('DP_BAD_STATE', `invalid accountant state: ${err.message}`, { hint: err.hint ?? 'Pass what toJSON() returned.', cause: err });
      throw err;
    }
  }
}

/** ε after `steps` applications of one sampled Gaussian: computeRdp + rdpToEpsilon. */
export function epsilonFor(init: {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
  conversion?: Conversion;
  fractionalSeries?: FractionalSeries;
}): EpsilonResult {
  const acc = new RdpAccountant({
    ...(init.orders === undefined ? {} : { orders: init.orders }),
    ...(init.fractionalSeries === undefined ? {} : { fractionalSeries: init.fractionalSeries }),
  });
  acc.compose({ sampleRate: init.sampleRate, noiseMultiplier: init.noiseMultiplier, steps: init.steps });
  return acc.getEpsilon(init.delta, init.conversion ?? 'improved');
}
