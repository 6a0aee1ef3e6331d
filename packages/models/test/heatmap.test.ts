import { describe, expect, it } from 'vitest';
import { correlationHeatmap, numericCorrelations, type Table } from '../src/index.ts';

const schema = { target: 'y', columns: [
  { name: 'a', kind: 'numeric' as const, min: 0, max: 10, integer: false, decimals: 1 },
  { name: 'y', kind: 'categorical' as const, categories: ['p', 'q'] },
  { name: 'b', kind: 'numeric' as const, min: 0, max: 20, integer: false, decimals: 1 },
  { name: 'c', kind: 'numeric' as const, min: 0, max: 10, integer: false, decimals: 1 },
] };

describe('correlation heatmap (report)', () => {
  it('Pearson r of the numeric columns only, hand-checked: b = 2a (+1), c = 5 − a (−1), and r(a, d) for a known case', () => {
    const t: Table = { schema, rows: [[1, 'p', 2, 4], [2, 'q', 4, 3], [3, 'p', 6, 2], [4, 'q', 8, 1]] };
    const { columns, r } = numericCorrelations(t);
    expect(columns).toEqual(['a', 'b', 'c']);
    expect(r[0]![1]).toBeCloseTo(1, 12);
    expect(r[0]![2]).toBeCloseTo(-1, 12);
    expect(r[1]![1]).toBe(1);
    // x = 1..4 against y = 1, 3, 2, 4: Σ(x−x̄)(y−ȳ) = 4, Σ(x−x̄)² = Σ(y−ȳ)² = 5 → r = 0.8.
    const u: Table = { schema, rows: [[1, 'p', 1, 0], [2, 'p', 3, 0], [3, 'p', 2, 0], [4, 'p', 4, 0]] };
    expect(numericCorrelations(u).r[0]![1]).toBeCloseTo(0.8, 12);
    expect(numericCorrelations(u).r[0]![2]).toBeNaN(); // c is constant: no correlation to speak of
  });

  it('leaves a missing cell out of the pairs it is in (pairwise-complete), and says n/a under 3 pairs', () => {
    const t = { schema, rows: [[1, 'p', 2, ''], [2, 'q', 4, 3], [3, 'p', 6, 2], [4, 'q', '', 1], [5, 'p', 10, 0]] } as unknown as Table;
    const { r } = numericCorrelations(t);
    expect(r[0]![1]).toBeCloseTo(1, 12); // rows 1, 2, 3, 5
    expect(r[0]![2]).toBeCloseTo(-1, 12); // rows 2, 3, 4, 5
    const few = { schema, rows: [[1, 'p', 2, ''], [2, 'q', '', 3], [3, 'p', 6, 2], [4, 'q', 8, '']] } as unknown as Table;
    expect(numericCorrelations(few).r[1]![2]).toBeNaN(); // b and c both present in one row only
    const h = correlationHeatmap(t, { schema, rows: [[1, 'p', 8, 1], [2, 'p', 6, 2], [3, 'q', 4, 3]] });
    expect(h.columns).toEqual(['a', 'b', 'c']);
    expect(h.synthetic[0]![1]).toBeCloseTo(-1, 12);
    expect(h.synthetic[0]![2]).toBeCloseTo(1, 12);
  });
});
