import { afterEach, describe, expect, it } from 'vitest';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createWireHost, loadIdentity, type WireHost } from '@fedtwin/wire';
import { createAggregator, type Aggregator, type AggregatorInit } from '@fedtwin/aggregator';
import { manifestHash, maxWeights, memberIds, parseManifest, privacyPolicyOf, secureAggregationOf, type Manifest } from '@fedtwin/consortium';
import type { TableSchema } from '@fedtwin/models';
import type { SecureAggregation } from '@fedtwin/protocol';
import { createConsortium, type Consortium } from '../helpers/consortium.ts';

const silent = { info() {}, warn() {}, error() {} };

/**
 * A scripted malicious aggregator: the real aggregator code, holding the real aggregator's key (so Noise
 * lets members in), started with a tampered view of the consortium. Each test checks that a real member
 * process refuses at join — exit 3, CONSORTIUM_MISMATCH naming the field and both values — and that nothing
 * (no update, no key material) reached the aggregator.
 */
/** Rewrites replies of one protocol as they leave the real aggregator's handlers (what a malicious operator's patched build would send). */
type ReplyTamper = (protocol: string, peer: string, reply: { header: unknown; body?: Uint8Array | undefined }, request: { header: unknown; body?: Uint8Array | undefined }) => { header: unknown; body?: Uint8Array | undefined };

async function maliciousAggregator(c: Consortium, tamper: (honest: { manifest: Manifest; secureAggregation: SecureAggregation }) => { manifest?: Manifest; secureAggregation?: SecureAggregation; privacy?: AggregatorInit['privacy'] }, replies?: ReplyTamper): Promise<{ agg: Aggregator; host: WireHost; address: string }> {
  const key = await loadIdentity(join(c.dir, 'agg.key'));
  const schema = JSON.parse(await readFile(join(c.dir, 'schema.json'), 'utf8')) as TableSchema;
  const honest = { manifest: c.manifest, secureAggregation: secureAggregationOf(c.manifest) };
  const t = tamper(honest);
  const m = t.manifest ?? c.manifest;
  const members = memberIds(m);
  const host = await createWireHost({ privateKey: key, allow: members });
  // The real handlers, behind a host that lets the test rewrite what they answer.
  const tampering: AggregatorInit['host'] = {
    peerId: host.peerId,
    handle: (name, spec) => host.handle(name, replies ? {
      ...spec,
      handler: async (hctx) => replies(name, hctx.peer, await spec.handler(hctx), { header: hctx.header, body: hctx.body }) as Awaited<ReturnType<typeof spec.handler>>,
    } : spec),
  };
  const { sharedModelSize } = await import('../../packages/cli/src/commands/daemons.ts');
  const modelValues = await sharedModelSize(schema, m.model);
  const agg = await createAggregator({
    host: tampering, dataDir: join(c.dir, 'evil-agg', 'state'), consortium: m.consortium, members, schema, model: m.model,
    modelValues, strategy: m.strategy, training: m.training,
    rounds: { totalRounds: m.rounds.total, quorum: m.rounds.quorum, minParticipants: m.rounds.minParticipants, deadlineSeconds: m.rounds.deadlineSeconds },
    privacy: t.privacy ?? privacyPolicyOf(m), maxWeight: maxWeights(m), manifest: { manifest: m, hash: manifestHash(m) },
    secureAggregation: t.secureAggregation ?? secureAggregationOf(m), logger: silent,
    ledger: { dir: join(c.dir, 'evil-agg', 'ledger'), identity: key },
  });
  return { agg, host, address: host.addrs()[0]! };
}

describe('a malicious aggregator', () => {
  let c: Consortium | undefined;
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await c?.cleanup(); c = undefined;
  });

  const attacks: Array<{ name: string; field: RegExp; tamper: Parameters<typeof maliciousAggregator>[1] }> = [
    { name: 'announces plaintext aggregation', field: /secureAggregation\.scheme/, tamper: () => ({ secureAggregation: { scheme: 'plaintext' } }) },
    { name: 'announces DP off', field: /privacy\.mode/, tamper: () => ({ privacy: { mode: 'off', epsilon: 8, delta: 1e-5 } }) },
    {
      name: 'announces a manifest with another ε', field: /privacy\.epsilon/,
      tamper: ({ manifest }) => ({ manifest: parseManifest({ ...manifest, privacy: { ...manifest.privacy, epsilon: 50 } }) }),
    },
    {
      name: 'names itself key holder', field: /secureAggregation\.keyHolder/,
      tamper: ({ secureAggregation }) => ({ secureAggregation: { ...(secureAggregation as Extract<SecureAggregation, { scheme: 'bfv' }>), keyHolder: c!.aggregatorId } }),
    },
    {
      name: 'adds its own identity to the member list the key is sealed for', field: /secureAggregation\.members/,
      tamper: ({ secureAggregation }) => {
        const sa = secureAggregation as Extract<SecureAggregation, { scheme: 'bfv' }>;
        return { secureAggregation: { ...sa, members: [...sa.members, c!.aggregatorId] } };
      },
    },
  ];

  for (const a of attacks) {
    it(`${a.name}: the member refuses to join (exit 3, CONSORTIUM_MISMATCH naming the field), nothing leaves it`, async () => {
      c = await createConsortium({ nodes: 2, rounds: 1, quorum: 2, minParticipants: 2, deadlineSeconds: 60, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
      const evil = await maliciousAggregator(c, a.tamper);
      stops.push(async () => { await evil.agg.stop(); await evil.host.stop(); });
      await c.writeNodeConfig(0, { aggregator: { address: evil.address } });
      const node = c.startNode(0);
      const code = await node.daemon.exited;
      const stderr = node.daemon.stderrTail();
      expect(code, stderr).toBe(3);
      expect(stderr).toMatch(/CONSORTIUM_MISMATCH/);
      expect(stderr).toMatch(a.field);
      // Nothing under the attacker's control: no update, no published key, and the member made no HE key.
      expect((await evil.agg.rounds()).flatMap((r) => r.contributions)).toHaveLength(0);
      expect(await evil.agg.keyId()).toBeUndefined();
      expect(await access(join(c.dir, 'node0-data', 'he-secret.key')).then(() => true, () => false)).toBe(false);
    }, 60_000);
  }
});

describe('a member\'s own privacy floor', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('refuses a manifest weaker than privacy.require before contacting anyone (exit 3)', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
    await c.writeNodeConfig(0, { aggregator: { address: '/ip4/127.0.0.1/tcp/9' }, privacy: { require: { mode: 'record', maxEpsilon: 4 } } });
    const r = c.startNode(0);
    expect(await r.daemon.exited).toBe(3);
    expect(r.daemon.stderrTail()).toMatch(/CONSORTIUM_PRIVACY_TOO_WEAK.*ε = 8, required ≤ 4/);
  }, 60_000);

  it('joins a consortium without DP only when its own config says privacy: { mode: off }, and warns every round', async () => {
    // A manifest without DP says so explicitly (DP is on by default: issue 13 item 9).
    c = await createConsortium({ nodes: 1, rounds: 2, quorum: 1, minParticipants: 1, deadlineSeconds: 60, privacy: { mode: 'off' } });
    expect(c.manifest.privacy.mode).toBe('off');
    // Without the explicit opt-in: refused.
    await c.writeNodeConfig(0, { aggregator: { address: '/ip4/127.0.0.1/tcp/9' }, privacy: undefined });
    const refused = c.startNode(0);
    expect(await refused.daemon.exited).toBe(3);
    expect(refused.daemon.stderrTail()).toMatch(/CONSORTIUM_PRIVACY_TOO_WEAK.*mode off/);
    // With it (what the helper writes by default for a manifest with mode off): it runs and warns each round.
    await c.startAggregator();
    await c.writeNodeConfig(0);
    const ok = c.startNode(0);
    expect(await ok.daemon.exited, ok.daemon.stderrTail()).toBe(0);
    expect(ok.events.filter((e) => e.event === 'privacy-off').map((e) => e.round)).toEqual([1, 2]);
  }, 90_000);
});

describe('a malicious aggregator publishing something other than the sum', () => {
  let c: Consortium | undefined;
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await c?.cleanup(); c = undefined;
  });

  const cases: Array<{ name: string; reason: RegExp; rewrite: (agg: { header: Record<string, unknown>; body?: Uint8Array }, updates: Map<string, Uint8Array>) => { header: unknown; body?: Uint8Array } }> = [
    {
      // The sum of everyone, on the header; one member's own update, in the body.
      name: 'one member\'s update published as the sum', reason: /no aggregate entry of round 1 in the verified ledger names this sum/,
      rewrite: (agg, updates) => ({ header: agg.header, body: [...updates.values()][0]! }),
    },
    {
      name: 'a sum with fewer than minParticipants', reason: /sums 1 contribution\(s\), the manifest's minParticipants is 2/,
      rewrite: (agg, updates) => ({ header: { ...agg.header, participants: [[...updates.keys()][0]!] }, body: [...updates.values()][0]! }),
    },
  ];

  for (const k of cases) {
    it(`${k.name}: every member refuses it (NODE_AGGREGATE_REFUSED), applies nothing and keeps the evidence`, async () => {
      c = await createConsortium({ nodes: 2, rounds: 2, quorum: 2, minParticipants: 2, deadlineSeconds: 60, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
      const updates = new Map<string, Uint8Array>();
      const evil = await maliciousAggregator(c, () => ({}), (protocol, peer, reply, request) => {
        if (protocol === 'update' && request.body) updates.set(peer, request.body);
        if (protocol === 'aggregate' && updates.size > 0) return k.rewrite(reply as { header: Record<string, unknown>; body?: Uint8Array }, updates);
        return reply;
      });
      stops.push(async () => { await evil.agg.stop(); await evil.host.stop(); });
      for (let i = 0; i < 2; i++) await c.writeNodeConfig(i, { aggregator: { address: evil.address } });
      const nodes = [0, 1].map((i) => c!.startNode(i));
      const codes = await Promise.race([
        Promise.all(nodes.map((n) => n.daemon.exited)),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`members did not stop: ${nodes.map((n) => n.events.slice(-5).map((e) => `${e.event} ${e.msg}`).join(' / ')).join(' | ')}`)), 90_000)),
      ]);
      for (const [i, n] of nodes.entries()) {
        const stderr = n.daemon.stderrTail();
        expect(codes[i], stderr).toBe(1);
        expect(stderr).toMatch(/NODE_AGGREGATE_REFUSED/);
        expect(stderr).toMatch(k.reason);
        expect(n.events.some((e) => e.event === 'global-updated')).toBe(false);
        const evidence = (await readdir(join(c.dir, `node${i}-data`, 'evidence'))).filter((f) => f.includes('aggregate-1'));
        expect(evidence.sort()).toEqual([expect.stringMatching(/aggregate-1\.bin$/), expect.stringMatching(/aggregate-1\.json$/)]);
      }
    }, 120_000);
  }
});

describe('a malicious aggregator serving another history', () => {
  let c: Consortium | undefined;
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await c?.cleanup(); c = undefined;
  });

  it('a rolled-back ledger (an older signed checkpoint) is refused: LEDGER_INCONSISTENT, both checkpoints kept as evidence', async () => {
    c = await createConsortium({ nodes: 2, rounds: 3, quorum: 2, minParticipants: 2, deadlineSeconds: 60, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
    // Remember the first ledger reply; once a member has fetched an aggregate, serve it that reply again (the operator
    // rolled the log back). Per member: a member still at the first checkpoint would only see a malformed sync.
    let first: { header: unknown; body?: Uint8Array | undefined } | undefined;
    const aggregated = new Set<string>();
    const evil = await maliciousAggregator(c, () => ({}), (protocol, peer, reply) => {
      if (protocol === 'aggregate') aggregated.add(peer);
      if (protocol !== 'ledger') return reply;
      first ??= reply;
      return aggregated.has(peer) ? first : reply;
    });
    stops.push(async () => { await evil.agg.stop(); await evil.host.stop(); });
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i, { aggregator: { address: evil.address } });
    const nodes = [0, 1].map((i) => c!.startNode(i));
    const codes = await Promise.race([
      Promise.all(nodes.map((n) => n.daemon.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('members did not stop')), 90_000)),
    ]);
    for (const [i, n] of nodes.entries()) {
      expect(codes[i], n.daemon.stderrTail()).toBe(1);
      expect(n.daemon.stderrTail()).toMatch(/LEDGER_INCONSISTENT/);
      const evidence = await readdir(join(c.dir, `node${i}-data`, 'evidence'));
      expect(evidence.some((f) => f.endsWith('fork-cosigned.note')) && evidence.some((f) => f.endsWith('fork-served.note')), evidence.join(', ')).toBe(true);
    }
  }, 120_000);
});
