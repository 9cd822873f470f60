/**
 * Advantage estimators and reward calibrations, as pure functions of per-sequence rewards.
 * Groups are consecutive blocks of `groupSize` (the samples of one prompt).
 *
 * - `rlooAdvantages`: leave-one-out baseline (Kool, van Hoof & Welling, "Buy 4 REINFORCE
 *   samples, get a baseline for free!", ICLR DeepRLStructPred workshop 2019; Ahmadian et al.,
 *   "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback
 *   in LLMs", 2024, arXiv:2402.14740, Eq. 6).
 * - `grpoAdvantages`: group-normalized advantage (Shao et al., "DeepSeekMath", 2024,
 *   arXiv:2402.03300, Sec. 4.1.2) with the scale options of TRL (`group`, `batch`, `none`;
 *   `none` is Dr. GRPO's choice, Liu et al. 2025, arXiv:2503.20783).
 * - `lensRewards`, `lensAdvantages`: LENS confidence-calibrated rewards (Feng, Jain, Hartshorn,
 *   Duan & Kempe, "Don't Waste Mistakes: Leveraging Negative RL-Groups via Confidence
 *   Reweighting", 2025, arXiv:2510.08696), with the constants of DESIGN.md.
 *
 * Exact zeros: a group's deviation from its mean is computed as `(1/G) sum_j (r_i - r_j)`
 * (and the leave-one-out one as `(1/(G-1)) sum_{j != i} (r_i - r_j)`), so a group of equal
 * rewards (0.35 included) gives exactly 0, never a rounding residue divided by a tiny std.
 * These functions take finite rewards; a non-finite reward makes its group's output NaN (the
 * objectives screen rewards first, see objective.ts).
 */

import { sampleStd } from "./objective.ts";

function checkGroups(what: string, n: number, groupSize: number, min = 1): void {
  if (!Number.isInteger(groupSize) || groupSize < min) {
    throw new RangeError(`${what}: groupSize must be an integer >= ${min}, got ${groupSize}`);
  }
  if (n % groupSize !== 0) {
    throw new RangeError(`${what}: ${n} rewards are not a multiple of groupSize ${groupSize}`);
  }
}

/** `r_i - mean(group)` for every element, exactly 0 for a group of equal values. */
function groupDeviations(rewards: readonly number[], groupSize: number): number[] {
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += groupSize) {
    for (let i = g; i < g + groupSize; i++) {
      let s = 0;
      for (let j = g; j < g + groupSize; j++) s += rewards[i] - rewards[j];
      out[i] = s / groupSize;
    }
  }
  return out;
}

/**
 * Leave-one-out advantages `A_i = r_i - mean_{j != i} r_j` within each group of `groupSize`
 * (at least 2). Groups of equal rewards give exactly 0; groups of two give `r_i - r_j`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rlooAdvantages } from "./advantages.ts";
 *
 * assert.deepEqual(rlooAdvantages([1, 0, 0.35, 0.35], 2), [1, -1, 0, 0]);
 * assert.deepEqual(rlooAdvantages([1, 0, 0], 3), [1, -0.5, -0.5]);
 * ```
 */
export function rlooAdvantages(rewards: number[], groupSize: number): number[] {
  checkGroups("rlooAdvantages", rewards.length, groupSize, 2);
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += groupSize) {
    for (let i = g; i < g + groupSize; i++) {
      let s = 0;
      for (let j = g; j < g + groupSize; j++) if (j !== i) s += rewards[i] - rewards[j];
      out[i] = s / (groupSize - 1);
    }
  }
  return out;
}

/**
 * Group-relative advantages `(r_i - mean_group) / (std + eps)`, with `std` the sample standard
 * deviation (n - 1) of the group (`scale: "group"`, the default), of the whole batch
 * (`"batch"`; the mean stays per group), or no division at all (`"none"`). `eps` is 1e-4.
 * Groups of equal rewards give exactly 0; a group of one gives 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { grpoAdvantages } from "./advantages.ts";
 *
 * assert.deepEqual(grpoAdvantages([0.35, 0.35, 0.35, 0.35], 4), [0, 0, 0, 0]);
 * const a = grpoAdvantages([1, 0], 2); // std = sqrt(0.5)
 * assert.ok(Math.abs(a[0] - 0.5 / (Math.SQRT1_2 + 1e-4)) < 1e-12 && a[1] === -a[0]);
 * assert.deepEqual(grpoAdvantages([1, 0, 3, 3], 2, { scale: "none" }), [0.5, -0.5, 0, 0]);
 * ```
 */
export function grpoAdvantages(
  rewards: number[],
  groupSize: number,
  opts?: { scale?: "group" | "batch" | "none"; eps?: number },
): number[] {
  checkGroups("grpoAdvantages", rewards.length, groupSize);
  const scale = opts?.scale ?? "group";
  const eps = opts?.eps ?? 1e-4;
  const dev = groupDeviations(rewards, groupSize);
  if (scale === "none") return dev;
  if (scale === "batch") {
    const std = sampleStd(rewards);
    return dev.map((d) => d / (std + eps));
  }
  if (scale !== "group") throw new RangeError(`grpoAdvantages: unknown scale "${scale}"`);
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += groupSize) {
    let ss = 0;
    for (let i = g; i < g + groupSize; i++) ss += dev[i] * dev[i];
    const std = groupSize > 1 ? Math.sqrt(ss / (groupSize - 1)) : 0;
    for (let i = g; i < g + groupSize; i++) out[i] = dev[i] / (std + eps);
  }
  return out;
}

/**
 * LENS calibrated rewards, before normalization (DESIGN.md, Objectives). With
 * `pi_i = exp(meanLogp_i)` (the sample's per-token geometric-mean probability under the
 * sampling policy) and `r_i = correct_i` (1 = verified correct):
 *   mixed group:     `D = max(D_imp, 2 max_j pi_j)`, `D_imp = 1 / ((1/G) sum_i r_i / pi_i)`
 *   all-wrong group: `D = 2 max_j pi_j`
 *   `r~_i = r_i - (1 - r_i) (1/G) pi_i / (D - pi_i)`
 * Wrong samples get a negative reward, larger in size the more confident the model was; correct
 * samples keep `r_i`. (A degenerate `D - pi_i <= 0`, only possible when every pi is 0, gives no
 * penalty.)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lensRewards } from "./advantages.ts";
 *
 * // An all-wrong group: the confident mistake (pi = 0.5) is penalised more than the unsure one.
 * const r = lensRewards([0, 0], [Math.log(0.5), Math.log(0.1)], 2);
 * assert.ok(r[0] < r[1] && r[1] < 0);
 * assert.ok(Math.abs(r[0] - -0.5 * 0.5 / (1 - 0.5)) < 1e-12); // D = 2 * 0.5
 * ```
 */
export function lensRewards(correct: number[], meanLogp: number[], groupSize: number): number[] {
  checkGroups("lensRewards", correct.length, groupSize);
  if (meanLogp.length !== correct.length) {
    throw new RangeError(
      `lensRewards: meanLogp has ${meanLogp.length} entries, correct has ${correct.length}`,
    );
  }
  const G = groupSize;
  const out = new Array<number>(correct.length);
  for (let g = 0; g < correct.length; g += G) {
    let maxPi = 0, weighted = 0, anyCorrect = false;
    for (let i = g; i < g + G; i++) {
      const pi = Math.exp(meanLogp[i]);
      maxPi = Math.max(maxPi, pi);
      if (correct[i] !== 0) {
        anyCorrect = true;
        weighted += correct[i] / pi;
      }
    }
    const floor = 2 * maxPi;
    const D = anyCorrect ? Math.max(1 / (weighted / G), floor) : floor;
    for (let i = g; i < g + G; i++) {
      const pi = Math.exp(meanLogp[i]);
      const r = correct[i];
      const gap = D - pi;
      out[i] = r - (1 - r) * (gap > 0 ? pi / (G * gap) : 0);
    }
  }
  return out;
}

/**
 * LENS advantages from binary correctness: all-correct groups give 0; mixed groups go through
 * GRPO normalization of the calibrated rewards (`scale`, `eps` as in `grpoAdvantages`; with
 * `"batch"` the std is over the calibrated rewards of all mixed groups); all-wrong groups are
 * only de-meaned and multiplied by `alpha` (0.25), which weights their policy-gradient loss by
 * alpha.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lensAdvantages } from "./advantages.ts";
 *
 * const a = lensAdvantages([1, 0, 0, 0, 1, 1], [-1, -1, -2, -0.5, -1, -1], 2);
 * assert.ok(a[0] > 0 && a[1] < 0); // mixed group
 * assert.ok(a[2] > 0 && a[3] < 0 && Math.abs(a[2]) < 0.25); // all wrong: the confident one loses
 * assert.deepEqual(a.slice(4), [0, 0]); // all correct
 * ```
 */
export function lensAdvantages(
  correct: number[],
  meanLogp: number[],
  groupSize: number,
  opts?: { alpha?: number; scale?: "group" | "batch" | "none"; eps?: number },
): number[] {
  const alpha = opts?.alpha ?? 0.25;
  const calibrated = lensRewards(correct, meanLogp, groupSize);
  const G = groupSize;
  const out = new Array<number>(correct.length).fill(0);
  const mixedIdx: number[] = [];
  for (let g = 0; g < correct.length; g += G) {
    let nCorrect = 0;
    for (let i = g; i < g + G; i++) if (correct[i] !== 0) nCorrect++;
    if (nCorrect === 0) {
      const dev = groupDeviations(calibrated.slice(g, g + G), G);
      for (let j = 0; j < G; j++) out[g + j] = alpha * dev[j];
    } else if (nCorrect < G) {
      for (let i = g; i < g + G; i++) mixedIdx.push(i);
    }
  }
  if (mixedIdx.length > 0) {
    const adv = grpoAdvantages(mixedIdx.map((i) => calibrated[i]), G, {
      scale: opts?.scale,
      eps: opts?.eps,
    });
    mixedIdx.forEach((i, k) => (out[i] = adv[k]));
  }
  return out;
}

/** `r_i - mean(group)`, exactly 0 for a group of equal rewards (GRPO with `scale: "none"`). */
export function demeanedAdvantages(rewards: number[], groupSize: number): number[] {
  checkGroups("demeanedAdvantages", rewards.length, groupSize);
  return groupDeviations(rewards, groupSize);
}
