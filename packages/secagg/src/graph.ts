// The neighbourhood graph of a round (SecAgg+, Bell et al. 2020): who masks with whom and who holds whose
// shares. Full graph for small n; otherwise a Harary graph H(n, k) over a permutation of the members drawn
// from a public seed, so every member has exactly k neighbours and anyone can recompute the graph.
import { createCipheriv, createHash } from 'node:crypto';
import { secaggError } from './errors.ts';
import { lp } from './keys.ts';

export interface Graph {
  /** members in canonical (sorted) order */
  readonly members: readonly string[];
  /** neighbours of a member (never itself), sorted */
  neighbours(member: string): readonly string[];
  /** true when every pair is connected */
  readonly full: boolean;
}

/** The default sparse degree: the smallest even k ≥ 3·log2(n) (capped at n − 1, i.e. full, for small n). */
export function defaultDegree(n: number): number {
  const k = Math.ceil(3 * Math.log2(Math.max(2, n)));
  return Math.min(n - 1, k + (k % 2));
}

/** The graph seed: SHA-256 over the round's public data (consortium, round, every advertised key). */
export function graphSeed(consortium: string, round: number, publicKeys: readonly { member: string; cPub: Uint8Array; sPub: Uint8Array }[]): Uint8Array {
  const h = createHash('sha256').update(lp('fedtwin/secagg/graph/v1', consortium, round));
  for (const k of [...publicKeys].sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0))) h.update(lp(k.member, k.cPub, k.sPub));
  return new Uint8Array(h.digest());
}

/** Uniform integers in [0, bound) from AES-CTR under the seed, by rejection (no modulo bias). */
function seededInts(seed: Uint8Array): (bound: number) => number {
  const c = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  const zero = Buffer.alloc(4);
  return (bound) => {
    const limit = Math.floor(4294967296 / bound) * bound;
    for (;;) {
      const v = c.update(zero).readUInt32LE(0);
      if (v < limit) return v % bound;
    }
  };
}

/** degree ≥ n − 1 (or undefined) gives the full graph; otherwise degree must be even. */
export function buildGraph(members: readonly string[], seed: Uint8Array, degree?: number): Graph {
  const sorted = [...members].sort();
  const n = sorted.length;
  for (let i = 1; i < n; i++) if (sorted[i] === sorted[i - 1]) throw secaggError('SECAGG_BAD_ARGUMENT', `member ${sorted[i]} listed twice`, 'list each member once');
  if (degree === undefined || degree >= n - 1) {
    const all = new Map(sorted.map((m) => [m, sorted.filter((o) => o !== m)]));
    return { members: sorted, full: true, neighbours: (m) => all.get(m) ?? [] };
  }
  if (!Number.isInteger(degree) || degree < 2 || degree % 2 !== 0) {
    throw secaggError('SECAGG_BAD_CONFIG', `graph degree must be an even integer ≥ 2, got ${degree}`, 'use defaultDegree(n)');
  }
  // Fisher–Yates shuffle of the sorted members, then each position joins the k/2 positions on each side.
  const rand = seededInts(seed);
  const order = [...sorted];
  for (let i = n - 1; i > 0; i--) {
    const j = rand(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const adj = new Map<string, Set<string>>(sorted.map((m) => [m, new Set()]));
  for (let p = 0; p < n; p++) {
    for (let d = 1; d <= degree / 2; d++) {
      const q = (p + d) % n;
      adj.get(order[p])!.add(order[q]);
      adj.get(order[q])!.add(order[p]);
    }
  }
  const lists = new Map([...adj].map(([m, s]) => [m, [...s].sort()]));
  return { members: sorted, full: false, neighbours: (m) => lists.get(m) ?? [] };
}
