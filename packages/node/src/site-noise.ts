// Site-level DP-FedAvg as integers on the BFV path (issue 13 item 4; Agarwal, Kairouz & Liu 2021 with the conditional
// randomized rounding of Kairouz, Liu & Steinke 2021): each member clips its model change, scales it to the HE grid,
// rounds it randomly under an L2 bound and adds an exact Skellam share Sk(μ/m) per value. The members' integers sum
// under BFV to Σ rounded changes + Sk(≥ μ) exactly, and the accountant charges the Skellam mechanism of the rounded
// vector's L1/L2 bounds, never a float Gaussian that was rounded afterwards.
import { FedtwinError } from '@fedtwin/errors';
import { calibrationRounds, type Manifest } from '@fedtwin/consortium';
import { osRandom, seededRandom, skellamMechanism, skellamNoiseFor, skellamShare, skellamSite, type RandomSource, type SampledGaussian, type SkellamSite } from '@fedtwin/dp';
import type { JoinResponse } from '@fedtwin/protocol';
import { wireScale } from './marginals/wire.ts';

/**
 * The site-level Skellam mechanism every member derives the same way from its own manifest copy and the model size:
 * L2 clip C = the site clip, per-value clamp = the HE clip, the HE range ±quantMax, shares sized for minParticipants.
 * A fixed site noise multiplier z is used as is (the summed noise has std ≥ z·Δ₂, Δ₂ the rounded L2 bound); a
 * target ε is calibrated on the Skellam accountant itself (skellamNoiseFor) over calibrationRounds(total) rounds at
 * the manifest's δ, so the integer mechanism, not the Gaussian it replaces, meets the target. Undefined when there is
 * no site-level DP or the generator is marginals (its counts carry their own Skellam noise).
 */
export async function siteSkellamOf(manifest: Manifest, join: Pick<JoinResponse, 'modelValues' | 'secureAggregation'>): Promise<SkellamSite | undefined> {
  const p = manifest.privacy;
  if ((p.mode !== 'site' && p.mode !== 'both') || manifest.model.kind === 'marginals') return undefined;
  const sa = join.secureAggregation;
  if (sa.scheme === 'plaintext') {
    // checkOwnFloor refuses this before any contact; kept so no code path sends site-level shares in clear.
    throw new FedtwinError('NODE_PRIVACY_MISMATCH', `privacy.mode "${p.mode}" needs secure aggregation, the consortium announces "${sa.scheme}"`, { hint: 'use secureAggregation.scheme "bfv" or "secagg" in the manifest' });
  }
  const cfg = p.mode === 'site' ? p : p.site;
  if (!cfg || cfg.clip === undefined) throw new FedtwinError('CONFIG_INVALID', 'privacy.site (with clip) is required for site-level DP', { hint: 'set privacy.clip (mode site) or privacy.site.clip (mode both) in the consortium manifest' });
  // The integer grid both secure schemes carry (BFV's quanta, secagg's masked 16-bit integers), as the counts use it.
  const { unit, qmax } = await wireScale(join);
  const init = {
    clip: cfg.clip,
    coordinateClip: unit * qmax,
    minParticipants: manifest.rounds.minParticipants,
    dimension: join.modelValues,
    quantMax: qmax,
  };
  try {
    if (cfg.noiseMultiplier !== undefined) return skellamSite({ ...init, noiseMultiplier: cfg.noiseMultiplier });
    return skellamNoiseFor({ ...init, epsilon: cfg.targetEpsilon ?? p.epsilon, steps: calibrationRounds(manifest.rounds.total), delta: p.delta }).site;
  } catch (err) {
    throw new FedtwinError('NODE_NOISE_RANGE', `site-level Skellam noise does not fit the HE encoding: ${(err as Error).message}`, {
      hint: 'raise secureAggregation.params.quantBits in the consortium manifest (e.g. 20), or the target ε', cause: err,
    });
  }
}

/** One round of the site-level mechanism as the accountant, the budget and the signed ledger entry see it: a q = 1 Skellam step. */
export function siteSkellamStep(site: SkellamSite): SampledGaussian {
  return skellamMechanism({ ...site.params, steps: 1 });
}

/** A member's integer update: the change clipped, rounded to the grid and with its Skellam share (whole quanta for BFV). */
export function siteSkellamUpdate(delta: Float32Array, site: SkellamSite, rng: RandomSource): Int32Array {
  return skellamShare(delta, site, rng).values;
}

/**
 * The published sum back in model units: BFV decodes Σ quanta × (heClip / quantMax); the members sent γ per model
 * unit, so each decoded value is multiplied by quantMax / (heClip · γ). Deterministic: every member gets the same global.
 */
export function siteSumToModel(decoded: Float64Array, site: SkellamSite, heUnit: number): Float64Array {
  const k = 1 / (heUnit * site.scale);
  const out = new Float64Array(decoded.length);
  for (let i = 0; i < decoded.length; i++) out[i] = decoded[i]! * k;
  return out;
}

/** The OS CSPRNG; a stream seeded by (seed, round) only when a simulation asks for seeded noise (not private). */
export function siteNoiseSource(init: { seededNoise?: boolean | undefined; seed?: number | undefined }, round: number): RandomSource {
  return init.seededNoise ? seededRandom([(init.seed ?? 1) + 7919, round]) : osRandom();
}
