import assert from "node:assert/strict";
import { checkSteps } from "../verifiers/countdown/steps.ts";

const brief = (text: string, numbers?: number[]) =>
  checkSteps(text, { numbers }).map((s) => [text.slice(s.start, s.end), s.reason]);

Deno.test("checkSteps() finds a op b = c steps with their spans and marks them", () => {
  const text = "Step 1: 44 - 19 = 25. Step 2: 25 + 35 = 61, hmm.";
  const steps = checkSteps(text);
  assert.equal(steps.length, 2);
  assert.deepEqual([steps[0].start, steps[0].end], [8, 20]);
  assert.equal(text.slice(steps[0].start, steps[0].end), "44 - 19 = 25");
  assert.equal(steps[0].correct, true);
  assert.equal(text.slice(steps[1].start, steps[1].end), "25 + 35 = 61");
  assert.equal(steps[1].reason, "arithmetic");
  assert.equal(steps[1].lhs, "25 + 35");
  assert.equal(steps[1].rhs, "61");
});

Deno.test("checkSteps() reads chains with precedence, parentheses and running totals", () => {
  assert.deepEqual(brief("so 10 - 2 * 3 = 4, and (1 + 2) * 3 = 9, 2 + 3 * 4 = 20"), [
    ["10 - 2 * 3 = 4", null],
    ["(1 + 2) * 3 = 9", null],
    ["2 + 3 * 4 = 20", "arithmetic"],
  ]);
  assert.deepEqual(brief("44 - 19 = 25 + 35 = 60"), [["44 - 19 = 25", null], [
    "25 + 35 = 60",
    null,
  ]]);
});

Deno.test("checkSteps() reads x, ×, ÷, fractions, decimals and negative results", () => {
  assert.deepEqual(brief("1. 3 x 4 = 12\n2. 12 × 2 = 24\n3. 24 ÷ 5 = 4.8, 8 / 3 = 8/3"), [
    ["3 x 4 = 12", null],
    ["12 × 2 = 24", null],
    ["24 ÷ 5 = 4.8", null],
    ["8 / 3 = 8/3", null],
  ]);
  assert.deepEqual(brief("10 / 3 = 3.33 and 10 / 3 = 3.4, 3 - 5 = -2, (7/2) * 4 = 14"), [
    ["10 / 3 = 3.33", null],
    ["10 / 3 = 3.4", "arithmetic"],
    ["3 - 5 = -2", null],
    ["(7/2) * 4 = 14", null],
  ]);
  assert.deepEqual(brief("2 / 3 = 0.67, 2 / 3 = 0.66, 2 / 3 = 0.65"), [
    ["2 / 3 = 0.67", null],
    ["2 / 3 = 0.66", null],
    ["2 / 3 = 0.65", "arithmetic"],
  ]);
});

Deno.test("checkSteps() ignores =, == and <= that are not arithmetic steps", () => {
  assert.deepEqual(brief("Let x = 5. a == 3, 3 <= 4, target = 60, 5 = 5"), []);
  assert.deepEqual(brief("4 / 0 = 1"), [["4 / 0 = 1", "arithmetic"]]);
});

Deno.test("checkSteps() propagates a wrong result to the steps that build on it", () => {
  assert.deepEqual(brief("44 - 19 = 26, 26 + 35 = 61, 61 - 1 = 60", [44, 19, 35, 1]), [
    ["44 - 19 = 26", "arithmetic"],
    ["26 + 35 = 61", "propagated"],
    ["61 - 1 = 60", "propagated"],
  ]);
  // Written fractions carry the error too.
  assert.deepEqual(brief("8 + 3 = 8/3, 3 - (8/3) = 1/3"), [
    ["8 + 3 = 8/3", "arithmetic"],
    ["3 - (8/3) = 1/3", "propagated"],
  ]);
});

Deno.test("checkSteps() judges a fresh attempt on its own", () => {
  assert.deepEqual(
    brief("44 - 19 = 26, 26 + 35 = 61. That doesn't work. Let me try 44 + 35 = 79, 79 - 19 = 60"),
    [
      ["44 - 19 = 26", "arithmetic"],
      ["26 + 35 = 61", "propagated"],
      ["44 + 35 = 79", null],
      ["79 - 19 = 60", null],
    ],
  );
  // A step that does not touch the wrong value is judged on its own even without a restart.
  assert.deepEqual(brief("3 + 4 = 8, 2 * 5 = 10"), [["3 + 4 = 8", "arithmetic"], [
    "2 * 5 = 10",
    null,
  ]]);
  // A value recomputed correctly is clean again.
  assert.deepEqual(brief("3 + 4 = 8, 2 * 4 = 8, 8 + 1 = 9"), [
    ["3 + 4 = 8", "arithmetic"],
    ["2 * 4 = 8", null],
    ["8 + 1 = 9", null],
  ]);
});

Deno.test("checkSteps() stays bounded on long hostile text", () => {
  const t0 = performance.now();
  const steps = checkSteps("1 + 1 = 2 ".repeat(5000) + "=".repeat(100_000) + "(".repeat(50_000));
  assert.equal(steps.length, 5000);
  assert.ok(steps.every((s) => s.correct));
  assert.ok(performance.now() - t0 < 10_000);
});
