import { afterEach, describe, expect, it } from 'vitest';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { createHeContext, generateKeys, saveSecretKeyFile } from '@fedtwin/he';
import { openRoundClaims } from '../src/round-claims.ts';
import { bfvMember } from '../src/scheme.ts';

const tag = (c: string) => c.repeat(64);

describe('round claims (mask reuse guard)', () => {
  const dirs: string[] = [];
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }); });
  const tmp = async () => { const d = await mkdtemp(join(tmpdir(), 'fedtwin-claims-')); dirs.push(d); return d; };

  it('claims survive a reopen, are written 0600, and a torn last line is cut off', async () => {
    const p = join(await tmp(), 'k.rounds');
    const a = await openRoundClaims(p);
    expect(a.has(tag('a'))).toBe(false);
    await a.claim(tag('a'));
    await a.claim(tag('a')); // idempotent
    await a.claim(tag('b'));
    expect((await stat(p)).mode & 0o777).toBe(0o600);
    await appendFile(p, 'c'.repeat(20)); // a crash mid-append
    const b = await openRoundClaims(p);
    expect(b.has(tag('a')) && b.has(tag('b'))).toBe(true);
    expect(b.has(tag('c'))).toBe(false);
    await b.claim(tag('d'));
    expect(await readFile(p, 'utf8')).toBe(`${tag('a')}\n${tag('b')}\n${tag('d')}\n`);
    expect((await openRoundClaims(p)).has(tag('d'))).toBe(true);
  });

  it('refuses a damaged file (a bad line that is not the last) with NODE_STATE_CORRUPT', async () => {
    const p = join(await tmp(), 'k.rounds');
    await writeFile(p, `${tag('a')}\nnot a tag\n${tag('b')}\n`);
    await expect(openRoundClaims(p)).rejects.toMatchObject({ code: 'NODE_STATE_CORRUPT' });
  });

  it('a BFV member encrypts once per round, also after a restart that lost its state', async () => {
    const dir = await tmp();
    const ctx = await createHeContext({ maxParticipants: 8 });
    const key = generateKeys(ctx);
    ctx.dispose();
    const keyFile = join(dir, 'he-secret.key');
    await saveSecretKeyFile(keyFile, key);
    const identity = await generateKeyPair('Ed25519');
    const peerId = peerIdFromPrivateKey(identity).toString();
    const logged: string[] = [];
    const start = () => bfvMember({
      config: { scheme: 'bfv', keyHolder: peerId, members: [peerId], params: { maxParticipants: 8 } },
      announcedKeyId: key.keyId, identity, peerId, keyFile,
      io: { fetchKey: async () => ({ status: 'pending' }), publish: async () => undefined },
      logger: { info: (o: { event?: string }) => logged.push(String(o.event)), warn: () => undefined, error: () => undefined } as never,
      giveUpMs: 1000, threads: 2,
    });
    const round = { round: 3, baseHash: 'ab'.repeat(32), keyId: key.keyId };
    const m = await start();
    try {
      expect(await m.canContribute!(round)).toBe(true);
      const values = new Float32Array(100).fill(0.25);
      const body = await m.encode(values, round);
      expect(await m.canContribute!(round)).toBe(false);
      await expect(m.encode(values, round)).rejects.toMatchObject({ code: 'NODE_ROUND_ALREADY_ENCRYPTED' });
      // the next round is fine, and the member decrypts its own single update
      expect(await m.canContribute!({ ...round, round: 4 })).toBe(true);
      const sum = await m.decode(body, 100, { keyId: key.keyId, participants: [peerId] });
      expect(Math.abs(sum[0]! - 0.25)).toBeLessThan(1e-4);
    } finally {
      await m.close();
    }
    const again = await start(); // a restart: the claims live beside the key, not in the (lost) state
    try {
      expect(await again.canContribute!(round)).toBe(false);
    } finally {
      await again.close();
    }
  });
});
