// Site-level DP-FedAvg, the member's half (McMahan et al. 2018, with the noise distributed over the
// members): clip the update to L2 norm C, add this member's share of N(0, (zC)²) so that the sum over at
// least minParticipants members carries the full noise. Pure: the Gaussian sampler is passed in.
import { badArgument } from './validate.ts';

export interface PrivatizedUpdate {
  values: Float32Array;
  /** L2 norm of the update before clipping */
  norm: number;
  /** true when the update was scaled down to the clip norm */
  scaled: boolean;
}

/**
 * `normal(out, std)` fills `out` with N(0, std²) draws (from a CSPRNG outside simulations). Each member
 * adds std = z·C/√minParticipants, so any minParticipants of them sum to variance (zC)².
 */
export function privatizeSiteUpdate(delta: Float32Array, clip: number, noiseMultiplier: number, minParticipants: number, normal: (out: Float32Array, std: number) => void): PrivatizedUpdate {
  if (!(clip > 0) || !(noiseMultiplier >= 0) || !(Number.isInteger(minParticipants) && minParticipants >= 1)) {
    throw badArgument(`privatizeSiteUpdate: clip ${clip} must be > 0, noiseMultiplier ${noiseMultiplier} ≥ 0, minParticipants ${minParticipants} an integer ≥ 1`, 'pass the consortium\'s site-level DP policy as resolved for this round');
  }
  let sq = 0;
  for (let i = 0; i < delta.length; i++) sq += delta[i]! * delta[i]!;
  const norm = Math.sqrt(sq);
  const scale = norm > clip ? clip / norm : 1;
  const noise = new Float32Array(delta.length);
  normal(noise, (noiseMultiplier * clip) / Math.sqrt(minParticipants));
  const values = new Float32Array(delta.length);
  for (let i = 0; i < delta.length; i++) values[i] = delta[i]! * scale + noise[i]!;
  return { values, norm, scaled: scale < 1 };
}
