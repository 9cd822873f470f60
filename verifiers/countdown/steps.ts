/**
 * Step checker for reasoning text: finds every `a op b = c` (and chains `a op b op c = d`,
 * parentheses allowed, standard precedence) and marks it correct or wrong, with its character
 * span `[start, end)` in the text (BCPG-NSA masks tokens by these spans).
 *
 * Reading: at each `=` the left side is the longest run of expression characters on the same
 * line before it that parses with at least one binary operator (lenient mode: decimals,
 * `×`/`÷`/`x`/`−` accepted); the right side is a number right after it (`25`, `-3`, `3.5`, `7/2`).
 * A decimal right side with k places also counts as correct when it is the exact value rounded
 * (half away from zero or either way at a tie) or truncated to k places.
 *
 * Error propagation: every value has a latest source: a given number, a correct step or a wrong
 * step (the last one that wrote that value wins). A step with an operand whose latest source is a
 * wrong step is wrong ("propagated") even when its own arithmetic holds. A fresh attempt is
 * judged on its own: a restart phrase between steps ("let me try", "another way",
 * "alternatively", "start over", "doesn't work", "instead") forgets every wrong source.
 */
import { evaluate, type Expr, parseExpression } from "./expression.ts";
import { abs, eq, parseRational, type Rational, ratToString, sub } from "./rational.ts";

export interface CheckedStep {
  /** Span `[start, end)` of `lhs = rhs` in the text. */
  start: number;
  end: number;
  /** The left side as written, and the right side (the claimed result). */
  lhs: string;
  rhs: string;
  claimed: Rational;
  /** Exact value of the left side; null on division by zero. */
  value: Rational | null;
  /** The numbers the left side uses (literals, and written fractions below the root). */
  operands: Rational[];
  /** The arithmetic of this step alone holds. */
  arithmeticOk: boolean;
  /** Arithmetic holds and no operand comes from a wrong step. */
  correct: boolean;
  /** Why the step is wrong: its own arithmetic, or an operand from a wrong step. */
  reason: null | "arithmetic" | "propagated";
}

export interface StepCheckOptions {
  /** The problem's numbers: their values start as clean sources. */
  numbers?: readonly number[];
}

const EXPR_CHAR = /[0-9.+\-*/×÷·−x() \t]/;
const MAX_LHS = 200;
const RHS = /^[ \t]*([-−]?[ \t]?\d+(?:\.\d+)?(?:\/\d+)?)/;
const RESTART =
  /\b(?:let(?:'|’)?s try|let me try|try again|another (?:way|approach|attempt|option|combination|idea)|alternatively|start over|instead|does ?n[o']?t work|not work)/i;

/**
 * The values a left side builds on: its literals, plus every fraction `a / b` of two literals
 * below the root (a written rational operand such as `(8/3) * 3`).
 */
function operandsOf(e: Expr, out: Rational[] = [], root = true): Rational[] {
  if (e.kind === "num") out.push(e.value);
  else if (e.kind === "neg") operandsOf(e.arg, out, false);
  else {
    if (!root && e.op === "/" && e.left.kind === "num" && e.right.kind === "num") {
      const v = evaluate(e);
      if (v) out.push(v);
    }
    operandsOf(e.left, out, false);
    operandsOf(e.right, out, false);
  }
  return out;
}

/** Left side ending right before `eqPos`: [start, expr] or null. */
function findLhs(text: string, eqPos: number): { start: number; src: string; expr: Expr } | null {
  let s = eqPos;
  while (s > 0 && eqPos - s < MAX_LHS && EXPR_CHAR.test(text[s - 1])) s--;
  for (let i = s; i < eqPos; i++) {
    const c = text[i];
    if (!/[0-9(\-−]/.test(c)) continue;
    if (/[0-9.]/.test(text[i - 1] ?? "")) continue; // not the start of a number
    const src = text.slice(i, eqPos);
    const p = parseExpression(src, { lenient: true, maxTokens: 200 });
    if (!p.ok || p.expr.kind === "num") continue;
    if (p.expr.kind === "neg" && p.expr.arg.kind === "num") continue;
    return { start: i, src: src.trimEnd(), expr: p.expr };
  }
  return null;
}

function decimalPlaces(rhs: string): number {
  const m = /\.(\d+)/.exec(rhs);
  return m ? m[1].length : 0;
}

const key = (r: Rational) => ratToString(r);

/**
 * All steps of `text` in order, each marked correct or wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSteps } from "./steps.ts";
 * const steps = checkSteps("44 - 19 = 26, then 26 + 35 = 61. Let me try again: 44 - 19 = 25.");
 * assert.deepEqual(steps.map((s) => s.reason), ["arithmetic", "propagated", null]);
 * ```
 */
export function checkSteps(text: string, opts: StepCheckOptions = {}): CheckedStep[] {
  const source = new Map<string, "given" | "correct" | "wrong">();
  for (const n of opts.numbers ?? []) source.set(String(n), "given");
  const out: CheckedStep[] = [];
  let prevEnd = 0;
  let prevRhsStart = -1; // a chain `a + b = c + d = e` reuses c as the next left side
  for (let i = text.indexOf("="); i >= 0; i = text.indexOf("=", i + 1)) {
    const before = text[i - 1], after = text[i + 1];
    if (after === "=" || before === "=" || before === "<" || before === ">" || before === "!") {
      continue;
    }
    const lhs = findLhs(text, i);
    if (!lhs || (lhs.start < prevEnd && lhs.start !== prevRhsStart)) continue;
    const m = RHS.exec(text.slice(i + 1));
    if (!m) continue;
    const rhs = m[1].replace("−", "-").replace(/[ \t]/g, "");
    const claimed = parseRational(rhs);
    if (!claimed) continue;
    const end = i + 1 + m[0].length;
    if (RESTART.test(text.slice(prevEnd, lhs.start))) {
      for (const [k, v] of source) if (v === "wrong") source.delete(k);
    }
    const value = evaluate(lhs.expr);
    const places = decimalPlaces(rhs);
    let arithmeticOk = false;
    if (value !== null) {
      if (eq(value, claimed)) arithmeticOk = true;
      else if (places > 0) {
        // Rounded (|v - c| <= 0.5 * 10^-k) or truncated toward zero (|v - c| < 10^-k, c nearer 0).
        const d = sub(value, claimed), ad = abs(d), scale = 10n ** BigInt(places);
        const rounded = 2n * ad.n * scale <= ad.d;
        const truncated = ad.n * scale < ad.d && (d.n < 0n) === (value.n < 0n);
        arithmeticOk = rounded || truncated;
      }
    }
    const operands = operandsOf(lhs.expr);
    const tainted = operands.some((o) => source.get(key(o)) === "wrong");
    const correct = arithmeticOk && !tainted;
    out.push({
      start: lhs.start,
      end,
      lhs: lhs.src,
      rhs,
      claimed,
      value,
      operands,
      arithmeticOk,
      correct,
      reason: correct ? null : arithmeticOk ? "propagated" : "arithmetic",
    });
    source.set(key(claimed), correct ? "correct" : "wrong");
    prevEnd = end;
    prevRhsStart = i + 1 + m[0].length - m[1].length;
    i = end - 1;
  }
  return out;
}
