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
export type { SkellamParams } from './rdp.ts';
export { osRandom, seededRandom, uniformInt, uniformBigInt, uniform53 } from './random.ts';
export type { RandomSource } from './random.ts';
export { bernoulli, bernoulliBig, bernoulliExpNeg, bernoulliExpNegBig, discreteLaplace, discreteGaussian, isqrt } from './exact.ts';
export { poisson, skellam, skellamLogTail, skellamTailBound, poissonEnvelope, poissonLogRatio, expInterval, poissonStats, poissonTuning, POISSON_FAST_MARGIN } from './poisson.ts';
export type { Rational } from './poisson.ts';
export {
  skellamRdpOrder, skellamMechanism, skellamNoiseMultiplier, checkSkellamParams, roundedL2Bound, roundedL1Bound, skellamSite, skellamShare, skellamEpsilon, skellamNoiseFor, gaussianEpsilonAtIntegerOrders,
  ROUNDING_BETA, SKELLAM_TAIL_LOG2, LAMBDA_DENOMINATOR,
} from './skellam.ts';
export type { SkellamSite, SkellamSiteInit, SkellamShare } from './skellam.ts';
