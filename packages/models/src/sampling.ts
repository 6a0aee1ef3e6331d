// Poisson sampling for DP-SGD. Amplification by sampling holds only against someone who cannot
// predict the batches, so the inclusion coins come from the OS CSPRNG; a seeded stream is used only
// when a simulation asks for reproducible runs (and then whoever knows the seed knows every batch).
// Each coin is a 53-bit uniform u, and a unit is in the batch iff u < q: q keeps its own probability
// down to 2^-53, where a 32-bit uniform would round every q below 2^-32 to 0 or 2^-32.
//
// The sampled unit is a record, or — with a unit index (e.g. a patient id) — all records of one unit:
// user-level DP-SGD (McMahan et al. 2018), where q = expected units per batch / units.
import { randomFillSync } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';
import type { Rng } from './rng.ts';

function bad(message: string, hint?: string): FedtwinError {
  return new FedtwinError('MODELS_BAD_ARGUMENT', message, { hint });
}

/** A uniform in [0, 1) on the 2^-53 grid from two u32 words (27 high bits of `hi`, 26 of `lo`). */
export function uniform53(hi: number, lo: number): number {
  return ((hi >>> 5) * 67108864 + (lo >>> 6)) / 9007199254740992;
}

export interface UniformSource {
  readonly kind: 'os-csprng' | 'seeded';
  /** Fills `out` with fresh 53-bit uniforms in [0, 1) and returns it. */
  fill(out: Float64Array): Float64Array;
}

/** Uniforms from the OS CSPRNG: one randomFillSync per call into a reused buffer. */
export function osUniforms(): UniformSource {
  let words = new Uint32Array(0);
  return {
    kind: 'os-csprng',
    fill(out) {
      if (words.length < 2 * out.length) words = new Uint32Array(2 * out.length);
      randomFillSync(words.subarray(0, 2 * out.length));
      for (let i = 0; i < out.length; i++) out[i] = uniform53(words[2 * i], words[2 * i + 1]);
      return out;
    },
  };
}

/** Uniforms from a seeded stream: reproducible, and predictable by anyone who knows the seed. */
export function seededUniforms(rng: Rng): UniformSource {
  return {
    kind: 'seeded',
    fill(out) {
      for (let i = 0; i < out.length; i++) out[i] = uniform53(rng.nextU32(), rng.nextU32());
      return out;
    },
  };
}

/** Rows grouped by unit (CSR): unit k's rows are rows[start[k] .. start[k+1]), in row order. */
export interface Units {
  count: number;
  start: Int32Array;
  rows: Int32Array;
}

/** Groups `rows` rows by their unit index; indices must be 0..U−1 with every unit present. */
export function groupUnits(units: Int32Array, rows: number): Units {
  if (!(units instanceof Int32Array) || units.length !== rows) {
    throw bad(`units must be an Int32Array with one unit index per row (${rows}), got ${units instanceof Int32Array ? `length ${units.length}` : typeof units}`,
      'build it with extractUnitColumn on the same rows that were encoded');
  }
  let count = 0;
  for (let i = 0; i < rows; i++) {
    const u = units[i];
    if (u < 0) throw bad(`units[${i}] = ${u} is negative`, 'unit indices are 0..U−1 (extractUnitColumn makes them)');
    if (u + 1 > count) count = u + 1;
  }
  const start = new Int32Array(count + 1);
  for (let i = 0; i < rows; i++) start[units[i] + 1]++;
  for (let k = 0; k < count; k++) {
    if (start[k + 1] === 0) throw bad(`unit ${k} has no rows (unit indices must be dense 0..${count - 1})`, 'unit indices are 0..U−1 with every unit present (extractUnitColumn makes them)');
    start[k + 1] += start[k];
  }
  const next = start.slice(0, count);
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) out[next[units[i]]++] = i;
  return { count, start, rows: out };
}

/**
 * DP-SGD's Poisson sampling rate: expected batch / population, where the population is the units
 * (with a unit index) or the rows. With units, `batchSize` is the expected number of units per step.
 * This is the q the privacy accountant must use; the trainer reports it as `sampleRate`.
 */
export function dpSampleRate(batchSize: number, rows: number, unitCount?: number): number {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw bad(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(rows) || rows < 1) throw bad(`rows must be a positive integer, got ${rows}`);
  if (unitCount !== undefined && !(Number.isInteger(unitCount) && unitCount >= 1 && unitCount <= rows)) {
    throw bad(`unitCount must be an integer in [1, rows = ${rows}], got ${unitCount}`, 'every unit has at least one row');
  }
  return Math.min(1, batchSize / (unitCount ?? rows));
}

/**
 * One Poisson sample: unit k is in iff u[k] < q (u has one uniform per unit, or per row without
 * units). Writes the sampled rows to `picked` (a unit's rows together) and the unit boundaries to
 * `groups` (CSR: group g is picked[groups[g] .. groups[g+1])); returns the counts.
 */
export function poissonSample(u: Float64Array, q: number, units: Units | undefined, picked: Int32Array, groups: Int32Array): { rows: number; groups: number } {
  let m = 0, g = 0;
  groups[0] = 0;
  if (!units) {
    for (let r = 0; r < u.length; r++) {
      if (u[r] < q) {
        picked[m++] = r;
        groups[++g] = m;
      }
    }
    return { rows: m, groups: g };
  }
  for (let k = 0; k < units.count; k++) {
    if (u[k] < q) {
      for (let j = units.start[k]; j < units.start[k + 1]; j++) picked[m++] = units.rows[j];
      groups[++g] = m;
    }
  }
  return { rows: m, groups: g };
}
