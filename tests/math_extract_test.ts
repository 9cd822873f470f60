import assert from "node:assert/strict";
import { extractAnswer } from "../verifiers/math/extract.ts";

Deno.test("extractAnswer() takes the last \\boxed{} with nested braces", () => {
  assert.equal(extractAnswer("So \\boxed{3} then \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  assert.equal(
    extractAnswer("$\\boxed{\\left(\\frac{\\sqrt{3}}{2}, \\{1\\}\\right)}$"),
    "\\left(\\frac{\\sqrt{3}}{2}, \\{1\\}\\right)",
  );
  assert.equal(extractAnswer("\\boxed{ {a}{ {b} } }"), "{a}{ {b} }");
  assert.equal(extractAnswer("answer: \\boxed{\\text{(C)}}"), "\\text{(C)}");
});

Deno.test("extractAnswer() reads \\fbox{} and the brace-less \\boxed 5", () => {
  assert.equal(extractAnswer("hence \\fbox{42}"), "42");
  assert.equal(extractAnswer("\\boxed{1} and finally \\fbox{x+1}"), "x+1");
  assert.equal(extractAnswer("The answer is $\\boxed 5$."), "5");
  assert.equal(extractAnswer("\\boxed -7 done"), "-7");
});

Deno.test("extractAnswer() falls back to an earlier box when the last is unbalanced", () => {
  assert.equal(extractAnswer("\\boxed{12} but \\boxed{13"), "12");
  assert.equal(extractAnswer("\\boxed{13"), null);
  assert.equal(extractAnswer("\\boxed{7} then \\boxed{ }"), "7");
});

Deno.test("extractAnswer() reads the GSM8K #### line", () => {
  assert.equal(extractAnswer("She has 3 + 4 = 7.\n#### 7"), "7");
  assert.equal(extractAnswer("work\n#### 1,234\n"), "1,234");
  assert.equal(extractAnswer("#### 1\n#### -2.5"), "-2.5");
  assert.equal(extractAnswer("####   \n"), null);
});

Deno.test("extractAnswer() reads 'final answer is x'", () => {
  assert.equal(extractAnswer("Thus the final answer is 18."), "18");
  assert.equal(
    extractAnswer("The Final Answer is: $\\frac{3}{4}$. I hope it is correct."),
    "\\frac{3}{4}",
  );
  assert.equal(extractAnswer("My final answer is 2x+1"), "2x+1");
});

Deno.test("extractAnswer() prefers a box over #### and 'final answer is'", () => {
  assert.equal(extractAnswer("The final answer is 3\n#### 4\n\\boxed{5}"), "5");
  assert.equal(extractAnswer("The final answer is 3\n#### 4"), "4");
});

Deno.test("extractAnswer() uses the last number only when asked", () => {
  const t = "First 12 apples, then 1,500 pears and -3.5 kg.";
  assert.equal(extractAnswer(t), null);
  assert.equal(extractAnswer(t, { lastNumberFallback: true }), "-3.5");
  assert.equal(extractAnswer("total 1,500.", { lastNumberFallback: true }), "1,500");
  assert.equal(extractAnswer("no digits", { lastNumberFallback: true }), null);
  assert.equal(extractAnswer(""), null);
});

Deno.test("extractAnswer() stays fast on hostile megabyte inputs", () => {
  const cases = [
    "\\boxed{" + "{".repeat(1_000_000),
    "\\boxed{".repeat(250_000),
    "{".repeat(500_000) + "\\boxed{1}" + "}".repeat(500_000),
    "x".repeat(2_000_000) + "\\fbox{" + "{a}".repeat(100_000) + "}",
    "final answer is ".repeat(100_000),
    "1 ".repeat(1_000_000),
  ];
  const t0 = performance.now();
  assert.equal(extractAnswer(cases[0]), null);
  assert.equal(extractAnswer(cases[1]), null);
  assert.equal(extractAnswer(cases[2]), "1");
  assert.equal(extractAnswer(cases[3])?.length, 300_000);
  assert.equal(extractAnswer(cases[4]), null);
  assert.equal(extractAnswer(cases[5], { lastNumberFallback: true }), "1");
  const ms = performance.now() - t0;
  assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
});
