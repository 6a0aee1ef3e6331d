// When --exit-when-finished may let the aggregator go (packages/cli/src/finish-watch.ts), on the sequence of
// answers a real member gets at the end: co-sign the final checkpoint, fetch the final aggregate, then poll
// `witnesses` until a quorum of members co-signed it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FinishWatch } from '../src/finish-watch.ts';
import type { Served } from '../src/host-tap.ts';

const note = (size: number) => `fedtwin/test\n${size}\nROOT=\n\n— sig\n`;
let t = 1000;
const at = () => (t += 10);
const cosign = (peer: string, size: number, count: number): Served => ({ protocol: 'cosign', peer, header: { note: note(size) }, response: { cosignatures: count }, at: at() });
const fetch = (peer: string, version: number): Served => ({ protocol: 'aggregate', peer, header: { version }, response: {}, at: at() });
const witnesses = (peer: string): Served => ({ protocol: 'witnesses', peer, header: { fromSize: 1 }, response: { notes: [] }, at: at() });

afterEach(() => { vi.useRealTimers(); });

describe('FinishWatch', () => {
  it('done once every active member fetched the final version and was answered `witnesses` after the quorum', async () => {
    const w = new FinishWatch({ witnessQuorum: 2, graceMs: 60_000 });
    w.served(fetch('A', 1)); // an earlier aggregate
    w.finished({ version: 2, ledgerSize: 20, active: ['A', 'B', 'C'] });
    w.served(cosign('A', 20, 1));
    w.served(fetch('A', 2));
    w.served(witnesses('A')); // before the quorum: A keeps polling
    w.served(cosign('B', 20, 2)); // quorum reached
    w.served(witnesses('A')); // A sees it and is done; it will not ask again
    w.served(fetch('B', 2));
    w.served(witnesses('B'));
    expect(w.waitingFor()).toEqual(['C']);
    w.served(cosign('C', 20, 3));
    w.served(fetch('C', 2));
    expect(w.waitingFor()).toEqual(['C']); // fetched, not yet told the quorum holds
    w.served(witnesses('C'));
    await expect(w.whenDone()).resolves.toEqual({ reason: 'all-fetched', waitingFor: [] });
  });

  it('a witnesses answer from before the quorum does not count; a cosign for an older checkpoint does not make the quorum', () => {
    const w = new FinishWatch({ witnessQuorum: 2, graceMs: 60_000 });
    w.finished({ version: 1, ledgerSize: 10, active: ['A', 'B'] });
    w.served(cosign('A', 8, 2)); // an older, smaller checkpoint
    w.served(fetch('A', 1));
    w.served(witnesses('A'));
    w.served(fetch('B', 1));
    w.served(witnesses('B'));
    expect(w.waitingFor()).toEqual(['A', 'B']);
    w.served(cosign('B', 10, 2));
    w.served(witnesses('B'));
    expect(w.waitingFor()).toEqual(['A']);
    w.stop();
  });

  it('excluded members are not awaited (only `active` ones); requests before finished() count', async () => {
    const w = new FinishWatch({ witnessQuorum: 1, graceMs: 60_000 });
    w.served(cosign('A', 5, 1));
    w.served(fetch('A', 3));
    w.served(witnesses('A'));
    w.finished({ version: 3, ledgerSize: 5, active: ['A'] });
    await expect(w.whenDone()).resolves.toMatchObject({ reason: 'all-fetched' });
  });

  it('the grace period ends the wait for a member that never asks, naming it', async () => {
    vi.useFakeTimers();
    const w = new FinishWatch({ witnessQuorum: 1, graceMs: 5_000 });
    w.finished({ version: 1, ledgerSize: 4, active: ['A', 'B'] });
    w.served(cosign('A', 4, 1));
    w.served(fetch('A', 1));
    w.served(witnesses('A'));
    let outcome: unknown;
    void w.whenDone().then((o) => { outcome = o; });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toEqual({ reason: 'grace', waitingFor: ['B'] });
  });

  it('witnessQuorum 0 (no ledger): fetching the final aggregate is enough', async () => {
    const w = new FinishWatch({ witnessQuorum: 0, graceMs: 60_000 });
    w.finished({ version: 2, ledgerSize: 0, active: ['A'] });
    w.served(fetch('A', 2));
    await expect(w.whenDone()).resolves.toMatchObject({ reason: 'all-fetched' });
  });
});
