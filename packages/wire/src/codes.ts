/**
 * Stable error codes thrown by @fedtwin/wire. Scripts and tests match on these strings,
 * so never rename one; add new ones instead.
 */
export const WIRE_CODES = {
  /** A caller passed an argument the API cannot use (bad multiaddr, bad limit, ...). */
  BAD_ARGUMENT: 'WIRE_BAD_ARGUMENT',
  /** The listen address is taken by another process. */
  ADDRESS_IN_USE: 'WIRE_ADDRESS_IN_USE',
  /** libp2p could not start listening for another reason. */
  LISTEN_FAILED: 'WIRE_LISTEN_FAILED',
  /** Our own allowlist does not contain the peer we were asked to talk to. */
  PEER_NOT_ALLOWED: 'WIRE_PEER_NOT_ALLOWED',
  /** The remote dropped us right after the Noise handshake: it does not list our peer ID. */
  NOT_MEMBER: 'WIRE_NOT_MEMBER',
  /** TCP connect / dial failed (nothing listening, unreachable, no known address). */
  DIAL_FAILED: 'WIRE_DIAL_FAILED',
  /** The remote does not serve the requested /fedtwin/<name>/1.0.0 protocol. */
  UNSUPPORTED_PROTOCOL: 'WIRE_UNSUPPORTED_PROTOCOL',
  /** A message was malformed: bad framing, bad JSON, schema mismatch, bad error envelope. */
  BAD_MESSAGE: 'WIRE_BAD_MESSAGE',
  /** A header or body exceeded its cap; rejected before it was read or allocated. */
  TOO_LARGE: 'WIRE_TOO_LARGE',
  /** The requester closed its side before sending the whole request (header or body cut short). */
  TRUNCATED: 'WIRE_TRUNCATED',
  /** Bytes followed the declared request (after the header, or after the declared body). */
  TRAILING_BYTES: 'WIRE_TRAILING_BYTES',
  /** The peer already has too many body bytes in flight on this host (limits.maxInflightBodyBytesPerPeer). */
  INFLIGHT_LIMIT: 'WIRE_INFLIGHT_LIMIT',
  /** The peer already has too many fedtwin streams open on this host (limits.maxInboundStreamsPerPeer). */
  STREAM_LIMIT: 'WIRE_STREAM_LIMIT',
  /** A deadline passed (request, handler, read or write). */
  TIMEOUT: 'WIRE_TIMEOUT',
  /** The caller's AbortSignal fired. */
  ABORTED: 'WIRE_ABORTED',
  /** The stream or connection died mid-exchange (reset, EOF, peer gone). */
  STREAM_FAILED: 'WIRE_STREAM_FAILED',
  /** The remote handler failed with a non-FedtwinError; details stay in the remote's log. */
  REMOTE_INTERNAL: 'WIRE_REMOTE_INTERNAL',
  /** The host was stopped (or was never started) while the operation ran. */
  STOPPED: 'WIRE_STOPPED',
  /** Identity file problems. */
  IDENTITY_MISSING: 'WIRE_IDENTITY_MISSING',
  IDENTITY_UNREADABLE: 'WIRE_IDENTITY_UNREADABLE',
  IDENTITY_CORRUPT: 'WIRE_IDENTITY_CORRUPT',
  IDENTITY_WRONG_TYPE: 'WIRE_IDENTITY_WRONG_TYPE',
  IDENTITY_WRITE_FAILED: 'WIRE_IDENTITY_WRITE_FAILED',
} as const;

export type WireErrorCode = (typeof WIRE_CODES)[keyof typeof WIRE_CODES];
