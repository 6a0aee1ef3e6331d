import { createLibp2p } from 'libp2p';
import type { ServiceFactoryMap } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@libp2p/yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import type { Identify } from '@libp2p/identify';
import type { Ping } from '@libp2p/ping';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Connection, Libp2p, MultiaddrConnection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { z } from 'zod';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { WIRE_CODES } from './codes.ts';
import {
  DEFAULT_MAX_HEADER_BYTES,
  ENVELOPE_VERSION,
  MAX_FRAME_BYTES,
  encodeJsonFrame,
  readBody,
  readJsonFrame,
  requestEnvelopeSchema,
  responseEnvelopeSchema,
  summarizeIssues,
  writeBody,
  writeFrame,
} from './frames.ts';
import { EndOfStreamError, StreamReader } from './reader.ts';
import { PendingInbound, RefusalLog, parseIpAllowlist, remoteIp } from './guard.ts';

/** pino-compatible subset: `(obj, msg)`. The default logger is silent; the library never prints. */
export interface WireLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

export interface ByteCounts {
  sent: number;
  received: number;
}

/** Tunables. Every deadline exists so a dead or slow peer cannot pin a stream forever. */
export interface WireLimits {
  /** Default cap for JSON header frames, both directions (handlers/requests may override). */
  maxHeaderBytes: number;
  /** Body frame size when sending, 1 B..4 MiB. */
  chunkBytes: number;
  /** yamux maximum per-stream receive window (bulk transfers want ~4 MiB). */
  streamWindowBytes: number;
  /** Responder: time allowed to receive a whole request (header + body). */
  readTimeoutMs: number;
  /** Responder: default time a handler may take (long-poll handlers fit inside it). */
  handlerTimeoutMs: number;
  /** Responder: time allowed to send the response. */
  writeTimeoutMs: number;
  /** Requester: default end-to-end deadline of request() (dial + send + wait + receive). */
  requestTimeoutMs: number;
  /** Dial deadline (TCP + Noise + muxer). */
  dialTimeoutMs: number;
  /** Connection manager: max open connections. */
  maxConnections: number;
  /** Connection manager: new inbound connections per second per remote host (50 nodes on one box share 127.0.0.1). */
  inboundConnectionThreshold: number;
  /** Concurrent inbound streams per protocol per connection (long-polls hold one each). */
  maxInboundStreams: number;
  /** Concurrent inbound fedtwin streams per peer, over all protocols and connections (`WIRE_STREAM_LIMIT` beyond). */
  maxInboundStreamsPerPeer: number;
  /**
   * Request body bytes one peer may have in flight on this host (being received or held by a running
   * handler), checked against the declared length before allocating (`WIRE_INFLIGHT_LIMIT` beyond).
   * A peer with nothing in flight is always admitted up to the handler's own maxBodyBytes.
   */
  maxInflightBodyBytesPerPeer: number;
  /** Time an inbound connection has to finish Noise + yamux; idle or slow sockets are closed after it. */
  inboundUpgradeTimeoutMs: number;
  /** Inbound connections still in the handshake; beyond it the oldest pending one is dropped. */
  maxPendingInbound: number;
  /** Pending inbound connections per remote IP; beyond it that IP's oldest pending one is dropped. */
  maxPendingInboundPerIp: number;
  /** Open connections per peer ID; an inbound connection beyond it is refused after the handshake. */
  maxConnectionsPerPeer: number;
  /** Refused connections/streams are logged first-per-peer, then as one counted summary at most this often. */
  refusalLogIntervalMs: number;
}

export const DEFAULT_LIMITS: Readonly<WireLimits> = Object.freeze({
  maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
  chunkBytes: 1024 * 1024,
  streamWindowBytes: 4 * 1024 * 1024,
  readTimeoutMs: 120_000,
  handlerTimeoutMs: 120_000,
  writeTimeoutMs: 120_000,
  requestTimeoutMs: 60_000,
  dialTimeoutMs: 10_000,
  maxConnections: 512,
  inboundConnectionThreshold: 1000,
  maxInboundStreams: 64,
  maxInboundStreamsPerPeer: 32,
  maxInflightBodyBytesPerPeer: 80 * 1024 * 1024,
  inboundUpgradeTimeoutMs: 3_000,
  maxPendingInbound: 256,
  maxPendingInboundPerIp: 64,
  maxConnectionsPerPeer: 8,
  refusalLogIntervalMs: 60_000,
});

export interface WireHostInit {
  /** Ed25519 key (see loadIdentity/generateIdentity); its peer ID is this host's identity. */
  privateKey: PrivateKey;
  /** Listen multiaddrs; default ['/ip4/127.0.0.1/tcp/0']. Pass [] for a dial-only host. */
  listen?: string[];
  /**
   * Membership gate: a predicate, or a list of peer IDs (kept inside and editable with
   * allowPeer/removePeer). A peer is allowed if it is in the list OR the predicate says so.
   */
  allow: ((peerId: string) => boolean) | Iterable<string>;
  /**
   * Optional IP allowlist (exact addresses or CIDR ranges, IPv4/IPv6). An inbound connection from any
   * other IP is closed before the handshake, without using a pending slot. Default: any IP.
   */
  allowIps?: string[];
  limits?: Partial<WireLimits>;
  logger?: WireLogger;
  /** Extra libp2p services (e.g. gossipsub for round announcements); identify and ping are always on. */
  services?: ServiceFactoryMap<Record<string, unknown>>;
}

export type WireServices = { identify: Identify; ping: Ping } & Record<string, unknown>;

export interface WireMessage<H> {
  header: H;
  body?: Uint8Array;
}

export interface HandlerContext<Req> {
  /** Authenticated remote peer ID (Noise proved it holds the key). */
  peer: string;
  header: Req;
  body: Uint8Array | undefined;
  /** Aborts on handler deadline, remote gone (stream closed) or host stop. */
  signal: AbortSignal;
}

export interface AuthorizeContext<Req> {
  /** Authenticated remote peer ID. */
  peer: string;
  /** The request header, already validated by the handler's schema. */
  header: Req;
  /** Aborts on the responder's read deadline or host stop. */
  signal: AbortSignal;
}

export interface HandlerSpec<Req, Res> {
  /** Schema for the request header; the handler never sees a header that fails it. */
  request: z.ZodType<Req>;
  /** Optional schema checked on the handler's own response (catches bugs before they go out). */
  response?: z.ZodType<Res>;
  maxHeaderBytes?: number;
  /** Largest request body accepted; checked against the declared length before allocating. */
  maxBodyBytes: number;
  /** Handler deadline; default limits.handlerTimeoutMs. */
  timeoutMs?: number;
  /** Concurrent streams of this protocol per connection; default limits.maxInboundStreams. */
  maxInboundStreams?: number;
  /**
   * Runs once the header has parsed and passed `request`, BEFORE a byte of the body is read or
   * allocated (and before it counts against the peer's in-flight budget). Throw a FedtwinError to
   * refuse: the requester gets that code and message, the body is never read and the stream is
   * reset. Any other exception is answered as WIRE_REMOTE_INTERNAL. Runs under the read deadline.
   */
  authorize?: (ctx: AuthorizeContext<Req>) => void | Promise<void>;
  handler: (ctx: HandlerContext<Req>) => Promise<WireMessage<Res>> | WireMessage<Res>;
}

export interface RequestOptions<Res> {
  response: z.ZodType<Res>;
  /** Largest response body accepted; checked before allocating. */
  maxBodyBytes: number;
  maxHeaderBytes?: number;
  /** End-to-end deadline; default limits.requestTimeoutMs. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WireHost {
  readonly peerId: string;
  /** The underlying libp2p node, for services fedtwin adds on top (e.g. gossipsub). */
  readonly libp2p: Libp2p<WireServices>;
  readonly limits: Readonly<WireLimits>;
  /** Listen addresses including /p2p/<peerId>, ready to hand to a dialer. */
  addrs(): string[];
  isAllowed(peerId: string): boolean;
  allowPeer(peerId: string): void;
  /** Remove from the internal list and close any open connection to it. */
  removePeer(peerId: string): Promise<void>;
  /** Connect (peer ID or multiaddr) and confirm the remote accepted us; returns its peer ID. */
  dial(target: string, options?: { signal?: AbortSignal }): Promise<string>;
  /** Round-trip time in ms. */
  ping(target: string, options?: { signal?: AbortSignal }): Promise<number>;
  connectedPeers(): string[];
  handle<Req, Res>(name: string, spec: HandlerSpec<Req, Res>): Promise<void>;
  unhandle(name: string): Promise<void>;
  request<Req, Res>(target: string, name: string, message: WireMessage<Req>, options: RequestOptions<Res>): Promise<WireMessage<Res>>;
  /** Application payload bytes (header + body frames, with their length prefixes) moved by the RPC layer. */
  bytes(): ByteCounts;
  bytesByPeer(): Record<string, ByteCounts>;
  /** The same bytes by protocol name (`join`, `upload-update`, …: the `<name>` of `/fedtwin/<name>/1.0.0`). */
  bytesByProtocol(): Record<string, ByteCounts>;
  stop(): Promise<void>;
}

/**
 * Initial yamux stream window. Part of the wire protocol: a sender may use this much credit before
 * the first window update, so every host must use the same value (a peer with a smaller one would
 * reset the connection with ReceiveWindowExceeded).
 */
export const INITIAL_STREAM_WINDOW = 4 * 1024 * 1024;

/** Responder read buffer before a request's body is admitted (header read, authorize, budgets). */
const PRE_ADMISSION_HIGH_WATER = 64 * 1024;

const NAME_RE = /^[a-z][a-z0-9-]{0,63}$/;

/** `/fedtwin/<name>/1.0.0` → `<name>`; any other protocol ID as it is. */
function protocolName(id: string): string {
  const m = /^\/fedtwin\/([a-z][a-z0-9-]{0,63})\/[^/]+$/.exec(id);
  return m ? m[1]! : id;
}

/** `/fedtwin/<name>/1.0.0`: the version moves with the envelope format. */
export function protocolId(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid protocol name ${JSON.stringify(name)}`, {
      hint: 'Use lowercase letters, digits and dashes, starting with a letter (e.g. "upload-update").',
    });
  }
  return `/fedtwin/${name}/1.0.0`;
}

const silentLogger: WireLogger = { info() {}, warn() {}, error() {} };

function checkLimits(limits: WireLimits): void {
  for (const [k, v] of Object.entries(limits)) {
    if (!Object.hasOwn(DEFAULT_LIMITS, k)) {
      throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `unknown limit ${JSON.stringify(k)}`, { hint: `Known limits: ${Object.keys(DEFAULT_LIMITS).join(', ')}.` });
    }
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `limits.${k} must be a positive integer, got ${String(v)}`);
    }
  }
  if (limits.chunkBytes > MAX_FRAME_BYTES) {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `limits.chunkBytes ${limits.chunkBytes} exceeds the ${MAX_FRAME_BYTES}-byte frame cap`);
  }
  if (limits.streamWindowBytes < INITIAL_STREAM_WINDOW) {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `limits.streamWindowBytes must be at least ${INITIAL_STREAM_WINDOW} (the initial yamux window every fedtwin host assumes)`);
  }
}

function checkCap(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `${what} must be a non-negative integer, got ${String(value)}`);
  }
}

interface Target {
  peerId: PeerId | undefined;
  addr: Multiaddr | undefined;
}

function parseTarget(target: string): Target {
  if (typeof target !== 'string' || target.length === 0) {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, 'target must be a peer ID or a multiaddr string');
  }
  if (target.startsWith('/')) {
    let addr: Multiaddr;
    try {
      addr = multiaddr(target);
    } catch (e) {
      throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid multiaddr ${target}: ${(e as Error).message}`, {
        hint: 'Expected e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...',
      });
    }
    const id = addr.getComponents().find((c) => c.name === 'p2p')?.value;
    let peerId: PeerId | undefined;
    if (id !== undefined) {
      try {
        peerId = peerIdFromString(id);
      } catch {
        throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid peer ID in multiaddr ${target}`);
      }
    }
    return { peerId, addr };
  }
  try {
    return { peerId: peerIdFromString(target), addr: undefined };
  } catch {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid peer ID ${target}`, {
      hint: 'Peer IDs look like 12D3KooW...; multiaddrs start with /.',
    });
  }
}

function errName(e: unknown): string {
  // libp2p sometimes rejects with the stream's 'close' Event rather than an Error.
  if (e instanceof Event) return `Event(${e.type})`;
  return e instanceof Error ? e.name : typeof e;
}

function errMessage(e: unknown): string {
  if (e instanceof Event) {
    const inner = (e as Event & { error?: unknown }).error;
    return inner instanceof Error ? inner.message : `${e.type} event`;
  }
  return e instanceof Error ? e.message : String(e);
}

/** Errors that mean "the remote dropped the connection/stream under us". */
const DROP_ERRORS = new Set([
  'UnexpectedEOFError',
  'EndOfStreamError',
  'StreamResetError',
  'StreamStateError',
  'StreamClosedError',
  'ConnectionClosedError',
  'ConnectionClosingError',
  'MuxerClosedError',
  'StreamAbortedError',
  'Event(close)',
]);

/** Start a libp2p host with TCP + Noise + yamux, a membership gate and the fedtwin RPC layer. */
export async function createWireHost(init: WireHostInit): Promise<WireHost> {
  if (init.privateKey?.type !== 'Ed25519') {
    throw new FedtwinError(WIRE_CODES.IDENTITY_WRONG_TYPE, `privateKey must be Ed25519, got ${init.privateKey?.type ?? 'nothing'}`, {
      hint: 'Use generateIdentity() or loadIdentity().',
    });
  }
  const overrides = Object.fromEntries(Object.entries(init.limits ?? {}).filter(([, v]) => v !== undefined));
  const limits: WireLimits = { ...DEFAULT_LIMITS, ...overrides };
  checkLimits(limits);
  const log = init.logger ?? silentLogger;
  const listen = init.listen ?? ['/ip4/127.0.0.1/tcp/0'];
  for (const a of listen) {
    if (typeof a !== 'string' || !a.startsWith('/')) {
      throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid listen address ${JSON.stringify(a)}`, { hint: 'Expected a multiaddr such as /ip4/0.0.0.0/tcp/4001.' });
    }
    parseTarget(a);
  }

  const allowSet = new Set<string>();
  let allowFn: ((peerId: string) => boolean) | undefined;
  if (typeof init.allow === 'function') allowFn = init.allow;
  else if (init.allow != null && typeof (init.allow as Iterable<string>)[Symbol.iterator] === 'function') {
    for (const id of init.allow) allowSet.add(parseTarget(id).peerId?.toString() ?? id);
  } else {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, 'allow must be a predicate or a list of peer IDs', {
      hint: 'Pass the consortium member list; use () => true only in tests.',
    });
  }
  const isAllowed = (peerId: string): boolean => {
    if (allowSet.has(peerId)) return true;
    try {
      return allowFn?.(peerId) === true;
    } catch (e) {
      log.error({ peer: peerId, err: errMessage(e) }, 'allow predicate threw; denying peer');
      return false;
    }
  };
  const ipAllow = init.allowIps === undefined ? undefined : parseIpAllowlist(init.allowIps);
  const refusals = new RefusalLog(log, limits.refusalLogIntervalMs);
  const pending = new PendingInbound(limits.maxPendingInbound, limits.maxPendingInboundPerIp);
  const deny = (direction: string) => (peer: PeerId, maConn?: { remoteAddr?: Multiaddr }): boolean => {
    const id = peer.toString();
    if (isAllowed(id)) return false;
    refusals.note(id, 'not-member', { peer: id, direction, addr: maConn?.remoteAddr?.toString() }, `refused ${direction} connection: peer ${id} is not on the allowlist`);
    return true;
  };
  // Before any byte is read: the IP allowlist, then a slot in the pending pool (evicting the oldest).
  const denyInboundConnection = (maConn: MultiaddrConnection): boolean => {
    const ip = remoteIp(maConn) ?? 'unknown';
    if (ipAllow !== undefined && !ipAllow.allows(ip)) {
      refusals.note(`ip:${ip}`, 'ip-not-allowed', { ip, addr: maConn.remoteAddr.toString() }, `refused inbound connection from ${ip}: not in allowIps`);
      return true;
    }
    for (const victim of pending.add(maConn, ip)) {
      const vip = remoteIp(victim) ?? 'unknown';
      refusals.note(`ip:${vip}`, 'pending-evicted', { ip: vip, pending: pending.size }, `refused (dropped) an unauthenticated pending connection from ${vip}: too many handshakes in progress from ${vip === ip ? 'that IP' : 'all IPs'}`);
      victim.abort(new Error('too many pending inbound connections'));
    }
    maConn.addEventListener('close', () => pending.remove(maConn), { once: true });
    return false;
  };
  const denyInboundUpgradedConnection = (peer: PeerId, maConn: MultiaddrConnection): boolean => {
    const open = node.getConnections(peer).filter((c) => c.status === 'open').length;
    if (open < limits.maxConnectionsPerPeer) return false;
    const id = peer.toString();
    refusals.note(`conns:${id}`, 'connection-limit', { peer: id, open, addr: maConn.remoteAddr.toString() }, `refused inbound connection: peer ${id} already has ${open} open connections (maxConnectionsPerPeer)`);
    return true;
  };

  let node: Libp2p<WireServices>;
  try {
    node = await createLibp2p({
      privateKey: init.privateKey,
      addresses: { listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [
        yamux({
          streamOptions: {
            // Every fedtwin host starts streams with a 4 MiB window instead of yamux's 256 KiB: loopback
            // RTTs are too small for yamux's auto-tuning to grow it. Fixed, so all members agree.
            initialStreamWindowSize: INITIAL_STREAM_WINDOW,
            maxStreamWindowSize: limits.streamWindowBytes,
            // While paused we may still receive one full window; leave room so libp2p does not reset us.
            maxReadBufferLength: 2 * limits.streamWindowBytes + MAX_FRAME_BYTES,
          },
        }),
      ],
      connectionGater: {
        denyDialPeer: deny('outbound-dial'),
        denyInboundConnection,
        denyInboundEncryptedConnection: (peer, maConn) => {
          // The remote proved its peer ID: it no longer holds a pending slot, whatever we decide.
          pending.remove(maConn);
          return deny('inbound')(peer, maConn);
        },
        denyOutboundEncryptedConnection: deny('outbound'),
        denyInboundUpgradedConnection,
      },
      connectionManager: {
        maxConnections: limits.maxConnections,
        inboundConnectionThreshold: limits.inboundConnectionThreshold,
        // Our pending pool evicts before libp2p's would refuse; the margin covers evictions still closing.
        maxIncomingPendingConnections: limits.maxPendingInbound + Math.max(16, limits.maxPendingInbound >> 2),
        inboundUpgradeTimeout: limits.inboundUpgradeTimeoutMs,
        dialTimeout: limits.dialTimeoutMs,
      },
      services: { ...(init.services ?? {}), identify: identify(), ping: ping() },
    });
  } catch (e) {
    const msg = errMessage(e);
    if (msg.includes('EADDRINUSE')) {
      throw new FedtwinError(WIRE_CODES.ADDRESS_IN_USE, `cannot listen on ${listen.join(', ')}: address already in use`, {
        hint: 'Another process (maybe another fedtwin daemon) holds that port; stop it, pick another port, or use port 0 for a free one.',
        details: { listen },
        cause: e,
      });
    }
    throw new FedtwinError(WIRE_CODES.LISTEN_FAILED, `cannot start libp2p host on ${listen.join(', ')}: ${msg}`, {
      hint: 'Check the listen multiaddrs (e.g. /ip4/0.0.0.0/tcp/4001) and that the interface exists.',
      details: { listen },
      cause: e,
    });
  }

  const selfId = node.peerId.toString();
  const total: ByteCounts = { sent: 0, received: 0 };
  const perPeer = new Map<string, ByteCounts>();
  // Per protocol too, for the daemons' metrics (fedtwin_wire_bytes_total{protocol,direction}): which exchange
  // moves the bytes (uploads, aggregate downloads, ledger sync) is what an operator sizes links by.
  const perProtocol = new Map<string, ByteCounts>();
  const countsIn = (map: Map<string, ByteCounts>, key: string): ByteCounts => {
    let c = map.get(key);
    if (c === undefined) {
      c = { sent: 0, received: 0 };
      map.set(key, c);
    }
    return c;
  };
  const counter = (peer: string, dir: 'sent' | 'received', protocol: string) => {
    const pc = countsIn(perPeer, peer);
    const pp = countsIn(perProtocol, protocolName(protocol));
    return (n: number): void => {
      total[dir] += n;
      pc[dir] += n;
      pp[dir] += n;
    };
  };
  const stopController = new AbortController();
  let stopped = false;

  const ensureRunning = (): void => {
    if (stopped) throw new FedtwinError(WIRE_CODES.STOPPED, 'wire host is stopped');
  };

  /** Turn a libp2p/stream failure into a FedtwinError, naming the cause the caller can act on. */
  const mapError = (e: unknown, ctx: { phase: 'dial' | 'negotiate' | 'exchange'; target: string; peer?: string; protocol?: string; timeoutMs?: number }, signals: { timeout?: AbortSignal; user?: AbortSignal }): FedtwinError => {
    if (isFedtwinError(e)) return e;
    const who = ctx.peer ?? ctx.target;
    if (stopController.signal.aborted) return new FedtwinError(WIRE_CODES.STOPPED, `wire host stopped during ${ctx.phase} with ${who}`, { cause: e });
    if (signals.user?.aborted) return new FedtwinError(WIRE_CODES.ABORTED, `request to ${who} was aborted`, { cause: e });
    if (signals.timeout?.aborted) {
      return new FedtwinError(WIRE_CODES.TIMEOUT, `no complete answer from ${who}${ctx.protocol ? ` on ${ctx.protocol}` : ''} within ${ctx.timeoutMs} ms`, {
        hint: 'The peer may be down, overloaded or partitioned; retry later or raise timeoutMs.',
        details: { phase: ctx.phase, timeoutMs: ctx.timeoutMs },
        cause: e,
      });
    }
    const name = errName(e);
    if (name === 'DialDeniedError' || name === 'ConnectionInterceptedError') {
      return new FedtwinError(WIRE_CODES.PEER_NOT_ALLOWED, `peer ${who} is not on the allowlist of this host (${selfId})`, {
        hint: 'Add its peer ID to this host\'s member list before talking to it.',
        cause: e,
      });
    }
    if (name === 'UnsupportedProtocolError') {
      return new FedtwinError(WIRE_CODES.UNSUPPORTED_PROTOCOL, `peer ${who} does not serve ${ctx.protocol}`, {
        hint: 'The remote runs a different fedtwin role or version.',
        cause: e,
      });
    }
    if (ctx.phase === 'negotiate' && DROP_ERRORS.has(name)) {
      // After Noise the dialer cannot tell "gated" from "crashed"; a gated dialer sees exactly this.
      return new FedtwinError(WIRE_CODES.NOT_MEMBER, `peer ${who} closed the connection right after the handshake: this peer (${selfId}) is most likely not on its allowlist`, {
        hint: `Ask the operator of ${who} to add ${selfId} to its members; if it is listed, the remote may be shutting down.`,
        cause: e,
      });
    }
    if (ctx.phase === 'dial' || name === 'NoValidAddressesError') {
      return new FedtwinError(WIRE_CODES.DIAL_FAILED, `cannot connect to ${who}: ${errMessage(e)}`, {
        hint: name === 'NoValidAddressesError'
          ? 'No address is known for this peer ID; dial its multiaddr (/ip4/.../tcp/.../p2p/...) first.'
          : 'Check that the peer is running and the address/port is right.',
        cause: e,
      });
    }
    return new FedtwinError(WIRE_CODES.STREAM_FAILED, `stream to ${who}${ctx.protocol ? ` (${ctx.protocol})` : ''} failed during ${ctx.phase}: ${errName(e)}: ${errMessage(e)}`, {
      hint: 'The peer went away or reset the stream; check its logs.',
      cause: e,
    });
  };

  const connect = async (target: string, signal: AbortSignal, signals: { timeout?: AbortSignal; user?: AbortSignal }, timeoutMs?: number): Promise<Connection> => {
    ensureRunning();
    const t = parseTarget(target);
    const pid = t.peerId?.toString();
    if (pid !== undefined && !isAllowed(pid)) {
      throw new FedtwinError(WIRE_CODES.PEER_NOT_ALLOWED, `peer ${pid} is not on the allowlist of this host (${selfId})`, {
        hint: 'Add its peer ID to this host\'s member list before talking to it.',
      });
    }
    try {
      const dialTarget = t.addr !== undefined ? t.addr : (t.peerId as PeerId);
      return await node.dial(dialTarget, { signal });
    } catch (e) {
      throw mapError(e, { phase: 'dial', target, timeoutMs }, signals);
    }
  };

  /**
   * Run `use` on a connection to `target`. A reused connection can be stale (the remote restarted
   * since), so a drop on one is retried once on a fresh dial; a drop on a fresh one is reported as
   * the remote refusing us (that is what a gated dialer sees).
   */
  const withConnection = async <T>(
    target: string,
    ctx: { protocol: string; timeoutMs: number },
    signal: AbortSignal,
    signals: { timeout?: AbortSignal; user?: AbortSignal },
    use: (conn: Connection) => Promise<T>,
  ): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      const startedAt = Date.now();
      const conn = await connect(target, signal, signals, ctx.timeoutMs);
      const fresh = conn.timeline.open >= startedAt;
      try {
        return await use(conn);
      } catch (e) {
        if (isFedtwinError(e)) throw e;
        const dropped = !signal.aborted && DROP_ERRORS.has(errName(e));
        if (dropped && !fresh && attempt === 0) {
          log.info({ peer: conn.remotePeer.toString(), protocol: ctx.protocol }, 'reused connection was stale; dialing again');
          conn.abort(new Error('stale connection'));
          continue;
        }
        throw mapError(e, { phase: dropped && fresh ? 'negotiate' : 'exchange', target, peer: conn.remotePeer.toString(), protocol: ctx.protocol, timeoutMs: ctx.timeoutMs }, signals);
      }
    }
  };

  const abortQuietly = (stream: Stream, reason: string): void => {
    if (stream.status === 'open' || stream.status === 'closing') stream.abort(new Error(reason));
  };

  /** Send `{ error }` and close; reset too if the requester may still be sending what we refused to read. */
  const sendError = async (stream: Stream, peer: string, protocol: string, code: string, message: string, resetAfter: boolean): Promise<void> => {
    const signal = AbortSignal.any([AbortSignal.timeout(limits.writeTimeoutMs), stopController.signal]);
    try {
      const frame = encodeJsonFrame({ v: ENVELOPE_VERSION, error: { code, message: message.slice(0, 2000) } }, Number.MAX_SAFE_INTEGER, 'error response');
      await writeFrame(stream, frame, signal, counter(peer, 'sent', protocol));
      await stream.close({ signal });
    } catch (e) {
      log.info({ peer, protocol: stream.protocol, err: errMessage(e) }, 'could not deliver error response');
    }
    if (resetAfter && stream.remoteWriteStatus === 'writable') abortQuietly(stream, `request refused: ${code}`);
  };

  /** Run a handler's authorize hook under `signal`; only a FedtwinError travels back as itself. */
  const runAuthorize = async <Req>(authorize: NonNullable<HandlerSpec<Req, unknown>['authorize']>, ctx: AuthorizeContext<Req>, protocol: string): Promise<void> => {
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(ctx.signal.reason);
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        Promise.resolve()
          .then(() => authorize(ctx))
          .then(() => resolve(), reject)
          .finally(() => ctx.signal.removeEventListener('abort', onAbort));
      });
    } catch (e) {
      if (isFedtwinError(e) || ctx.signal.aborted) throw e;
      log.error({ peer: ctx.peer, protocol, err: `${errName(e)}: ${errMessage(e)}` }, 'authorize hook failed');
      throw new FedtwinError(WIRE_CODES.REMOTE_INTERNAL, `authorization for ${protocol} failed; see the remote's log`);
    }
  };

  const streamsByPeer = new Map<string, number>();
  const inflightByPeer = new Map<string, number>();
  const adjust = (map: Map<string, number>, peer: string, delta: number): void => {
    const n = (map.get(peer) ?? 0) + delta;
    if (n <= 0) map.delete(peer);
    else map.set(peer, n);
  };

  const serve = async <Req, Res>(stream: Stream, connection: Connection, spec: HandlerSpec<Req, Res>, maxHeaderBytes: number, handlerTimeoutMs: number): Promise<void> => {
    const peer = connection.remotePeer.toString();
    const protocol = stream.protocol;
    if (!isAllowed(peer)) {
      // The gater runs per connection; a peer removed since then must not keep using it.
      refusals.note(peer, 'not-member-stream', { peer, protocol }, `refused stream: peer ${peer} is not on the allowlist`);
      abortQuietly(stream, 'not a member');
      return;
    }
    // Over the cap, the stream is still answered like any refusal: after its header, with an error envelope.
    const active = streamsByPeer.get(peer) ?? 0;
    const overLimit = active >= limits.maxInboundStreamsPerPeer;
    if (overLimit) refusals.note(`streams:${peer}`, 'stream-limit', { peer, protocol, active }, `refused stream: peer ${peer} already has ${active} streams open (maxInboundStreamsPerPeer)`);
    adjust(streamsByPeer, peer, 1);
    let reserved = 0;
    try {
      await serveStream(stream, peer, protocol, spec, maxHeaderBytes, handlerTimeoutMs, overLimit ? active : undefined, (n) => {
        reserved = n;
      });
    } finally {
      adjust(streamsByPeer, peer, -1);
      if (reserved > 0) adjust(inflightByPeer, peer, -reserved);
    }
  };

  const serveStream = async <Req, Res>(
    stream: Stream,
    peer: string,
    protocol: string,
    spec: HandlerSpec<Req, Res>,
    maxHeaderBytes: number,
    handlerTimeoutMs: number,
    overLimit: number | undefined,
    onReserve: (n: number) => void,
  ): Promise<void> => {
    // Until the body is admitted, pause (stop granting yamux credit) past 64 KiB: a refused requester
    // can then make us hold at most the initial stream window, never a growing buffer.
    const reader = new StreamReader(stream, { highWaterMark: PRE_ADMISSION_HIGH_WATER, onBytes: counter(peer, 'received', protocol) });
    const readSignal = AbortSignal.any([AbortSignal.timeout(limits.readTimeoutMs), stopController.signal]);
    let header: Req;
    let body: Uint8Array | undefined;
    try {
      const raw = await readJsonFrame(reader, maxHeaderBytes, readSignal, 'request header');
      if (overLimit !== undefined) {
        throw new FedtwinError(WIRE_CODES.STREAM_LIMIT, `peer ${peer} already has ${overLimit} requests in progress on this host (limit ${limits.maxInboundStreamsPerPeer}); retry when one finishes`, {
          details: { active: overLimit, cap: limits.maxInboundStreamsPerPeer },
        });
      }
      const env = requestEnvelopeSchema.safeParse(raw);
      if (!env.success) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `request envelope invalid: ${summarizeIssues(env.error)}`);
      const declared = env.data.bodyLength;
      if (declared !== undefined && declared > spec.maxBodyBytes) {
        throw new FedtwinError(WIRE_CODES.TOO_LARGE, `request body of ${declared} bytes exceeds the ${spec.maxBodyBytes}-byte cap of ${protocol}`, {
          details: { size: declared, cap: spec.maxBodyBytes },
        });
      }
      const parsed = spec.request.safeParse(env.data.header);
      if (!parsed.success) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `request header invalid for ${protocol}: ${summarizeIssues(parsed.error)}`);
      header = parsed.data;
      if (spec.authorize !== undefined) await runAuthorize(spec.authorize, { peer, header, signal: readSignal }, protocol);
      if (declared !== undefined && declared > 0) {
        // Reserve before allocating; one body is always admitted so a handler cap above the budget still works.
        const inflight = inflightByPeer.get(peer) ?? 0;
        if (inflight > 0 && inflight + declared > limits.maxInflightBodyBytesPerPeer) {
          throw new FedtwinError(WIRE_CODES.INFLIGHT_LIMIT, `peer ${peer} already has ${inflight} body bytes in flight on this host; ${declared} more would exceed the ${limits.maxInflightBodyBytesPerPeer}-byte budget`, {
            hint: 'Send large bodies one at a time; retry when an earlier request has finished.',
            details: { inflight, size: declared, cap: limits.maxInflightBodyBytesPerPeer },
          });
        }
        adjust(inflightByPeer, peer, declared);
        onReserve(declared);
      }
      reader.setHighWaterMark(2 * MAX_FRAME_BYTES);
      body = declared === undefined ? undefined : await readBody(reader, declared, readSignal, 'request body');
      // A request ends with the requester closing its side; anything else after the declared frames is garbage.
      const trailing = await reader.expectEnd(readSignal);
      if (trailing > 0) {
        throw new FedtwinError(WIRE_CODES.TRAILING_BYTES, `request to ${protocol} has ${trailing}+ byte(s) after the declared ${declared === undefined ? 'header' : `${declared}-byte body`}`, {
          hint: 'Send exactly one header frame, the declared body frames, then close the stream.',
        });
      }
    } catch (e) {
      // Stop granting yamux credit before we stop listening: a refused body must not keep flowing in.
      if (stream.readStatus === 'readable') {
        try {
          stream.pause();
        } catch {
          // already closing
        }
      }
      reader.detach();
      const remoteClosedEarly = (e instanceof EndOfStreamError || errName(e) === 'EndOfStreamError') && !readSignal.aborted;
      if (isFedtwinError(e)) {
        log.warn({ peer, protocol, code: e.code, err: e.message }, 'rejected request; handler not called');
        await sendError(stream, peer, protocol, e.code, e.message, true);
      } else if (remoteClosedEarly && stream.writeStatus === 'writable') {
        log.warn({ peer, protocol, code: WIRE_CODES.TRUNCATED, err: errMessage(e) }, 'request cut short; handler not called');
        await sendError(stream, peer, protocol, WIRE_CODES.TRUNCATED, `request to ${protocol} is truncated: the requester closed its side early (${errMessage(e)})`, false);
      } else if (readSignal.aborted && !stopController.signal.aborted) {
        log.warn({ peer, protocol, timeoutMs: limits.readTimeoutMs }, 'request not received in time; handler not called');
        await sendError(stream, peer, protocol, WIRE_CODES.TIMEOUT, `request not received within ${limits.readTimeoutMs} ms`, true);
      } else {
        log.info({ peer, protocol, err: `${errName(e)}: ${errMessage(e)}` }, 'request stream failed before the handler ran');
        abortQuietly(stream, 'read failed');
      }
      return;
    }
    reader.detach();

    // The handler signal also fires when the requester goes away, so long-polls can stop early.
    const gone = new AbortController();
    const onClose = (): void => gone.abort(new Error('stream closed'));
    stream.addEventListener('close', onClose, { once: true });
    const handlerSignal = AbortSignal.any([AbortSignal.timeout(handlerTimeoutMs), stopController.signal, gone.signal]);
    let result: WireMessage<Res>;
    try {
      result = await new Promise<WireMessage<Res>>((resolve, reject) => {
        const onAbort = (): void => reject(handlerSignal.reason);
        handlerSignal.addEventListener('abort', onAbort, { once: true });
        Promise.resolve()
          .then(() => spec.handler({ peer, header, body, signal: handlerSignal }))
          .then(resolve, reject)
          .finally(() => handlerSignal.removeEventListener('abort', onAbort));
      });
    } catch (e) {
      stream.removeEventListener('close', onClose);
      if (gone.signal.aborted || stopController.signal.aborted) {
        log.info({ peer, protocol }, 'requester or host went away while the handler ran');
        abortQuietly(stream, 'gone');
      } else if (handlerSignal.aborted && !isFedtwinError(e)) {
        log.warn({ peer, protocol, timeoutMs: handlerTimeoutMs }, 'handler timed out');
        await sendError(stream, peer, protocol, WIRE_CODES.TIMEOUT, `handler for ${protocol} did not answer within ${handlerTimeoutMs} ms`, false);
      } else if (isFedtwinError(e)) {
        log.info({ peer, protocol, code: e.code, err: e.message }, 'handler refused request');
        await sendError(stream, peer, protocol, e.code, e.message, false);
      } else {
        log.error({ peer, protocol, err: `${errName(e)}: ${errMessage(e)}` }, 'handler failed');
        await sendError(stream, peer, protocol, WIRE_CODES.REMOTE_INTERNAL, `handler for ${protocol} failed; see the remote's log`, false);
      }
      return;
    }
    stream.removeEventListener('close', onClose);

    const writeSignal = AbortSignal.any([AbortSignal.timeout(limits.writeTimeoutMs), stopController.signal]);
    try {
      const rbody = result?.body;
      if (rbody !== undefined && !(rbody instanceof Uint8Array)) throw new FedtwinError(WIRE_CODES.REMOTE_INTERNAL, 'handler returned a body that is not a Uint8Array');
      if (spec.response !== undefined) {
        const ok = spec.response.safeParse(result?.header);
        if (!ok.success) throw new FedtwinError(WIRE_CODES.REMOTE_INTERNAL, `handler response header invalid: ${summarizeIssues(ok.error)}`);
      }
      const envelope: Record<string, unknown> = { v: ENVELOPE_VERSION, header: result?.header ?? null };
      if (rbody !== undefined) envelope.bodyLength = rbody.byteLength;
      let frame: Uint8Array;
      try {
        frame = encodeJsonFrame(envelope, maxHeaderBytes, 'response header');
      } catch (e) {
        throw new FedtwinError(WIRE_CODES.REMOTE_INTERNAL, `handler produced an unsendable response: ${errMessage(e)}`);
      }
      const sent = counter(peer, 'sent', protocol);
      await writeFrame(stream, frame, writeSignal, sent);
      if (rbody !== undefined) await writeBody(stream, rbody, limits.chunkBytes, writeSignal, sent);
      await stream.close({ signal: writeSignal });
    } catch (e) {
      if (isFedtwinError(e, WIRE_CODES.REMOTE_INTERNAL)) {
        log.error({ peer, protocol, err: e.message }, 'handler produced an invalid response');
        await sendError(stream, peer, protocol, e.code, e.message, false);
        return;
      }
      log.info({ peer, protocol, err: `${errName(e)}: ${errMessage(e)}` }, 'could not send response');
      abortQuietly(stream, 'write failed');
    }
  };

  const host: WireHost = {
    peerId: selfId,
    libp2p: node,
    limits: Object.freeze({ ...limits }),

    addrs: () => node.getMultiaddrs().map((a) => a.toString()),

    isAllowed,

    allowPeer(peerId: string): void {
      allowSet.add(peerIdFromStringChecked(peerId));
    },

    async removePeer(peerId: string): Promise<void> {
      const id = peerIdFromStringChecked(peerId);
      allowSet.delete(id);
      if (!isAllowed(id)) await node.hangUp(peerIdFromString(id)).catch(() => undefined);
    },

    async dial(target: string, options: { signal?: AbortSignal } = {}): Promise<string> {
      const timeout = AbortSignal.timeout(limits.dialTimeoutMs);
      const signal = AbortSignal.any([timeout, stopController.signal, ...(options.signal ? [options.signal] : [])]);
      // A gated remote lets the dialer finish Noise and then hangs up; a ping proves we were accepted.
      return withConnection(target, { protocol: 'ping', timeoutMs: limits.dialTimeoutMs }, signal, { timeout, user: options.signal }, async (conn) => {
        await node.services.ping.ping(conn.remotePeer, { signal });
        return conn.remotePeer.toString();
      });
    },

    async ping(target: string, options: { signal?: AbortSignal } = {}): Promise<number> {
      const timeout = AbortSignal.timeout(limits.dialTimeoutMs);
      const signal = AbortSignal.any([timeout, stopController.signal, ...(options.signal ? [options.signal] : [])]);
      return withConnection(target, { protocol: 'ping', timeoutMs: limits.dialTimeoutMs }, signal, { timeout, user: options.signal }, (conn) =>
        node.services.ping.ping(conn.remotePeer, { signal }),
      );
    },

    connectedPeers: () => node.getPeers().map((p) => p.toString()),

    async handle<Req, Res>(name: string, spec: HandlerSpec<Req, Res>): Promise<void> {
      ensureRunning();
      const protocol = protocolId(name);
      if (spec == null || typeof spec.handler !== 'function' || spec.request == null) {
        throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `handle(${name}): spec needs a request schema and a handler`);
      }
      checkCap(spec.maxBodyBytes, `handle(${name}).maxBodyBytes`);
      const maxHeaderBytes = spec.maxHeaderBytes ?? limits.maxHeaderBytes;
      checkCap(maxHeaderBytes, `handle(${name}).maxHeaderBytes`);
      const handlerTimeoutMs = spec.timeoutMs ?? limits.handlerTimeoutMs;
      checkCap(handlerTimeoutMs, `handle(${name}).timeoutMs`);
      await node.handle(
        protocol,
        (stream, connection) => {
          serve(stream, connection, spec, maxHeaderBytes, handlerTimeoutMs).catch((e: unknown) => {
            log.error({ protocol, err: errMessage(e) }, 'unexpected error serving stream');
            abortQuietly(stream, 'internal error');
          });
        },
        { maxInboundStreams: spec.maxInboundStreams ?? limits.maxInboundStreams },
      );
    },

    async unhandle(name: string): Promise<void> {
      await node.unhandle(protocolId(name));
    },

    async request<Req, Res>(target: string, name: string, message: WireMessage<Req>, options: RequestOptions<Res>): Promise<WireMessage<Res>> {
      ensureRunning();
      const protocol = protocolId(name);
      if (options == null || options.response == null) {
        throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `request(${name}): options.response schema is required`);
      }
      checkCap(options.maxBodyBytes, `request(${name}).maxBodyBytes`);
      const maxHeaderBytes = options.maxHeaderBytes ?? limits.maxHeaderBytes;
      checkCap(maxHeaderBytes, `request(${name}).maxHeaderBytes`);
      const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
      checkCap(timeoutMs, `request(${name}).timeoutMs`);
      const body = message?.body;
      if (body !== undefined && !(body instanceof Uint8Array)) throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `request(${name}): body must be a Uint8Array`);
      const envelope: Record<string, unknown> = { v: ENVELOPE_VERSION, header: message?.header ?? null };
      if (body !== undefined) envelope.bodyLength = body.byteLength;
      const headerFrame = encodeJsonFrame(envelope, maxHeaderBytes, `request header for ${protocol}`);

      const timeout = AbortSignal.timeout(timeoutMs);
      const signals = { timeout, user: options.signal };
      const signal = AbortSignal.any([timeout, stopController.signal, ...(options.signal ? [options.signal] : [])]);
      const { peer, stream } = await withConnection(target, { protocol, timeoutMs }, signal, signals, async (conn) => ({
        peer: conn.remotePeer.toString(),
        stream: await conn.newStream(protocol, { signal }),
      }));
      // Abort the stream on deadline so pending reads/writes settle at once.
      const onAbort = (): void => abortQuietly(stream, 'request aborted');
      signal.addEventListener('abort', onAbort, { once: true });

      const reader = new StreamReader(stream, { highWaterMark: 2 * MAX_FRAME_BYTES, onBytes: counter(peer, 'received', protocol) });
      // If the responder answers early (usually a refusal), stop sending the rest of the body.
      const answered = new AbortController();
      const readResponse = async (): Promise<WireMessage<Res>> => {
        const raw = await readJsonFrame(reader, maxHeaderBytes, signal, `response header from ${peer}`);
        const env = responseEnvelopeSchema.safeParse(raw);
        if (!env.success) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `response envelope from ${peer} invalid: ${summarizeIssues(env.error)}`);
        if ('error' in env.data) {
          answered.abort();
          const { code, message: msg } = env.data.error;
          throw new FedtwinError(code, msg, { details: { remote: peer, protocol } });
        }
        const declared = env.data.bodyLength;
        if (declared !== undefined && declared > options.maxBodyBytes) {
          throw new FedtwinError(WIRE_CODES.TOO_LARGE, `response body of ${declared} bytes from ${peer} exceeds the ${options.maxBodyBytes}-byte cap`, {
            hint: 'Raise maxBodyBytes if this size is expected.',
            details: { size: declared, cap: options.maxBodyBytes },
          });
        }
        const parsed = options.response.safeParse(env.data.header);
        if (!parsed.success) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `response header from ${peer} invalid for ${protocol}: ${summarizeIssues(parsed.error)}`);
        const rbody = declared === undefined ? undefined : await readBody(reader, declared, signal, `response body from ${peer}`);
        return rbody === undefined ? { header: parsed.data } : { header: parsed.data, body: rbody };
      };
      const responseP = readResponse();
      responseP.catch(() => undefined);

      let completed = false;
      try {
        const writeSignal = AbortSignal.any([signal, answered.signal]);
        const sent = counter(peer, 'sent', protocol);
        await writeFrame(stream, headerFrame, writeSignal, sent);
        if (body !== undefined) await writeBody(stream, body, limits.chunkBytes, writeSignal, sent);
        await stream.close({ signal: writeSignal });
      } catch {
        // A refused request usually fails the write too; the response (or its failure) says why.
      }
      try {
        const res = await responseP;
        completed = true;
        return res;
      } catch (e) {
        throw mapError(e, { phase: 'exchange', target, peer, protocol, timeoutMs }, signals);
      } finally {
        signal.removeEventListener('abort', onAbort);
        reader.detach();
        // Anything short of a complete exchange leaves the remote mid-send: reset to free both ends.
        if (!completed) abortQuietly(stream, 'request did not complete');
      }
    },

    bytes: () => ({ ...total }),

    bytesByProtocol(): Record<string, ByteCounts> {
      const out: Record<string, ByteCounts> = {};
      for (const [k, v] of perProtocol) out[k] = { ...v };
      return out;
    },

    bytesByPeer(): Record<string, ByteCounts> {
      const out: Record<string, ByteCounts> = {};
      for (const [k, v] of perPeer) out[k] = { ...v };
      return out;
    },

    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      stopController.abort(new FedtwinError(WIRE_CODES.STOPPED, 'wire host stopped'));
      refusals.flush();
      await node.stop();
    },
  };
  return host;
}

function peerIdFromStringChecked(peerId: string): string {
  try {
    return peerIdFromString(peerId).toString();
  } catch {
    throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid peer ID ${peerId}`, { hint: 'Peer IDs look like 12D3KooW...' });
  }
}
