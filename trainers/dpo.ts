/**
 * DPO: Rafailov, Sharma, Mitchell, Ermon, Manning & Finn, "Direct Preference Optimization:
 * Your Language Model is Secretly a Reward Model" (NeurIPS 2023, arXiv:2305.18290).
 *
 * Follows Eq. 7 (the DPO objective), with the implicit reward of Eq. 5 / Sec. 5
 * `r(x, y) = beta (log pi(y|x) - log ref(y|x))` for the metrics:
 *   h_k = (s_w - s_w_ref) - (s_l - s_l_ref),   L_k = -log sigmoid(beta h_k),   beta = 0.1
 * with `s = sum_t m logp` the completion log-prob (DESIGN.md notation). Reduction: the mean of
 * L_k over the pairs of the batch.
 *
 * Pair layout: rows 2k (chosen, y_w) and 2k+1 (rejected, y_l); `ref` has the same shape.
 *
 * Departures: none in the math (no label smoothing / cDPO). A pair with a non-finite log-prob
 * at a counted token is dropped (zero gradient) and the mean is over the remaining pairs.
 * Metrics follow TRL's DPOTrainer: `rewards/chosen`, `rewards/rejected`, `rewards/margins`,
 * `rewards/accuracies`, `logps/chosen`, `logps/rejected`.
 */

import {
  checkRows,
  logSigmoid,
  maskedCount,
  maskedSum,
  nonFiniteAt,
  type ObjectiveResult,
  type Row,
  type SequenceInputs,
  sequenceMetrics,
  sigmoid,
  zeroGrads,
} from "./objective.ts";

/** Inputs of `dpo`: rows 2k chosen, 2k+1 rejected. */
export interface DpoInputs extends SequenceInputs {
  /** Reference-policy log-probs, same shape as `logp`. */
  ref: readonly Row[];
  /** Inverse temperature of the implicit reward (0.1). */
  beta?: number;
}

/** The paper's defaults. */
export const DPO_DEFAULTS = { beta: 0.1 } as const;

/** Per-sequence sums of one batch of pairs, with the pairs that must be dropped. */
export interface PairStats {
  /** Number of pairs. */
  pairs: number;
  /** `sum_t m logp` and `sum_t m ref` per sequence. */
  s: number[];
  sRef: number[];
  /** Counted tokens per sequence. */
  n: number[];
  /** Per pair: false when a non-finite value makes it unusable. */
  keep: boolean[];
  /** Non-finite input values seen at counted positions. */
  nonfinite: number;
}

/** Validates a pair batch and computes its per-sequence sums. */
export function pairStats(
  method: string,
  logp: readonly Row[],
  mask: readonly Row[],
  ref: readonly Row[],
  entropy?: readonly Row[],
): PairStats {
  if (!ref) throw new Error(`${method}: reference log-probs (ref) are required`);
  checkRows(method, "mask", mask, logp);
  checkRows(method, "ref", ref, logp);
  checkRows(method, "entropy", entropy, logp);
  if (logp.length % 2 !== 0) {
    throw new RangeError(
      `${method}: ${logp.length} rows; pairs need an even count (2k chosen, 2k+1 rejected)`,
    );
  }
  const pairs = logp.length / 2;
  const keep: boolean[] = [];
  let nonfinite = 0;
  for (let k = 0; k < pairs; k++) {
    const bad = nonFiniteAt(2 * k, mask, logp, ref) + nonFiniteAt(2 * k + 1, mask, logp, ref);
    nonfinite += bad;
    keep.push(bad === 0);
  }
  return {
    pairs,
    s: logp.map((r, b) => maskedSum(r, mask[b])),
    sRef: ref.map((r, b) => maskedSum(r, mask[b])),
    n: mask.map(maskedCount),
    keep,
    nonfinite,
  };
}

/** Per-sequence keep flags from per-pair ones. */
export function rowsKept(keep: readonly boolean[]): boolean[] {
  return keep.flatMap((k) => [k, k]);
}

/**
 * DPO with per-pair weights (1 for plain DPO): `L = (1/P) sum_k w_k L_k` over the P kept pairs.
 * Shared by `dpo` and `wdpo`.
 */
export function weightedDpo(
  method: string,
  inputs: DpoInputs,
  weights?: readonly number[],
  dropExtra?: readonly boolean[],
): ObjectiveResult {
  const { logp, mask, ref, entropy } = inputs;
  const beta = inputs.beta ?? DPO_DEFAULTS.beta;
  if (!(beta > 0)) throw new RangeError(`${method}: beta must be > 0, got ${beta}`);
  const st = pairStats(method, logp, mask, ref, entropy);
  const keep = st.keep.map((k, i) => k && !(dropExtra?.[i] ?? false));
  const h: number[] = [];
  const losses: number[] = [];
  for (let k = 0; k < st.pairs; k++) {
    const hk = (st.s[2 * k] - st.sRef[2 * k]) - (st.s[2 * k + 1] - st.sRef[2 * k + 1]);
    h.push(hk);
    const lk = -logSigmoid(beta * hk);
    losses.push(lk);
    if (!Number.isFinite(lk)) keep[k] = false;
  }
  const P = keep.filter(Boolean).length;
  const dlogp = zeroGrads(logp);
  let loss = 0;
  let chosen = 0, rejected = 0, acc = 0, lpC = 0, lpR = 0;
  for (let k = 0; k < st.pairs; k++) {
    if (!keep[k]) continue;
    const w = (weights?.[k] ?? 1) / P;
    loss += w * losses[k];
    // d L_k / d h_k = -beta sigmoid(-beta h_k); chosen tokens +1, rejected tokens -1
    const dh = -beta * sigmoid(-beta * h[k]) * w;
    fill(dlogp[2 * k], mask[2 * k], dh);
    fill(dlogp[2 * k + 1], mask[2 * k + 1], -dh);
    const rc = beta * (st.s[2 * k] - st.sRef[2 * k]);
    const rr = beta * (st.s[2 * k + 1] - st.sRef[2 * k + 1]);
    chosen += rc;
    rejected += rr;
    if (rc > rr) acc++;
    lpC += st.s[2 * k];
    lpR += st.s[2 * k + 1];
  }
  const avg = (x: number) => (P > 0 ? x / P : 0);
  const metrics: Record<string, number> = {
    loss,
    "rewards/chosen": avg(chosen),
    "rewards/rejected": avg(rejected),
    "rewards/margins": avg(chosen - rejected),
    "rewards/accuracies": avg(acc),
    "logps/chosen": avg(lpC),
    "logps/rejected": avg(lpR),
    nonfinite: st.nonfinite,
    dropped: 2 * (st.pairs - P),
    ...sequenceMetrics(mask, entropy, rowsKept(keep)),
  };
  return { loss, dlogp, metrics };
}

function fill(g: Float32Array, m: Row, v: number): void {
  for (let t = 0; t < g.length; t++) if (m[t] > 0) g[t] = v;
}

/** DPO loss (mean over pairs) and its gradient in logp. */
export function dpo(inputs: DpoInputs): ObjectiveResult {
  return weightedDpo("dpo", inputs);
}
