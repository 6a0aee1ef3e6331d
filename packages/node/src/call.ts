// Requests to the aggregator: every call retries while the aggregator is unreachable (restarting, network
// blip), with a bounded budget: a consortium that is gone for good ends the node with a clear error.
import type { z } from 'zod';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import type { Logger, NodeHost } from './types.ts';
import { sleep } from './util.ts';

export interface CallOptions {
  body?: Uint8Array;
  maxBodyBytes?: number;
  timeoutMs?: number;
}

/** One request to the aggregator (retried while it is unreachable). */
export type AggregatorCall = <Res>(name: string, header: unknown, response: z.ZodType<Res>, opts?: CallOptions) => Promise<{ header: Res; body?: Uint8Array }>;

export interface AggregatorLink {
  call: AggregatorCall;
  /** From the first join on, a refused handshake (WIRE_NOT_MEMBER) means "restarting", and is retried. */
  markJoined(): void;
  /**
   * Runs `check` (the member's ledger sync) before the next request that follows a spell of unreachability:
   * a restarted aggregator is exactly where a rolled-back or rewritten log would show up, and the member must
   * see it before it hands that aggregator anything, not when the next round closes. Requests named in
   * `exempt` (the sync's own) never trigger it.
   */
  checkAfterReconnect(check: () => Promise<void>, exempt: readonly string[]): void;
}

const RPC_TIMEOUT_MS = 120_000;
/** Quick retries of WIRE_NOT_MEMBER before the first join (backoff 0.25 + 0.5 + 1 + 2 s), then it is final. */
export const NOT_MEMBER_RETRIES_BEFORE_JOIN = 4;
/** Wire errors worth retrying: the aggregator may be restarting. */
const TRANSIENT = new Set(['WIRE_TIMEOUT', 'WIRE_DIAL_FAILED', 'WIRE_STREAM_FAILED']);

export function linkToAggregator(opts: {
  host: NodeHost; aggregator: string; log: Logger; giveUpMs: number; signal: AbortSignal; stopped: () => boolean;
}): AggregatorLink {
  const { host, log, giveUpMs, signal } = opts;
  let joinedOnce = false;

  // A missing protocol: the aggregator is starting or restarting (it listens a moment before its
  // handlers are registered), also before our first join (a node may start first). A refused
  // handshake is retried only once joined: before that we cannot tell "restarting" from "does not
  // admit us", and a stranger or a wrong key must hear so at once (WIRE_NOT_MEMBER), not in 300 s.
  // Before the first join, a connection dropped right after the handshake is refused ... or an aggregator too busy
  // to finish the upgrade in time (50 members starting at once on 2 cores: the 50-node sim lost members this way).
  // The two look the same from here, so a few quick retries (about 3.5 s) come before the verdict.
  let notMemberBeforeJoin = 0;
  const isTransient = (err: unknown): err is FedtwinError =>
    isFedtwinError(err) && (TRANSIENT.has(err.code) || err.code === 'WIRE_UNSUPPORTED_PROTOCOL'
      || (err.code === 'WIRE_NOT_MEMBER' && (joinedOnce || ++notMemberBeforeJoin <= NOT_MEMBER_RETRIES_BEFORE_JOIN)));

  let reconnectCheck: { run: () => Promise<void>; exempt: ReadonlySet<string> } | undefined;
  let unverifiedReconnect = false;
  let checking: Promise<void> | undefined;

  const call: AggregatorCall = async <Res>(name: string, header: unknown, response: z.ZodType<Res>, o: CallOptions = {}) => {
    let firstFailure: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        if (unverifiedReconnect && reconnectCheck && !reconnectCheck.exempt.has(name)) {
          // One check at a time for every caller waiting on it; its own requests retry on their own; a fork
          // or a rollback throws from here.
          checking ??= reconnectCheck.run().finally(() => { checking = undefined; });
          await checking;
          unverifiedReconnect = false;
        }
        return await host.request<unknown, Res>(opts.aggregator, name, { header, body: o.body }, {
          response, maxBodyBytes: o.maxBodyBytes ?? 0, timeoutMs: o.timeoutMs ?? RPC_TIMEOUT_MS, signal,
        });
      } catch (err) {
        if (opts.stopped() || !isTransient(err)) throw err;
        if (reconnectCheck) unverifiedReconnect = true;
        firstFailure ??= Date.now();
        if (Date.now() - firstFailure > giveUpMs) {
          throw new FedtwinError('NODE_AGGREGATOR_UNREACHABLE', `aggregator unreachable for ${Math.round(giveUpMs / 1000)} s (last error ${err.code}: ${err.message})`, { hint: 'check that the aggregator runs and that aggregator.address is right', cause: err });
        }
        log.warn({ event: 'aggregator-unreachable', code: err.code, attempt, protocol: name }, `aggregator unreachable (${err.code}); retrying`);
        await sleep(Math.min(5000, 250 * 2 ** Math.min(attempt, 5)), signal);
      }
    }
  };
  return {
    call,
    markJoined: () => { joinedOnce = true; },
    checkAfterReconnect: (run, exempt) => { reconnectCheck = { run, exempt: new Set(exempt) }; },
  };
}
