import assert from "node:assert/strict";
import { checkEquation, extract, reward, score } from "../verifiers/countdown/score.ts";

const N = [44, 19, 35];
const T = 60;
const ans = (s: string) => `<think>thinking</think>\n<answer>${s}</answer>`;

Deno.test("extract() returns the last answer tag's trimmed text, or null", () => {
  assert.equal(extract("<answer> 1 + 2 </answer>"), "1 + 2");
  assert.equal(extract("<answer>a</answer> x <answer>b</answer>"), "b");
  assert.equal(extract("<answer>a</answer> then <answer>unclosed"), "a");
  assert.equal(extract("<answer>a<answer>b</answer>"), "b");
  assert.equal(extract("<answer>\n(1 + 2)\n* 3\n</answer>"), "(1 + 2)\n* 3");
  assert.equal(extract("nothing"), null);
  assert.equal(extract("</answer><answer>"), null);
});

Deno.test("score() gives 1 for an exact equation, with any spacing and parentheses", () => {
  for (const e of ["44 - 19 + 35", "(44-19)+35", " ( 44 - ( 19 ) ) + 35 ", "35 + 44 - 19"]) {
    assert.equal(score(ans(e), N, T), 1, e);
  }
  assert.equal(score(ans("(1 + 2) / 3"), [1, 2, 3], 1), 1);
  assert.equal(score(ans("8 / (3 - 8 / 3)"), [3, 3, 8, 8], 24), 1); // rational intermediates
});

Deno.test("score() gives 0 without an answer tag and 0.1 for a tag that misses", () => {
  assert.equal(score("44 - 19 + 35", N, T), 0);
  assert.equal(score("<answer>44 - 19 + 35", N, T), 0);
  assert.equal(score(ans("44 + 19 + 35"), N, T), 0.1);
  assert.equal(score(ans(""), N, T), 0.1);
});

Deno.test("score() rejects **, //, decimals, letters, = and leading zeros with 0.1", () => {
  // Each of these is accepted (and some hit the target) by the widely used reference scorer.
  assert.equal(score(ans("2 ** 3 - 4"), [2, 3, 4], 4), 0.1);
  assert.equal(score(ans("7 // 2 + 1"), [7, 2, 1], 4), 0.1);
  assert.equal(score(ans("2.5 * 4"), [2, 5, 4], 10), 0.1);
  assert.equal(score(ans("3 x 4"), [3, 4], 12), 0.1);
  assert.equal(score(ans("44 - 19 + 35 = 60"), N, T), 0.1);
  assert.equal(score(ans("044 - 19 + 35"), N, T), 0.1);
  assert.equal(score(ans("+44 - 19 + 35"), N, T), 0.1);
  assert.equal(score(ans("44 - 19 + 35)"), N, T), 0.1);
  assert.equal(score(ans("44 × 19"), [44, 19], 836), 0.1);
  assert.equal(score(ans("44 * 19"), [44, 19], 836), 1);
});

Deno.test("score() accepts unary minus and still counts the negated number as used", () => {
  assert.equal(score(ans("-19 + 44 + 35"), N, T), 1);
  assert.equal(score(ans("35 - -(44 - 19) * 1 - 0"), [35, 44, 19, 1, 0], 60), 1);
  assert.equal(score(ans("35 - (19 - 44)"), N, T), 1);
  assert.equal(score(ans("--44 - 19 + 35"), N, T), 1);
});

Deno.test("score() gives 0.1 on division by zero, including inside a product", () => {
  assert.equal(score(ans("5 / (3 - 3)"), [5, 3, 3], 1), 0.1);
  assert.equal(score(ans("0 * (5 / (3 - 3))"), [0, 5, 3, 3], 0), 0.1);
  assert.deepEqual(checkEquation("5 / (3 - 3)", [5, 3, 3]).ok, false);
});

Deno.test("score() requires the numbers exactly once as a multiset", () => {
  assert.equal(score(ans("44 + 19"), N, 63), 0.1); // one missing
  assert.equal(score(ans("44 + 19 + 35 - 35"), N, 63), 0.1); // one reused
  assert.equal(score(ans("44 + 44 - 28"), [44, 44, 28], 60), 1); // duplicates given twice
  assert.equal(score(ans("44 + 16"), [44, 44, 16], 60), 0.1);
  const c = checkEquation("44 + 44", N);
  assert.ok(!c.ok && c.reason === "numbers");
});

Deno.test("score() compares with |value - target| < 1e-5 decided exactly", () => {
  // 100000/99999 - 1 = 1/99999 > 1e-5; 1000000/999999 - 1 = 1/999999 < 1e-5.
  assert.equal(score(ans("100000 / 99999"), [100000, 99999], 1), 0.1);
  assert.equal(score(ans("1000000 / 999999"), [1000000, 999999], 1), 1);
});

Deno.test("score() reads only the last answer tag", () => {
  assert.equal(score(ans("44 - 19 + 35") + " <answer>44 + 19</answer>", N, T), 0.1);
  assert.equal(score("<answer>44 + 19</answer> no, " + ans("44 - 19 + 35"), N, T), 1);
});

Deno.test("score() with lastLineOnly reads the text after the last newline", () => {
  const r = "<think>\nwork\n</think>\n<answer>44 - 19 + 35</answer>";
  assert.equal(score(r, N, T, { lastLineOnly: true }), 1);
  assert.equal(score(r + "\n", N, T, { lastLineOnly: true }), 0);
  assert.equal(score(r + "\n", N, T), 1);
  const multi = "<answer>44 - 19\n+ 35</answer>";
  assert.equal(score(multi, N, T), 1);
  assert.equal(score(multi, N, T, { lastLineOnly: true }), 0);
});

Deno.test("score() stays fast and bounded on hostile answers", () => {
  const t0 = performance.now();
  assert.equal(score(ans("(".repeat(100_000) + "1" + ")".repeat(100_000)), [1], 1), 0.1);
  assert.equal(score(ans("-".repeat(5000) + "1"), [1], 1), 0.1);
  assert.equal(score(ans("1+".repeat(3000) + "1"), [1], 1), 0.1);
  assert.equal(score(ans("9".repeat(1_000_000)), [1], 1), 0.1);
  assert.equal(score("<answer>".repeat(100_000) + "1</answer>", [1], 1), 1);
  assert.ok(performance.now() - t0 < 5000);
});

Deno.test("reward() is 1 when exact, graded for a valid wrong equation, 0 when malformed", () => {
  assert.equal(reward(ans("44 - 19 + 35"), N, T), 1);
  // 44 + 19 - 35 = 28: 0.1 + 0.5 * (1 - 32/60)
  assert.equal(reward(ans("44 + 19 - 35"), N, T), 0.1 + 0.5 * (1 - 32 / 60));
  // 44 + 19 + 35 = 98: 0.1 + 0.5 * (1 - 38/60)
  assert.equal(reward(ans("44 + 19 + 35"), N, T), 0.1 + 0.5 * (1 - 38 / 60));
  // far away: the closeness term is clipped at 0
  assert.equal(reward(ans("44 * 19 * 35"), N, T), 0.1);
  // |target| below 1 uses max(1, |target|) = 1
  assert.equal(reward(ans("3 - 3 + 1"), [3, 3, 1], 0), 0.1 + 0.5 * 0);
  assert.equal(reward(ans("2 / 4"), [2, 4], 0), 0.1 + 0.5 * (1 - 0.5));
  // malformed: no tag, does not parse, wrong numbers, division by zero
  assert.equal(reward("44 - 19 + 35", N, T), 0);
  assert.equal(reward(ans("44 ** 19"), [44, 19], T), 0);
  assert.equal(reward(ans("44 + 19"), N, T), 0);
  assert.equal(reward(ans("35 / (19 - 19)"), [35, 19, 19], T), 0);
});

Deno.test("reward() agrees with score() on 1 and 0 and lies in [0.1, 0.6) on valid misses", () => {
  const cases = ["44 - 19 + 35", "44 + 19 + 35", "44 * 19 - 35", "19 - 44 - 35", "x", ""];
  for (const c of cases) {
    const s = score(ans(c), N, T), r = reward(ans(c), N, T);
    if (s === 1) assert.equal(r, 1);
    if (checkEquation(c, N).ok && s !== 1) assert.ok(r >= 0.1 && r < 0.6, `${c}: ${r}`);
    if (!checkEquation(c, N).ok) assert.equal(r, 0);
  }
});
