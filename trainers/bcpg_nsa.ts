/**
 * BCPG-NSA: Yang, Jiang, Hu, Li, Deng & Jiang, "Unearthing Gems from Stones: Policy
 * Optimization with Negative Sample Augmentation for LLM Reasoning" (2025, arXiv:2505.14403).
 * Offline RL on samples of a fixed behaviour policy: Behaviour Constrained Policy Gradient
 * (BCPG) plus Negative Sample Augmentation (NSA), which mines the correct steps inside wrong
 * samples.
 *
 * As DESIGN.md states it (the paper's equation numbers are not restated here):
 *   A_i   = r_i - mean_group r                     (no std scaling)
 *   A_i,t = mu * A_i   if sample i is wrong and token t lies in a step the step checker marks
 *                      correct (mu: the mining coefficient, 0.5; 1 = plain BCPG, smaller =
 *                      stronger mining, below 0 reverses the sign of those tokens' update)
 *         = A_i        otherwise
 *   rho_t = exp(logp_t - old_t)                    old = the behaviour policy that wrote the data
 *   o_t   = min(rho_t A_i,t, clip(rho_t, 1 - eps, 1 + eps) A_i,t) - beta kl_t(old || pi)
 * with the k3 estimator taken against the behaviour policy (the behaviour constraint). The loss
 * is -aggregate(o) with GRPO's aggregations (grpo.ts; default "grpo", the mean over sequences
 * of token means), whose reduction it inherits.
 *
 * Departures: the step segmentation and the LLM/PRM consensus judging of the paper happen
 * upstream (verifiers' step checker); here they arrive as a per-token `stepCorrect` mask. The
 * clip range (0.2) and beta (0.04, DeepSeekMath's GRPO value) are this project's defaults, not
 * values checked against the paper. A sample counts as wrong when `correct[i]` is false
 * (default: `rewards[i] < 1`). Non-finite inputs drop their sequence or group as in grpo.ts.
 */

import { demeanedAdvantages } from "./advantages.ts";
import {
  cleanGroupAdvantages,
  grpoDefaults,
  policyLoss,
  type PolicyOptions,
  rolloutMetrics,
} from "./grpo.ts";
import {
  checkPerSequence,
  checkRows,
  groupCount,
  type ObjectiveResult,
  type Row,
  type SequenceInputs,
} from "./objective.ts";

/** Inputs of `bcpgNsa` (registry name "nsa"). */
export interface NsaInputs extends SequenceInputs, Omit<PolicyOptions, "old" | "ref"> {
  /** Behaviour-policy log-probs of the offline samples (required). */
  old: readonly Row[];
  /** One reward per sequence; groups of `groupSize` consecutive sequences share a prompt. */
  rewards: readonly number[];
  /** Samples per prompt. */
  groupSize: number;
  /** Per token: > 0 where the token belongs to a step the step checker marks correct. */
  stepCorrect: readonly Row[];
  /** Per sequence: verified correct (default `rewards[i] >= 1`). */
  correct?: readonly boolean[];
  /** Mining coefficient mu (0.5). */
  mining?: number;
}

/** The defaults. */
export const NSA_DEFAULTS = { mining: 0.5, eps: 0.2, beta: 0.04 } as const;

/** BCPG-NSA loss and its gradient in logp. */
export function bcpgNsa(inputs: NsaInputs): ObjectiveResult {
  const { logp, mask, old, rewards, groupSize, stepCorrect } = inputs;
  const N = logp.length;
  if (!old) throw new Error("nsa: behaviour-policy log-probs (old) are required");
  checkRows("nsa", "old", old, logp);
  checkRows("nsa", "stepCorrect", stepCorrect, logp);
  checkPerSequence("nsa", "rewards", rewards, N);
  checkPerSequence("nsa", "correct", inputs.correct, N);
  groupCount("nsa", N, groupSize);
  const mu = inputs.mining ?? NSA_DEFAULTS.mining;
  if (!Number.isFinite(mu)) throw new RangeError(`nsa: mining must be finite, got ${mu}`);
  const { adv, okGroup } = cleanGroupAdvantages(rewards, groupSize, demeanedAdvantages);
  let badRewards = 0;
  for (const r of rewards) if (!Number.isFinite(r)) badRewards++;
  const wrong = rewards.map((r, i) => !(inputs.correct ? inputs.correct[i] : r >= 1));
  let mined = 0, tokens = 0;
  for (let i = 0; i < N; i++) {
    if (!okGroup[Math.floor(i / groupSize)]) continue;
    for (let t = 0; t < mask[i].length; t++) {
      if (!(mask[i][t] > 0)) continue;
      tokens++;
      if (wrong[i] && stepCorrect[i][t] > 0) mined++;
    }
  }
  const active = adv.map((_, i) => okGroup[Math.floor(i / groupSize)]);
  const res = policyLoss({
    ...inputs,
    method: "nsa",
    old,
    ref: old,
    epsLow: inputs.epsLow ?? NSA_DEFAULTS.eps,
    epsHigh: inputs.epsHigh ?? NSA_DEFAULTS.eps,
    beta: inputs.beta ?? NSA_DEFAULTS.beta,
    advantage: (i, t) => (wrong[i] && stepCorrect[i][t] > 0 ? mu * adv[i] : adv[i]),
    active,
    defaultBeta: grpoDefaults(inputs.aggregation ?? "grpo").beta,
  });
  const metrics = {
    ...res.metrics,
    nonfinite: res.metrics.nonfinite + badRewards,
    dropped: active.filter((a) => !a).length + res.droppedHere,
    ...rolloutMetrics(inputs, rewards, groupSize, okGroup, res.keep),
    "nsa/mined_token_frac": tokens > 0 ? mined / tokens : 0,
  };
  return { loss: res.loss, dlogp: res.dlogp, metrics };
}
