import { FedtwinError, isFedtwinError } from '@fedtwin/errors';

/**
 * What an operator can do about a failed connection. @fedtwin/wire already wraps libp2p's failures in WIRE_*
 * codes, but keeps libp2p's own words ("Missing newline", "Encryption failed: Unexpected EOF …"), which name a
 * parser state, not a cause. The causes behind them are few and each has a fix:
 *
 * - WIRE_PEER_MISMATCH: the Noise handshake proved the peer at that address holds another key than the one
 *   dialled (another daemon on that port, or the address's /p2p/ part or the manifest names another peer).
 * - WIRE_NOT_LIBP2P: bytes came back that are not libp2p at all (an HTTP server, a metrics endpoint, a TLS
 *   proxy on that port).
 * - WIRE_HANDSHAKE_TIMEOUT / WIRE_HANDSHAKE_CLOSED: TCP connected but the handshake did not complete in time, or
 *   the connection closed during it (a busy daemon evicting pending handshakes looks like this, so a node retries
 *   these at start as it does a dial failure).
 * - WIRE_HANDSHAKE_FAILED: any other Noise failure.
 *
 * Errors the CLI does not recognise from the network layer (raw libp2p errors that escaped any wrapping) become
 * WIRE_NETWORK_ERROR with the same kind of hint. Everything else is returned unchanged.
 */
export function explainNetworkError(err: unknown): unknown {
  if (isFedtwinError(err) && !RAW_WIRE_CODES.has(err.code)) return quotingExplained(err);
  if (!isFedtwinError(err) && !isLibp2pError(err)) return err;
  const chain = causes(err);
  const target = isFedtwinError(err) ? targetOf(err.message) : undefined;
  const at = target ? ` at ${target}` : '';
  const original = chain.map((e) => `${e.name}: ${e.message}`).join(' <- ');

  const mismatch = chain.map((e) => /identity key (\S+) does not match expected remote identity key (\S+)/.exec(e.message)).find((m) => m);
  if (mismatch) {
    const [, found, expected] = mismatch;
    return new FedtwinError('WIRE_PEER_MISMATCH', `the peer${at} is ${found}, not ${expected} (the encrypted handshake proved it holds another key)`, {
      hint: 'another daemon answers on that address, or the address (its /p2p/ part) or the consortium manifest names another peer: '
        + 'check the host and port against the aggregator\'s listening.json (or its "listening" log line) and that the manifest\'s aggregator is the identity that daemon runs with (fedtwin keys show --in <its key file>)',
      details: { found, expected, ...(target ? { target } : {}), original },
      cause: err,
    });
  }
  if (chain.some((e) => /aborted due to timeout|timed out|TimeoutError/i.test(`${e.name} ${e.message}`)) && chain.some((e) => e.name === 'EncryptionFailedError')) {
    return new FedtwinError('WIRE_HANDSHAKE_TIMEOUT', `a connection${at} opened, but no libp2p handshake completed in time`, {
      hint: 'something accepts TCP connections on that port but does not speak libp2p (another service, or a firewall that accepts and drops), or the daemon there is overloaded: check the port, then retry',
      details: { ...(target ? { target } : {}), original },
      cause: err,
    });
  }
  // Only while connecting: mid-exchange, an EOF is a peer that went away (WIRE_STREAM_FAILED says so already).
  const handshake = (isFedtwinError(err) && err.code === 'WIRE_DIAL_FAILED') || chain.some((e) => HANDSHAKE.test(`${e.name} ${e.message}`));
  if (handshake && chain.some((e) => GARBAGE.test(`${e.name} ${e.message}`) || partialFrame(e.message))) {
    return new FedtwinError('WIRE_NOT_LIBP2P', `the service${at} did not answer as a fedtwin daemon (its reply is not a libp2p handshake)`, {
      hint: 'something else listens on that port (an HTTP server, a metrics or dashboard port, a TLS proxy?): '
        + 'check the host and port; the aggregator prints the addresses it listens on at start (listening.json in its dataDir)',
      details: { ...(target ? { target } : {}), original },
      cause: err,
    });
  }
  // libp2p's bare "Encryption failed" wraps an error without a message: the connection dropped (reset) mid-handshake.
  if (handshake && chain.some((e) => CLOSED.test(`${e.name} ${e.message}`) || (e.name === 'EncryptionFailedError' && e.message === 'Encryption failed'))) {
    return new FedtwinError('WIRE_HANDSHAKE_CLOSED', `the connection${at} closed during the libp2p handshake`, {
      hint: 'the daemon there is busy (it drops handshakes beyond its limit while many members connect) or stopping; this member retries. '
        + 'If it persists, check that the port belongs to the fedtwin daemon (a service that closes connections it cannot parse looks the same)',
      details: { ...(target ? { target } : {}), original },
      cause: err,
    });
  }
  if (handshake && chain.some((e) => e.name === 'EncryptionFailedError')) {
    return new FedtwinError('WIRE_HANDSHAKE_FAILED', `the encrypted (Noise) handshake${at} failed`, {
      hint: 'the peer there runs an incompatible libp2p or fedtwin version, or is not the daemon you meant: check the address and that both sides run the same fedtwin release',
      details: { ...(target ? { target } : {}), original },
      cause: err,
    });
  }
  if (isFedtwinError(err)) return err;
  return new FedtwinError('WIRE_NETWORK_ERROR', `network failure${at} (libp2p ${(err as Error).name})`, {
    hint: 'a connection to a peer failed in a way fedtwin does not recognise: check that the peer runs a fedtwin daemon of the same version, and its log',
    details: { original },
    cause: err,
  });
}

/**
 * An error that quotes a network error in its message (NODE_AGGREGATOR_UNREACHABLE: "last error WIRE_DIAL_FAILED:
 * cannot connect to …: Encryption failed …") quotes the explained one instead; its code and hint stay.
 */
function quotingExplained(err: FedtwinError): FedtwinError {
  const cause = err.cause;
  if (!isFedtwinError(cause) || !RAW_WIRE_CODES.has(cause.code) || !err.message.includes(cause.message)) return err;
  const explained = explainNetworkError(cause);
  if (explained === cause || !isFedtwinError(explained)) return err;
  const message = err.message.replace(`${cause.code}: ${cause.message}`, `${explained.code}: ${explained.message}`).replace(cause.message, explained.message);
  return new FedtwinError(err.code, message, { ...(err.hint ? { hint: `${err.hint}; ${explained.hint}` } : {}), details: { ...err.details, cause: explained.code }, cause: explained });
}

/** WIRE_* codes whose message may carry a raw libp2p message (the others are fedtwin's own words). */
const RAW_WIRE_CODES = new Set(['WIRE_DIAL_FAILED', 'WIRE_STREAM_FAILED']);

/** Failures of the connection's set-up (multistream-select, Noise), not of an exchange on a working connection. */
const HANDSHAKE = /EncryptionFailedError|InvalidMessageError|Missing newline|InvalidCryptoExchangeError/;

/** libp2p's words for "the bytes that came back are not a libp2p handshake": a definite answer, not worth a retry. */
const GARBAGE = /Missing newline|InvalidMessageError|invalid multistream|Protocol selection failed|message length too long|Invalid (varint|message)/i;

/**
 * "Unexpected EOF - stream closed while reading 23/72 bytes": the peer sent bytes, then closed before the message
 * their length prefix announced was complete. libp2p peers send each handshake message whole (a daemon that
 * drops a pending handshake sends nothing more); a service that answers anything with a short error and closes
 * (an HTTP server's "400 Bad Request") produces exactly this.
 */
function partialFrame(message: string): boolean {
  const m = /closed (?:while|after) reading (\d+)\/(\d+) bytes/.exec(message);
  return m !== null && Number(m[1]) > 0 && Number(m[1]) < Number(m[2]);
}

/** The connection ended mid-handshake: what a busy daemon's eviction looks like too, so it is retried. */
const CLOSED = /Unexpected EOF|UnexpectedEOFError|EndOfStreamError|StreamResetError|ConnectionClosedError|ECONNRESET|socket hang up/i;

/** libp2p error class names (from @libp2p/interface and libp2p): what escapes unwrapped from the network layer. */
const LIBP2P_ERRORS = /^(EncryptionFailedError|InvalidMessageError|UnexpectedEOFError|EndOfStreamError|InvalidCryptoExchangeError|UnexpectedPeerError|MuxerUnavailableError|ConnectionClosedError|ConnectionClosingError|ConnectionFailedError|StreamResetError|StreamAbortedError|StreamStateError|DialError|ProtocolError|UnsupportedProtocolError|MuxerClosedError|ConnectionDeniedError|ConnectionInterceptedError)$/;

function isLibp2pError(err: unknown): boolean {
  return err instanceof Error && (LIBP2P_ERRORS.test(err.name) || /node_modules\/(libp2p|@libp2p|@chainsafe\/libp2p)/.test(err.stack ?? ''));
}

function causes(err: unknown): Array<{ name: string; message: string }> {
  const out: Array<{ name: string; message: string }> = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Error) out.push({ name: e.name, message: e.message });
    else if (typeof Event !== 'undefined' && e instanceof Event) out.push({ name: `Event(${e.type})`, message: e.type });
    else break;
  }
  return out;
}

/** The address @fedtwin/wire names in "cannot connect to <target>: …" / "stream to <target> …". */
function targetOf(message: string): string | undefined {
  return /^(?:cannot connect to|stream to) (\S+?):?\s/.exec(message)?.[1];
}
