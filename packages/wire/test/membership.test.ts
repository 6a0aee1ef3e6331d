import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isFedtwinError } from '@fedtwin/errors';
import { createWireHost, generateIdentity, peerIdOf, WIRE_CODES } from '../src/index.ts';
import { hostPool, memoryLogger } from './helpers.ts';

const pool = hostPool();
afterEach(() => pool.stopAll());

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isFedtwinError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  return 'resolved';
}

describe('membership gate', () => {
  it('refuses a peer that is not on the allowlist; nothing reaches the handler and the server logs it', async () => {
    const memberKey = await generateIdentity();
    const log = memoryLogger();
    const server = await pool.make({ allow: [peerIdOf(memberKey)], logger: log });
    let calls = 0;
    await server.handle('echo', { request: z.object({}), maxBodyBytes: 0, handler: () => (calls++, { header: {} }) });

    const outsider = await pool.make();
    const r1 = await codeOf(outsider.request(server.addrs()[0], 'echo', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }));
    expect(r1).toMatch(new RegExp(`^${WIRE_CODES.NOT_MEMBER}: .*${outsider.peerId}.* not on its allowlist`));
    const r2 = await codeOf(outsider.dial(server.addrs()[0]));
    expect(r2.startsWith(WIRE_CODES.NOT_MEMBER)).toBe(true);
    expect(calls).toBe(0);
    expect(server.bytes()).toEqual({ sent: 0, received: 0 });
    expect(log.lines.some((l) => l.level === 'warn' && l.obj.peer === outsider.peerId && l.msg?.includes(`peer ${outsider.peerId} is not on the allowlist`))).toBe(true);

    // The listed member gets through on the same server.
    const member = await pool.make({ privateKey: memberKey });
    expect(await member.dial(server.addrs()[0])).toBe(server.peerId);
    await member.request(server.addrs()[0], 'echo', { header: {} }, { response: z.object({}), maxBodyBytes: 0 });
    expect(calls).toBe(1);
  });

  it('refuses locally, before dialing, a peer this host does not list', async () => {
    const server = await pool.make();
    const client = await pool.make({ allow: [] });
    const r = await codeOf(client.request(server.addrs()[0], 'echo', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }));
    expect(r).toBe(`${WIRE_CODES.PEER_NOT_ALLOWED}: peer ${server.peerId} is not on the allowlist of this host (${client.peerId})`);
    // Without /p2p/ in the address the dialer learns the ID during Noise and the gater still refuses.
    const bare = server.addrs()[0].replace(/\/p2p\/.*$/, '');
    const r2 = await codeOf(client.dial(bare));
    expect(r2.startsWith(WIRE_CODES.PEER_NOT_ALLOWED)).toBe(true);
    expect(server.bytes()).toEqual({ sent: 0, received: 0 });
  });

  it('allowPeer admits a peer at runtime and removePeer drops its connection and refuses it again', async () => {
    const server = await pool.make({ allow: [] });
    await server.handle('echo', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: {} }) });
    const client = await pool.make();
    expect((await codeOf(client.dial(server.addrs()[0]))).startsWith(WIRE_CODES.NOT_MEMBER)).toBe(true);
    server.allowPeer(client.peerId);
    expect(server.isAllowed(client.peerId)).toBe(true);
    await client.request(server.addrs()[0], 'echo', { header: {} }, { response: z.object({}), maxBodyBytes: 0 });
    await server.removePeer(client.peerId);
    expect(server.isAllowed(client.peerId)).toBe(false);
    expect(server.connectedPeers()).not.toContain(client.peerId);
    const r = await codeOf(client.request(server.addrs()[0], 'echo', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }));
    expect(r.startsWith(WIRE_CODES.NOT_MEMBER)).toBe(true);
  });

  it('reaches a peer again after it restarts with the same key and port', async () => {
    const key = await generateIdentity();
    const first = await pool.make({ privateKey: key });
    await first.handle('echo', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: { gen: 1 } }) });
    const client = await pool.make();
    const addr = first.addrs()[0];
    const res = z.object({ gen: z.number() });
    expect((await client.request(addr, 'echo', { header: {} }, { response: res, maxBodyBytes: 0 })).header.gen).toBe(1);
    await first.stop();
    expect((await codeOf(client.request(addr, 'echo', { header: {} }, { response: res, maxBodyBytes: 0 }))).startsWith(WIRE_CODES.DIAL_FAILED)).toBe(true);
    const port = addr.split('/')[4];
    const second = await pool.make({ privateKey: key, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    await second.handle('echo', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: { gen: 2 } }) });
    expect((await client.request(second.peerId, 'echo', { header: {} }, { response: res, maxBodyBytes: 0 })).header.gen).toBe(2);
  });

  it('fails a dial to a closed port with WIRE_DIAL_FAILED', async () => {
    const a = await pool.make();
    const b = await pool.make();
    const addr = b.addrs()[0];
    await b.stop();
    const r = await codeOf(a.dial(addr));
    expect(r.startsWith(WIRE_CODES.DIAL_FAILED)).toBe(true);
  });
});

describe('listening', () => {
  it('reports a port in use as WIRE_ADDRESS_IN_USE with a hint', async () => {
    const a = await pool.make();
    const port = a.addrs()[0].split('/')[4];
    try {
      const b = await createWireHost({ privateKey: await generateIdentity(), allow: () => true, listen: [`/ip4/127.0.0.1/tcp/${port}`] });
      await b.stop();
      expect.unreachable('second host should not have started');
    } catch (e) {
      if (!isFedtwinError(e)) throw e;
      expect(e.code).toBe(WIRE_CODES.ADDRESS_IN_USE);
      expect(e.message).toContain(port);
      expect(e.hint).toMatch(/port/);
    }
  });

  it('rejects a non-Ed25519 key and bad limits', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys');
    const secp = await generateKeyPair('secp256k1');
    expect(await codeOf(createWireHost({ privateKey: secp, allow: () => true }))).toMatch(/^WIRE_IDENTITY_WRONG_TYPE/);
    expect(await codeOf(createWireHost({ privateKey: await generateIdentity(), allow: () => true, limits: { chunkBytes: 8 * 1024 * 1024 } }))).toMatch(/^WIRE_BAD_ARGUMENT/);
    expect(await codeOf(createWireHost({ privateKey: await generateIdentity(), allow: () => true, limits: { chunkByte: 5 } as never }))).toMatch(/^WIRE_BAD_ARGUMENT: unknown limit "chunkByte"/);
    expect(await codeOf(createWireHost({ privateKey: await generateIdentity(), allow: () => true, limits: { readTimeoutMs: 0 } }))).toMatch(/^WIRE_BAD_ARGUMENT: limits.readTimeoutMs/);
    expect(await codeOf(createWireHost({ privateKey: await generateIdentity(), allow: () => true, listen: ['not-an-addr'] }))).toMatch(/^WIRE_BAD_ARGUMENT: invalid listen address/);
  });
});
