import { afterEach, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { createWireHost, generateIdentity, loadIdentity, peerIdOf } from '@fedtwin/wire';
import { JoinResponse, KeyPublishAck } from '@fedtwin/protocol';
import { createConsortium, type Consortium } from './helpers/consortium.ts';

/** Resident set of a process in MB, from /proc (Linux). */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

// Attacks on the real aggregator process, from a member that is not the key holder and from a stranger
// with nothing but TCP.
describe('resource limits of the aggregator', () => {
  let c: Consortium | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await c?.cleanup(); c = undefined;
  });

  it('10 key-publish streams of 60 MiB from a member that is not the key holder are refused before their bodies (RSS < +50 MB)', async () => {
    const attacker = await generateIdentity();
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60, extraMembers: [peerIdOf(attacker)] });
    const agg = await c.startAggregator();
    const pid = agg.daemon.child.pid!;
    const host = await createWireHost({ privateKey: attacker, listen: [], allow: [c.aggregatorId] });
    try {
      await host.request(agg.address, 'join', { header: { nodeVersion: process.version, backend: 'none' } }, { response: JoinResponse, maxBodyBytes: 0 });
      await new Promise((r) => setTimeout(r, 500));
      const before = await rssMb(pid);
      let peak = before;
      const sampling = setInterval(() => { rssMb(pid).then((m) => { peak = Math.max(peak, m); }, () => undefined); }, 25);
      const body = new Uint8Array(60 * 1024 * 1024).fill(0x7b);
      const outcomes = await Promise.all(Array.from({ length: 10 }, () =>
        host.request(agg.address, 'key-publish', { header: { keyId: 'k'.repeat(16), epoch: 0, boxes: 1 }, body }, { response: KeyPublishAck, maxBodyBytes: 0, timeoutMs: 10_000 })
          .then(() => 'accepted', (err: { code?: string }) => err.code ?? 'error')));
      await new Promise((r) => setTimeout(r, 1000));
      clearInterval(sampling);
      peak = Math.max(peak, await rssMb(pid));
      console.log(`aggregator RSS before ${before.toFixed(0)} MB, peak during 10 × 60 MiB key-publish streams ${peak.toFixed(0)} MB (+${(peak - before).toFixed(0)} MB); outcomes ${[...new Set(outcomes)].join(', ')}`);
      expect(outcomes.includes('accepted')).toBe(false);
      expect(outcomes.filter((o) => o === 'AGG_NOT_KEY_HOLDER').length).toBeGreaterThanOrEqual(1);
      expect(peak - before).toBeLessThan(50);
      expect(agg.daemon.child.exitCode).toBe(null);
    } finally {
      await host.stop();
    }
  }, 120_000);

  it('256 idle TCP sockets from a stranger do not stop a member from joining within 5 s', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 });
    const agg = await c.startAggregator();
    const m = /\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(agg.address)!;
    await Promise.all(Array.from({ length: 256 }, () => new Promise<void>((resolve) => {
      const s = connect({ host: m[1]!, port: Number(m[2]) }, () => resolve());
      s.on('error', () => resolve());
      sockets.push(s);
    })));
    // The member restarts: a new process-equivalent host with the member's key dials and joins.
    const host = await createWireHost({ privateKey: await loadIdentity(`${c.dir}/node0.key`), listen: [], allow: [c.aggregatorId] });
    try {
      const t0 = performance.now();
      await host.request(agg.address, 'join', { header: { nodeVersion: process.version, backend: 'none' } }, { response: JoinResponse, maxBodyBytes: 0, timeoutMs: 10_000 });
      const ms = performance.now() - t0;
      console.log(`member joined in ${ms.toFixed(0)} ms with 256 idle sockets open to the aggregator`);
      expect(ms).toBeLessThan(5000);
    } finally {
      await host.stop();
    }
  }, 60_000);
});
