// The SecAgg round (Bonawitz et al. 2017, with the sparse graph of Bell et al. 2020), as functions from a
// state and the messages received to a new state and the message to send. No I/O: the daemons move the
// messages (and the next slice records them in the ledger).
//
//   0 advertise     member → all    signed X25519 public keys (c: share encryption, s: masks)
//   1 shareKeys     member → each neighbour (relayed)   AEAD(Shamir shares of b_i and s_i)
//   2 maskInput     member → aggregator                 y_i = x_i + PRG(b_i) + Σ_j ±PRG(s_ij)   mod 2^32
//   3 answerRecovery member → aggregator                b-shares of senders, s-shares of dropped members
//   unmask          aggregator                          Σ y_i − Σ PRG(b_i) ∓ dropped members' pair masks
import { createHash, randomBytes } from 'node:crypto';
import { secaggError } from './errors.ts';
import { buildGraph, graphSeed, type Graph } from './graph.ts';
import {
  commitB, generateX25519, lp, open, pairwiseSeed, seal, selfMaskSeed, shareAad, shareKey, sharedSecret,
  verifyIdentitySignature, x25519PublicOf, type IdentitySigner, type X25519KeyPair,
} from './keys.ts';
import { sumStreams, type MaskTerm } from './prg.ts';
import { bytesToField, combine, fieldToBytes, shareFromBytes, shareToBytes, split, SHARE_BYTES } from './shamir.ts';

/** Bits of the masking ring Z_{2^k}: k = 32, so values travel as 4 bytes (1.0× float32). */
export const RING_BITS = 32;
/** Default bound on |value| per coordinate: 16-bit fixed point, as @fedtwin/he quantizes. */
export const DEFAULT_VALUE_BOUND = 32767;

export interface SecaggConfig {
  consortium: string;
  round: number;
  /** the members admitted to the round (peer IDs, e.g. from the manifest) */
  members: readonly string[];
  /** t: any t of a member's sharing neighbourhood reconstruct its secrets; fewer learn nothing */
  threshold: number;
  /** sparse graph degree (even); omitted or ≥ n − 1: the full graph */
  degree?: number;
  /** values per vector */
  length: number;
  /** max |x| per coordinate, noise included; n · valueBound must stay below 2^31 so the sum never wraps */
  valueBound?: number;
}

export interface KeyAdvertisement {
  consortium: string;
  round: number;
  member: string;
  cPub: Uint8Array;
  sPub: Uint8Array;
  signature: Uint8Array;
}

export interface EncryptedShare {
  from: string;
  to: string;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

export interface ShareBundle {
  member: string;
  /** public commitment to b, checked after reconstruction */
  bCommit: Uint8Array;
  shares: EncryptedShare[];
}

export interface MaskedInput {
  member: string;
  values: Uint32Array;
}

export interface RecoveryRequest {
  consortium: string;
  round: number;
  /** members whose masked inputs are in the sum: reveal their b-shares */
  survivors: string[];
  /** members who shared but whose masked input is not in the sum: reveal their s-shares */
  dropped: string[];
}

export interface ShareReveal {
  owner: string;
  y: Uint8Array;
}

export interface RecoveryResponse {
  member: string;
  request: Uint8Array;
  bShares: ShareReveal[];
  sShares: ShareReveal[];
}

export type MemberPhase = 'advertised' | 'shared' | 'sent' | 'answered';

export interface MemberState {
  readonly config: SecaggConfig;
  readonly me: string;
  readonly phase: MemberPhase;
  readonly c: X25519KeyPair;
  readonly s: X25519KeyPair;
  readonly b: Uint8Array;
  readonly ads?: ReadonlyMap<string, KeyAdvertisement>;
  readonly graph?: Graph;
  /** shares this member holds, by owner (its own included) */
  readonly held?: ReadonlyMap<string, { b: bigint; s: bigint }>;
  /** the digest of the one recovery request answered */
  readonly answered?: string;
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/** Sharing-neighbourhood size: the member and its neighbours. */
function neighbourhoodSize(cfg: SecaggConfig, n: number): number {
  return cfg.degree === undefined || cfg.degree >= n - 1 ? n : cfg.degree + 1;
}

export function checkConfig(cfg: SecaggConfig): Required<Pick<SecaggConfig, 'valueBound'>> & SecaggConfig {
  const bad = (msg: string, hint: string): never => { throw secaggError('SECAGG_BAD_CONFIG', msg, hint); };
  if (typeof cfg.consortium !== 'string' || cfg.consortium.length === 0) bad('consortium id missing', 'pass the manifest id');
  if (!Number.isSafeInteger(cfg.round) || cfg.round < 0) bad(`round ${cfg.round} must be a non-negative integer`, 'pass the round number');
  if (!Number.isSafeInteger(cfg.length) || cfg.length < 1 || cfg.length > 1 << 28) bad(`length ${cfg.length} out of range`, 'pass the vector length');
  const n = cfg.members.length;
  if (new Set(cfg.members).size !== n || n < 2) bad('members must be ≥ 2 distinct peer IDs', 'list each member once');
  if (cfg.degree !== undefined && (!Number.isSafeInteger(cfg.degree) || cfg.degree < 2 || cfg.degree % 2 !== 0)) {
    bad(`graph degree ${cfg.degree} must be an even integer ≥ 2`, `e.g. defaultDegree(${n})`);
  }
  const m = neighbourhoodSize(cfg, n);
  // t > m/2: two disjoint groups of t honest members cannot both exist, so no two answers to conflicting
  // requests can together reach t for one member's b and its s.
  if (!Number.isSafeInteger(cfg.threshold) || cfg.threshold <= m / 2 || cfg.threshold > m) {
    bad(`threshold ${cfg.threshold} must be in (${m}/2, ${m}] for a sharing neighbourhood of ${m}`, `e.g. threshold ${Math.floor(m / 2) + 1} (tolerates ${m - Math.floor(m / 2) - 1} dropouts)`);
  }
  const valueBound = cfg.valueBound ?? DEFAULT_VALUE_BOUND;
  if (!Number.isSafeInteger(valueBound) || valueBound < 1 || n * valueBound > 2 ** (RING_BITS - 1) - 1) {
    bad(`${n} members × valueBound ${valueBound} overflows Z_2^${RING_BITS}'s centred range`, 'lower quantBits or the member count');
  }
  return { ...cfg, valueBound };
}

// ---------------------------------------------------------------------------------------------
// Advertisements.

export function advertisementSigningBytes(ad: Omit<KeyAdvertisement, 'signature'>): Uint8Array {
  return lp('fedtwin/secagg/keys/v1', ad.consortium, ad.round, ad.member, ad.cPub, ad.sPub);
}

/** Checks one advertisement against the round; throws SECAGG_BAD_SIGNATURE / SECAGG_BAD_MESSAGE. */
export function verifyAdvertisement(cfg: SecaggConfig, ad: KeyAdvertisement): void {
  if (ad.consortium !== cfg.consortium || ad.round !== cfg.round) {
    throw secaggError('SECAGG_BAD_MESSAGE', `advertisement of ${ad.member} is for ${ad.consortium} round ${ad.round}`, 'a key advertisement from another round or consortium was replayed');
  }
  if (!cfg.members.includes(ad.member)) throw secaggError('SECAGG_BAD_MESSAGE', `${ad.member} is not a member of the round`, 'only admitted members take part');
  if (ad.cPub.length !== 32 || ad.sPub.length !== 32) throw secaggError('SECAGG_BAD_MESSAGE', 'public keys have 32 bytes', 'the advertisement is malformed');
  if (!verifyIdentitySignature(ad.member, advertisementSigningBytes(ad), ad.signature)) {
    throw secaggError('SECAGG_BAD_SIGNATURE', `advertisement of ${ad.member} is not signed by its identity`, 'the keys were substituted (a relay cannot advertise keys in a member\'s name)');
  }
}

/** Phase 0 (member): fresh key pairs and b for this round, and the signed advertisement. */
export function advertise(config: SecaggConfig, signer: IdentitySigner): { state: MemberState; ad: KeyAdvertisement } {
  const cfg = checkConfig(config);
  if (!cfg.members.includes(signer.peerId)) throw secaggError('SECAGG_BAD_ARGUMENT', `${signer.peerId} is not a member of the round`, 'check the manifest');
  const c = generateX25519(), s = generateX25519();
  const unsigned = { consortium: cfg.consortium, round: cfg.round, member: signer.peerId, cPub: c.public, sPub: s.public };
  const ad = { ...unsigned, signature: signer.signSync(advertisementSigningBytes(unsigned)) };
  return { state: { config: cfg, me: signer.peerId, phase: 'advertised', c, s, b: new Uint8Array(randomBytes(32)) }, ad };
}

// ---------------------------------------------------------------------------------------------
// Sharing.

const indexOf = (g: Graph, m: string): number => g.members.indexOf(m) + 1;

/** The round's graph over the members that advertised (public data only). */
export function roundGraph(cfg: SecaggConfig, ads: readonly KeyAdvertisement[]): Graph {
  return buildGraph(ads.map((a) => a.member), graphSeed(cfg.consortium, cfg.round, ads), cfg.degree);
}

function requireAtLeast(cfg: SecaggConfig, count: number, what: string): void {
  if (count < cfg.threshold) throw secaggError('SECAGG_TOO_FEW_MEMBERS', `${count} ${what}, threshold is ${cfg.threshold}`, 'the round cannot complete; retry it with more members online');
}

/** Phase 1 (member): check every advertisement, then share b and s among the neighbourhood. */
export function shareKeys(state: MemberState, ads: readonly KeyAdvertisement[]): { state: MemberState; bundle: ShareBundle } {
  if (state.phase !== 'advertised') throw secaggError('SECAGG_OUT_OF_ORDER', `shareKeys in phase ${state.phase}`, 'a round runs advertise, shareKeys, maskInput, answerRecovery once each');
  const cfg = state.config;
  const byMember = new Map<string, KeyAdvertisement>();
  for (const ad of ads) {
    verifyAdvertisement(cfg, ad);
    if (byMember.has(ad.member)) throw secaggError('SECAGG_BAD_MESSAGE', `two advertisements of ${ad.member}`, 'the relay equivocated');
    byMember.set(ad.member, ad);
  }
  const mine = byMember.get(state.me);
  if (!mine || !Buffer.from(mine.cPub).equals(state.c.public) || !Buffer.from(mine.sPub).equals(state.s.public)) {
    throw secaggError('SECAGG_BAD_MESSAGE', 'the advertisement list does not carry this member\'s own keys', 'the relay substituted or dropped this member\'s keys');
  }
  requireAtLeast(cfg, byMember.size, 'members advertised keys');
  const graph = roundGraph(cfg, [...byMember.values()]);
  const holders = [state.me, ...graph.neighbours(state.me)];
  const xs = holders.map((m) => indexOf(graph, m));
  const bShares = split(bytesToField(state.b), cfg.threshold, xs);
  const sShares = split(bytesToField(state.s.secret), cfg.threshold, xs);
  const held = new Map([[state.me, { b: bShares[0], s: sShares[0] }]]);
  const shares: EncryptedShare[] = [];
  for (let h = 1; h < holders.length; h++) {
    const to = holders[h];
    const key = shareKey(sharedSecret(state.c.secret, byMember.get(to)!.cPub), cfg.consortium, cfg.round, { member: state.me, cPub: state.c.public }, byMember.get(to)!);
    const body = Buffer.concat([shareToBytes(bShares[h]), shareToBytes(sShares[h])]);
    shares.push({ from: state.me, to, ...seal(key, shareAad(cfg.consortium, cfg.round, state.me, to), body) });
  }
  return {
    state: { ...state, phase: 'shared', ads: byMember, graph, held },
    bundle: { member: state.me, bCommit: commitB(state.b, cfg.consortium, cfg.round, state.me), shares },
  };
}

// ---------------------------------------------------------------------------------------------
// Masking.

/** +1 if a adds PRG(s_ab) and b subtracts it: the member with the smaller peer ID adds. */
export const maskSign = (a: string, b: string): 1 | -1 => (a < b ? 1 : -1);

/**
 * Phase 2 (member): open the shares relayed to it (their senders are the neighbours it masks with), then
 * y = x + PRG(b) + Σ_j ±PRG(s_ij) in Z_{2^32}.
 */
export function maskInput(state: MemberState, inbox: readonly EncryptedShare[], values: Int32Array): { state: MemberState; masked: MaskedInput } {
  if (state.phase !== 'shared') throw secaggError('SECAGG_OUT_OF_ORDER', `maskInput in phase ${state.phase}`, 'call shareKeys first, and mask once per round');
  const cfg = state.config as ReturnType<typeof checkConfig>;
  if (values.length !== cfg.length) throw secaggError('SECAGG_BAD_ARGUMENT', `vector has ${values.length} values, the round ${cfg.length}`, 'quantize the whole update');
  const graph = state.graph!, ads = state.ads!;
  const nbrs = new Set(graph.neighbours(state.me));
  const held = new Map(state.held!);
  for (const sh of inbox) {
    if (sh.to !== state.me || !nbrs.has(sh.from) || held.has(sh.from)) {
      throw secaggError('SECAGG_BAD_MESSAGE', `unexpected share from ${sh.from} to ${sh.to}`, 'shares come once from each neighbour, addressed to this member');
    }
    const ad = ads.get(sh.from)!;
    const key = shareKey(sharedSecret(state.c.secret, ad.cPub), cfg.consortium, cfg.round, { member: state.me, cPub: state.c.public }, ad);
    const body = open(key, shareAad(cfg.consortium, cfg.round, sh.from, state.me), sh.nonce, sh.ciphertext);
    if (body.length !== 2 * SHARE_BYTES) throw secaggError('SECAGG_BAD_MESSAGE', 'share body has the wrong size', 'the sender is faulty');
    held.set(sh.from, { b: shareFromBytes(body.subarray(0, SHARE_BYTES)), s: shareFromBytes(body.subarray(SHARE_BYTES)) });
  }
  requireAtLeast(cfg, held.size, 'members of this neighbourhood shared keys');
  // y = x + PRG(b) + Σ_j ±PRG(s_ij), one chunked pass over x (prg.ts); the range check rides along and
  // throws before anything leaves this function.
  const masks: MaskTerm[] = [{ seed: selfMaskSeed(state.b, cfg.consortium, cfg.round, state.me), sign: 1 }];
  for (const j of held.keys()) {
    if (j === state.me) continue;
    masks.push({ seed: pairSeed(cfg, state.me, state.s.secret, state.s.public, ads.get(j)!), sign: maskSign(state.me, j) });
  }
  const y = new Uint32Array(cfg.length);
  const bound = cfg.valueBound;
  const outside = sumStreams(y, values, [], masks, bound);
  if (outside) throw secaggError('SECAGG_VALUE_OUT_OF_RANGE', `${outside} values exceed ±${bound}`, 'clip before quantizing, and include noise in valueBound', { outside });
  return { state: { ...state, phase: 'sent', held }, masked: { member: state.me, values: y } };
}

function pairSeed(cfg: SecaggConfig, me: string, secret: Uint8Array, myPub: Uint8Array, other: KeyAdvertisement): Uint8Array {
  return pairwiseSeed(sharedSecret(secret, other.sPub), cfg.consortium, cfg.round, { member: me, sPub: myPub }, other);
}

// ---------------------------------------------------------------------------------------------
// Recovery.

/** A canonical digest of a request, which responses quote (so an answer cannot be moved to another request). */
export function requestDigest(req: RecoveryRequest): Uint8Array {
  return new Uint8Array(createHash('sha256').update(lp('fedtwin/secagg/recovery/v1', req.consortium, req.round, req.survivors.join('\n'), req.dropped.join('\n'))).digest());
}

/**
 * Phase 3 (member): the SecAgg consistency check, then the shares. A member answers one request per round,
 * never names a member both survivor and dropped, never reveals s-shares for itself after it sent (its
 * masked input is in the sum), and needs at least t survivors (a smaller sum would be a smaller crowd).
 */
export function answerRecovery(state: MemberState, req: RecoveryRequest): { state: MemberState; response: RecoveryResponse } {
  const cfg = state.config;
  if (req.consortium !== cfg.consortium || req.round !== cfg.round) {
    throw secaggError('SECAGG_RECOVERY_WRONG_ROUND', `request for ${req.consortium} round ${req.round}, this is ${cfg.consortium} round ${cfg.round}`, 'a request from another round was replayed');
  }
  const digest = requestDigest(req);
  const hex = Buffer.from(digest).toString('hex');
  if (state.answered !== undefined) {
    if (state.answered === hex) throw secaggError('SECAGG_RECOVERY_REPLAYED', 'this recovery request was already answered', 'the aggregator has the answer; a replay gets nothing new');
    throw secaggError('SECAGG_RECOVERY_CONFLICT', 'a second, different recovery request in one round', 'the aggregator asked twice (possibly to unmask a member); report it', { answered: state.answered, request: hex });
  }
  if (state.phase !== 'sent') throw secaggError('SECAGG_OUT_OF_ORDER', `answerRecovery in phase ${state.phase}`, 'only members that sent their masked input answer');
  const inconsistent = (msg: string): never => {
    throw secaggError('SECAGG_RECOVERY_INCONSISTENT', msg, 'refused: answering would let the aggregator remove both masks of one member');
  };
  const surv = new Set(req.survivors), drop = new Set(req.dropped);
  if (surv.size !== req.survivors.length || drop.size !== req.dropped.length) inconsistent('a member is listed twice');
  for (const m of drop) if (surv.has(m)) inconsistent(`${m} is named both survivor and dropped`);
  for (const m of [...surv, ...drop]) if (!state.ads!.has(m)) inconsistent(`${m} took no part in the round`);
  if (drop.has(state.me)) inconsistent('this member is named dropped, but its masked input was sent');
  if (!surv.has(state.me)) inconsistent('this member sent its masked input but is not in the sum set');
  if (surv.size < cfg.threshold) {
    throw secaggError('SECAGG_RECOVERY_TOO_FEW', `${surv.size} survivors, threshold ${cfg.threshold}`, 'a sum of fewer than t inputs is not revealed');
  }
  const held = state.held!;
  const reveal = (set: Set<string>, which: 'b' | 's'): ShareReveal[] =>
    [...set].filter((m) => held.has(m)).sort().map((m) => ({ owner: m, y: shareToBytes(held.get(m)![which]) }));
  return {
    state: { ...state, phase: 'answered', answered: hex },
    response: { member: state.me, request: digest, bShares: reveal(surv, 'b'), sShares: reveal(drop, 's') },
  };
}

// ---------------------------------------------------------------------------------------------
// Aggregator.

export interface AggregatorRound {
  readonly config: ReturnType<typeof checkConfig>;
  readonly ads: ReadonlyMap<string, KeyAdvertisement>;
  readonly graph: Graph;
  /** members whose share bundles were accepted, with their b commitments */
  readonly commits: ReadonlyMap<string, Uint8Array>;
}

/** Phase 0 (aggregator): keep the valid advertisements (one per member), refuse the others. */
export function collectAdvertisements(config: SecaggConfig, ads: readonly KeyAdvertisement[]): { accepted: KeyAdvertisement[]; refused: { member: string; code: string }[] } {
  const cfg = checkConfig(config);
  const accepted: KeyAdvertisement[] = [], refused: { member: string; code: string }[] = [];
  const seen = new Set<string>();
  for (const ad of ads) {
    try {
      verifyAdvertisement(cfg, ad);
      if (seen.has(ad.member)) throw secaggError('SECAGG_BAD_MESSAGE', 'duplicate', 'one advertisement per member');
      seen.add(ad.member);
      accepted.push(ad);
    } catch (e) {
      refused.push({ member: ad.member, code: (e as { code?: string }).code ?? 'SECAGG_BAD_MESSAGE' });
    }
  }
  requireAtLeast(cfg, accepted.length, 'members advertised keys');
  return { accepted, refused };
}

/** Phase 1 (aggregator): route each share to its recipient; the senders form the sharing set U2. */
export function routeShares(config: SecaggConfig, ads: readonly KeyAdvertisement[], bundles: readonly ShareBundle[]): { round: AggregatorRound; inboxes: Map<string, EncryptedShare[]> } {
  const cfg = checkConfig(config);
  const adMap = new Map(ads.map((a) => [a.member, a]));
  const graph = roundGraph(cfg, ads);
  const commits = new Map<string, Uint8Array>();
  const inboxes = new Map<string, EncryptedShare[]>();
  for (const b of bundles) {
    const nbrs = graph.neighbours(b.member);
    const ok = adMap.has(b.member) && !commits.has(b.member) && b.bCommit.length === 32 && b.shares.length === nbrs.length
      && b.shares.every((s, i) => s.from === b.member && s.to === nbrs[i]);
    if (!ok) throw secaggError('SECAGG_BAD_MESSAGE', `share bundle of ${b.member} is malformed`, 'one share per neighbour, in neighbour order, once');
    commits.set(b.member, b.bCommit);
  }
  requireAtLeast(cfg, commits.size, 'members shared keys');
  // Shares from members that completed sharing only: a recipient masks with exactly their senders.
  for (const b of bundles) for (const s of b.shares) if (commits.has(s.to)) (inboxes.get(s.to) ?? inboxes.set(s.to, []).get(s.to)!).push(s);
  return { round: { config: cfg, ads: adMap, graph, commits }, inboxes };
}

/** Phase 3 (aggregator): the one recovery request, from who shared and whose masked inputs arrived. */
export function recoveryRequest(round: AggregatorRound, received: readonly string[]): RecoveryRequest {
  const got = new Set(received);
  const sharers = [...round.commits.keys()].sort();
  return {
    consortium: round.config.consortium,
    round: round.config.round,
    survivors: sharers.filter((m) => got.has(m)),
    dropped: sharers.filter((m) => !got.has(m)),
  };
}

/** f(0) from the first t revealed shares of `owner` (holders are the owner's sharing neighbourhood). */
function reconstruct(round: AggregatorRound, owner: string, reveals: readonly { holder: string; y: Uint8Array }[], what: string): bigint {
  const allowed = new Set([owner, ...round.graph.neighbours(owner)]);
  const pts = reveals.filter((r) => allowed.has(r.holder)).slice(0, round.config.threshold)
    .map((r) => ({ x: round.graph.members.indexOf(r.holder) + 1, y: shareFromBytes(r.y) }));
  if (pts.length < round.config.threshold) {
    throw secaggError('SECAGG_NOT_ENOUGH_SHARES', `${pts.length} ${what}-shares of ${owner}, threshold ${round.config.threshold}`, 'more than n − t members of its neighbourhood dropped; the round cannot be unmasked', { owner, have: pts.length });
  }
  return combine(pts);
}

/**
 * Unmask (aggregator): Σ y_i over survivors, minus each survivor's self-mask (b reconstructed from t
 * b-shares, checked against its commitment), minus the survivors' pair masks with dropped members (s
 * reconstructed, checked against the signed public key). Returns the exact sum, centred.
 */
export function unmask(round: AggregatorRound, req: RecoveryRequest, masked: readonly MaskedInput[], responses: readonly RecoveryResponse[]): Int32Array {
  const cfg = round.config;
  const want = Buffer.from(requestDigest(req));
  const inputs = new Map(masked.map((m) => [m.member, m]));
  const ys: Uint32Array[] = [];
  for (const m of req.survivors) {
    const y = inputs.get(m);
    if (!y || y.values.length !== cfg.length) throw secaggError('SECAGG_BAD_MESSAGE', `no masked input of ${m} of the round's length`, 'survivors are the members whose inputs arrived');
    ys.push(y.values);
  }
  const bReveals = new Map<string, { holder: string; y: Uint8Array }[]>();
  const sReveals = new Map<string, { holder: string; y: Uint8Array }[]>();
  for (const r of responses) {
    if (!want.equals(r.request)) continue; // an answer to another request is not used
    for (const s of r.bShares) (bReveals.get(s.owner) ?? bReveals.set(s.owner, []).get(s.owner)!).push({ holder: r.member, y: s.y });
    for (const s of r.sShares) (sReveals.get(s.owner) ?? sReveals.set(s.owner, []).get(s.owner)!).push({ holder: r.member, y: s.y });
  }
  // Every secret is reconstructed and checked before the one pass over the vectors.
  const masks: MaskTerm[] = [];
  for (const m of req.survivors) {
    const b = fieldToBytes(reconstruct(round, m, bReveals.get(m) ?? [], 'b'), 32);
    if (!Buffer.from(commitB(b, cfg.consortium, cfg.round, m)).equals(round.commits.get(m)!)) {
      throw secaggError('SECAGG_RECONSTRUCTION_FAILED', `b of ${m} does not match its commitment`, 'a revealed share was wrong; exclude its holder and retry with others');
    }
    masks.push({ seed: selfMaskSeed(b, cfg.consortium, cfg.round, m), sign: -1 });
  }
  const surv = new Set(req.survivors);
  for (const d of req.dropped) {
    const sk = fieldToBytes(reconstruct(round, d, sReveals.get(d) ?? [], 's'), 32);
    const ad = round.ads.get(d)!;
    if (!Buffer.from(x25519PublicOf(sk)).equals(ad.sPub)) {
      throw secaggError('SECAGG_RECONSTRUCTION_FAILED', `mask key of ${d} does not match its signed public key`, 'a revealed share was wrong; exclude its holder and retry with others');
    }
    for (const j of round.graph.neighbours(d)) {
      if (!surv.has(j)) continue;
      // j added maskSign(j, d)·PRG(s_jd); take it back out.
      masks.push({ seed: pairSeed(cfg, d, sk, ad.sPub, round.ads.get(j)!), sign: maskSign(j, d) === 1 ? -1 : 1 });
    }
  }
  // Σ y − Σ PRG(b) ∓ pair masks, one chunked pass (prg.ts)
  const sum = new Uint32Array(cfg.length);
  sumStreams(sum, undefined, ys, masks);
  return new Int32Array(sum.buffer, sum.byteOffset, sum.length);
}
