// @fedtwin/dp: privacy accounting for fedtwin (pure TypeScript, no I/O).
export { DEFAULT_ORDERS, computeRdp, rdpSampledGaussianOrder, logAInt, logAFrac, MAX_STEPS_LOG_A_FRAC, FRACTIONAL_SERIES, checkFractionalSeries } from './rdp.ts';
export type { SampledGaussian, FractionalSeries } from './rdp.ts';
export { rdpToEpsilon, rdpToDelta, checkConversion, CONVERSIONS } from './conversion.ts';
export type { Conversion, EpsilonResult, DeltaResult } from './conversion.ts';
export { RdpAccountant, epsilonFor, MAX_MECHANISMS } from './accountant.ts';
export type { RdpAccountantState } from './accountant.ts';
export { noiseMultiplierFor, NOISE_TOLERANCE } from './calibrate.ts';
export type { NoiseResult } from './calibrate.ts';
export { analyticGaussianDelta, analyticGaussianEpsilon, analyticGaussianSigma, analyticGaussianLogDelta } from './analytic.ts';
export { PrivacyBudget } from './budget.ts';
export type { PrivacyBudgetState, PlannedSpend } from './budget.ts';
export { erfc, logErfc, normalCdf, logNormalCdf, logGamma, logAdd } from './math.ts';
export { MAX_ORDER, MAX_ORDERS } from './validate.ts';
export { privatizeSiteUpdate } from './site.ts';
export type { PrivatizedUpdate } from './site.ts';
