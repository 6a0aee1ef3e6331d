// Offline audit of a ledger directory (works on a copy; opens it read-only).
//
// One sequential pass: every entry is parsed (canonical form, schema), its leaf hash recomputed and its
// signature checked (on worker threads, overlapping the next chunk's reads); every stored tree node is
// compared with the node recomputed from the leaves (nodes are keyed by their last leaf, so they stream in
// the order they are rebuilt); every stored checkpoint's signature is checked and its root compared with
// the recomputed root at its size; consecutive checkpoints are checked with RFC 9162 consistency proofs.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { bytesEqual, readU64be, toHex, utf8 } from './bytes.ts';
import { ENTRY_TYPES, authorshipViolation, isAuthorKey, publicKeyRawOfPeerId, type EntryPayload, type EntryType } from './entry.ts';
import { RdpAccountant, type SampledGaussian } from '@fedtwin/dp';
import { createAuditPool } from './audit-pool.ts';
import { MECHANISM_FIELDS, signatureImpl as sigImpl, type AuditChunkResult, type SignatureImpl } from './audit-chunk.ts';
import { emptyRoot, pushLeaf, rootOfRange, verifyConsistency, type HashedNode } from './merkle.ts';
import { cosignatureVerifierFromPeerId, noteVerifierFromPeerId, parseCheckpoint, parseVerifierKey, verifyCheckpoint, type Checkpoint, type NoteSignature, type NoteVerifier } from './checkpoint.ts';
import { ledgerInternals, openLedgerForAudit, parseNodeKey, type Ledger } from './ledger.ts';

export interface LedgerSummary {
  entries: number;
  /** root of the whole tree, hex */
  rootHash: string;
  entriesByType: Record<EntryType, number>;
  /** distinct rounds opened */
  rounds: number;
  contributionsPerNode: Record<string, number>;
  /** Members an `exclusion` entry removed from the federation (a contribution broke decryption, or a false report). */
  excluded: string[];
  /** latest epsilonTotal each node reported */
  epsilonPerNode: Record<string, number>;
  /** latest deltaTotal each node reported */
  deltaPerNode: Record<string, number>;
  refusalsPerNode: Record<string, number>;
  /** admitted and not removed */
  members: string[];
  checkpoints: number;
  latestCheckpoint: { size: number; rootHash: string; origin: string; signatures: string[] } | null;
  /** entries after the latest checkpoint (not yet covered by a signature) */
  uncheckpointedEntries: number;
  /** verifier key used for checkpoint signatures */
  checkpointKey: string | null;
  /**
   * Warning, not a failure: contribution entries no `aggregate` entry references (a member may contribute to
   * a round that then failed, or to the round still open). At most 1,000 listed; `unaggregatedCount` has all.
   */
  unaggregatedContributions: { index: number; round: number; node: string }[];
  unaggregatedCount: number;
  /** contributions whose mechanism (sampleRate, noiseMultiplier, steps, delta) was recomputed with @fedtwin/dp */
  mechanismsChecked: number;
  /** trusted checkpoints (from outside the directory) the ledger was found consistent with */
  trustedCheckpoints: { size: number; rootHash: string }[];
  /** Ed25519 implementation that checked entry signatures (libsodium when installed; node:crypto decides every rejection) */
  signatureImpl: SignatureImpl;
}

export type VerifyFailureCode =
  | 'LEDGER_ENTRY_MISSING'
  | 'LEDGER_ENTRY_INVALID'
  | 'LEDGER_LEAF_HASH_MISMATCH'
  | 'LEDGER_NODE_MISMATCH'
  | 'LEDGER_SIGNATURE_INVALID'
  | 'LEDGER_CHECKPOINT_INVALID'
  | 'LEDGER_CHECKPOINT_MISMATCH'
  | 'LEDGER_INCONSISTENT';

export type VerifyResult =
  | { ok: true; summary: LedgerSummary }
  | {
      ok: false;
      /** first bad entry index, when the problem is tied to one */
      index: number | null;
      /** checkpoint involved, when there is one */
      checkpointSize?: number;
      code: VerifyFailureCode;
      message: string;
      /** summary of the entries before the failure */
      summary: LedgerSummary;
    };

export interface VerifyOptions {
  /** C2SP verifier keys trusted to sign checkpoints; default: the key recorded in the ledger */
  trustedKeys?: readonly string[];
  /**
   * Checkpoint notes trusted from outside the directory (one a member co-signed, a copy kept elsewhere): the
   * ledger must hold a checkpoint at a size ≥ each one's, consistent with it — else it was truncated or
   * rolled back (LEDGER_INCONSISTENT). Each must carry a valid signature by the checkpoint key.
   */
  trustedCheckpoints?: readonly string[];
  /** entries per read chunk */
  chunk?: number;
  /** signature-checking worker threads (default: available cores) */
  threads?: number;
}

/** The part of a Level iterator used here (rows as [key, value] views). */
interface RowIterator {
  nextv(size: number): Promise<[Uint8Array, Uint8Array][]>;
  close(): Promise<void>;
}

class Failure extends Error {
  readonly code: VerifyFailureCode;
  readonly index: number | null;
  readonly checkpointSize: number | undefined;
  constructor(code: VerifyFailureCode, index: number | null, message: string, checkpointSize?: number) {
    super(message);
    this.code = code;
    this.index = index;
    this.checkpointSize = checkpointSize;
  }
}

class Tally {
  entries = 0;
  byType: Record<EntryType, number> = { membership: 0, round: 0, contribution: 0, aggregate: 0, key: 0, refusal: 0, verdict: 0, exclusion: 0, consortium: 0, 'secagg-keys': 0, 'secagg-shares': 0, 'secagg-recovery': 0, 'secagg-reveal': 0 };
  rounds = new Set<number>();
  contributions: Record<string, number> = {};
  epsilon: Record<string, number> = {};
  delta: Record<string, number> = {};
  refusals: Record<string, number> = {};
  members = new Set<string>();
  /** members excluded by an `exclusion` entry */
  excluded = new Set<string>();
  /** round of the contribution at each index; NaN for other entry types */
  contributionRound: Float64Array;
  /** `<round> <node>` -> index of that node's contribution or refusal entry for that round (one of them, once) */
  answered = new Map<string, { index: number; type: 'contribution' | 'refusal' }>();

  /** latest ε/δ totals per node, to check they never decrease */
  lastTotals = new Map<string, { epsilon: number; delta: number; index: number }>();
  /** contribution leaves an aggregate references */
  referenced: Uint8Array;
  /** node (index into nodeNames) of the contribution at each index */
  contributionNode: Int32Array;
  nodeNames: string[] = [];
  nodeIds = new Map<string, number>();
  /** globalVersion of the latest round entry that named one, and every aggregate's modelVersion so far */
  lastRound: { round: number; version: string } | undefined;
  /** The version the first round opened on (the initial model): a withdrawn first aggregate sends rounds back to it. */
  genesisVersion: string | undefined;
  modelVersions = new Set<string>();
  mechanismsChecked = 0;
  epsilonCache = new Map<string, number>();

  /** Is this author the log's aggregator? The checkpoint key's owner; without one, the first entry's author. */
  isAggregator: ((author: string) => boolean) | undefined;

  constructor(size: number, aggregatorKey?: Uint8Array) {
    this.contributionRound = new Float64Array(size).fill(NaN);
    this.referenced = new Uint8Array(size);
    this.contributionNode = new Int32Array(size).fill(-1);
    if (aggregatorKey) this.isAggregator = isAuthorKey(aggregatorKey);
  }

  /**
   * A node answers a round once: one contribution (its ε is counted once) or one refusal, never both. A
   * second one is what a crash between the aggregator's two stores used to leave (issue 11).
   */
  once(index: number, type: 'contribution' | 'refusal', round: number, who: string): void {
    const key = `${round} ${who}`;
    const prior = this.answered.get(key);
    if (prior) {
      const what = prior.type === type ? `a second ${type}` : `a ${type} besides its ${prior.type}`;
      throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: ${what} of node ${who} for round ${round} (the first is entry ${prior.index}); a node answers a round once`);
    }
    this.answered.set(key, { index, type });
  }

  nodeId(node: string): number {
    let k = this.nodeIds.get(node);
    if (k === undefined) {
      k = this.nodeNames.length;
      this.nodeNames.push(node);
      this.nodeIds.set(node, k);
    }
    return k;
  }

  /** Per node: the mechanisms its contributions recorded, in log order (equal consecutive ones merged). */
  recorded = new Map<string, SampledGaussian[]>();
  /** Nodes whose DP count release is already in `recorded`. */
  countCharged = new Set<string>();

  /**
   * Privacy accounting a contribution claims: totals never decrease and cover this round's spend; and a node's
   * total can never be below what the mechanisms its contributions recorded spend together: the recorded
   * mechanisms are composed (RDP accountant of @fedtwin/dp, default orders, improved conversion at the entry's
   * δ) and `epsilonTotal` must reach that ε. Entries without a mechanism add nothing to the composition, so it
   * is a lower bound of the true total even when some are missing. A round's own ε is the increase of the
   * member's total (its accountant may also have charged an update that was sent but declined, so no lower
   * bound on one increase follows from the log): only totals are checked against mechanisms. A node's first entry
   * naming a DP count (countEstimate, countNoise σ) adds that release, one Gaussian step at q = 1, before its round:
   * the count is released once, whatever later entries repeat. Sums of per-round
   * ε are NOT compared with the total: under RDP composition the total is smaller than that sum.
   */
  privacy(index: number, r: AuditChunkResult, j: number, who: string, round: number): void {
    const eps = r.epsilon[j];
    const epsTotal = r.epsilonTotal[j];
    const deltaTotal = r.deltaTotal[j];
    const bad = (why: string) => new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: contribution of node ${who} to round ${round}: ${why}`);
    const prev = this.lastTotals.get(who);
    if (prev && epsTotal < prev.epsilon - 1e-12) throw bad(`epsilonTotal ${epsTotal} is below the ${prev.epsilon} its entry ${prev.index} reported (a privacy spend cannot shrink)`);
    if (prev && deltaTotal < prev.delta - 1e-18) throw bad(`deltaTotal ${deltaTotal} is below the ${prev.delta} its entry ${prev.index} reported`);
    if (epsTotal < eps * (1 - 1e-9) - 1e-12) throw bad(`epsilonTotal ${epsTotal} is below this round's epsilon ${eps}`);
    this.lastTotals.set(who, { epsilon: epsTotal, delta: deltaTotal, index });
    const f = MECHANISM_FIELDS * j;
    const q = r.mechanism[f];
    if (Number.isNaN(q)) return;
    const [sigma, steps, delta, mu, l1, l2] = [r.mechanism[f + 1], r.mechanism[f + 2], r.mechanism[f + 3], r.mechanism[f + 4], r.mechanism[f + 5], r.mechanism[f + 6]];
    // A Skellam record is accounted from μ, l1, l2 (the accountant checks z = √(2μ)/l2 and q = 1); a Gaussian
    // one (no kind: every entry before Skellam) from q and z exactly as before.
    const skellam = Number.isNaN(mu) ? undefined : { mu, l1, l2 };
    const list = this.recorded.get(who) ?? [];
    const countSigma = r.countNoise[j]!;
    if (!Number.isNaN(countSigma) && !this.countCharged.has(who)) {
      this.countCharged.add(who);
      list.push({ sampleRate: 1, noiseMultiplier: countSigma, steps: 1 });
    }
    const last = list.at(-1);
    const same = last && last.sampleRate === q && last.noiseMultiplier === sigma && (last.skellam === undefined ? skellam === undefined : skellam !== undefined && last.skellam.mu === mu && last.skellam.l1 === l1 && last.skellam.l2 === l2);
    if (same) list[list.length - 1] = { ...last, steps: last.steps + steps };
    else list.push({ sampleRate: q, noiseMultiplier: sigma, steps, ...(skellam ? { skellam } : {}) });
    this.recorded.set(who, list);
    const key = `${delta} ${list.map((m) => `${m.sampleRate}/${m.noiseMultiplier}/${m.steps}${m.skellam ? `/sk${m.skellam.mu}/${m.skellam.l1}/${m.skellam.l2}` : ''}`).join(' ')}`;
    let expected = this.epsilonCache.get(key);
    if (expected === undefined) {
      try {
        expected = new RdpAccountant({ mechanisms: list }).getEpsilon(delta).epsilon;
      } catch (e) {
        throw bad(`its mechanism cannot be accounted: ${(e as Error).message}`);
      }
      if (this.epsilonCache.size < 10_000) this.epsilonCache.set(key, expected);
    }
    this.mechanismsChecked++;
    if (epsTotal < expected * (1 - 1e-6) - 1e-12) {
      const n = list.reduce((a, m) => a + m.steps, 0);
      throw bad(`epsilonTotal ${epsTotal} under-reports the mechanisms its contributions recorded (${list.length} distinct, ${n} steps in all, last q ${q}, σ ${sigma}${skellam ? ` (Skellam μ ${mu}, l1 ${l1}, l2 ${l2})` : ''}, δ ${delta}), which together spend ε ${expected}`);
    }
  }

  /** Contribution entries no aggregate references (a warning). */
  unaggregated(limit = 1000): { list: { index: number; round: number; node: string }[]; count: number } {
    const list: { index: number; round: number; node: string }[] = [];
    let count = 0;
    for (let i = 0; i < this.contributionRound.length; i++) {
      if (Number.isNaN(this.contributionRound[i]) || this.referenced[i] === 1) continue;
      count++;
      if (list.length < limit) list.push({ index: i, round: this.contributionRound[i], node: this.nodeNames[this.contributionNode[i]] ?? '' });
    }
    return { list, count };
  }

  /** Adds entry `j` of a worker's chunk result, which is ledger entry `index`. */
  add(index: number, r: AuditChunkResult, j: number): void {
    const type = ENTRY_TYPES[r.type[j]];
    this.entries++;
    this.byType[type]++;
    const round = r.round[j];
    const who = r.who[j] >= 0 ? r.strings[r.who[j]] : '';
    const author = r.strings[r.author[j]];
    if (this.isAggregator === undefined) this.isAggregator = isAuthorKey(publicKeyRawOfPeerId(author));
    const why = authorshipViolation({ author, payload: { type, node: who } as EntryPayload }, this.isAggregator);
    if (why) throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: ${why}`);
    switch (type) {
      case 'membership':
        if (r.admit[j] === 1) this.members.add(who);
        else this.members.delete(who);
        break;
      case 'round': {
        this.rounds.add(round);
        const version = r.version[j] >= 0 ? r.strings[r.version[j]] : undefined;
        if (version !== undefined) {
          // A round opens on the previous round's base (that round failed) or on a model an aggregate entry produced.
          const prev = this.lastRound;
          // (or on the initial model, where a withdrawal of the first aggregate sends it back: docs/threat-model.md)
          this.genesisVersion ??= version;
          if (prev && version !== prev.version && version !== this.genesisVersion && !this.modelVersions.has(version)) {
            throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: round ${round} opens on global version ${version}, which no aggregate entry produced (round ${prev.round} was aggregated without an aggregate entry)`);
          }
          this.lastRound = { round, version };
        }
        break;
      }
      case 'contribution':
        this.once(index, 'contribution', round, who);
        this.privacy(index, r, j, who, round);
        this.contributions[who] = (this.contributions[who] ?? 0) + 1;
        this.epsilon[who] = r.epsilonTotal[j];
        this.delta[who] = r.deltaTotal[j];
        this.contributionRound[index] = round;
        this.contributionNode[index] = this.nodeId(who);
        break;
      case 'aggregate':
        for (let k = r.aggOffsets[j]; k < r.aggOffsets[j + 1]; k++) {
          const leaf = r.aggLeaves[k];
          if (leaf >= index || this.contributionRound[leaf] !== round) {
            throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: aggregate for round ${round} includes leaf ${leaf}, which is not an earlier contribution to that round`);
          }
          this.referenced[leaf] = 1;
        }
        if (r.version[j] >= 0) this.modelVersions.add(r.strings[r.version[j]]);
        break;
      case 'refusal':
        this.once(index, 'refusal', round, who);
        this.refusals[who] = (this.refusals[who] ?? 0) + 1;
        break;
      case 'verdict':
        break;
      case 'exclusion':
        if (who) this.excluded.add(who);
        break;
      case 'secagg-keys':
      case 'secagg-shares':
        this.secaggOnce(index, type, round, who);
        break;
      case 'secagg-recovery': {
        // One request per round: members answer only the one they read here, so a second is an aggregator
        // trying to unmask someone (the SecAgg consistency check, docs/he.md §9).
        const prior = this.secaggRequests.get(round);
        if (prior) throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: a second secagg recovery request for round ${round} (the first is entry ${prior.index}); a round has one`);
        this.secaggRequests.set(round, { index, digest: r.strings[r.version[j]]! });
        break;
      }
      case 'secagg-reveal': {
        const req = this.secaggRequests.get(round);
        const digest = r.strings[r.version[j]];
        if (!req || req.digest !== digest) throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: node ${who} reveals shares for round ${round} against ${req ? 'another request than' : 'no'} recovery request${req ? ` (entry ${req.index})` : ' recorded before it'}`);
        this.secaggOnce(index, type, round, who);
        break;
      }
      case 'key':
      case 'consortium':
        break;
    }
  }

  /** The round's recovery request (its entry and digest), once recorded. */
  secaggRequests = new Map<number, { index: number; digest: string }>();
  #secaggSeen = new Map<string, number>();
  /** A member advertises keys, sends shares and reveals at most once per round. */
  secaggOnce(index: number, type: string, round: number, who: string): void {
    const key = `${type} ${round} ${who}`;
    const prior = this.#secaggSeen.get(key);
    if (prior !== undefined) throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: a second ${type} of node ${who} for round ${round} (the first is entry ${prior})`);
    this.#secaggSeen.set(key, index);
  }
}

/** Audits a ledger directory; never throws for a bad ledger (returns ok: false), only for I/O or a locked dir. */
export async function verifyLedgerDir(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const ledger = await openLedgerForAudit(dir);
  try {
    return await verifyOpenLedger(ledger, opts);
  } finally {
    await ledger.close();
  }
}

export async function verifyOpenLedger(ledger: Ledger, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const n = ledger.size;
  let tally = new Tally(n);
  const range: HashedNode[] = [];
  const recorded = await ledger.checkpointKey();
  const keys = opts.trustedKeys ?? (recorded ? [recorded] : []);
  let checkpointKey: string | null = keys[0] ?? null;
  const cps: { size: number; checkpoint: Checkpoint; signatures: string[] }[] = [];
  const trustedOk: { size: number; rootHash: string }[] = [];
  const summary = (): LedgerSummary => {
    const latest = cps.length ? cps[cps.length - 1] : undefined;
    const unagg = tally.unaggregated();
    return {
      entries: tally.entries,
      rootHash: toHex(rootOfRange(range)),
      entriesByType: tally.byType,
      rounds: tally.rounds.size,
      contributionsPerNode: tally.contributions,
      excluded: [...tally.excluded].sort(),
      epsilonPerNode: tally.epsilon,
      deltaPerNode: tally.delta,
      refusalsPerNode: tally.refusals,
      members: [...tally.members].sort(),
      checkpoints: cps.length,
      latestCheckpoint: latest
        ? { size: latest.size, rootHash: toHex(latest.checkpoint.rootHash), origin: latest.checkpoint.origin, signatures: latest.signatures }
        : null,
      uncheckpointedEntries: tally.entries - (latest?.size ?? 0),
      checkpointKey,
      unaggregatedContributions: unagg.list,
      unaggregatedCount: unagg.count,
      mechanismsChecked: tally.mechanismsChecked,
      trustedCheckpoints: trustedOk,
      signatureImpl: sigImpl(),
    };
  };
  try {
    // Checkpoints: parse and check signatures first, so their sizes are known during the scan.
    let verifiers: NoteVerifier[] = [];
    try {
      verifiers = keys.map((k) => parseVerifierKey(k));
    } catch (e) {
      throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint key is not a valid verifier key: ${(e as Error).message}`);
    }
    checkpointKey = keys[0] ?? null;
    for (const { size, note } of await ledger.listCheckpoints()) {
      let checkpoint: Checkpoint;
      let signatures: string[];
      try {
        const parsed = parseCheckpoint(note);
        signatures = parsed.signatures.map((s) => s.name);
        if (verifiers.length === 0) throw new FedtwinError('LEDGER_CHECKPOINT_INVALID', 'no checkpoint key is recorded or given, so its signature cannot be checked');
        checkpoint = verifyCheckpoint(note, verifiers, { require: [verifiers[0].name] }).checkpoint;
      } catch (e) {
        throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint at size ${size}: ${(e as Error).message}`, size);
      }
      if (checkpoint.size !== size) throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint stored under size ${size} says size ${checkpoint.size}`, size);
      if (size > n) throw new Failure('LEDGER_CHECKPOINT_MISMATCH', n, `checkpoint for size ${size} is beyond the ${n} entries present (entries ${n}..${size - 1} are gone)`, size);
      if (cps.length && cps[0].checkpoint.origin !== checkpoint.origin) {
        throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint at size ${size} has origin ${checkpoint.origin}, earlier ones ${cps[0].checkpoint.origin}`, size);
      }
      // Every other line is a member's cosignature: it must verify as that member's (the peer ID it names).
      for (const sig of parseCheckpoint(note).signatures) {
        if (sig.name === verifiers[0].name && sig.keyId === verifiers[0].keyId) continue;
        const why = cosignatureProblem(sig, parseCheckpoint(note).text);
        if (why) throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `checkpoint at size ${size}: cosignature line of ${sig.name.slice(0, 80)}: ${why}`, size);
      }
      cps.push({ size, checkpoint, signatures });
    }
    // The aggregator is the checkpoint key's owner (authorship rules, see Tally.add).
    if (verifiers.length > 0) tally = new Tally(n, verifiers[0].publicKey);
    const cpAt = new Map(cps.map((c) => [c.size, c.checkpoint]));
    const checkRoot = (size: number): void => {
      const cp = cpAt.get(size);
      if (!cp) return;
      const root = size === 0 ? emptyRoot() : rootOfRange(range);
      if (!bytesEqual(root, cp.rootHash)) {
        throw new Failure(
          'LEDGER_CHECKPOINT_MISMATCH',
          size > 0 ? size - 1 : null,
          `checkpoint at size ${size}: signed root ${toHex(cp.rootHash)} does not match the root ${toHex(root)} recomputed from entries 0..${size - 1} (history was rewritten)`,
          size,
        );
      }
    };
    checkRoot(0);

    // Entry signatures are bound to the log origin: the checkpoints' (else the one recorded in the ledger).
    const entryOrigin = cps[0]?.checkpoint.origin ?? (await ledger.origin());
    const { db, entries, nodes } = ledgerInternals(ledger);
    const chunk = Math.max(1, opts.chunk ?? 2048);
    // Iterate the root database over each sublevel's prefixed key range: the sublevel wrapper re-slices
    // every key (an allocation per row, 3 rows per entry); here keys keep their prefix and are read at
    // offset P. classic-level caps a nextv() at 16 KiB by default; raise it so one call yields a chunk.
    const P = entries.prefix.length;
    if (nodes.prefix.length !== P) throw new FedtwinError('LEDGER_CORRUPT', 'unexpected sublevel layout');
    const rangeOf = (prefix: string) => ({
      gte: utf8.encode(prefix),
      lt: utf8.encode(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)),
      keyEncoding: 'view',
      valueEncoding: 'view',
      highWaterMarkBytes: 16 * 1024 * 1024,
    });
    const eit = db.iterator(rangeOf(entries.prefix) as never) as unknown as RowIterator;
    const nit = db.iterator(rangeOf(nodes.prefix) as never) as unknown as RowIterator;
    let nodeBuf: [Uint8Array, Uint8Array][] = [];
    let nodePos = 0;
    const nextNode = async (): Promise<[Uint8Array, Uint8Array] | undefined> => {
      if (nodePos >= nodeBuf.length) {
        nodeBuf = await nit.nextv(chunk * 2);
        nodePos = 0;
        if (nodeBuf.length === 0) return undefined;
      }
      return nodeBuf[nodePos++];
    };
    // Worker threads parse, hash and signature-check chunk after chunk while this thread reads the next
    // ones; results are consumed in order, so the first failure seen is the lowest bad index.
    const pool = createAuditPool(opts.threads);
    const inflight: { first: number; result: Promise<AuditChunkResult> }[] = [];
    const maxInflight = 4;
    let expected = 0;
    const consume = async (): Promise<void> => {
      const c = inflight.shift() as (typeof inflight)[number];
      const r = await c.result;
      for (let j = 0; j < r.count; j++) {
        const index = c.first + j;
        if (r.bad?.at === j && r.bad.kind === 'parse') throw new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index}: ${r.bad.message}`);
        for (const node of pushLeaf(range, index, r.leafHashes.subarray(j * 32, j * 32 + 32))) {
          const stored = nodePos < nodeBuf.length ? nodeBuf[nodePos++] : await nextNode();
          // compare the key as numbers: (last leaf = this entry, level), no allocation per node
          if (!stored || stored[0].byteLength !== P + 9 || stored[0][P + 8] !== node.level || readU64be(stored[0], P) !== index) {
            const key = stored?.[0].subarray(P);
            const what = key ? `found node (level ${parseNodeKey(key).level}, index ${parseNodeKey(key).index}) instead` : 'it is missing';
            throw new Failure(
              node.level === 0 ? 'LEDGER_LEAF_HASH_MISMATCH' : 'LEDGER_NODE_MISMATCH',
              index,
              node.level === 0 ? `entry ${index}: stored leaf hash is missing (${what})` : `tree node (level ${node.level}, index ${node.index}) ending at entry ${index}: ${what}`,
            );
          }
          if (!bytesEqual(stored[1], node.hash)) {
            throw new Failure(
              node.level === 0 ? 'LEDGER_LEAF_HASH_MISMATCH' : 'LEDGER_NODE_MISMATCH',
              index,
              node.level === 0
                ? `entry ${index}: leaf hash of the stored bytes ${toHex(node.hash)} does not match the stored leaf hash ${toHex(stored[1])} (entry bytes edited, reordered or replaced)`
                : `tree node (level ${node.level}, index ${node.index}) ending at entry ${index}: stored ${toHex(stored[1])}, recomputed ${toHex(node.hash)}`,
            );
          }
        }
        if (r.bad?.at === j) throw new Failure('LEDGER_SIGNATURE_INVALID', index, `entry ${index}: ${r.bad.message}`);
        tally.add(index, r, j);
        expected++;
        checkRoot(expected);
      }
    };
    try {
      let read = 0;
      for (;;) {
        const rows = await eit.nextv(chunk);
        if (rows.length === 0) break;
        // Key continuity is checked here, before the bytes leave for a worker; a gap or a stray key ends
        // the read, and the entries before it are still examined (an earlier failure wins).
        let keyFailure: Failure | undefined;
        let take = 0;
        let bytes = 0;
        for (const [k, v] of rows) {
          const index = readU64be(k, P);
          if (index !== read) {
            keyFailure = new Failure(
              'LEDGER_ENTRY_MISSING',
              read,
              index > read ? `entry ${read} is missing (the next stored entry is ${index})` : `entry key ${index} is out of order`,
            );
            break;
          }
          if (index >= n) {
            keyFailure = new Failure('LEDGER_ENTRY_INVALID', index, `entry ${index} is beyond the recorded size ${n} (a write outside the ledger)`);
            break;
          }
          take++;
          read++;
          bytes += v.byteLength;
        }
        if (take > 0) {
          const data = new Uint8Array(bytes);
          const offsets = new Uint32Array(take + 1);
          for (let j = 0, o = 0; j < take; j++) {
            data.set(rows[j][1], o);
            o += rows[j][1].byteLength;
            offsets[j + 1] = o;
          }
          const result = pool.run(data, offsets, entryOrigin);
          result.catch(() => undefined);
          inflight.push({ first: read - take, result });
        }
        if (keyFailure) {
          while (inflight.length) await consume();
          throw keyFailure;
        }
        while (inflight.length > maxInflight) await consume();
      }
      while (inflight.length) await consume();
      if (expected !== n) throw new Failure('LEDGER_ENTRY_MISSING', expected, `entry ${expected} is missing (the ledger records ${n} entries, ${expected} are present)`);
      const extra = await nextNode();
      if (extra) throw new Failure('LEDGER_NODE_MISMATCH', n, `the tree stores nodes beyond its ${n} entries (a truncated or rewritten log)`);
    } finally {
      await eit.close();
      await nit.close();
      await pool.close();
    }
    // Consecutive checkpoints must be consistent (proofs built from the stored nodes just verified).
    for (let k = 1; k < cps.length; k++) {
      const a = cps[k - 1];
      const b = cps[k];
      if (a.size === 0) continue;
      try {
        verifyConsistency(a.size, b.size, await ledger.consistencyProof(a.size, b.size), a.checkpoint.rootHash, b.checkpoint.rootHash);
      } catch (e) {
        if (!isFedtwinError(e, 'LEDGER_PROOF_INVALID')) throw e;
        throw new Failure('LEDGER_INCONSISTENT', null, `checkpoints at sizes ${a.size} and ${b.size} are not consistent: ${e.message}`, b.size);
      }
    }
    // Trusted checkpoints from outside: the ledger must reach at least as far, consistently.
    for (const note of opts.trustedCheckpoints ?? []) {
      let t: Checkpoint;
      try {
        if (verifiers.length === 0) throw new FedtwinError('LEDGER_CHECKPOINT_INVALID', 'no checkpoint key is recorded or given');
        t = verifyCheckpoint(note, verifiers, { require: [verifiers[0].name] }).checkpoint;
      } catch (e) {
        throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `trusted checkpoint: ${(e as Error).message}`);
      }
      if (cps.length && t.origin !== cps[0].checkpoint.origin) throw new Failure('LEDGER_CHECKPOINT_INVALID', null, `trusted checkpoint has origin ${t.origin}, this ledger ${cps[0].checkpoint.origin}`, t.size);
      const latest = cps[cps.length - 1];
      if (!latest || latest.size < t.size) {
        throw new Failure('LEDGER_INCONSISTENT', null, `the trusted checkpoint is at size ${t.size} (root ${toHex(t.rootHash)}), but this ledger's latest checkpoint is at ${latest ? latest.size : 'none'} with ${n} entries: the log was truncated or rolled back`, t.size);
      }
      try {
        verifyConsistency(t.size, latest.size, await ledger.consistencyProof(t.size, latest.size), t.rootHash, latest.checkpoint.rootHash);
      } catch (e) {
        if (!isFedtwinError(e, 'LEDGER_PROOF_INVALID')) throw e;
        throw new Failure('LEDGER_INCONSISTENT', null, `the trusted checkpoint (size ${t.size}, root ${toHex(t.rootHash)}) is not consistent with this ledger's checkpoint at ${latest.size}: history was rewritten (${e.message})`, t.size);
      }
      trustedOk.push({ size: t.size, rootHash: toHex(t.rootHash) });
    }
    return { ok: true, summary: summary() };
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    const out: VerifyResult = { ok: false, index: err.index, code: err.code, message: err.message, summary: summary() };
    if (err.checkpointSize !== undefined) out.checkpointSize = err.checkpointSize;
    return out;
  }
}

/**
 * Why a witness line does not hold, or undefined: its name must be an Ed25519 peer ID and the line a C2SP
 * cosignature/v1 (type 0x04) by that peer's key — or, for ledgers co-signed before cosignature/v1, a plain
 * signed-note (0x01) signature by it.
 */
function cosignatureProblem(sig: NoteSignature, text: string): string | undefined {
  let v1: NoteVerifier;
  let legacy: NoteVerifier;
  try {
    v1 = cosignatureVerifierFromPeerId(sig.name);
    legacy = noteVerifierFromPeerId(sig.name);
  } catch {
    return 'the name is not an Ed25519 peer ID, so no member signed it';
  }
  const bytes = utf8.encode(text);
  if (sig.keyId === v1.keyId) return v1.verify(bytes, sig.signature) ? undefined : 'the cosignature/v1 signature does not verify with that peer\'s key';
  if (sig.keyId === legacy.keyId) return legacy.verify(bytes, sig.signature) ? undefined : 'the signature does not verify with that peer\'s key';
  return 'its key ID is not that peer\'s key (signed by someone else)';
}
