// The per-entry half of an audit (verifyLedgerDir), run on worker threads: parse each stored entry with
// the same parseEntry the append path uses, hash its leaf, check its signature, and hand back what the
// scan needs in flat typed arrays (no per-entry objects cross the thread boundary). The ordered half
// (key continuity, tree nodes, checkpoints, tallies) stays on the main thread in verify.ts.
//
// Signatures: libsodium (sodium-native, an optional dependency) verifies in ~44 µs here against ~79 µs
// for OpenSSL via node:crypto. libsodium accepts a subset of what OpenSSL accepts (the same cofactorless
// equation; it also refuses small-order and non-canonical points), so an entry it refuses is re-checked
// with node:crypto, whose verdict stands: the audit accepts exactly what the append path accepts.
import { createRequire } from 'node:module';
import { verify } from 'node:crypto';
import { ENTRY_TYPES, entrySignedMessage, parseEntry, publicKeyOfPeerId, publicKeyRawOfPeerId, type EntryType } from './entry.ts';

/** Numbers per contribution in AuditChunkResult.mechanism. */
export const MECHANISM_FIELDS = 7;

export interface AuditJob {
  id: number;
  /** concatenated stored entry bytes */
  data: Uint8Array;
  /** n+1 offsets into data */
  offsets: Uint32Array;
  /** the log origin v2 entry signatures are bound to (undefined: none known, so no signature verifies) */
  origin?: string;
}

export interface AuditChunkResult {
  id: number;
  /** entries examined: all of them, or up to and including the bad one */
  count: number;
  /** leaf hash per examined entry (count × 32 bytes; zero for an entry that failed to parse) */
  leafHashes: Uint8Array;
  /** index into ENTRY_TYPES */
  type: Uint8Array;
  /** round of round/contribution/aggregate/refusal entries, else NaN */
  round: Float64Array;
  /** index into `strings`: contribution/refusal node, membership peer; -1 otherwise */
  who: Int32Array;
  /** index into `strings`: the entry's author */
  author: Int32Array;
  /** membership: 1 admit, 0 remove */
  admit: Uint8Array;
  /** contribution totals */
  epsilonTotal: Float64Array;
  deltaTotal: Float64Array;
  /** contribution: ε of the round */
  epsilon: Float64Array;
  /**
   * contribution: mechanism (sampleRate, noiseMultiplier, steps, delta, mu, l1, l2) at [7i, 7i+7); NaN when absent
   * (mu, l1, l2: NaN unless the mechanism is Skellam)
   */
  mechanism: Float64Array;
  /** contribution: σ of the DP count release the entry names (countNoise), charged once per node; NaN when absent */
  countNoise: Float64Array;
  /** round: index into `strings` of its globalVersion, aggregate: of its modelVersion, exclusion (withdraw): of its aggregateHash; else -1 */
  version: Int32Array;
  /** aggregate: its contribution leaf indices are aggLeaves[aggOffsets[i] .. aggOffsets[i+1]) */
  aggOffsets: Uint32Array;
  aggLeaves: Float64Array;
  strings: string[];
  /** the first bad entry of the chunk (position in the chunk), if any; nothing after it was examined */
  bad: { at: number; kind: 'parse' | 'signature'; message: string } | null;
  impl: SignatureImpl;
}

export type SignatureImpl = 'libsodium' | 'node:crypto';

type SodiumVerify = (sig: Uint8Array, msg: Uint8Array, pk: Uint8Array) => boolean;

function loadSodium(): SodiumVerify | undefined {
  if (process.env.FEDTWIN_LEDGER_NO_SODIUM === '1') return undefined;
  try {
    const sodium = createRequire(import.meta.url)('sodium-native') as { crypto_sign_verify_detached?: SodiumVerify };
    return typeof sodium.crypto_sign_verify_detached === 'function' ? sodium.crypto_sign_verify_detached : undefined;
  } catch {
    return undefined;
  }
}

let sodiumVerify: SodiumVerify | undefined | null = null;

export function signatureImpl(): SignatureImpl {
  if (sodiumVerify === null) sodiumVerify = loadSodium();
  return sodiumVerify ? 'libsodium' : 'node:crypto';
}

const TYPE_CODE = new Map<EntryType, number>(ENTRY_TYPES.map((t, i) => [t, i]));

/** `only` forces one implementation (tests compare the two); by default libsodium when installed. */
export function auditChunk(job: AuditJob, only?: SignatureImpl): AuditChunkResult {
  const impl = only ?? signatureImpl();
  if (impl === 'libsodium' && signatureImpl() !== 'libsodium') throw new Error('libsodium (sodium-native) is not installed');
  const fast = impl === 'libsodium' ? (sodiumVerify ?? undefined) : undefined;
  const n = job.offsets.length - 1;
  const leafHashes = new Uint8Array(n * 32);
  const type = new Uint8Array(n);
  const round = new Float64Array(n).fill(NaN);
  const who = new Int32Array(n).fill(-1);
  const author = new Int32Array(n).fill(-1);
  const admit = new Uint8Array(n);
  const epsilonTotal = new Float64Array(n);
  const deltaTotal = new Float64Array(n);
  const epsilon = new Float64Array(n);
  const mechanism = new Float64Array(MECHANISM_FIELDS * n).fill(NaN);
  const countNoise = new Float64Array(n).fill(NaN);
  const version = new Int32Array(n).fill(-1);
  const aggOffsets = new Uint32Array(n + 1);
  const agg: number[] = [];
  const strings: string[] = [];
  const stringIdx = new Map<string, number>();
  const intern = (s: string): number => {
    let k = stringIdx.get(s);
    if (k === undefined) {
      k = strings.length;
      strings.push(s);
      stringIdx.set(s, k);
    }
    return k;
  };
  let bad: AuditChunkResult['bad'] = null;
  let count = n;
  for (let i = 0; i < n; i++) {
    aggOffsets[i + 1] = aggOffsets[i];
    let e;
    try {
      e = parseEntry(job.data.subarray(job.offsets[i], job.offsets[i + 1]));
    } catch (err) {
      bad = { at: i, kind: 'parse', message: (err as Error).message };
      count = i + 1;
      break;
    }
    leafHashes.set(e.leafHash, i * 32);
    const p = e.payload;
    type[i] = TYPE_CODE.get(p.type) as number;
    author[i] = intern(e.author);
    switch (p.type) {
      case 'membership':
        who[i] = intern(p.peerId);
        admit[i] = p.action === 'admit' ? 1 : 0;
        break;
      case 'round':
        round[i] = p.round;
        if (p.globalVersion !== undefined) version[i] = intern(p.globalVersion);
        break;
      case 'contribution':
        round[i] = p.round;
        who[i] = intern(p.node);
        epsilonTotal[i] = p.epsilonTotal;
        deltaTotal[i] = p.deltaTotal;
        epsilon[i] = p.epsilon;
        if (p.mechanism) {
          const m = p.mechanism;
          const sk = m.kind === 'skellam' ? [m.mu!, m.l1!, m.l2!] : [NaN, NaN, NaN];
          mechanism.set([m.sampleRate, m.noiseMultiplier, m.steps, m.delta, ...sk], MECHANISM_FIELDS * i);
        }
        if (p.countEstimate !== undefined && p.countNoise !== undefined) countNoise[i] = p.countNoise;
        break;
      case 'aggregate':
        round[i] = p.round;
        version[i] = intern(p.modelVersion);
        for (const j of p.contributions) agg.push(j);
        aggOffsets[i + 1] = agg.length;
        break;
      case 'refusal':
        round[i] = p.round;
        who[i] = intern(p.node);
        break;
      case 'verdict':
        round[i] = p.round;
        who[i] = intern(p.node);
        break;
      case 'exclusion':
        round[i] = p.round;
        if (p.peerId !== undefined) who[i] = intern(p.peerId);
        if (p.action === 'withdraw' && p.aggregateHash !== undefined) version[i] = intern(p.aggregateHash);
        break;
      case 'secagg-keys':
      case 'secagg-shares':
        round[i] = p.round;
        who[i] = intern(p.node);
        break;
      case 'secagg-reveal':
        round[i] = p.round;
        who[i] = intern(p.node);
        version[i] = intern(p.digest); // the request it answers, checked against the round's one request
        break;
      case 'secagg-recovery':
        round[i] = p.round;
        version[i] = intern(p.digest);
        break;
      case 'key':
      case 'consortium':
        break;
    }
    let ok = false;
    const check = (m: Uint8Array) => (fast !== undefined && fast(e.signature, m, publicKeyRawOfPeerId(e.author))) || verify(null, m, publicKeyOfPeerId(e.author), e.signature);
    try {
      ok = job.origin !== undefined && check(entrySignedMessage(e, job.origin));
    } catch {
      ok = false; // an author key that is not a valid point
    }
    if (!ok) {
      let v1 = false;
      try {
        v1 = check(e.signedMessage); // a retired v1 signature (bound to no log): named, then refused
      } catch {
        v1 = false;
      }
      bad = {
        at: i,
        kind: 'signature',
        message: v1
          ? `entry by ${e.author} has a v1 signature (fedtwin-ledger-entry/v1, bound to no log origin); v1 entries are no longer accepted, only v2 signatures bound to the log origin${job.origin === undefined ? '' : ` ${job.origin}`}`
          : job.origin === undefined
            ? `signature cannot be checked: the ledger has no log origin (no checkpoint, none recorded), and entry signatures are bound to it`
            : `signature does not verify against its author ${e.author} for the log origin ${job.origin} (forged, altered, or signed for another log)`,
      };
      count = i + 1;
      break;
    }
  }
  return { id: job.id, count, leafHashes, type, round, who, author, admit, epsilonTotal, deltaTotal, epsilon, mechanism, countNoise, version, aggOffsets, aggLeaves: Float64Array.from(agg), strings, bad, impl };
}

/** The transferable buffers of a result (so posting it copies nothing). */
export function resultTransferList(r: AuditChunkResult): ArrayBuffer[] {
  return [r.leafHashes, r.type, r.round, r.who, r.author, r.admit, r.epsilonTotal, r.deltaTotal, r.epsilon, r.mechanism, r.countNoise, r.version, r.aggOffsets, r.aggLeaves].map((a) => a.buffer as ArrayBuffer);
}
