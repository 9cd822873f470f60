import assert from "node:assert/strict";
import { join } from "node:path";
import { initModel } from "../engine/init_model.ts";
import { score } from "../verifiers/countdown/score.ts";
import { parseJsonl } from "../trainers/jsonl.ts";
import { main } from "../trainers/pairs.ts";
import { gpuTest } from "./util.ts";

Deno.test(
  "deno task pairs writes verifier-checked preference pairs with wdpo weights",
  gpuTest,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "pairs_test_" });
    try {
      await initModel({ preset: "tiny", out: join(dir, "m"), seed: 2 });
      const out = join(dir, "pairs.jsonl");
      const args = ["--model", join(dir, "m"), "--samples", "2", "--problems", "3"];
      assert.equal(await main([...args, "--max-new-tokens", "6", "--out", out]), 0);
      const rows = parseJsonl(await Deno.readTextFile(out), out, ["prompt", "chosen", "rejected"]);
      assert.equal(rows.length, 3);
      for (const r of rows) {
        const nums = r.numbers as number[], target = r.target as number;
        assert.equal(score(r.chosen, nums, target), 1, r.chosen);
        const s = score(r.rejected, nums, target);
        assert.ok(s < 1);
        assert.ok(Math.abs((r.wrongness as number) - (1 - s)) < 1e-12);
        const c = r.confidence as number, ppl = r.perplexity as number;
        assert.ok(c > 0 && c <= 1 && Math.abs(c * ppl - 1) < 1e-9);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
