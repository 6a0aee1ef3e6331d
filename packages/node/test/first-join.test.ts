import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { openLedger } from '@fedtwin/ledger';
import { createNode } from '../src/node.ts';
import { NOT_MEMBER_RETRIES_BEFORE_JOIN } from '../src/call.ts';
import { NodeStore } from '../src/store.ts';
import type { NodeHost } from '../src/types.ts';
import { generateIdentity, peerIdOf } from '@fedtwin/wire';
import { manifestHash, parseManifest } from '@fedtwin/consortium';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('a node before its first join', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });
  const tmp = async () => { const d = await mkdtemp(join(tmpdir(), 'fedtwin-first-join-')); dirs.push(d); return d; };

  /** A node whose transport fails with the given codes in turn (the last one repeats). */
  async function nodeFacing(codes: string[], giveUpSeconds = 60) {
    const dir = await tmp();
    await writeFile(join(dir, 'site.csv'), 'a,b\n1,2\n');
    const seen: string[] = [];
    const me = peerIdOf(await generateIdentity());
    const manifest = parseManifest({ consortium: 't', aggregator: peerIdOf(await generateIdentity()), members: [{ peerId: me }], rounds: { total: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 60 } });
    const host: NodeHost = {
      peerId: me,
      request: (async (_target: string, name: string) => {
        const code = codes[Math.min(seen.length, codes.length - 1)]!;
        seen.push(`${name}:${code}`);
        throw new FedtwinError(code, `fake ${code}`);
      }) as NodeHost['request'],
    };
    const node = await createNode({
      host, aggregator: '/ip4/127.0.0.1/tcp/9/p2p/12D3KooWAgg', dataDir: join(dir, 'state'), csvPath: join(dir, 'site.csv'),
      backend: 'cpu', logger: quiet, unreachableGiveUpSeconds: giveUpSeconds,
      consortium: { manifest, hash: manifestHash(manifest) }, allowPrivacyOff: true,
    });
    const result = await node.run().then(() => undefined, (e: unknown) => e as FedtwinError);
    await node.stop();
    return { result, seen };
  }

  it('waits for an aggregator that is not up yet, or up but not serving yet, like a mid-run outage', async () => {
    const { result, seen } = await nodeFacing(['WIRE_DIAL_FAILED', 'WIRE_UNSUPPORTED_PROTOCOL', 'WIRE_TIMEOUT', 'TEST_STOP']);
    expect(result?.code).toBe('TEST_STOP');
    expect(seen).toEqual(['join:WIRE_DIAL_FAILED', 'join:WIRE_UNSUPPORTED_PROTOCOL', 'join:WIRE_TIMEOUT', 'join:TEST_STOP']);
  });

  it('gives up after unreachableGiveUpSeconds with NODE_AGGREGATOR_UNREACHABLE', async () => {
    const t0 = Date.now();
    const { result, seen } = await nodeFacing(['WIRE_DIAL_FAILED'], 0.5);
    expect(result?.code).toBe('NODE_AGGREGATOR_UNREACHABLE');
    expect(result?.message).toMatch(/WIRE_DIAL_FAILED/);
    expect(seen.length).toBeGreaterThan(1);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('fails within seconds when a running aggregator does not admit it (WIRE_NOT_MEMBER): a few quick retries, no waiting on a stranger', async () => {
    const t0 = Date.now();
    const { result, seen } = await nodeFacing(['WIRE_NOT_MEMBER']);
    expect(result?.code).toBe('WIRE_NOT_MEMBER');
    expect(seen).toEqual(new Array(NOT_MEMBER_RETRIES_BEFORE_JOIN + 1).fill('join:WIRE_NOT_MEMBER'));
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('joins when a busy aggregator dropped its first handshakes (the same symptom as a refusal)', async () => {
    const { result, seen } = await nodeFacing(['WIRE_NOT_MEMBER', 'WIRE_NOT_MEMBER', 'TEST_STOP']);
    expect(result?.code).toBe('TEST_STOP');
    expect(seen).toEqual(['join:WIRE_NOT_MEMBER', 'join:WIRE_NOT_MEMBER', 'join:TEST_STOP']);
  });
});

describe('directories a member creates', () => {
  it('its state and its ledger replica are 0700 whatever the umask', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-node-dirs-'));
    const old = process.umask(0o022);
    try {
      const store = await NodeStore.open(join(dir, 'data', 'state'));
      await store.close();
      const ledger = await openLedger({ dir: join(dir, 'data', 'ledger') });
      await ledger.close();
      for (const d of ['data', 'data/state', 'data/ledger']) expect(((await stat(join(dir, d))).mode & 0o777).toString(8), d).toBe('700');
    } finally {
      process.umask(old);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
