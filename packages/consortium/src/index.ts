export {
  ManifestSchema, MemberSchema, RoundPolicySchema, SecureAggregationConfigSchema, PrivacyConfigSchema, MAX_MANIFEST_BYTES,
  parseManifest, manifestHash, schemaHash, loadManifest, manifestYaml, firstDifference, requireSame,
  type Manifest, type ManifestInput, type PrivacyConfig,
} from './manifest.ts';
export {
  resolvePrivacyPolicy, privacyPolicyOf, secureAggregationOf, memberIds, maxWeights, checkPrivacyFloor, type PrivacyFloor,
} from './derive.ts';
