/**
 * IPO: Azar, Guo, Piot, Munos, Rowland, Valko & Calandriello, "A General Theoretical Paradigm
 * to Understand Learning from Human Preferences" (AISTATS 2024, arXiv:2310.12036), the sampled
 * IPO loss (Eq. 17, Algorithm 1): `(h - 1/(2 tau))^2`, here with `tau = beta`.
 *
 * As DESIGN.md specifies, `h` uses length-normalized log-probs (`l = s / sum_t m`, as TRL's IPO
 * does) and the loss carries an NLL anchor on the chosen completion, as in Pang et al.,
 * "Iterative Reasoning Preference Optimization" (2024, arXiv:2404.19733), which adds the
 * length-normalized NLL of the winner to the preference loss:
 *   h_k = (l_w - l_l) - (l_w_ref - l_l_ref)
 *   L_k = (h_k - 1/(2 beta))^2 + alpha * NLL_w,   NLL_w = -l_w,   beta = 0.1, alpha = 0.1
 * Reduction: the mean of L_k over the pairs of the batch. L_k is minimal in h at 1/(2 beta).
 *
 * Pair layout: rows 2k (chosen) and 2k+1 (rejected); `ref` has the same shape.
 *
 * Departures: Azar et al. use sequence log-probs and no NLL term; the length normalization and
 * the anchor are this project's recipe (DESIGN.md). Pang et al. weight the preference term, we
 * weight the NLL (`alpha`). An empty completion (no counted token) has `l = 0` and no gradient.
 * A pair with a non-finite log-prob at a counted token is dropped; the mean is over the rest.
 * `rewards/*` metrics use the length-normalized implicit reward `beta (l - l_ref)`, as TRL
 * reports them for IPO; `logps/*` are the length-normalized `l`.
 */

import { pairStats, rowsKept } from "./dpo.ts";
import {
  type ObjectiveResult,
  type Row,
  type SequenceInputs,
  sequenceMetrics,
  zeroGrads,
} from "./objective.ts";

/** Inputs of `ipo`: rows 2k chosen, 2k+1 rejected. */
export interface IpoInputs extends SequenceInputs {
  /** Reference-policy log-probs, same shape as `logp`. */
  ref: readonly Row[];
  /** Regularization: the target margin is 1/(2 beta) (0.1). */
  beta?: number;
  /** Weight of the chosen completion's length-normalized NLL (0.1). */
  alpha?: number;
}

/** The defaults (DESIGN.md). */
export const IPO_DEFAULTS = { beta: 0.1, alpha: 0.1 } as const;

/** Length-normalized IPO loss with an NLL anchor (mean over pairs) and its gradient in logp. */
export function ipo(inputs: IpoInputs): ObjectiveResult {
  const { logp, mask, ref, entropy } = inputs;
  const beta = inputs.beta ?? IPO_DEFAULTS.beta;
  const alpha = inputs.alpha ?? IPO_DEFAULTS.alpha;
  if (!(beta > 0)) throw new RangeError(`ipo: beta must be > 0, got ${beta}`);
  if (!(alpha >= 0)) throw new RangeError(`ipo: alpha must be >= 0, got ${alpha}`);
  const st = pairStats("ipo", logp, mask, ref, entropy);
  const target = 1 / (2 * beta);
  const l = st.s.map((s, b) => (st.n[b] > 0 ? s / st.n[b] : 0));
  const lRef = st.sRef.map((s, b) => (st.n[b] > 0 ? s / st.n[b] : 0));
  const keep = [...st.keep];
  const h: number[] = [];
  const losses: number[] = [];
  for (let k = 0; k < st.pairs; k++) {
    const w = 2 * k, r = 2 * k + 1;
    const hk = (l[w] - l[r]) - (lRef[w] - lRef[r]);
    const lk = (hk - target) ** 2 - alpha * l[w];
    h.push(hk);
    losses.push(lk);
    if (!Number.isFinite(lk)) keep[k] = false;
  }
  const P = keep.filter(Boolean).length;
  const dlogp = zeroGrads(logp);
  let loss = 0, chosen = 0, rejected = 0, acc = 0, lpC = 0, lpR = 0, nll = 0;
  for (let k = 0; k < st.pairs; k++) {
    if (!keep[k]) continue;
    const w = 2 * k, r = 2 * k + 1;
    loss += losses[k] / P;
    const dh = (2 * (h[k] - target)) / P; // d L / d h, batch-scaled
    // d l / d logp_t = 1/n on counted tokens
    if (st.n[w] > 0) fill(dlogp[w], mask[w], (dh - alpha / P) / st.n[w]);
    if (st.n[r] > 0) fill(dlogp[r], mask[r], -dh / st.n[r]);
    const rc = beta * (l[w] - lRef[w]), rr = beta * (l[r] - lRef[r]);
    chosen += rc;
    rejected += rr;
    if (rc > rr) acc++;
    lpC += l[w];
    lpR += l[r];
    nll -= l[w];
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
    nll: avg(nll),
    nonfinite: st.nonfinite,
    dropped: 2 * (st.pairs - P),
    ...sequenceMetrics(mask, entropy, rowsKept(keep)),
  };
  return { loss, dlogp, metrics };
}

function fill(g: Float32Array, m: Row, v: number): void {
  for (let t = 0; t < g.length; t++) if (m[t] > 0) g[t] = v;
}
