import type { Stream } from '@libp2p/interface';
import { FedtwinError } from '@fedtwin/errors';
import { z } from 'zod';
import { WIRE_CODES } from './codes.ts';
import type { StreamReader } from './reader.ts';
import { encodeVarint } from './varint.ts';

/** lpStream's 4 MiB frame cap: no body frame may be larger, whatever the body size. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
/** Envelope version; bump (with the protocol ID) if the framing ever changes. */
export const ENVELOPE_VERSION = 1;

const bodyLength = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const requestEnvelopeSchema = z.strictObject({
  v: z.literal(ENVELOPE_VERSION),
  header: z.unknown(),
  bodyLength: bodyLength.optional(),
});

export const errorBodySchema = z.strictObject({
  // Codes are UPPER_SNAKE and short so a hostile peer cannot smuggle text into logs via them.
  code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/),
  message: z.string().max(2000),
});

export const responseEnvelopeSchema = z.union([
  z.strictObject({ v: z.literal(ENVELOPE_VERSION), header: z.unknown(), bodyLength: bodyLength.optional() }),
  z.strictObject({ v: z.literal(ENVELOPE_VERSION), error: errorBodySchema }),
]);

export type RequestEnvelope = z.infer<typeof requestEnvelopeSchema>;
export type ResponseEnvelope = z.infer<typeof responseEnvelopeSchema>;

export function wireError(code: string, message: string, hint?: string, details?: Record<string, unknown>): FedtwinError {
  return new FedtwinError(code, message, { hint, details });
}

/** A short, single-line summary of zod issues (path: message), safe to send to a peer. */
export function summarizeIssues(error: z.ZodError): string {
  const parts = error.issues.slice(0, 5).map((i) => {
    const path = i.path.length === 0 ? '(root)' : i.path.map((p) => String(p)).join('.');
    return `${path}: ${i.message}`;
  });
  if (error.issues.length > 5) parts.push(`... ${error.issues.length - 5} more`);
  return parts.join('; ').slice(0, 1000);
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Serialize a JSON header frame payload, refusing anything over `maxBytes`. */
export function encodeJsonFrame(value: unknown, maxBytes: number, what: string): Uint8Array {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `${what} is not JSON-serializable: ${(e as Error).message}`, {
      hint: 'Headers must be plain JSON (no BigInt, no cycles); put binary data in the body.',
    });
  }
  if (json === undefined) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `${what} is not JSON-serializable`);
  const bytes = utf8.encode(json);
  if (bytes.byteLength > maxBytes) {
    throw new FedtwinError(WIRE_CODES.TOO_LARGE, `${what} is ${bytes.byteLength} bytes, over the ${maxBytes}-byte header cap`, {
      hint: 'Move bulk data into the binary body, or raise maxHeaderBytes on both ends.',
      details: { size: bytes.byteLength, cap: maxBytes },
    });
  }
  return bytes;
}

/** Send bytes, waiting for 'drain' when libp2p says its buffer is full. */
async function send(stream: Stream, data: Uint8Array, signal: AbortSignal, count: (n: number) => void): Promise<void> {
  signal.throwIfAborted();
  const more = stream.send(data);
  count(data.byteLength);
  if (!more) await stream.onDrain({ signal });
}

/** Write one length-prefixed frame (prefix and payload in one send for small frames). */
export async function writeFrame(stream: Stream, payload: Uint8Array, signal: AbortSignal, count: (n: number) => void): Promise<void> {
  const prefix = encodeVarint(payload.byteLength);
  if (payload.byteLength <= 64 * 1024) {
    const joined = new Uint8Array(prefix.byteLength + payload.byteLength);
    joined.set(prefix, 0);
    joined.set(payload, prefix.byteLength);
    await send(stream, joined, signal, count);
  } else {
    // Large payloads go as two sends so the body is never copied.
    await send(stream, prefix, signal, count);
    await send(stream, payload, signal, count);
  }
}

/** Write a body as frames of at most `chunkBytes` (≤ 4 MiB), respecting back-pressure. */
export async function writeBody(stream: Stream, body: Uint8Array, chunkBytes: number, signal: AbortSignal, count: (n: number) => void): Promise<void> {
  for (let off = 0; off < body.byteLength; off += chunkBytes) {
    await writeFrame(stream, body.subarray(off, Math.min(off + chunkBytes, body.byteLength)), signal, count);
  }
}

/**
 * Read a JSON header frame. The length prefix is checked against `maxBytes` BEFORE a single
 * payload byte is read or allocated.
 */
export async function readJsonFrame(reader: StreamReader, maxBytes: number, signal: AbortSignal, what: string): Promise<unknown> {
  let length: number;
  try {
    length = await reader.readVarint(signal);
  } catch (e) {
    if (e instanceof RangeError) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `${what}: invalid length prefix (${e.message})`);
    throw e;
  }
  if (length > maxBytes) {
    throw new FedtwinError(WIRE_CODES.TOO_LARGE, `${what} declares ${length} bytes, over the ${maxBytes}-byte header cap`, {
      hint: 'Move bulk data into the binary body, or raise maxHeaderBytes on the receiving end.',
      details: { size: length, cap: maxBytes },
    });
  }
  const bytes = await reader.readExact(length, signal);
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `${what} is not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `${what} is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

/**
 * Read a body of exactly `total` bytes sent as frames of ≤ 4 MiB. The caller has already
 * checked `total` against its cap; each frame must fit in what remains.
 */
export async function readBody(reader: StreamReader, total: number, signal: AbortSignal, what: string): Promise<Uint8Array> {
  const body = new Uint8Array(total);
  let off = 0;
  while (off < total) {
    let frame: number;
    try {
      frame = await reader.readVarint(signal);
    } catch (e) {
      if (e instanceof RangeError) throw new FedtwinError(WIRE_CODES.BAD_MESSAGE, `${what}: invalid frame length prefix (${e.message})`);
      throw e;
    }
    if (frame === 0 || frame > MAX_FRAME_BYTES || frame > total - off) {
      throw new FedtwinError(
        WIRE_CODES.BAD_MESSAGE,
        `${what}: body frame of ${frame} bytes is invalid (${total - off} bytes remain, frames are 1..${MAX_FRAME_BYTES} bytes)`,
      );
    }
    await reader.readInto(body, off, frame, signal);
    off += frame;
  }
  return body;
}
