import { describe, expect, it } from 'vitest';
import { createPrng } from '@fedtwin/models';
import type { TableSchema } from '@fedtwin/models';
import { MISSING_CELL, TREE_MODEL_FORMAT, checkTreeModel, decodeBins, domainFromSchema, sampleBins, sampleTable, systematicCounts } from '../src/index.ts';
import type { TreeModel } from '../src/index.ts';

const schema: TableSchema = {
  target: 'a',
  columns: [
    { name: 'a', kind: 'categorical', categories: ['r', 's', 't'] },
    { name: 'b', kind: 'categorical', categories: ['u', 'v'] },
    { name: 'c', kind: 'numeric', min: 0, max: 3, integer: true, decimals: 0 },
  ],
};
const pA = [0.2, 0.5, 0.3];
const pBgA = [0.9, 0.1, 0.4, 0.6, 0.05, 0.95];
const pCgA = [0.7, 0.1, 0.1, 0.1, 0.25, 0.25, 0.25, 0.25, 0, 0.1, 0.3, 0.6];

function model(): TreeModel {
  return {
    format: TREE_MODEL_FORMAT,
    schema,
    domain: domainFromSchema(schema),
    total: 1000,
    order: [0, 1, 2],
    parent: [-1, 0, 0],
    edges: [[0, 1], [0, 2]],
    oneWay: [pA, [0.2 * 0.9 + 0.5 * 0.4 + 0.3 * 0.05, 0], [0, 0, 0, 0]], // only the root's 1-way is used to sample
    conditional: [null, pBgA, pCgA],
    within: [null, null, null],
  };
}

/** |p̂ − p| within 6 binomial standard deviations (+1/n for p = 0): P(false failure) < 1e-8 per cell. */
function within(count: number, n: number, p: number): boolean {
  return Math.abs(count / n - p) <= 6 * Math.sqrt((p * (1 - p)) / n) + 1 / n;
}

describe('ancestral sampling', () => {
  it('reproduces the model\'s 2-way marginals on its edges and the implied one off them', () => {
    const n = 200_000;
    const prng = createPrng(5);
    const [a, b, c] = sampleBins(model(), n, () => prng.next());
    const ab = new Array(6).fill(0);
    const ac = new Array(12).fill(0);
    const bc = new Array(8).fill(0);
    for (let i = 0; i < n; i++) {
      ab[a[i] * 2 + b[i]]++;
      ac[a[i] * 4 + c[i]]++;
      bc[b[i] * 4 + c[i]]++;
    }
    for (let x = 0; x < 3; x++) {
      for (let y = 0; y < 2; y++) expect(within(ab[x * 2 + y], n, pA[x] * pBgA[x * 2 + y])).toBe(true);
      for (let y = 0; y < 4; y++) expect(within(ac[x * 4 + y], n, pA[x] * pCgA[x * 4 + y])).toBe(true);
    }
    // b and c are independent given a: P(b, c) = Σ_a P(a) P(b|a) P(c|a). A sampler that ignored the
    // parent would give P(b)P(c) instead, off by far more than the bound.
    for (let y = 0; y < 2; y++) {
      for (let z = 0; z < 4; z++) {
        const p = pA.reduce((s, pa, x) => s + pa * pBgA[x * 2 + y] * pCgA[x * 4 + z], 0);
        expect(within(bc[y * 4 + z], n, p)).toBe(true);
      }
    }
    expect(ac[2 * 4 + 0]).toBe(0); // a zero-probability cell is never drawn
  });

  it('pins a root to one bin (sampling one class) and follows the conditionals below it', () => {
    const n = 50_000;
    const prng = createPrng(6);
    const [a, b] = sampleBins(model(), n, () => prng.next(), { column: 0, bin: 2 });
    expect(a.every((x) => x === 2)).toBe(true);
    expect(within(b.reduce((s, x) => s + (x === 1 ? 1 : 0), 0), n, 0.95)).toBe(true);
    expect(() => sampleBins(model(), 1, () => 0.5, { column: 1, bin: 0 })).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });

  it('writes rows in the schema\'s columns and formats; a model survives JSON', () => {
    const m = model();
    const t1 = sampleTable(m, 500, (() => { const p = createPrng(1); return () => p.next(); })());
    const t2 = sampleTable(JSON.parse(JSON.stringify(m)) as TreeModel, 500, (() => { const p = createPrng(1); return () => p.next(); })());
    expect(t2.rows).toEqual(t1.rows);
    expect(t1.schema).toBe(schema);
    for (const r of t1.rows) {
      expect(['r', 's', 't']).toContain(r[0]);
      expect(['u', 'v']).toContain(r[1]);
      expect([0, 1, 2, 3]).toContain(r[2]);
    }
    const bad = { ...m, order: [1, 0, 2] };
    expect(() => checkTreeModel(bad)).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_MODEL' }));
    expect(() => checkTreeModel({ ...m, format: 'x' } as unknown as TreeModel)).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_MODEL' }));
  });

  it('decodes a coarse numeric bin through its fine bins: inside the bin, the declared bounds and decimals; missing → empty cell', () => {
    const s2: TableSchema = { target: 'y', columns: [{ name: 'y', kind: 'categorical', categories: ['n', 'p'] }, { name: 'bmi', kind: 'numeric', min: 10.05, max: 50, integer: false, decimals: 1 }] };
    const fine = domainFromSchema(s2, { bins: 8, missing: ['bmi'] }); // 8 equal-width fine bins, plus missing
    const fe = fine.columns[1].kind === 'numeric' ? fine.columns[1].edges : [];
    const coarse = { columns: [fine.columns[0], { ...(fine.columns[1] as Extract<typeof fine.columns[1], { kind: 'numeric' }>), edges: [fe[0], fe[4], fe[8]] }] };
    const m: TreeModel = {
      format: TREE_MODEL_FORMAT, schema: s2, domain: coarse, total: 10, order: [0, 1], parent: [-1, 0], edges: [[0, 1]],
      oneWay: [[0.5, 0.5], [0.4, 0.4, 0.2]], conditional: [null, [0.4, 0.4, 0.2, 0.4, 0.4, 0.2]],
      // Inside coarse bin 0 all the fine mass is in fine bin 1; coarse bin 1 has none (spread evenly).
      within: [null, { edges: fe, groups: [0, 0, 0, 0, 1, 1, 1, 1], weights: [0, 5, 0, 0, 0, 0, 0, 0] }],
    };
    const prng = createPrng(2);
    const bins = [new Int32Array(300).fill(0), Int32Array.from({ length: 300 }, (_, i) => i % 3)];
    const rows = decodeBins(m, bins, () => prng.next());
    rows.forEach((r, i) => {
      const v = r[1];
      if (i % 3 === 2) return expect(v).toBe(MISSING_CELL);
      expect(typeof v).toBe('number');
      const x = v as number;
      expect(Number(x.toFixed(1))).toBe(x);
      expect(x).toBeGreaterThanOrEqual(10.1); // the bound 10.05 has more decimals than the column
      expect(x).toBeLessThanOrEqual(50);
      if (i % 3 === 0) expect(x >= Number(fe[1].toFixed(1)) && x <= Number(fe[2].toFixed(1))).toBe(true);
      else expect(x >= Number(fe[4].toFixed(1))).toBe(true);
    });
  });

  it('iid draws (method \'iid\') reproduce the same edges', () => {
    const n = 100_000;
    const prng = createPrng(7);
    const [a, , c] = sampleBins(model(), n, () => prng.next(), undefined, 'iid');
    const ac = new Array(12).fill(0);
    for (let i = 0; i < n; i++) ac[a[i] * 4 + c[i]]++;
    for (let x = 0; x < 3; x++) for (let y = 0; y < 4; y++) expect(within(ac[x * 4 + y], n, pA[x] * pCgA[x * 4 + y])).toBe(true);
  });
});

describe('systematic sampling', () => {
  it('systematicCounts: m points, each bin ⌊m·p⌋ or ⌈m·p⌉, none on non-positive weights; m·p on average over u (exact integral)', () => {
    const w = [0.3, 0, 2.2, -1, 1.5, 0.001];
    const total = 0.3 + 2.2 + 1.5 + 0.001;
    for (const m of [1, 2, 7, 100, 1001]) {
      const mean = new Array(w.length).fill(0);
      const grid = 4000;
      for (let g = 0; g < grid; g++) {
        const u = (g + 0.5) / grid;
        const k = systematicCounts(w, 0, w.length, total, m, u);
        expect(k.reduce((a, b) => a + b, 0)).toBe(m);
        w.forEach((x, i) => {
          const e = (m * Math.max(0, x)) / total;
          expect(k[i] === Math.floor(e) || k[i] === Math.ceil(e)).toBe(true);
          if (!(x > 0)) expect(k[i]).toBe(0);
          mean[i] += k[i] / grid;
        });
      }
      // The count of bin i is a step function of u jumping once; the midpoint rule on 4000 points is exact to 1/4000.
      w.forEach((x, i) => expect(Math.abs(mean[i] - (m * Math.max(0, x)) / total)).toBeLessThanOrEqual(1 / grid + 1e-9));
    }
    // An offset window of a longer vector (a conditional table's row).
    expect(Array.from(systematicCounts([9, 9, 1, 3], 2, 2, 4, 8, 0.25))).toEqual([2, 6]);
    expect(() => systematicCounts([0, 0], 0, 2, 0, 3, 0.5)).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
    expect(() => systematicCounts([1], 0, 1, 1, 3, 1)).toThrow(expect.objectContaining({ code: 'MARGINALS_BAD_ARGUMENT' }));
  });

  it('the root\'s bins and each parent group\'s child bins are within one row of n·p; each row keeps the model\'s marginal', () => {
    const n = 997;
    const prng = createPrng(11);
    const [a, b, c] = sampleBins(model(), n, () => prng.next());
    const na = [0, 0, 0];
    for (let i = 0; i < n; i++) na[a[i]]++;
    pA.forEach((p, x) => expect(Math.abs(na[x] - n * p)).toBeLessThan(1));
    for (let x = 0; x < 3; x++) {
      const kb = [0, 0];
      const kc = [0, 0, 0, 0];
      for (let i = 0; i < n; i++) if (a[i] === x) { kb[b[i]]++; kc[c[i]]++; }
      kb.forEach((k, y) => expect(Math.abs(k - na[x] * pBgA[x * 2 + y])).toBeLessThan(1));
      kc.forEach((k, z) => expect(Math.abs(k - na[x] * pCgA[x * 4 + z])).toBeLessThan(1));
    }
    // Random order: over many seeds, the first row's class has the model's distribution (not always the first bin).
    const first = [0, 0, 0];
    const reps = 20_000;
    for (let s = 0; s < reps; s++) {
      const p = createPrng(1000 + s);
      first[sampleBins(model(), 10, () => p.next())[0][0]]++;
    }
    pA.forEach((p, x) => expect(within(first[x], reps, p)).toBe(true));
  });

  it('a coarse bin\'s values follow its piecewise-uniform fine distribution to within 1/m in CDF (Kolmogorov distance)', () => {
    const s2: TableSchema = { target: 'y', columns: [{ name: 'y', kind: 'categorical', categories: ['n', 'p'] }, { name: 'x', kind: 'numeric', min: 0, max: 8, integer: false, decimals: 4 }] };
    const fine = domainFromSchema(s2, { bins: 8 }); // fine bins [k, k+1)
    const fe = fine.columns[1].kind === 'numeric' ? fine.columns[1].edges : [];
    const coarse = { columns: [fine.columns[0], { ...(fine.columns[1] as Extract<typeof fine.columns[1], { kind: 'numeric' }>), edges: [fe[0], fe[4], fe[8]] }] };
    const weights = [1, 3, 0, 4, 2, 2, 2, 2];
    const m: TreeModel = {
      format: TREE_MODEL_FORMAT, schema: s2, domain: coarse, total: 10, order: [0, 1], parent: [-1, 0], edges: [[0, 1]],
      oneWay: [[0.5, 0.5], [0.5, 0.5]], conditional: [null, [0.5, 0.5, 0.5, 0.5]],
      within: [null, { edges: fe, groups: [0, 0, 0, 0, 1, 1, 1, 1], weights }],
    };
    // Model CDF inside coarse bin 0 ([0, 4)): piecewise linear through the fine masses 1, 3, 0, 4 (of 8).
    const cdf = (x: number): number => {
      let acc = 0;
      for (let f = 0; f < 4; f++) acc += (weights[f] / 8) * Math.min(1, Math.max(0, x - f));
      return acc;
    };
    for (const rows of [5, 40, 333]) {
      const prng = createPrng(rows);
      const vals = decodeBins(m, [new Int32Array(rows), new Int32Array(rows)], () => prng.next()).map((r) => r[1] as number).sort((p, q) => p - q);
      let ks = 0;
      vals.forEach((v, i) => { ks = Math.max(ks, Math.abs(cdf(v) - i / rows), Math.abs(cdf(v) - (i + 1) / rows)); });
      expect(ks).toBeLessThanOrEqual(1 / rows + 1e-3); // + rounding to 4 decimals
      expect(vals.every((v) => v < 2 || v >= 3)).toBe(true); // fine bin [2, 3) has no mass
    }
  });
});

