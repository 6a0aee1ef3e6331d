// A whole round in memory, with members dropping out at chosen steps.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { createEntrySigner } from '@fedtwin/ledger';
import { isFedtwinError } from '@fedtwin/errors';
import {
  advertise, answerRecovery, collectAdvertisements, maskInput, recoveryRequest, routeShares, shareKeys, unmask,
  type AggregatorRound, type IdentitySigner, type KeyAdvertisement, type MaskedInput, type MemberState,
  type RecoveryRequest, type RecoveryResponse, type SecaggConfig, type ShareBundle,
} from '../src/index.ts';

export async function signers(n: number): Promise<IdentitySigner[]> {
  const out: IdentitySigner[] = [];
  for (let i = 0; i < n; i++) out.push(createEntrySigner(await generateKeyPair('Ed25519'), 'fedtwin/test'));
  return out;
}

/** The FedtwinError code `fn` throws, or a marker for anything else / no throw. */
export function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isFedtwinError(e) ? e.code : `non-fedtwin: ${String(e)}`;
  }
  return 'no error';
}

/** Step after which a member stops answering: 0 never advertises … 4 never answers the recovery request. */
export type DropStep = 0 | 1 | 2 | 3 | 4 | undefined;

export interface RoundRun {
  cfg: SecaggConfig;
  states: Map<string, MemberState>;
  ads: KeyAdvertisement[];
  bundles: ShareBundle[];
  round: AggregatorRound;
  masked: MaskedInput[];
  request: RecoveryRequest;
  responses: RecoveryResponse[];
  inputs: Map<string, Int32Array>;
}

export function randomInputs(members: readonly string[], length: number, bound: number, rand: () => number): Map<string, Int32Array> {
  return new Map(members.map((m) => [m, Int32Array.from({ length }, () => Math.round((2 * rand() - 1) * bound))]));
}

/**
 * Runs the round's phases up to the recovery answers. `drop[m] = k` means member m does steps < k only:
 * 1 = advertised, then gone; 2 = shared, then gone; 3 = sent its masked input, then gone.
 */
export function runRound(cfg: SecaggConfig, ids: readonly IdentitySigner[], inputs: Map<string, Int32Array>, drop: Record<string, DropStep> = {}): RoundRun {
  const alive = (m: string, step: number): boolean => drop[m] === undefined || drop[m]! > step;
  const states = new Map<string, MemberState>();
  const ads: KeyAdvertisement[] = [];
  for (const id of ids) {
    if (!alive(id.peerId, 0)) continue;
    const r = advertise(cfg, id);
    states.set(id.peerId, r.state);
    ads.push(r.ad);
  }
  const { accepted } = collectAdvertisements(cfg, ads);
  const bundles: ShareBundle[] = [];
  for (const [m, s] of states) {
    if (!alive(m, 1)) continue;
    const r = shareKeys(s, accepted);
    states.set(m, r.state);
    bundles.push(r.bundle);
  }
  const { round, inboxes } = routeShares(cfg, accepted, bundles);
  const masked: MaskedInput[] = [];
  for (const [m, s] of states) {
    if (!alive(m, 2) || s.phase !== 'shared') continue;
    const r = maskInput(s, inboxes.get(m) ?? [], inputs.get(m)!);
    states.set(m, r.state);
    masked.push(r.masked);
  }
  const request = recoveryRequest(round, masked.map((x) => x.member));
  const responses: RecoveryResponse[] = [];
  for (const [m, s] of states) {
    if (!alive(m, 3) || s.phase !== 'sent') continue;
    const r = answerRecovery(s, request);
    states.set(m, r.state);
    responses.push(r.response);
  }
  return { cfg, states, ads: accepted, bundles, round, masked, request, responses, inputs };
}

export function finish(run: RoundRun): Int32Array {
  return unmask(run.round, run.request, run.masked, run.responses);
}

export function plainSum(inputs: Map<string, Int32Array>, members: readonly string[], length: number): Int32Array {
  const s = new Int32Array(length);
  for (const m of members) {
    const x = inputs.get(m)!;
    for (let i = 0; i < length; i++) s[i] += x[i];
  }
  return s;
}
