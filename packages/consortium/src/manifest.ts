import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { FedtwinError } from '@fedtwin/errors';
import { canonicalJson } from '@fedtwin/ledger';
import { MARGINALS_ROUNDS, ModelConfigMessage, TrainingConfigMessage } from '@fedtwin/protocol';
import { RECORD_NOISE_FLOOR, SITE_DP_PLAINTEXT_HINT, recordNoiseBelowFloor, siteDpWithoutSecureAggregation } from './derive.ts';
import { configIssues } from './field-issues.ts';

/**
 * The consortium manifest: everything a member agrees to before it sends anything, in one file every
 * member installs and pins. Its hash names the consortium in the ledger's first entry and (through the
 * genesis model version) in every round tag. An aggregator that announces anything else is refused.
 */

const peerId = z.string().regex(/^(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]{20,}$/, 'must be a libp2p peer ID (fedtwin keys generate prints it)');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (a SHA-256 hash)');

const mechanism = {
  clip: z.number().positive().optional(),
  noiseMultiplier: z.number().positive().optional(),
  targetEpsilon: z.number().positive().optional(),
};
/** Per-example gradient clip of record-level DP when the manifest names none (the usual DP-SGD default, as Opacus / TF Privacy examples). */
export const DEFAULT_RECORD_CLIP = 1;
/** The privacy of a manifest that says nothing: record-level DP-SGD at ε = 8, δ = 1e-5. No DP needs an explicit `mode: off`. */
/** σ_N of the count release when the manifest names none: RDP α/(2σ²) = α/800, ε = 0.18 alone at δ = 1e-5 (docs/privacy.md). */
export const DEFAULT_COUNT_NOISE = 20;
export const DEFAULT_PRIVACY = { mode: 'record', epsilon: 8, delta: 1e-5, clip: DEFAULT_RECORD_CLIP } as const;
/** The generator a manifest that names none federates: the VAE at these sizes. */
export const DEFAULT_VAE_MODEL = { kind: 'vae', latentDim: 8, hidden: 64, seed: 42 } as const;

export const PrivacyConfigSchema = z.object({
  mode: z.enum(['off', 'record', 'site', 'both']).default('record'),
  epsilon: z.number().positive().default(8),
  delta: z.number().gt(0).lt(1).default(1e-5),
  ...mechanism,
  site: z.object(mechanism).strict().optional(),
  /**
   * The protected unit of record-level DP: a CSV column (e.g. a patient id) whose rows form one unit, sampled
   * and clipped together, so a patient with k visits is protected at ε rather than ≈ k·ε. A consortium-wide
   * choice, pinned here (and so in the manifest hash) because it changes what the stated ε means. The column
   * is taken out of every member's records before the schema sees them: it never enters the model.
   */
  unitColumn: z.string().min(1).max(200).optional(),
  /**
   * σ_N of record-level DP-SGD's count release: each member draws Ñ = max(1, round(N + σ_N·Z)) once per federation
   * and derives q = min(1, B/Ñ) from it, so q no longer discloses its record (unit) count N. One Gaussian
   * mechanism of sensitivity 1, charged to the record-level budget. Default DEFAULT_COUNT_NOISE (20).
   */
  countNoise: z.number().positive().max(1e6).optional(),
}).strict();
export type PrivacyConfig = z.infer<typeof PrivacyConfigSchema>;

export const MemberSchema = z.object({
  peerId,
  /** Display name (the hospital). */
  name: z.string().min(1).max(200).optional(),
  /** Largest FedAvg weight (record count) this member may declare (default 1,000,000). */
  maxWeight: z.number().int().min(1).optional(),
  /**
   * This member's record count (unit count with privacy.unitColumn), declared public by the consortium (e.g. a
   * registry's published size). Record-level DP-SGD then takes q = min(1, B/publicCount) and divides by
   * min(B, publicCount) — a public constant, never a function of the member's records — and releases no DP count Ñ,
   * so nothing about N is charged. The neighbouring relation stays add/remove one record (unit): the declaration is
   * fixed before any data is seen, and a member uses it whatever its CSV holds (docs/privacy.md, "A declared public count").
   */
  publicCount: z.number().int().min(1).max(2 ** 40).optional(),
}).strict();

export const RoundPolicySchema = z.object({
  total: z.number().int().min(1).max(100_000),
  quorum: z.number().int().min(1),
  minParticipants: z.number().int().min(1),
  deadlineSeconds: z.number().positive().max(7 * 24 * 3600),
  /**
   * A member applies an aggregate only once a checkpoint containing its ledger entry carries this many
   * members' verified cosignatures (default: a majority of members). Two views of the log cannot both
   * reach a majority, so an aggregator cannot show members different histories and have both applied.
   */
  witnessQuorum: z.number().int().min(1).optional(),
}).strict();

/**
 * The scheme a new consortium or sim gets when none is named (`consortium init`, `fedtwin sim`, `bench he`'s
 * "fedtwin" figures): pairwise masking, so no key exists that the aggregator plus one member could use to read
 * an update (issue 16; docs/he.md §9). `consortium init` writes the scheme into the manifest. A manifest file
 * that names no scheme at all keeps the meaning it always had, single-key BFV (the schema's default below):
 * an existing consortium is never switched under its members by an upgrade.
 */
export const DEFAULT_SECURE_AGGREGATION_SCHEME: 'bfv' | 'secagg' = 'secagg';

export const SecureAggregationConfigSchema = z.object({
  /** bfv: one consortium HE key; secagg: pairwise masking, no key anywhere (docs/he.md §9); plaintext: a baseline. */
  scheme: z.enum(['bfv', 'secagg', 'plaintext']).default('bfv'),
  /**
   * secagg: t, in (m/2, m] for a sharing neighbourhood of m (every member: m = n). The aggregator plus fewer than t
   * members learn nothing of one update beyond the sum; a round survives m − t dropouts. Default ⌊m/2⌋ + 1.
   */
  threshold: z.number().int().min(1).optional(),
  /** secagg: sparse neighbourhood graph degree (even, SecAgg+); absent: the full graph (the threshold is global). */
  degree: z.number().int().min(2).optional(),
  /** The member that generates and seals the HE key (default: the first member). */
  keyHolder: peerId.optional(),
  /** Update values are clipped to [-clip, clip] before 16-bit quantization. */
  clip: z.number().positive().default(64),
  /** Largest consortium the plaintext modulus has headroom for. */
  maxParticipants: z.number().int().min(1).max(1 << 16).default(1024),
}).strict();

export const ManifestSchema = z.object({
  version: z.literal(1).default(1),
  /** Consortium id: the ledger's origin is `fedtwin/<id>`. */
  consortium: z.string().min(1).max(200).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash and underscore'),
  /** The aggregator's peer ID: members talk to no other. */
  aggregator: peerId,
  members: z.array(MemberSchema).min(1).max(10_000),
  /** SHA-256 of the declared table schema (canonical JSON); when set, members refuse any other schema. */
  schemaHash: hex64.optional(),
  secureAggregation: SecureAggregationConfigSchema.default({ scheme: 'bfv', clip: 64, maxParticipants: 1024 }),
  privacy: PrivacyConfigSchema.default(DEFAULT_PRIVACY),
  rounds: RoundPolicySchema,
  model: ModelConfigMessage.default(DEFAULT_VAE_MODEL),
  strategy: z.enum(['fedavg']).default('fedavg'),
  training: TrainingConfigMessage.default({ epochs: 5, batchSize: 32, learningRate: 0.003 }),
}).strict().superRefine((m, ctx) => {
  const ids = m.members.map((x) => x.peerId);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) ctx.addIssue({ code: 'custom', path: ['members'], message: `member ${dup} is listed twice` });
  if (ids.includes(m.aggregator)) ctx.addIssue({ code: 'custom', path: ['aggregator'], message: 'the aggregator cannot also be a member' });
  const kh = m.secureAggregation.keyHolder;
  const sa = m.secureAggregation;
  if (sa.scheme !== 'secagg' && (sa.threshold !== undefined || sa.degree !== undefined)) {
    ctx.addIssue({ code: 'custom', path: ['secureAggregation', sa.threshold !== undefined ? 'threshold' : 'degree'], message: `applies to scheme "secagg" only, not "${sa.scheme}"` });
  }
  if (sa.scheme === 'secagg') {
    if (sa.keyHolder !== undefined) ctx.addIssue({ code: 'custom', path: ['secureAggregation', 'keyHolder'], message: 'scheme "secagg" has no key holder (no key exists in one place)' });
    const why = secaggThresholdIssue(ids.length, sa.threshold, sa.degree);
    if (why) ctx.addIssue({ code: 'custom', path: ['secureAggregation', why.field], message: why.message });
  }
  if (kh !== undefined && !ids.includes(kh)) ctx.addIssue({ code: 'custom', path: ['secureAggregation', 'keyHolder'], message: `key holder ${kh} is not a member` });
  if (m.rounds.quorum > ids.length) ctx.addIssue({ code: 'custom', path: ['rounds', 'quorum'], message: `is ${m.rounds.quorum} but only ${ids.length} members are listed` });
  if (m.rounds.minParticipants > m.rounds.quorum) ctx.addIssue({ code: 'custom', path: ['rounds', 'minParticipants'], message: 'must be between 1 and quorum' });
  if (m.rounds.witnessQuorum !== undefined && m.rounds.witnessQuorum > ids.length) ctx.addIssue({ code: 'custom', path: ['rounds', 'witnessQuorum'], message: `is ${m.rounds.witnessQuorum} but only ${ids.length} members are listed` });
  // The marginals generator (docs/marginals.md) is three rounds of counts with record-level Gaussian noise.
  if (m.model.kind === 'marginals') {
    if (m.rounds.total !== MARGINALS_ROUNDS) ctx.addIssue({ code: 'custom', path: ['rounds', 'total'], message: `must be ${MARGINALS_ROUNDS} for the marginals generator (1-way counts, selection, tree), got ${m.rounds.total}` });
    if (m.privacy.mode === 'site' || m.privacy.mode === 'both') ctx.addIssue({ code: 'custom', path: ['privacy', 'mode'], message: `the marginals generator protects records (mode record) or nothing (off), not mode "${m.privacy.mode}"` });
    if (m.model.maxRowsPerUnit !== undefined && m.privacy.unitColumn === undefined) ctx.addIssue({ code: 'custom', path: ['model', 'maxRowsPerUnit'], message: 'caps the rows counted per unit: it needs privacy.unitColumn (patient-level DP)' });
  }
  // The VAE's column release is a count round of record-level DP (the marginals generator's round 1).
  if (m.model.kind === 'vae' && m.model.calibrate) {
    if (m.rounds.total < 2) ctx.addIssue({ code: 'custom', path: ['rounds', 'total'], message: `must be at least 2 with model.calibrate (a count round, then training rounds), got ${m.rounds.total}` });
    if (m.privacy.mode === 'site' || m.privacy.mode === 'both') ctx.addIssue({ code: 'custom', path: ['model', 'calibrate'], message: `the column release protects records (privacy.mode record) or nothing (off), not mode "${m.privacy.mode}": drop model.calibrate or change the mode` });
    if (m.privacy.unitColumn !== undefined) ctx.addIssue({ code: 'custom', path: ['model', 'calibrate'], message: 'is not supported with privacy.unitColumn yet (a patient\'s rows would add to a count more than once): drop one of them' });
  }
  if (m.privacy.countNoise !== undefined && ((m.privacy.mode !== 'record' && m.privacy.mode !== 'both') || m.model.kind === 'marginals')) {
    ctx.addIssue({ code: 'custom', path: ['privacy', 'countNoise'], message: 'is the noise of DP-SGD\'s record count release: it applies to record-level DP (mode record or both) with the vae generator only' });
  }
  // A public count stands in for the DP count Ñ of record-level DP-SGD (the VAE); nowhere else does a member use N under DP.
  m.members.forEach((x, i) => {
    if (x.publicCount !== undefined && ((m.privacy.mode !== 'record' && m.privacy.mode !== 'both') || m.model.kind === 'marginals')) {
      ctx.addIssue({ code: 'custom', path: ['members', i, 'publicCount'], message: 'declares the record count record-level DP-SGD samples from: it applies to privacy.mode record or both with the vae generator only' });
    }
  });
  // A unit is what DP-SGD samples and clips: without record-level DP the manifest would name a protection nothing gives.
  if (m.privacy.unitColumn !== undefined && m.privacy.mode !== 'record' && m.privacy.mode !== 'both') {
    ctx.addIssue({ code: 'custom', path: ['privacy', 'unitColumn'], message: `applies to record-level DP (privacy.mode record or both), not mode "${m.privacy.mode}"` });
  }
});
export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestInput = z.input<typeof ManifestSchema>;

/** Secagg consortia up to this size mask over the full graph unless the manifest names a degree; larger ones get a sparse one. */
export const SECAGG_FULL_GRAPH_UP_TO = 20;

/**
 * The default degree of the sparse graph: the smallest even k ≥ 3·log2 n, below n (the same rule as
 * @fedtwin/secagg's defaultDegree, which a test checks; n = 21: 14, n = 50: 18, n = 128: 22).
 */
export function secaggSparseDegree(n: number): number {
  const k = Math.ceil(3 * Math.log2(Math.max(2, n)));
  return Math.min(n - 1, k + (k % 2));
}

/** Sharing-neighbourhood size under secagg: every member (full graph) or the member and its `degree` neighbours. */
export function secaggNeighbourhood(members: number, degree?: number): number {
  return degree === undefined || degree >= members - 1 ? members : degree + 1;
}

/** Why a secagg threshold or degree cannot hold for `members`, or undefined (the checks of @fedtwin/secagg's checkConfig). */
export function secaggThresholdIssue(members: number, threshold: number | undefined, degree: number | undefined): { field: 'threshold' | 'degree'; message: string } | undefined {
  if (members < 2) return { field: 'threshold', message: 'secure aggregation by masking needs at least 2 members' };
  if (degree !== undefined && degree % 2 !== 0) return { field: 'degree', message: `must be even (a Harary graph H(n, k)), got ${degree}` };
  if (threshold === undefined) return undefined;
  const m = secaggNeighbourhood(members, degree);
  // t > m/2: two disjoint groups of t honest members cannot exist, so conflicting requests cannot both be answered.
  if (threshold <= m / 2 || threshold > m) return { field: 'threshold', message: `must be in (${m}/2, ${m}] for a sharing neighbourhood of ${m} (e.g. ${Math.floor(m / 2) + 1}), got ${threshold}` };
  return undefined;
}

/** Largest manifest file read. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Validates and normalises: defaults filled in and the key holder made explicit, so the hash names
 * exactly what is enforced, whatever the file's formatting or the defaults of a later version.
 */
export function parseManifest(raw: unknown, source = 'manifest'): Manifest {
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    // A typo is named itself with the closest valid key, before the field it leaves missing.
    const issues = configIssues(ManifestSchema, parsed.error.issues);
    const first = issues[0]!;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more: ${issues.slice(1, 4).map((i) => `${i.field} ${i.message}`).join('; ')})` : '';
    throw new FedtwinError('CONSORTIUM_INVALID', `${source}: ${first.field} ${first.message}${more}`, {
      hint: 'fix the consortium manifest (docs/configuration.md, "Consortium manifest")',
      details: { field: first.field, issues: issues.map((i) => `${i.field}: ${i.message}`) },
    });
  }
  const m = parsed.data;
  const weak = siteDpWithoutSecureAggregation(m);
  if (weak) throw new FedtwinError('CONSORTIUM_INVALID', `${source}: ${weak}`, { hint: SITE_DP_PLAINTEXT_HINT, details: { field: 'privacy.mode' } });
  const tooLittleNoise = recordNoiseBelowFloor(m.privacy);
  if (tooLittleNoise) {
    throw new FedtwinError('CONSORTIUM_INVALID', `${source}: ${tooLittleNoise}`, { hint: `raise privacy.noiseMultiplier to at least ${RECORD_NOISE_FLOOR}, or drop it and let members calibrate z to privacy.epsilon`, details: { field: 'privacy.noiseMultiplier' } });
  }
  if ((m.privacy.mode === 'record' || m.privacy.mode === 'both') && m.privacy.clip === undefined) m.privacy = { ...m.privacy, clip: DEFAULT_RECORD_CLIP };
  if (m.secureAggregation.scheme === 'bfv' && m.secureAggregation.keyHolder === undefined) {
    m.secureAggregation = { ...m.secureAggregation, keyHolder: m.members[0]!.peerId };
  }
  if (m.secureAggregation.scheme === 'secagg' && m.secureAggregation.degree === undefined && m.members.length > SECAGG_FULL_GRAPH_UP_TO) {
    // Above ~20 members the full graph's aggregator cost grows as n² at a fixed dropout rate (docs/he.md §9):
    // the sparse SecAgg+ graph by default, pinned like the threshold (an even degree ≥ n − 1 asks for the full graph).
    m.secureAggregation = { ...m.secureAggregation, degree: secaggSparseDegree(m.members.length) };
  }
  if (m.secureAggregation.scheme === 'secagg' && m.secureAggregation.threshold === undefined) {
    // Pinned explicitly, like the key holder: the hash names the threshold in force.
    m.secureAggregation = { ...m.secureAggregation, threshold: Math.floor(secaggNeighbourhood(m.members.length, m.secureAggregation.degree) / 2) + 1 };
  }
  const sa = m.secureAggregation;
  if (sa.scheme === 'secagg' && (m.privacy.mode === 'site' || m.privacy.mode === 'both') && m.rounds.minParticipants > sa.threshold!) {
    // Site-level noise shares are calibrated for minParticipants inputs, but an honest member reveals a sum of as few
    // as t: with t < minParticipants a malicious aggregator could unmask a sum carrying less than the accounted noise.
    throw new FedtwinError('CONSORTIUM_INVALID', `${source}: secureAggregation.threshold ${sa.threshold} is below rounds.minParticipants ${m.rounds.minParticipants}: under site-level DP a sum of t masked inputs would carry less noise than the policy accounts`, {
      hint: `raise secureAggregation.threshold to at least ${m.rounds.minParticipants}, or lower rounds.minParticipants`, details: { field: 'secureAggregation.threshold' },
    });
  }
  if (m.rounds.witnessQuorum === undefined) m.rounds = { ...m.rounds, witnessQuorum: Math.floor(m.members.length / 2) + 1 };
  return m;
}

/** SHA-256 (hex) of the normalised manifest's canonical JSON: the manifest hash. */
export function manifestHash(m: Manifest): string {
  return createHash('sha256').update(`fedtwin-consortium-manifest/v1\n${canonicalJson(m)}`).digest('hex');
}

/** SHA-256 of a table schema's canonical JSON (what a manifest's `schemaHash` names). */
export function schemaHash(schema: unknown): string {
  return createHash('sha256').update(canonicalJson(schema)).digest('hex');
}

/** Reads a manifest file (YAML or JSON), size-capped before parsing. */
export async function loadManifest(path: string): Promise<{ manifest: Manifest; hash: string }> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_MANIFEST_BYTES) throw new FedtwinError('CONSORTIUM_INVALID', `consortium manifest ${path} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof FedtwinError) throw err;
    throw new FedtwinError('CONSORTIUM_NOT_FOUND', `cannot read the consortium manifest ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'the config\'s `consortium:` names the manifest file every member installed (fedtwin consortium init writes one)',
    });
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new FedtwinError('CONSORTIUM_INVALID', `consortium manifest ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { hint: 'fix the syntax at the position given' });
  }
  const manifest = parseManifest(raw, path);
  return { manifest, hash: manifestHash(manifest) };
}

/** The manifest as YAML (what `fedtwin consortium init` writes). */
export function manifestYaml(m: Manifest): string {
  return `# fedtwin consortium manifest: every member installs this exact file and pins it.\n# Its hash: fedtwin consortium hash <this file>. Change = a new file every member installs (docs/configuration.md).\n${toYaml(m)}`;
}

/**
 * The first field where two values differ, as a dotted path with both values, or undefined if equal.
 * Used to tell an operator exactly what the aggregator announced differently.
 */
export function firstDifference(pinned: unknown, announced: unknown, path = ''): { field: string; pinned: unknown; announced: unknown } | undefined {
  if (Object.is(pinned, announced)) return undefined;
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (Array.isArray(pinned) && Array.isArray(announced)) {
    for (let i = 0; i < Math.max(pinned.length, announced.length); i++) {
      const d = firstDifference(pinned[i], announced[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (isObj(pinned) && isObj(announced) && !Array.isArray(pinned) && !Array.isArray(announced)) {
    const keys = [...new Set([...Object.keys(pinned), ...Object.keys(announced)])].sort();
    for (const k of keys) {
      if (pinned[k] === undefined && announced[k] === undefined) continue;
      const d = firstDifference(pinned[k], announced[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return undefined;
  }
  return { field: path || '(whole)', pinned, announced };
}

/** Throws CONSORTIUM_MISMATCH (exit code 3) naming the field and both values when `announced` differs from `pinned`. */
export function requireSame(what: string, pinned: unknown, announced: unknown, prefix = ''): void {
  const d = firstDifference(pinned, announced, prefix);
  if (!d) return;
  const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 200));
  throw new FedtwinError('CONSORTIUM_MISMATCH', `the aggregator announces ${what} different from this member's consortium manifest: ${d.field} is ${show(d.announced)}, the manifest says ${show(d.pinned)}`, {
    hint: 'do not join: the aggregator runs another consortium or was tampered with. If the consortium changed, install the new manifest every member agreed to (docs/configuration.md)',
    details: { field: d.field, pinned: d.pinned, announced: d.announced },
  });
}
