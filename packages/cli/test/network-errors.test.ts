// Issue 15: raw libp2p messages ("Missing newline", "Encryption failed") reached the user. Real dials, real
// services on the other end: an HTTP server, another libp2p peer than the one dialled, nothing at all; then a
// real `fedtwin node start` pointed at each.
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { createWireHost, generateIdentity, peerIdOf, type WireHost } from '@fedtwin/wire';
import { createConsortium, freePort, type Consortium } from '../../../test/helpers/consortium.ts';
import { explainNetworkError } from '../src/network-errors.ts';
import { reportError } from '../src/index.ts';

const RAW = /Missing newline|Encryption failed|EncryptionFailedError|Unexpected EOF|InvalidMessageError|does not match expected remote/;

let http: TcpServer;
let httpPort: number;
let chatty: TcpServer;
let chattyPort: number;
let dialer: WireHost;
let other: WireHost;
let someoneElse: string;
beforeAll(async () => {
  // What an operator points a node at by mistake: a web server (a dashboard, a metrics port). This one answers
  // like one (a short 400 and a clean close) without resetting the connection, so the dial fails the same way
  // every time (node:http's own server resets it, and a reset carries no detail at all: see below).
  http = createTcpServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => { sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); sock.resume(); });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as { port: number }).port;
  // A service that greets every client with a line of text (a banner): "Missing newline".
  chatty = createTcpServer((sock) => {
    sock.on('error', () => undefined);
    sock.resume();
    sock.write(`Hello from a service that is not libp2p${'.'.repeat(100)}\r\n`);
    setTimeout(() => sock.end(), 5000).unref();
  });
  await new Promise<void>((r) => chatty.listen(0, '127.0.0.1', r));
  chattyPort = (chatty.address() as { port: number }).port;
  dialer = await createWireHost({ privateKey: await generateIdentity(), listen: [], allow: () => true });
  other = await createWireHost({ privateKey: await generateIdentity(), listen: ['/ip4/127.0.0.1/tcp/0'], allow: () => true });
  someoneElse = peerIdOf(await generateIdentity());
});
afterAll(async () => {
  await dialer?.stop();
  await other?.stop();
  http?.close();
  chatty?.close();
});

const dialError = async (addr: string): Promise<unknown> => dialer.dial(addr).then(() => expect.unreachable(), (e: unknown) => e);
const otherAddr = () => other.addrs()[0]!.replace(/\/p2p\/.*$/, '');

describe('explainNetworkError on real dial failures', () => {
  it('an HTTP server at the address: WIRE_NOT_LIBP2P, not "Missing newline"', async () => {
    const raw = await dialError(`/ip4/127.0.0.1/tcp/${httpPort}/p2p/${someoneElse}`);
    expect(isFedtwinError(raw) && raw.message).toMatch(RAW); // what wire says today: libp2p's words
    const e = explainNetworkError(raw) as FedtwinError;
    expect(e.code).toBe('WIRE_NOT_LIBP2P');
    expect(e.message).toContain(`127.0.0.1/tcp/${httpPort}`);
    expect(`${e.message} ${e.hint}`).not.toMatch(RAW);
    expect(e.hint).toMatch(/something else listens on that port/);
  });

  it('a service that sends a text banner: WIRE_NOT_LIBP2P, not "Missing newline"', async () => {
    const raw = await dialError(`/ip4/127.0.0.1/tcp/${chattyPort}/p2p/${someoneElse}`);
    expect((raw as FedtwinError).message).toMatch(/Missing newline/); // libp2p's words, as wire reports them
    const e = explainNetworkError(raw) as FedtwinError;
    expect(e.code).toBe('WIRE_NOT_LIBP2P');
    expect(`${e.message} ${e.hint}`).not.toMatch(RAW);
  });

  it('another libp2p peer at the address: WIRE_PEER_MISMATCH naming both peer IDs', async () => {
    const raw = await dialError(`${otherAddr()}/p2p/${someoneElse}`);
    const e = explainNetworkError(raw) as FedtwinError;
    expect(e.code).toBe('WIRE_PEER_MISMATCH');
    expect(e.message).toContain(`is ${other.peerId}, not ${someoneElse}`);
    expect(`${e.message} ${e.hint}`).not.toMatch(RAW);
    expect(e.hint).toMatch(/fedtwin keys show --in/);
  });

  it('nothing listening stays WIRE_DIAL_FAILED (its message is already plain: connection refused)', async () => {
    const raw = await dialError(`/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${someoneElse}`);
    expect(explainNetworkError(raw)).toBe(raw);
    expect((raw as FedtwinError).code).toBe('WIRE_DIAL_FAILED');
  });

  it('libp2p\'s bare "Encryption failed" (a reset mid-handshake, no detail): WIRE_HANDSHAKE_CLOSED, which a node retries', () => {
    const bare = Object.assign(new Error('Encryption failed'), { name: 'EncryptionFailedError' });
    const raw = new FedtwinError('WIRE_DIAL_FAILED', `cannot connect to /ip4/127.0.0.1/tcp/9400/p2p/${someoneElse}: Encryption failed`, { cause: bare });
    const e = explainNetworkError(raw) as FedtwinError;
    expect(e.code).toBe('WIRE_HANDSHAKE_CLOSED');
    expect(e.message).toBe(`the connection at /ip4/127.0.0.1/tcp/9400/p2p/${someoneElse} closed during the libp2p handshake`);
    expect(e.hint).toMatch(/busy.*retries/);
  });

  it('an error quoting one (NODE_AGGREGATOR_UNREACHABLE) quotes the explained one; a raw libp2p error gets a code', async () => {
    const raw = await dialError(`/ip4/127.0.0.1/tcp/${chattyPort}/p2p/${someoneElse}`) as FedtwinError;
    const quoting = new FedtwinError('NODE_AGGREGATOR_UNREACHABLE', `aggregator unreachable for 300 s (last error ${raw.code}: ${raw.message})`, { hint: 'check that the aggregator runs', cause: raw });
    const e = explainNetworkError(quoting) as FedtwinError;
    expect(e.code).toBe('NODE_AGGREGATOR_UNREACHABLE');
    expect(e.message).toMatch(/last error WIRE_NOT_LIBP2P: the service at .* did not answer as a fedtwin daemon/);
    expect(e.message).not.toMatch(RAW);
    const bare = Object.assign(new Error('Missing newline'), { name: 'InvalidMessageError' });
    const w = explainNetworkError(bare) as FedtwinError;
    expect(w).toBeInstanceOf(FedtwinError);
    expect(w.code).toMatch(/^WIRE_/);
    expect(w.message).not.toMatch(RAW);
  });

  it('the top-level printer prints the explained error (code and hint), never the raw one', async () => {
    const raw = await dialError(`${otherAddr()}/p2p/${someoneElse}`);
    const write = process.stderr.write.bind(process.stderr);
    let out = '';
    process.stderr.write = ((s: string) => { out += s; return true; }) as typeof process.stderr.write;
    try {
      expect(reportError(raw)).toBe(1);
    } finally {
      process.stderr.write = write;
    }
    expect(out).toMatch(/^error \[WIRE_PEER_MISMATCH\]: .*\nhint: /);
    expect(out).not.toMatch(RAW);
  });
});

describe('fedtwin node start pointed at the wrong service', () => {
  let c: Consortium;
  beforeAll(async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 30 });
  }, 120_000);
  afterAll(async () => { await c?.cleanup(); });

  const startAt = async (address: string) => {
    await c.writeNodeConfig(0, { aggregator: { address }, unreachableGiveUpSeconds: 120 });
    const { daemon } = c.startNode(0);
    const t = Date.now();
    const code = await daemon.exited;
    return { code, stderr: daemon.stderrTail(), seconds: (Date.now() - t) / 1000 };
  };

  it('a service that is not libp2p: exits at once with WIRE_NOT_LIBP2P and a hint (not after the 120 s give-up, not libp2p\'s words)', async () => {
    const r = await startAt(`/ip4/127.0.0.1/tcp/${chattyPort}`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/error \[WIRE_NOT_LIBP2P\]: the service at \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+ did not answer as a fedtwin daemon/);
    expect(r.stderr).toMatch(/\nhint: something else listens on that port/);
    expect(r.stderr).not.toMatch(RAW);
    expect(r.seconds).toBeLessThan(60);
  }, 90_000);

  it('another libp2p peer on the port: exits at once with WIRE_PEER_MISMATCH naming the manifest\'s aggregator', async () => {
    const r = await startAt(otherAddr());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error [WIRE_PEER_MISMATCH]: the peer at ${otherAddr()}/p2p/${c.aggregatorId} is ${other.peerId}, not ${c.aggregatorId}`);
    expect(r.stderr).not.toMatch(RAW);
  }, 90_000);

  it('the config and data files resolve as before (the dataDir was created under the consortium folder)', async () => {
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(c.dir, 'node0-data'))).toBe(true);
  });
});
