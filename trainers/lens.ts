/**
 * LENS (Likelihood Estimation with Negative Samples): Feng, Jain, Hartshorn, Duan & Kempe,
 * "Don't Waste Mistakes: Leveraging Negative RL-Groups via Confidence Reweighting" (2025,
 * arXiv:2510.08696). GRPO where wrong samples get a confidence-dependent negative reward, so
 * groups with no correct sample still give a gradient.
 *
 * The calibrated reward follows DESIGN.md (which transcribes the paper's reward and its choice
 * of the normalizer D; the paper's equation numbers are not restated here):
 *   pi_i = exp(mean_t old_t)                       per-token geometric-mean probability
 *   mixed group:     D = max(D_imp, 2 max_j pi_j), D_imp = 1 / ((1/G) sum_i r_i / pi_i)
 *   all-wrong group: D = 2 max_j pi_j
 *   r~_i = r_i - (1 - r_i) (1/G) pi_i / (D - pi_i)
 * Advantages (advantages.ts, lensAdvantages): mixed groups get GRPO normalization of r~;
 * all-wrong groups are only de-meaned, and weighted by alpha = 0.25; all-correct groups get 0.
 * The loss is then GRPO's clipped surrogate with the chosen aggregation (grpo.ts), whose
 * reduction it inherits.
 *
 * Departures: alpha weights an all-wrong group's policy-gradient term by scaling its advantage
 * (identical for the clipped surrogate, which is positively homogeneous in A); the KL penalty,
 * if any, is not weighted. `pi` is a constant of the loss (no gradient through it); it comes
 * from `old` (the sampling policy), or from logp itself held fixed when `old` is absent. An
 * empty completion has pi = 1. Rewards must be binary (1 = verified correct). A group with a
 * non-finite reward or a non-finite `old` at a counted token is dropped whole (its D is
 * undefined); other non-finite inputs drop their sequence, as in grpo.ts.
 */

import { lensAdvantages, lensRewards } from "./advantages.ts";
import {
  type AdvantageScale,
  grpoDefaults,
  policyLoss,
  type PolicyOptions,
  rolloutMetrics,
} from "./grpo.ts";
import {
  checkPerSequence,
  checkRows,
  groupCount,
  maskedCount,
  maskedSum,
  type ObjectiveResult,
  type SequenceInputs,
} from "./objective.ts";

/** Inputs of `lens`. */
export interface LensInputs extends SequenceInputs, PolicyOptions {
  /** Binary rewards, 1 = verified correct; groups of `groupSize` consecutive sequences. */
  rewards: readonly number[];
  /** Samples per prompt. */
  groupSize: number;
  /** Weight of all-wrong groups (0.25). */
  alpha?: number;
  /** GRPO scaling of mixed groups ("group"). */
  scale?: AdvantageScale;
  /** Added to the std (1e-4). */
  eps?: number;
}

/** The defaults (paper + DESIGN.md). */
export const LENS_DEFAULTS = { alpha: 0.25 } as const;

/** LENS loss and its gradient in logp. */
export function lens(inputs: LensInputs): ObjectiveResult {
  const { logp, mask, old, rewards, groupSize } = inputs;
  const N = logp.length;
  checkRows("lens", "mask", mask, logp);
  checkRows("lens", "old", old, logp);
  checkPerSequence("lens", "rewards", rewards, N);
  const groups = groupCount("lens", N, groupSize);
  const alpha = inputs.alpha ?? LENS_DEFAULTS.alpha;
  if (!(alpha >= 0)) throw new RangeError(`lens: alpha must be >= 0, got ${alpha}`);
  for (let i = 0; i < N; i++) {
    const r = rewards[i];
    if (Number.isFinite(r) && r !== 0 && r !== 1) {
      throw new RangeError(`lens: rewards must be binary (0 or 1); rewards[${i}] = ${r}`);
    }
  }
  const defaults = grpoDefaults(inputs.aggregation ?? "grpo");
  const conf = old ?? logp;
  const meanLogp = conf.map((row, i) => {
    const n = maskedCount(mask[i]);
    return n > 0 ? maskedSum(row, mask[i]) / n : 0;
  });
  const okGroup: boolean[] = [];
  let badRewards = 0;
  for (let g = 0; g < groups; g++) {
    let ok = true;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) {
      if (!Number.isFinite(rewards[i])) badRewards++;
      if (!Number.isFinite(rewards[i]) || !Number.isFinite(meanLogp[i])) ok = false;
    }
    okGroup.push(ok);
  }
  const idx: number[] = [];
  okGroup.forEach((ok, g) => {
    if (ok) { for (let j = 0; j < groupSize; j++) idx.push(g * groupSize + j); }
  });
  const adv = new Array<number>(N).fill(0);
  const calibrated = new Array<number>(N).fill(0);
  if (idx.length > 0) {
    const r = idx.map((i) => rewards[i]), ml = idx.map((i) => meanLogp[i]);
    const a = lensAdvantages(r, ml, groupSize, {
      alpha,
      scale: inputs.scale ?? defaults.scale,
      eps: inputs.eps ?? defaults.eps,
    });
    const c = lensRewards(r, ml, groupSize);
    idx.forEach((i, k) => {
      adv[i] = a[k];
      calibrated[i] = c[k];
    });
  }
  const active = adv.map((a, i) => okGroup[Math.floor(i / groupSize)] && Number.isFinite(a));
  const res = policyLoss({
    ...inputs,
    method: "lens",
    advantage: (i) => adv[i],
    active,
    defaultBeta: defaults.beta,
  });
  let negGroups = 0, wrongSum = 0, wrongN = 0, calSum = 0;
  okGroup.forEach((ok, g) => {
    if (!ok) return;
    let correct = 0;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) {
      calSum += calibrated[i];
      if (rewards[i] === 1) correct++;
      else {
        wrongSum += calibrated[i];
        wrongN++;
      }
    }
    if (correct === 0) negGroups++;
  });
  const clean = okGroup.filter(Boolean).length;
  const metrics = {
    ...res.metrics,
    nonfinite: res.metrics.nonfinite + badRewards,
    dropped: active.filter((a) => !a).length + res.droppedHere,
    ...rolloutMetrics(inputs, rewards, groupSize, okGroup, res.keep),
    "lens/negative_groups": clean > 0 ? negGroups / clean : 0,
    "lens/calibrated_reward": idx.length > 0 ? calSum / idx.length : 0,
    "lens/wrong_reward": wrongN > 0 ? wrongSum / wrongN : 0,
  };
  return { loss: res.loss, dlogp: res.dlogp, metrics };
}
