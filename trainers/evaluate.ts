/**
 * Evaluation: n samples per problem from the model, verified, reported as unbiased pass@k
 * averaged over problems (and seeds), with the mean reward and failure counts. Used between
 * training phases, by `deno task eval`, and by the experiment runner.
 */
import type { Qwen2 } from "../engine/qwen2.ts";
import type { Tokenizer } from "../engine/tokenizer.ts";
import { passAtK } from "../verifiers/pass_at_k.ts";
import { rollout } from "./rollout.ts";
import type { Task } from "./tasks.ts";

export interface EvalConfig {
  /** Samples per problem. */
  n: number;
  ks: number[];
  temperature: number;
  topP?: number;
  maxNewTokens: number;
  seeds: number[];
  /** Problems per generation batch (bounds the KV cache). */
  batchProblems?: number;
}

export interface EvalResult {
  problems: number;
  n: number;
  seeds: number[];
  passAtK: Record<string, number>;
  meanReward: number;
  /** Per problem and seed: correct samples out of n. */
  counts: { problem: number; seed: number; correct: number }[];
  /** Completions of the first problem batch, for a look at what the model writes. */
  examples: string[];
  seconds: number;
}

export async function evaluate<P>(
  model: Qwen2,
  tokenizer: Tokenizer,
  task: Task<P>,
  problems: readonly P[],
  cfg: EvalConfig,
  onProgress?: (done: number, total: number) => void,
): Promise<EvalResult> {
  const t0 = performance.now();
  const per = cfg.batchProblems ?? Math.max(1, Math.floor(64 / cfg.n));
  const counts: EvalResult["counts"] = [];
  let rewardSum = 0, samples = 0;
  const examples: string[] = [];
  const total = problems.length * cfg.seeds.length;
  let done = 0;
  for (const seed of cfg.seeds) {
    for (let i = 0; i < problems.length; i += per) {
      const batch = problems.slice(i, i + per);
      const r = await rollout(model, tokenizer, task, batch, {
        samples: cfg.n,
        maxNewTokens: cfg.maxNewTokens,
        temperature: cfg.temperature,
        topP: cfg.topP,
        seed: seed * 1_000_003 + i,
      });
      if (examples.length === 0) examples.push(...r.completions.slice(0, 4));
      for (let j = 0; j < batch.length; j++) {
        let c = 0;
        for (let g = 0; g < cfg.n; g++) {
          const row = j * cfg.n + g;
          if (r.correct[row]) c++;
          rewardSum += r.rewards[row];
          samples++;
        }
        counts.push({ problem: i + j, seed, correct: c });
      }
      done += batch.length;
      onProgress?.(done, total);
    }
  }
  const pass: Record<string, number> = {};
  for (const k of cfg.ks) {
    if (k > cfg.n) continue;
    pass[String(k)] = counts.reduce((a, c) => a + passAtK(cfg.n, c.correct, k), 0) /
      Math.max(1, counts.length);
  }
  return {
    problems: problems.length,
    n: cfg.n,
    seeds: cfg.seeds,
    passAtK: pass,
    meanReward: rewardSum / Math.max(1, samples),
    counts,
    examples,
    seconds: (performance.now() - t0) / 1000,
  };
}
