import assert from "node:assert/strict";
import { join } from "node:path";
import * as api from "../mod.ts";
import { testDevice } from "./util.ts";

Deno.test("mod.ts exports the documented entry points", () => {
  for (
    const name of [
      "Device",
      "Qwen2",
      "Tokenizer",
      "passAtK",
      "rlooAdvantages",
      "grpoAdvantages",
      "lensRewards",
      "objectives",
    ]
  ) {
    assert.ok(name in api, `mod.ts does not export ${name}`);
  }
  assert.equal(api.passAtK(2, 1, 1), 0.5);
});

Deno.test(
  "Qwen2.load(device, dir).logprobs(seqs) through mod.ts gives one row per sequence of length T - 1",
  { sanitizeResources: false, sanitizeOps: false },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "mod_test_" });
    try {
      await api.initModel({ preset: "tiny", out: join(dir, "m"), seed: 4, dtype: "bf16" });
      const device = await testDevice();
      const model = await api.Qwen2.load(device, join(dir, "m"));
      const lp = await model.logprobs([[1, 2, 3], [4, 5]]);
      assert.deepEqual(lp.map((r) => r.length), [2, 1]);
      assert.ok(lp.every((r) => r.every((x) => x < 0 && Number.isFinite(x))));
      const ids = model.tokenizer!.encode("Hello");
      assert.equal(model.tokenizer!.decode(ids), "Hello");
      model.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
