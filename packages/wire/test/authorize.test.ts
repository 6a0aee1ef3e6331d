import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FedtwinError } from '@fedtwin/errors';
import { INITIAL_STREAM_WINDOW, WIRE_CODES, generateIdentity, peerIdOf } from '../src/index.ts';
import { hostPool, memoryLogger } from './helpers.ts';

const pool = hostPool();
afterEach(() => pool.stopAll());

const Got = z.object({ got: z.number() });
const MiB = 1024 * 1024;

interface ChildInfo { addr: string; peerId: string }
interface RssInfo { rss: number; peak: number; socketBytes?: number; calls: number; authorizeCalls: number }

function startResponder(allowedSender: string): Promise<{ child: ChildProcess; info: ChildInfo; ask: () => Promise<RssInfo> }> {
  const child = fork(fileURLToPath(new URL('./fixtures/responder.ts', import.meta.url)), [allowedSender], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('responder did not start within 15 s')), 15_000);
    child.once('error', reject);
    child.once('message', (msg) => {
      clearTimeout(timer);
      const ask = (): Promise<RssInfo> =>
        new Promise((res) => {
          child.once('message', (m) => res(m as RssInfo));
          child.send('rss');
        });
      resolve({ child, info: msg as ChildInfo, ask });
    });
  });
}

describe('authorize runs before the body is read', () => {
  it('refuses 10 concurrent 60 MiB bodies from a non-authorized member reading only the initial stream window of each (responder RSS +40-50 MB, was +580 MB)', async () => {
    const holder = peerIdOf(await generateIdentity()); // someone else is the key holder
    const { child, info, ask } = await startResponder(holder);
    try {
      const client = await pool.make();
      const send = (bytes: number) =>
        client.request(info.addr, 'key-publish', { header: { boxes: 1 }, body: new Uint8Array(bytes) }, { response: Got, maxBodyBytes: 0, timeoutMs: 15_000 });
      // Warm up: connection, Noise, yamux and the code paths (and allocator arenas) of one refusal.
      const body = new Uint8Array(60 * MiB);
      const warm = await send(1024).then(() => 'accepted', (e: FedtwinError) => e.code);
      await send(body.byteLength).catch(() => undefined);
      const before = await ask();
      const started = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () =>
          client.request(info.addr, 'key-publish', { header: { boxes: 1 }, body }, { response: Got, maxBodyBytes: 0, timeoutMs: 15_000 }),
        ),
      );
      const ms = Date.now() - started;
      const handedToLibp2p = client.bytesByPeer()[info.peerId]!.sent;
      const after = await ask();
      const growth = (after.peak - before.rss) / 1e6;
      const read = after.socketBytes !== undefined && before.socketBytes !== undefined ? after.socketBytes - before.socketBytes : undefined;
      console.log(
        `[authorize] responder RSS before ${(before.rss / 1e6).toFixed(0)} MB, peak during 10 x 60 MiB ${(after.peak / 1e6).toFixed(0)} MB (+${growth.toFixed(1)} MB), ` +
          `after ${(after.rss / 1e6).toFixed(0)} MB; bytes read by the responder ${read === undefined ? 'n/a' : `${(read / MiB).toFixed(1)} MiB`}; ` +
          `all refused in ${ms} ms; requester handed ${(handedToLibp2p / MiB).toFixed(1)} MiB to libp2p`,
      );
      expect(warm).toBe('AGG_NOT_KEY_HOLDER');
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'AGG_NOT_KEY_HOLDER' });
      }
      expect(after.calls).toBe(0);
      expect(after.authorizeCalls).toBe(12);
      // What the responder can be made to receive is the sender's initial yamux credit per stream
      // (INITIAL_STREAM_WINDOW, a wire-protocol constant), never the declared 60 MiB.
      if (read !== undefined) expect(read).toBeLessThan(10 * INITIAL_STREAM_WINDOW + 8 * MiB);
      // RSS also holds that data's socket and decryption buffers until the GC runs (about 2x of it in our runs).
      expect(growth).toBeLessThan(80);
    } finally {
      child.send('stop');
      await new Promise((r) => child.once('exit', r));
    }
  }, 40_000);

  it('passes the authorized sender through to the handler and maps a plain exception to WIRE_REMOTE_INTERNAL', async () => {
    const log = memoryLogger();
    const server = await pool.make({ logger: log });
    const good = await pool.make();
    const bad = await pool.make();
    const seen: string[] = [];
    await server.handle('key-publish', {
      request: z.object({ n: z.number() }),
      maxBodyBytes: MiB,
      authorize: async ({ peer, header }) => {
        seen.push(`${peer.slice(-4)}:${header.n}`);
        if (header.n === 7) throw new Error('boom');
        if (peer !== good.peerId) throw new FedtwinError('AGG_NOT_KEY_HOLDER', 'not the key holder');
      },
      handler: ({ body }) => ({ header: { got: body?.byteLength ?? 0 } }),
    });
    const opts = { response: Got, maxBodyBytes: 0, timeoutMs: 10_000 };
    expect((await good.request(server.addrs()[0]!, 'key-publish', { header: { n: 1 }, body: new Uint8Array(1000) }, opts)).header).toEqual({ got: 1000 });
    await expect(bad.request(server.addrs()[0]!, 'key-publish', { header: { n: 2 }, body: new Uint8Array(1000) }, opts)).rejects.toMatchObject({ code: 'AGG_NOT_KEY_HOLDER' });
    await expect(good.request(server.addrs()[0]!, 'key-publish', { header: { n: 7 } }, opts)).rejects.toMatchObject({ code: WIRE_CODES.REMOTE_INTERNAL });
    // The bad sender is refused by authorize; the server received its header frame only.
    const received = server.bytesByPeer()[bad.peerId]!.received;
    expect(received).toBeLessThan(1000);
    expect(seen).toHaveLength(3);
  });
});

describe('per-peer budgets', () => {
  it('refuses a second concurrent body over the per-peer in-flight budget, but always admits one', async () => {
    const server = await pool.make({ limits: { maxInflightBodyBytesPerPeer: MiB } });
    const client = await pool.make();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await server.handle('upload', {
      request: z.object({}),
      maxBodyBytes: 4 * MiB,
      handler: async ({ body }) => {
        await gate;
        return { header: { got: body?.byteLength ?? 0 } };
      },
    });
    const opts = { response: Got, maxBodyBytes: 0, timeoutMs: 10_000 };
    const addr = server.addrs()[0]!;
    const first = client.request(addr, 'upload', { header: {}, body: new Uint8Array(800 * 1024) }, opts);
    await new Promise((r) => setTimeout(r, 300));
    await expect(client.request(addr, 'upload', { header: {}, body: new Uint8Array(800 * 1024) }, opts)).rejects.toMatchObject({ code: WIRE_CODES.INFLIGHT_LIMIT });
    release();
    expect((await first).header).toEqual({ got: 800 * 1024 });
    // Alone, a body larger than the budget still goes through (the handler's own cap governs it).
    expect((await client.request(addr, 'upload', { header: {}, body: new Uint8Array(3 * MiB) }, opts)).header).toEqual({ got: 3 * MiB });
  });

  it('caps concurrent inbound streams per peer across protocols', async () => {
    const server = await pool.make({ limits: { maxInboundStreamsPerPeer: 2 } });
    const client = await pool.make();
    const other = await pool.make();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    for (const name of ['a', 'b']) {
      await server.handle(name, { request: z.object({}), maxBodyBytes: 0, handler: async () => (await gate, { header: { got: 0 } }) });
    }
    const opts = { response: Got, maxBodyBytes: 0, timeoutMs: 10_000 };
    const addr = server.addrs()[0]!;
    const held = [client.request(addr, 'a', { header: {} }, opts), client.request(addr, 'b', { header: {} }, opts)];
    await new Promise((r) => setTimeout(r, 300));
    await expect(client.request(addr, 'a', { header: {} }, opts)).rejects.toMatchObject({ code: WIRE_CODES.STREAM_LIMIT });
    // Another peer is not affected.
    const third = other.request(addr, 'b', { header: {} }, opts);
    release();
    await Promise.all([...held, third]);
    expect((await client.request(addr, 'a', { header: {} }, opts)).header).toEqual({ got: 0 });
  });
});
