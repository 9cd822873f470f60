/**
 * SFT: supervised fine-tuning, the negative log-likelihood of completion tokens.
 *
 * Paper: none of its own. This is teacher-forced maximum likelihood as used for the SFT stage of
 * Ouyang et al., "Training language models to follow instructions with human feedback" (2022,
 * arXiv:2203.02155), with the completion-only masking of TRL's SFTTrainer
 * (`completion_only_loss`): prompt tokens carry mask 0.
 *
 * Loss (DESIGN.md, Objectives):
 *   reduction "token" (default):  L = -(sum_{b,t} m logp) / (sum_{b,t} m)
 *   reduction "sequence":         L = -(1/S) sum_b (sum_t m logp) / (sum_t m)
 * where S counts the sequences with at least one completion token (empty ones are skipped).
 *
 * Departures: none in the math. Non-finite logp at a counted token drops that sequence (see
 * objective.ts); the denominators are then taken over the remaining sequences.
 */

import {
  checkRows,
  maskedCount,
  nonFiniteAt,
  type ObjectiveResult,
  type SequenceInputs,
  sequenceMetrics,
  zeroGrads,
} from "./objective.ts";

/** Inputs of `sft`. */
export interface SftInputs extends SequenceInputs {
  /** "token": mean over all completion tokens (default); "sequence": mean of per-sequence means. */
  reduction?: "token" | "sequence";
}

/** Supervised fine-tuning loss and its gradient in logp. */
export function sft(inputs: SftInputs): ObjectiveResult {
  const { logp, mask, entropy } = inputs;
  const reduction = inputs.reduction ?? "token";
  if (reduction !== "token" && reduction !== "sequence") {
    throw new RangeError(`sft: unknown reduction "${reduction}"`);
  }
  checkRows("sft", "mask", mask, logp);
  checkRows("sft", "entropy", entropy, logp);
  const B = logp.length;
  const keep: boolean[] = [];
  let nonfinite = 0;
  for (let b = 0; b < B; b++) {
    const bad = nonFiniteAt(b, mask, logp);
    nonfinite += bad;
    keep.push(bad === 0);
  }
  const counts = mask.map(maskedCount);
  let tokens = 0, seqs = 0;
  for (let b = 0; b < B; b++) {
    if (keep[b] && counts[b] > 0) {
      tokens += counts[b];
      seqs++;
    }
  }
  const dlogp = zeroGrads(logp);
  let loss = 0, nllSum = 0;
  for (let b = 0; b < B; b++) {
    if (!keep[b] || counts[b] === 0) continue;
    // weight of one token of sequence b in the batch loss
    const w = reduction === "token" ? 1 / tokens : 1 / (seqs * counts[b]);
    const lp = logp[b], m = mask[b], g = dlogp[b];
    for (let t = 0; t < lp.length; t++) {
      if (m[t] > 0) {
        loss -= w * lp[t];
        nllSum -= lp[t];
        g[t] = -w;
      }
    }
  }
  const metrics: Record<string, number> = {
    loss,
    num_tokens: tokens,
    nll: tokens > 0 ? nllSum / tokens : 0,
    nonfinite,
    dropped: keep.filter((k) => !k).length,
    ...sequenceMetrics(mask, entropy, keep),
  };
  return { loss, dlogp, metrics };
}
