/**
 * One optimizer step, shared by every trainer: micro-batches of token sequences go through the
 * model's forward, the method's pure objective turns their log-probs into `dlogp`, the backward
 * accumulates gradients, and the fused AdamW steps (global-norm clipping; a non-finite gradient
 * skips the step on the GPU, leaving weights and moments as they were).
 *
 * Accumulation: each micro-batch's objective is its own mean, so its `dlogp` is scaled by
 * 1 / (number of micro-batches); the step's gradient is the mean of the micro-batch gradients
 * (as TRL does). Metrics are averaged over micro-batches the same way.
 *
 * Mask convention: `logp[t]` predicts token `t + 1`, so with a prompt of P tokens the completion
 * positions are t >= P - 1.
 */
import type { AdamW, StepStats } from "../engine/adamw.ts";
import type { Qwen2 } from "../engine/qwen2.ts";
import type { ObjectiveResult, Row } from "./objective.ts";

/** Token sequences of one micro-batch, with their prompt lengths. */
export interface MicroBatch {
  seqs: number[][];
  promptLens: number[];
}

/** What the objective sees of one micro-batch after the forward. */
export interface ForwardView {
  logp: Float32Array[];
  entropy?: Float32Array[];
  mask: Float32Array[];
  micro: number;
}

/** Completion masks: 1 at positions t >= promptLen - 1 (the targets after the prompt). */
export function completionMask(
  seqs: readonly (readonly number[])[],
  promptLens: readonly number[],
) {
  return seqs.map((s, b) => {
    const m = new Float32Array(Math.max(0, s.length - 1));
    const p = promptLens[b];
    if (!Number.isInteger(p) || p < 1 || p > s.length) {
      throw new RangeError(`sequence ${b}: prompt length ${p} outside [1, ${s.length}]`);
    }
    m.fill(1, p - 1);
    return m;
  });
}

export interface StepOutcome extends StepStats {
  loss: number;
  metrics: Record<string, number>;
  tokens: number;
  timing: { forward: number; backward: number; optimizer: number };
}

/**
 * Forward + objective + backward over every micro-batch, then one AdamW step at `lr`. The
 * objective gets the policy log-probs (and entropies) of its micro-batch.
 */
export async function optimizerStep(
  model: Qwen2,
  opt: AdamW,
  micros: readonly MicroBatch[],
  lr: number,
  objective: (view: ForwardView) => ObjectiveResult,
): Promise<StepOutcome> {
  if (micros.length === 0) throw new RangeError("optimizerStep: no micro-batches");
  model.zeroGrads();
  const scale = 1 / micros.length;
  const sums: Record<string, number> = {};
  let loss = 0, tokens = 0, tf = 0, tb = 0;
  for (const [i, mb] of micros.entries()) {
    let t0 = performance.now();
    const mask = completionMask(mb.seqs, mb.promptLens);
    // The LM head runs on completion positions only: the objectives never read the others.
    const state = model.forward(mb.seqs, { train: true, entropy: true, rows: mask });
    const { logp, entropy } = await model.readLogprobs(state);
    tf += performance.now() - t0;
    const res = objective({ logp, entropy, mask, micro: i });
    checkGradShape(res.dlogp, logp);
    t0 = performance.now();
    model.backward(state, res.dlogp.map((r) => r.map((x) => x * scale)));
    await model.dev.sync();
    tb += performance.now() - t0;
    loss += res.loss * scale;
    for (const [k, v] of Object.entries(res.metrics)) sums[k] = (sums[k] ?? 0) + v * scale;
    tokens += mb.seqs.reduce((a, s) => a + s.length, 0);
  }
  const t0 = performance.now();
  const stats = await opt.stepWith(lr);
  const to = performance.now() - t0;
  return {
    ...stats,
    loss,
    metrics: sums,
    tokens,
    timing: { forward: tf / 1000, backward: tb / 1000, optimizer: to / 1000 },
  };
}

function checkGradShape(dlogp: readonly Row[], logp: readonly Row[]): void {
  if (dlogp.length !== logp.length) {
    throw new RangeError(`objective returned ${dlogp.length} dlogp rows for ${logp.length}`);
  }
}

/** Splits rows into `n` consecutive micro-batches of equal size (rows must divide evenly). */
export function splitMicro<T>(rows: readonly T[], n: number, unit = 1): T[][] {
  if (rows.length % (n * unit) !== 0) {
    throw new RangeError(
      `${rows.length} rows do not split into ${n} micro-batches of whole units of ${unit}`,
    );
  }
  const size = rows.length / n;
  return Array.from({ length: n }, (_, i) => rows.slice(i * size, (i + 1) * size));
}
