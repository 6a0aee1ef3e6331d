import { describe, expect, it } from 'vitest';
import { createPrng, encodeTable, loadDatasetTable, tableFromCsv, parseCsv, tableToCsv, vaeGenerator, vaeState, createTwinVae, encodedLayout, rejectionSample } from '@fedtwin/models';
import type { TableSchema } from '@fedtwin/models';
import { fitMst, marginalsGenerator, openSavedModel, rerootTree, sampleTable } from '../src/index.ts';

const privacy = { mode: 'record' as const, epsilon: 8, delta: 1e-5 };

describe('Generator: marginals', () => {
  it('save → JSON → load → sample: same rows for the same seed, the schema\'s columns and formats; class and condition pinned', async () => {
    const t = await loadDatasetTable('pima_diabetes');
    const run = fitMst([t], { epsilon: Infinity, delta: 1e-5 });
    const g = marginalsGenerator(run.model);
    const saved = JSON.parse(JSON.stringify(g.save(privacy, { note: 'test' })));
    const { generator: back, saved: header } = openSavedModel(saved);
    expect(header.generator).toBe('marginals');
    expect(header.privacy.epsilon).toBe(8);
    const a = g.sample(200, { seed: 5 });
    const b = back.sample(200, { seed: 5 });
    expect(b.rows).toEqual(a.rows);
    const csv = parseCsv(Buffer.from(tableToCsv(b)));
    expect(csv.header).toEqual(t.schema.columns.map((c) => c.name));
    expect(tableFromCsv(csv.header, csv.rows, t.schema).rows.length).toBe(200);
    const target = t.schema.columns.findIndex((c) => c.name === t.schema.target);
    const cls = back.sample(300, { seed: 1, condition: { column: t.schema.target, value: 'pos' } });
    expect(cls.rows.every((r) => String(r[target]) === 'pos')).toBe(true);
    expect(back.describe()).toMatchObject({ kind: 'marginals', target: t.schema.target, classes: ['neg', 'pos'] });
  });

  it('re-rooting keeps the joint: P(class | column value) from a re-rooted sample matches the model\'s Bayes inversion', async () => {
    // A small categorical table: rooted at the target, condition on a non-root column.
    const schema: TableSchema = { target: 'y', columns: [
      { name: 'y', kind: 'categorical', categories: ['a', 'b'] },
      { name: 'x', kind: 'categorical', categories: ['p', 'q', 'r'] },
      { name: 'z', kind: 'categorical', categories: ['u', 'v'] },
    ] };
    const prng = createPrng(9);
    const rows = Array.from({ length: 3000 }, () => {
      const y = prng.next() < 0.3 ? 'a' : 'b';
      const x = y === 'a' ? (prng.next() < 0.8 ? 'p' : 'q') : (prng.next() < 0.2 ? 'p' : prng.next() < 0.5 ? 'q' : 'r');
      const z = x === 'p' ? 'u' : prng.next() < 0.5 ? 'u' : 'v';
      return [y, x, z];
    });
    const run = fitMst([{ schema, rows }], { epsilon: Infinity, delta: 1e-5 });
    const m = run.model;
    const re = rerootTree(m, 2);
    expect(re.parent[2]).toBe(-1);
    // The joint of all three columns is the same under both trees (exact enumeration).
    const jointOf = (tm: typeof m) => {
      const out = new Map<string, number>();
      const sizes = [2, 3, 2];
      for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) for (let z = 0; z < 2; z++) {
        const v = [y, x, z];
        let p = 1;
        for (let c = 0; c < 3; c++) {
          const par = tm.parent[c];
          if (par < 0) { const w = tm.oneWay[c]; p *= w[v[c]] / w.reduce((s, q) => s + q, 0); }
          else p *= tm.conditional[c]![v[par] * sizes[c] + v[c]];
        }
        out.set(`${y}${x}${z}`, p);
      }
      return out;
    };
    const j0 = jointOf(m);
    const j1 = jointOf(re);
    for (const [k, v] of j0) expect(j1.get(k)).toBeCloseTo(v, 9);
    const g = marginalsGenerator(m);
    const s = g.sample(4000, { seed: 3, condition: { column: 'z', value: 'v' } });
    expect(s.rows.every((r) => r[2] === 'v')).toBe(true);
    const pA = s.rows.filter((r) => r[0] === 'a').length / s.rows.length;
    const want = [...j0].filter(([k]) => k[0] === '0' && k[2] === '1').reduce((a, [, v]) => a + v, 0) / [...j0].filter(([k]) => k[2] === '1').reduce((a, [, v]) => a + v, 0);
    expect(Math.abs(pA - want)).toBeLessThan(0.03);
  });

  it('typed errors: unknown column, numeric column, unknown value, bad rows, not a model file', async () => {
    const t = await loadDatasetTable('pima_diabetes');
    const g = marginalsGenerator(fitMst([t], { epsilon: Infinity, delta: 1e-5 }).model);
    expect(() => g.sample(10, { condition: { column: 'nope', value: '1' } })).toThrow(expect.objectContaining({ code: 'GENERATE_UNKNOWN_COLUMN' }));
    const numeric = t.schema.columns.find((c) => c.kind === 'numeric')!.name;
    expect(() => g.sample(10, { condition: { column: numeric, value: '1' } })).toThrow(expect.objectContaining({ code: 'GENERATE_BAD_CONDITION' }));
    expect(() => g.sample(10, { condition: { column: t.schema.target, value: 'maybe' } })).toThrow(expect.objectContaining({ code: 'GENERATE_UNKNOWN_VALUE' }));
    for (const n of [0, -1, 1.5, 10_000_001]) expect(() => g.sample(n)).toThrow(expect.objectContaining({ code: 'GENERATE_BAD_ROWS' }));
    for (const bad of [null, {}, { format: 'fedtwin-model', version: 2 }, { ...g.save(privacy), generator: 'gan' }, { ...g.save(privacy), model: { format: 'x' } }]) {
      expect(() => openSavedModel(bad)).toThrow(expect.objectContaining({ code: 'GENERATE_BAD_MODEL' }));
    }
  });
});

describe('Generator: vae', () => {
  it('save → JSON → load → sample: same rows for the same seed; a class pinned by the model\'s condition', async () => {
    const t = await loadDatasetTable('pima_diabetes');
    const layout = encodedLayout(t.schema);
    const enc = encodeTable(t);
    const config = { latentDim: 4, hidden: 16, seed: 3 };
    const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, ...config });
    await vae.trainEpochs(enc, { epochs: 1, batchSize: 64, learningRate: 0.01, seed: 1 });
    const state = vaeState(config, vae.getSharedWeights(), vae.getPrivateWeights());
    vae.dispose();
    const g = vaeGenerator(t.schema, state);
    const json = JSON.parse(JSON.stringify(g.save(privacy)));
    const { generator: back } = openSavedModel(json);
    expect(back.kind).toBe('vae');
    expect(back.sample(50, { seed: 2 }).rows).toEqual(g.sample(50, { seed: 2 }).rows);
    const target = t.schema.columns.findIndex((c) => c.name === t.schema.target);
    const cls = back.sample(100, { seed: 4, condition: { column: t.schema.target, value: 'neg' } });
    expect(cls.rows.length).toBe(100);
    expect(cls.rows.every((r) => String(r[target]) === 'neg')).toBe(true);
    expect(layout.classes).toEqual(['neg', 'pos']);
    expect(() => back.sample(5, { condition: { column: t.schema.target, value: '7' } })).toThrow(expect.objectContaining({ code: 'GENERATE_UNKNOWN_VALUE' }));
    g.dispose();
    back.dispose();
  });

  it('a non-target categorical column is conditioned by rejection; a value it never draws is GENERATE_CONDITION_TOO_RARE', async () => {
    const schema: TableSchema = { target: 'y', columns: [
      { name: 'x', kind: 'numeric', min: 0, max: 1, integer: false, decimals: 2 },
      { name: 'ward', kind: 'categorical', categories: ['icu', 'general'] },
      { name: 'y', kind: 'categorical', categories: ['a', 'b'] },
    ] };
    const prng = createPrng(2);
    const t = { schema, rows: Array.from({ length: 300 }, () => [Math.round(prng.next() * 100) / 100, prng.next() < 0.3 ? 'icu' : 'general', prng.next() < 0.5 ? 'a' : 'b']) };
    const enc = encodeTable(t);
    const config = { latentDim: 2, hidden: 8, seed: 1 };
    const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, ...config });
    await vae.trainEpochs(enc, { epochs: 2, batchSize: 32, learningRate: 0.01, seed: 1 });
    const g = vaeGenerator(schema, vaeState(config, vae.getSharedWeights(), vae.getPrivateWeights()));
    vae.dispose();
    try {
      const s = g.sample(100, { seed: 3, condition: { column: 'ward', value: 'icu' } });
      expect(s.rows).toHaveLength(100);
      expect(s.rows.every((r) => r[1] === 'icu')).toBe(true);
    } finally {
      g.dispose();
    }
    // A value the model never draws: the typed error after the bounded number of draws, never a short sample.
    const never = () => [[0.5, 'general', 'a']];
    expect(() => rejectionSample(10, 1, 'icu', never, 5000)).toThrow(expect.objectContaining({ code: 'GENERATE_CONDITION_TOO_RARE' }));
  }, 60_000);
});
