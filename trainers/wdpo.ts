/**
 * Verifier-weighted DPO: DPO (Rafailov et al., "Direct Preference Optimization: Your Language
 * Model is Secretly a Reward Model", NeurIPS 2023, arXiv:2305.18290, Eq. 7) with one weight per
 * preference pair, as DESIGN.md specifies:
 *   L = (1/P) sum_k w_k * (-log sigmoid(beta h_k)),   h_k as in dpo.ts, beta = 0.1
 * Reduction: the mean over the P pairs of the batch.
 *
 * There is no single paper for the weights; this is the project's recipe (DESIGN.md,
 * "Verifier-weighted DPO"). Per pair k (rows 2k chosen, 2k+1 rejected), a raw weight
 *   raw_k = wrongness_k * confidence_k / sqrt(perplexity_k)
 * where
 *   wrongness_k  in [0, 1]: how wrong the verifier judged the rejected completion (e.g. 1 minus
 *                its verifier score; default 1, i.e. the rejected one is simply wrong);
 *   confidence_k in [0, 1]: the model's confidence in the rejected answer; default
 *                `exp(l_l_ref)`, the reference policy's per-token geometric-mean probability of
 *                the rejected completion. A confident mistake is the pair most worth learning;
 *   perplexity_k >= 1: perplexity of the chosen completion; default `exp(-l_w_ref)` under the
 *                reference policy. An implausible "chosen" text is down-weighted (square root so
 *                it does not dominate).
 * The weights are constants of the loss (no gradient flows through them: defaults come from
 * `ref`, which is fixed). In each batch: `w = raw / mean(raw)`, then `w = 1 + lambda (w - 1)`
 * (lambda = 0.3), then clip to [0.5, 2.0]; see `verifierWeights`.
 *
 * Departures: the raw-weight formula is ours. A pair whose inputs or raw weight are non-finite
 * is dropped (counted in `nonfinite`); the normalization and the mean run over the rest. If
 * every raw weight is 0 the batch falls back to plain DPO (all weights 1).
 */

import { type DpoInputs, pairStats, weightedDpo } from "./dpo.ts";
import type { ObjectiveResult } from "./objective.ts";

/** Inputs of `wdpo`: DPO's plus the per-pair verifier signals (one entry per pair). */
export interface WdpoInputs extends DpoInputs {
  /** Verifier wrongness of the rejected completion, in [0, 1] (default 1). */
  wrongness?: readonly number[];
  /** Model confidence in the rejected answer, in [0, 1] (default exp(l_l_ref)). */
  confidence?: readonly number[];
  /** Perplexity of the chosen completion (default exp(-l_w_ref)). */
  perplexity?: readonly number[];
  /** Raw weights given directly (then the three signals above are not used). */
  rawWeights?: readonly number[];
  /** Pull toward 1: `w = 1 + lambda (w - 1)` (0.3). */
  lambda?: number;
  /** Clip range of the final weights ([0.5, 2.0]). */
  clip?: readonly [number, number];
}

/** The defaults (DESIGN.md). */
export const WDPO_DEFAULTS = {
  beta: 0.1,
  lambda: 0.3,
  clip: [0.5, 2.0] as const,
} as const;

/** `wrongness * confidence / sqrt(perplexity)` (see the file header). */
export function rawVerifierWeight(
  wrongness: number,
  confidence: number,
  perplexity: number,
): number {
  return (wrongness * confidence) / Math.sqrt(perplexity);
}

/**
 * Batch weights from raw weights: normalize to mean 1, pull toward 1 by `lambda`, clip to
 * `[min, max]`. With every raw weight 0 the result is all ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verifierWeights } from "./wdpo.ts";
 *
 * // raw [1, 3] -> mean-1 [0.5, 1.5] -> pulled by 0.3 -> [0.85, 1.15]
 * const w = verifierWeights([1, 3]);
 * assert.ok(Math.abs(w[0] - 0.85) < 1e-12 && Math.abs(w[1] - 1.15) < 1e-12);
 * assert.deepEqual(verifierWeights([0, 0, 100], { lambda: 1 }), [0.5, 0.5, 2]);
 * ```
 */
export function verifierWeights(
  raw: readonly number[],
  opts?: { lambda?: number; min?: number; max?: number },
): number[] {
  const lambda = opts?.lambda ?? WDPO_DEFAULTS.lambda;
  const lo = opts?.min ?? WDPO_DEFAULTS.clip[0];
  const hi = opts?.max ?? WDPO_DEFAULTS.clip[1];
  if (raw.length === 0) return [];
  let s = 0;
  for (const r of raw) s += r;
  const m = s / raw.length;
  if (!(m > 0) || !Number.isFinite(m)) return raw.map(() => 1);
  return raw.map((r) => Math.min(hi, Math.max(lo, 1 + lambda * (r / m - 1))));
}

/** Verifier-weighted DPO loss (weighted mean over pairs) and its gradient in logp. */
export function wdpo(inputs: WdpoInputs): ObjectiveResult {
  const { logp, mask, ref } = inputs;
  const st = pairStats("wdpo", logp, mask, ref, inputs.entropy);
  const P = st.pairs;
  for (
    const [field, v] of Object.entries({
      wrongness: inputs.wrongness,
      confidence: inputs.confidence,
      perplexity: inputs.perplexity,
      rawWeights: inputs.rawWeights,
    })
  ) {
    if (v !== undefined && v.length !== P) {
      throw new RangeError(`wdpo: ${field} has ${v.length} entries for ${P} pairs`);
    }
  }
  const clip = inputs.clip ?? WDPO_DEFAULTS.clip;
  const raw: number[] = [];
  const drop: boolean[] = [];
  let nonfinite = 0;
  for (let k = 0; k < P; k++) {
    const w = 2 * k, r = 2 * k + 1;
    let x: number;
    if (inputs.rawWeights) {
      x = inputs.rawWeights[k];
    } else {
      const wrong = inputs.wrongness?.[k] ?? 1;
      const conf = inputs.confidence?.[k] ??
        (st.n[r] > 0 ? Math.exp(st.sRef[r] / st.n[r]) : 1);
      const ppl = inputs.perplexity?.[k] ?? (st.n[w] > 0 ? Math.exp(-st.sRef[w] / st.n[w]) : 1);
      x = rawVerifierWeight(wrong, conf, ppl);
    }
    const bad = !Number.isFinite(x);
    if (bad && st.keep[k]) nonfinite++;
    if (!bad && x < 0) throw new RangeError(`wdpo: raw weight of pair ${k} is negative (${x})`);
    drop.push(bad);
    raw.push(bad ? 0 : x);
  }
  const usable = raw.filter((_, k) => st.keep[k] && !drop[k]);
  const norm = verifierWeights(usable, { lambda: inputs.lambda, min: clip[0], max: clip[1] });
  const weights: number[] = new Array(P).fill(0);
  let j = 0;
  for (let k = 0; k < P; k++) if (st.keep[k] && !drop[k]) weights[k] = norm[j++];
  const res = weightedDpo("wdpo", inputs, weights, drop);
  res.metrics.nonfinite += nonfinite;
  res.metrics["weights/mean"] = norm.length ? norm.reduce((a, b) => a + b, 0) / norm.length : 0;
  res.metrics["weights/min"] = norm.length ? Math.min(...norm) : 0;
  res.metrics["weights/max"] = norm.length ? Math.max(...norm) : 0;
  return res;
}
