// The marginals generator's release: the tree model fitted to the three rounds' released counts (the global
// every member holds, so every member fits the same model), sampled. Post-processing of DP counts: no ε.
import type { Generator, Table } from '@fedtwin/models';
import type { MarginalsMember } from '../member-model.ts';

/** The fitted generator (same on every member: a function of the released counts and the schedule). */
export function releasedGenerator(m: MarginalsMember, global: Float32Array): Generator {
  return m.fit.finish(global);
}

/**
 * `rows` rows. With a declared class mix (`probs`, over the target's categories: a public choice), that many rows
 * of each class (largest remainder), each drawn with the class pinned; without one, the model's own class mix —
 * the pooled label distribution as the noisy counts estimate it, already paid for, unlike a site's own labels.
 */
export function sampleRelease(g: Generator, rows: number, seed: number, probs?: readonly number[]): Table {
  if (!probs) return g.sample(rows, { seed });
  const target = g.schema.columns.find((c) => c.name === g.schema.target)!;
  const classes = target.kind === 'categorical' ? target.categories : [];
  const raw = probs.map((p) => p * rows);
  const counts = raw.map(Math.floor);
  const order = raw.map((r, i) => [r - Math.floor(r), i] as const).sort((a, b) => b[0] - a[0]);
  for (let k = 0, left = rows - counts.reduce((a, b) => a + b, 0); k < left; k++) counts[order[k % order.length]![1]]!++;
  const out: Table = { schema: g.schema, rows: [] };
  counts.forEach((n, i) => {
    if (n > 0) out.rows.push(...g.sample(n, { seed: seed + i, condition: { column: g.schema.target, value: classes[i]! } }).rows);
  });
  return out;
}
