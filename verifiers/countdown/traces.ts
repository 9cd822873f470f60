/**
 * Synthetic reasoning traces for SFT: from a solver solution, a full response
 * `<think>\n...\n</think>\n<answer>EQUATION</answer>` in one of several styles, so the data is
 * not one template. Every step line is `a op b = c` with the true result, so the step checker
 * marks each correct and the official score is 1.
 *
 * Styles: `forward` (combine step by step, listing what is left), `backward` (from the target:
 * which operation makes it, what is still needed; then a forward check), `trial` (a rejected
 * left-to-right attempt first, then the solution), `compact` (the steps on one line).
 *
 * A trace is rendered from a `Plan`: steps with their claimed results. Hard negatives
 * (negatives.ts) render edited plans with the same code.
 */
import { Rng } from "../../engine/rng.ts";
import { type Expr, formatExpr } from "./expression.ts";
import type { Problem } from "./problems.ts";
import { add, div, eq, mul, rat, type Rational, ratToString, sub } from "./rational.ts";
import type { Solution, SolutionNode, SolutionStep } from "./solver.ts";

export const TRACE_STYLES = ["forward", "backward", "trial", "compact"] as const;
export type TraceStyle = typeof TRACE_STYLES[number];

export type Op = "+" | "-" | "*" | "/";

/** An operand: a given number, or the result of an earlier step (its index). */
export type Operand = { kind: "num"; value: number } | { kind: "step"; index: number };

export interface PlanStep {
  left: Operand;
  op: Op;
  right: Operand;
  /** The result written in the trace (the true one in a correct trace). */
  claimed: Rational;
}

/** Steps in the order written; the last step is the root of the answer equation. */
export interface Plan {
  steps: PlanStep[];
}

export interface Trace {
  style: TraceStyle;
  plan: Plan;
  /** The rejected attempt of the `trial` style (kept so negatives reuse it), else "". */
  preamble: string;
  think: string;
  answer: string;
  response: string;
}

/** The plan of a solver solution (true results, the solver's step order). */
export function planOf(solution: Solution): Plan {
  const index = new Map<SolutionStep, number>();
  solution.steps.forEach((s, i) => index.set(s, i));
  const operand = (n: SolutionNode): Operand =>
    n.kind === "num"
      ? { kind: "num", value: n.value }
      : { kind: "step", index: index.get(n.step)! };
  return {
    steps: solution.steps.map((s) => ({
      left: operand(s.left),
      op: s.op,
      right: operand(s.right),
      claimed: rat(s.num, s.den),
    })),
  };
}

/** The answer expression of a plan (number literals, not claimed results). */
export function planExpr(plan: Plan, index = plan.steps.length - 1): Expr {
  const s = plan.steps[index];
  const side = (o: Operand): Expr =>
    o.kind === "step"
      ? planExpr(plan, o.index)
      : o.value < 0
      ? { kind: "neg", arg: { kind: "num", text: `${-o.value}`, value: rat(-o.value) } }
      : { kind: "num", text: `${o.value}`, value: rat(o.value) };
  return { kind: "bin", op: s.op, left: side(s.left), right: side(s.right) };
}

/** `op` applied exactly; null on division by zero. */
export function apply(a: Rational, op: Op, b: Rational): Rational | null {
  return op === "+" ? add(a, b) : op === "-" ? sub(a, b) : op === "*" ? mul(a, b) : div(a, b);
}

/** The claimed value an operand stands for in the text. */
function operandValue(plan: Plan, o: Operand): Rational {
  return o.kind === "num" ? rat(o.value) : plan.steps[o.index].claimed;
}

/** The true result of step `index` computed from the claimed results it builds on. */
export function stepValue(plan: Plan, index: number): Rational | null {
  const s = plan.steps[index];
  return apply(operandValue(plan, s.left), s.op, operandValue(plan, s.right));
}

function valueText(r: Rational): string {
  return ratToString(r);
}

function operandText(plan: Plan, o: Operand): string {
  const v = operandValue(plan, o);
  const t = valueText(v);
  return v.d !== 1n || v.n < 0n ? `(${t})` : t;
}

/** `44 - 19 = 25` */
function stepLine(plan: Plan, i: number): string {
  const s = plan.steps[i];
  return `${operandText(plan, s.left)} ${s.op} ${operandText(plan, s.right)} = ${
    valueText(s.claimed)
  }`;
}

/** Values left after steps 0..i (claimed results replace their operands). */
function remainingAfter(problem: Problem, plan: Plan, i: number): string[] {
  const left = problem.numbers.map((n) => String(n));
  for (let k = 0; k <= i; k++) {
    const s = plan.steps[k];
    for (const o of [s.left, s.right]) {
      const t = valueText(operandValue(plan, o));
      const j = left.indexOf(t);
      if (j >= 0) left.splice(j, 1);
    }
    left.push(valueText(s.claimed));
  }
  return left;
}

const OP_WORD: Record<Op, string> = { "+": "plus", "-": "minus", "*": "times", "/": "divided by" };

function closing(problem: Problem, plan: Plan, answer: string): string {
  const final = plan.steps[plan.steps.length - 1].claimed;
  const t = rat(problem.target);
  return eq(final, t)
    ? `That reaches the target ${problem.target}, so the equation is ${answer}.`
    : `That gives ${valueText(final)}, so the equation is ${answer}.`;
}

function forward(problem: Problem, plan: Plan, answer: string, rng: Rng): string {
  const open = [
    "Let me combine the numbers two at a time.",
    `I need to reach ${problem.target} with ${problem.numbers.join(", ")}.`,
    "Let me work forward from the numbers.",
  ][rng.int(3)];
  const lines = [open];
  plan.steps.forEach((_, i) => {
    const rest = remainingAfter(problem, plan, i);
    lines.push(
      i < plan.steps.length - 1
        ? `${stepLine(plan, i)}. Left: ${rest.join(", ")}.`
        : `${stepLine(plan, i)}.`,
    );
  });
  lines.push(closing(problem, plan, answer));
  return lines.join("\n");
}

function backward(problem: Problem, plan: Plan, answer: string, rng: Rng): string {
  const lines = [
    [
      `The target is ${problem.target}. Let me work back from it.`,
      `Working backwards from ${problem.target}.`,
    ][rng.int(2)],
  ];
  const visit = (i: number): void => {
    const s = plan.steps[i];
    const need: number[] = [];
    const name = (o: Operand) => {
      if (o.kind === "step") need.push(o.index);
      return operandText(plan, o);
    };
    const l = name(s.left), r = name(s.right);
    const needs = need.map((k) => operandText(plan, { kind: "step", index: k }));
    const tail = needs.length === 0
      ? "both are given numbers."
      : `so I still need ${needs.join(" and ")}.`;
    lines.push(`${valueText(s.claimed)} is ${l} ${OP_WORD[s.op]} ${r}, ${tail}`);
    for (const k of need) visit(k);
  };
  visit(plan.steps.length - 1);
  lines.push(`Check forward: ${plan.steps.map((_, i) => stepLine(plan, i)).join(", then ")}.`);
  lines.push(closing(problem, plan, answer));
  return lines.join("\n");
}

function compact(problem: Problem, plan: Plan, answer: string): string {
  return `${plan.steps.map((_, i) => stepLine(plan, i)).join(", ")}. ${
    closing(problem, plan, answer)
  }`;
}

/**
 * A rejected attempt: the numbers left to right with `+`, larger-minus-smaller or `*`, each step
 * true, ending away from the target.
 */
export function rejectedAttempt(problem: Problem, rng: Rng): string {
  const t = rat(problem.target);
  for (let attempt = 0; attempt < 20; attempt++) {
    const order = rng.shuffle(problem.numbers.slice());
    let acc = rat(order[0]);
    const parts: string[] = [];
    for (const n of order.slice(1)) {
      const b = rat(n);
      const choice = rng.int(3);
      let op: Op = choice === 0 ? "+" : choice === 1 ? "-" : "*";
      if (op === "*" && Number(acc.n) * n > 10000) op = "+";
      const [x, y] = op === "-" && acc.n < b.n ? [b, acc] : [acc, b];
      const r = apply(x, op, y)!;
      parts.push(`${ratToString(x)} ${op} ${ratToString(y)} = ${ratToString(r)}`);
      acc = r;
    }
    if (!eq(acc, t)) {
      return `Let me try ${parts.join(", ")}. That gives ${
        ratToString(acc)
      }, not ${problem.target}.`;
    }
  }
  return "";
}

/**
 * Renders `plan` in `style`; `preamble` is the rejected attempt of the trial style, `answer`
 * replaces the plan's own equation text (same tree, other parentheses).
 */
export function renderTrace(
  problem: Problem,
  plan: Plan,
  style: TraceStyle,
  opts: { rng?: Rng; preamble?: string; answer?: string } = {},
): Trace {
  const rng = opts.rng ?? new Rng(0);
  const answer = opts.answer ?? formatExpr(planExpr(plan));
  let think: string;
  let preamble = "";
  switch (style) {
    case "forward":
      think = forward(problem, plan, answer, rng);
      break;
    case "backward":
      think = backward(problem, plan, answer, rng);
      break;
    case "compact":
      think = compact(problem, plan, answer);
      break;
    case "trial": {
      preamble = opts.preamble ?? rejectedAttempt(problem, rng);
      const body = forward(problem, plan, answer, rng).split("\n").slice(1).join("\n");
      think = preamble ? `${preamble}\nLet me try another way.\n${body}` : body;
      break;
    }
  }
  const response = `<think>\n${think}\n</think>\n<answer>${answer}</answer>`;
  return { style, plan, preamble, think, answer, response };
}

export interface TraceOptions {
  /** The style; by default drawn from `rng` (or from `seed`). */
  style?: TraceStyle;
  rng?: Rng;
  seed?: number;
}

/**
 * A correct reasoning trace of `solution`, scoring 1.0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { makeTrace } from "./traces.ts";
 * import { solve } from "./solver.ts";
 * import { score } from "./score.ts";
 * const p = { numbers: [44, 19, 35], target: 60 };
 * const t = makeTrace(p, solve(p.numbers, p.target)!, { style: "compact" });
 * assert.equal(t.think, "44 - 19 = 25, 35 + 25 = 60. That reaches the target 60, so the equation is 35 + 44 - 19.");
 * assert.equal(score(t.response, p.numbers, p.target), 1);
 * ```
 */
export function makeTrace(problem: Problem, solution: Solution, opts: TraceOptions = {}): Trace {
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const style = opts.style ?? TRACE_STYLES[rng.int(TRACE_STYLES.length)];
  return renderTrace(problem, planOf(solution), style, { rng });
}
