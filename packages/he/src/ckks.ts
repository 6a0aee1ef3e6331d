// Baseline for `fedtwin bench he`: CKKS as NVIDIA FLARE configures it by default (TenSEAL context:
// N=8192, coeff moduli [60, 40, 40], scale 2^40, public-key encryption), serialized with SEAL's
// default save (zstd compression). Used for comparison only; fedtwin does not ship CKKS updates.
import type { CKKSEncoder, Ciphertext, Decryptor, Encryptor, Evaluator, SEALContext } from 'node-seal';
import { loadSeal } from './seal.ts';
import type { SealModule } from './seal.ts';

export const CKKS_POLY_DEGREE = 8192;
export const CKKS_COEFF_BITS = [60, 40, 40] as const;
export const CKKS_SCALE = 2 ** 40;
export const CKKS_SLOTS = CKKS_POLY_DEGREE / 2;

export interface CkksKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export class CkksBaseline {
  readonly seal: SealModule;
  readonly context: SEALContext;
  readonly encoder: CKKSEncoder;
  readonly evaluator: Evaluator;
  #encryptor: Encryptor | undefined;
  #decryptor: Decryptor | undefined;

  constructor(seal: SealModule) {
    this.seal = seal;
    const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
    parms.setPolyModulusDegree(CKKS_POLY_DEGREE);
    parms.setCoeffModulus(seal.CoeffModulus.Create(CKKS_POLY_DEGREE, Int32Array.from(CKKS_COEFF_BITS)));
    this.context = new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
    parms.delete();
    this.encoder = new seal.CKKSEncoder(this.context);
    this.evaluator = new seal.Evaluator(this.context);
  }

  generateKeys(): CkksKeys {
    const kg = new this.seal.KeyGenerator(this.context);
    const sk = kg.secretKey();
    const pk = kg.createPublicKey();
    const keys = { publicKey: new Uint8Array(pk.saveToArray(this.seal.ComprModeType.zstd) as Uint8Array), secretKey: new Uint8Array(sk.saveToArray(this.seal.ComprModeType.zstd) as Uint8Array) };
    sk.delete();
    pk.delete();
    kg.delete();
    return keys;
  }

  useKeys(keys: Partial<CkksKeys>): void {
    const seal = this.seal;
    if (keys.publicKey) {
      const pk = new seal.PublicKey();
      pk.loadFromArray(this.context, keys.publicKey);
      this.#encryptor?.delete();
      this.#encryptor = new seal.Encryptor(this.context, pk);
      pk.delete();
    }
    if (keys.secretKey) {
      const sk = new seal.SecretKey();
      sk.loadFromArray(this.context, keys.secretKey);
      this.#decryptor?.delete();
      this.#decryptor = new seal.Decryptor(this.context, sk);
      sk.delete();
    }
  }

  /** One ciphertext per CKKS_SLOTS values, each saved with SEAL's default compression (zstd). */
  encrypt(values: ArrayLike<number>): Uint8Array[] {
    if (!this.#encryptor) throw new Error('CKKS baseline: no public key loaded');
    const seal = this.seal;
    const pt = new seal.Plaintext();
    const ct = new seal.Ciphertext();
    const buf = new Float64Array(CKKS_SLOTS);
    const out: Uint8Array[] = [];
    for (let off = 0; off < values.length; off += CKKS_SLOTS) {
      const end = Math.min(values.length, off + CKKS_SLOTS);
      buf.fill(0);
      for (let i = off; i < end; i++) buf[i - off] = values[i];
      this.encoder.encode(buf, CKKS_SCALE, pt);
      this.#encryptor.encrypt(pt, ct);
      out.push(new Uint8Array(ct.saveToArray(seal.ComprModeType.zstd) as Uint8Array));
    }
    pt.delete();
    ct.delete();
    return out;
  }

  /** Adds saved ciphertexts into running sums (loaded on first use). */
  add(sums: Ciphertext[], cts: readonly Uint8Array[]): void {
    const tmp = new this.seal.Ciphertext();
    for (let i = 0; i < cts.length; i++) {
      if (sums[i] === undefined) {
        const c = new this.seal.Ciphertext();
        c.loadFromArray(this.context, cts[i]);
        sums[i] = c;
      } else {
        tmp.loadFromArray(this.context, cts[i]);
        this.evaluator.addInplace(sums[i], tmp);
      }
    }
    tmp.delete();
  }

  save(sums: readonly Ciphertext[]): Uint8Array[] {
    return sums.map((c) => new Uint8Array(c.saveToArray(this.seal.ComprModeType.zstd) as Uint8Array));
  }

  decrypt(cts: readonly Uint8Array[], valueCount: number): Float64Array {
    if (!this.#decryptor) throw new Error('CKKS baseline: no secret key loaded');
    const out = new Float64Array(valueCount);
    const ct = new this.seal.Ciphertext();
    const pt = new this.seal.Plaintext();
    for (let i = 0; i < cts.length; i++) {
      ct.loadFromArray(this.context, cts[i]);
      this.#decryptor.decrypt(ct, pt);
      const d = this.encoder.decodeFloat64(pt) as Float64Array;
      const base = i * CKKS_SLOTS;
      const m = Math.min(CKKS_SLOTS, valueCount - base);
      for (let j = 0; j < m; j++) out[base + j] = d[j];
    }
    ct.delete();
    pt.delete();
    return out;
  }
}

let baseline: Promise<CkksBaseline> | undefined;
export function loadCkksBaseline(): Promise<CkksBaseline> {
  baseline ??= loadSeal().then((seal) => new CkksBaseline(seal));
  return baseline;
}
