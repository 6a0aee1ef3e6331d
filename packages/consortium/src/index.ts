export {
  ManifestSchema, MemberSchema, RoundPolicySchema, SecureAggregationConfigSchema, DEFAULT_SECURE_AGGREGATION_SCHEME, PrivacyConfigSchema, MAX_MANIFEST_BYTES, DEFAULT_PRIVACY, DEFAULT_VAE_MODEL, DEFAULT_RECORD_CLIP, DEFAULT_COUNT_NOISE,
  parseManifest, manifestHash, schemaHash, loadManifest, secaggNeighbourhood, secaggThresholdIssue, secaggSparseDegree, SECAGG_FULL_GRAPH_UP_TO, manifestYaml, firstDifference, requireSame,
  type Manifest, type ManifestInput, type PrivacyConfig,
} from './manifest.ts';
export {
  resolvePrivacyPolicy, RECORD_NOISE_FLOOR, privacyPolicyOf, SITE_SAMPLE_RATE, calibrationRounds, siteDpWithoutSecureAggregation, SITE_DP_PLAINTEXT_HINT, secureAggregationOf, memberIds, maxWeights, checkPrivacyFloor, type PrivacyFloor,
} from './derive.ts';
export { configIssues, keysAt, closest, type ConfigIssue } from './field-issues.ts';
