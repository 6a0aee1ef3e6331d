// @fedtwin/marginals: marginal-based DP synthesis (MST) whose sufficient statistics are count vectors,
// so they can be summed across sites by secure aggregation.
export { DEFAULT_FINE_BINS, domainFromSchema, binTable, coarsenDomain, columnSize, valueBins, isMissingCell, assertMatches } from './domain.ts';
export type { ColumnDomain, Domain, DomainOptions, CoarsenMode, Coarsening } from './domain.ts';
export { checkMarginal, marginalSize, strides, countsFromBins, localCounts, sumCounts, addNoise, noiseShare } from './counts.ts';
export type { Marginal, GaussianSource } from './counts.ts';
export { DEFAULT_SPLIT, MU_GRID, calibrateMst, muOnGrid, planMechanisms, accountMechanisms, zcdpEpsilon, rhoOf } from './privacy.ts';
export type { CountNoise } from './privacy.ts';
export type { BudgetSplit, CalibrateOptions, MstPlan, Selection } from './privacy.ts';
export { allPairs, cryptoUniform, exponentialMechanism, independenceL1, independenceL2Squared, selectTreeExponential, maximumSpanningTree, pairSize } from './select.ts';
export type { Edge } from './select.ts';
export { DEFAULT_BRANCHING, hierarchyOf, levelCounts, estimateLeaves, estimateColumns, rangeCover, splitLevels } from './hierarchy.ts';
export type { Hierarchy, LeafSmoothing } from './hierarchy.ts';
export { TREE_MODEL_FORMAT, projectSimplex, estimateTotal, estimateOneWays, ipf, fitTree } from './fit.ts';
export type { Measurement, TreeModel, FitTreeOptions } from './fit.ts';
export { MISSING_CELL, checkTreeModel, sampleBins, decodeBins, sampleTable, systematicCounts } from './sample.ts';
export type { SampleMethod } from './sample.ts';
export { autoBins, fitMst } from './mst.ts';
export type { MstOptions, MstResult, MstRound } from './mst.ts';
export { MST_ROUNDS, MAX_SCHEDULE_VALUES, mstSchedule, scheduleFor, countVectorLength, roundRequest, memberCounts, fitReleased } from './federated.ts';
export type { MstSchedule, ScheduleOptions, MarginalsConfig, RoundRequest, Segment } from './federated.ts';
export { marginalsFit, marginalsGenerator, openSavedModel, rerootTree } from './generator.ts';
export { CALIBRATION_KNOTS, applyCalibration, calibrateColumns, checkCalibrationMap, fitCalibration } from './calibrate.ts';
export type { CalibrationMap } from './calibrate.ts';
export { COLUMN_RELEASE_FINE_BINS, COLUMN_RELEASE_SHARE, columnRelease, columnReleaseCounts, columnReleaseLength, releasedColumns } from './column-release.ts';
export type { ColumnRelease, ColumnReleaseOptions, ReleasedColumns } from './column-release.ts';
export { fitDpCopula, sampleDpCopula, normalQuantile, nearestCorrelation } from './dp-copula.ts';
export type { DpCopula, DpCopulaOptions } from './dp-copula.ts';
export { capRowsPerUnit } from './units.ts';
