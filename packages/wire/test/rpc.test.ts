import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import fc from 'fast-check';
import { isFedtwinError, FedtwinError } from '@fedtwin/errors';
import { WIRE_CODES } from '../src/index.ts';
import { hostPool, memoryLogger, patternBytes } from './helpers.ts';

const pool = hostPool();
afterEach(() => pool.stopAll());

const echoReq = z.object({ op: z.literal('echo'), n: z.number().int() });
const echoRes = z.object({ n: z.number().int(), len: z.number().int() });

async function expectCode(p: Promise<unknown>, code: string): Promise<FedtwinError> {
  try {
    await p;
  } catch (e) {
    if (!isFedtwinError(e)) throw e;
    expect(e.code, e.message).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, but the promise resolved`);
}

describe('request/response', () => {
  it('moves a 20 MiB body both ways intact and counts the bytes on both hosts', async () => {
    const server = await pool.make();
    const client = await pool.make();
    const seen: string[] = [];
    await server.handle('echo', {
      request: echoReq,
      response: echoRes,
      maxBodyBytes: 32 * 1024 * 1024,
      handler: ({ peer, header, body }) => {
        seen.push(peer);
        // Reverse so the response is not just the request bytes handed back.
        const out = Uint8Array.from(body ?? new Uint8Array()).reverse();
        return { header: { n: header.n + 1, len: body?.byteLength ?? -1 }, body: out };
      },
    });
    const body = patternBytes(20 * 1024 * 1024, 7);
    const res = await client.request(server.addrs()[0], 'echo', { header: { op: 'echo', n: 41 }, body }, { response: echoRes, maxBodyBytes: 32 * 1024 * 1024, timeoutMs: 30_000 });
    expect(res.header).toEqual({ n: 42, len: body.byteLength });
    expect(res.body?.byteLength).toBe(body.byteLength);
    const expected = Uint8Array.from(body).reverse();
    expect(Buffer.compare(Buffer.from(res.body!), Buffer.from(expected))).toBe(0);
    expect(seen).toEqual([client.peerId]);

    const c = client.bytes();
    const s = server.bytes();
    // Both bodies cross, plus small header frames and length prefixes.
    expect(c.sent).toBeGreaterThanOrEqual(body.byteLength);
    expect(c.sent).toBeLessThan(body.byteLength + 4096);
    expect(c.received).toBeGreaterThanOrEqual(body.byteLength);
    // What one side sent is exactly what the other received.
    expect(s.received).toBe(c.sent);
    expect(s.sent).toBe(c.received);
    expect(client.bytesByPeer()[server.peerId]).toEqual(c);
    expect(server.bytesByPeer()[client.peerId]).toEqual(s);
  });

  it('delivers arbitrary bodies exactly, whatever the frame boundaries (property)', async () => {
    // A tiny chunk size forces many body frames, so off-by-one errors in chunking would show.
    const server = await pool.make({ limits: { chunkBytes: 997 } });
    const client = await pool.make({ limits: { chunkBytes: 1500 } });
    await server.handle('rev', {
      request: z.object({ k: z.number() }),
      maxBodyBytes: 1 << 20,
      handler: ({ header, body }) => ({ header: { k: header.k }, body: body === undefined ? undefined : Uint8Array.from(body).reverse() }),
    });
    await fc.assert(
      fc.asyncProperty(fc.option(fc.uint8Array({ maxLength: 50_000 }), { nil: undefined }), fc.integer(), async (body, k) => {
        const res = await client.request(server.addrs()[0], 'rev', { header: { k }, body }, { response: z.object({ k: z.number() }), maxBodyBytes: 1 << 20 });
        expect(res.header.k).toBe(k);
        if (body === undefined) expect(res.body).toBeUndefined();
        else expect([...res.body!]).toEqual([...body].reverse());
      }),
      { numRuns: 25 },
    );
    expect(server.bytes().received).toBe(client.bytes().sent);
  });

  it('serves concurrent uploads from several members, each intact and attributed to its sender', async () => {
    const server = await pool.make();
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => pool.make()));
    const got = new Map<string, number>();
    await server.handle('upload', {
      request: z.object({ seed: z.number() }),
      maxBodyBytes: 4 * 1024 * 1024,
      handler: ({ peer, header, body }) => {
        const ok = Buffer.compare(Buffer.from(body!), Buffer.from(patternBytes(body!.byteLength, header.seed))) === 0;
        got.set(peer, header.seed);
        return { header: { ok } };
      },
    });
    const results = await Promise.all(
      clients.map((c, i) => c.request(server.addrs()[0], 'upload', { header: { seed: i + 1 }, body: patternBytes(2 * 1024 * 1024 + i, i + 1) }, { response: z.object({ ok: z.boolean() }), maxBodyBytes: 0 })),
    );
    expect(results.map((r) => r.header.ok)).toEqual([true, true, true, true, true]);
    expect(new Map(clients.map((c, i) => [c.peerId, i + 1]))).toEqual(got);
    for (const c of clients) expect(server.bytesByPeer()[c.peerId].received).toBe(c.bytes().sent);
  });

  it('supports requests without a body and handlers without a response body', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await server.handle('status', {
      request: z.object({ q: z.string() }),
      maxBodyBytes: 0,
      handler: ({ header, body }) => ({ header: { echo: header.q, hadBody: body !== undefined } }),
    });
    const res = await client.request(server.addrs()[0], 'status', { header: { q: 'hi' } }, { response: z.object({ echo: z.string(), hadBody: z.boolean() }), maxBodyBytes: 0 });
    expect(res).toEqual({ header: { echo: 'hi', hadBody: false } });
    // A dialed peer can then be addressed by its peer ID alone.
    const again = await client.request(server.peerId, 'status', { header: { q: 'again' } }, { response: z.object({ echo: z.string(), hadBody: z.boolean() }), maxBodyBytes: 0 });
    expect(again.header.echo).toBe('again');
  });

  it('answers a schema-invalid header with WIRE_BAD_MESSAGE, never calls the handler, and keeps serving', async () => {
    const log = memoryLogger();
    const server = await pool.make({ logger: log });
    const client = await pool.make();
    let calls = 0;
    await server.handle('echo', {
      request: echoReq,
      maxBodyBytes: 1024,
      handler: ({ header }) => {
        calls++;
        return { header: { n: header.n, len: 0 } };
      },
    });
    const err = await expectCode(
      client.request(server.addrs()[0], 'echo', { header: { op: 'echo', n: 'not a number' } }, { response: echoRes, maxBodyBytes: 0 }),
      WIRE_CODES.BAD_MESSAGE,
    );
    expect(err.message).toContain('n');
    expect(calls).toBe(0);
    expect(log.lines.some((l) => l.level === 'warn' && l.obj.code === WIRE_CODES.BAD_MESSAGE)).toBe(true);
    const ok = await client.request(server.addrs()[0], 'echo', { header: { op: 'echo', n: 5 } }, { response: echoRes, maxBodyBytes: 0 });
    expect(ok.header).toEqual({ n: 5, len: 0 });
    expect(calls).toBe(1);
  });

  it('rejects a body over the cap with WIRE_TOO_LARGE before reading it, then serves the next request', async () => {
    const server = await pool.make();
    const client = await pool.make();
    let calls = 0;
    await server.handle('upload', {
      request: z.object({}),
      maxBodyBytes: 1024 * 1024,
      handler: () => {
        calls++;
        return { header: {} };
      },
    });
    const received0 = server.bytes().received;
    const err = await expectCode(
      client.request(server.addrs()[0], 'upload', { header: {}, body: new Uint8Array(16 * 1024 * 1024) }, { response: z.object({}), maxBodyBytes: 0 }),
      WIRE_CODES.TOO_LARGE,
    );
    expect(err.message).toMatch(/16777216 bytes exceeds the 1048576-byte cap/);
    expect(calls).toBe(0);
    // The server read the header frame only, none of the 16 MiB body.
    expect(server.bytes().received - received0).toBeLessThan(1024);
    await client.request(server.addrs()[0], 'upload', { header: {}, body: new Uint8Array(1024) }, { response: z.object({}), maxBodyBytes: 0 });
    expect(calls).toBe(1);
  });

  it('rejects a response body over the requester cap with WIRE_TOO_LARGE', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await server.handle('big', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: {}, body: new Uint8Array(8 * 1024 * 1024) }) });
    await expectCode(client.request(server.addrs()[0], 'big', { header: {} }, { response: z.object({}), maxBodyBytes: 1024 }), WIRE_CODES.TOO_LARGE);
  });

  it('refuses to send a header over the local cap', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await server.handle('echo', { request: z.object({ s: z.string() }), maxBodyBytes: 0, handler: () => ({ header: {} }) });
    await expectCode(
      client.request(server.addrs()[0], 'echo', { header: { s: 'x'.repeat(100_000) } }, { response: z.object({}), maxBodyBytes: 0 }),
      WIRE_CODES.TOO_LARGE,
    );
  });

  it('re-throws a FedtwinError from the handler with its code; other handler errors become WIRE_REMOTE_INTERNAL', async () => {
    const log = memoryLogger();
    const server = await pool.make({ logger: log });
    const client = await pool.make();
    await server.handle('fail', {
      request: z.object({ kind: z.enum(['typed', 'crash']) }),
      maxBodyBytes: 0,
      handler: ({ header }) => {
        if (header.kind === 'typed') throw new FedtwinError('AGG_ROUND_CLOSED', 'round 3 is closed');
        throw new Error('secret internal detail');
      },
    });
    const typed = await expectCode(client.request(server.addrs()[0], 'fail', { header: { kind: 'typed' } }, { response: z.object({}), maxBodyBytes: 0 }), 'AGG_ROUND_CLOSED');
    expect(typed.message).toBe('round 3 is closed');
    expect(typed.details).toMatchObject({ remote: server.peerId });
    const crash = await expectCode(client.request(server.addrs()[0], 'fail', { header: { kind: 'crash' } }, { response: z.object({}), maxBodyBytes: 0 }), WIRE_CODES.REMOTE_INTERNAL);
    expect(crash.message).not.toContain('secret');
    expect(log.lines.some((l) => l.level === 'error' && String(l.obj.err).includes('secret internal detail'))).toBe(true);
  });

  it('validates the response header with the requester schema', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await server.handle('odd', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: { n: 'seven' } }) });
    await expectCode(client.request(server.addrs()[0], 'odd', { header: {} }, { response: z.object({ n: z.number() }), maxBodyBytes: 0 }), WIRE_CODES.BAD_MESSAGE);
  });

  it('times out with WIRE_TIMEOUT when the handler never answers, and the handler sees its signal abort', async () => {
    const server = await pool.make();
    const client = await pool.make();
    let aborted!: () => void;
    const handlerAborted = new Promise<void>((r) => (aborted = r));
    await server.handle('hang', {
      request: z.object({}),
      maxBodyBytes: 0,
      handler: ({ signal }) =>
        new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => {
            aborted();
            reject(signal.reason);
          });
        }),
    });
    const err = await expectCode(client.request(server.addrs()[0], 'hang', { header: {} }, { response: z.object({}), maxBodyBytes: 0, timeoutMs: 300 }), WIRE_CODES.TIMEOUT);
    expect(err.message).toContain('300 ms');
    // The requester reset the stream, so the long-poll handler learns it can stop.
    await handlerAborted;
  });

  it('reports the handler deadline as WIRE_TIMEOUT from the responder', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await server.handle('slow', { request: z.object({}), maxBodyBytes: 0, timeoutMs: 100, handler: () => new Promise<never>(() => undefined) });
    const err = await expectCode(client.request(server.addrs()[0], 'slow', { header: {} }, { response: z.object({}), maxBodyBytes: 0, timeoutMs: 10_000 }), WIRE_CODES.TIMEOUT);
    expect(err.message).toContain('did not answer within 100 ms');
  });

  it('lets a long-poll handler wait without blocking other streams on the same connection', async () => {
    const server = await pool.make();
    const client = await pool.make();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await server.handle('poll', {
      request: z.object({}),
      maxBodyBytes: 0,
      handler: async () => {
        await gate;
        return { header: { released: true } };
      },
    });
    await server.handle('echo', { request: z.object({ n: z.number() }), maxBodyBytes: 0, handler: ({ header }) => ({ header: { n: header.n } }) });
    const poll = client.request(server.addrs()[0], 'poll', { header: {} }, { response: z.object({ released: z.boolean() }), maxBodyBytes: 0 });
    const results = await Promise.all([1, 2, 3].map((n) => client.request(server.addrs()[0], 'echo', { header: { n } }, { response: z.object({ n: z.number() }), maxBodyBytes: 0 })));
    expect(results.map((r) => r.header.n)).toEqual([1, 2, 3]);
    let settled = false;
    void poll.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    release();
    expect((await poll).header).toEqual({ released: true });
    expect(client.connectedPeers()).toEqual([server.peerId]);
  });

  it('throws WIRE_UNSUPPORTED_PROTOCOL for a protocol the remote does not serve', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await expectCode(client.request(server.addrs()[0], 'nothing-here', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }), WIRE_CODES.UNSUPPORTED_PROTOCOL);
  });

  it('honours a caller AbortSignal with WIRE_ABORTED', async () => {
    const server = await pool.make();
    const client = await pool.make();
    await server.handle('hang', { request: z.object({}), maxBodyBytes: 0, handler: () => new Promise<never>(() => undefined) });
    const ac = new AbortController();
    const p = client.request(server.addrs()[0], 'hang', { header: {} }, { response: z.object({}), maxBodyBytes: 0, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expectCode(p, WIRE_CODES.ABORTED);
  });

  it('rejects bad arguments with WIRE_BAD_ARGUMENT', async () => {
    const client = await pool.make();
    await expectCode(client.request('not-a-peer', 'echo', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }), WIRE_CODES.BAD_ARGUMENT);
    await expectCode(client.request('/ip4/127.0.0.1/tcp/1', 'Bad Name', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }), WIRE_CODES.BAD_ARGUMENT);
    await expectCode(client.handle('echo', { request: z.object({}), maxBodyBytes: -1, handler: () => ({ header: {} }) }), WIRE_CODES.BAD_ARGUMENT);
  });
});
