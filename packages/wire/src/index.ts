export { WIRE_CODES } from './codes.ts';
export type { WireErrorCode } from './codes.ts';
export { generateIdentity, saveIdentity, loadIdentity, peerIdOf } from './identity.ts';
export { createWireHost, protocolId, DEFAULT_LIMITS, INITIAL_STREAM_WINDOW } from './host.ts';
export type {
  WireHost,
  WireHostInit,
  WireLimits,
  WireLogger,
  WireMessage,
  HandlerSpec,
  HandlerContext,
  AuthorizeContext,
  RequestOptions,
  ByteCounts,
  WireServices,
} from './host.ts';
export { MAX_FRAME_BYTES, DEFAULT_MAX_HEADER_BYTES, ENVELOPE_VERSION } from './frames.ts';
export { encodeVarint, decodeVarint } from './varint.ts';
