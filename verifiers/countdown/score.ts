/**
 * The Countdown verifier: `extract` the last `<answer>...</answer>`, the official `score`
 * (0 / 0.1 / 1, DESIGN.md "Verifiers") and the dense training `reward`, which reuses `score`.
 *
 * The equation is read by our own tokenizer and parser (expression.ts, strict mode) and
 * evaluated in exact rationals; nothing is passed to `eval`. Accepted: non-negative integer
 * literals, `+ - * /`, parentheses, unary minus, whitespace. Rejected (the answer then scores
 * 0.1): `**`, `//`, decimals such as `2.5`, letters such as `x`, `=`, leading zeros such as
 * `05`, unary plus. The widely used reference scorer reads `2.5` as the two numbers 2 and 5 and
 * evaluates `**` and `//` with Python; this one does not.
 */
import { literals, parseExpression } from "./expression.ts";
import { evaluate } from "./expression.ts";
import { abs, fromNumber, type Rational, sub, toNumber } from "./rational.ts";

/** Answers longer than this do not parse (bounded time on hostile input). */
export const MAX_ANSWER_CHARS = 10_000;

/** Options of `score` and `reward`. */
export interface ScoreOptions {
  /**
   * Read only the text after the last newline, as the reference scorer does
   * (`solution_str.split('\n')[-1]`): a response ending in a newline then has no answer.
   * Default false (the whole response).
   */
  lastLineOnly?: boolean;
}

/**
 * The text of the last `<answer>...</answer>` (the last closing tag and the nearest opening tag
 * before it), trimmed; null when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extract } from "./score.ts";
 * assert.equal(extract("<answer>1 + 2</answer> then <answer> (3 - 1) * 2 </answer>"), "(3 - 1) * 2");
 * assert.equal(extract("no tags here"), null);
 * assert.equal(extract("<answer>unclosed"), null);
 * ```
 */
export function extract(text: string): string | null {
  const close = text.lastIndexOf("</answer>");
  if (close < 0) return null;
  const open = text.lastIndexOf("<answer>", close);
  if (open < 0) return null;
  return text.slice(open + "<answer>".length, close).trim();
}

/** Why an answer equation is not valid, or its exact value. */
export type EquationCheck =
  | { ok: true; value: Rational }
  | { ok: false; reason: "parse" | "numbers" | "divide_by_zero"; detail: string };

/**
 * Checks an equation against the numbers: it parses (strict), its literals are the numbers as a
 * multiset, and no division by zero occurs; returns its exact value.
 */
export function checkEquation(equation: string, numbers: readonly number[]): EquationCheck {
  if (equation.length > MAX_ANSWER_CHARS) {
    return { ok: false, reason: "parse", detail: `longer than ${MAX_ANSWER_CHARS} characters` };
  }
  const parsed = parseExpression(equation);
  if (!parsed.ok) return { ok: false, reason: "parse", detail: parsed.error };
  const used = literals(parsed.expr).sort();
  const given = numbers.map((n) => String(n)).sort();
  if (used.length !== given.length || used.some((u, i) => u !== given[i])) {
    return {
      ok: false,
      reason: "numbers",
      detail: `uses [${used.join(", ")}], given [${given.join(", ")}]`,
    };
  }
  const value = evaluate(parsed.expr);
  if (value === null) return { ok: false, reason: "divide_by_zero", detail: "division by zero" };
  return { ok: true, value };
}

/** `|v - t| < 1e-5`, decided exactly. */
function hits(v: Rational, target: Rational): boolean {
  const diff = abs(sub(v, target));
  return diff.n * 100000n < diff.d;
}

function answerOf(response: string, opts: ScoreOptions): string | null {
  const text = opts.lastLineOnly ? response.slice(response.lastIndexOf("\n") + 1) : response;
  return extract(text);
}

/**
 * Official score: 0 without an answer tag; 0.1 when the answer does not parse, does not use the
 * numbers exactly once (as a multiset), divides by zero or misses the target; 1 when
 * `|value - target| < 1e-5`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { score } from "./score.ts";
 * assert.equal(score("<think>44 - 19 = 25</think>\n<answer>44 - 19 + 35</answer>", [44, 19, 35], 60), 1);
 * assert.equal(score("<answer>44 + 19 + 35</answer>", [44, 19, 35], 60), 0.1); // misses
 * assert.equal(score("<answer>44 ** 19</answer>", [44, 19], 60), 0.1); // not our grammar
 * assert.equal(score("44 - 19 + 35", [44, 19, 35], 60), 0); // no answer tag
 * ```
 */
export function score(
  response: string,
  numbers: readonly number[],
  target: number,
  opts: ScoreOptions = {},
): 0 | 0.1 | 1 {
  const answer = answerOf(response, opts);
  if (answer === null) return 0;
  const check = checkEquation(answer, numbers);
  if (!check.ok) return 0.1;
  return hits(check.value, fromNumber(target)) ? 1 : 0.1;
}

/**
 * Dense training reward, built on `score`: 1 when the score is 1; for a valid equation (parses,
 * uses the numbers exactly once, no division by zero) with the wrong value
 * `0.1 + 0.5 * max(0, 1 - |v - target| / max(1, |target|))`; otherwise 0. "Otherwise" includes
 * an answer tag whose equation does not parse, uses the wrong numbers or divides by zero: such
 * an answer is malformed for this reward (the official score still gives it 0.1), so reusing or
 * dropping a number never earns closeness credit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reward } from "./score.ts";
 * assert.equal(reward("<answer>44 - 19 + 35</answer>", [44, 19, 35], 60), 1);
 * assert.equal(reward("<answer>44 - 19 * 35</answer>", [44, 19, 35], 60), 0.1); // far off
 * assert.equal(reward("<answer>44 + 35 - 19 * 1</answer>", [44, 19, 35, 1], 61), 0.1 + 0.5 * (1 - 1 / 61));
 * assert.equal(reward("<answer>44 + 44</answer>", [44, 19, 35], 60), 0); // reuses 44
 * ```
 */
export function reward(
  response: string,
  numbers: readonly number[],
  target: number,
  opts: ScoreOptions = {},
): number {
  const s = score(response, numbers, target, opts);
  if (s !== 0.1) return s;
  const check = checkEquation(answerOf(response, opts)!, numbers);
  if (!check.ok) return 0;
  const t = fromNumber(target);
  const dist = toNumber(abs(sub(check.value, t)));
  return 0.1 + 0.5 * Math.max(0, 1 - dist / Math.max(1, Math.abs(target)));
}
