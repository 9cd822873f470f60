import assert from "node:assert/strict";
import { countdownTask, gsm8kCorrect, loadGsm8k } from "../trainers/tasks.ts";
import { Rng } from "../engine/rng.ts";
import { generateProblems } from "../verifiers/countdown/problems.ts";

Deno.test("GSM8K solutions are judged correct against their own answers, and a wrong number is not", async () => {
  const test = (await loadGsm8k("test")).slice(0, 200);
  for (const p of test) {
    assert.ok(gsm8kCorrect(p.solution, p), p.solution);
    assert.ok(!gsm8kCorrect(`The answer is\\n#### ${Number(p.answer) + 1}`, p));
  }
});

Deno.test("Countdown SFT completions are verified correct and rewarded 1", () => {
  const rng = new Rng(1);
  for (const p of generateProblems(30, 2, { count: 3 })) {
    const c = countdownTask.sftCompletion(p, rng);
    assert.ok(countdownTask.correct(c, p));
    assert.equal(countdownTask.reward(c, p), 1);
  }
});
