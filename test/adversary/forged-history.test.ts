// A malicious aggregator rewriting what members see of the log, on the wire, against real member processes:
// a same-size fork, a contribution in a member's name signed by the aggregator, cosignature lines it forged,
// and a retired HE key replayed for a new round. Each must be refused with a named code, evidence kept
// where the aggregator's own signature proves it, and nothing applied or encrypted under its control.
import { afterEach, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createWireHost, generateIdentity, loadIdentity, type WireHost } from '@fedtwin/wire';
import { createAggregator, type Aggregator, type AggregatorInit } from '@fedtwin/aggregator';
import { manifestHash, maxWeights, memberIds, privacyPolicyOf, secureAggregationOf } from '@fedtwin/consortium';
import {
  consistencyProof, cosignatureLine, createCosignatureSigner, createEntry, createEntrySigner, createNoteSigner, hashLeaf, parseCheckpoint, rootFromLeafHashes, signCheckpoint,
} from '@fedtwin/ledger';
import type { TableSchema } from '@fedtwin/models';
import { waitFor, type Daemon, type LogEvent } from '@fedtwin/sim';
import { createConsortium, runCli, type Consortium } from '../helpers/consortium.ts';

const silent = { info() {}, warn() {}, error() {} };
type Reply = { header: unknown; body?: Uint8Array | undefined };
type ReplyTamper = (protocol: string, peer: string, reply: Reply, request: Reply) => Reply | Promise<Reply>;

/** The real aggregator code behind a host whose replies the test rewrites (a patched operator build). */
async function tamperedAggregator(c: Consortium, replies: ReplyTamper): Promise<{ agg: Aggregator; host: WireHost; address: string; key: Awaited<ReturnType<typeof loadIdentity>> }> {
  const key = await loadIdentity(join(c.dir, 'agg.key'));
  const schema = JSON.parse(await readFile(join(c.dir, 'schema.json'), 'utf8')) as TableSchema;
  const m = c.manifest;
  const host = await createWireHost({ privateKey: key, allow: memberIds(m) });
  const tampering: AggregatorInit['host'] = {
    peerId: host.peerId,
    handle: (name, spec) => host.handle(name, {
      ...spec,
      handler: async (hctx) => (await replies(name, hctx.peer, await spec.handler(hctx), { header: hctx.header, body: hctx.body })) as Awaited<ReturnType<typeof spec.handler>>,
    }),
  };
  const { sharedModelSize } = await import('../../packages/cli/src/commands/daemons.ts');
  const agg = await createAggregator({
    host: tampering, dataDir: join(c.dir, 'evil-agg', 'state'), consortium: m.consortium, members: memberIds(m), schema, model: m.model,
    modelValues: await sharedModelSize(schema, m.model), strategy: m.strategy, training: m.training,
    rounds: { totalRounds: m.rounds.total, quorum: m.rounds.quorum, minParticipants: m.rounds.minParticipants, deadlineSeconds: m.rounds.deadlineSeconds },
    privacy: privacyPolicyOf(m), maxWeight: maxWeights(m), manifest: { manifest: m, hash: manifestHash(m) },
    secureAggregation: secureAggregationOf(m), logger: silent, ledger: { dir: join(c.dir, 'evil-agg', 'ledger'), identity: key },
  });
  return { agg, host, address: host.addrs()[0]!, key };
}

const ORIGIN = 'fedtwin/test';
const decodeSync = (body?: Uint8Array) => (body && body.length ? JSON.parse(new TextDecoder().decode(body)) as { entries: string[]; consistencyProof: string[] } : { entries: [], consistencyProof: [] });

describe('a malicious aggregator rewriting the log members see', () => {
  let c: Consortium | undefined;
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await c?.cleanup(); c = undefined;
  });

  async function run(tamper: (key: Awaited<ReturnType<typeof loadIdentity>>) => ReplyTamper, opts: { rounds?: number; expectExit?: boolean } = {}) {
    c = await createConsortium({ nodes: 2, rounds: opts.rounds ?? 3, quorum: 2, minParticipants: 2, deadlineSeconds: 60, privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 } });
    let key: Awaited<ReturnType<typeof loadIdentity>> | undefined;
    let inner: ReplyTamper | undefined;
    const evil = await tamperedAggregator(c, (p, peer, reply, req) => (inner ? inner(p, peer, reply, req) : reply));
    key = evil.key;
    inner = tamper(key);
    stops.push(async () => { await evil.agg.stop(); await evil.host.stop(); });
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i, { aggregator: { address: evil.address } });
    const nodes = [0, 1].map((i) => c!.startNode(i));
    return { nodes, evil };
  }

  async function exits(nodes: Array<{ daemon: Daemon; events: LogEvent[] }>) {
    return Promise.race([
      Promise.all(nodes.map((n) => n.daemon.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`members did not stop: ${nodes.map((n) => n.events.slice(-4).map((e) => `${e.event} ${e.msg}`).join(' / ')).join(' | ')}`)), 120_000)),
    ]);
  }

  it('a same-size forked ledger (another root, signed, for the size a member holds) is LEDGER_INCONSISTENT with both checkpoints kept', async () => {
    // Every sync after a member's first: each member makes one, from its first checkpoint, to read round 1's aggregate
    // entry before it applies it. (Waiting for an aggregate fetch instead let a member that had synced just before it
    // see the fork only when the next round closed, at the 60 s deadline.)
    const { nodes } = await run((key) => (protocol, _peer, reply, request) => {
      if (protocol !== 'ledger' || (request.header as { fromSize: number }).fromSize === 0) return reply;
      // The member's own size, another tree: what an operator who edited history and re-signed would serve.
      const size = (request.header as { fromSize: number }).fromSize;
      const note = signCheckpoint({ origin: ORIGIN, size, rootHash: randomBytes(32) }, createNoteSigner(ORIGIN, key));
      return { header: { size, checkpoint: note, origin: ORIGIN } };
    });
    const codes = await exits(nodes);
    for (const [i, n] of nodes.entries()) {
      expect(codes[i], n.daemon.stderrTail()).toBe(1);
      expect(n.daemon.stderrTail()).toMatch(/LEDGER_INCONSISTENT/);
      const evidence = await readdir(join(c!.dir, `node${i}-data`, 'evidence'));
      expect(evidence.some((f) => f.endsWith('fork-served.note')) && evidence.some((f) => f.endsWith('fork-cosigned.note')), evidence.join(', ')).toBe(true);
    }
  }, 150_000);

  it('a contribution entry in a member\'s name signed by the aggregator (ε = 0.001) is refused by every replica (LEDGER_ENTRY_INVALID), evidence kept', async () => {
    const seen: Uint8Array[] = []; // every entry the honest log has served, by index
    const { nodes } = await run((key) => async (protocol, _peer, reply, request) => {
      if (protocol !== 'ledger') return reply;
      const from = (request.header as { fromSize: number }).fromSize;
      const honest = decodeSync(reply.body);
      honest.entries.forEach((e, k) => { seen[from + k] = Uint8Array.from(Buffer.from(e, 'base64')); });
      const header = reply.header as { size: number; checkpoint: string; origin: string };
      // From each member's second sync on (see the same-size fork above), once the honest log is known up to its size.
      if (from === 0 || seen.length < header.size) return reply;
      // Append one forged entry after the honest log: a contribution naming member 0, signed by the aggregator.
      const forged = await createEntry({
        type: 'contribution', v: 1, round: 1, node: c!.nodeIds[0]!, ciphertextHash: '00'.repeat(32), ciphertextSize: 1,
        epsilon: 0.001, delta: 1e-9, epsilonTotal: 0.001, deltaTotal: 1e-9, keyId: 'plaintext', time: Date.now(),
      } as Parameters<typeof createEntry>[0], createEntrySigner(key, ORIGIN));
      const all = [...seen.slice(0, header.size), forged.bytes];
      const leaves = all.map((b) => hashLeaf(b));
      const size = all.length;
      const note = signCheckpoint({ origin: ORIGIN, size, rootHash: rootFromLeafHashes(leaves) }, createNoteSigner(ORIGIN, key));
      const proof = from > 0 && from < size ? consistencyProof(leaves, from, size) : [];
      const body = new TextEncoder().encode(JSON.stringify({
        entries: all.slice(from).map((b) => Buffer.from(b).toString('base64')), consistencyProof: proof.map((h) => Buffer.from(h).toString('hex')),
      }));
      return { header: { size, checkpoint: note, origin: ORIGIN }, body };
    });
    const codes = await exits(nodes);
    for (const [i, n] of nodes.entries()) {
      const stderr = n.daemon.stderrTail();
      expect(codes[i], stderr).toBe(1);
      expect(stderr).toMatch(/LEDGER_ENTRY_INVALID/);
      expect(stderr).toMatch(/must be signed by the node it names|signed by .* names/);
      const evidence = await readdir(join(c!.dir, `node${i}-data`, 'evidence'));
      expect(evidence.some((f) => f.endsWith('.json')), evidence.join(', ')).toBe(true);
    }
  }, 150_000);

  it('cosignature lines the aggregator forged in a member\'s name are not counted: the other member never applies on them', async () => {
    const stranger = await generateIdentity();
    const { nodes } = await run(() => (protocol, peer, reply) => {
      if (protocol !== 'witnesses' || peer !== c!.nodeIds[0]) return reply;
      // To member 0: member 1's real lines removed, a line "by member 1" signed with another key added.
      const notes = (reply.header as { notes: string[] }).notes.map((note) => {
        const p = parseCheckpoint(note);
        const kept = p.signatures.filter((s) => s.name !== c!.nodeIds[1]).map((s) => s.line);
        // A well-formed cosignature/v1 line under member 1's name, made with a key that is not member 1's.
        const forgedLine = cosignatureLine(note, createCosignatureSigner(c!.nodeIds[1]!, stranger)).trimEnd();
        return `${p.text}\n${[...kept, forgedLine].join('\n')}\n`;
      });
      return { header: { notes } };
    }, { rounds: 2 });
    await waitFor('member 0 to see the forged line', async () => (nodes[0]!.events.some((e) => e.event === 'witness-forged-cosignature') ? true : undefined), 120_000);
    await new Promise((r) => setTimeout(r, 5_000));
    expect(nodes[0]!.events.some((e) => e.event === 'global-updated'), 'member 0 applied an aggregate on a forged cosignature').toBe(false);
    const warn = nodes[0]!.events.find((e) => e.event === 'witness-forged-cosignature') as { name?: string } | undefined;
    expect(warn?.name).toBe(c!.nodeIds[1]);
  }, 150_000);
});

describe('a malicious aggregator replaying a retired HE key', () => {
  let c: Consortium | undefined;
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await c?.cleanup(); c = undefined;
  });

  it('after a rotation, a round naming the retired key is refused (NODE_KEY_REPLAYED) and nothing is encrypted under it', async () => {
    c = await createConsortium({ nodes: 2, rounds: 12, quorum: 2, minParticipants: 2, deadlineSeconds: 60, epochs: 20 });
    let retired: string | undefined;
    let current: string | undefined;
    const afterReplay: string[] = [];
    const evil = await tamperedAggregator(c, (protocol, peer, reply, request) => {
      // an update encrypted under the retired key would be one the aggregator could open with an old secret
      if (protocol === 'update' && retired && JSON.stringify(request.header).includes(retired)) afterReplay.push(peer);
      if (protocol !== 'task' || !retired) return reply;
      const h = reply.header as { status: string; keyId?: string };
      if (h.status !== 'open' || h.keyId !== current) return reply;
      return { ...reply, header: { ...h, keyId: retired } };
    });
    stops.push(async () => { await evil.agg.stop(); await evil.host.stop(); });
    for (let i = 0; i < 2; i++) await c.writeNodeConfig(i, { aggregator: { address: evil.address } });
    const nodes = [0, 1].map((i) => c!.startNode(i));
    await waitFor('round 1 aggregated', async () => (nodes.every((n) => n.events.some((e) => e.event === 'global-updated')) ? true : undefined), 120_000);
    const r = await runCli(['keys', 'rotate', '--config', c.nodeConfig(0), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rotated = JSON.parse(r.stdout.trim()) as { keyId: string; previousKeyId: string };
    await waitFor('both members to accept the new key', async () => (nodes.every((n) => n.events.some((e) => e.event === 'he-key-rotated' && e.keyId === rotated.keyId)) ? true : undefined), 120_000);
    current = rotated.keyId;
    retired = rotated.previousKeyId;
    const codes = await Promise.race([
      Promise.all(nodes.map((n) => n.daemon.exited)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('members did not stop')), 120_000)),
    ]);
    for (const [i, n] of nodes.entries()) {
      expect(codes[i], n.daemon.stderrTail()).toBe(1);
      expect(n.daemon.stderrTail()).toMatch(/NODE_KEY_REPLAYED/);
    }
    expect(afterReplay, 'an update under the retired key reached the aggregator').toEqual([]);
  }, 240_000);
});
