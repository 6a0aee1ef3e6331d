// `fedtwin bench he`'s masking figures: one whole SecAgg round (@fedtwin/secagg, the daemons' `secagg` scheme)
// over the same updates as the BFV and CKKS figures, with every member's and the aggregator's work timed in
// this process, in the same units as `SchemeFigures`.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { createEntrySigner } from '@fedtwin/ledger';
import { benchUpdate, dequantize, quantize, type SchemeFigures } from '@fedtwin/he';
import { secaggNeighbourhood } from '@fedtwin/consortium';
import {
  advertise, answerRecovery, collectAdvertisements, maskInput, recoveryRequest, routeShares, shareKeys, unmask, warmUp,
  type KeyAdvertisement, type MaskedInput, type MemberState, type RecoveryResponse, type SecaggConfig, type ShareBundle,
} from '@fedtwin/secagg';

/** The figures of one scheme with what it withstands (the two keys issue 16 adds to `bench he --json`). */
export interface GuardedFigures extends SchemeFigures {
  /** Smallest coalition of members that, with the aggregator, can read one member's update. */
  collusionThreshold: number;
  /** Members that may drop after the round opened (before or after sending) with the round still completing. */
  dropoutTolerance: number;
}

/** 16-bit fixed point over ±clip, as the daemons quantize for secagg (BFV's quantMax). */
const QMAX = 32767;

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const adBytes = (a: KeyAdvertisement): number => a.member.length + 8 + 32 + 32 + 64;
const bundleBytes = (b: ShareBundle): number => b.member.length + 32 + b.shares.reduce((s, x) => s + x.from.length + x.to.length + x.nonce.length + x.ciphertext.length, 0);
const responseBytes = (r: RecoveryResponse): number => r.member.length + 32 + [...r.bShares, ...r.sShares].reduce((s, x) => s + x.owner.length + x.y.length, 0);

/**
 * One masked round of `members` members over `values` values (the same data as `runHeBench`), threshold the
 * manifest's default ⌊m/2⌋ + 1 over the full graph, nobody dropping. Timings: `encryptMsPerMillion` is one
 * member's whole part (advertise, share, quantize + mask, answer the recovery), median over members;
 * `aggregateMsPerUpdatePerMillion` the aggregator's whole part (collect, route, request, unmask) per update;
 * `decryptMsPerMillion` a member turning the published integer sum into floats; bytes are one member's upload.
 */
export async function runSecaggBench(opts: { values: number; members: number; onProgress?: (line: string) => void }): Promise<GuardedFigures> {
  const L = opts.values;
  const n = Math.max(2, opts.members);
  const log = opts.onProgress ?? (() => {});
  warmUp();
  const ids = await Promise.all(Array.from({ length: n }, async () => createEntrySigner(await generateKeyPair('Ed25519'), 'fedtwin/bench')));
  const threshold = Math.floor(secaggNeighbourhood(n) / 2) + 1;
  const cfg: SecaggConfig = { consortium: 'bench', round: 1, members: ids.map((s) => s.peerId), threshold, length: L };
  const memberMs = new Map<string, number>();
  const up = new Map<string, number>();
  const member = <T>(who: string, f: () => T): T => { const t = performance.now(); const v = f(); memberMs.set(who, (memberMs.get(who) ?? 0) + performance.now() - t); return v; };
  let aggMs = 0;
  const aggregator = <T>(f: () => T): T => { const t = performance.now(); const v = f(); aggMs += performance.now() - t; return v; };
  const send = (who: string, bytes: number) => up.set(who, (up.get(who) ?? 0) + bytes);

  const states = new Map<string, MemberState>();
  const ads: KeyAdvertisement[] = [];
  for (const id of ids) {
    const r = member(id.peerId, () => advertise(cfg, id));
    states.set(id.peerId, r.state); ads.push(r.ad); send(id.peerId, adBytes(r.ad));
  }
  const { accepted } = aggregator(() => collectAdvertisements(cfg, ads));
  const bundles: ShareBundle[] = [];
  for (const [p, s] of states) {
    const r = member(p, () => shareKeys(s, accepted));
    states.set(p, r.state); bundles.push(r.bundle); send(p, bundleBytes(r.bundle));
  }
  const { round, inboxes } = aggregator(() => routeShares(cfg, accepted, bundles));
  const exact = new Float64Array(L);
  const masked: MaskedInput[] = [];
  let u = 0;
  for (const [p, s] of states) {
    const x = benchUpdate(L, u + 1);
    for (let i = 0; i < L; i++) exact[i] += x[i]!;
    const seed: [number, number] = [u++, 1];
    const r = member(p, () => maskInput(s, inboxes.get(p) ?? [], quantize(x, { scale: QMAX, clip: 1, seed }).values));
    states.set(p, r.state); masked.push(r.masked); send(p, 4 * L);
    log(`secagg: member ${u}/${n} masked its update`);
  }
  const request = aggregator(() => recoveryRequest(round, masked.map((m) => m.member)));
  const responses: RecoveryResponse[] = [];
  for (const [p, s] of states) {
    const r = member(p, () => answerRecovery(s, request));
    responses.push(r.response); send(p, responseBytes(r.response));
  }
  const sum = aggregator(() => unmask(round, request, masked, responses));
  const t = performance.now();
  const floats = dequantize(sum, QMAX);
  const decMs = performance.now() - t;
  let err = 0;
  for (let i = 0; i < L; i++) err = Math.max(err, Math.abs(floats[i]! - exact[i]!));
  const perM = 1e6 / L;
  const bpv = median([...up.values()]) / L;
  const r = (x: number, d: number): number => Number(x.toFixed(d));
  return {
    scheme: `SecAgg pairwise masking, ${n} members, full graph, threshold ${threshold}, 32-bit ring, 16-bit fixed point (no key anywhere)`,
    bytesPerValue: r(bpv, 3),
    ratioToFloat32: r(bpv / 4, 3),
    encryptMsPerMillion: r(median([...memberMs.values()]) * perM, 1),
    aggregateMsPerUpdatePerMillion: r((aggMs / n) * perM, 1),
    decryptMsPerMillion: r(decMs * perM, 1),
    maxAbsError: Number(err.toPrecision(4)),
    collusionThreshold: threshold,
    dropoutTolerance: n - threshold,
  };
}
