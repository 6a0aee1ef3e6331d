// @fedtwin/he — homomorphically encrypted secure aggregation (BFV on Microsoft SEAL via node-seal).
export { createHeContext, HeContext } from './context.ts';
export type { HeParams, HeParamsInit } from './params.ts';
export { DEFAULTS, plainModulusBitsFor, maxC0DropBits, compactSumDropBits, quantMax, SEAL_FRESH_NOISE_BOUND, ENCODE_ERROR_BOUND, SUM_FLOAT_ERROR_BOUND, DECRYPT_FLOAT_ERROR_BOUND, SAFETY_BITS } from './params.ts';
export { quantize, dequantize, randomSeed } from './quantize.ts';
export type { QuantizeOptions, Quantized, QuantSeed } from './quantize.ts';
export {
  generateKeys, publicInfo, computeKeyId, serializeSecretKey, deserializeSecretKey, saveSecretKeyFile, loadSecretKeyFile,
} from './keys.ts';
export type { HeSecretKey, HePublicInfo } from './keys.ts';
export { encryptVector, Accumulator, decryptSum, decryptSumIntegers, validateCiphertext, resolveParticipants } from './scheme.ts';
export type { EncryptOptions, EncryptResult, DecryptedIntegers } from './scheme.ts';
export { splitUpdate, readUpdateHeader, updateSize, updateHeaderSize, chunkSize, KIND_FRESH, KIND_SUM_COMPACT, CHUNK_HEADER_BYTES, UPDATE_HEADER_BYTES, PARTICIPANT_ENTRY_BYTES, WIRE_VERSION } from './wire.ts';
export type { ChunkKind, UpdateHeader, ParticipantEntry } from './wire.ts';
export { createHePool } from './pool.ts';
export type { HePool, HePoolInit, CkksPoolBaseline } from './pool.ts';
export { roundTag, memberHash, ROUND_TAG_BYTES, MAX_MEMBER_ID_BYTES, NONCE_BYTES, MEMBER_HASH_BYTES } from './mask.ts';
export { runHeBench, benchUpdate } from './bench.ts';
export type { HeBenchOptions, HeBenchResult, SchemeFigures } from './bench.ts';
export { sealKeyFor, openSealedKey, verifySealedKey, verifyOpenedKey, sealedKeySigningBytes, sealedKeyDigest, SEALED_KEY_MAX_CIPHERTEXT_BYTES } from './ceremony.ts';
export type { SealedKey, SealKeyInit, OpenSealedKeyInit, OpenedKey } from './ceremony.ts';
