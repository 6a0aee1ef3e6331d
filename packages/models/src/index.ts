export type * from './types.ts';
// model side
export { initBackend, currentBackend } from './backend.ts';
export type { BackendPreference, BackendInfo, InitBackendOptions } from './backend.ts';
export { installWasmMatmulFix, uninstallWasmMatmulFix, isWasmMatmulFixInstalled } from './matmul-fix.ts';
export { createTwinVae, VAE_LAYERS, DEFAULT_SHARED_LAYERS } from './vae.ts';
export type { TwinVae, TwinVaeInit, GenerateOptions, VaeLayerName } from './vae.ts';
export type { TrainOptions, TrainResult, DpTrainOptions } from './train.ts';
export { registerModelGradients } from './gradients.ts';
export { createRng, deriveSeed, fillNormal, normalsFrom } from './rng.ts';
export { osNoise, secureNoise, seededNoise } from './noise.ts';
export { MIN_NOISE_MULTIPLIER, SAMPLER_MAX_ABS_Z, log10GaussianTail, samplerTruncationLog10Delta } from './gaussian.ts';
export { dpSampleRate, groupUnits } from './sampling.ts';
export { dpPlan } from './train.ts';
export type { Units } from './sampling.ts';
export type { NoiseSource } from './noise.ts';
export type { Rng } from './rng.ts';
// data side
export { parseCsv, readCsvFile, toCsv, formatNumber, DEFAULT_CSV_LIMITS } from './csv.ts';
export type { CsvLimits, ParsedCsv } from './csv.ts';
export { extractUnitColumn } from './units.ts';
export type { UnitColumn } from './units.ts';
export { inferSchema, validateSchema, tableFromCsv, tableToCsv, parseNumber, decimalsOf, sortCategories, targetIndex } from './schema.ts';
export type { InferSchemaOptions, TableFromCsvOptions, TableReport, LoadedTable } from './schema.ts';
export { detectIdColumns, describeIdColumn, looksLikeIdName, withoutColumns } from './id-columns.ts';
export type { IdColumn, DetectIdColumnsOptions } from './id-columns.ts';
export { encodeTable, encodedLayout, decodeRows, decodeTable } from './encode.ts';
export type { EncodedLayout, DecodeOptions } from './encode.ts';
export { createPrng, prngFromState, drawIndex } from './random.ts';
export type { Prng } from './random.ts';
export { dirichletSplit, dirichletSplitDetailed, iidSplit, trainTestSplit, pick } from './split.ts';
export type { DirichletSplitOptions, DirichletSplitResult } from './split.ts';
export {
  ksStatistic,
  ksComplement,
  tvDistance,
  tvComplement,
  assertSameSchema,
  columnScores,
  pearsonMatrix,
  correlationDistance,
  fidelityReport,
  missingnessReport,
  missingRate,
  columnHistograms,
  rocAuc,
  multiclassAuc,
  trainLogisticRegression,
  utilityAuc,
  tstrAuc,
  trtrAuc,
} from './evaluate.ts';
export type {
  ColumnScore,
  FidelityReport,
  MissingnessReport,
  MissingnessScore,
  ColumnHistogram,
  MulticlassAuc,
  Features,
  LogisticRegressionOptions,
  LogisticRegressionModel,
  UtilityResult,
} from './evaluate.ts';
export { forestUtility, minorityRecall, DEFAULT_FOREST_TREES, type ClassifierUtility, type ForestOptions } from './forest.ts';
export { dcrReport, membershipInferenceAuc, distancePoints, nearestDistances, type DcrReport, type MiaReport } from './privacy-eval.ts';
export { BUILTIN_DATASETS, builtinDataset, defaultDataDir, loadDataset, loadDatasetTable, applyBinning, subsetTable } from './datasets.ts';
export type { BuiltinDataset, BuiltinDatasetName, Binning, Dataset, LoadDatasetOptions, LoadTableOptions } from './datasets.ts';
export { GENERATOR_KINDS, SAVED_MODEL_FORMAT, MAX_SAMPLE_ROWS, checkSampleRows, resolveCondition, describeSchema, rejectionSample, checkSavedModel, vaeGenerator, vaeState } from './generator.ts';
export type { FederatedFit, Generator, GeneratorKind, GeneratorDescription, SavedModel, SavedPrivacy, SampleOptions, Condition, VaeState } from './generator.ts';
export { correlationHeatmap, numericCorrelations } from './heatmap.ts';
export type { CorrelationHeatmap } from './heatmap.ts';
export { DEFAULT_MISSING_TOKENS, hasMissing, missingTokensOf, isMissingField, isMissing, missingColumns } from './missing.ts';
