// @fedtwin/secagg — collusion-resistant secure aggregation by pairwise masking (SecAgg / SecAgg+).
export { RING_BITS, DEFAULT_VALUE_BOUND, checkConfig, advertise, advertisementSigningBytes, verifyAdvertisement, shareKeys, maskInput, answerRecovery, requestDigest, maskSign, roundGraph, collectAdvertisements, routeShares, recoveryRequest, unmask } from './protocol.ts';
export type { SecaggConfig, KeyAdvertisement, EncryptedShare, ShareBundle, MaskedInput, RecoveryRequest, RecoveryResponse, ShareReveal, MemberState, MemberPhase, AggregatorRound } from './protocol.ts';
export { buildGraph, graphSeed, defaultDegree } from './graph.ts';
export type { Graph } from './graph.ts';
export { split, combine, lagrangeAtZero, randomFieldElement, bytesToField, fieldToBytes, FIELD_PRIME, SHARE_BYTES } from './shamir.ts';
export { addMask, expandMask, warmUp } from './prg.ts';
export { generateX25519, x25519PublicOf, sharedSecret, pairwiseSeed, shareKey, selfMaskSeed, commitB, verifyIdentitySignature } from './keys.ts';
export type { IdentitySigner, X25519KeyPair } from './keys.ts';
export type { SecaggCode } from './errors.ts';
