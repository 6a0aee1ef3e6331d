// A site's (ε, δ) privacy budget. State = the budget plus the composed mechanisms (plain JSON), so what has
// been spent is always recomputed exactly from the mechanisms, never accumulated from rounded ε values.
import { FedtwinError } from '@fedtwin/errors';
import { RdpAccountant } from './accountant.ts';
import type { RdpAccountantState } from './accountant.ts';
import { checkConversion } from './conversion.ts';
import type { Conversion, EpsilonResult } from './conversion.ts';
import type { FractionalSeries, SampledGaussian } from './rdp.ts';
import { badArgument, checkDelta } from './validate.ts';

export interface PrivacyBudgetState extends RdpAccountantState {
  version: 1;
  /** The budget: total ε allowed at `delta`. */
  epsilon: number;
  delta: number;
  conversion: Conversion;
}

/** What composing a planned mechanism would lead to. */
export interface PlannedSpend {
  /** Total ε after the planned mechanisms (not the increment). */
  epsilon: number;
  order: number;
  /** epsilon − ε spent so far. */
  additional: number;
  /** Budget left afterwards, floored at 0. */
  remaining: number;
  affordable: boolean;
}

function list(planned: SampledGaussian | readonly SampledGaussian[]): readonly SampledGaussian[] {
  return Array.isArray(planned) ? (planned as readonly SampledGaussian[]) : [planned as SampledGaussian];
}

export class PrivacyBudget {
  readonly epsilon: number;
  readonly delta: number;
  readonly conversion: Conversion;
  #accountant: RdpAccountant;

  constructor(init: {
    epsilon: number;
    delta: number;
    conversion?: Conversion;
    orders?: readonly number[];
    fractionalSeries?: FractionalSeries;
    mechanisms?: readonly SampledGaussian[];
  }) {
    if (typeof init.epsilon !== 'number' || !(init.epsilon > 0) || init.epsilon === Infinity) {
      throw badArgument(`budget epsilon must be a finite number > 0, got ${String(init.epsilon)}`, 'e.g. 8 for a whole training run.');
    }
    const delta = checkDelta(init.delta);
    if (!(delta > 0 && delta < 1)) throw badArgument(`budget delta must be in (0, 1), got ${delta}`, 'Pick δ below 1/(number of records), e.g. 1e-5.');
    this.epsilon = init.epsilon;
    this.delta = delta;
    this.conversion = checkConversion(init.conversion ?? 'improved');
    this.#accountant = new RdpAccountant({
      ...(init.orders === undefined ? {} : { orders: init.orders }),
      ...(init.fractionalSeries === undefined ? {} : { fractionalSeries: init.fractionalSeries }),
      ...(init.mechanisms === undefined ? {} : { mechanisms: init.mechanisms }),
    });
  }

  get orders(): readonly number[] {
    return this.#accountant.orders;
  }

  get fractionalSeries(): FractionalSeries {
    return this.#accountant.fractionalSeries;
  }

  /** Mechanisms composed so far (merged by (q, z), in order of first appearance). */
  get mechanisms(): SampledGaussian[] {
    return this.#accountant.mechanisms;
  }

  /** ε spent so far at the budget's δ, with the optimal order. */
  spent(): EpsilonResult {
    return this.#accountant.getEpsilon(this.delta, this.conversion);
  }

  /** Budget ε minus ε spent, floored at 0. */
  remaining(): number {
    return Math.max(0, this.epsilon - this.spent().epsilon);
  }

  /** The total ε if `planned` were composed now (the budget itself is not changed). */
  wouldSpend(planned: SampledGaussian | readonly SampledGaussian[]): PlannedSpend {
    const before = this.spent().epsilon;
    const acc = this.#accountant.clone();
    for (const m of list(planned)) acc.compose(m);
    const after = acc.getEpsilon(this.delta, this.conversion);
    return {
      epsilon: after.epsilon,
      order: after.order,
      additional: after.epsilon - before,
      remaining: Math.max(0, this.epsilon - after.epsilon),
      affordable: after.epsilon <= this.epsilon,
    };
  }

  /** Whether composing `planned` keeps total ε ≤ the budget ε (no slack). */
  canAfford(planned: SampledGaussian | readonly SampledGaussian[]): boolean {
    return this.wouldSpend(planned).affordable;
  }

  /** Composes `planned` if affordable, else throws DP_BUDGET_EXCEEDED and leaves the budget unchanged. */
  spend(planned: SampledGaussian | readonly SampledGaussian[]): EpsilonResult {
    const plan = this.wouldSpend(planned);
    if (!plan.affordable) {
      throw new FedtwinError('DP_BUDGET_EXCEEDED', `planned spend would bring ε to ${plan.epsilon}, over the budget ${this.epsilon} (δ = ${this.delta})`, {
        hint: 'Raise the noise multiplier, lower the sampling rate or the number of steps, or skip this round.',
        details: { budgetEpsilon: this.epsilon, delta: this.delta, wouldSpend: plan.epsilon, spent: plan.epsilon - plan.additional },
      });
    }
    return this.record(planned);
  }

  /** Composes `planned` unconditionally (e.g. replaying history) and returns the new total. */
  record(planned: SampledGaussian | readonly SampledGaussian[]): EpsilonResult {
    const acc = this.#accountant.clone();
    for (const m of list(planned)) acc.compose(m);
    this.#accountant = acc; // all-or-nothing: a bad entry leaves the budget as it was
    return this.spent();
  }

  toJSON(): PrivacyBudgetState {
    const s = this.#accountant.toJSON();
    return { version: 1, epsilon: this.epsilon, delta: this.delta, conversion: this.conversion, orders: s.orders, fractionalSeries: this.fractionalSeries, mechanisms: s.mechanisms };
  }

  static fromJSON(state: unknown): PrivacyBudget {
    if (typeof state !== 'object' || state === null) {
      throw new FedtwinError('DP_BAD_STATE', 'budget state must be an object', { hint: 'Pass what PrivacyBudget#toJSON() returned.' });
    }
    const s = state as Record<string, unknown>;
    if (s.version !== 1) {
      throw new FedtwinError('DP_BAD_STATE', `unsupported budget state version ${JSON.stringify(s.version)}`, { hint: 'This build reads version 1.' });
    }
    const acc = RdpAccountant.fromJSON({ orders: s.orders, fractionalSeries: s.fractionalSeries, mechanisms: s.mechanisms });
    try {
      return new PrivacyBudget({
        epsilon: s.epsilon as number,
        delta: s.delta as number,
        conversion: s.conversion as Conversion,
        orders: acc.orders,
        fractionalSeries: acc.fractionalSeries,
        mechanisms: acc.mechanisms,
      });
    } catch (err) {
      if (err instanceof FedtwinError) throw new FedtwinError('DP_BAD_STATE', `invalid budget state: ${err.message}`, { hint: err.hint ?? 'Pass what toJSON() returned.', cause: err });
      throw err;
    }
  }
}
