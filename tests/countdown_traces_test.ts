import assert from "node:assert/strict";
import { generateProblems } from "../verifiers/countdown/problems.ts";
import { score } from "../verifiers/countdown/score.ts";
import { solve } from "../verifiers/countdown/solver.ts";
import { checkSteps } from "../verifiers/countdown/steps.ts";
import { makeTrace, TRACE_STYLES } from "../verifiers/countdown/traces.ts";

const PROBLEMS = generateProblems(50, 2024, { count: [3, 6], targetRange: [1, 200] });

Deno.test("makeTrace() in every style scores 1 and every step checks, over 50 problems", () => {
  for (const p of PROBLEMS) {
    const sol = solve(p.numbers, p.target)!;
    for (const style of TRACE_STYLES) {
      const t = makeTrace(p, sol, { style, seed: 1 });
      const label = `${style} ${JSON.stringify(p)}`;
      assert.equal(t.style, style);
      assert.match(t.response, /^<think>\n[\s\S]+\n<\/think>\n<answer>[^<]+<\/answer>$/, label);
      assert.equal(score(t.response, p.numbers, p.target), 1, label);
      assert.equal(t.answer, sol.equation);
      const steps = checkSteps(t.think, { numbers: p.numbers });
      assert.ok(steps.length >= p.numbers.length - 1, `${label}: ${steps.length} steps`);
      const bad = steps.filter((s) => !s.correct);
      assert.deepEqual(bad, [], label);
    }
  }
});

Deno.test("the trace styles differ from each other on the same solution", () => {
  for (const p of PROBLEMS.slice(0, 10)) {
    const sol = solve(p.numbers, p.target)!;
    const thinks = TRACE_STYLES.map((style) => makeTrace(p, sol, { style, seed: 1 }).think);
    assert.equal(new Set(thinks).size, TRACE_STYLES.length);
    const [forward, backward, trial, compact] = thinks;
    assert.ok(compact.split("\n").length === 1 && forward.split("\n").length > 1);
    assert.match(backward, new RegExp(`^\\D*${p.target}\\b`)); // starts from the target
    assert.match(trial, /not \d+\.\nLet me try another way\./); // a rejected attempt first
    // The trial's rejected attempt is arithmetic that does not reach the target.
    const firstLine = trial.split("\n")[0];
    assert.ok(checkSteps(firstLine).every((s) => s.correct));
    assert.ok(!firstLine.includes(`That gives ${p.target},`));
  }
});

Deno.test("makeTrace() picks the style from the seed, reproducibly, and uses all styles", () => {
  const p = PROBLEMS[0];
  const sol = solve(p.numbers, p.target)!;
  const styles = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const a = makeTrace(p, sol, { seed }), b = makeTrace(p, sol, { seed });
    assert.equal(a.response, b.response);
    styles.add(a.style);
  }
  assert.equal(styles.size, TRACE_STYLES.length);
});
