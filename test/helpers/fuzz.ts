/**
 * Protocol fuzzing against a real aggregator (docs/fuzzing.md): a real wire host on 127.0.0.1, real
 * Level state and ledger in a temp dir, driven by member hosts that send mutated requests as raw
 * bytes on fresh streams of ONE long-lived connection. Every reply must be an envelope: a success
 * (only for a request that is still well-formed) or an error carrying an UPPER_SNAKE code; never a
 * bare reset, a hang or a crash.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf, type Manifest } from '@fedtwin/consortium';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, PrivateKey, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { mockMuxer, multiaddrConnectionPair } from '@libp2p/utils';
import type { z } from 'zod';
import { createWireHost, encodeVarint, generateIdentity, peerIdOf, protocolId, type WireHost } from '@fedtwin/wire';
import {
  AggregateRequest, CosignRequest, JoinRequest, KeyPublishHeader, KeyRequest, LedgerSyncRequest, ProbeRequest, Protocols, WitnessesRequest,
  RefuseRequest, TaskRequest, UpdateHeader, VerdictRequest, MAX_SEALED_KEYS_BYTES,
  type SecureAggregation,
} from '@fedtwin/protocol';
import { createAggregator, type Aggregator } from '@fedtwin/aggregator';
import {
  createEntry, createEntrySigner, createCosignatureSigner, cosignNote, verifyLedgerDir, sha256Hex,
} from '@fedtwin/ledger';
import { createNode } from '@fedtwin/node';
import {
  createTwinVae, dirichletSplit, encodeTable, inferSchema, initBackend, loadDataset, tableFromCsv, toCsv, type TableSchema,
} from '@fedtwin/models';

// ------------------------------------------------------------------------------------------------
// Raw requests and replies
// ------------------------------------------------------------------------------------------------

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

export function frame(payload: Uint8Array): Uint8Array {
  return concat([encodeVarint(payload.byteLength), payload]);
}

export type Reply =
  | { kind: 'success'; envelope: { v: 1; header: unknown; bodyLength?: number }; body?: Uint8Array; ms: number }
  | { kind: 'error'; code: string; message: string; ms: number }
  | { kind: 'reset'; detail: string; received: number; ms: number }
  | { kind: 'timeout'; received: number; ms: number }
  | { kind: 'garbage'; detail: string; ms: number };

const CODE_RE = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Read everything the responder sends until it closes its side (or resets, or `timeoutMs` passes). */
function collect(stream: Stream, timeoutMs: number): Promise<{ bytes: Uint8Array; end: 'closed' | 'reset' | 'timeout'; detail: string }> {
  return new Promise((resolve) => {
    const chunks: Uint8Array[] = [];
    let done = false;
    const finish = (end: 'closed' | 'reset' | 'timeout', detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.removeEventListener('message', onMessage);
      stream.removeEventListener('remoteCloseWrite', onRemoteClose);
      stream.removeEventListener('close', onClose);
      resolve({ bytes: concat(chunks), end, detail });
    };
    const onMessage = (evt: { data: unknown }): void => {
      const d = evt.data as Uint8Array | { subarray(): Uint8Array };
      chunks.push(d instanceof Uint8Array ? d.slice() : d.subarray().slice());
    };
    const onRemoteClose = (): void => finish('closed', '');
    const onClose = (evt: Event): void => {
      const err = (evt as Event & { error?: Error }).error;
      finish(err ? 'reset' : 'closed', err ? `${err.name}: ${err.message}` : '');
    };
    const timer = setTimeout(() => finish('timeout', ''), timeoutMs);
    stream.addEventListener('message', onMessage as never);
    stream.addEventListener('remoteCloseWrite', onRemoteClose);
    stream.addEventListener('close', onClose);
    if (stream.remoteWriteStatus !== 'writable' || stream.status === 'closed' || stream.status === 'aborted' || stream.status === 'reset') {
      finish(stream.status === 'reset' || stream.status === 'aborted' ? 'reset' : 'closed', 'already ended');
    }
  });
}

function decodeVarintAt(bytes: Uint8Array, off: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8 && off + i < bytes.length; i++) {
    const b = bytes[off + i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return { value, next: off + i + 1 };
    scale *= 128;
  }
  return undefined;
}

/** Parse a responder's bytes as one response (header frame, body frames). */
export function parseReply(bytes: Uint8Array, end: 'closed' | 'reset' | 'timeout', detail: string, ms: number): Reply {
  if (bytes.length === 0) {
    if (end === 'timeout') return { kind: 'timeout', received: 0, ms };
    return { kind: 'reset', detail: `${end}${detail ? `: ${detail}` : ''} with no reply`, received: 0, ms };
  }
  const p = decodeVarintAt(bytes, 0);
  if (!p || p.next + p.value > bytes.length) {
    if (end === 'timeout') return { kind: 'timeout', received: bytes.length, ms };
    return { kind: 'garbage', detail: `incomplete reply header (${bytes.length} bytes, ${end})`, ms };
  }
  let env: unknown;
  try {
    env = JSON.parse(strictUtf8.decode(bytes.subarray(p.next, p.next + p.value)));
  } catch (e) {
    return { kind: 'garbage', detail: `reply header is not JSON: ${(e as Error).message}`, ms };
  }
  const o = env as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || o.v !== 1) return { kind: 'garbage', detail: `reply envelope ${JSON.stringify(env).slice(0, 200)}`, ms };
  if ('error' in o) {
    const e = o.error as Record<string, unknown>;
    if (e === null || typeof e !== 'object' || typeof e.code !== 'string' || !CODE_RE.test(e.code) || typeof e.message !== 'string' || Object.keys(o).length !== 2) {
      return { kind: 'garbage', detail: `bad error envelope ${JSON.stringify(env).slice(0, 300)}`, ms };
    }
    return { kind: 'error', code: e.code, message: e.message, ms };
  }
  if (!('header' in o) || Object.keys(o).some((k) => !['v', 'header', 'bodyLength'].includes(k))) {
    return { kind: 'garbage', detail: `bad success envelope ${JSON.stringify(env).slice(0, 300)}`, ms };
  }
  let off = p.next + p.value;
  let body: Uint8Array | undefined;
  if (o.bodyLength !== undefined) {
    const want = o.bodyLength as number;
    const parts: Uint8Array[] = [];
    let got = 0;
    while (got < want) {
      const f = decodeVarintAt(bytes, off);
      if (!f || f.next + f.value > bytes.length) {
        if (end === 'timeout') return { kind: 'timeout', received: bytes.length, ms };
        return { kind: 'garbage', detail: `reply body cut short (${got} of ${want} bytes, ${end}${detail ? `: ${detail}` : ''})`, ms };
      }
      parts.push(bytes.subarray(f.next, f.next + f.value));
      got += f.value;
      off = f.next + f.value;
    }
    body = concat(parts);
  }
  if (end === 'timeout') return { kind: 'timeout', received: bytes.length, ms };
  return { kind: 'success', envelope: o as { v: 1; header: unknown }, ...(body ? { body } : {}), ms };
}

/** One member's long-lived connection to the aggregator; each case is a fresh stream on it. */
export class RawClient {
  readonly host: WireHost;
  readonly key: PrivateKey;
  readonly peerId: string;
  readonly #addr: string;
  #conn: Connection | undefined;
  dials = 0;

  constructor(host: WireHost, key: PrivateKey, addr: string) {
    this.host = host;
    this.key = key;
    this.peerId = host.peerId;
    this.#addr = addr;
  }

  async connection(): Promise<Connection> {
    if (this.#conn?.status === 'open') return this.#conn;
    this.dials++;
    this.#conn = await this.host.libp2p.dial(multiaddr(this.#addr), { signal: AbortSignal.timeout(10_000) });
    return this.#conn;
  }

  /** Open a stream, send `bytes`, close our side, read the reply (bounded by `timeoutMs`). */
  async send(name: string, bytes: Uint8Array, timeoutMs: number): Promise<Reply> {
    const t0 = performance.now();
    const conn = await this.connection();
    const stream = await conn.newStream(protocolId(name), { signal: AbortSignal.timeout(10_000) });
    const replyP = collect(stream, timeoutMs);
    try {
      if (bytes.length > 0) stream.send(bytes);
      await stream.close({ signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      // a refusal may reset the stream while we still write; the reply says why
    }
    const r = await replyP;
    if (stream.status === 'open' || stream.status === 'closing') stream.abort(new Error('fuzz case done'));
    return parseReply(r.bytes, r.end, r.detail, performance.now() - t0);
  }
}

type StreamHandler = (stream: Stream, connection: Connection) => void | Promise<void>;

/** Record the libp2p stream handlers the wire host registers (the wire layer's real `serve`). */
export function captureHandlers(host: WireHost): Map<string, StreamHandler> {
  const handlers = new Map<string, StreamHandler>();
  const node = host.libp2p as unknown as { handle: (p: string | string[], h: StreamHandler, o?: unknown) => Promise<void> };
  const original = node.handle.bind(node);
  node.handle = async (p, h, o) => {
    for (const name of Array.isArray(p) ? p : [p]) handlers.set(name, h);
    return original(p, h, o);
  };
  return handlers;
}

/**
 * The same requests without TCP, Noise and yamux: an in-memory libp2p stream pair (libp2p's own mock
 * muxer) handed to the handler the wire host registered, as if `peerId` had opened it. Framing,
 * envelope and schema checks, authorisation, the aggregator handler and the reply are the real code.
 */
export class DirectClient {
  readonly peerId: string;
  readonly #handlers: Map<string, StreamHandler>;
  readonly #conn: Connection;
  #local: { createStream(o: { protocol: string }): Promise<Stream> } | undefined;
  readonly #arrived = new Map<string, Stream>();
  readonly #waiting = new Map<string, (s: Stream) => void>();

  constructor(handlers: Map<string, StreamHandler>, peerId: string) {
    this.peerId = peerId;
    this.#handlers = handlers;
    this.#conn = { remotePeer: peerIdFromString(peerId), status: 'open' } as unknown as Connection;
  }

  /** One in-memory connection (libp2p's mock multiaddr connection + mock muxer) for all cases, like one TCP connection. */
  #muxers(): { createStream(o: { protocol: string }): Promise<Stream> } {
    if (this.#local) return this.#local;
    const [outbound, inbound] = multiaddrConnectionPair({ delay: 0 });
    const local = mockMuxer().createStreamMuxer(outbound) as unknown as { createStream(o: { protocol: string }): Promise<Stream> };
    const remote = mockMuxer().createStreamMuxer(inbound) as unknown as EventTarget;
    remote.addEventListener('stream', (evt) => {
      const s = (evt as CustomEvent<Stream>).detail;
      const w = this.#waiting.get(s.id);
      if (w) {
        this.#waiting.delete(s.id);
        w(s);
      } else this.#arrived.set(s.id, s);
    });
    this.#local = local;
    return local;
  }

  #inbound(id: string): Promise<Stream> {
    const s = this.#arrived.get(id);
    if (s) {
      this.#arrived.delete(id);
      return Promise.resolve(s);
    }
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }

  async send(name: string, bytes: Uint8Array, timeoutMs: number): Promise<Reply> {
    const t0 = performance.now();
    const protocol = protocolId(name);
    const handler = this.#handlers.get(protocol);
    if (!handler) throw new Error(`no handler registered for ${protocol}`);
    const outbound = await this.#muxers().createStream({ protocol });
    const replyP = collect(outbound, timeoutMs);
    const inbound = await this.#inbound(outbound.id);
    (inbound as { protocol: string }).protocol = protocol;
    void Promise.resolve(handler(inbound, this.#conn)).catch(() => undefined);
    try {
      if (bytes.length > 0) outbound.send(bytes);
      await outbound.close({ signal: AbortSignal.timeout(timeoutMs) });
    } catch {
      // refused mid-send; the reply says why
    }
    const r = await replyP;
    if (outbound.status === 'open' || outbound.status === 'closing') outbound.abort(new Error('fuzz case done'));
    return parseReply(r.bytes, r.end, r.detail, performance.now() - t0);
  }
}

export type Client = RawClient | DirectClient;

// ------------------------------------------------------------------------------------------------
// Requests, mutations and the oracle
// ------------------------------------------------------------------------------------------------

/** A well-formed request: the envelope (before encoding) and its body. */
export interface BaseRequest {
  protocol: string;
  header: unknown;
  body?: Uint8Array;
}

export interface ProtocolSpec {
  schema: z.ZodType<unknown>;
  maxBodyBytes: number;
  /** Long-polls may legitimately take their waitMs. */
  longPoll?: boolean;
  /** The handler has an `authorize` hook: it may refuse from a valid header before the body is read. */
  authorize?: boolean;
  /** The handler's maxInboundStreams per connection, when it is 1 (libp2p resets a second concurrent stream). */
  oneStream?: boolean;
}

export const PROTOCOL_SPECS: Record<string, ProtocolSpec> = {
  [Protocols.join]: { schema: JoinRequest, maxBodyBytes: 0 },
  [Protocols.task]: { schema: TaskRequest, maxBodyBytes: 0, longPoll: true },
  [Protocols.update]: { schema: UpdateHeader, maxBodyBytes: -1, authorize: true }, // filled in per scheme
  [Protocols.aggregate]: { schema: AggregateRequest, maxBodyBytes: 0 },
  [Protocols.refuse]: { schema: RefuseRequest, maxBodyBytes: 0 },
  [Protocols.key]: { schema: KeyRequest, maxBodyBytes: 0, longPoll: true },
  [Protocols.keyPublish]: { schema: KeyPublishHeader, maxBodyBytes: MAX_SEALED_KEYS_BYTES, authorize: true, oneStream: true },
  [Protocols.ledger]: { schema: LedgerSyncRequest, maxBodyBytes: 0 },
  [Protocols.cosign]: { schema: CosignRequest, maxBodyBytes: 0 },
  [Protocols.verdict]: { schema: VerdictRequest as unknown as z.ZodType<unknown>, maxBodyBytes: 0 },
  [Protocols.probe]: { schema: ProbeRequest, maxBodyBytes: 0 },
  [Protocols.witnesses]: { schema: WitnessesRequest, maxBodyBytes: 0 },
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** JSON-level edits of the envelope `{ v, header, bodyLength? }`. */
type JsonMutation =
  | { op: 'set-header-field'; key: string; value: unknown }
  | { op: 'delete-header-field'; key: string }
  | { op: 'replace-header'; value: unknown }
  | { op: 'set-envelope-field'; key: string; value: unknown }
  | { op: 'delete-envelope-field'; key: string }
  | { op: 'number-text'; nth: number; text: string };

/** Body edits: replace, resize, garbage. */
type BodyMutation =
  | { op: 'garbage'; bytes: Uint8Array }
  | { op: 'flip'; at: number; mask: number }
  | { op: 'resize'; delta: number }
  | { op: 'drop' }
  | { op: 'declare'; bodyLength: unknown };

/** Frame-level edits after encoding. */
type FrameMutation =
  | { op: 'rechunk'; sizes: number[] }
  | { op: 'duplicate'; index: number }
  | { op: 'drop'; index: number }
  | { op: 'swap'; a: number; b: number }
  | { op: 'prefix'; index: number; prefix: Uint8Array }
  | { op: 'append-frame'; payload: Uint8Array };

/** Byte-level edits of the whole stream. */
type ByteMutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'append'; bytes: Uint8Array };

export interface FuzzCase {
  base: number;
  json: JsonMutation[];
  body: BodyMutation[];
  frames: FrameMutation[];
  bytes: ByteMutation[];
}

/** Varints a responder must refuse or bound: huge, non-minimal, overlong, unterminated. */
const weirdPrefixes: Uint8Array[] = [
  encodeVarint(2 ** 30), encodeVarint(2 ** 53 - 1), encodeVarint(64 * 1024 + 1), encodeVarint(4 * 1024 * 1024 + 1),
  Uint8Array.of(0x80, 0x00), Uint8Array.of(0x81, 0x80, 0x00), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10),
  Uint8Array.of(0x80), Uint8Array.of(0x00), Uint8Array.of(0x01),
];

const numberTexts = ['1e999', '-1e999', '-0', '1e-400', '123456789012345678901234567890', '9007199254740993', '0.5', '-1', '1E3', '0x10', 'NaN', 'Infinity', '01', '1.', '.5', '"1"'];

/** The mutation arbitrary for a protocol with `bases` valid requests. `pool` adds other peers' ids, replayed entries, etc. */
export function caseArb(nBases: number, headerKeys: string[], pool: unknown[]): fc.Arbitrary<FuzzCase> {
  const huge = fc.constantFrom<unknown>(2 ** 53, 2 ** 53 + 2, 1e308, -1e308, 2 ** 31, -(2 ** 31) - 1, 1e12 + 1, 5e-324, -1, 0, 1, 30_000, 30_001, MAX_SEALED_KEYS_BYTES + 1);
  const strs = fc.constantFrom<unknown>('NaN', 'Infinity', '-1', '', ' ', '0', 'null', 'true', '1e999', '\u0000', '\ud800', 'x'.repeat(300), 'A'.repeat(20_000), '../../etc/passwd', '<script>', '{"v":1}', 'f32le', 'bfv', 'plaintext', 'NODE_BUDGET_EXHAUSTED_NOT');
  const weird: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 3, arbitrary: huge },
    { weight: 3, arbitrary: strs },
    { weight: 3, arbitrary: fc.constantFrom(...(pool.length ? pool : [null])) },
    { weight: 2, arbitrary: fc.integer() },
    { weight: 1, arbitrary: fc.double() },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [1], { a: 1 }, [null]) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...headerKeys) }, { weight: 1, arbitrary: fc.constantFrom('extra', '__proto__', 'constructor', 'toString', '', 'Round') });
  const json: fc.Arbitrary<JsonMutation> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('set-header-field' as const), key, value: weird }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete-header-field' as const), key }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('replace-header' as const), value: weird }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('set-envelope-field' as const), key: fc.constantFrom('v', 'bodyLength', 'extra', 'header', 'error'), value: weird }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete-envelope-field' as const), key: fc.constantFrom('v', 'header', 'bodyLength') }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('number-text' as const), nth: fc.nat(12), text: fc.constantFrom(...numberTexts) }) },
  );
  const body: fc.Arbitrary<BodyMutation> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ op: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 256 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('resize' as const), delta: fc.integer({ min: -64, max: 64 }) }) },
    { weight: 1, arbitrary: fc.constant({ op: 'drop' as const }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('declare' as const), bodyLength: fc.oneof(fc.nat(2048), huge) }) },
  );
  const frames: fc.Arbitrary<FrameMutation> = fc.oneof(
    { weight: 2, arbitrary: fc.record({ op: fc.constant('rechunk' as const), sizes: fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 1, maxLength: 6 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicate' as const), index: fc.nat(8) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), index: fc.nat(8) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('swap' as const), a: fc.nat(8), b: fc.nat(8) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('prefix' as const), index: fc.nat(8), prefix: fc.constantFrom(...weirdPrefixes) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('append-frame' as const), payload: fc.uint8Array({ maxLength: 32 }) }) },
  );
  const bytes: fc.Arbitrary<ByteMutation> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  );
  // Most cases carry one or two mutations of one layer; some stack layers; a few stay valid.
  return fc.record({
    base: fc.nat(Math.max(0, nBases - 1)),
    json: fc.oneof({ weight: 3, arbitrary: fc.constant<never[]>([]) }, { weight: 3, arbitrary: fc.array(json, { minLength: 1, maxLength: 3 }) }),
    body: fc.oneof({ weight: 4, arbitrary: fc.constant<never[]>([]) }, { weight: 1, arbitrary: fc.array(body, { minLength: 1, maxLength: 2 }) }),
    frames: fc.oneof({ weight: 4, arbitrary: fc.constant<never[]>([]) }, { weight: 1, arbitrary: fc.array(frames, { minLength: 1, maxLength: 2 }) }),
    bytes: fc.oneof({ weight: 3, arbitrary: fc.constant<never[]>([]) }, { weight: 2, arbitrary: fc.array(bytes, { minLength: 1, maxLength: 3 }) }),
  });
}

function cloneJson<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** Apply a case to a base request: returns the exact bytes to put on the stream. */
export function buildCase(base: BaseRequest, c: FuzzCase): Uint8Array {
  let body = base.body ? base.body.slice() : undefined;
  let declared: unknown = body?.byteLength;
  let declaredSet = false;
  for (const m of c.body) {
    if (m.op === 'garbage') body = m.bytes.slice();
    else if (m.op === 'flip') { if (body && body.length) body[m.at % body.length]! ^= m.mask; }
    else if (m.op === 'resize') {
      const n = Math.max(0, (body?.length ?? 0) + m.delta);
      const nb = new Uint8Array(n);
      if (body) nb.set(body.subarray(0, Math.min(n, body.length)));
      body = nb;
    } else if (m.op === 'drop') body = undefined;
    else { declared = m.bodyLength; declaredSet = true; }
  }
  if (!declaredSet) declared = body?.byteLength;
  const env: Record<string, unknown> = { v: 1, header: cloneJson(base.header) };
  if (declared !== undefined) env.bodyLength = declared;
  let numberEdits: Array<{ nth: number; text: string }> = [];
  for (const m of c.json) {
    const h = env.header;
    if (m.op === 'set-header-field') {
      if (h !== null && typeof h === 'object' && !Array.isArray(h)) Object.defineProperty(h, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
      else env.header = { [m.key]: m.value };
    } else if (m.op === 'delete-header-field') {
      if (h !== null && typeof h === 'object') delete (h as Record<string, unknown>)[m.key];
    } else if (m.op === 'replace-header') env.header = m.value;
    else if (m.op === 'set-envelope-field') env[m.key] = m.value;
    else if (m.op === 'delete-envelope-field') delete env[m.key];
    else numberEdits.push(m);
  }
  let text = JSON.stringify(env);
  for (const e of numberEdits) {
    let i = 0;
    text = text.replace(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g, (s) => (i++ === e.nth ? e.text : s));
  }
  numberEdits = [];
  let frames: Uint8Array[] = [frame(utf8.encode(text))];
  if (body !== undefined && body.length > 0) frames.push(frame(body));
  for (const m of c.frames) {
    if (m.op === 'rechunk') {
      if (!body || body.length === 0) continue;
      // Sizes cycle (a 0 makes an empty frame, which is invalid); after 64 frames the rest goes as one.
      const out: Uint8Array[] = [];
      let off = 0;
      for (let i = 0; off < body.length; i++) {
        const n = i >= 64 ? body.length - off : Math.min(m.sizes[i % m.sizes.length]!, body.length - off);
        out.push(frame(body.subarray(off, off + n)));
        off += n;
      }
      frames = [frames[0]!, ...out];
    } else if (m.op === 'duplicate') {
      if (frames.length === 0) continue;
      const i = m.index % frames.length;
      frames.splice(i, 0, frames[i]!);
    } else if (m.op === 'drop') {
      if (frames.length > 0) frames.splice(m.index % frames.length, 1);
    } else if (m.op === 'swap') {
      if (frames.length > 1) {
        const a = m.a % frames.length;
        const b = m.b % frames.length;
        [frames[a], frames[b]] = [frames[b]!, frames[a]!];
      }
    } else if (m.op === 'prefix') {
      if (frames.length === 0) continue;
      const i = m.index % frames.length;
      const f = frames[i]!;
      const old = decodeVarintAt(f, 0);
      frames[i] = concat([m.prefix, f.subarray(old?.next ?? 0)]);
    } else frames.push(frame(m.payload));
  }
  let bytes = concat(frames);
  for (const m of c.bytes) {
    if (m.op === 'flip') { if (bytes.length) bytes[m.at % bytes.length]! ^= m.mask; }
    else if (m.op === 'truncate') bytes = bytes.subarray(0, m.at % (bytes.length + 1)).slice();
    else if (m.op === 'insert') { const at = m.at % (bytes.length + 1); bytes = concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]); }
    else if (m.op === 'delete') { const at = m.at % (bytes.length + 1); bytes = concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]); }
    else bytes = concat([bytes, m.bytes]);
  }
  return bytes;
}

/**
 * What a conforming responder must do with `bytes`, judged independently of the wire code: 'valid'
 * (one minimal-varint header frame, strict envelope, declared body in 1..4 MiB frames, nothing after,
 * header passing the protocol's schema) or why not. Only 'valid' requests may be answered with success.
 */
export function oracle(spec: ProtocolSpec, bytes: Uint8Array): { valid: true; header: Record<string, unknown> } | { valid: false; why: string; headerValid: boolean } {
  let headerValid = false;
  const bad = (why: string) => ({ valid: false as const, why, headerValid });
  const minimalVarint = (off: number): { value: number; next: number } | undefined => {
    const v = decodeVarintAt(bytes, off);
    if (!v) return undefined;
    if (v.next - off > 1 && bytes[v.next - 1] === 0) return undefined;
    if (!Number.isSafeInteger(v.value)) return undefined;
    return v;
  };
  const h = minimalVarint(0);
  if (!h || h.next + h.value > bytes.length) return bad('header frame');
  let env: unknown;
  try {
    env = JSON.parse(strictUtf8.decode(bytes.subarray(h.next, h.next + h.value)));
  } catch {
    return bad('header json');
  }
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return bad('envelope');
  const e = env as Record<string, unknown>;
  if (e.v !== 1 || !('header' in e) || Object.keys(e).some((k) => !['v', 'header', 'bodyLength'].includes(k))) return bad('envelope');
  const bl = e.bodyLength;
  if (bl !== undefined && !(typeof bl === 'number' && Number.isSafeInteger(bl) && bl >= 0)) return bad('bodyLength');
  if (bl !== undefined && bl > spec.maxBodyBytes) return bad('body too large');
  if (!spec.schema.safeParse(e.header).success) return bad('schema');
  headerValid = true;
  let off = h.next + h.value;
  let left = (bl as number | undefined) ?? 0;
  while (left > 0) {
    const f = minimalVarint(off);
    if (!f || f.value === 0 || f.value > left || f.value > 4 * 1024 * 1024 || f.next + f.value > bytes.length) return bad('body frame');
    left -= f.value;
    off = f.next + f.value;
  }
  if (off !== bytes.length) return bad('trailing bytes');
  return { valid: true, header: e.header as Record<string, unknown> };
}

export function encodeRequest(base: BaseRequest): Uint8Array {
  return buildCase(base, { base: 0, json: [], body: [], frames: [], bytes: [] });
}

// ------------------------------------------------------------------------------------------------
// The property: run a protocol's cases, check every reply
// ------------------------------------------------------------------------------------------------

export interface ProtocolStats {
  cases: number;
  success: number;
  errors: Record<string, number>;
  maxMs: number;
}

export interface RunOptions {
  client: Client;
  protocol: string;
  bases: BaseRequest[];
  pool: unknown[];
  /** fast-check runs; each run sends `batch` cases concurrently. */
  runs: number;
  batch: number;
  seed: number;
  stats: Record<string, ProtocolStats>;
  /** A valid request that must still succeed between batches (the aggregator is alive). */
  alive: () => Promise<void>;
  aliveEvery?: number;
  caseTimeoutMs?: number;
  /** Codes that may answer a well-formed request on this protocol in the state the fuzz runs in. */
  allowedCodes?: RegExp;
  /** Where a well-formed long poll that may wait longer than DEFER_WAIT_MS goes instead of holding its batch: its
   *  verdict (a failure message, or undefined) comes later, while the other protocols run; the suite awaits every
   *  one before it ends. */
  defer?: (verdict: Promise<string | undefined>) => void;
}

/** A long poll allowed to wait longer than this is deferred (RunOptions.defer): a 30 s wait is legitimate, idle time. */
export const DEFER_WAIT_MS = 2000;

export function verdictFor(spec: ProtocolSpec, bytes: Uint8Array, reply: Reply, allowed: RegExp): string | undefined {
  const o = oracle(spec, bytes);
  if (reply.kind === 'timeout') return `no reply within the case deadline (${reply.received} bytes received)`;
  if (reply.kind === 'reset') return `bare reset: ${reply.detail}`;
  if (reply.kind === 'garbage') return `unparseable reply: ${reply.detail}`;
  if (reply.kind === 'error') {
    if (reply.code === 'WIRE_REMOTE_INTERNAL') return `handler crashed (WIRE_REMOTE_INTERNAL: ${reply.message})`;
    // A hook that authorizes from the header may refuse before the (broken) body is read; nothing else may answer a malformed request.
    const refusedEarly = !o.valid && o.headerValid && spec.authorize === true && allowed.test(reply.code);
    if (!o.valid && !reply.code.startsWith('WIRE_') && !refusedEarly) return `malformed request (${o.why}) reached the handler: ${reply.code} ${reply.message}`;
    if (o.valid && !allowed.test(reply.code)) return `well-formed request answered ${reply.code}: ${reply.message}`;
    return undefined;
  }
  if (!o.valid) return `malformed request (${o.why}) answered with success ${JSON.stringify(reply.envelope).slice(0, 200)}`;
  return undefined;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Run `runs × batch` mutated requests for one protocol and assert the reply property on each. */
export async function fuzzProtocol(o: RunOptions): Promise<void> {
  const spec = PROTOCOL_SPECS[o.protocol]!;
  const st = (o.stats[o.protocol] ??= { cases: 0, success: 0, errors: {}, maxMs: 0 });
  const headerKeys = [...new Set(o.bases.flatMap((b) => (b.header && typeof b.header === 'object' ? Object.keys(b.header) : [])))];
  // Handlers answer with their own codes (AGG_*; LEDGER_* for notes and entries; HE_* for sealed keys).
  const allowed = o.allowedCodes ?? /^(AGG_|LEDGER_|HE_|WIRE_STREAM_LIMIT$|WIRE_INFLIGHT_LIMIT$)/;
  let runIndex = 0;
  const failures: string[] = [];
  const property = fc.asyncProperty(fc.array(caseArb(o.bases.length, headerKeys.length ? headerKeys : ['x'], o.pool), { minLength: o.batch, maxLength: o.batch }), async (cases) => {
    runIndex++;
    /** Record a reply and judge it: the failure message, or undefined. */
    const judge = (c: FuzzCase, bytes: Uint8Array, reply: Reply): string | undefined => {
      st.maxMs = Math.max(st.maxMs, reply.ms);
      if (reply.kind === 'success') st.success++;
      if (reply.kind === 'error') st.errors[reply.code] = (st.errors[reply.code] ?? 0) + 1;
      const v = verdictFor(spec, bytes, reply, allowed);
      if (v === undefined) return undefined;
      return `${o.protocol} (client ${o.client.peerId}, ${o.client instanceof RawClient ? 'libp2p' : 'direct'}): ${v}\n  case: ${JSON.stringify(c, (_k, x) => (x instanceof Uint8Array ? `hex:${hex(x)}` : x))}\n  request bytes (${bytes.length}, hex): ${hex(bytes).slice(0, 16_000)}`;
    };
    const one = async (c: FuzzCase) => {
      const bytes = buildCase(o.bases[c.base]!, c);
      const orc = oracle(spec, bytes);
      const wait = spec.longPoll && orc.valid && typeof orc.header.waitMs === 'number' ? orc.header.waitMs : 0;
      const send = o.client.send(o.protocol, bytes, (o.caseTimeoutMs ?? 5000) + wait);
      st.cases++; // counted when sent: a deferred case counts before its reply
      if (wait > DEFER_WAIT_MS && o.defer) {
        o.defer(send.then((reply) => judge(c, bytes, reply)));
        return undefined;
      }
      return { c, bytes, reply: await send };
    };
    // A protocol limited to one stream per connection gets its cases one after the other.
    const results = [];
    if (spec.oneStream) for (const c of cases) results.push(await one(c));
    else results.push(...(await Promise.all(cases.map(one))));
    for (const r of results) {
      if (r === undefined) continue;
      const msg = judge(r.c, r.bytes, r.reply);
      if (msg !== undefined) {
        failures.push(msg);
        throw new Error(msg);
      }
    }
    if (o.aliveEvery !== undefined && runIndex % o.aliveEvery === 0) await o.alive();
  });
  try {
    await fc.assert(property, { seed: o.seed, numRuns: o.runs, endOnFailure: false, timeout: 120_000, interruptAfterTimeLimit: undefined });
  } catch (e) {
    // fast-check's report carries the seed, the path and the shrunk counterexample; keep the first raw failure too.
    const cause = (e as Error).cause;
    const why = cause instanceof Error ? `${cause.name}: ${cause.message}\n${cause.stack ?? ''}` : String(cause ?? '');
    throw new Error(`${(e as Error).message}\ncause: ${why.slice(0, 4000)}\nfirst failing case: ${failures[0] ?? '(none recorded)'}`);
  }
  await o.alive();
}

// ------------------------------------------------------------------------------------------------
// The environment: an aggregator with its ledger, fuzzing members, then real nodes
// ------------------------------------------------------------------------------------------------

export const silent = { info() {}, warn() {}, error() {} };

/** A logger that keeps the aggregator's error lines (an internal error is a finding). */
export function errorLog(): { info(): void; warn(): void; error(obj: Record<string, unknown>, msg?: string): void; errors: string[] } {
  const errors: string[] = [];
  return { info() {}, warn() {}, error: (obj, msg) => { errors.push(`${msg ?? ''} ${JSON.stringify(obj)}`); }, errors };
}

export interface Site {
  key: PrivateKey;
  id: string;
  csv: string;
}

export interface FuzzEnv {
  dir: string;
  aggKey: PrivateKey;
  aggHost: WireHost;
  agg: Aggregator;
  addr: string;
  schema: TableSchema;
  modelValues: number;
  model: { kind: 'vae'; latentDim: number; hidden: number; seed: number };
  /** Fuzzing members (in the aggregator's member list). */
  fuzzer: RawClient;
  helper: RawClient;
  /** Admitted by the wire gate but not a consortium member. */
  stranger: RawClient;
  /** The same members without the network (DirectClient). */
  direct: { fuzzer: DirectClient; helper: DirectClient; stranger: DirectClient };
  sites: Site[];
  aggLog: ReturnType<typeof errorLog>;
  wireLog: ReturnType<typeof errorLog>;
  ledgerDir: string;
  secureAggregation: SecureAggregation;
  /** The manifest every site pins. */
  pinned: { manifest: Manifest; hash: string };
  stop(): Promise<void>;
}

/** Build the consortium: 2 real sites (CSV shards), 2 fuzzing members, a stranger the gate admits. */
export async function createFuzzEnv(opts: { bfv: boolean; totalRounds: number; prefix: string }): Promise<FuzzEnv> {
  const dir = await mkdtemp(join(tmpdir(), `fedtwin-${opts.prefix}-`));
  await initBackend();
  const ds = await loadDataset('breast_cancer_wdbc');
  const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
  const table = tableFromCsv(ds.header, ds.rows, schema);
  const labels = Array.from(encodeTable(table).cond);
  const parts = dirichletSplit(labels, 2, 1, 3);
  const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 1 };
  const layout = encodeTable({ schema, rows: [] });
  const vae = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: model.latentDim, hidden: model.hidden, seed: model.seed });
  const modelValues = vae.sharedSize;
  vae.dispose();

  const sites: Site[] = [];
  for (let i = 0; i < 2; i++) {
    const key = await generateIdentity();
    const csv = join(dir, `site${i}.csv`);
    await writeFile(csv, toCsv(ds.header, parts[i]!.map((r) => ds.rows[r]!)));
    sites.push({ key, id: peerIdOf(key), csv });
  }
  const fuzzKey = await generateIdentity();
  const helperKey = await generateIdentity();
  const strangerKey = await generateIdentity();
  const members = [peerIdOf(fuzzKey), peerIdOf(helperKey), ...sites.map((s) => s.id)];
  const aggKey = await generateIdentity();
  const wireLog = errorLog();
  const aggHost = await createWireHost({ privateKey: aggKey, allow: [...members, peerIdOf(strangerKey)], logger: wireLog });
  const handlers = captureHandlers(aggHost);
  // The consortium manifest the members pin; the aggregator runs exactly what it says.
  const manifest = parseManifest({
    consortium: 'fuzz', aggregator: aggHost.peerId, members: members.map((peerId) => ({ peerId })), model,
    training: { epochs: 1, batchSize: 64, learningRate: 0.003 },
    // two of the four members are the fuzzer's identities, which never co-sign: the two real sites are the witnesses
    rounds: { total: opts.totalRounds, quorum: 2, minParticipants: 2, deadlineSeconds: 900, witnessQuorum: 2 },
    // the fuzzer's updates carry no privacy spend: this consortium says so explicitly (DP is the default)
    privacy: { mode: 'off' },
    secureAggregation: opts.bfv ? { scheme: 'bfv', clip: 1, maxParticipants: members.length, keyHolder: members[0]! } : { scheme: 'plaintext' },
  });
  const pinned = { manifest, hash: manifestHash(manifest) };
  const secureAggregation: SecureAggregation = secureAggregationOf(manifest);
  const ledgerDir = join(dir, 'ledger');
  const aggLog = errorLog();
  const agg = await createAggregator({
    host: aggHost, dataDir: join(dir, 'state'), consortium: 'fuzz', members, schema, model, modelValues, strategy: 'fedavg',
    training: manifest.training,
    rounds: { totalRounds: opts.totalRounds, quorum: 2, minParticipants: 2, deadlineSeconds: 900 },
    privacy: privacyPolicyOf(manifest), manifest: pinned,
    secureAggregation, ledger: { dir: ledgerDir, identity: aggKey }, logger: aggLog,
  });
  const addr = aggHost.addrs()[0]!;
  const client = async (key: PrivateKey) => new RawClient(await createWireHost({ privateKey: key, listen: [], allow: [aggHost.peerId] }), key, addr);
  const fuzzer = await client(fuzzKey);
  const helper = await client(helperKey);
  const stranger = await client(strangerKey);
  return {
    direct: { fuzzer: new DirectClient(handlers, fuzzer.peerId), helper: new DirectClient(handlers, helper.peerId), stranger: new DirectClient(handlers, stranger.peerId) },
    dir, aggKey, aggHost, agg, addr, schema, modelValues, model, pinned, fuzzer, helper, stranger, sites, aggLog, wireLog, ledgerDir, secureAggregation,
    async stop() {
      for (const c of [fuzzer, helper, stranger]) await c.host.stop().catch(() => undefined);
      await agg.stop().catch(() => undefined);
      await aggHost.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Send one well-formed request and return its reply (asserting nothing). */
export async function call(client: Client, base: BaseRequest, timeoutMs = 20_000): Promise<Reply> {
  return client.send(base.protocol, encodeRequest(base), timeoutMs);
}

export async function signedEntry(key: PrivateKey, payload: Record<string, unknown>): Promise<string> {
  const e = await createEntry(payload as Parameters<typeof createEntry>[0], createEntrySigner(key, 'fedtwin/fuzz'));
  return Buffer.from(e.bytes).toString('base64');
}

export function cosigned(note: string, key: PrivateKey): string {
  return cosignNote(note, createCosignatureSigner(peerIdOf(key), key)); // C2SP tlog-cosignature/v1, as members sign
}

/** Run the two real sites (createNode in-process) until the federation finishes; returns their results. */
export async function finishFederation(env: FuzzEnv, timeoutMs: number): Promise<Array<{ version: number; hash: string; contributions: number }>> {
  const hosts: WireHost[] = [];
  const nodes = [];
  for (const [i, s] of env.sites.entries()) {
    const host = await createWireHost({ privateKey: s.key, listen: [], allow: [env.aggHost.peerId] });
    hosts.push(host);
    const dataDir = join(env.dir, `site${i}`);
    await mkdir(dataDir, { recursive: true });
    nodes.push(await createNode({
      host, aggregator: env.addr, dataDir: join(dataDir, 'state'), csvPath: s.csv, backend: 'cpu', logger: silent, consortium: env.pinned, allowPrivacyOff: true,
      identity: s.key, ledgerDir: join(dataDir, 'ledger'), heKeyFile: join(dataDir, 'he-secret.key'), heThreads: 1, seed: i + 1,
      seededNoise: true, unreachableGiveUpSeconds: 30,
    }));
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`federation did not finish within ${timeoutMs} ms`)), timeoutMs); });
    return await Promise.race([Promise.all(nodes.map((n) => n.run())), timeout]);
  } finally {
    clearTimeout(timer);
    for (const n of nodes) await n.stop().catch(() => undefined);
    for (const h of hosts) await h.stop().catch(() => undefined);
  }
}

/** The real verifier over the aggregator's ledger directory (after the aggregator closed it). */
export async function verifyLedger(dir: string): Promise<Awaited<ReturnType<typeof verifyLedgerDir>>> {
  return verifyLedgerDir(dir);
}

export { sha256Hex };

/** A one-line summary per protocol for the test log. */
export function summarize(stats: Record<string, ProtocolStats>): string {
  return Object.entries(stats).map(([p, s]) => {
    const codes = Object.entries(s.errors).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([c, n]) => `${c}×${n}`).join(' ');
    return `${p.padEnd(12)} ${String(s.cases).padStart(6)} cases, ${s.success} success, max ${Math.round(s.maxMs)} ms; ${codes}`;
  }).join('\n');
}

export type { Json };

// ------------------------------------------------------------------------------------------------
// Scenarios: the valid requests of every protocol in the state the fuzz runs in
// ------------------------------------------------------------------------------------------------

export interface Corpus {
  bases: BaseRequest[];
  pool: unknown[];
}

export function expectSuccess(r: Reply, what: string): Extract<Reply, { kind: 'success' }> {
  if (r.kind !== 'success') throw new Error(`${what}: expected success, got ${JSON.stringify(r).slice(0, 500)}`);
  return r;
}

const enc = new TextEncoder();

/** HE material of a BFV scenario: the consortium key (the fuzzer is its holder) and the sealed boxes. */
export interface BfvMaterial {
  ctx: unknown;
  key: { keyId: string };
  boxes: unknown[];
  publish: BaseRequest;
  encrypt(values: Float32Array, round: number, baseHash: string, member?: string): Uint8Array;
}

/** The fuzzer (key holder) makes the consortium key and seals it for every other member (not yet published). */
export async function makeKey(env: FuzzEnv): Promise<BfvMaterial> {
  if (env.secureAggregation.scheme !== 'bfv') throw new Error('not a BFV consortium');
  const he = await import('@fedtwin/he');
  const ctx = await he.createHeContext(env.secureAggregation.params);
  const key = he.generateKeys(ctx);
  const bytes = he.serializeSecretKey(key);
  const boxes = env.secureAggregation.members.filter((m) => m !== env.fuzzer.peerId)
    .map((m) => he.sealKeyFor({ recipientPeerId: m, secretKey: bytes, keyId: key.keyId, epoch: 0, holderKey: env.fuzzer.key }));
  return {
    ctx, key, boxes,
    publish: { protocol: Protocols.keyPublish, header: { keyId: key.keyId, epoch: 0, boxes: boxes.length }, body: enc.encode(JSON.stringify(boxes)) },
    encrypt: (values, round, baseHash, member = env.fuzzer.peerId) => he.encryptVector(ctx, key, values, { member, tag: he.roundTag({ keyId: key.keyId, round, baseHash }) }).update,
  };
}

/**
 * Valid requests (and a pool of replayable values) for every protocol the aggregator serves, from the
 * fuzzer's point of view in the current state. Nothing here can start an investigation or a key
 * rotation: the pool holds no verdict entry saying "unusable" and no sealed box for another key.
 */
export async function buildCorpus(env: FuzzEnv, bfv?: BfvMaterial): Promise<Record<string, Corpus>> {
  const f = env.fuzzer;
  const task = expectSuccess(await call(f, { protocol: Protocols.task, header: { afterRound: 0, waitMs: 0 } }), 'task').envelope.header as Record<string, unknown>;
  const state = await env.agg.state();
  const round = task.status === 'open' ? (task.round as number) : state.round + 1;
  const { genesisModelVersion } = await import('@fedtwin/protocol');
  const genesis = genesisModelVersion({ consortium: 'fuzz', modelValues: env.modelValues, strategy: 'fedavg', model: env.model });
  const baseHash = task.status === 'open' ? (task.baseHash as string) : (state.modelVersion ?? genesis);
  const baseVersion = task.status === 'open' ? (task.baseVersion as number) : state.version;
  const keyId = bfv ? bfv.key.keyId : 'plaintext';
  const values = new Float32Array(env.modelValues).fill(0.001);
  const body = bfv ? bfv.encrypt(values, round, baseHash) : new Uint8Array(values.buffer.slice(0));
  const contribution = (r: number, b: Uint8Array, key = f.key, base = baseHash) => signedEntry(key, {
    type: 'contribution', round: r, node: peerIdOf(key), ciphertextHash: sha256Hex(b), ciphertextSize: b.length,
    epsilon: 0, delta: 0, epsilonTotal: 0, deltaTotal: 0, keyId, globalVersion: base,
  });
  const entry = await contribution(round, body);
  const update = {
    round, baseVersion, baseHash, weight: 10, values: env.modelValues, encoding: bfv ? 'bfv' : 'f32le', ...(bfv ? { keyId } : {}),
    loss: 0.5, trainSeconds: 0.1, privacy: [], entry,
  };
  const refusal = (r: number) => signedEntry(f.key, { type: 'refusal', round: r, node: f.peerId, reason: 'fuzz' });
  const agg1 = state.version >= 1 ? await call(f, { protocol: Protocols.aggregate, header: { version: 1 } }) : undefined;
  const sumHash = agg1?.kind === 'success' && agg1.body ? sha256Hex(agg1.body) : 'c'.repeat(64);
  const participants = agg1?.kind === 'success' ? ((agg1.envelope.header as { participants: string[] }).participants.length) : 2;
  // Signed "valid" while the header says "unusable": the aggregator must refuse the mismatch (AGG_BAD_ENTRY).
  const verdictEntry = await signedEntry(f.key, { type: 'verdict', round: 1, node: f.peerId, sumHash, participants, valid: true, version: 1 });
  const sync = expectSuccess(await call(f, { protocol: Protocols.ledger, header: { fromSize: 0 } }), 'ledger').envelope.header as { size: number; checkpoint: string };
  const note = sync.checkpoint;
  const pool: unknown[] = [
    f.peerId, env.helper.peerId, env.stranger.peerId, env.aggHost.peerId, ...env.sites.map((s) => s.id),
    genesis, baseHash, sumHash, 'a'.repeat(64), keyId, 'b'.repeat(64),
    await contribution(round - 1 > 0 ? round - 1 : round + 1, body), await contribution(round + 1, body), await contribution(round, new Uint8Array(8)),
    await contribution(round, body, env.helper.key), await contribution(round, body, f.key, genesis === baseHash ? 'd'.repeat(64) : genesis),
    await refusal(round), await refusal(round + 1), verdictEntry, 'AAAA', '', '====', Buffer.from('not an entry').toString('base64'),
    ...(note ? [note, cosigned(note, env.helper.key), cosigned(note, env.stranger.key)] : []),
  ];
  const corpus: Record<string, Corpus> = {
    [Protocols.join]: { bases: [{ protocol: Protocols.join, header: { nodeVersion: process.version, backend: 'cpu' } }], pool },
    [Protocols.task]: {
      bases: [0, 1, round, round + 5].map((a) => ({ protocol: Protocols.task, header: { afterRound: a, waitMs: 0 } })), pool,
    },
    // Each base fails only at the last check (the signed entry, or the weight bound), so mutations walk the
    // whole chain; no case can be accepted, so the fuzzer never uses up its one contribution (AGG_DUPLICATE).
    [Protocols.update]: {
      bases: [
        { protocol: Protocols.update, header: { ...update, entry: await contribution(round, new Uint8Array(body.length)) }, body },
        { protocol: Protocols.update, header: { ...update, entry: await contribution(round + 1, body) }, body },
        { protocol: Protocols.update, header: { ...update, weight: 1_000_001 }, body },
      ], pool,
    },
    [Protocols.aggregate]: { bases: [1, 2, state.version || 1].map((v) => ({ protocol: Protocols.aggregate, header: { version: v } })), pool },
    // Refusals whose signed entry is for another round or another member: refused after every other check.
    [Protocols.refuse]: {
      bases: [
        { protocol: Protocols.refuse, header: { round, code: 'FUZZ_DECLINED', reason: 'fuzzing', privacy: [], entry: await refusal(round + 1) } },
        { protocol: Protocols.refuse, header: { round, code: 'FUZZ_DECLINED', reason: 'fuzzing', privacy: [], entry: await signedEntry(env.helper.key, { type: 'refusal', round, node: env.helper.peerId, reason: 'fuzz' }) } },
      ], pool,
    },
    [Protocols.ledger]: { bases: [0, 1, sync.size, sync.size + 1].map((n) => ({ protocol: Protocols.ledger, header: { fromSize: n } })), pool },
    [Protocols.cosign]: {
      bases: note ? [{ protocol: Protocols.cosign, header: { note: cosigned(note, f.key) } }] : [{ protocol: Protocols.cosign, header: { note: 'fedtwin/fuzz\n1\nAAAA\n\n— x y\n' } }], pool,
    },
    [Protocols.verdict]: {
      bases: [
        { protocol: Protocols.verdict, header: { round: 1, version: 1, sumHash, valid: false, reason: 'fuzz', entry: verdictEntry } },
        { protocol: Protocols.verdict, header: { round: 1, version: 1, sumHash, valid: true, reason: '', entry: verdictEntry } },
        { protocol: Protocols.verdict, header: { round: 1, probe: '1-1-x', sumHash, valid: true, reason: '', entry: verdictEntry } },
      ], pool,
    },
    [Protocols.probe]: { bases: [{ protocol: Protocols.probe, header: { id: '1-1-x' } }], pool },
    [Protocols.witnesses]: { bases: [0, 1, sync.size, sync.size + 1].map((n) => ({ protocol: Protocols.witnesses, header: { fromSize: n } })), pool },
  };
  if (bfv) {
    corpus[Protocols.key] = { bases: [{ protocol: Protocols.key, header: { waitMs: 0 } }], pool };
    corpus[Protocols.keyPublish] = {
      bases: [
        { protocol: Protocols.keyPublish, header: { keyId: bfv.key.keyId, epoch: 0, boxes: bfv.boxes.length }, body: enc.encode(JSON.stringify(bfv.boxes)) },
        // a "rotation" whose boxes are for epoch 0: refused (AGG_BAD_KEY)
        { protocol: Protocols.keyPublish, header: { keyId: 'e'.repeat(64), epoch: 1, boxes: 1 }, body: enc.encode(JSON.stringify(bfv.boxes.slice(0, 1))) },
      ], pool,
    };
  }
  return corpus;
}

/** Specs with the update body cap of the scheme in use. */
export async function specsFor(env: FuzzEnv): Promise<void> {
  let updateBytes = env.modelValues * 4;
  if (env.secureAggregation.scheme === 'bfv') {
    const he = await import('@fedtwin/he');
    const ctx = await he.createHeContext(env.secureAggregation.params);
    updateBytes = he.updateSize(ctx, he.KIND_FRESH, env.modelValues);
    ctx.dispose();
  }
  PROTOCOL_SPECS[Protocols.update] = { ...PROTOCOL_SPECS[Protocols.update]!, maxBodyBytes: updateBytes };
}

/** Cases per protocol: FEDTWIN_FUZZ_SCALE multiplies them (default 1; CI keeps 1). */
export const FUZZ_SCALE = Number(process.env.FEDTWIN_FUZZ_SCALE ?? 1) > 0 ? Number(process.env.FEDTWIN_FUZZ_SCALE ?? 1) : 1;

// ------------------------------------------------------------------------------------------------
// A fuzz suite: one aggregator, every protocol's share of cases, then a real federation and the verifier
// ------------------------------------------------------------------------------------------------

export interface SuiteInit {
  name: string;
  bfv: boolean;
  /** 'open': a round is open after one aggregate; 'ceremony': BFV before the key is published, one member joined. */
  phase: 'open' | 'ceremony';
  totalRounds: number;
  /** Cases per protocol in this file (before FUZZ_SCALE); a fifth go over libp2p, the rest direct. */
  cases: Record<string, number>;
  seed: number;
}

const BATCH = 8;

/** `n` cases for each protocol a member uses while a round is open (the round protocols, probes and verdicts included). */
export function roundProtocolCases(n: number): Record<string, number> {
  const names = [Protocols.join, Protocols.task, Protocols.update, Protocols.aggregate, Protocols.refuse, Protocols.ledger, Protocols.cosign, Protocols.verdict, Protocols.probe, Protocols.witnesses];
  return Object.fromEntries(names.map((p) => [p, n]));
}

export function defineFuzzSuite(init: SuiteInit): void {
  describe(init.name, () => {
    let env: FuzzEnv;
    let bfv: BfvMaterial | undefined;
    let corpus: Record<string, Corpus>;
    const stats: Record<string, ProtocolStats> = {};
    const seeds: Record<string, number> = {};
    // Long polls that may legitimately wait up to 30 s: judged after the protocol runs, not inside a batch.
    const deferred: Promise<string | undefined>[] = [];
    const t0 = performance.now();

    beforeAll(async () => {
      env = await createFuzzEnv({ bfv: init.bfv, totalRounds: init.totalRounds, prefix: init.name.replace(/\W+/g, '-').slice(0, 20) });
      await specsFor(env);
      const join = { protocol: Protocols.join, header: { nodeVersion: process.version, backend: 'cpu' } };
      if (init.bfv) bfv = await makeKey(env);
      if (init.phase === 'open') {
        if (bfv) expectSuccess(await call(env.fuzzer, bfv.publish), 'key-publish');
        for (const c of [env.fuzzer, env.helper]) expectSuccess(await call(c, join), 'join');
        // Round 1 from the fuzzer and its helper: version 1 exists, round 2 is open, the ledger has a checkpoint.
        const t = expectSuccess(await call(env.helper, { protocol: Protocols.task, header: { afterRound: 0, waitMs: 5000 } }), 'task').envelope.header as { round: number; baseHash: string; baseVersion: number };
        for (const c of [env.fuzzer, env.helper]) {
          const values = new Float32Array(env.modelValues).fill(0.001);
          const body = bfv ? bfv.encrypt(values, t.round, t.baseHash, c.peerId) : new Uint8Array(values.buffer);
          const entry = await signedEntry(c.key, {
            type: 'contribution', round: t.round, node: c.peerId, ciphertextHash: sha256Hex(body), ciphertextSize: body.length,
            epsilon: 0, delta: 0, epsilonTotal: 0, deltaTotal: 0, keyId: bfv ? bfv.key.keyId : 'plaintext', globalVersion: t.baseHash,
          });
          expectSuccess(await call(c, { protocol: Protocols.update, header: {
            round: t.round, baseVersion: t.baseVersion, baseHash: t.baseHash, weight: 10, values: env.modelValues, encoding: bfv ? 'bfv' : 'f32le',
            ...(bfv ? { keyId: bfv.key.keyId } : {}), loss: 0.5, trainSeconds: 0.1, privacy: [], entry,
          }, body }), 'update');
        }
        const st = await env.agg.state();
        if (st.version !== 1) throw new Error(`expected version 1 before fuzzing, got ${JSON.stringify(st)}`);
      } else {
        expectSuccess(await call(env.fuzzer, join), 'join');
      }
      corpus = await buildCorpus(env, bfv);
      if (bfv && init.phase === 'ceremony') corpus[Protocols.keyPublish]!.bases.push(bfv.publish);
    }, 180_000);

    afterAll(async () => {
      await env?.stop();
    }, 60_000);

    const alive = async (): Promise<void> => {
      expectSuccess(await call(env.helper, { protocol: Protocols.task, header: { afterRound: 0, waitMs: 0 } }, 10_000), 'alive check (task from another member)');
    };

    let k = 0;
    for (const [protocol, total] of Object.entries(init.cases)) {
      const n = Math.ceil(total * FUZZ_SCALE);
      const seed = init.seed + 1000 * ++k;
      seeds[protocol] = seed;
      it(`${protocol}: ${n} mutated requests (seed ${seed}) get envelopes, never a reset, hang or crash`, async () => {
        const c = corpus[protocol]!;
        // Over libp2p (TCP + Noise + yamux, one connection, a stream per case), then the same layers minus
        // the network; a tenth of each from a peer the gate admits but the consortium does not list.
        const net = Math.ceil(n / 5);
        const direct = n - net;
        const strangerCodes = /^(AGG_NOT_MEMBER|WIRE_STREAM_LIMIT|WIRE_INFLIGHT_LIMIT)$/;
        const parts: Array<[Client, number, number, RegExp | undefined]> = [
          [env.fuzzer, Math.ceil(net * 0.9), seed, undefined],
          [env.stranger, Math.floor(net * 0.1), seed + 1, strangerCodes],
          [env.direct.fuzzer, Math.ceil(direct * 0.9), seed + 2, undefined],
          [env.direct.stranger, Math.floor(direct * 0.1), seed + 3, strangerCodes],
        ];
        for (const [client, cases, s, allowedCodes] of parts) {
          if (cases <= 0) continue;
          await fuzzProtocol({
            client, protocol, bases: c.bases, pool: c.pool, runs: Math.ceil(cases / BATCH), batch: BATCH, seed: s, stats, alive, aliveEvery: 25,
            defer: (verdict) => deferred.push(verdict),
            ...(allowedCodes ? { allowedCodes } : {}),
          });
        }
        expect(env.aggLog.errors, 'aggregator error log').toEqual([]);
        expect(env.wireLog.errors, 'wire host error log').toEqual([]);
        expect(stats[protocol]!.cases).toBeGreaterThanOrEqual(n);
      }, 600_000);
    }

    it('every long poll deferred from the runs above was answered with an envelope', async () => {
      expect((await Promise.all(deferred)).filter((v) => v !== undefined)).toEqual([]);
      expect(env.aggLog.errors, 'aggregator error log').toEqual([]);
    }, 60_000);

    it('a peer the gate does not admit gets no stream at all', async () => {
      const outsider = await createWireHost({ privateKey: await generateIdentity(), listen: [], allow: [env.aggHost.peerId] });
      try {
        for (let i = 0; i < 3; i++) {
          await expect(outsider.request(env.addr, Protocols.join, { header: { nodeVersion: 'x', backend: 'y' } }, { response: JoinRequest.passthrough(), maxBodyBytes: 0, timeoutMs: 10_000 }))
            .rejects.toMatchObject({ code: 'WIRE_NOT_MEMBER' });
        }
      } finally {
        await outsider.stop();
      }
      await alive();
    }, 60_000);

    it('afterwards two real members finish the federation and the ledger verifies', async () => {
      if (bfv && init.phase === 'ceremony') {
        const r = await call(env.fuzzer, bfv.publish);
        expectSuccess(r, 'key-publish after the fuzz (idempotent if a case already published it)');
        expect(await env.agg.keyId()).toBe(bfv.key.keyId);
      }
      const results = await finishFederation(env, 240_000);
      await env.agg.finished();
      const st = await env.agg.state();
      expect(st.status).toBe('finished');
      expect(st.version).toBe(init.totalRounds);
      expect(results.map((r) => r.version)).toEqual([init.totalRounds, init.totalRounds]);
      expect(results[0]!.hash).toBe(results[1]!.hash);
      expect(env.aggLog.errors, 'aggregator error log').toEqual([]);
      expect(env.wireLog.errors, 'wire host error log').toEqual([]);
      await env.agg.stop();
      const v = await verifyLedger(env.ledgerDir);
      expect(v.ok, JSON.stringify(v).slice(0, 2000)).toBe(true);
      for (const s of env.sites) expect(v.summary.contributionsPerNode[s.id] ?? 0).toBeGreaterThanOrEqual(1);
    }, 300_000);

    it('counted every protocol\'s share of cases', () => {
      console.log(`${init.name}: ${Math.round((performance.now() - t0) / 1000)} s, seeds ${JSON.stringify(seeds)}\n${summarize(stats)}`);
      for (const [protocol, total] of Object.entries(init.cases)) expect(stats[protocol]?.cases ?? 0, protocol).toBeGreaterThanOrEqual(Math.ceil(total * FUZZ_SCALE));
    });
  });
}
