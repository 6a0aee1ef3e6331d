// Isolating a garbage contribution under secure aggregation by masking (docs/he.md §9, "A bad contribution
// stays attributable and discardable"). A masked round reveals one sum and nothing smaller, so the aggregator
// cannot bisect a bad sum as it does under BFV. It discards the sum instead, and narrows the suspects over FRESH
// rounds: every withdrawn round's inputs contain the culprit, so the suspects are the intersection of the
// withdrawn rounds' input sets; each new round sits one suspect out, and a withdrawn round without it clears it.
// Pure: the aggregator persists `Isolation` in its state and acts on what these functions return.

export interface Isolation {
  /** Members that gave an input to every withdrawn round since the isolation began (sorted). */
  candidates: string[];
  /** The withdrawn rounds that narrowed `candidates` (their withdraw entries are the evidence). */
  rounds: number[];
  /** Ledger leaves of the members' verdicts on those rounds' sums. */
  evidence: number[];
  /** The member the last round sat out (the rotation goes on from it). */
  lastSitOut?: string;
}

const sorted = (xs: Iterable<string>): string[] => [...new Set(xs)].sort();

/**
 * The suspects after round `round`'s sum over `inputs` was judged unusable and withdrawn. A lone culprit is in
 * every withdrawn round, so the intersection always keeps it; an empty intersection (two culprits, or one that
 * was not in an earlier withdrawn round) starts again from this round's inputs. Idempotent: a restart that
 * repeats the withdrawal of the same round changes nothing.
 */
export function afterWithdrawal(prev: Isolation | undefined, round: number, inputs: readonly string[], evidence: readonly number[]): Isolation {
  if (prev?.rounds.includes(round)) return prev;
  const now = sorted(inputs);
  const kept = prev ? prev.candidates.filter((c) => now.includes(c)) : now;
  const fresh = !prev || kept.length === 0;
  return {
    candidates: fresh ? now : kept,
    rounds: fresh ? [round] : [...prev.rounds, round],
    evidence: [...new Set([...(fresh ? [] : prev.evidence), ...evidence])].sort((a, b) => a - b),
    ...(!fresh && prev.lastSitOut !== undefined ? { lastSitOut: prev.lastSitOut } : {}),
  };
}

/** The culprit once a single suspect is left (only withdrawn rounds narrow the suspects, and each holds it). */
export function isolatedCulprit(iso: Isolation | undefined): string | undefined {
  return iso && iso.candidates.length === 1 ? iso.candidates[0] : undefined;
}

/**
 * Who the next round sits out: the next suspect after the last one sat out, in sorted peer-ID order (a fixed
 * rotation: the aggregator cannot pick someone to leave out), among the members that can take part. Nobody when
 * the round could not reach `minRoundSize` without it (max of the threshold t and minParticipants: a masked sum
 * of fewer than t inputs is never revealed). The rotation moves on after every round, valid or withdrawn, so a
 * culprit that is sat out is still reached: each withdrawn round then drops one suspect that was sat out.
 */
export function nextSitOut(iso: Isolation | undefined, able: readonly string[], minRoundSize: number): string | undefined {
  if (!iso || able.length - 1 < minRoundSize) return undefined;
  const suspects = iso.candidates.filter((c) => able.includes(c));
  if (suspects.length === 0) return undefined;
  const after = iso.lastSitOut === undefined ? undefined : suspects.find((c) => c > iso.lastSitOut!);
  return after ?? suspects[0];
}
