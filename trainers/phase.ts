/**
 * The one training loop: every method runs through `runPhase`. A step picks its slice of the
 * data deterministically from (seed, step), so a resumed run sees exactly the batches of an
 * uninterrupted one; builds token sequences (supervised pairs, preference pairs, or on-policy
 * rollouts scored by the task's verifier); runs `optimizerStep` with the method's objective;
 * logs metrics; and checkpoints every `checkpointEvery` steps and at the end.
 */
import { AdamW } from "../engine/adamw.ts";
import type { Qwen2 } from "../engine/qwen2.ts";
import { Rng } from "../engine/rng.ts";
import type { Tokenizer } from "../engine/tokenizer.ts";
import { type ObjectiveResult, objectives, type TrainerName } from "./objective.ts";
import { rewardStats, rollout } from "./rollout.ts";
import { completionMask, type ForwardView, type MicroBatch, optimizerStep } from "./step.ts";
import type { Task } from "./tasks.ts";

/** Hyperparameters of one phase (the resolved run configuration maps onto this). */
export interface PhaseOptions {
  trainer: TrainerName;
  steps: number;
  /** Sequences (SFT), pairs (DPO family) or prompts (RL) per optimizer step. */
  batchSize: number;
  /** Micro-batches per step (batchSize must divide by it). */
  accumulation: number;
  lr: number;
  warmupSteps: number;
  schedule: "cosine" | "constant";
  minLrRatio: number;
  weightDecay: number;
  adamBetas: [number, number];
  adamEps: number;
  clipNorm: number;
  seed: number;
  /** RL: samples per prompt and sampling settings. */
  groupSize: number;
  temperature: number;
  topP?: number;
  topK?: number;
  maxNewTokens: number;
  /**
   * RL reward: the task's dense reward, or 1 for a verified-correct completion and 0 otherwise.
   * LENS always uses the binary reward (its calibration is defined for correct/wrong only).
   */
  reward?: "dense" | "binary";
  /** Passed to the objective as is (beta, eps, alpha, lambda, mining, aggregation, ...). */
  objective: Record<string, unknown>;
}

export interface SftExample {
  prompt: string;
  completion: string;
}

export interface PreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Verifier weight inputs for wdpo. */
  wrongness?: number;
  confidence?: number;
  perplexity?: number;
  weight?: number;
}

/** What a phase trains on. */
export type PhaseData<P> =
  | { kind: "sft"; examples: SftExample[] }
  | { kind: "pairs"; pairs: PreferencePair[] }
  | {
    kind: "rl";
    task: Task<P>;
    problems: P[];
    /** Hard-negative GRPO: a synthetic wrong completion per problem (null: none). */
    negative?: (p: P) => string | null;
    /** NSA: per completion, which character spans belong to correct steps. */
    correctSpans?: (completion: string, p: P) => [number, number][];
  };

export interface StepLog {
  step: number;
  metrics: Record<string, number>;
}

export interface PhaseHooks {
  /** After every step, with the metrics row; returning true stops the phase there. */
  onStep?: (log: StepLog) => Promise<boolean | void> | boolean | void;
  /** Sampling progress inside a step (RL). */
  onGenerate?: (step: number, active: number) => void;
}

/** Learning rate at optimizer step `step` (1-based): linear warmup, then cosine or constant. */
export function scheduleLr(o: PhaseOptions, step: number): number {
  if (o.warmupSteps > 0 && step <= o.warmupSteps) return (o.lr * step) / o.warmupSteps;
  if (o.schedule === "constant") return o.lr;
  const span = Math.max(1, o.steps - o.warmupSteps);
  const p = Math.min(1, Math.max(0, (step - o.warmupSteps) / span));
  const min = o.lr * o.minLrRatio;
  return min + (o.lr - min) * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Items for step `step` (0-based): consecutive slices of per-epoch seeded shuffles. */
export function stepItems<T>(items: readonly T[], step: number, size: number, seed: number): T[] {
  if (items.length === 0) throw new RangeError("no training data");
  const out: T[] = [];
  let pos = step * size;
  while (out.length < size) {
    const epoch = Math.floor(pos / items.length);
    const order = Array.from(items.keys());
    new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0).shuffle(order);
    out.push(items[order[pos % items.length]]);
    pos++;
  }
  return out;
}

/** The AdamW of a model, with no weight decay on norms and biases. */
export function makeOptimizer(model: Qwen2, o: PhaseOptions): AdamW {
  const grads = model.grads ?? model.zeroGrads();
  return new AdamW(
    model.dev,
    [...model.params].map(([name, param]) => ({
      name,
      param,
      grad: grads.get(name)!,
      weightDecay: name.endsWith(".bias") || name.endsWith("norm.weight") ? 0 : o.weightDecay,
    })),
    {
      lr: o.lr,
      beta1: o.adamBetas[0],
      beta2: o.adamBetas[1],
      eps: o.adamEps,
      weightDecay: o.weightDecay,
      maxGradNorm: o.clipNorm,
    },
  );
}

function encodePair(tok: Tokenizer, prompt: string, completion: string) {
  const p = tok.encode(prompt);
  const c = tok.encode(completion);
  const eos = tok.eosTokenIds[0];
  return { seq: [...p, ...c, ...(eos === undefined ? [] : [eos])], promptLen: p.length };
}

function splitEven<T>(rows: readonly T[], parts: number): T[][] {
  const size = rows.length / parts;
  return Array.from({ length: parts }, (_, i) => rows.slice(i * size, (i + 1) * size));
}

/** Token positions whose target character range overlaps a correct span (NSA masks). */
function spanMask(
  tok: Tokenizer,
  completionTokens: readonly number[],
  spans: readonly [number, number][],
  promptLen: number,
  rowLen: number,
): Float32Array {
  const m = new Float32Array(rowLen);
  if (spans.length === 0) return m;
  let prev = 0;
  for (let i = 0; i < completionTokens.length; i++) {
    const end = tok.decode(completionTokens.slice(0, i + 1), { skipSpecialTokens: true }).length;
    const start = prev;
    prev = end;
    if (spans.some(([a, b]) => start < b && end > a)) {
      const t = promptLen - 1 + i;
      if (t < rowLen) m[t] = 1;
    }
  }
  return m;
}

/**
 * Runs optimizer steps `from + 1 .. o.steps` of a phase. `from` > 0 resumes (weights and moments
 * already restored into `model` / `opt`).
 */
export async function runPhase<P>(
  model: Qwen2,
  ref: Qwen2 | null,
  tok: Tokenizer,
  opt: AdamW,
  o: PhaseOptions,
  data: PhaseData<P>,
  from: number,
  hooks: PhaseHooks = {},
): Promise<void> {
  const fn = objectives[o.trainer] as (inputs: unknown) => ObjectiveResult;
  for (let step = from + 1; step <= o.steps; step++) {
    const t0 = performance.now();
    const lr = scheduleLr(o, step);
    const extra: Record<string, number> = {};
    let micros: MicroBatch[];
    let build: (v: ForwardView) => ObjectiveResult;
    // The reference's log-probs where the objectives read them: the completions (its LM head
    // skips the prompts).
    const refLogp = async (mb: MicroBatch) =>
      ref
        ? (await ref.logprobsWith(mb.seqs, { rows: completionMask(mb.seqs, mb.promptLens) })).logp
        : null;
    if (data.kind === "sft") {
      const ex = stepItems(data.examples, step - 1, o.batchSize, o.seed);
      const enc = ex.map((e) => encodePair(tok, e.prompt, e.completion));
      micros = splitEven(enc, o.accumulation).map((rows) => ({
        seqs: rows.map((r) => r.seq),
        promptLens: rows.map((r) => r.promptLen),
      }));
      build = (v) => fn({ ...o.objective, logp: v.logp, mask: v.mask, entropy: v.entropy });
    } else if (data.kind === "pairs") {
      if (!ref) throw new Error(`${o.trainer} needs a reference model`);
      const pairs = stepItems(data.pairs, step - 1, o.batchSize, o.seed);
      const groups = splitEven(pairs, o.accumulation);
      micros = groups.map((ps) => {
        const rows = ps.flatMap((p) => [
          encodePair(tok, p.prompt, p.chosen),
          encodePair(tok, p.prompt, p.rejected),
        ]);
        return { seqs: rows.map((r) => r.seq), promptLens: rows.map((r) => r.promptLen) };
      });
      const refs: (Float32Array[] | null)[] = [];
      for (const mb of micros) refs.push(await refLogp(mb));
      build = (v) => {
        const ps = groups[v.micro];
        const w: Record<string, unknown> = {};
        if (o.trainer === "wdpo") {
          if (ps.every((p) => p.weight !== undefined)) w.rawWeights = ps.map((p) => p.weight);
          else {
            w.wrongness = ps.map((p) => p.wrongness ?? 1);
            w.confidence = ps.map((p) => p.confidence ?? 1);
            w.perplexity = ps.map((p) => p.perplexity ?? 1);
          }
        }
        return fn({
          ...o.objective,
          ...w,
          logp: v.logp,
          mask: v.mask,
          entropy: v.entropy,
          ref: refs[v.micro],
        });
      };
    } else {
      const G = o.groupSize;
      const problems = stepItems(data.problems, step - 1, o.batchSize, o.seed);
      // NSA learns from a fixed behaviour policy (the reference); the others sample the policy.
      const sampler = o.trainer === "nsa" ? (ref ?? model) : model;
      const r = await rollout(sampler, tok, data.task, problems, {
        samples: G,
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        topP: o.topP,
        topK: o.topK,
        seed: (o.seed * 7919 + step) >>> 0,
      }, (s, a) => hooks.onGenerate?.(s, a));
      extra["timing/generation"] = r.timing.generation;
      extra["timing/scoring"] = r.timing.scoring;
      const binary = o.trainer === "lens" || o.reward === "binary";
      const rewards = binary ? r.correct.map((c) => (c ? 1 : 0)) : r.rewards;
      Object.assign(extra, rewardStats(rewards, G));
      extra["completions/mean_length"] = r.completionTokens.reduce((a, t) => a + t.length, 0) /
        Math.max(1, r.completionTokens.length);
      extra["accuracy"] = r.correct.filter(Boolean).length / Math.max(1, r.correct.length);
      const idx = Array.from(r.seqs.keys());
      const parts = splitEven(idx, o.accumulation);
      micros = parts.map((ix) => ({
        seqs: ix.map((i) => r.seqs[i]),
        promptLens: ix.map((i) => r.promptLens[i]),
      }));
      const needRef = ref !== null && Number(o.objective.beta ?? 1) !== 0;
      const refs: (Float32Array[] | null)[] = [];
      for (const mb of micros) refs.push(needRef || o.trainer === "nsa" ? await refLogp(mb) : null);
      build = (v) => {
        const ix = parts[v.micro];
        const common: Record<string, unknown> = {
          ...o.objective,
          logp: v.logp,
          mask: v.mask,
          entropy: v.entropy,
          rewards: ix.map((i) => rewards[i]),
          groupSize: G,
          truncated: ix.map((i) => r.truncated[i]),
        };
        if (refs[v.micro] && o.trainer !== "nsa") common.ref = refs[v.micro];
        if (o.trainer === "nsa") {
          common.old = refs[v.micro] ?? v.logp;
          common.correct = ix.map((i) => r.correct[i]);
          common.stepCorrect = ix.map((i, k) =>
            spanMask(
              tok,
              r.completionTokens[i],
              data.correctSpans?.(r.completions[i], r.problems[i]) ?? [],
              r.promptLens[i],
              v.logp[k].length,
            )
          );
        }
        if (o.trainer === "hnr") {
          common.samples = ix.map((i) => r.completionTokens[i]);
          common.negatives = ix.map((i) => {
            const neg = data.negative?.(r.problems[i]);
            return neg ? tok.encode(neg) : null;
          });
        }
        return fn(common);
      };
    }
    const out = await optimizerStep(model, opt, micros, lr, build);
    const seconds = (performance.now() - t0) / 1000;
    const metrics: Record<string, number> = {
      ...out.metrics,
      ...extra,
      loss: out.loss,
      grad_norm: out.gradNorm,
      learning_rate: lr,
      skipped: out.skipped ? 1 : 0,
      nonfinite_grads: out.nonfinite,
      step_time: seconds,
      tokens_per_second: out.tokens / seconds,
      "timing/forward": out.timing.forward,
      "timing/backward": out.timing.backward,
      "timing/optimizer": out.timing.optimizer,
    };
    if (await hooks.onStep?.({ step, metrics })) return;
  }
}
