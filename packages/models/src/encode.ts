// Table ⇄ model vectors. Numeric columns are scaled to [0,1] by the *declared* bounds and
// categorical ones one-hot encoded; the target is not in x but is the condition (`cond`).
import { FedtwinError } from '@fedtwin/errors';
import type { Cell, EncodedTable, Segment, Table, TableSchema } from './types.ts';
import { targetIndex } from './schema.ts';
import { hasMissing, isMissing } from './missing.ts';
import { drawIndex, type Prng } from './random.ts';

export interface EncodedLayout {
  segments: Segment[];
  /** Total width of an encoded row (sum of segment widths). */
  width: number;
  /** Target categories; `cond` values index into this. */
  classes: string[];
}

/** Value the numeric slot of a missing cell holds: the declared midpoint (public), so metrics that read
 *  encoded rows see a fixed point; the VAE masks the slot out of its loss for such rows. */
export const MISSING_NUMERIC_SLOT = 0.5;

/**
 * Where each feature column lives in an encoded row; depends on the schema only (no data). A column that
 * allows missing cells carries its missingness as data: a categorical one gets one more one-hot slot
 * (last, `missing: 'slot'`), a numeric one a [present, missing] segment right after its value.
 */
export function encodedLayout(schema: TableSchema): EncodedLayout {
  const t = targetIndex(schema);
  const segments: Segment[] = [];
  let offset = 0;
  schema.columns.forEach((c, k) => {
    if (k === t) return;
    const miss = hasMissing(c);
    if (c.kind === 'numeric') {
      segments.push({ column: c.name, kind: 'numeric', offset, width: 1 });
      offset += 1;
      if (miss) {
        segments.push({ column: c.name, kind: 'categorical', offset, width: 2, missing: 'indicator' });
        offset += 2;
      }
    } else {
      const w = c.categories.length + (miss ? 1 : 0);
      segments.push(miss ? { column: c.name, kind: 'categorical', offset, width: w, missing: 'slot' } : { column: c.name, kind: 'categorical', offset, width: w });
      offset += w;
    }
  });
  const tc = schema.columns[t];
  return { segments, width: offset, classes: tc.kind === 'categorical' ? [...tc.categories] : [] };
}

/** Encode a validated Table. Values outside the bounds (if any slipped through) are clamped to [0,1]. */
export function encodeTable(table: Table): EncodedTable {
  const { schema, rows } = table;
  const layout = encodedLayout(schema);
  const t = targetIndex(schema);
  const n = rows.length;
  const width = layout.width;
  const x = new Float32Array(n * width);
  const cond = new Int32Array(n);
  const classIndex = new Map(layout.classes.map((c, i) => [c, i]));
  // Per column: its place in the row and a lookup for categories.
  const plan = schema.columns.map((c, k) => {
    if (k === t) return undefined;
    const seg = valueSegment(layout.segments, c.name);
    const ind = indicatorSegment(layout.segments, c.name);
    return { c, offset: seg.offset, indicator: ind?.offset, miss: hasMissing(c), index: c.kind === 'categorical' ? new Map(c.categories.map((v, i) => [v, i])) : undefined };
  });
  for (let i = 0; i < n; i++) {
    const row = rows[i];
    if (row.length !== schema.columns.length) {
      throw new FedtwinError('DATA_BAD_ARGUMENT', `table row ${i + 1} has ${row.length} values, schema has ${schema.columns.length} columns`);
    }
    const base = i * width;
    for (let k = 0; k < row.length; k++) {
      const v = row[k];
      if (k === t) {
        const ci = classIndex.get(String(v));
        if (ci === undefined) throw badValue(i, schema.target, v, 'not a declared class');
        cond[i] = ci;
        continue;
      }
      const p = plan[k];
      if (p === undefined) continue;
      const c = p.c;
      if (isMissing(v)) {
        if (!p.miss) throw badValue(i, c.name, v, 'missing in a column that does not allow missing cells');
        if (c.kind === 'numeric') {
          x[base + p.offset] = MISSING_NUMERIC_SLOT;
          x[base + (p.indicator as number) + 1] = 1;
        } else x[base + p.offset + c.categories.length] = 1;
        continue;
      }
      if (p.indicator !== undefined) x[base + p.indicator] = 1;
      if (c.kind === 'numeric') {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw badValue(i, c.name, v, 'not a finite number');
        const s = (v - c.min) / (c.max - c.min);
        x[base + p.offset] = s < 0 ? 0 : s > 1 ? 1 : s;
      } else {
        const ci = (p.index as Map<string, number>).get(String(v));
        if (ci === undefined) throw badValue(i, c.name, v, 'not a declared category');
        x[base + p.offset + ci] = 1;
      }
    }
  }
  return { x, rows: n, width, segments: layout.segments, cond, classes: layout.classes };
}

/** A column's value segment (its numeric slot or its one-hot block), not its missing indicator. */
export function valueSegment(segments: readonly Segment[], column: string): Segment {
  const s = segments.find((x) => x.column === column && !(x.kind === 'categorical' && x.missing === 'indicator'));
  if (s === undefined) throw new FedtwinError('DATA_BAD_ARGUMENT', `no segment for column "${column}"`);
  return s;
}

/** A numeric column's [present, missing] indicator segment, if it has one. */
export function indicatorSegment(segments: readonly Segment[], column: string): Segment | undefined {
  return segments.find((x) => x.column === column && x.kind === 'categorical' && x.missing === 'indicator');
}

function badValue(row: number, column: string, v: unknown, why: string): FedtwinError {
  return new FedtwinError('DATA_BAD_VALUE', `table row ${row + 1}, column "${column}": ${JSON.stringify(v)} is ${why}`, {
    details: { row: row + 1, column, value: String(v) },
  });
}

export interface DecodeOptions {
  /** Random source for sampling categories: a Prng, anything with uniform() (the model side's Rng),
   *  or a function returning uniforms in [0,1). */
  rng?: Prng | { uniform(): number } | (() => number);
  /** 'argmax' picks the largest output; 'sample' draws with probability ∝ max(0, output).
   *  Default: 'sample' when rng is given, else 'argmax'. */
  categorical?: 'argmax' | 'sample';
}

/** Round to `decimals` places; the result is a double whose shortest form has at most that many. */
function roundDecimals(v: number, decimals: number): number {
  return Number(v.toFixed(decimals));
}

/**
 * Decode model output back to rows in schema column order (target from `cond`), so written
 * synthetic data has the input's columns, order and number formats. Numeric: unscale by the
 * declared bounds, clamp, round to the column's decimals (0 for integer columns).
 * Exact round trip of encodeTable holds while (max−min)·2⁻²⁴ < ½·10^−decimals (float32 x).
 */
export function decodeRows(
  schema: TableSchema,
  x: ArrayLike<number>,
  cond: ArrayLike<number>,
  opts: DecodeOptions = {},
): Cell[][] {
  const layout = encodedLayout(schema);
  const t = targetIndex(schema);
  const n = cond.length;
  const width = layout.width;
  if (x.length !== n * width) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', `decodeRows: x has ${x.length} values, expected rows (${n}) × width (${width}) = ${n * width}`);
  }
  const mode = opts.categorical ?? (opts.rng === undefined ? 'argmax' : 'sample');
  let uniform: (() => number) | undefined;
  if (opts.rng !== undefined) {
    const r = opts.rng;
    uniform = typeof r === 'function' ? r : 'uniform' in r ? () => r.uniform() : () => r.next();
  }
  if (mode === 'sample' && uniform === undefined) {
    throw new FedtwinError('DATA_BAD_ARGUMENT', "decodeRows: categorical 'sample' needs an rng");
  }
  const segOf = new Map(schema.columns.map((c, k) => [c.name, k === t ? undefined : valueSegment(layout.segments, c.name)]));
  const indOf = new Map(schema.columns.map((c) => [c.name, indicatorSegment(layout.segments, c.name)]));
  const choose = (off: number, w: number): number => (mode === 'sample' ? sampleSlot(x, off, w, uniform as () => number) : argmax(x, off, w));
  const out: Cell[][] = new Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * width;
    const row: Cell[] = new Array(schema.columns.length);
    for (let k = 0; k < schema.columns.length; k++) {
      const c = schema.columns[k];
      if (k === t) {
        const ci = cond[i];
        if (!Number.isInteger(ci) || ci < 0 || ci >= layout.classes.length) {
          throw new FedtwinError('DATA_BAD_ARGUMENT', `decodeRows: cond[${i}] = ${ci} is not a class index in [0, ${layout.classes.length})`);
        }
        row[k] = layout.classes[ci];
        continue;
      }
      const seg = segOf.get(c.name) as Segment;
      const ind = indOf.get(c.name);
      if (ind !== undefined && choose(base + ind.offset, 2) === 1) {
        row[k] = null;
        continue;
      }
      if (c.kind === 'numeric') {
        const s = x[base + seg.offset];
        if (!Number.isFinite(s)) {
          throw new FedtwinError('DATA_BAD_VALUE', `decodeRows: row ${i + 1}, column "${c.name}": model output is ${s}`, {
            hint: 'The generator produced a non-finite value; check training (learning rate, NaN losses)',
          });
        }
        const d = c.integer ? 0 : c.decimals;
        let v = c.min + (s < 0 ? 0 : s > 1 ? 1 : s) * (c.max - c.min);
        v = roundDecimals(v, d);
        // Bounds may carry more decimals than the column: stay inside without breaking the format.
        if (v > c.max) v = Math.floor(c.max * 10 ** d) / 10 ** d;
        if (v < c.min) v = Math.ceil(c.min * 10 ** d) / 10 ** d;
        row[k] = v === 0 ? 0 : v; // no -0
        continue;
      }
      const pick = choose(base + seg.offset, seg.width);
      // The extra last slot of a column that allows missing cells is "missing".
      row[k] = pick === c.categories.length ? null : c.categories[pick];
    }
    out[i] = row;
  }
  return out;
}

/** Slot drawn with probability ∝ max(0, x); argmax if nothing is positive. */
function sampleSlot(x: ArrayLike<number>, off: number, w: number, uniform: () => number): number {
  let total = 0;
  for (let q = 0; q < w; q++) {
    const p = x[off + q];
    if (p > 0) total += p;
  }
  if (!(total > 0 && Number.isFinite(total))) return argmax(x, off, w);
  return drawIndex(x, off, w, total, uniform());
}

function argmax(x: ArrayLike<number>, off: number, w: number): number {
  let best = 0;
  let bv = -Infinity;
  for (let q = 0; q < w; q++) {
    const v = x[off + q];
    if (v > bv) {
      bv = v;
      best = q;
    }
  }
  return best;
}

/** Decode straight to a Table with the given schema. */
export function decodeTable(schema: TableSchema, x: ArrayLike<number>, cond: ArrayLike<number>, opts: DecodeOptions = {}): Table {
  return { schema, rows: decodeRows(schema, x, cond, opts) };
}
