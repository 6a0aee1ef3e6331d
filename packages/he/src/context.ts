// The HE context: SEAL objects for one parameter set, the derived constants, and SEAL's byte layout.
import { createHash } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';
import type { Evaluator, SEALContext } from 'node-seal';
import { loadSeal, sealCall } from './seal.ts';
import { disposeMasks } from './mask.ts';
import type { SealModule } from './seal.ts';
import { bitLength, compactSumDropBits, maxC0DropBits, quantMax, resolveParamsInit } from './params.ts';
import type { HeParams, HeParamsInit } from './params.ts';

/**
 * SEAL 4.1 serialization (compression "none"), little-endian:
 *   SEALHeader(16: magic a15e, header size 16, version 4.1, compr mode, reserved, u64 total size)
 *   Ciphertext members (73): parms_id 32 | is_ntt u8 | size u64 | N u64 | coeff_modulus_size u64 | scale f64 | correction u64
 *   DynArray: SEALHeader(16) | u64 count | count × u64 coefficients (c0 then c1)
 *   seeded only: UniformRandomGeneratorInfo: SEALHeader(16) | u8 prng type | 64-byte seed  (replaces c1)
 */
export const SEAL_CT_DATA_OFFSET = 16 + 73 + 16 + 8;
export const SEAL_PRNG_INFO_SIZE = 16 + 1 + 64;
/** Plaintext: SEALHeader | parms_id 32 | coeff_count u64 | scale f64 | DynArray(SEALHeader | u64 count | data). */
export const SEAL_PT_DATA_OFFSET = 16 + 32 + 8 + 8 + 16 + 8;

/** A key checked against its id and this context (cached by key id). */
export interface KeyState {
  keyId: string;
}

export class HeContext {
  readonly params: HeParams;
  /** SHA-256 over every parameter that changes the meaning of a ciphertext. */
  readonly paramsId: Uint8Array;
  readonly paramsIdHex: string;
  readonly slotCount: number;
  /** Ciphertext modulus q and plaintext modulus t as SEAL chose them. */
  readonly q: bigint;
  readonly t: bigint;
  readonly qBits: number;
  /** q as (lo, hi) 32-bit words, for arithmetic on (lo, hi) coefficient pairs. */
  readonly qWords: readonly [number, number];
  /** Bits of one wire coefficient of a fresh ciphertext's c0 after dropping c0DropBits low bits. */
  readonly c0Bits: number;
  /** Largest quantized magnitude and the real→integer scale (qmax / clip). */
  readonly quantMax: number;
  readonly scale: number;

  /** @internal SEAL objects; not part of the stable API. */
  readonly seal: SealModule;
  readonly sealContext: SEALContext;
  readonly evaluator: Evaluator;
  readonly fullTemplate: Uint8Array;
  readonly keys = new Map<string, KeyState>();

  constructor(init: {
    params: HeParams; seal: SealModule; sealContext: SEALContext; q: bigint; t: bigint;
    fullTemplate: Uint8Array; sealParmsId: Uint8Array;
  }) {
    const { params, seal, sealContext, q, t } = init;
    this.params = params;
    this.seal = seal;
    this.sealContext = sealContext;
    this.q = q;
    this.t = t;
    this.qBits = bitLength(Number(q));
    this.qWords = [Number(q % 4294967296n), Number(q >> 32n)];
    this.slotCount = params.polyModulusDegree;
    this.c0Bits = Number((q - 1n) >> BigInt(params.c0DropBits)).toString(2).length;
    this.quantMax = quantMax(params.quantBits);
    this.scale = this.quantMax / params.clip;
    this.evaluator = new seal.Evaluator(sealContext);
    this.fullTemplate = init.fullTemplate;
    const canon = JSON.stringify({
      v: 3, scheme: params.scheme, encoding: 'coefficients', mask: 'round-common-a', members: 'derived-secrets', n: params.polyModulusDegree, q: q.toString(), t: t.toString(),
      quantBits: params.quantBits, clip: params.clip, maxParticipants: params.maxParticipants,
      c0DropBits: params.c0DropBits, maxValues: params.maxValues, seal: Buffer.from(init.sealParmsId).toString('hex'),
    });
    this.paramsId = new Uint8Array(createHash('sha256').update('fedtwin/he/params/v1\0').update(canon).digest());
    this.paramsIdHex = Buffer.from(this.paramsId).toString('hex');
  }

  /** Low bits (c0, c1) a compact sum of `addends` updates drops on the wire (params.ts). */
  compactDropBits(addends: number): number {
    let d = this.#drops.get(addends);
    if (d === undefined) {
      d = compactSumDropBits(this.q, this.t, this.params.c0DropBits, addends);
      this.#drops.set(addends, d);
    }
    return d;
  }

  #drops = new Map<number, number>();

  /** Frees the WASM memory of the cached SEAL objects (the context must not be used afterwards). */
  dispose(): void {
    disposeMasks(this);
    this.keys.clear();
    this.evaluator.delete();
    this.sealContext.delete();
  }
}

function layoutError(what: string): never {
  throw new FedtwinError('HE_SEAL_LAYOUT', `SEAL's serialization differs from the layout fedtwin parses: ${what}`, {
    hint: 'node-seal was upgraded; check node_modules/node-seal is 7.0.0 (SEAL 4.1) or update packages/he/src/context.ts',
  });
}

function u64(bytes: Uint8Array, off: number): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(off, true));
}

/** Checks that a SEAL-saved ciphertext has the layout documented above. */
function checkCtLayout(bytes: Uint8Array, n: number, seeded: boolean): void {
  const expected = SEAL_CT_DATA_OFFSET + (seeded ? n * 8 + SEAL_PRNG_INFO_SIZE : 2 * n * 8);
  if (bytes.length !== expected) layoutError(`ciphertext is ${bytes.length} bytes, expected ${expected}`);
  if (bytes[0] !== 0x5e || bytes[1] !== 0xa1 || bytes[2] !== 16 || bytes[3] !== 4) layoutError('bad SEALHeader magic/version');
  if (u64(bytes, 8) !== expected) layoutError('header size field');
  if (u64(bytes, 49) !== 2 || u64(bytes, 57) !== n || u64(bytes, 65) !== 1) layoutError('ciphertext members');
  if (u64(bytes, SEAL_CT_DATA_OFFSET - 8) !== (seeded ? n : 2 * n)) layoutError('coefficient count');
  if (seeded && u64(bytes, SEAL_CT_DATA_OFFSET + n * 8 + 8) !== SEAL_PRNG_INFO_SIZE) layoutError('PRNG info size');
}

/**
 * Builds SEAL objects for the parameters (BFV, one prime q, batching plaintext modulus t), checks
 * ≥128-bit security with SEAL's HomomorphicEncryption.org tables, and derives the wire constants.
 */
export async function createHeContext(init: HeParamsInit = {}): Promise<HeContext> {
  const pre = resolveParamsInit(init);
  const seal = await loadSeal();
  const n = pre.polyModulusDegree;
  const maxBits = seal.CoeffModulus.MaxBitCount(n, seal.SecLevelType.tc128);
  if (pre.coeffModulusBits > maxBits) {
    throw new FedtwinError('HE_BAD_PARAMS', `coeffModulusBits ${pre.coeffModulusBits} exceeds the 128-bit security bound ${maxBits} for N=${n}`, { hint: 'lower coeffModulusBits' });
  }
  const parms = new seal.EncryptionParameters(seal.SchemeType.bfv);
  const sealContext = sealCall('HE_BAD_PARAMS', 'SEAL rejected the parameters', () => {
    parms.setPolyModulusDegree(n);
    parms.setCoeffModulus(seal.CoeffModulus.Create(n, Int32Array.from([pre.coeffModulusBits])));
    parms.setPlainModulus(seal.PlainModulus.Batching(n, pre.plainModulusBits));
    return new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
  }, 'choose parameters within SEAL limits');
  parms.delete();
  if (!sealContext.parametersSet()) {
    throw new FedtwinError('HE_BAD_PARAMS', 'SEAL did not accept the parameters as secure and valid', { hint: 'use the defaults' });
  }
  const data = sealContext.firstContextData();
  const p = data.parms();
  const q = p.coeffModulus().get(0)!.value();
  const t = p.plainModulus().value();
  const sealParmsId = new Uint8Array((sealContext.firstParmsId().values() as BigUint64Array).buffer.slice(0));
  if (!data.qualifiers().usingBatching) throw new FedtwinError('HE_BAD_PARAMS', 'plaintext modulus does not support batching', { hint: 'use the defaults' });
  // Headroom: the centred range of t must hold maxParticipants × qmax.
  if ((t - 1n) / 2n < BigInt(pre.maxParticipants) * BigInt(quantMax(pre.quantBits))) layoutError('plaintext modulus too small for the declared headroom');
  const maxDrop = Math.min(32, maxC0DropBits(q, t, pre.maxParticipants));
  if (maxDrop < 8) {
    throw new FedtwinError('HE_BAD_PARAMS', `q (${pre.coeffModulusBits} bits) leaves too little noise room for ${pre.maxParticipants} participants with a ${pre.plainModulusBits}-bit t`, {
      hint: 'raise coeffModulusBits (max 60) or lower maxParticipants / quantBits',
    });
  }
  const c0DropBits = pre.c0DropBits ?? maxDrop;
  if (c0DropBits < 8 || c0DropBits > maxDrop) {
    throw new FedtwinError('HE_BAD_PARAMS', `c0DropBits ${c0DropBits} must be in [8, ${maxDrop}] for these parameters (noise bound)`, { hint: 'omit c0DropBits to use the largest safe value' });
  }
  const params: HeParams = { ...pre, c0DropBits };

  // Layout templates from a throwaway key: lets keyless parties (the aggregator) rebuild SEAL bytes.
  const kg = new seal.KeyGenerator(sealContext);
  const sk = kg.secretKey();
  const pk = kg.createPublicKey();
  const enc = new seal.Encryptor(sealContext, pk, sk);
  const zero = new seal.Plaintext();
  const encoder = new seal.BatchEncoder(sealContext);
  encoder.encode(new BigInt64Array(n), zero);
  const ser = enc.encryptSymmetricSerializable(zero);
  const seededTemplate = new Uint8Array(ser.saveToArray(seal.ComprModeType.none) as Uint8Array);
  checkCtLayout(seededTemplate, n, true);
  const ct = new seal.Ciphertext();
  ct.loadFromArray(sealContext, seededTemplate);
  const fullTemplate = new Uint8Array(ct.saveToArray(seal.ComprModeType.none) as Uint8Array);
  checkCtLayout(fullTemplate, n, false);
  const ptBytes = zero.saveToArray(seal.ComprModeType.none) as Uint8Array;
  if (ptBytes.length !== SEAL_PT_DATA_OFFSET + n * 8) layoutError('plaintext size');
  for (const o of [ser, ct, enc, zero, encoder, pk, sk, kg]) o.delete();
  return new HeContext({ params, seal, sealContext, q, t, fullTemplate, sealParmsId });
}
