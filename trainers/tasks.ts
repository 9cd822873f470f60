/**
 * Tasks the loop trains and evaluates on: how a problem becomes a prompt, how a completion is
 * rewarded (dense training reward) and judged correct (the official verifier's full marks), and
 * what a supervised completion looks like. Countdown uses the papers' base-model prompt (the
 * completion opens with <think>); GSM8K uses the model's chat template.
 */
import { Rng } from "../engine/rng.ts";
import type { Tokenizer } from "../engine/tokenizer.ts";
import {
  type GenerateOptions,
  generateProblems,
  type Problem as CountdownProblem,
} from "../verifiers/countdown/problems.ts";
import { basePrompt } from "../verifiers/countdown/prompt.ts";
import {
  reward as countdownReward,
  score as countdownScore,
} from "../verifiers/countdown/score.ts";
import { solve } from "../verifiers/countdown/solver.ts";
import { makeTrace } from "../verifiers/countdown/traces.ts";
import { DataError, readJsonl } from "./jsonl.ts";
import { extractAnswer } from "../verifiers/math/extract.ts";
import { isEquivalent } from "../verifiers/math/equivalence.ts";

export type TaskName = "countdown" | "gsm8k" | "math500";
export type { CountdownProblem };

export interface Task<P> {
  name: TaskName;
  /** The prompt text (already rendered through a chat template where the task uses one). */
  prompt(p: P, tokenizer: Tokenizer): string;
  /** Training reward of a completion. */
  reward(completion: string, p: P): number;
  /** Whether the official verifier gives full marks (pass@k counts these). */
  correct(completion: string, p: P): boolean;
  /** A supervised completion for SFT (a solver-written trace, or the data set's solution). */
  sftCompletion(p: P, rng: Rng): string;
  /** Generation stops once the completion contains one of these. */
  stopStrings: string[];
}

export const countdownTask: Task<CountdownProblem> = {
  name: "countdown",
  // A problem from user data may carry its own prompt text, used as given.
  prompt: (p) => (p as { prompt?: string }).prompt ?? basePrompt(p) + "\n",
  reward: (c, p) => countdownReward(c, p.numbers, p.target),
  correct: (c, p) => countdownScore(c, p.numbers, p.target) === 1,
  sftCompletion: (p, rng) => {
    const sol = solve(p.numbers, p.target);
    if (!sol) throw new Error(`countdown problem ${JSON.stringify(p)} has no solution`);
    return makeTrace(p, sol, { rng }).response;
  },
  stopStrings: ["</answer>"],
};

/**
 * Countdown problems for training and a disjoint held-out set (no training problem has the same
 * numbers and target as a held-out one), both from `seed`.
 */
export function countdownSplits(
  opts: GenerateOptions,
  heldCount: number,
  trainCount: number,
  seed: number,
): { train: CountdownProblem[]; held: CountdownProblem[] } {
  const held = generateProblems(heldCount, seed * 2 + 1, opts);
  const key = (p: CountdownProblem) =>
    `${[...p.numbers].sort((a, b) => a - b).join(",")}=${p.target}`;
  const heldKeys = new Set(held.map(key));
  const train = generateProblems(trainCount, seed * 2 + 2, opts)
    .filter((p) => !heldKeys.has(key(p)));
  return { train, held };
}

/** SFT examples for a task: one supervised completion per problem, seeded. */
export function sftExamples<P>(
  task: Task<P>,
  problems: readonly P[],
  tokenizer: Tokenizer,
  seed: number,
): { prompt: string; completion: string }[] {
  const rng = new Rng(seed);
  return problems.map((p) => ({
    prompt: task.prompt(p, tokenizer),
    completion: task.sftCompletion(p, rng),
  }));
}

/** A GSM8K problem: question, worked solution (ending in `#### answer`) and the answer. */
export interface Gsm8kProblem {
  question: string;
  solution: string;
  answer: string;
  /** A prompt text given by user data, used as given (no chat template). */
  prompt?: string;
}

/** The shared GSM8K split ("train" / "test") or a JSONL file of the same format. */
export async function loadGsm8k(splitOrPath: string): Promise<Gsm8kProblem[]> {
  const path = splitOrPath === "train" || splitOrPath === "test"
    ? new URL(`../../shared/data/gsm8k/${splitOrPath}.jsonl`, import.meta.url).pathname
    : splitOrPath;
  const rows = await readJsonl(path, ["question", "answer"]);
  return rows.map((r, i) => {
    const m = /####\s*(.+?)\s*$/.exec(r.answer);
    if (!m) throw new DataError(`${path}:${i + 1}: the answer has no "#### " final answer`);
    return { question: r.question, solution: r.answer, answer: m[1].replace(/,/g, "") };
  });
}

/** The final number of a completion: after `####`, else "answer is", else the last number. */
export function gsm8kExtract(text: string): string | null {
  const hash = /####\s*(-?[\d,]*\.?\d+)/.exec(text);
  if (hash) return hash[1].replace(/,/g, "");
  const is = /answer is[^\d-]*(-?[\d,]*\.?\d+)/i.exec(text);
  if (is) return is[1].replace(/,/g, "");
  const all = text.match(/-?[\d,]*\.?\d+/g);
  return all ? all[all.length - 1].replace(/,/g, "") : null;
}

/** The math verifier's judgement of the extracted answer (`####`, boxed, or the last number). */
export function gsm8kCorrect(completion: string, p: Gsm8kProblem): boolean {
  return isEquivalent(p.answer, extractAnswer(completion, { lastNumberFallback: true }));
}

export const gsm8kTask: Task<Gsm8kProblem> = {
  name: "gsm8k",
  prompt: (p, tok) =>
    p.prompt ?? tok.applyChatTemplate([{
      role: "user",
      content: `${p.question}\nSolve step by step and end with "#### <answer>".`,
    }], { addGenerationPrompt: true }),
  reward: (c, p) => (gsm8kCorrect(c, p) ? 1 : 0),
  correct: (c, p) => gsm8kCorrect(c, p),
  sftCompletion: (p) => p.solution.replace(/<<[^>]*>>/g, ""),
  stopStrings: [],
};

/** A MATH-500 problem (the shared test split). */
export interface Math500Problem {
  problem: string;
  answer: string;
  subject: string;
  level: number;
}

/** The shared MATH-500 test set. */
export async function loadMath500(): Promise<Math500Problem[]> {
  const path = new URL("../../shared/data/math500/test.jsonl", import.meta.url).pathname;
  const rows = await readJsonl(path, ["problem", "answer", "subject"]);
  return rows.map((r) => ({
    problem: r.problem,
    answer: r.answer,
    subject: r.subject,
    level: Number(r.level),
  }));
}

export const math500Task: Task<Math500Problem> = {
  name: "math500",
  prompt: (p, tok) =>
    tok.applyChatTemplate([{
      role: "user",
      content:
        `${p.problem}\nPlease reason step by step, and put your final answer within \\boxed{}.`,
    }], { addGenerationPrompt: true }),
  reward: (c, p) => (isEquivalent(p.answer, extractAnswer(c)) ? 1 : 0),
  correct: (c, p) => isEquivalent(p.answer, extractAnswer(c)),
  sftCompletion: () => {
    throw new Error("math500 is an evaluation set: no SFT completions");
  },
  stopStrings: [],
};
