/**
 * Hard-negative reward (HNR): GRPO (Shao et al., "DeepSeekMath", 2024, arXiv:2402.03300, Eq. 3;
 * see grpo.ts) on a shaped reward that penalizes resemblance to a synthetic hard negative of the
 * prompt (an offline, verifier-built wrong solution; verifiers' hard-negative generator):
 *   r'_i = r_i - lambda * sim(y_i, y_neg),   lambda = 0.5
 *   sim  = LCS F1 of token ids: with L = |LCS(a, b)|, P = L/|a|, R = L/|b|,
 *          F1 = 2PR/(P + R) = 2L/(|a| + |b|)   (the ROUGE-L F-measure of Lin, "ROUGE: A Package
 *          for Automatic Evaluation of Summaries", 2004, with beta = 1, on token ids)
 * Prompts without a negative keep `r_i`. The shaped rewards then go through GRPO unchanged
 * (advantages, clipping, KL, aggregation and its reduction, truncation masking: grpo.ts).
 *
 * Paper: no single paper; this is the project's recipe (DESIGN.md, "Hard-negative GRPO").
 * Departures: lambda = 0.5 is our default. The similarity is a constant of the loss (it depends
 * on sampled token ids, not on log-probs). A non-finite verifier reward drops its group, as in
 * grpo.ts; `metrics.reward` is the mean shaped reward, `rewards/verifier` the raw one.
 */

import { grpo, type GrpoInputs } from "./grpo.ts";
import { checkPerSequence, finiteGroups, type ObjectiveResult } from "./objective.ts";

/** Inputs of `hnr`: GRPO's plus the sampled token ids and the negatives. */
export interface HnrInputs extends GrpoInputs {
  /** Completion token ids of each sequence. */
  samples: readonly ArrayLike<number>[];
  /** Token ids of the synthetic negative of each sequence's prompt (null: none). */
  negatives: readonly (ArrayLike<number> | null | undefined)[];
  /** Weight of the similarity penalty (0.5). */
  lambda?: number;
}

/** The defaults. */
export const HNR_DEFAULTS = { lambda: 0.5 } as const;

/**
 * LCS F1 of two token-id sequences, `2 |LCS| / (|a| + |b|)`, in [0, 1]; 0 if either is empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lcsF1 } from "./hnr.ts";
 *
 * assert.equal(lcsF1([1, 2, 3, 4], [1, 2, 3, 4]), 1);
 * assert.equal(lcsF1([1, 2, 3, 4], [2, 4]), (2 * 2) / 6); // LCS [2, 4]
 * assert.equal(lcsF1([1, 2], [3]), 0);
 * ```
 */
export function lcsF1(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length === 0 || b.length === 0) return 0;
  // one DP row over b: prev[j] = |LCS(a[..i], b[..j])|
  let prev = new Int32Array(b.length + 1), cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = ai === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return (2 * prev[b.length]) / (a.length + b.length);
}

/**
 * Shaped rewards `r_i - lambda * lcsF1(samples[i], negatives[i])`; entries without a negative
 * keep `r_i`.
 */
export function hardNegativeRewards(
  rewards: readonly number[],
  samples: readonly ArrayLike<number>[],
  negatives: readonly (ArrayLike<number> | null | undefined)[],
  lambda: number = HNR_DEFAULTS.lambda,
): number[] {
  checkPerSequence("hardNegativeRewards", "samples", samples, rewards.length);
  checkPerSequence("hardNegativeRewards", "negatives", negatives, rewards.length);
  return rewards.map((r, i) => {
    const neg = negatives[i];
    return neg ? r - lambda * lcsF1(samples[i], neg) : r;
  });
}

/** Hard-negative-shaped GRPO loss and its gradient in logp. */
export function hnr(inputs: HnrInputs): ObjectiveResult {
  const { rewards, samples, negatives, groupSize } = inputs;
  const lambda = inputs.lambda ?? HNR_DEFAULTS.lambda;
  if (!Number.isFinite(lambda)) throw new RangeError(`hnr: lambda must be finite, got ${lambda}`);
  checkPerSequence("hnr", "rewards", rewards, inputs.logp.length);
  checkPerSequence("hnr", "samples", samples, rewards.length);
  checkPerSequence("hnr", "negatives", negatives, rewards.length);
  const sim = rewards.map((_, i) => {
    const neg = negatives[i];
    return neg ? lcsF1(samples[i], neg) : null;
  });
  const shaped = rewards.map((r, i) => r - lambda * (sim[i] ?? 0));
  const res = grpo({ ...inputs, rewards: shaped });
  const ok = finiteGroups(rewards, groupSize);
  let raw = 0, n = 0, simSum = 0, withNeg = 0;
  rewards.forEach((r, i) => {
    if (!ok[Math.floor(i / groupSize)]) return;
    raw += r;
    n++;
    const s = sim[i];
    if (s !== null) {
      simSum += s;
      withNeg++;
    }
  });
  res.metrics["rewards/verifier"] = n > 0 ? raw / n : 0;
  res.metrics["rewards/similarity"] = withNeg > 0 ? simSum / withNeg : 0;
  res.metrics["hnr/frac_with_negative"] = n > 0 ? withNeg / n : 0;
  return res;
}
