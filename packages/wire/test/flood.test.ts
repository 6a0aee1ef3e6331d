import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { multiaddr } from '@multiformats/multiaddr';
import { WIRE_CODES } from '../src/index.ts';
import type { WireHost } from '../src/index.ts';
import { hostPool, memoryLogger } from './helpers.ts';

const pool = hostPool();
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await pool.stopAll();
});

const Echo = z.object({ n: z.number() });

function tcpPort(host: WireHost): number {
  const m = /\/tcp\/(\d+)/.exec(host.addrs()[0]!);
  return Number(m![1]);
}

/** Open `n` raw TCP sockets that never send a byte; resolves once all are connected (or refused). */
async function idleSockets(port: number, n: number, localAddress?: string): Promise<{ open: () => number; closed: () => number }> {
  let closed = 0;
  const connected = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
        sockets.push(s);
        s.on('error', () => undefined);
        s.once('close', () => closed++);
        s.once('connect', () => resolve(s));
        s.once('close', () => resolve(s));
      }),
    ),
  );
  return { open: () => connected.length - closed, closed: () => closed };
}

async function echoServer(init: Parameters<typeof pool.make>[0] = {}): Promise<WireHost> {
  const server = await pool.make(init);
  await server.handle('echo', { request: Echo, maxBodyBytes: 0, handler: ({ header }) => ({ header }) });
  return server;
}

describe('pre-auth lock-out', () => {
  it('lets a member in within 5 s while 256 idle sockets from the same IP hold the listener', async () => {
    const client = await pool.make();
    const srv = await echoServer({ allow: [client.peerId] });
    const flood = await idleSockets(tcpPort(srv), 256);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const res = await client.request(srv.addrs()[0]!, 'echo', { header: { n: 5 } }, { response: Echo, maxBodyBytes: 0, timeoutMs: 10_000 });
    const ms = Date.now() - t0;
    console.log(`[flood] 256 idle sockets from 127.0.0.1 (${flood.open()} still open): member RPC completed in ${ms} ms`);
    expect(res.header).toEqual({ n: 5 });
    expect(ms).toBeLessThan(5000);
  }, 20_000);

  it('closes idle unauthenticated sockets after inboundUpgradeTimeoutMs', async () => {
    const srv = await echoServer({ limits: { inboundUpgradeTimeoutMs: 800 } });
    const flood = await idleSockets(tcpPort(srv), 32);
    const t0 = Date.now();
    while (flood.closed() < 32 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    console.log(`[flood] 32 idle sockets closed after ${Date.now() - t0} ms (upgrade timeout 800 ms)`);
    expect(flood.closed()).toBe(32);
  }, 20_000);

  it('refuses connections from IPs outside allowIps before the handshake', async () => {
    const client = await pool.make();
    const srv = await echoServer({ allow: [client.peerId], allowIps: ['127.0.0.1/32'] });
    const flood = await idleSockets(tcpPort(srv), 64, '127.0.0.2');
    const t0 = Date.now();
    while (flood.closed() < 64 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    expect(flood.closed()).toBe(64);
    expect((await client.request(srv.addrs()[0]!, 'echo', { header: { n: 1 } }, { response: Echo, maxBodyBytes: 0, timeoutMs: 10_000 })).header).toEqual({ n: 1 });
    const outsider = await echoServer({ allow: () => true, allowIps: ['10.0.0.0/8'] });
    await expect(client.request(outsider.addrs()[0]!, 'echo', { header: { n: 1 } }, { response: Echo, maxBodyBytes: 0, timeoutMs: 5000 })).rejects.toBeInstanceOf(Error);
  }, 20_000);

  it('refuses connections of one peer beyond maxConnectionsPerPeer', async () => {
    const log = memoryLogger();
    const srv = await echoServer({ logger: log, limits: { maxConnectionsPerPeer: 2 } });
    const client = await pool.make();
    const addr = multiaddr(srv.addrs()[0]!);
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push(await client.libp2p.dial(addr, { force: true }).then(
        async (c) => {
          // The refusal comes after the muxer; a refused connection dies on its first stream.
          await c.newStream('/ipfs/ping/1.0.0', { signal: AbortSignal.timeout(3000) }).then((st) => st.abort(new Error('done')));
          return 'open';
        },
        () => 'refused',
      ).catch(() => 'refused'));
    }
    expect(results.filter((r) => r === 'open')).toHaveLength(2);
    expect(srv.libp2p.getConnections(client.libp2p.peerId).length).toBeLessThanOrEqual(2);
  }, 20_000);

  it('rejects a malformed allowIps entry', async () => {
    await expect(pool.make({ allowIps: ['not-an-ip'] })).rejects.toMatchObject({ code: WIRE_CODES.BAD_ARGUMENT });
  });
});

describe('refused-peer logging', () => {
  it('logs 50 refused dials from one stranger as the first line plus one counted summary', async () => {
    const log = memoryLogger();
    const srv = await echoServer({ allow: [], logger: log, limits: { refusalLogIntervalMs: 5000 } });
    const stranger = await pool.make();
    for (let i = 0; i < 50; i++) {
      await expect(stranger.dial(srv.addrs()[0]!)).rejects.toMatchObject({ code: WIRE_CODES.NOT_MEMBER });
      await stranger.libp2p.hangUp(srv.libp2p.peerId).catch(() => undefined);
    }
    // The summary comes from a timer at the end of the interval (5 s after the first refusal).
    const refusedLines = () => log.lines.filter((l) => /refus/i.test(l.msg ?? ''));
    const total = () => refusedLines().reduce((n, l) => n + (typeof l.obj.count === 'number' ? l.obj.count : 1), 0);
    for (let i = 0; i < 200 && total() < 50; i++) await new Promise((r) => setTimeout(r, 50));
    const refused = refusedLines();
    console.log(`[log] 50 refused dials -> ${refused.length} log lines:`, refused.map((l) => l.msg));
    expect(refused.length).toBeLessThanOrEqual(3);
    const counted = refused.reduce((n, l) => n + (typeof l.obj.count === 'number' ? l.obj.count : 1), 0);
    expect(counted).toBe(50);
  }, 30_000);

  it('bounds the lines for many different strangers too', async () => {
    const log = memoryLogger();
    const srv = await echoServer({ allow: [], logger: log, limits: { refusalLogIntervalMs: 60_000 } });
    for (let i = 0; i < 10; i++) {
      const stranger = await pool.make();
      for (let j = 0; j < 5; j++) {
        await expect(stranger.dial(srv.addrs()[0]!)).rejects.toMatchObject({ code: WIRE_CODES.NOT_MEMBER });
      }
    }
    await srv.stop(); // stopping flushes the pending summary
    const refused = log.lines.filter((l) => /refus/i.test(l.msg ?? ''));
    console.log(`[log] 50 refused dials from 10 strangers -> ${refused.length} log lines`, refused.map((l) => [l.msg, l.obj.count]));
    expect(refused.length).toBeLessThanOrEqual(3);
    const counted = refused.reduce((n, l) => n + (typeof l.obj.count === 'number' ? l.obj.count : 1), 0);
    expect(counted).toBe(50);
  }, 30_000);
});
