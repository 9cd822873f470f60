import assert from "node:assert/strict";
import { join } from "node:path";
import { initModel } from "../engine/init_model.ts";
import { countdownFailure, main } from "../trainers/eval.ts";
import { gpuTest } from "./util.ts";

Deno.test("Countdown failures fall into no answer, truncated, wrong numbers and wrong value", () => {
  const p = { numbers: [2, 3, 4], target: 10 };
  assert.equal(countdownFailure("<answer>2 * 3 + 4</answer>", p, false), null);
  assert.equal(countdownFailure("I give up", p, false), "no_answer");
  assert.equal(countdownFailure("2 + 3 + 4 = 9 and then", p, true), "truncated");
  assert.equal(countdownFailure("<answer>2 + 3 + 5</answer>", p, false), "wrong_numbers");
  assert.equal(countdownFailure("<answer>2 + 3 + 4</answer>", p, false), "wrong_value");
});

Deno.test(
  "deno task eval on MATH-500 writes pass@k with a level and subject breakdown",
  gpuTest,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "eval_test_" });
    try {
      await initModel({ preset: "tiny", out: join(dir, "m"), seed: 5 });
      const out = join(dir, "eval.json");
      const args = ["--model", join(dir, "m"), "--task", "math500", "--n", "2", "--k", "1,2"];
      const rc = await main([
        ...args,
        "--seeds",
        "1",
        "--limit",
        "2",
        "--max-new-tokens",
        "3",
        "--out",
        out,
      ]);
      assert.equal(rc, 0);
      const r = JSON.parse(await Deno.readTextFile(out));
      assert.equal(r.task, "math500");
      assert.deepEqual(Object.keys(r.pass_at_k).sort(), ["1", "2"]);
      assert.ok(Object.keys(r.breakdown).some((k) => k.startsWith("level ")));
      const failed = Object.values(r.failures as Record<string, number>).reduce((a, b) => a + b, 0);
      assert.equal(failed, 4 - Math.round(r.pass_at_k["1"] * 4));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
