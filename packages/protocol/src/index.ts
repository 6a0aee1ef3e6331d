/**
 * fedtwin's round protocol: the messages members and the aggregator exchange, as zod schemas, with
 * the size caps the receiver checks before reading a body. Transport-agnostic; @fedtwin/wire moves
 * them as `/fedtwin/<name>/1.0.0` request/response streams.
 */
import { z } from 'zod';

export const PROTOCOL_VERSION = '1.0.0';

/** Protocol names (the wire layer prefixes `/fedtwin/` and suffixes the version). */
export const Protocols = {
  join: 'join',
  task: 'task',
  update: 'update',
  aggregate: 'aggregate',
  refuse: 'refuse',
  key: 'key',
  keyPublish: 'key-publish',
  ledger: 'ledger',
  cosign: 'cosign',
  verdict: 'verdict',
  probe: 'probe',
  witnesses: 'witnesses',
  /** Secure aggregation by pairwise masking (docs/he.md §9): a member's signed keys, its share bundle, its reveal; and a long-poll for the round's phase. */
  secaggKeys: 'secagg-keys',
  secaggShares: 'secagg-shares',
  secaggReveal: 'secagg-reveal',
  secaggRound: 'secagg-round',
} as const;

/** The largest shared model an aggregator accepts, in values (float32). 64M values = 256 MiB. */
export const MAX_MODEL_VALUES = 64 * 1024 * 1024;
/** A long-poll for the next task never waits longer than this. */
export const MAX_TASK_WAIT_MS = 30_000;

const peerId = z.string().min(10).max(128).regex(/^[1-9A-HJ-NP-Za-km-z]+$/, 'must be a base58 peer ID');
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

const numericColumn = z.object({
  name: z.string().min(1).max(200),
  kind: z.literal('numeric'),
  min: z.number().finite(),
  max: z.number().finite(),
  integer: z.boolean(),
  decimals: z.number().int().min(0).max(12),
  /** Missing values (docs/data.md, "Missing values"): the column may be missing, its own tokens, zero meaning missing. */
  allowMissing: z.boolean().optional(),
  missingTokens: z.array(z.string().max(100)).max(100).optional(),
  zeroIsMissing: z.boolean().optional(),
}).strict();
const categoricalColumn = z.object({
  name: z.string().min(1).max(200),
  kind: z.literal('categorical'),
  categories: z.array(z.string().max(200)).min(1).max(1000),
  allowMissing: z.boolean().optional(),
  missingTokens: z.array(z.string().max(100)).max(100).optional(),
}).strict();

export const TableSchemaMessage = z.object({
  columns: z.array(z.discriminatedUnion('kind', [numericColumn, categoricalColumn])).min(2).max(2000),
  target: z.string().min(1),
  /** Provenance of the bounds: `data` (drafted by `fedtwin schema infer` from a CSV) or `declared` (docs/data.md). */
  boundsSource: z.enum(['data', 'declared']).optional(),
  /** Fields meaning "missing" in columns that allow missing cells (default: empty, NA, N/A, ?, NaN). */
  missingTokens: z.array(z.string().max(100)).max(100).optional(),
}).strict();

export const VaeModelConfigMessage = z.object({
  kind: z.literal('vae'),
  latentDim: z.number().int().min(1).max(512),
  hidden: z.number().int().min(4).max(4096),
  sharedLayers: z.array(z.string()).optional(),
  seed: z.number().int().min(0).max(2 ** 31 - 1),
  /**
   * Calibrate the VAE's numeric columns onto a released 1-way distribution (docs/models.md, "Column calibration"):
   * the first round is a count round (every numeric column's and the target's 1-way counts, Skellam shares, summed
   * like the marginals generator's round 1), whose counts travel behind the model values in the consortium's vector;
   * its ε is composed with DP-SGD's. Record-level DP or none only.
   */
  calibrate: z.boolean().optional(),
}).strict();
/**
 * The `marginals` generator (federated MST, docs/marginals.md): three rounds of count vectors instead of
 * model deltas. Its options fix every member's requests, so they are pinned here with the generator itself:
 * an aggregator cannot switch a consortium from one generator to the other, or change its bins.
 */
export const MarginalsModelConfigMessage = z.object({
  kind: z.literal('marginals'),
  /** Cap on a numeric column's round-1 bins (one per declared grid value up to this). Default 1024. */
  fineBins: z.number().int().min(2).max(65_536).optional(),
  /** Upper limit of the tree tables' coarse bins per numeric column. Default 16. */
  maxBins: z.number().int().min(2).max(256).optional(),
  /** Coarse bins per numeric column in the selection round. Default 4. */
  selectionBins: z.number().int().min(2).max(64).optional(),
  /** Seed of the members' sampling of their release (post-processing). */
  seed: z.number().int().min(0).max(2 ** 31 - 1),
  /**
   * Patient-level DP (privacy.unitColumn): a member counts at most this many rows of each unit (its first ones), so one
   * unit changes each count vector by at most this much (the counts' sensitivity, which the noise is scaled to). Default 1.
   */
  maxRowsPerUnit: z.number().int().min(1).max(1000).optional(),
}).strict();
export const ModelConfigMessage = z.discriminatedUnion('kind', [VaeModelConfigMessage, MarginalsModelConfigMessage]);
export type ModelConfig = z.infer<typeof ModelConfigMessage>;
export type VaeModelConfig = z.infer<typeof VaeModelConfigMessage>;
export type MarginalsModelConfig = z.infer<typeof MarginalsModelConfigMessage>;
/** Rounds of a `marginals` consortium: 1-way, selection, tree (the manifest's rounds.total must say 3). */
export const MARGINALS_ROUNDS = 3;

export const TrainingConfigMessage = z.object({
  epochs: z.number().int().min(1).max(10_000),
  batchSize: z.number().int().min(1).max(65_536),
  learningRate: z.number().positive().max(10),
  /**
   * The class mix (target category → weight, normalised) of every member's released synthetic records,
   * declared by the consortium: public, so it costs no privacy. Without it a member under DP releases the
   * uniform mix, never its own label frequencies (docs/privacy.md, "What leaves a node").
   */
  classMix: z.record(z.string().max(200), z.number().min(0).finite()).optional()
    .refine((m) => m === undefined || (Object.keys(m).length <= 1000 && Object.values(m).some((w) => w > 0)), 'must give at most 1000 classes, at least one a positive weight'),
}).strict();
export type TrainingConfig = z.infer<typeof TrainingConfigMessage>;

// --- privacy: the consortium's DP policy (docs/privacy.md) ------------------------------------
const dpMechanism = z.object({
  clip: z.number().positive().finite(),
  noiseMultiplier: z.number().positive().finite().optional(),
  targetEpsilon: z.number().positive().finite().optional(),
  /** The manifest's `privacy.unitColumn`: DP-SGD samples and clips per unit (e.g. patient) instead of per row. */
  unitColumn: z.string().min(1).max(200).optional(),
  /** σ_N of the member's DP count Ñ of its records (units), from which DP-SGD's q = min(1, B/Ñ) is derived. */
  countNoise: z.number().positive().finite().optional(),
}).strict();

export const PrivacyPolicyMessage = z.object({
  mode: z.enum(['off', 'record', 'site', 'both']),
  /** Each member's default budget over the whole federation (a member may set a stricter one). */
  epsilon: z.number().positive(),
  delta: z.number().gt(0).lt(1),
  /** Record-level DP-SGD: per-example clip and noise (or a target ε each member calibrates to). */
  record: dpMechanism.optional(),
  /** Site-level DP-FedAvg: update clip, noise multiplier of the *sum*, resolved by the aggregator. */
  site: z.object({
    clip: z.number().positive().finite(),
    noiseMultiplier: z.number().positive().finite(),
    minParticipants: z.number().int().min(1),
    sampleRate: z.number().gt(0).max(1),
  }).strict().optional(),
}).strict();
export type PrivacyPolicy = z.infer<typeof PrivacyPolicyMessage>;

/** What a contribution (or a refusal) says about the member's privacy spending. */
export const PrivacySpendMessage = z.object({
  mode: z.enum(['record', 'site']),
  epsilonRound: z.number().min(0),
  epsilonTotal: z.number().min(0),
  delta: z.number().gt(0).lt(1),
  budgetEpsilon: z.number().positive(),
  noiseMultiplier: z.number().positive(),
  sampleRate: z.number().gt(0).max(1),
  steps: z.number().int().min(1),
  clip: z.number().positive(),
  /** The round's noise was integer Skellam (Poisson(μ) − Poisson(μ) on integer counts), accounted from these. */
  skellam: z.object({ mu: z.number().positive(), l1: z.number().positive(), l2: z.number().positive() }).strict().optional(),
}).strict();
export type PrivacySpend = z.infer<typeof PrivacySpendMessage>;

// --- secure aggregation: how updates are encoded, and the HE key ceremony -----------------------
/** Public BFV parameters (what @fedtwin/he's createHeContext takes); never key material. */
export const HeParamsMessage = z.object({
  polyModulusDegree: z.union([z.literal(4096), z.literal(8192)]).optional(),
  coeffModulusBits: z.number().int().min(20).max(60).optional(),
  quantBits: z.number().int().min(4).max(24).optional(),
  clip: z.number().positive().optional(),
  maxParticipants: z.number().int().min(1).max(1 << 20).optional(),
  c0DropBits: z.number().int().min(0).max(59).optional(),
  maxValues: z.number().int().min(1).optional(),
}).passthrough();

export const SecureAggregationMessage = z.discriminatedUnion('scheme', [
  z.object({ scheme: z.literal('plaintext') }).strict(),
  z.object({
    scheme: z.literal('bfv'),
    params: HeParamsMessage,
    /** The member that generates the consortium's HE secret key and seals it for each member. */
    keyHolder: peerId,
    /** Every member (the key holder seals the key for each of them). */
    members: z.array(peerId).min(1),
  }).strict(),
  /**
   * Pairwise masking (SecAgg / SecAgg+, docs/he.md §9): no key anywhere; the aggregator plus fewer than
   * `threshold` members learn nothing of one update beyond the sum. Values are quantized like BFV's (16 bits, ±clip).
   */
  z.object({
    scheme: z.literal('secagg'),
    threshold: z.number().int().min(1),
    /** Sparse neighbourhood graph degree (even); absent: every member masks with every other. */
    degree: z.number().int().min(2).optional(),
    clip: z.number().positive(),
    members: z.array(peerId).min(2),
  }).strict(),
]);
export type SecureAggregation = z.infer<typeof SecureAggregationMessage>;

export const KeyRequest = z.object({ waitMs: z.number().int().min(0).max(MAX_TASK_WAIT_MS) }).strict();
export const KeyResponse = z.discriminatedUnion('status', [
  z.object({ status: z.literal('pending') }).strict(),
  z.object({
    status: z.literal('ready'), keyId: z.string().min(8).max(128), epoch: z.number().int().min(0),
    /** This member's sealed box (JSON), opened only with its own identity key. */
    sealed: z.unknown(),
  }).strict(),
]);
export type KeyResponse = z.infer<typeof KeyResponse>;
/** key-publish: header below, body = JSON array of sealed boxes, one per member other than the holder. */
export const KeyPublishHeader = z.object({ keyId: z.string().min(8).max(128), epoch: z.number().int().min(0), boxes: z.number().int().min(0) }).strict();
export const KeyPublishAck = z.object({ accepted: z.literal(true), keyId: z.string() }).strict();
/** A sealed key box is small (a serialized BFV secret key); the whole set is capped. */
export const MAX_SEALED_KEYS_BYTES = 64 * 1024 * 1024;

// --- secagg: the phases of a masked round (docs/he.md §9), all for the open round -----------------
/** Caps of the header-carried lists: the daemons wire up to MAX_SECAGG_MEMBERS members (headers stay < 64 KiB). */
export const MAX_SECAGG_MEMBERS = 128;
const b64 = (max: number) => z.string().max(max).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
export const SecaggAdMessage = z.object({ member: peerId, cPub: b64(64), sPub: b64(64), signature: b64(128) }).strict();
export type SecaggAd = z.infer<typeof SecaggAdMessage>;
export const SecaggShareMessage = z.object({ from: peerId, to: peerId, nonce: b64(64), ciphertext: b64(512) }).strict();
export type SecaggShare = z.infer<typeof SecaggShareMessage>;
/** Phase 0: the member's signed X25519 keys, and the same as its signed `secagg-keys` ledger entry. */
export const SecaggKeysRequest = z.object({ round: z.number().int().min(1), ad: SecaggAdMessage, entry: z.string().max(16_384) }).strict();
/** Phase 1: the member's encrypted shares (one per neighbour) and b's commitment, with its signed `secagg-shares` entry. */
export const SecaggSharesRequest = z.object({
  round: z.number().int().min(1), bCommit: hex64, shares: z.array(SecaggShareMessage).max(MAX_SECAGG_MEMBERS), entry: z.string().max(16_384),
}).strict();
/** Phase 3: the member's signed `secagg-reveal` entry (the shares it reveals are in it). */
export const SecaggRevealRequest = z.object({ round: z.number().int().min(1), entry: z.string().max(64 * 1024 - 1024) }).strict();
export const SecaggAck = z.object({ recorded: z.literal(true) }).strict();
/** Long-poll: what the member needs for `phase` once the aggregator closed the phase before it. */
export const SecaggRoundRequest = z.object({
  round: z.number().int().min(1), phase: z.enum(['keys', 'shares', 'recovery']), waitMs: z.number().int().min(0).max(MAX_TASK_WAIT_MS),
}).strict();
export const SecaggRoundResponse = z.discriminatedUnion('status', [
  z.object({ status: z.literal('pending') }).strict(),
  /** The round went on without this member, or failed: it stops taking part. */
  z.object({ status: z.literal('closed'), reason: z.string().max(1000) }).strict(),
  /** Phase 0 closed: the accepted advertisements (every member checks every signature). */
  z.object({ status: z.literal('keys'), ads: z.array(SecaggAdMessage).max(MAX_SECAGG_MEMBERS) }).strict(),
  /** Phase 1 closed: the shares addressed to this member. */
  z.object({ status: z.literal('shares'), shares: z.array(SecaggShareMessage).max(MAX_SECAGG_MEMBERS) }).strict(),
  /** Masked inputs closed: the round's one recovery request is the ledger entry at this index (members read it in their replica). */
  z.object({ status: z.literal('recovery'), ledgerIndex: z.number().int().min(0) }).strict(),
]);
export type SecaggRoundResponse = z.infer<typeof SecaggRoundResponse>;

const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
/** @fedtwin/secagg's KeyAdvertisement ↔ the wire (base64 keys; consortium and round come from the round). */
export function secaggAdToWire(a: { member: string; cPub: Uint8Array; sPub: Uint8Array; signature: Uint8Array }): SecaggAd {
  return { member: a.member, cPub: toB64(a.cPub), sPub: toB64(a.sPub), signature: toB64(a.signature) };
}
export function secaggAdFromWire(consortium: string, round: number, a: SecaggAd): { consortium: string; round: number; member: string; cPub: Uint8Array; sPub: Uint8Array; signature: Uint8Array } {
  return { consortium, round, member: a.member, cPub: fromB64(a.cPub), sPub: fromB64(a.sPub), signature: fromB64(a.signature) };
}
/** @fedtwin/secagg's EncryptedShare ↔ the wire. */
export function secaggShareToWire(s: { from: string; to: string; nonce: Uint8Array; ciphertext: Uint8Array }): SecaggShare {
  return { from: s.from, to: s.to, nonce: toB64(s.nonce), ciphertext: toB64(s.ciphertext) };
}
export function secaggShareFromWire(s: SecaggShare): { from: string; to: string; nonce: Uint8Array; ciphertext: Uint8Array } {
  return { from: s.from, to: s.to, nonce: fromB64(s.nonce), ciphertext: fromB64(s.ciphertext) };
}

// --- join: a member introduces itself and learns the consortium's schema and model ---------------
export const JoinRequest = z.object({
  nodeVersion: z.string().max(40),
  backend: z.string().max(40),
}).strict();
export type JoinRequest = z.infer<typeof JoinRequest>;

export const JoinResponse = z.object({
  consortium: z.string().max(200),
  schema: TableSchemaMessage,
  model: ModelConfigMessage,
  strategy: z.string().max(40),
  modelValues: z.number().int().min(1).max(MAX_MODEL_VALUES),
  totalRounds: z.number().int().min(1),
  privacy: PrivacyPolicyMessage,
  secureAggregation: SecureAggregationMessage,
  /** The HE key id in force, once the key holder published it. */
  keyId: z.string().optional(),
  /** The consortium manifest the aggregator runs (normalised) and its hash: members compare both with their own copy. */
  manifest: z.record(z.string(), z.unknown()).optional(),
  manifestHash: hex64.optional(),
}).strict();
export type JoinResponse = z.infer<typeof JoinResponse>;

// --- task: long-poll for the next round to train --------------------------------------------------
export const TaskRequest = z.object({
  afterRound: z.number().int().min(0),
  waitMs: z.number().int().min(0).max(MAX_TASK_WAIT_MS),
}).strict();
export type TaskRequest = z.infer<typeof TaskRequest>;

export const TaskResponse = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('open'),
    round: z.number().int().min(1),
    /** Number of aggregates applied to the initial model: train from global version `baseVersion`. */
    baseVersion: z.number().int().min(0),
    /** The model version id (model-version.ts) of that base, fixed when the round opened. */
    baseHash: hex64,
    training: TrainingConfigMessage,
    deadline: z.number().int(),
    /** With BFV: the key id this round's updates must be encrypted under (rotations take effect per round). */
    keyId: z.string().max(128).optional(),
  }).strict(),
  /** `sitOut`: under secagg, the open round runs without this member while a withdrawn sum's culprit is isolated (it waits, unblamed). */
  z.object({ status: z.literal('idle'), version: z.number().int().min(0), sitOut: z.number().int().min(1).optional() }).strict(),
  z.object({ status: z.literal('finished'), version: z.number().int().min(0) }).strict(),
  /** An aggregate broke decryption: decrypt this probe (a subset sum of the round) and send a verdict. */
  z.object({ status: z.literal('probe'), id: z.string().min(1).max(64), round: z.number().int().min(1) }).strict(),
]);
export type TaskResponse = z.infer<typeof TaskResponse>;

// --- update: a member's contribution to a round (body: the encoded update) ------------------------
export const UpdateHeader = z.object({
  round: z.number().int().min(1),
  baseVersion: z.number().int().min(0),
  /** Model version id of the round's base (the task's baseHash; the aggregator fixed it at round open). */
  baseHash: hex64,
  /**
   * Weight of this update in the strategy. FedAvg without DP: the member's record count; under DP (any mode):
   * 1, uniform FedAvg, so the record count never leaves the member.
   */
  weight: z.number().positive().max(1e12),
  values: z.number().int().min(1).max(MAX_MODEL_VALUES),
  encoding: z.enum(['f32le', 'bfv', 'secagg']),
  /**
   * What the body sums to: a shared-model change (`model-delta`, the VAE; the default when absent) or a
   * vector of noisy counts (`counts`, the marginals generator). The aggregator refuses the kind its
   * consortium's generator does not send (AGG_BAD_UPDATE): it sums either the same way, but a member's
   * count vector must never be averaged into a model, nor a model delta released as counts.
   */
  payload: z.enum(['model-delta', 'counts']).optional(),
  /** With encoding bfv: the HE key id the update was encrypted under. */
  keyId: z.string().max(128).optional(),
  /**
   * The member's last training loss and its training time: sent only with DP off (debugging). Under DP they are
   * absent: the loss is a membership signal and the time reveals the record count, and neither is accounted.
   * Optional within protocol 1.0.0: this schema accepts headers with them (DP off, earlier nodes) and without.
   */
  loss: z.number().finite().optional(),
  trainSeconds: z.number().min(0).finite().optional(),
  privacy: z.array(PrivacySpendMessage).max(2),
  /** The member's signed `contribution` ledger entry for this update (base64 of its exact bytes). */
  entry: z.string().max(16_384),
}).strict();
export type UpdateHeader = z.infer<typeof UpdateHeader>;

export const UpdateAck = z.object({ accepted: z.literal(true), round: z.number().int(), contributions: z.number().int(), ledgerIndex: z.number().int().min(0).optional() }).strict();
export type UpdateAck = z.infer<typeof UpdateAck>;

// --- refuse: a member declines a round (privacy budget) and says why ---------------------------
export const RefuseRequest = z.object({
  round: z.number().int().min(1),
  code: z.string().max(64),
  reason: z.string().max(2000),
  privacy: z.array(PrivacySpendMessage).max(2),
  /** The member's signed `refusal` ledger entry (base64). */
  entry: z.string().max(16_384),
}).strict();
export type RefuseRequest = z.infer<typeof RefuseRequest>;
export const RefuseAck = z.object({ recorded: z.literal(true) }).strict();

// --- ledger: members replicate the contribution log and co-sign its checkpoints ----------------
export const LedgerSyncRequest = z.object({ fromSize: z.number().int().min(0) }).strict();
/** Body: JSON { entries: base64[], consistencyProof: hex[] } for entries [fromSize, size). */
export const LedgerSyncResponse = z.object({ size: z.number().int().min(0), checkpoint: z.string().max(65_536), origin: z.string().max(256) }).strict();
export const MAX_LEDGER_SYNC_BYTES = 256 * 1024 * 1024;
export const CosignRequest = z.object({ note: z.string().max(65_536) }).strict();
export const CosignAck = z.object({ cosignatures: z.number().int().min(0) }).strict();
/** Members' cosignatures on checkpoints of at least `fromSize` entries: the evidence a member waits for before applying an aggregate. */
export const WitnessesRequest = z.object({ fromSize: z.number().int().min(0) }).strict();
export const MAX_WITNESS_NOTES = 64;
/** Stored checkpoint notes (aggregator signature + members' cosignature lines), newest first. */
export const WitnessesResponse = z.object({ notes: z.array(z.string().max(65_536)).max(MAX_WITNESS_NOTES) }).strict();

// --- aggregate: the published sum that turns global version v-1 into v ----------------------------
export const AggregateRequest = z.object({ version: z.number().int().min(1) }).strict();
export const AggregateResponse = z.object({
  version: z.number().int().min(1),
  round: z.number().int().min(1),
  participants: z.array(peerId).min(1),
  totalWeight: z.number().positive(),
  values: z.number().int().min(1).max(MAX_MODEL_VALUES),
  encoding: z.enum(['f32le', 'bfv', 'secagg']),
  keyId: z.string().max(128).optional(),
  /** Model version id of the base this sum applies to (fixed when its round opened). */
  baseHash: hex64,
}).strict();
export type AggregateResponse = z.infer<typeof AggregateResponse>;

// --- verdict and probe: members judge sums they cannot use; the aggregator finds the culprit ------
/**
 * A member's verdict on a sum it decrypted: the published aggregate `version` (sent when it cannot be
 * used) or probe `probe` (always sent). `entry` is the member's signed `verdict` ledger entry.
 */
export const VerdictRequest = z.object({
  round: z.number().int().min(1),
  version: z.number().int().min(1).optional(),
  probe: z.string().min(1).max(64).optional(),
  sumHash: hex64,
  valid: z.boolean(),
  reason: z.string().max(1000),
  entry: z.string().max(16_384),
}).strict().refine((v) => (v.version === undefined) !== (v.probe === undefined), 'name exactly one of version or probe');
export type VerdictRequest = z.infer<typeof VerdictRequest>;
export const VerdictAck = z.object({ recorded: z.literal(true) }).strict();

export const ProbeRequest = z.object({ id: z.string().min(1).max(64) }).strict();
/** Body: the probe's sum, encoded like an aggregate. */
export const ProbeResponse = z.object({
  id: z.string().min(1).max(64),
  round: z.number().int().min(1),
  participants: z.array(peerId).min(1),
  values: z.number().int().min(1).max(MAX_MODEL_VALUES),
  encoding: z.enum(['f32le', 'bfv', 'secagg']),
  keyId: z.string().max(128).optional(),
  baseHash: hex64,
}).strict();
export type ProbeResponse = z.infer<typeof ProbeResponse>;

export { genesisModelVersion, nextModelVersion } from './model-version.ts';
export { GOSSIP_PROTOCOL, GossipRequest, GossipResponse, MAX_GOSSIP_PROOF } from './gossip.ts';
export { peerId as PeerIdString, hex64 as Hex64 };

/** Float32 values ↔ little-endian bytes, the body encoding of updates and aggregates. */
export function f32ToBytes(values: Float32Array): Uint8Array {
  if (isLittleEndian()) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

export function bytesToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}
