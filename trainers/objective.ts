/**
 * The objective interface (DESIGN.md, "The one interface between model and trainers") and the
 * small helpers every objective shares.
 *
 * An objective is a pure function `(inputs) => { loss, dlogp, metrics }` of per-token
 * log-probabilities. It knows nothing of the GPU.
 *
 * Inputs layout (B sequences; row b has its own length T_b):
 *   logp[b][t]     log p(tokens[b][t+1] | tokens[b][..t]) under the policy being trained
 *   mask[b][t]     > 0 on completion tokens that count, 0 on prompt and padding positions
 *   ref[b][t]      reference-policy log-probs (same shape), where a method uses them
 *   old[b][t]      behaviour / sampling-policy log-probs (same shape), where a method uses them
 *   entropy[b][t]  optional per-position entropy, only reported (`entropy` metric)
 *   rewards[b]     one number per sequence; groups are consecutive blocks of `groupSize`
 *   pairs          (DPO family) rows 2k (chosen) and 2k+1 (rejected)
 * Rows are any `ArrayLike<number>` (Float32Array, Float64Array, number[]); arithmetic is float64.
 *
 * Result:
 *   loss    one batch-level scalar; each method documents its reduction
 *   dlogp   Float32Array[] with exactly the shapes of `logp`: d loss / d logp[b][t], 0 where the
 *           mask is 0. The row-per-sequence layout is kept (no flat array) so ragged batches
 *           need no padding convention; the loop packs rows into its token buffer.
 *   metrics TRL's names where they exist (DESIGN.md, "Files a run writes"), always `loss` and
 *           `nonfinite`.
 *
 * Non-finite inputs: a NaN or +-Inf in logp/ref/old at a counted (mask > 0) position, or in a
 * sequence's reward (or a non-finite value produced from finite inputs, e.g. an overflowing
 * ratio), never reaches the gradient. The affected unit is dropped: a sequence is treated as
 * fully masked (zero gradient, no loss contribution); for group methods a non-finite reward
 * drops its whole group, since the group baseline is undefined; for pair methods the whole pair
 * is dropped. `metrics.nonfinite` counts the non-finite input values seen and
 * `metrics.dropped` the sequences dropped, so the loop can log or stop. Values at positions whose
 * mask is 0 are never read into the arithmetic (0 * NaN would be NaN) and are not counted.
 */

import type { DpoInputs } from "./dpo.ts";
import type { GrpoInputs } from "./grpo.ts";
import type { HnrInputs } from "./hnr.ts";
import type { IpoInputs } from "./ipo.ts";
import type { LensInputs } from "./lens.ts";
import type { NsaInputs } from "./bcpg_nsa.ts";
import type { RlooInputs } from "./rloo.ts";
import type { SftInputs } from "./sft.ts";
import type { WdpoInputs } from "./wdpo.ts";
import { sft } from "./sft.ts";
import { dpo } from "./dpo.ts";
import { ipo } from "./ipo.ts";
import { wdpo } from "./wdpo.ts";
import { rloo } from "./rloo.ts";
import { grpo } from "./grpo.ts";
import { lens } from "./lens.ts";
import { bcpgNsa } from "./bcpg_nsa.ts";
import { hnr } from "./hnr.ts";

/** One sequence's per-token values. */
export type Row = ArrayLike<number>;

/** What every objective returns. */
export interface ObjectiveResult {
  /** Batch-level scalar loss (to be minimised). */
  loss: number;
  /** d loss / d logp, one Float32Array per sequence, same lengths as `logp`; 0 where masked. */
  dlogp: Float32Array[];
  /** Logged per step; TRL's names where they exist. */
  metrics: Record<string, number>;
}

/** Fields every objective reads. */
export interface SequenceInputs {
  /** Per-token policy log-probs, one row per sequence. */
  logp: readonly Row[];
  /** Completion mask, same shape as `logp`. */
  mask: readonly Row[];
  /** Optional per-position entropies, reported as the `entropy` metric. */
  entropy?: readonly Row[];
}

/** Inputs of each method, by registry name. */
export interface ObjectiveInputsMap {
  sft: SftInputs;
  dpo: DpoInputs;
  ipo: IpoInputs;
  wdpo: WdpoInputs;
  rloo: RlooInputs;
  grpo: GrpoInputs;
  lens: LensInputs;
  nsa: NsaInputs;
  hnr: HnrInputs;
}

/** The names the training loop accepts. */
export type TrainerName = keyof ObjectiveInputsMap;

/** An objective of one method. */
export type Objective<K extends TrainerName> = (inputs: ObjectiveInputsMap[K]) => ObjectiveResult;

/**
 * The registry: the loop picks a method by name, e.g. `objectives[cfg.method](inputs)`.
 * The method files import their helpers from this file, so the imports form a cycle. It is safe
 * because every method and helper is a function declaration (bound before any module body runs)
 * and no module body uses a value imported from another trainer file at its top level; keep it
 * that way (a top-level `const X = { beta: DPO_DEFAULTS.beta }` would throw a ReferenceError
 * for some import orders).
 */
export const objectives: { readonly [K in TrainerName]: Objective<K> } = {
  sft,
  dpo,
  ipo,
  wdpo,
  rloo,
  grpo,
  lens,
  nsa: bcpgNsa,
  hnr,
};

/** The registry's names, in a stable order (for CLI help and validation). */
export const TRAINER_NAMES: readonly TrainerName[] = [
  "sft",
  "dpo",
  "ipo",
  "wdpo",
  "rloo",
  "grpo",
  "lens",
  "nsa",
  "hnr",
];

/** Whether `name` is a registered method. */
export function isTrainerName(name: string): name is TrainerName {
  return (TRAINER_NAMES as readonly string[]).includes(name);
}

// ---------------------------------------------------------------------------------------------
// Shape checks

/**
 * Throws unless `rows` has one row per sequence of `logp` with matching lengths. The message
 * names the method and the field.
 */
export function checkRows(
  method: string,
  field: string,
  rows: readonly Row[] | undefined,
  logp: readonly Row[],
): void {
  if (rows === undefined) return;
  if (rows.length !== logp.length) {
    throw new RangeError(`${method}: ${field} has ${rows.length} rows, logp has ${logp.length}`);
  }
  for (let b = 0; b < rows.length; b++) {
    if (rows[b].length !== logp[b].length) {
      throw new RangeError(
        `${method}: ${field}[${b}] has length ${rows[b].length}, logp[${b}] has ${logp[b].length}`,
      );
    }
  }
}

/** Throws unless a per-sequence array has one entry per sequence. */
export function checkPerSequence(
  method: string,
  field: string,
  values: ArrayLike<unknown> | undefined,
  n: number,
): void {
  if (values !== undefined && values.length !== n) {
    throw new RangeError(`${method}: ${field} has ${values.length} entries for ${n} sequences`);
  }
}

/** Number of groups; throws unless `n` is a positive multiple of a positive integer `groupSize`. */
export function groupCount(method: string, n: number, groupSize: number): number {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new RangeError(`${method}: groupSize must be a positive integer, got ${groupSize}`);
  }
  if (n % groupSize !== 0) {
    throw new RangeError(`${method}: ${n} sequences are not a multiple of groupSize ${groupSize}`);
  }
  return n / groupSize;
}

// ---------------------------------------------------------------------------------------------
// Masked reductions (float64)

/** Whether position `t` counts. NaN in the mask counts as 0. */
export function isOn(mask: Row, t: number): boolean {
  return mask[t] > 0;
}

/** Number of counted positions of one row. */
export function maskedCount(mask: Row): number {
  let n = 0;
  for (let t = 0; t < mask.length; t++) if (mask[t] > 0) n++;
  return n;
}

/** `sum_t m_t * row_t` over one row; masked-out values are never read into the sum. */
export function maskedSum(row: Row, mask: Row): number {
  let s = 0;
  for (let t = 0; t < row.length; t++) if (mask[t] > 0) s += row[t];
  return s;
}

/** Token mean of `rows` over counted positions of the sequences in `keep` (all by default). */
export function maskedTokenMean(
  rows: readonly Row[],
  mask: readonly Row[],
  keep?: readonly boolean[],
): number {
  let s = 0, n = 0;
  for (let b = 0; b < rows.length; b++) {
    if (keep && !keep[b]) continue;
    for (let t = 0; t < rows[b].length; t++) {
      if (mask[b][t] > 0) {
        s += rows[b][t];
        n++;
      }
    }
  }
  return n > 0 ? s / n : 0;
}

/** Count of non-finite values at counted positions of row `b` across the given arrays. */
export function nonFiniteAt(
  b: number,
  mask: readonly Row[],
  ...arrays: (readonly Row[] | undefined)[]
): number {
  let n = 0;
  const m = mask[b];
  for (const rows of arrays) {
    if (!rows) continue;
    const r = rows[b];
    for (let t = 0; t < r.length; t++) if (m[t] > 0 && !Number.isFinite(r[t])) n++;
  }
  return n;
}

/** Zero gradients with the shapes of `logp`. */
export function zeroGrads(logp: readonly Row[]): Float32Array[] {
  return logp.map((r) => new Float32Array(r.length));
}

// ---------------------------------------------------------------------------------------------
// Scalar helpers

/** `log(1 + e^x)` without overflow. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** `log sigmoid(x) = -softplus(-x)`. */
export function logSigmoid(x: number): number {
  return -softplus(-x);
}

/** `1 / (1 + e^-x)` without overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * Schulman's k3 estimator of KL(pi || ref) at one token, and its derivative in `logp`:
 * `kl = exp(ref - logp) - (ref - logp) - 1`, `d kl / d logp = 1 - exp(ref - logp)`.
 */
export function k3(ref: number, logp: number): { kl: number; dkl: number } {
  const d = ref - logp;
  const e = Math.exp(d);
  return { kl: e - d - 1, dkl: 1 - e };
}

/** Mean of a list (0 for an empty list). */
export function mean(xs: ArrayLike<number>): number {
  if (xs.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Sample standard deviation (n - 1); 0 for fewer than two values or all-equal values. */
export function sampleStd(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (n < 2 || allEqual(xs, 0, n)) return 0;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < n; i++) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

/** Whether `xs[start..end)` are all the same number (exactly). */
export function allEqual(xs: ArrayLike<number>, start: number, end: number): boolean {
  for (let i = start + 1; i < end; i++) if (xs[i] !== xs[start]) return false;
  return true;
}

/**
 * Per-group flags: true where every reward of the group is finite. Groups are consecutive
 * blocks of `groupSize`.
 */
export function finiteGroups(rewards: ArrayLike<number>, groupSize: number): boolean[] {
  const groups = rewards.length / groupSize;
  const ok: boolean[] = [];
  for (let g = 0; g < groups; g++) {
    let good = true;
    for (let j = 0; j < groupSize; j++) {
      if (!Number.isFinite(rewards[g * groupSize + j])) good = false;
    }
    ok.push(good);
  }
  return ok;
}

/**
 * The group-reward metrics shared by group methods, over the groups flagged in `okGroup`:
 * `reward` (mean), `reward_std` (mean of per-group sample std, as TRL logs it) and
 * `frac_reward_zero_std` (fraction of groups whose rewards are all equal).
 */
export function groupRewardMetrics(
  rewards: ArrayLike<number>,
  groupSize: number,
  okGroup: readonly boolean[],
): Record<string, number> {
  let sum = 0, n = 0, stdSum = 0, zero = 0, groups = 0;
  for (let g = 0; g < okGroup.length; g++) {
    if (!okGroup[g]) continue;
    const slice = Array.from({ length: groupSize }, (_, j) => rewards[g * groupSize + j]);
    for (const r of slice) sum += r;
    n += groupSize;
    stdSum += sampleStd(slice);
    if (allEqual(slice, 0, groupSize)) zero++;
    groups++;
  }
  return {
    reward: n > 0 ? sum / n : 0,
    reward_std: groups > 0 ? stdSum / groups : 0,
    frac_reward_zero_std: groups > 0 ? zero / groups : 0,
  };
}

/**
 * Length and entropy metrics: `completions/mean_length` (mean counted tokens per sequence,
 * over all sequences) and, when entropies are given, `entropy` (token mean over kept
 * sequences).
 */
export function sequenceMetrics(
  mask: readonly Row[],
  entropy: readonly Row[] | undefined,
  keep: readonly boolean[],
): Record<string, number> {
  const out: Record<string, number> = {};
  let len = 0;
  for (const m of mask) len += maskedCount(m);
  out["completions/mean_length"] = mask.length > 0 ? len / mask.length : 0;
  if (entropy) {
    const kept = keep.map((k, b) => k && nonFiniteAt(b, mask, entropy) === 0);
    out.entropy = maskedTokenMean(entropy, mask, kept);
  }
  return out;
}

/**
 * The KL coefficient actually used: `beta` when given (an error if it is positive and no
 * reference log-probs are given), else `fallback` when `ref` is given, else 0.
 */
export function klCoef(
  method: string,
  beta: number | undefined,
  ref: readonly Row[] | undefined,
  fallback: number,
): number {
  if (beta !== undefined) {
    if (!(beta >= 0)) throw new RangeError(`${method}: beta must be >= 0, got ${beta}`);
    if (beta > 0 && !ref) {
      throw new Error(`${method}: beta = ${beta} needs reference log-probs (ref), none given`);
    }
    return beta;
  }
  return ref ? fallback : 0;
}
