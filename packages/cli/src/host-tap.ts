import type { HandlerSpec, WireHost } from '@fedtwin/wire';

/** One request the daemon answered: who, on which protocol, what it asked and what it was told. */
export interface Served {
  protocol: string;
  peer: string;
  header: unknown;
  response: unknown;
  at: number;
}

/**
 * The host the aggregator registers its handlers on, with every answered request reported to `onServed` (after
 * the handler returned, before the answer is written). The daemon learns from it what the aggregator does not
 * persist — who joined, when a member was last seen, who has fetched the final aggregate — without a change to
 * the aggregator. A failing `onServed` is swallowed: observing must never fail a request.
 */
export function tapHost<H extends Pick<WireHost, 'peerId' | 'handle'>>(host: H, onServed: (s: Served) => void, onRefused?: (protocol: string, code: string) => void): Pick<WireHost, 'peerId' | 'handle'> {
  return {
    peerId: host.peerId,
    handle<Req, Res>(name: string, spec: HandlerSpec<Req, Res>) {
      return host.handle<Req, Res>(name, {
        ...spec,
        handler: async (ctx) => {
          let res: Awaited<ReturnType<typeof spec.handler>>;
          try {
            res = await spec.handler(ctx);
          } catch (err) {
            // A typed refusal (a bad signature, a stale round): counted by the metrics, then answered as before.
            const code = (err as { code?: unknown } | null)?.code;
            if (typeof code === 'string') {
              try {
                onRefused?.(name, code);
              } catch {
                // a view of the traffic; never the traffic's problem
              }
            }
            throw err;
          }
          try {
            onServed({ protocol: name, peer: ctx.peer, header: ctx.header, response: res.header, at: Date.now() });
          } catch {
            // a view of the traffic; never the traffic's problem
          }
          return res;
        },
      });
    },
  };
}
