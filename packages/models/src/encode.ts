// Table ⇄ model vectors. Numeric columns are scaled to [0,1] by the *declared* bounds and
// categorical ones one-hot encoded; the target is not in x but is the condition (`cond`).
import { FedtwinError } from '@fedtwin/errors';
import type { EncodedTable, Segment, Table, TableSchema } from './types.ts';
import { targetIndex } from './schema.ts';
import type { Prng } from './random.ts';

export interface EncodedLayout {
  segments: Segment[];
  /** Total width of an encoded row (sum of segment widths). */
  width: number;
  /** Target categories; `cond` values index into this. */
  classes: string[];
}

/** Where each feature column lives in an encoded row; depends on the schema only (no data). */
export function encodedLayout(schema: TableSchema): EncodedLayout {
  const t = targetIndex(schema);
  const segments: Segment[] = [];
  let offset = 0;
  schema.columns.forEach((c, k) => {
    if (k === t) return;
    if (c.kind === 'numeric') {
      segments.push({ column: c.name, kind: 'numeric', offset, width: 1 });
      offset += 1;
    } else {
      segments.push({ column: c.name, kind: 'categorical', offset, width: c.categories.length });
      offset += c.categories.length;
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
    const seg = layout.segments.find((s) => s.column === c.name) as Segment;
    return { c, offset: seg.offset, index: c.kind === 'categorical' ? new Map(c.categories.map((v, i) => [v, i])) : undefined };
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
): Array<Array<number | string>> {
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
  const segOf = new Map(layout.segments.map((s) => [s.column, s]));
  const out: Array<Array<number | string>> = new Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * width;
    const row: Array<number | string> = new Array(schema.columns.length);
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
      const w = seg.width;
      let pick = 0;
      if (mode === 'sample') {
        let total = 0;
        for (let q = 0; q < w; q++) {
          const p = x[base + seg.offset + q];
          if (p > 0) total += p;
        }
        if (total > 0 && Number.isFinite(total)) {
          let u = (uniform as () => number)() * total;
          pick = -1;
          for (let q = 0; q < w; q++) {
            const p = x[base + seg.offset + q];
            if (!(p > 0)) continue;
            pick = q;
            u -= p;
            if (u < 0) break;
          }
        } else pick = argmax(x, base + seg.offset, w);
      } else pick = argmax(x, base + seg.offset, w);
      row[k] = c.categories[pick];
    }
    out[i] = row;
  }
  return out;
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
