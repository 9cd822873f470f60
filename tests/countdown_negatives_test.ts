import assert from "node:assert/strict";
import {
  countBinary,
  type Expr,
  literals,
  parseExpression,
} from "../verifiers/countdown/expression.ts";
import {
  inBucket,
  makeNegative,
  makeNegatives,
  NEGATIVE_BUCKETS,
  type NegativeBucket,
} from "../verifiers/countdown/negatives.ts";
import { generateProblems, type Problem } from "../verifiers/countdown/problems.ts";
import { checkEquation, extract, score } from "../verifiers/countdown/score.ts";
import { solve } from "../verifiers/countdown/solver.ts";
import { checkSteps } from "../verifiers/countdown/steps.ts";
import {
  add,
  div,
  mul,
  parseRational,
  rat,
  ratToString,
  sub,
} from "../verifiers/countdown/rational.ts";
import { makeTrace, type Plan, renderTrace, TRACE_STYLES } from "../verifiers/countdown/traces.ts";

const PROBLEMS = generateProblems(50, 77, { count: [3, 6], targetRange: [1, 200] });

function thinkOf(response: string): string {
  return /<think>([\s\S]*)<\/think>/.exec(response)![1];
}

function count(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/** The bucket's defining property, checked here from the text without negatives.ts. */
function hasProperty(p: Problem, response: string, bucket: NegativeBucket): string | null {
  const ans = extract(response);
  if (ans === null) return "no answer";
  const parsed = parseExpression(ans);
  if (!parsed.ok) return `answer does not parse: ${parsed.error}`;
  const steps = checkSteps(thinkOf(response), { numbers: p.numbers });
  const check = checkEquation(ans, p.numbers);
  const value = check.ok ? Number(check.value.n) / Number(check.value.d) : NaN;
  switch (bucket) {
    case "arithmetic_slip": {
      // Read the `a op b = c` lines with a regex of its own (not the step checker).
      const re = /\(?(-?\d+(?:\/\d+)?)\)? ([-+*/]) \(?(-?\d+(?:\/\d+)?)\)? = (-?\d+(?:\/\d+)?)/g;
      const lines = [...thinkOf(response).matchAll(re)].map((m) => {
        const [a, b, c] = [m[1], m[3], m[4]].map((x) => parseRational(x)!);
        const ops = { "+": add, "-": sub, "*": mul, "/": div };
        const v = ops[m[2] as keyof typeof ops](a, b);
        return { a: m[1], b: m[3], c: m[4], ok: v !== null && ratToString(v) === ratToString(c) };
      });
      const wrong = lines.flatMap((l, i) => l.ok ? [] : [i]);
      if (wrong.length !== 1) return `${wrong.length} wrong lines`;
      const slipped = lines[wrong[0]].c;
      if (!lines.slice(wrong[0] + 1).some((l) => l.a === slipped || l.b === slipped)) {
        return "the wrong result is not carried on";
      }
      if (!check.ok || value === p.target) return "answer not a valid miss";
      return steps.filter((s) => s.reason === "arithmetic").length === 1
        ? null
        : "step checker disagrees";
    }
    case "duplicate_reuse": {
      const given = count(p.numbers.map(String)), used = count(literals(parsed.expr));
      const twice = [...used].some(([x, c]) => (given.get(x) ?? 0) >= 1 && c > given.get(x)!);
      return twice ? null : "no number used more often than given";
    }
    case "near_miss": {
      if (!check.ok) return "answer invalid";
      const d = Math.abs(value - p.target);
      if (!(d > 0 && d <= 5)) return `distance ${d}`;
      return steps.every((s) => s.correct) ? null : "a step is wrong";
    }
    case "premature_stop": {
      const ops = countBinary(parsed.expr), lits = literals(parsed.expr);
      if (ops !== 2 && ops !== 3) return `${ops} operations`;
      const given = count(p.numbers.map(String));
      for (const [x, c] of count(lits)) if (c > (given.get(x) ?? 0)) return `${x} not available`;
      if (lits.length >= p.numbers.length) return "all numbers used";
      return steps.every((s) => s.correct) ? null : "a step is wrong";
    }
    case "sign_flip": {
      const e = parsed.expr;
      if (e.kind !== "bin") return "no final operator";
      const back = { "+": "-", "-": "+", "*": "/", "/": "*" }[e.op];
      const fixed = `(${exprText(e.left)}) ${back} (${exprText(e.right)})`;
      if (score(`<answer>${fixed}</answer>`, p.numbers, p.target) !== 1) return "flip back fails";
      if (!check.ok || value === p.target) return "answer not a valid miss";
      return steps.every((s) => s.correct) ? null : "a step is wrong";
    }
  }
}

/** Fully parenthesized text (independent of formatExpr). */
function exprText(e: Expr): string {
  if (e.kind === "num") return e.text;
  if (e.kind === "neg") return `-(${exprText(e.arg)})`;
  return `(${exprText(e.left)} ${e.op} ${exprText(e.right)})`;
}

Deno.test("every hard negative has its bucket's property and scores below 1, over 50 problems", () => {
  const made = new Map<NegativeBucket, number>(NEGATIVE_BUCKETS.map((b) => [b, 0]));
  PROBLEMS.forEach((p, i) => {
    const source = makeTrace(p, solve(p.numbers, p.target)!, { seed: i });
    assert.equal(score(source.response, p.numbers, p.target), 1);
    for (const bucket of NEGATIVE_BUCKETS) {
      const neg = makeNegative(p, source, bucket);
      if (!neg) continue;
      made.set(bucket, made.get(bucket)! + 1);
      const label = `${bucket} ${JSON.stringify(p)}\n${neg.response}`;
      assert.equal(neg.bucket, bucket);
      assert.ok(score(neg.response, p.numbers, p.target) < 1, label);
      assert.equal(hasProperty(p, neg.response, bucket), null, label);
      assert.ok(inBucket(p, neg.response, bucket), label);
      assert.match(neg.response, /^<think>\n[\s\S]+\n<\/think>\n<answer>[^<]+<\/answer>$/);
    }
  });
  console.log("negatives made per bucket (of 50):", Object.fromEntries(made));
  // Each bucket is made for most problems (premature_stop needs 4+ numbers).
  for (const [bucket, n] of made) assert.ok(n >= 15, `${bucket} made for only ${n} of 50`);
});

Deno.test("hard negatives are deterministic and keep the source trace's style", () => {
  for (const p of PROBLEMS.slice(0, 8)) {
    const sol = solve(p.numbers, p.target)!;
    for (const style of TRACE_STYLES) {
      const source = makeTrace(p, sol, { style });
      const a = makeNegatives(p, source), b = makeNegatives(p, source);
      assert.deepEqual(a.map((n) => n.response), b.map((n) => n.response));
      for (const n of a) {
        const expect = style === "backward" && n.plan.steps.at(-1)!.claimed.n !== BigInt(p.target)
          ? "forward"
          : style;
        assert.equal(n.style, expect);
        if (style === "trial") assert.ok(n.think.startsWith(source.preamble));
      }
    }
  }
});

Deno.test("impossible buckets give null: premature_stop with 3 numbers, sign_flip of x * 1", () => {
  const p3 = { numbers: [44, 19, 35], target: 60 };
  const t3 = makeTrace(p3, solve(p3.numbers, p3.target)!);
  assert.equal(makeNegative(p3, t3, "premature_stop"), null);
  const p = { numbers: [6, 4, 1], target: 24 };
  const plan: Plan = {
    steps: [
      {
        left: { kind: "num", value: 6 },
        op: "*",
        right: { kind: "num", value: 4 },
        claimed: rat(24),
      },
      {
        left: { kind: "step", index: 0 },
        op: "*",
        right: { kind: "num", value: 1 },
        claimed: rat(24),
      },
    ],
  };
  const t = renderTrace(p, plan, "forward");
  assert.equal(score(t.response, p.numbers, p.target), 1);
  assert.equal(makeNegative(p, t, "sign_flip"), null); // 24 / 1 is still 24
  assert.notEqual(makeNegative(p, t, "arithmetic_slip"), null);
  const same = { numbers: [5, 5, 5], target: 15 };
  const ts = makeTrace(same, solve(same.numbers, same.target)!);
  assert.equal(makeNegative(same, ts, "duplicate_reuse"), null);
});

Deno.test("inBucket() rejects a correct response and responses of other buckets", () => {
  const p = { numbers: [44, 19, 35], target: 60 };
  const t = makeTrace(p, solve(p.numbers, p.target)!, { style: "compact" });
  for (const b of NEGATIVE_BUCKETS) assert.equal(inBucket(p, t.response, b), false);
  const flip = makeNegative(p, t, "sign_flip")!;
  assert.equal(inBucket(p, flip.response, "arithmetic_slip"), false);
  assert.equal(inBucket(p, flip.response, "duplicate_reuse"), false);
  const slip = makeNegative(p, t, "arithmetic_slip")!;
  assert.equal(inBucket(p, slip.response, "sign_flip"), false);
  assert.equal(inBucket(p, slip.response, "near_miss"), false);
});
