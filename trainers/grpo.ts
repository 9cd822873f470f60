/**
 * GRPO: Shao, Wang, Zhu, Xu, Song, Bi, Zhang, Zhang, Li, Wu & Guo, "DeepSeekMath: Pushing the
 * Limits of Mathematical Reasoning in Open Language Models" (2024, arXiv:2402.03300), the GRPO
 * objective (Eq. 3) with the k3 KL estimator (Eq. 4) and outcome-supervised group-normalized
 * advantages (Sec. 4.1.2). Two variants of the aggregation and clipping:
 * - `dapo`: Yu et al., "DAPO: An Open-Source LLM Reinforcement Learning System at Scale" (2025,
 *   arXiv:2503.14476): token-level loss over the whole batch and clip-higher (eps_high 0.28)
 *   (Eq. 8); no KL term by default.
 * - `dr_grpo`: Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective" (2025,
 *   arXiv:2503.20783): no length normalization per sequence (a constant normalizer) and no std
 *   scaling of the advantage; no KL term by default.
 *
 * Per token (DESIGN.md):
 *   rho_t = exp(logp_t - old_t)
 *   o_t   = min(rho_t A_i, clip(rho_t, 1 - eps_low, 1 + eps_high) A_i) - beta kl_t
 *   kl_t  = exp(ref_t - logp_t) - (ref_t - logp_t) - 1
 * Loss (minimised) = -aggregate(o):
 *   grpo:    (1/N) sum_i (1/|o_i|) sum_t o_{i,t}   (sequences with no token contribute 0)
 *   dapo:    sum_{i,t} o_{i,t} / sum_{i,t} m_{i,t}
 *   dr_grpo: sum_{i,t} o_{i,t} / (N * maxLen)
 * with N the number of sequences in the batch (G for a batch of one group, as DESIGN.md writes
 * it) and maxLen the maximum completion length (default: the longest row of the batch; pass
 * the generation limit to match Dr. GRPO exactly).
 *
 * Defaults: eps_low 0.2, eps_high 0.2 (0.28 for `dapo`), std eps 1e-4, scale "group" ("none"
 * for `dr_grpo`), beta 0.04 (DeepSeekMath) for `grpo` when `ref` is given, 0 for `dapo` and
 * `dr_grpo` or without `ref`.
 *
 * Departures: `old` defaults to logp itself held fixed (one gradient step per batch: rho = 1 and
 * d rho / d logp = 1), the usual on-policy shortcut. Truncated completions can be masked out of
 * the loss (`maskTruncated`, DAPO's overlong filtering, TRL's `mask_truncated_completions`);
 * their rewards still enter the group statistics, and N still counts them. DAPO's dynamic
 * sampling (dropping groups of equal rewards) belongs to the rollout loop, not here. A group
 * with a non-finite reward, or a sequence with a non-finite logp/old/ref at a counted token (or
 * an overflowing ratio), is dropped like a masked sequence and reported (objective.ts).
 * `clip_ratio` follows TRL: the fraction of counted tokens whose gradient the clip removes
 * (`rho < 1 - eps_low` with A < 0, or `rho > 1 + eps_high` with A > 0).
 */

import { grpoAdvantages } from "./advantages.ts";
import {
  checkPerSequence,
  checkRows,
  finiteGroups,
  groupCount,
  groupRewardMetrics,
  k3,
  klCoef,
  maskedCount,
  nonFiniteAt,
  type ObjectiveResult,
  type Row,
  type SequenceInputs,
  sequenceMetrics,
  zeroGrads,
} from "./objective.ts";

/** How token terms are reduced to the batch loss (see the file header). */
export type Aggregation = "grpo" | "dapo" | "dr_grpo";

/** How advantages are scaled (see `grpoAdvantages`). */
export type AdvantageScale = "group" | "batch" | "none";

/** Options shared by the clipped policy-gradient methods (grpo, lens, nsa, hnr). */
export interface PolicyOptions {
  /** Behaviour-policy log-probs at sampling time (default: logp held fixed). */
  old?: readonly Row[];
  /** Reference log-probs for the k3 KL penalty. */
  ref?: readonly Row[];
  /** Token aggregation ("grpo"). */
  aggregation?: Aggregation;
  /** Lower clip range (0.2). */
  epsLow?: number;
  /** Upper clip range (0.2; 0.28 for "dapo"). */
  epsHigh?: number;
  /** KL coefficient (see the file header for the defaults). */
  beta?: number;
  /** Normalizer of "dr_grpo" (default: the longest row). */
  maxLen?: number;
  /** Per sequence: whether generation hit the length limit. */
  truncated?: readonly boolean[];
  /** Leave truncated completions out of the loss (false). */
  maskTruncated?: boolean;
}

/** Inputs of `grpo`. */
export interface GrpoInputs extends SequenceInputs, PolicyOptions {
  /** One reward per sequence; groups of `groupSize` consecutive sequences share a prompt. */
  rewards: readonly number[];
  /** Samples per prompt. */
  groupSize: number;
  /** Advantage scaling ("group"; "none" for "dr_grpo"). */
  scale?: AdvantageScale;
  /** Added to the std (1e-4). */
  eps?: number;
  /** Precomputed per-sequence advantages (replace the group-normalized ones). */
  advantages?: readonly number[];
}

/** The papers' defaults for one aggregation. */
export function grpoDefaults(aggregation: Aggregation = "grpo"): {
  epsLow: number;
  epsHigh: number;
  beta: number;
  scale: AdvantageScale;
  eps: number;
} {
  return {
    epsLow: 0.2,
    epsHigh: aggregation === "dapo" ? 0.28 : 0.2,
    beta: aggregation === "grpo" ? 0.04 : 0,
    scale: aggregation === "dr_grpo" ? "none" : "group",
    eps: 1e-4,
  };
}

/** Inputs of the shared clipped policy-gradient loss. */
export interface PolicyLossInputs extends SequenceInputs, PolicyOptions {
  /** Name used in error messages. */
  method: string;
  /** Advantage of token t of sequence i. */
  advantage: (i: number, t: number) => number;
  /** Sequences allowed to contribute (false: treated as fully masked). */
  active: readonly boolean[];
  /** KL coefficient when `beta` is not given and `ref` is. */
  defaultBeta: number;
}

/** Output of `policyLoss`: the objective result plus which sequences it kept. */
export interface PolicyLossResult extends ObjectiveResult {
  /** Sequences that contributed. */
  keep: boolean[];
  /** Sequences dropped for non-finite values here (not counting inactive ones). */
  droppedHere: number;
}

/**
 * The clipped surrogate with k3 KL and the three aggregations (file header), for any per-token
 * advantage. Shared by grpo, lens, bcpg_nsa and hnr. Metrics: `loss`, `kl` (token mean, when
 * `ref` is given), `clip_ratio`, `clip_ratio/low_mean`, `clip_ratio/high_mean`, `nonfinite`.
 */
export function policyLoss(p: PolicyLossInputs): PolicyLossResult {
  const { method, logp, mask, old, ref } = p;
  checkRows(method, "mask", mask, logp);
  checkRows(method, "old", old, logp);
  checkRows(method, "ref", ref, logp);
  checkRows(method, "entropy", p.entropy, logp);
  checkPerSequence(method, "truncated", p.truncated, logp.length);
  const aggregation = p.aggregation ?? "grpo";
  if (aggregation !== "grpo" && aggregation !== "dapo" && aggregation !== "dr_grpo") {
    throw new RangeError(`${method}: unknown aggregation "${aggregation}"`);
  }
  const defaults = grpoDefaults(aggregation);
  const epsLow = p.epsLow ?? defaults.epsLow;
  const epsHigh = p.epsHigh ?? defaults.epsHigh;
  if (!(epsLow >= 0 && epsLow < 1 && epsHigh >= 0)) {
    throw new RangeError(`${method}: need 0 <= epsLow < 1 and epsHigh >= 0`);
  }
  const beta = klCoef(method, p.beta, ref, p.defaultBeta);
  const N = logp.length;
  const maxLen = p.maxLen ?? logp.reduce((m, r) => Math.max(m, r.length), 0);
  if (aggregation === "dr_grpo" && !(maxLen > 0)) {
    throw new RangeError(`${method}: dr_grpo needs maxLen > 0, got ${maxLen}`);
  }

  const keep = [...p.active];
  if (p.maskTruncated && p.truncated) {
    for (let i = 0; i < N; i++) if (p.truncated[i]) keep[i] = false;
  }
  let nonfinite = 0, droppedHere = 0;
  // Token objective o_t and d o_t / d logp_t of the kept sequences.
  const obj: (Float64Array | null)[] = new Array(N).fill(null);
  const dobj: (Float64Array | null)[] = new Array(N).fill(null);
  let klSum = 0, klTokens = 0, low = 0, high = 0, tokens = 0;
  for (let i = 0; i < N; i++) {
    const bad = nonFiniteAt(i, mask, logp, old, ref === old ? undefined : ref);
    nonfinite += bad;
    if (!keep[i]) continue;
    if (bad > 0) {
      keep[i] = false;
      droppedHere++;
      continue;
    }
    const lp = logp[i], m = mask[i];
    const o = new Float64Array(lp.length), d = new Float64Array(lp.length);
    let ok = true, kl_ = 0, nkl = 0, lo = 0, hi = 0;
    for (let t = 0; t < lp.length; t++) {
      if (!(m[t] > 0)) continue;
      const A = p.advantage(i, t);
      const rho = old ? Math.exp(lp[t] - old[i][t]) : 1;
      const clipped = Math.min(Math.max(rho, 1 - epsLow), 1 + epsHigh);
      const un = rho * A, cl = clipped * A;
      let ot: number, dt: number;
      if (un <= cl) {
        ot = un;
        dt = rho * A; // d (rho A) / d logp
      } else {
        ot = cl; // the clip is active: constant in logp
        dt = 0;
      }
      if (rho < 1 - epsLow && A < 0) lo++;
      if (rho > 1 + epsHigh && A > 0) hi++;
      if (ref) {
        const { kl, dkl } = k3(ref[i][t], lp[t]);
        if (beta > 0) {
          ot -= beta * kl;
          dt -= beta * dkl;
        }
        kl_ += kl;
        nkl++;
      }
      if (!Number.isFinite(ot) || !Number.isFinite(dt) || !Number.isFinite(A)) {
        ok = false;
        break;
      }
      o[t] = ot;
      d[t] = dt;
    }
    if (!ok || !Number.isFinite(kl_)) {
      keep[i] = false;
      droppedHere++;
      continue;
    }
    obj[i] = o;
    dobj[i] = d;
    klSum += kl_;
    klTokens += nkl;
    low += lo;
    high += hi;
    tokens += maskedCount(m);
  }

  const dlogp = zeroGrads(logp);
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const o = obj[i], d = dobj[i];
    if (!keep[i] || !o || !d) continue;
    const n = maskedCount(mask[i]);
    if (n === 0) continue;
    // weight of one token of sequence i in the batch loss
    const w = aggregation === "grpo"
      ? 1 / (N * n)
      : aggregation === "dapo"
      ? 1 / tokens
      : 1 / (N * maxLen);
    const m = mask[i], g = dlogp[i];
    for (let t = 0; t < o.length; t++) {
      if (!(m[t] > 0)) continue;
      loss -= w * o[t];
      g[t] = 0 - w * d[t]; // not -(w d): a clipped token gets +0, not -0
    }
  }
  const metrics: Record<string, number> = {
    loss,
    clip_ratio: tokens > 0 ? (low + high) / tokens : 0,
    "clip_ratio/low_mean": tokens > 0 ? low / tokens : 0,
    "clip_ratio/high_mean": tokens > 0 ? high / tokens : 0,
    nonfinite,
  };
  if (ref) metrics.kl = klTokens > 0 ? klSum / klTokens : 0;
  return { loss, dlogp, metrics, keep, droppedHere };
}

/**
 * Per-sequence advantages of the groups whose rewards are all finite (others get 0), from any
 * group-wise estimator. Returns the advantages and the per-group flags.
 */
export function cleanGroupAdvantages(
  rewards: readonly number[],
  groupSize: number,
  estimator: (rewards: number[], groupSize: number) => number[],
): { adv: number[]; okGroup: boolean[] } {
  const okGroup = finiteGroups(rewards, groupSize);
  const adv = new Array<number>(rewards.length).fill(0);
  const idx: number[] = [];
  okGroup.forEach((ok, g) => {
    if (ok) { for (let j = 0; j < groupSize; j++) idx.push(g * groupSize + j); }
  });
  if (idx.length > 0) {
    const a = estimator(idx.map((i) => rewards[i]), groupSize);
    idx.forEach((i, k) => (adv[i] = a[k]));
  }
  return { adv, okGroup };
}

/** Reward, length and truncation metrics shared by the group methods. */
export function rolloutMetrics(
  inputs: SequenceInputs & PolicyOptions,
  rewards: readonly number[],
  groupSize: number,
  okGroup: readonly boolean[],
  keep: readonly boolean[],
): Record<string, number> {
  const out: Record<string, number> = {
    ...groupRewardMetrics(rewards, groupSize, okGroup),
    ...sequenceMetrics(inputs.mask, inputs.entropy, keep),
  };
  if (inputs.truncated) {
    const n = inputs.truncated.length;
    out["completions/clipped_ratio"] = n > 0 ? inputs.truncated.filter(Boolean).length / n : 0;
  }
  return out;
}

/** GRPO / DAPO / Dr. GRPO loss and its gradient in logp. */
export function grpo(inputs: GrpoInputs): ObjectiveResult {
  const { logp, rewards, groupSize } = inputs;
  const N = logp.length;
  checkPerSequence("grpo", "rewards", rewards, N);
  checkPerSequence("grpo", "advantages", inputs.advantages, N);
  groupCount("grpo", N, groupSize);
  const defaults = grpoDefaults(inputs.aggregation ?? "grpo");
  const scale = inputs.scale ?? defaults.scale;
  const eps = inputs.eps ?? defaults.eps;
  const { adv, okGroup } = inputs.advantages
    ? { adv: [...inputs.advantages], okGroup: finiteGroups(rewards, groupSize) }
    : cleanGroupAdvantages(rewards, groupSize, (r, G) => grpoAdvantages(r, G, { scale, eps }));
  let badRewards = 0;
  for (const r of rewards) if (!Number.isFinite(r)) badRewards++;
  for (const a of inputs.advantages ?? []) if (!Number.isFinite(a)) badRewards++;
  const active = adv.map((a, i) => okGroup[Math.floor(i / groupSize)] && Number.isFinite(a));
  const res = policyLoss({
    ...inputs,
    method: "grpo",
    advantage: (i) => adv[i],
    active,
    defaultBeta: defaults.beta,
  });
  const dropped = active.filter((a) => !a).length + res.droppedHere;
  res.metrics.nonfinite += badRewards;
  const metrics = {
    ...res.metrics,
    dropped,
    ...rolloutMetrics(inputs, rewards, groupSize, okGroup, res.keep),
  };
  return { loss: res.loss, dlogp: res.dlogp, metrics };
}
