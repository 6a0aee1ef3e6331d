import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { WIRE_CODES, encodeVarint, protocolId } from '../src/index.ts';
import type { WireHost } from '../src/index.ts';
import { StreamReader } from '../src/reader.ts';
import { readJsonFrame } from '../src/frames.ts';
import { hostPool, memoryLogger } from './helpers.ts';

const pool = hostPool();
afterEach(() => pool.stopAll());

let server: WireHost;
let client: WireHost;
let calls: number;
let log: ReturnType<typeof memoryLogger>;

beforeEach(async () => {
  calls = 0;
  log = memoryLogger();
  server = await pool.make({ logger: log });
  client = await pool.make();
  await server.handle('upload', {
    request: z.object({ round: z.number().int() }),
    maxBodyBytes: 1024 * 1024,
    handler: ({ header, body }) => {
      calls++;
      return { header: { round: header.round, got: body?.byteLength ?? 0 } };
    },
  });
});

const enc = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function frame(payload: Uint8Array): Uint8Array {
  return concat(encodeVarint(payload.byteLength), payload);
}

function jsonFrame(value: unknown): Uint8Array {
  return frame(enc.encode(JSON.stringify(value)));
}

/** Open a raw fedtwin stream, send `bytes` (optionally leaving our side open) and read the reply envelope. */
async function raw(bytes: Uint8Array, opts: { close?: boolean } = {}): Promise<unknown> {
  const stream: Stream = await client.libp2p.dialProtocol(multiaddr(server.addrs()[0]), protocolId('upload'));
  const reader = new StreamReader(stream, { highWaterMark: 1 << 20 });
  stream.send(bytes);
  if (opts.close !== false) await stream.close();
  try {
    return await readJsonFrame(reader, 64 * 1024, AbortSignal.timeout(5000), 'reply');
  } finally {
    reader.detach();
    stream.abort(new Error('test done'));
  }
}

async function stillServes(): Promise<void> {
  const res = await client.request(server.addrs()[0], 'upload', { header: { round: 9 }, body: new Uint8Array(10) }, { response: z.object({ round: z.number(), got: z.number() }), maxBodyBytes: 0 });
  expect(res.header).toEqual({ round: 9, got: 10 });
}

describe('malformed and oversized requests', () => {
  it('refuses a header frame declaring 1 GiB from its length prefix alone (never waits for the bytes)', async () => {
    // Our side stays open and sends nothing after the prefix: only a pre-read cap check can answer.
    const reply = await raw(encodeVarint(1 << 30), { close: false });
    expect(reply).toMatchObject({ v: 1, error: { code: WIRE_CODES.TOO_LARGE } });
    expect(calls).toBe(0);
    await stillServes();
  });

  it('refuses a declared body of 2^50 bytes before allocating it', async () => {
    const reply = await raw(jsonFrame({ v: 1, header: { round: 1 }, bodyLength: 2 ** 50 }), { close: false });
    expect(reply).toMatchObject({ error: { code: WIRE_CODES.TOO_LARGE } });
    expect(String((reply as { error: { message: string } }).error.message)).toContain('1048576-byte cap');
    expect(calls).toBe(0);
    await stillServes();
  });

  it.each([
    ['invalid JSON', frame(enc.encode('{"v":1,'))],
    ['invalid UTF-8', frame(Uint8Array.of(0xff, 0xfe, 0xfd))],
    ['wrong envelope version', jsonFrame({ v: 2, header: { round: 1 } })],
    ['unknown envelope field', jsonFrame({ v: 1, header: { round: 1 }, extra: true })],
    ['negative body length', jsonFrame({ v: 1, header: { round: 1 }, bodyLength: -1 })],
    ['header failing the schema', jsonFrame({ v: 1, header: { round: 'one' } })],
    ['overlong varint', Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)],
    ['body frame larger than the declared body', concat(jsonFrame({ v: 1, header: { round: 1 }, bodyLength: 4 }), frame(new Uint8Array(8)))],
    ['zero-length body frame', concat(jsonFrame({ v: 1, header: { round: 1 }, bodyLength: 4 }), encodeVarint(0))],
  ])('answers %s with WIRE_BAD_MESSAGE and keeps serving', async (_name, bytes) => {
    const reply = await raw(bytes);
    expect(reply).toMatchObject({ v: 1, error: { code: WIRE_CODES.BAD_MESSAGE } });
    expect(calls).toBe(0);
    expect(log.lines.some((l) => l.level === 'warn' && l.obj.code === WIRE_CODES.BAD_MESSAGE)).toBe(true);
    await stillServes();
  });

  it.each([
    ['a body cut short', concat(jsonFrame({ v: 1, header: { round: 1 }, bodyLength: 100 }), frame(new Uint8Array(40)))],
    ['a body frame cut short', concat(jsonFrame({ v: 1, header: { round: 1 }, bodyLength: 100 }), encodeVarint(100), new Uint8Array(30))],
    ['a header cut short', concat(encodeVarint(100), enc.encode('{"v":1,'))],
    ['a header length prefix cut short', Uint8Array.of(0x80)],
    ['nothing at all', new Uint8Array(0)],
  ])('answers %s (remote closed its write side early) with WIRE_TRUNCATED', async (_name, bytes) => {
    const reply = await raw(bytes);
    expect(reply).toMatchObject({ v: 1, error: { code: WIRE_CODES.TRUNCATED } });
    expect(calls).toBe(0);
    await stillServes();
  });

  it.each([
    ['bytes after a bodiless request', concat(jsonFrame({ v: 1, header: { round: 1 } }), Uint8Array.of(1, 2, 3))],
    ['a frame after the declared body', concat(jsonFrame({ v: 1, header: { round: 1 }, bodyLength: 4 }), frame(new Uint8Array(4)), frame(new Uint8Array(4)))],
    ['a second request envelope', concat(jsonFrame({ v: 1, header: { round: 1 } }), jsonFrame({ v: 1, header: { round: 2 } }))],
  ])('answers %s with WIRE_TRAILING_BYTES', async (_name, bytes) => {
    const reply = await raw(bytes);
    expect(reply).toMatchObject({ v: 1, error: { code: WIRE_CODES.TRAILING_BYTES } });
    expect(calls).toBe(0);
    await stillServes();
  });

  it('answers trailing bytes that arrive after a pause with WIRE_TRAILING_BYTES', async () => {
    const stream: Stream = await client.libp2p.dialProtocol(multiaddr(server.addrs()[0]), protocolId('upload'));
    const reader = new StreamReader(stream, { highWaterMark: 1 << 20 });
    stream.send(jsonFrame({ v: 1, header: { round: 1 } }));
    await new Promise((r) => setTimeout(r, 100));
    stream.send(Uint8Array.of(9));
    await stream.close();
    try {
      expect(await readJsonFrame(reader, 64 * 1024, AbortSignal.timeout(5000), 'reply')).toMatchObject({ error: { code: WIRE_CODES.TRAILING_BYTES } });
    } finally {
      reader.detach();
      stream.abort(new Error('test done'));
    }
    expect(calls).toBe(0);
  });

  it('times a silent requester out on the responder side', async () => {
    const slowServer = await pool.make({ logger: log, limits: { readTimeoutMs: 150 } });
    await slowServer.handle('upload', { request: z.object({}), maxBodyBytes: 0, handler: () => (calls++, { header: {} }) });
    const stream = await client.libp2p.dialProtocol(multiaddr(slowServer.addrs()[0]), protocolId('upload'));
    const reader = new StreamReader(stream, { highWaterMark: 1 << 20 });
    const reply = await readJsonFrame(reader, 64 * 1024, AbortSignal.timeout(5000), 'reply');
    expect(reply).toMatchObject({ error: { code: WIRE_CODES.TIMEOUT } });
    expect(calls).toBe(0);
    stream.abort(new Error('done'));
  });
});
