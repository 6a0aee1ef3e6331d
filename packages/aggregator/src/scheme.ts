import { FedtwinError } from '@fedtwin/errors';
import { bytesToF32, f32ToBytes } from '@fedtwin/protocol';
import type { SecureAggregation } from '@fedtwin/protocol';

/** A running sum of one round's updates. The aggregator holds only this, never all updates. */
export interface SumAccumulator {
  /**
   * Validates one update's bytes and adds it; rejects (and leaves the sum unchanged) if malformed. `round`
   * names what the update claims to be for (under HE: its ciphertext must carry that round's tag); `member`, if
   * given, the sender's peer id (under HE: the ciphertext's participant row must name it, wire v4).
   */
  add(body: Uint8Array, round: { round: number; baseHash: string; keyId?: string; member?: string }): Promise<void>;
  /** Updates added so far (checked against the accepted contributions before a sum is published). */
  readonly count: number;
  /** The published sum's bytes (for BFV the compact, final form members decrypt). */
  result(): Promise<Uint8Array>;
  dispose(): Promise<void>;
}

/** How updates travel and are summed: plaintext float32, or BFV ciphertexts the aggregator cannot read. */
export interface AggregationScheme {
  readonly encoding: 'f32le' | 'bfv' | 'secagg';
  /** Exact size an update of `values` values must have. */
  updateBytes(values: number): number;
  /** Largest aggregate body. */
  sumBytes(values: number): number;
  createAccumulator(values: number): SumAccumulator;
  dispose(): Promise<void>;
}

export function plaintextScheme(): AggregationScheme {
  return {
    encoding: 'f32le',
    updateBytes: (n) => n * 4,
    sumBytes: (n) => n * 4,
    createAccumulator(n) {
      const sum = new Float64Array(n);
      let count = 0;
      return {
        get count() { return count; },
        async add(body, _round) {
          if (body.length !== n * 4) throw new FedtwinError('AGG_BAD_UPDATE', `update has ${body.length} bytes, expected ${n * 4} (${n} float32 values)`);
          const v = bytesToF32(body);
          for (let i = 0; i < n; i++) if (!Number.isFinite(v[i]!)) throw new FedtwinError('AGG_BAD_UPDATE', `update value ${i} is not finite`);
          for (let i = 0; i < n; i++) sum[i]! += v[i]!;
          count++;
        },
        result: async () => f32ToBytes(Float32Array.from(sum)),
        async dispose() {},
      };
    },
    async dispose() {},
  };
}

/**
 * BFV: the aggregator adds the members' c0 polynomials with the public parameters only; it holds no key and
 * needs no SEAL (c1 is the round's common a). Additions are integer adds on this thread (~12 ms per
 * 1M-value update, `fedtwin bench he`).
 */
export async function bfvScheme(config: Extract<SecureAggregation, { scheme: 'bfv' }>): Promise<AggregationScheme> {
  const he = await import('@fedtwin/he');
  const ctx = await he.createHeContext(config.params);
  return {
    encoding: 'bfv',
    updateBytes: (n) => he.updateSize(ctx, he.KIND_FRESH, n),
    sumBytes: (n) => he.updateSize(ctx, he.KIND_SUM_COMPACT, n),
    createAccumulator(n) {
      const acc = new he.Accumulator(ctx);
      let count = 0;
      return {
        get count() { return count; },
        async add(body, round) {
          let info: { kind: number; valueCount: number; tag: Uint8Array; entries: Array<{ memberHash: Uint8Array }> };
          try {
            info = he.readUpdateHeader(ctx, body); // structure and exact size; chunks are checked by Accumulator.add before adding
          } catch (err) {
            throw new FedtwinError('AGG_BAD_UPDATE', `malformed ciphertext: ${(err as Error).message}`, { cause: err });
          }
          if (info.kind !== he.KIND_FRESH) throw new FedtwinError('AGG_BAD_UPDATE', 'an update must be a fresh member ciphertext, not a sum');
          if (info.valueCount !== n) throw new FedtwinError('AGG_BAD_UPDATE', `ciphertext holds ${info.valueCount} values, the model has ${n}`);
          if (round.keyId === undefined) throw new FedtwinError('AGG_KEY_MISMATCH', 'an encrypted update must name its key id', { hint: 'the member runs an old fedtwin' });
          const tag = he.roundTag({ keyId: round.keyId, round: round.round, baseHash: round.baseHash });
          if (!Buffer.from(tag).equals(Buffer.from(info.tag))) {
            throw new FedtwinError('AGG_BAD_UPDATE', `ciphertext was encrypted for another round (its round tag is not round ${round.round}'s under key ${round.keyId.slice(0, 16)}…)`, { hint: 'members must encrypt each round\'s update with that round\'s tag' });
          }
          if (round.member !== undefined && !Buffer.from(he.memberHash(round.member)).equals(Buffer.from(info.entries[0]!.memberHash))) {
            throw new FedtwinError('AGG_BAD_UPDATE', 'ciphertext names another member than its sender in its participant row', { hint: 'a member encrypts under its own peer id' });
          }
          try {
            acc.add(body);
          } catch (err) {
            throw new FedtwinError('AGG_BAD_UPDATE', `ciphertext rejected: ${(err as Error).message}`, { cause: err });
          }
          count++;
        },
        result: async () => acc.result(),
        dispose: async () => acc.dispose(),
      };
    },
    dispose: async () => ctx.dispose(),
  };
}

/**
 * Pairwise masking (docs/he.md §9): an update is a masked vector in Z_{2^32} (4 bytes per value), unreadable alone.
 * The accumulator only checks the size and counts: the sum is unmasked from the stored updates and the members'
 * revealed shares once the recovery closes (secagg-round.ts), not added up here.
 */
export function secaggScheme(): AggregationScheme {
  return {
    encoding: 'secagg',
    updateBytes: (n) => n * 4,
    sumBytes: (n) => n * 4,
    createAccumulator(n) {
      let count = 0;
      return {
        get count() { return count; },
        async add(body) {
          if (body.length !== n * 4) throw new FedtwinError('AGG_BAD_UPDATE', `masked update has ${body.length} bytes, expected ${n * 4} (${n} values in Z_2^32)`);
          count++;
        },
        result: async () => {
          throw new FedtwinError('AGG_INTERNAL', 'a masked sum is unmasked from the recovery, not read from the accumulator');
        },
        async dispose() {},
      };
    },
    async dispose() {},
  };
}

/** A masked update's bytes as the ring elements @fedtwin/secagg's unmask takes (little-endian uint32). */
export function maskedValues(body: Uint8Array): Uint32Array {
  const out = new Uint32Array(body.length / 4);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/** The unmasked sum (centred integers) as the aggregate's body: little-endian int32. */
export function int32ToBytes(v: Int32Array): Uint8Array {
  const out = new Uint8Array(v.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) view.setInt32(i * 4, v[i]!, true);
  return out;
}
