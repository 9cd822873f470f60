/**
 * Hard negatives for preference data: each is made deterministically from a correct trace, is
 * checked to be in its bucket, and scores below 1. A bucket that cannot be made for a problem
 * gives null.
 *
 * - `arithmetic_slip`: one non-final step's operator is changed but its written result is the
 *   old one (so that step's arithmetic is wrong), and the later steps carry that result on to
 *   the target; the answer is the changed equation, whose true value misses the target.
 * - `duplicate_reuse`: one number is used twice (another is left out); found by the solver so
 *   that the steps reach the target when possible, else the correct equation with one number
 *   replaced; every step's arithmetic is true.
 * - `near_miss`: every number used once, every step true, the value an integer within 5 of the
 *   target but not equal (solver search).
 * - `premature_stop`: two or three operations on a proper subset of the numbers (reaching the
 *   target when some subset can, else the first numbers combined), then the answer; needs at
 *   least 4 numbers.
 * - `sign_flip`: the final operator flipped (`+` and `-`, `*` and `/`), the last step computed
 *   truly; null when the flip keeps the value (`x * 1`, `x + 0`) or divides by zero. The answer
 *   keeps the right operand in parentheses so that its final operator reads as the flipped one
 *   (`50 + 31 + (36 + 21)`, not `50 + 31 + 36 + 21`).
 *
 * Negatives keep the style of their source trace, except that a `backward` trace whose plan no
 * longer ends at the target is rendered `forward` (backward reasoning starts from the target).
 */
import { Rng } from "../../engine/rng.ts";
import { countBinary, type Expr, formatExpr, literals, parseExpression } from "./expression.ts";
import type { Problem } from "./problems.ts";
import { abs, eq, rat, sub } from "./rational.ts";
import { checkEquation, score } from "./score.ts";
import { searchOne, type Solution } from "./solver.ts";
import { checkSteps } from "./steps.ts";
import {
  type Op,
  type Plan,
  planExpr,
  planOf,
  renderTrace,
  stepValue,
  type Trace,
  type TraceStyle,
} from "./traces.ts";

export const NEGATIVE_BUCKETS = [
  "arithmetic_slip",
  "duplicate_reuse",
  "near_miss",
  "premature_stop",
  "sign_flip",
] as const;
export type NegativeBucket = typeof NEGATIVE_BUCKETS[number];

export interface Negative {
  bucket: NegativeBucket;
  style: TraceStyle;
  plan: Plan;
  think: string;
  answer: string;
  response: string;
}

/** Search budget for the solver calls made here (states per call). */
const BUDGET = 50_000;

function clonePlan(plan: Plan): Plan {
  return { steps: plan.steps.map((s) => ({ ...s })) };
}

/** Recomputes every claimed result from its operands (a plan with all steps true). */
function truePlan(plan: Plan): Plan | null {
  const p = clonePlan(plan);
  for (let i = 0; i < p.steps.length; i++) {
    const v = stepValue(p, i);
    if (v === null) return null;
    p.steps[i].claimed = v;
  }
  return p;
}

function planFromSearch(numbers: number[], accept: (n: number, d: number) => boolean) {
  const r = searchOne(numbers, accept, { maxStates: BUDGET });
  if (!r.root) return null;
  const sol: Solution = { equation: "", root: r.root, steps: r.steps };
  return planOf(sol);
}

const PREC: Record<Op, number> = { "+": 1, "-": 1, "*": 2, "/": 2 };

/**
 * The equation with its final operator visible as the last one applied when read back: the
 * right operand in parentheses whenever it is itself an operation.
 */
function explicitRoot(e: Expr): string {
  if (e.kind !== "bin") return formatExpr(e);
  const l = formatExpr(e.left), r = formatExpr(e.right);
  const lp = e.left.kind === "bin" && PREC[e.left.op] < PREC[e.op] ? `(${l})` : l;
  const rp = e.right.kind === "bin" ? `(${r})` : r;
  return `${lp} ${e.op} ${rp}`;
}

function render(problem: Problem, source: Trace, plan: Plan, bucket: NegativeBucket): Negative {
  const last = plan.steps[plan.steps.length - 1].claimed;
  const style: TraceStyle = source.style === "backward" && !eq(last, rat(problem.target))
    ? "forward"
    : source.style;
  const t = renderTrace(problem, plan, style, {
    rng: new Rng(problem.target * 7919 + problem.numbers.length),
    preamble: source.preamble,
    answer: bucket === "sign_flip" ? explicitRoot(planExpr(plan)) : undefined,
  });
  return { bucket, style, plan, think: t.think, answer: t.answer, response: t.response };
}

const OTHER_OPS: Record<Op, Op[]> = {
  "+": ["-", "*", "/"],
  "-": ["+", "*", "/"],
  "*": ["+", "-", "/"],
  "/": ["*", "+", "-"],
};

function arithmeticSlip(problem: Problem, source: Trace): Plan | null {
  const t = rat(problem.target);
  const steps = source.plan.steps;
  for (let k = 0; k < steps.length - 1; k++) {
    for (const op of OTHER_OPS[steps[k].op]) {
      const p = clonePlan(source.plan);
      p.steps[k].op = op; // the written result stays the old one
      const v = stepValue(p, k);
      if (v === null || eq(v, p.steps[k].claimed)) continue;
      const check = checkEquation(formatExpr(planExpr(p)), problem.numbers);
      if (check.ok && !eq(check.value, t)) return p;
    }
  }
  return null;
}

function duplicateReuse(problem: Problem, source: Trace): Plan | null {
  const nums = problem.numbers;
  const distinct = [...new Set(nums)];
  const t = problem.target;
  const pairs: [number, number][] = [];
  for (const x of distinct) for (const y of distinct) if (x !== y) pairs.push([x, y]);
  // Reach the target with x replaced by a second y.
  for (const [x, y] of pairs.slice(0, 6)) {
    const altered = nums.slice();
    altered[altered.indexOf(x)] = y;
    const p = planFromSearch(altered, (n, d) => d === 1 && n === t);
    if (p) return p;
  }
  // Else the correct equation with one number replaced by another one already used.
  for (const [x, y] of pairs) {
    const p = clonePlan(source.plan);
    const step = p.steps.find((s) =>
      (s.left.kind === "num" && s.left.value === x) ||
      (s.right.kind === "num" && s.right.value === x)
    );
    if (!step) continue;
    if (step.left.kind === "num" && step.left.value === x) step.left = { kind: "num", value: y };
    else step.right = { kind: "num", value: y };
    const q = truePlan(p);
    if (q) return q;
  }
  return null;
}

function nearMiss(problem: Problem): Plan | null {
  const t = problem.target;
  return planFromSearch(
    problem.numbers,
    (n, d) => d === 1 && n !== t && Math.abs(n - t) <= 5,
  );
}

/** Index subsets of size k in lexicographic order. */
function subsets(n: number, k: number): number[][] {
  const out: number[][] = [];
  const rec = (start: number, acc: number[]) => {
    if (acc.length === k) return void out.push(acc.slice());
    for (let i = start; i < n; i++) {
      acc.push(i);
      rec(i + 1, acc);
      acc.pop();
    }
  };
  rec(0, []);
  return out;
}

function prematureStop(problem: Problem): Plan | null {
  const n = problem.numbers.length;
  const t = problem.target;
  const sizes = [3, 4].filter((k) => k < n);
  if (sizes.length === 0) return null;
  for (const k of sizes) {
    for (const idx of subsets(n, k)) {
      const p = planFromSearch(idx.map((i) => problem.numbers[i]), (m, d) => d === 1 && m === t);
      if (p) return p;
    }
  }
  return planFromSearch(problem.numbers.slice(0, 3), () => true);
}

const FLIP: Record<Op, Op> = { "+": "-", "-": "+", "*": "/", "/": "*" };

function signFlip(problem: Problem, source: Trace): Plan | null {
  const p = clonePlan(source.plan);
  const last = p.steps.length - 1;
  p.steps[last].op = FLIP[p.steps[last].op];
  const v = stepValue(p, last);
  if (v === null || eq(v, rat(problem.target))) return null;
  p.steps[last].claimed = v;
  return p;
}

/**
 * The hard negative of `bucket` from a correct trace of `problem`, or null when that bucket
 * cannot be made for it. The result is checked with `inBucket` and scores below 1.
 */
export function makeNegative(
  problem: Problem,
  source: Trace,
  bucket: NegativeBucket,
): Negative | null {
  let plan: Plan | null;
  switch (bucket) {
    case "arithmetic_slip":
      plan = arithmeticSlip(problem, source);
      break;
    case "duplicate_reuse":
      plan = duplicateReuse(problem, source);
      break;
    case "near_miss":
      plan = nearMiss(problem);
      break;
    case "premature_stop":
      plan = prematureStop(problem);
      break;
    case "sign_flip":
      plan = signFlip(problem, source);
      break;
  }
  if (!plan) return null;
  const neg = render(problem, source, plan, bucket);
  if (!inBucket(problem, neg.response, bucket)) return null;
  return neg;
}

/** Every bucket that can be made for `problem` (absent buckets are impossible for it). */
export function makeNegatives(problem: Problem, source: Trace): Negative[] {
  const out: Negative[] = [];
  for (const b of NEGATIVE_BUCKETS) {
    const n = makeNegative(problem, source, b);
    if (n) out.push(n);
  }
  return out;
}

function thinkOf(response: string): string {
  const m = /<think>([\s\S]*)<\/think>/.exec(response);
  return m ? m[1] : "";
}

function answerExpr(response: string): Expr | null {
  const m = /<answer>([\s\S]*?)<\/answer>\s*$/.exec(response);
  if (!m) return null;
  const p = parseExpression(m[1].trim());
  return p.ok ? p.expr : null;
}

/**
 * Whether `response` has the defining property of `bucket` for `problem`, read from the text
 * alone (answer parsed, steps re-checked). Every bucket also requires an official score below 1.
 * `sign_flip` is recognised as: flipping the answer's final operator back gives a score of 1.
 */
export function inBucket(
  problem: Problem,
  response: string,
  bucket: NegativeBucket,
): boolean {
  const { numbers, target } = problem;
  if (score(response, numbers, target) >= 1) return false;
  const expr = answerExpr(response);
  if (!expr) return false;
  const steps = checkSteps(thinkOf(response), { numbers });
  const answer = formatExpr(expr);
  const check = checkEquation(answer, numbers);
  const t = rat(target);
  switch (bucket) {
    case "arithmetic_slip": {
      const bad = steps.filter((s) => s.reason === "arithmetic");
      if (bad.length !== 1 || !check.ok || eq(check.value, t)) return false;
      const k = steps.indexOf(bad[0]);
      return steps.slice(k + 1).some((s) => s.reason === "propagated");
    }
    case "duplicate_reuse": {
      const count = (xs: string[]) => {
        const m = new Map<string, number>();
        for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
        return m;
      };
      const given = count(numbers.map(String));
      const used = count(literals(expr));
      return [...used].some(([x, c]) => c > (given.get(x) ?? 0) && (given.get(x) ?? 0) >= 1) &&
        steps.every((s) => s.arithmeticOk);
    }
    case "near_miss": {
      if (!check.ok || eq(check.value, t)) return false;
      const d = abs(sub(check.value, t));
      return d.n <= 5n * d.d && steps.every((s) => s.correct);
    }
    case "premature_stop": {
      const ops = countBinary(expr);
      const lits = literals(expr);
      const pool = numbers.map(String);
      for (const x of lits) {
        const j = pool.indexOf(x);
        if (j < 0) return false;
        pool.splice(j, 1);
      }
      return (ops === 2 || ops === 3) && pool.length > 0 && steps.every((s) => s.correct);
    }
    case "sign_flip": {
      if (!check.ok || eq(check.value, t) || expr.kind !== "bin") return false;
      const back = formatExpr({ ...expr, op: FLIP[expr.op] });
      return score(`<answer>${back}</answer>`, numbers, target) === 1 &&
        steps.every((s) => s.correct);
    }
  }
}
