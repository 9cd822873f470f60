/**
 * Math scoring: extract the final answer from a response and compare it with
 * the gold answer.
 */
import { extractAnswer, type ExtractOptions } from "./extract.ts";
import { isEquivalent } from "./equivalence.ts";

/**
 * The final answer in `text` (same as {@link extractAnswer}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extract } from "./score.ts";
 * assert.equal(extract("The area is \\boxed{\\frac{\\sqrt{3}}{4}}."), "\\frac{\\sqrt{3}}{4}");
 * assert.equal(extract("She pays 5 + 3 = 8 dollars.\n#### 8"), "8");
 * assert.equal(extract("no answer here"), null);
 * ```
 */
export function extract(text: string, opts?: ExtractOptions): string | null {
  return extractAnswer(text, opts);
}

/**
 * 1 when the answer extracted from `response` is equivalent to `gold`, else 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { score } from "./score.ts";
 * assert.equal(score("so x = \\boxed{\\dfrac{1}{2}}", "0.5"), 1);
 * assert.equal(score("The final answer is 1,000.", "1000"), 1);
 * assert.equal(score("\\boxed{[0, 1]}", "[0,1)"), 0);
 * assert.equal(score("I am not sure.", "3"), 0);
 * ```
 */
export function score(response: string, gold: string): 0 | 1 {
  const got = extractAnswer(response);
  return got !== null && isEquivalent(gold, got) ? 1 : 0;
}

/**
 * Reward for RL: the binary {@link score} as a number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reward } from "./score.ts";
 * assert.equal(reward("\\boxed{2\\sqrt{2}}", "\\sqrt{8}"), 1);
 * assert.equal(reward("\\boxed{3}", "4"), 0);
 * ```
 */
export function reward(response: string, gold: string): number {
  return score(response, gold);
}
