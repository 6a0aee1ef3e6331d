// The noise a member adds to its counts before they are encrypted: its share of the round's noise on the
// sum. One function, so the noise source can be swapped without touching the round: today Gaussian shares
// N(0, σ²/m) from the member's DP noise source (the OS CSPRNG; seeded only in simulations), as site-level
// DP-FedAvg draws them; the integer (Skellam / discrete Gaussian) shares of packages/dp replace them here.
// The accounting stays what the ledger records: one q = 1 Gaussian entry per round at σ.

/** Fills `out` with N(0, std²) draws (the node's Privacy.normal). */
export type NormalSource = (out: Float32Array, std: number) => void;

/**
 * `counts` plus this member's share of N(0, σ²) noise: N(0, σ²/m) per cell, m = the manifest's minParticipants,
 * so any sum of at least m shares carries at least σ² (members refuse a sum of fewer, aggregate-check.ts).
 * σ = 0 (DP off): the counts as they are.
 */
export function countNoiseShare(counts: Float64Array, sigma: number, minParticipants: number, normal: NormalSource): Float64Array {
  const out = Float64Array.from(counts);
  if (sigma === 0) return out;
  const noise = new Float32Array(counts.length);
  normal(noise, sigma / Math.sqrt(minParticipants));
  for (let i = 0; i < out.length; i++) out[i]! += noise[i]!;
  return out;
}
