/**
 * The benchmark plumbing: batching of fast calls in `timeCalls`, and the `--json` layout that
 * `deno task bench` writes (run here on the quick shapes).
 */
import assert from "node:assert/strict";
import { gemmName, parseGemm, timeCalls, timeCallsAlternating, timeGpu } from "../bench/harness.ts";
import { fill } from "../engine/elementwise.ts";
import { discoverBenches, main } from "../bench/main.ts";
import { fmaCeiling } from "../bench/matmul_bench.ts";
import { gpuTest, testDevice } from "./util.ts";

/** Spins for `ms` (a stand-in for GPU work that takes a known time). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
}

Deno.test("timeCalls: a fixed cost per wait cancels out of the per-call figure", async () => {
  // Each call costs 0.05 ms, each wait 3 ms: one call with its wait would read as 3.05 ms.
  const ms = await timeCalls(() => spin(0.05), () => Promise.resolve(spin(3)), {
    minMs: 0,
    minIters: 3,
  });
  assert.ok(ms > 0.035 && ms < 0.075, `per-call ms ${ms}, expected about 0.05`);
});

Deno.test("timeCalls: slow calls, or batchBelowMs 0, are timed one per wait", async () => {
  let calls = 0, waits = 0;
  const wait = () => Promise.resolve(void waits++);
  await timeCalls(() => void calls++, wait, { warmup: 1, minMs: 0, minIters: 3, batchBelowMs: 0 });
  assert.deepEqual([calls, waits], [4, 4]);
  calls = waits = 0;
  const ms = await timeCalls(
    () => {
      calls++;
      spin(25);
    },
    wait,
    { warmup: 1, minMs: 0, minIters: 3 },
  );
  assert.deepEqual([calls, waits], [4, 4]);
  assert.ok(ms >= 25 && ms < 40, `${ms}`);
});

Deno.test("timeCallsAlternating: paths take their timed rounds in turn, each its own figure", async () => {
  const log: string[] = [];
  const job = (name: string, ms: number) => ({
    record: () => {
      log.push(name);
      spin(ms);
    },
    wait: () => Promise.resolve(void log.push(`${name}.wait`)),
  });
  // Slow calls: one per wait; warm-up and first timed call per path, then rounds a, b, a, b.
  const [a, b] = await timeCallsAlternating([job("a", 22), job("b", 30)], {
    warmup: 1,
    minMs: 0,
    minIters: 3,
  });
  assert.ok(a >= 22 && a < 35 && b >= 30 && b < 45, `${a} ${b}`);
  const calls = log.filter((x) => !x.endsWith(".wait"));
  assert.deepEqual(calls, ["a", "a", "b", "b", "a", "b", "a", "b"]);
  // Fast calls with a dear wait: batched per path, the wait's cost cancels out of each figure.
  const fast = (ms: number) => ({ record: () => spin(ms), wait: () => Promise.resolve(spin(3)) });
  const [f1, f2] = await timeCallsAlternating([fast(0.05), fast(0.1)], { minMs: 0, minIters: 3 });
  assert.ok(f1 > 0.035 && f1 < 0.075, `per-call ms ${f1}, expected about 0.05`);
  assert.ok(f2 > 0.075 && f2 < 0.14, `per-call ms ${f2}, expected about 0.1`);
});

Deno.test("timeGpu: per-call time of a kernel on the device", gpuTest, async () => {
  const dev = await testDevice();
  const t = dev.zeros("x", [1024]);
  const ms = await timeGpu(dev, () => void fill(dev, 1, t), { minMs: 0, minIters: 2 });
  assert.ok(ms > 0 && Number.isFinite(ms), `${ms}`);
  t.dispose();
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
      assert.equal(mm.length, 3, "one record per layout");
      assert.deepEqual(
        mm.map((r: { extra: { layout: string } }) => r.extra.layout),
        ["x W^T (nt)", "A B (nn)", "A^T B (tn)"],
      );
      for (const r of mm) {
        assert.deepEqual(r.shape, [64, 128, 96]);
        assert.ok(r.ms > 0 && r.gflops > 0, JSON.stringify(r));
        assert.equal(r.peer.name, "tfjs-webgpu matMul");
        assert.ok(r.peer.ms > 0, JSON.stringify(r.peer));
        assert.ok(r.extra.tfjs_same_layout_ms > 0, JSON.stringify(r.extra));
        assert.ok(r.extra.vs_same_layout > 0, JSON.stringify(r.extra));
      }
      // The A B record's own layout is the peer's.
      assert.equal(mm[1].extra.tfjs_same_layout_ms, +mm[1].peer.ms.toFixed(2));
      const lm = out.results.find((r: { name: string }) => r.name === "lm_head_logprobs");
      assert.deepEqual(lm.shape, [16, 64, 20000]);
      assert.ok(lm.ms > 0 && lm.peak_bytes > 0 && lm.peer.peak_bytes > lm.peak_bytes);
    } finally {
      await Deno.remove(file);
    }
  },
);

Deno.test(
  "gemm_forms is opt-in, agrees across forms and restores the device's form",
  gpuTest,
  async () => {
    const all = await discoverBenches();
    const sweep = all.find((b) => b.name === "gemm_forms");
    assert.ok(sweep?.optIn, "gemm_forms runs only when named");
    const dev = await testDevice();
    const before = dev.gemm;
    const lines: string[] = [];
    const rs = await sweep.run({ dev, quick: true, log: (l) => lines.push(l) });
    assert.equal(rs.length, 4 * 3, "4 forms x 3 shapes in quick mode");
    assert.ok(rs.every((r) => r.ms > 0 && typeof r.extra?.form === "string"));
    assert.match(lines.at(-1)!, /fastest tiled form here: --gemm tiled8?:\d+,\d+,\d+$/);
    assert.deepEqual(dev.gemm, before);
  },
);

Deno.test("parseGemm reads --gemm FORM[:WX,WY,BK] and refuses anything else", () => {
  const base = { form: "blocked", wx: 16, wy: 16, bk: 16 } as const;
  assert.deepEqual(parseGemm("tiled8:16,8,32", base), { form: "tiled8", wx: 16, wy: 8, bk: 32 });
  assert.deepEqual(parseGemm("tiled", base), { ...base, form: "tiled" });
  assert.throws(() => parseGemm("tiled:16,8", base), /--gemm tiled:16,8: expected/);
  for (const g of [base, { form: "tiled8", wx: 16, wy: 8, bk: 32 }] as const) {
    assert.deepEqual(parseGemm(gemmName(g), base), g, "gemmName spells what parseGemm reads");
  }
});

Deno.test(
  "fma_ceiling does all K multiply-adds for every output: (row % 8) + K",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const m = 19, k = 37, n = 300; // partial row blocks and a partial workgroup
    const out = dev.empty("out", [m, n]);
    fmaCeiling(dev, m, k, out);
    const got = await out.read();
    const want = Float32Array.from({ length: m * n }, (_, i) => (Math.floor(i / n) % 8) + k);
    assert.deepEqual(got, want);
    out.dispose();
  },
);

Deno.test(
  "deno task bench --attention FORM runs the attention bench on that form and records it",
  gpuTest,
  async () => {
    const file = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const code = await main([
        "--quick",
        "--only",
        "attention",
        "--attention",
        "rows1",
        "--json",
        file,
      ]);
      assert.equal(code, 0);
      const out = JSON.parse(await Deno.readTextFile(file));
      assert.equal(out.attention, "rows1");
      const names = out.results.map((r: { name: string }) => r.name);
      assert.deepEqual(names, ["attention_fwd", "attention_bwd", "attention_decode"]);
      for (const r of out.results) {
        assert.equal(r.extra.form, "rows1", JSON.stringify(r));
        assert.ok(r.ms > 0 && r.gflops > 0, JSON.stringify(r));
      }
      // Decoding's peer is the other form's kernel, timed in the same run.
      const dec = out.results[2];
      assert.equal(dec.peer.name, "rows4 decode");
      assert.ok(dec.peer.ms > 0, JSON.stringify(dec));
    } finally {
      await Deno.remove(file);
    }
    await assert.rejects(
      main(["--quick", "--only", "attention", "--attention", "rows2"]),
      /attention form "rows2": expected "rows4" or "rows1"/,
    );
  },
);

Deno.test(
  "the sampling bench draws the same ids as its peer (logits read back, drawn in JS)",
  gpuTest,
  async () => {
    const file = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const code = await main(["--quick", "--only", "sampling", "--json", file]);
      assert.equal(code, 0);
      const out = JSON.parse(await Deno.readTextFile(file));
      const names = out.results.map((r: { name: string }) => r.name);
      assert.deepEqual(names, [
        "sampling",
        "sampling_greedy",
        "sampling",
        "sampling_greedy",
        "sampling_top_p",
        "sampling_top_k",
      ]);
      const rows = out.results.map((r: { shape: number[] }) => r.shape[0]);
      assert.deepEqual(rows, [8, 8, 16, 64, 16, 16]);
      assert.equal(out.results[4].extra.top_p, 0.9);
      assert.equal(out.results[5].extra.top_k, 50);
      for (const r of out.results) {
        assert.deepEqual(r.shape.slice(1), [64, 20000]);
        assert.ok(r.ms > 0 && r.peer.ms > 0 && r.peak_bytes > 0, JSON.stringify(r));
        // Only a draw within an ulp of a boundary may differ between the two summation orders.
        const [agree, of] = r.extra.agree.split("/").map(Number);
        assert.ok(of === r.shape[0] && agree >= of - 1, JSON.stringify(r));
      }
    } finally {
      await Deno.remove(file);
    }
  },
);

Deno.test(
  "deno task bench --json keeps the finished benches' records when a later bench fails",
  gpuTest,
  async () => {
    const file = await Deno.makeTempFile({ suffix: ".json" });
    const record = { name: "first", shape: [2, 3], ms: 1.5 };
    const benches = [
      { name: "first", run: () => Promise.resolve([record]) },
      { name: "second", run: () => Promise.reject(new Error("second bench failed")) },
    ];
    try {
      await assert.rejects(
        main(["--only", "first,second", "--json", file], benches),
        /second bench failed/,
      );
      const out = JSON.parse(await Deno.readTextFile(file));
      assert.deepEqual(out.results, [record]);
      assert.equal(typeof out.adapter, "string");
    } finally {
      await Deno.remove(file);
    }
  },
);
