// Privacy accounting of an MST run, and noise calibration for a target (ε, δ).
//
// Every step is a zCDP mechanism with a Gaussian-shaped RDP curve, RDP(α) = α·ρ:
//  - a marginal measured with N(0, σ²) per cell, sensitivity Δ (1 for adding/removing one record: the
//    record adds 1 to one cell) is the Gaussian mechanism: ρ = Δ²/(2σ²); in @fedtwin/dp terms a sampled
//    Gaussian with sampleRate 1 and noiseMultiplier z = σ/Δ, whose RDP is exactly α/(2z²);
//  - one exponential-mechanism selection with parameter ε (probabilities ∝ exp(ε·score/(2Δ))) is ε-DP
//    and ε-bounded-range, hence ε²/8-zCDP (Cesar & Rogers 2021), the bound MST itself uses: the same RDP
//    as a Gaussian with z = 2/ε, so it is recorded as one.
// So a whole run is a list of `SampledGaussian`s at q = 1 (the format members already record in the
// ledger), composed by @fedtwin/dp's RdpAccountant and converted to (ε, δ) with its default
// ('improved', Balle et al. 2020 / Canonne–Kamath–Steinke 2020) conversion over its default orders.
import { FedtwinError } from '@fedtwin/errors';
import { DEFAULT_ORDERS, RdpAccountant, noiseMultiplierFor, rdpToEpsilon, skellamMechanism } from '@fedtwin/dp';
import type { SampledGaussian } from '@fedtwin/dp';

/** How the tree is chosen. 'measured' (default): every pair is measured with Gaussian noise and the tree
 *  is post-processing, so nothing unnoised is ever decrypted; 'exponential': MST's own selection, whose
 *  scores need the pooled pair counts unnoised (a trusted curator or MPC in a federation). */
export type Selection = 'exponential' | 'measured';

/** Shares of the total ρ for the three steps (normalised to sum 1). MST's own split is ⅓ each. */
export interface BudgetSplit {
  oneWay: number;
  select: number;
  edges: number;
}
export const DEFAULT_SPLIT: Readonly<BudgetSplit> = Object.freeze({ oneWay: 1 / 3, select: 1 / 3, edges: 1 / 3 });

/**
 * The noise on the summed counts. 'gaussian': N(0, σ²) per cell (floats); 'skellam': Sk(μ) = Poisson(μ) − Poisson(μ)
 * per cell (integers, variance 2μ; m members' Sk(μ/m) shares sum to it exactly), accounted with the Skellam RDP
 * bound (Agarwal, Kairouz & Liu 2021) at integer orders. What the federation draws (scheduleFor); the in-memory
 * fitMst stays Gaussian.
 */
export type CountNoise = 'gaussian' | 'skellam';
/** Skellam μ is rounded up to a multiple of 1/MU_GRID, so a share's Poisson mean μ/m is an exact rational. */
export const MU_GRID = 1024;

export interface MstPlan {
  /** The noise kind; with 'skellam' each measured step also has its μ, and its sigma is √(2μ) (the std-dev of the sum's noise). */
  noise: CountNoise;
  epsilon: number;
  delta: number;
  /** Max change of one cell count (and of a selection score) when one privacy unit is added or removed. */
  sensitivity: number;
  columns: number;
  selection: Selection;
  split: BudgetSplit;
  /** Total zCDP budget the (ε, δ) target allows (Infinity when ε = ∞). */
  rho: number;
  /** Round 1: every column's 1-way marginal at the fine resolution, as `count` count vectors (the
   *  levels of each column's hierarchy, see hierarchy.ts), N(0, σ²) per cell. */
  oneWay: { count: number; sigma: number; mu?: number };
  /** 'exponential': count = columns − 1 exponential-mechanism picks with `epsilon` each;
   *  'measured': count = all column pairs measured with N(0, σ²) per cell (no unnoised counts needed). */
  select: { kind: 'exponential'; count: number; epsilon: number } | { kind: 'measured'; count: number; sigma: number; mu?: number };
  /** Round 3: the tree's columns − 1 2-way marginals, N(0, σ²) per cell. */
  edges: { count: number; sigma: number; mu?: number };
  /** What the run spends, as q = 1 Gaussians (empty when ε = ∞): feed to RdpAccountant / the ledger. */
  mechanisms: SampledGaussian[];
}

function badArgument(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MARGINALS_BAD_ARGUMENT', message, hint === undefined ? {} : { hint });
}

/**
 * zCDP ρ of mechanisms recorded as q = 1 Gaussians: Σ steps/(2z²). For Skellam steps it is the ρ of the Gaussian of
 * the same variance (their z): a lower bound of their cost, for display; ε always comes from the accountant.
 */
export function rhoOf(mechanisms: readonly SampledGaussian[]): number {
  let rho = 0;
  for (const m of mechanisms) {
    if (m.sampleRate !== 1) throw badArgument(`rhoOf takes q = 1 mechanisms only, got sampleRate ${m.sampleRate}`, 'A subsampled Gaussian is not ρ-zCDP for a single ρ; use RdpAccountant');
    rho += m.steps / (2 * m.noiseMultiplier ** 2);
  }
  return rho;
}

/** (ε, δ) of a ρ-zCDP mechanism via @fedtwin/dp's conversion over its default orders (RDP = α·ρ). */
export function zcdpEpsilon(rho: number, delta: number): { epsilon: number; order: number } {
  if (!(rho >= 0)) throw badArgument(`rho must be ≥ 0, got ${rho}`);
  if (rho === Infinity) return { epsilon: Infinity, order: 0 };
  return rdpToEpsilon({ orders: DEFAULT_ORDERS, rdp: DEFAULT_ORDERS.map((a) => a * rho), delta });
}

/** The (ε, δ) a list of q = 1 Gaussian mechanisms spends, composed by @fedtwin/dp's RdpAccountant. */
export function accountMechanisms(mechanisms: readonly SampledGaussian[], delta: number): { epsilon: number; order: number; rho: number } {
  if (mechanisms.length === 0) return { epsilon: 0, order: 0, rho: 0 };
  const acc = new RdpAccountant({ mechanisms });
  return { ...acc.getEpsilon(delta), rho: rhoOf(mechanisms) };
}

function normaliseSplit(split: Partial<BudgetSplit> | undefined): BudgetSplit {
  const s = { ...DEFAULT_SPLIT, ...split };
  for (const [k, v] of Object.entries(s)) {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw badArgument(`split.${k} must be a finite number > 0, got ${v}`);
  }
  const t = s.oneWay + s.select + s.edges;
  return { oneWay: s.oneWay / t, select: s.select / t, edges: s.edges / t };
}

export interface CalibrateOptions {
  epsilon: number;
  delta: number;
  /** Number of columns of the table (the target included). */
  columns: number;
  selection?: Selection;
  split?: Partial<BudgetSplit>;
  /** Default 1 (record-level DP, add/remove one row). Patient-level with at most k rows per patient: k. */
  sensitivity?: number;
  /** Count vectors measured in round 1 (Σ over columns of their hierarchy levels). Default: columns. */
  oneWayCount?: number;
  /** Default 'gaussian'. 'skellam' needs an integer sensitivity (counts are integers). */
  noise?: CountNoise;
}

/**
 * Noise for every step of an MST run so that the whole run meets (ε, δ). The total ρ is found with
 * @fedtwin/dp's noiseMultiplierFor for a single q = 1 Gaussian (the composition of q = 1 Gaussians is
 * a q = 1 Gaussian with 1/z² = Σ steps/z_i², so this is exact, not a bound), then split; the composed
 * plan is re-checked with RdpAccountant. ε = ∞ means DP off: no noise, argmax selection.
 */
export function calibrateMst(opts: CalibrateOptions): MstPlan {
  const { epsilon, delta } = opts;
  const d = opts.columns;
  if (!Number.isInteger(d) || d < 2) throw badArgument(`columns must be an integer ≥ 2, got ${d}`);
  if (typeof epsilon !== 'number' || !(epsilon > 0)) throw badArgument(`epsilon must be > 0 (Infinity: DP off), got ${epsilon}`);
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) throw badArgument(`delta must be in (0, 1), got ${delta}`);
  const sensitivity = opts.sensitivity ?? 1;
  if (!(sensitivity > 0) || !Number.isFinite(sensitivity)) throw badArgument(`sensitivity must be a finite number > 0, got ${sensitivity}`);
  const oneWayCount = opts.oneWayCount ?? d;
  if (!Number.isInteger(oneWayCount) || oneWayCount < d) throw badArgument(`oneWayCount must be an integer ≥ columns (${d}), got ${oneWayCount}`);
  const selection = opts.selection ?? 'measured';
  if (selection !== 'exponential' && selection !== 'measured') throw badArgument(`selection must be "exponential" or "measured", got ${JSON.stringify(selection)}`);
  const split = normaliseSplit(opts.split);
  const noise = opts.noise ?? 'gaussian';
  if (noise !== 'gaussian' && noise !== 'skellam') throw badArgument(`noise must be "gaussian" or "skellam", got ${JSON.stringify(noise)}`);
  if (noise === 'skellam' && !Number.isInteger(sensitivity)) throw badArgument(`Skellam noise needs an integer sensitivity (counts are integers), got ${sensitivity}`, 'a record adds 1 to a cell: sensitivity 1 (k for at most k rows per unit)');
  const pairs = (d * (d - 1)) / 2;
  const selectCount = selection === 'exponential' ? d - 1 : pairs;
  if (epsilon === Infinity) {
    return {
      noise, epsilon, delta, sensitivity, columns: d, selection, split, rho: Infinity,
      oneWay: { count: oneWayCount, sigma: 0 },
      select: selection === 'exponential' ? { kind: 'exponential', count: selectCount, epsilon: Infinity } : { kind: 'measured', count: selectCount, sigma: 0 },
      edges: { count: d - 1, sigma: 0 },
      mechanisms: [],
    };
  }
  let rho = 1 / (2 * noiseMultiplierFor({ epsilon, delta, sampleRate: 1, steps: 1 }).noiseMultiplier ** 2);
  for (let attempt = 0; ; attempt++) {
    // ρ_part = count·Δ²/(2σ²) → σ = Δ·√(count/(2ρ_part)); EM: ρ_part = count·ε²/8 → ε = √(8ρ_part/count).
    const sigma = (count: number, share: number): number => sensitivity * Math.sqrt(count / (2 * share * rho));
    const oneWay = { count: oneWayCount, sigma: sigma(oneWayCount, split.oneWay) };
    const edges = { count: d - 1, sigma: sigma(d - 1, split.edges) };
    const select: MstPlan['select'] =
      selection === 'exponential'
        ? { kind: 'exponential', count: selectCount, epsilon: Math.sqrt((8 * split.select * rho) / selectCount) }
        : { kind: 'measured', count: selectCount, sigma: sigma(selectCount, split.select) };
    const gaussian: MstPlan = { noise: 'gaussian', epsilon, delta, sensitivity, columns: d, selection, split, rho, oneWay, select, edges, mechanisms: [] };
    gaussian.mechanisms = planMechanisms(gaussian);
    const plan = noise === 'skellam' ? skellamPlan(gaussian) : gaussian;
    // Splitting ρ is exact in real arithmetic; guard the last ulp so the plan never exceeds its target.
    if (accountMechanisms(plan.mechanisms, delta).epsilon <= epsilon) return plan;
    if (attempt >= 8) throw new FedtwinError('MARGINALS_CALIBRATION_FAILED', `could not meet ε = ${epsilon} after shrinking ρ`, { details: { rho } });
    rho *= 1 - 1e-12 * 2 ** attempt;
  }
}

/** μ on the grid, rounded up (more noise, never less). */
export function muOnGrid(mu: number): number {
  return Math.ceil(mu * MU_GRID) / MU_GRID;
}

/**
 * The Skellam plan for the same target as a Gaussian plan that meets it: each measured step's μ = κ·σ²/2 on the grid
 * (variance 2μ ≈ κσ²), with the smallest κ ≥ 1 (to 1e-9) whose composition still meets ε. κ > 1 because the Skellam
 * bound adds min(((2α−1)Δ² + 6Δ)/(16μ²), 3Δ/(4μ)) per count vector to the Gaussian's αΔ²/(4μ); at WDBC's σ this
 * is a few per cent.
 */
function skellamPlan(g: MstPlan): MstPlan {
  const at = (kappa: number): MstPlan => {
    const step = <T extends { count: number; sigma: number }>(s: T): T & { mu: number } => {
      const mu = muOnGrid((kappa * s.sigma * s.sigma) / 2);
      return { ...s, mu, sigma: Math.sqrt(2 * mu) };
    };
    const plan: MstPlan = { ...g, noise: 'skellam', oneWay: step(g.oneWay), select: g.select.kind === 'measured' ? step(g.select) : g.select, edges: step(g.edges), mechanisms: [] };
    plan.mechanisms = planMechanisms(plan);
    return plan;
  };
  const meets = (p: MstPlan) => accountMechanisms(p.mechanisms, g.delta).epsilon <= g.epsilon;
  let lo = 1;
  let hi = 1;
  let best = at(hi);
  while (!meets(best)) {
    lo = hi;
    hi *= 2;
    if (hi > 2 ** 20) throw new FedtwinError('MARGINALS_CALIBRATION_FAILED', `no Skellam noise up to 2^20 times the Gaussian's variance meets ε = ${g.epsilon}`, { hint: 'raise ε or δ' });
    best = at(hi);
  }
  while (hi - lo > 1e-9 * hi) {
    const mid = lo + (hi - lo) / 2;
    const p = at(mid);
    if (meets(p)) {
      hi = mid;
      best = p;
    } else lo = mid;
  }
  return best;
}

/**
 * The plan's steps as q = 1 mechanisms: Gaussians (noiseMultiplier = σ/Δ; an EM pick with ε as z = 2/ε), or with
 * Skellam noise Skellam steps { μ, l1 = l2 = Δ } per count vector (one unit changes one cell of each by ≤ Δ).
 */
export function planMechanisms(plan: MstPlan): SampledGaussian[] {
  if (plan.epsilon === Infinity) return [];
  const g = (s: { sigma: number; mu?: number }, steps: number): SampledGaussian =>
    plan.noise === 'skellam' && s.mu !== undefined
      ? skellamMechanism({ mu: s.mu, l1: plan.sensitivity, l2: plan.sensitivity, steps })
      : { sampleRate: 1, noiseMultiplier: s.sigma / plan.sensitivity, steps };
  return [
    g(plan.oneWay, plan.oneWay.count),
    plan.select.kind === 'exponential' ? { sampleRate: 1, noiseMultiplier: 2 / plan.select.epsilon, steps: plan.select.count } : g(plan.select, plan.select.count),
    g(plan.edges, plan.edges.count),
  ];
}
