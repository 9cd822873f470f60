/**
 * Countdown prompts: the base-model prompt of DESIGN.md (the papers' Countdown instruction)
 * and a chat version for a chat template (`Tokenizer.applyChatTemplate`).
 */
import type { ChatMessage, Tokenizer } from "../../engine/tokenizer.ts";
import type { Problem } from "./problems.ts";

/** `[44, 19, 35]`, as Python prints a list. */
function list(numbers: readonly number[]): string {
  return `[${numbers.join(", ")}]`;
}

/**
 * The base-model prompt, word for word as DESIGN.md gives it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { basePrompt } from "./prompt.ts";
 * assert.ok(basePrompt({ numbers: [1, 2, 3], target: 6 }).startsWith(
 *   "Using the numbers [1, 2, 3], create an equation that equals 6.",
 * ));
 * ```
 */
export function basePrompt(problem: Problem): string {
  return `Using the numbers ${
    list(problem.numbers)
  }, create an equation that equals ${problem.target}. ` +
    "You can use basic arithmetic operations (+, -, *, /) and each number can only be used once. " +
    "Show your work in <think> </think> tags. " +
    "And return the final answer equation in <answer> </answer> tags, " +
    "for example <answer> (1 + 2) / 3 </answer>.";
}

/** The chat version: one user turn holding the base prompt. */
export function chatMessages(problem: Problem): ChatMessage[] {
  return [{ role: "user", content: basePrompt(problem) }];
}

/** The chat version rendered by a tokenizer's chat template, ready for the assistant's turn. */
export function chatPrompt(tokenizer: Tokenizer, problem: Problem): string {
  return tokenizer.applyChatTemplate(chatMessages(problem), { addGenerationPrompt: true });
}
