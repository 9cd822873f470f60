/**
 * The benchmark plumbing: batching of fast calls in `timeGpu`, and the `--json` layout that
 * `deno task bench` writes (run here on the quick shapes).
 */
import assert from "node:assert/strict";
import type { Device } from "../engine/device.ts";
import { batchSize, timeGpu } from "../bench/harness.ts";
import { main } from "../bench/main.ts";
import { gpuTest } from "./util.ts";

Deno.test("batchSize: one call per wait when a call is slow, up to 256 when it is fast", () => {
  assert.equal(batchSize(350, 20), 1);
  assert.equal(batchSize(20, 20), 1);
  assert.equal(batchSize(0.5, 20), 160);
  assert.equal(batchSize(0.001, 20), 256);
  assert.equal(batchSize(0.5, 0), 1);
});

Deno.test("timeGpu: fast calls are recorded in batches per wait and timed per call", async () => {
  let calls = 0, syncs = 0;
  const fake = { sync: () => Promise.resolve(void syncs++) } as unknown as Device;
  const record = () => void calls++;
  const ms = await timeGpu(fake, record, { warmup: 1, minMs: 0, minIters: 3 });
  // One warm-up call, then three timed waits of 256 calls each.
  assert.equal(calls, 1 + 3 * 256);
  assert.equal(syncs, 1 + 3);
  assert.ok(ms >= 0 && ms < 1, `per-call ms ${ms}`);
  calls = syncs = 0;
  await timeGpu(fake, record, { warmup: 1, minMs: 0, minIters: 3, batchBelowMs: 0 });
  assert.equal(calls, 4);
  assert.equal(syncs, 4);
});

Deno.test(
  "deno task bench --json: matmul and lm_head_logprobs records with their peers",
  gpuTest,
  async () => {
    const file = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const code = await main(["--quick", "--only", "matmul,lm_head", "--json", file]);
      assert.equal(code, 0);
      const out = JSON.parse(await Deno.readTextFile(file));
      assert.equal(typeof out.adapter, "string");
      assert.equal(typeof out.fallback, "boolean");
      const mm = out.results.filter((r: { name: string }) => r.name === "matmul");
      assert.equal(mm.length, 2, "one record per layout");
      for (const r of mm) {
        assert.deepEqual(r.shape, [64, 128, 96]);
        assert.ok(r.ms > 0 && r.gflops > 0, JSON.stringify(r));
        assert.equal(r.peer.name, "tfjs-webgpu matMul");
        assert.ok(r.peer.ms > 0, JSON.stringify(r.peer));
      }
      const lm = out.results.find((r: { name: string }) => r.name === "lm_head_logprobs");
      assert.deepEqual(lm.shape, [16, 64, 20000]);
      assert.ok(lm.ms > 0 && lm.peak_bytes > 0 && lm.peer.peak_bytes > lm.peak_bytes);
    } finally {
      await Deno.remove(file);
    }
  },
);
