// The simulation's options and defaults, in a module with no heavy imports (the CLI reads them for --help).

export interface SimOptions {
  dataset: string;
  target?: string;
  /** Numeric columns where 0 means "not measured": the inferred schema declares them zeroIsMissing (docs/data.md). */
  zeroIsMissing?: string[];
  nodes: number;
  rounds: number;
  out: string;
  seed: number;
  alpha: number;
  testFraction: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  latentDim: number;
  hidden: number;
  deadlineSeconds: number;
  /** Overall limit for the federated part, seconds. */
  timeoutSeconds: number;
  /** Progress to stderr: 'auto' (bar on a TTY, lines otherwise), 'lines', 'none'. */
  progress: 'auto' | 'lines' | 'none';
  /** Differential privacy: mode, each member's budget (ε, δ) and clip norms. ε = Infinity turns DP off. */
  dp: 'off' | 'record' | 'site' | 'both';
  epsilon: number;
  delta: number;
  /** Record-level per-example clip (DP-SGD). */
  clip: number;
  /** Site-level update clip (DP-FedAvg). */
  siteClip: number;
  /** Secure aggregation: BFV (default), secagg (pairwise masking, docs/he.md §9) or plaintext, the explicit baseline. */
  secureAggregation: 'bfv' | 'secagg' | 'plaintext';
  /** BFV only: the largest consortium the plaintext modulus has headroom for (default: the config's, 1024). */
  heMaxParticipants?: number;
  /** Draw DP noise from the OS CSPRNG (true) or from the seed, for a reproducible simulation (false). */
  secureNoise: boolean;
  /**
   * The synthesizer the consortium federates (its manifest pins it): `marginals` (the default: federated MST,
   * three rounds of noisy counts under BFV; docs/marginals.md) or `vae` (DP-SGD rounds of model deltas). With
   * `marginals` the federation has 3 rounds whatever --rounds says, and the epochs/batch/VAE options do not
   * apply. The default is the one that won at ε = 8 on the default data (docs/models.md, bench/generators.ts).
   */
  generator: 'vae' | 'marginals';
  /** Empirical privacy audit (docs/privacy-audit.md): `canaries` canary records offered to node 0, each kept
   *  with probability 1/2; report.json gets `privacy.audit`. Off when undefined. */
  audit?: { canaries: number };
  /**
   * Patient-level DP (docs/privacy.md, "The protected unit"): the CSV column holding each row's unit (patient) id.
   * The manifest pins it as privacy.unitColumn; every member samples and clips per unit and counts units, and the
   * id never enters the schema, the model or any released file. The split keeps each unit's rows together (test
   * vs train, and on one node). VAE with record-level DP (record or both) only.
   */
  unitColumn?: string;
  /** The aggregator also serves its dashboard and /metrics on a free loopback port (listening.json's `http`):
   *  what `fedtwin sim --serve` shows for the whole run. */
  aggregatorHttp?: boolean;
  /** Trees of the random forest that scores the release (TSTR/TRTR, minority recall). Its split search is most of
   *  the report's own time (≈ 0.1–0.2 s a tree on WDBC, two forests a run): fewer trees score faster and noisier. */
  forestTrees: number;
  /**
   * The VAE only, under --dp record or off: a count round before the training rounds releases every numeric column's
   * 1-way counts (and the class counts) under secure aggregation, and the twins' columns are calibrated onto them
   * (manifest model.calibrate; docs/models.md, "Column calibration"). Its ε is composed with DP-SGD's within --epsilon.
   * Ignored for the marginals generator and site-level DP. Default true.
   */
  calibrate: boolean;
}

/** Canaries per audit by default: enough for the one-run bound to reach well past ε = 1 (its ceiling for 200
 *  is ε ≈ 3.8 at 95 %), few enough that node 0's ≈ 100 extra records keep the default sim under a minute on
 *  2 cores. More canaries raise the ceiling only logarithmically (1000: ≈ 5.4) and crowd node 0's own data. */
export const DEFAULT_AUDIT_CANARIES = 200;

export const DEFAULT_SIM_OPTIONS: SimOptions = {
  dataset: 'breast_cancer_wdbc', nodes: 3, rounds: 5, out: 'out/sim', seed: 42, alpha: 0.5, testFraction: 0.2,
  epochs: 10, batchSize: 32, learningRate: 0.003, latentDim: 8, hidden: 64, deadlineSeconds: 300, timeoutSeconds: 1200,
  progress: 'auto', generator: 'marginals', dp: 'record', epsilon: 8, delta: 1e-5, clip: 1, siteClip: 0.5, secureAggregation: 'secagg', secureNoise: true,
  calibrate: true,
  forestTrees: 30, // DEFAULT_FOREST_TREES of @fedtwin/models (not imported: this module stays light; options-default.test checks)
};
