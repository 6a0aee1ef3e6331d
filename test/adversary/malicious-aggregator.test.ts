import { afterEach, describe, expect, it } from 'vitest';
import { access, readFile } from 'node:fs/promises';
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
async function maliciousAggregator(c: Consortium, tamper: (honest: { manifest: Manifest; secureAggregation: SecureAggregation }) => { manifest?: Manifest; secureAggregation?: SecureAggregation; privacy?: AggregatorInit['privacy'] }): Promise<{ agg: Aggregator; host: WireHost; address: string }> {
  const key = await loadIdentity(join(c.dir, 'agg.key'));
  const schema = JSON.parse(await readFile(join(c.dir, 'schema.json'), 'utf8')) as TableSchema;
  const honest = { manifest: c.manifest, secureAggregation: secureAggregationOf(c.manifest) };
  const t = tamper(honest);
  const m = t.manifest ?? c.manifest;
  const members = memberIds(m);
  const host = await createWireHost({ privateKey: key, allow: members });
  const agg = await createAggregator({
    host, dataDir: join(c.dir, 'evil-agg', 'state'), consortium: m.consortium, members, schema, model: m.model,
    modelValues: 3000, strategy: m.strategy, training: m.training,
    rounds: { totalRounds: m.rounds.total, quorum: m.rounds.quorum, minParticipants: m.rounds.minParticipants, deadlineSeconds: m.rounds.deadlineSeconds },
    privacy: t.privacy ?? privacyPolicyOf(m), maxWeight: maxWeights(m), manifest: { manifest: m, hash: manifestHash(m) },
    secureAggregation: t.secureAggregation ?? secureAggregationOf(m), logger: silent,
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
    c = await createConsortium({ nodes: 1, rounds: 2, quorum: 1, minParticipants: 1, deadlineSeconds: 60 });
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
