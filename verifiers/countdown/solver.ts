/**
 * Exhaustive Countdown solver: repeatedly replaces two of the remaining values by `a + b`,
 * `|a - b|`, `a * b`, `a / b` or `b / a` until one value is left, and accepts it when it equals
 * the target. Every number is used exactly once.
 *
 * Intermediates are exact rationals (numerator, denominator as doubles, kept below 2^53;
 * a combination that would leave that range is skipped). Subtraction is taken as
 * larger minus smaller: this loses no positive target, because the absolute value of any
 * node is reachable from the absolute values of its children with `+`, `|a - b|`, `*`, `/`.
 * For a target below zero `allowNegative` is switched on and both `a - b` and `b - a` are tried.
 *
 * Finding one solution memoizes the multisets of values already shown to fail, so a state
 * reached by combining pairs in another order is searched once.
 */
import { type Expr, formatExpr } from "./expression.ts";
import { rat } from "./rational.ts";

export type Op = "+" | "-" | "*" | "/";

/** One combination, in the order the search made it: `left op right = value`. */
export interface SolutionStep {
  left: SolutionNode;
  op: Op;
  right: SolutionNode;
  /** value as numerator / denominator (denominator > 0). */
  num: number;
  den: number;
}

export type SolutionNode =
  | { kind: "num"; value: number; /** index into the problem's numbers */ index: number }
  | { kind: "op"; step: SolutionStep };

export interface Solution {
  /** e.g. `"(44 - 19) + 35"` with the fewest parentheses, scoring 1.0. */
  equation: string;
  root: SolutionNode;
  /** Combinations in search order (each uses numbers or results of earlier steps). */
  steps: SolutionStep[];
}

export interface SolveOptions {
  /** Only exact integer intermediates (divisions must divide). Default false. */
  integerOnly?: boolean;
  /** Also try `b - a` (negative intermediates). Default: true only for a negative target. */
  allowNegative?: boolean;
  /** Give up after visiting this many states (then `solve` returns null). Default unlimited. */
  maxStates?: number;
}

export interface SolveAllOptions extends SolveOptions {
  /** Stop after this many distinct equations. Default unlimited. */
  limit?: number;
}

interface Item {
  n: number;
  d: number;
  node: SolutionNode;
}

const SAFE = Number.MAX_SAFE_INTEGER;

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function make(n: number, d: number, node: SolutionNode): Item | null {
  if (d < 0) [n, d] = [-n, -d];
  if (Math.abs(n) > SAFE || d > SAFE) return null;
  const g = gcd(n, d);
  if (g > 1) [n, d] = [n / g, d / g];
  return { n, d, node };
}

/** Items that `a` and `b` combine into. */
function combine(a: Item, b: Item, opts: SolveOptions): Item[] {
  const out: Item[] = [];
  const push = (l: Item, op: Op, r: Item, n: number, d: number) => {
    if (opts.integerOnly && d !== 1 && n % d !== 0) return;
    const step: SolutionStep = { left: l.node, op, right: r.node, num: 0, den: 1 };
    const it = make(n, d, { kind: "op", step });
    if (!it) return;
    step.num = it.n;
    step.den = it.d;
    out.push(it);
  };
  // Commutative ops put the larger value on the left (a stable, readable order).
  const [hi, lo] = a.n * b.d >= b.n * a.d ? [a, b] : [b, a];
  push(hi, "+", lo, a.n * b.d + b.n * a.d, a.d * b.d);
  push(hi, "-", lo, hi.n * lo.d - lo.n * hi.d, hi.d * lo.d);
  if (opts.allowNegative) push(lo, "-", hi, lo.n * hi.d - hi.n * lo.d, hi.d * lo.d);
  push(hi, "*", lo, a.n * b.n, a.d * b.d);
  if (b.n !== 0) push(a, "/", b, a.n * b.d, a.d * b.n);
  if (a.n !== 0 && !(a.n === b.n && a.d === b.d)) push(b, "/", a, b.n * a.d, b.d * a.n);
  return out;
}

function leaves(numbers: readonly number[]): Item[] {
  return numbers.map((v, index) => {
    if (!Number.isSafeInteger(v)) throw new RangeError(`number ${v} is not a safe integer`);
    return { n: v, d: 1, node: { kind: "num", value: v, index } };
  });
}

function key(items: Item[]): string {
  return items.map((x) => x.d === 1 ? `${x.n}` : `${x.n}/${x.d}`).sort().join(",");
}

function resolveOpts(target: { n: number; d: number }, opts: SolveOptions): SolveOptions {
  return { ...opts, allowNegative: opts.allowNegative ?? target.n < 0 };
}

/** Expression tree of a solution node (for formatting and checking). */
export function nodeToExpr(node: SolutionNode): Expr {
  if (node.kind === "num") {
    if (node.value < 0) {
      return { kind: "neg", arg: { kind: "num", text: `${-node.value}`, value: rat(-node.value) } };
    }
    return { kind: "num", text: `${node.value}`, value: rat(node.value) };
  }
  const s = node.step;
  return { kind: "bin", op: s.op, left: nodeToExpr(s.left), right: nodeToExpr(s.right) };
}

function stepsOf(root: SolutionNode): SolutionStep[] {
  const out: SolutionStep[] = [];
  const walk = (n: SolutionNode) => {
    if (n.kind === "num") return;
    walk(n.step.left);
    walk(n.step.right);
    out.push(n.step);
  };
  walk(root);
  return out;
}

function toSolution(root: SolutionNode, order: SolutionStep[] | null): Solution {
  return { equation: formatExpr(nodeToExpr(root)), root, steps: order ?? stepsOf(root) };
}

/**
 * Core search for one final value accepted by `accept(n, d)`; returns the root and the steps in
 * the order they were made, or null (`exhausted` tells whether the whole space was searched).
 */
export function searchOne(
  numbers: readonly number[],
  accept: (n: number, d: number) => boolean,
  opts: SolveOptions = {},
): { root: SolutionNode; steps: SolutionStep[] } | { root: null; exhausted: boolean } {
  if (numbers.length === 0) return { root: null, exhausted: true };
  const failed = new Set<string>();
  const maxStates = opts.maxStates ?? Infinity;
  let states = 0;
  const trail: SolutionStep[] = [];
  const dfs = (items: Item[]): SolutionNode | null => {
    if (items.length === 1) return accept(items[0].n, items[0].d) ? items[0].node : null;
    if (++states > maxStates) throw new BudgetExceeded();
    const k = items.length > 2 ? key(items) : "";
    if (k && failed.has(k)) return null;
    for (let i = 0; i < items.length; i++) {
      for (let j = i + 1; j < items.length; j++) {
        const rest = items.filter((_, t) => t !== i && t !== j);
        for (const c of combine(items[i], items[j], opts)) {
          rest.push(c);
          trail.push((c.node as { step: SolutionStep }).step);
          const r = dfs(rest);
          if (r) return r;
          trail.pop();
          rest.pop();
        }
      }
    }
    if (k) failed.add(k);
    return null;
  };
  try {
    const root = dfs(leaves(numbers));
    return root ? { root, steps: trail.slice() } : { root: null, exhausted: true };
  } catch (e) {
    if (e instanceof BudgetExceeded) return { root: null, exhausted: false };
    throw e;
  }
}

class BudgetExceeded extends Error {}

function targetFrac(target: number): { n: number; d: number } {
  if (!Number.isSafeInteger(target)) throw new RangeError(`target ${target} is not a safe integer`);
  return { n: target, d: 1 };
}

/**
 * One solution using every number exactly once, or null when there is none (or `maxStates`
 * ran out).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { solve } from "./solver.ts";
 * import { score } from "./score.ts";
 * const sol = solve([44, 19, 35], 60)!;
 * assert.equal(sol.equation, "35 + 44 - 19");
 * assert.equal(score(`<answer>${sol.equation}</answer>`, [44, 19, 35], 60), 1);
 * assert.equal(solve([1, 1, 1], 100), null);
 * ```
 */
export function solve(
  numbers: readonly number[],
  target: number,
  opts: SolveOptions = {},
): Solution | null {
  const t = targetFrac(target);
  const r = searchOne(numbers, (n, d) => d === 1 && n === t.n, resolveOpts(t, opts));
  return r.root ? toSolution(r.root, r.steps) : null;
}

/**
 * Every distinct solution (distinct minimal-parenthesis equations; `a + b` and `b + a` count once),
 * in search order, up to `limit`.
 */
export function solveAll(
  numbers: readonly number[],
  target: number,
  opts: SolveAllOptions = {},
): Solution[] {
  const t = targetFrac(target);
  const o = resolveOpts(t, opts);
  const limit = opts.limit ?? Infinity;
  const seen = new Map<string, Solution>();
  const trail: SolutionStep[] = [];
  const done = () => seen.size >= limit;
  const dfs = (items: Item[]): void => {
    if (items.length === 1) {
      const it = items[0];
      if (it.d === 1 && it.n === t.n) {
        const sol = toSolution(it.node, trail.slice());
        if (!seen.has(sol.equation)) seen.set(sol.equation, sol);
      }
      return;
    }
    for (let i = 0; i < items.length && !done(); i++) {
      for (let j = i + 1; j < items.length && !done(); j++) {
        const rest = items.filter((_, k) => k !== i && k !== j);
        for (const c of combine(items[i], items[j], o)) {
          rest.push(c);
          trail.push((c.node as { step: SolutionStep }).step);
          dfs(rest);
          trail.pop();
          rest.pop();
          if (done()) return;
        }
      }
    }
  };
  if (numbers.length > 0) dfs(leaves(numbers));
  return [...seen.values()];
}

/** Whether some equation reaches `target`. */
export function isSolvable(numbers: readonly number[], target: number, opts: SolveOptions = {}) {
  return solve(numbers, target, opts) !== null;
}
