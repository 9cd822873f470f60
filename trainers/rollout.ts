/**
 * Rollouts: G samples per prompt from the current policy, decoded and scored by the task's
 * verifier. The loop builds every on-policy batch (RLOO, GRPO, LENS, hard-negative GRPO) and
 * every evaluation from this one function.
 */
import type { Qwen2 } from "../engine/qwen2.ts";
import type { Tokenizer } from "../engine/tokenizer.ts";
import type { Task } from "./tasks.ts";

export interface SamplingConfig {
  samples: number;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
}

/** Samples of a batch of prompts, prompt-major: row i * G + g is sample g of prompt i. */
export interface Rollout<P> {
  problems: P[];
  /** Prompt + completion tokens per row. */
  seqs: number[][];
  promptLens: number[];
  completions: string[];
  /** Completion token ids per row. */
  completionTokens: number[][];
  rewards: number[];
  /** Verified correct (the official score's full marks). */
  correct: boolean[];
  /** Generation hit maxNewTokens without EOS or stop string. */
  truncated: boolean[];
  /** log p of each sampled token at sampling time (temperature 1, unfiltered). */
  sampleLogprobs: number[][];
  timing: { generation: number; scoring: number };
}

/** Samples `cfg.samples` completions per problem and scores them with the task. */
export async function rollout<P>(
  model: Qwen2,
  tokenizer: Tokenizer,
  task: Task<P>,
  problems: readonly P[],
  cfg: SamplingConfig,
  onStep?: (step: number, active: number) => void,
): Promise<Rollout<P>> {
  const prompts = problems.map((p) => tokenizer.encode(task.prompt(p, tokenizer)));
  const t0 = performance.now();
  const gens = await model.generate(prompts, {
    samples: cfg.samples,
    maxNewTokens: cfg.maxNewTokens,
    temperature: cfg.temperature,
    topK: cfg.topK,
    topP: cfg.topP,
    seed: cfg.seed,
    eosTokenIds: tokenizer.eosTokenIds,
    stopStrings: task.stopStrings,
    vocabLimit: tokenizer.vocabSize,
    onStep,
  });
  const t1 = performance.now();
  const out: Rollout<P> = {
    problems: [],
    seqs: [],
    promptLens: [],
    completions: [],
    completionTokens: [],
    rewards: [],
    correct: [],
    truncated: [],
    sampleLogprobs: [],
    timing: { generation: (t1 - t0) / 1000, scoring: 0 },
  };
  for (const g of gens) {
    const p = problems[g.prompt];
    const text = tokenizer.decode(g.tokens, { skipSpecialTokens: true });
    out.problems.push(p);
    out.seqs.push([...prompts[g.prompt], ...g.tokens]);
    out.promptLens.push(prompts[g.prompt].length);
    out.completions.push(text);
    out.completionTokens.push(g.tokens);
    out.rewards.push(task.reward(text, p));
    out.correct.push(task.correct(text, p));
    out.truncated.push(g.finishReason === "length");
    out.sampleLogprobs.push(g.logprobs);
  }
  out.timing.scoring = (performance.now() - t1) / 1000;
  return out;
}

/** Mean, and the share of groups of `g` whose rewards are all equal (no learning signal). */
export function rewardStats(rewards: readonly number[], g: number) {
  const n = rewards.length;
  const mean = rewards.reduce((a, b) => a + b, 0) / Math.max(1, n);
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / Math.max(1, n));
  let zero = 0;
  for (let i = 0; i + g <= n; i += g) {
    const grp = rewards.slice(i, i + g);
    if (grp.every((r) => r === grp[0])) zero++;
  }
  return { reward: mean, reward_std: std, frac_reward_zero_std: zero / Math.max(1, n / g) };
}
