import assert from "node:assert/strict";
import { Device } from "../engine/device.ts";
import { fill } from "../engine/elementwise.ts";
import { matmul } from "../engine/gemm.ts";
import { formatKernelTimes } from "../engine/kernel_profile.ts";
import { Rng } from "../engine/rng.ts";
import { gpuTest } from "./util.ts";

Deno.test("formatKernelTimes: shares of the total, the largest first as given, the rest counted", () => {
  const rows = [
    { name: "gemm:gemm_nt16:ACC=0,BIAS=0", calls: 3, ms: 30 },
    { name: "elementwise:fill", calls: 10, ms: 10 },
    { name: "elementwise:add", calls: 1, ms: 0 },
  ];
  const text = formatKernelTimes(rows, 2).split("\n");
  assert.equal(text[0], "GPU time per kernel: 40.0 ms in 14 dispatches");
  assert.match(text[1], /^ +30\.0 ms +75\.0% +3 calls {2}gemm:gemm_nt16:ACC=0,BIAS=0$/);
  assert.match(text[2], /^ +10\.0 ms +25\.0% +10 calls {2}elementwise:fill$/);
  assert.equal(text[3], "  ... 1 more kernels");
  assert.equal(formatKernelTimes([]), "GPU time per kernel: 0.0 ms in 0 dispatches");
});

Deno.test(
  "kernel profile: every dispatch counted per kernel, past a submission's capacity, same results",
  gpuTest,
  async () => {
    const dev = await Device.create({ log: () => {} });
    try {
      if (!dev.features.has("timestamp-query")) {
        assert.throws(() => dev.startKernelProfile(), /needs the timestamp-query feature/);
        return;
      }
      await assert.rejects(() => dev.kernelProfile(), /startKernelProfile\(\) was not called/);
      const rng = new Rng(5);
      const a = dev.upload("a", rng.normals(40 * 24), [40, 24]);
      const b = dev.upload("b", rng.normals(36 * 24), [36, 24]);
      const c = dev.empty("c", [40, 36]);
      matmul(dev, a, b, c, { transB: true });
      const before = await c.read();
      assert.throws(() => dev.startKernelProfile(0), /capacity 0 must be an integer/);
      // 4 dispatches per submission, so the 12 below take three submissions at least.
      dev.startKernelProfile(4);
      const t = dev.empty("t", [100]);
      for (let i = 0; i < 10; i++) fill(dev, i, t);
      matmul(dev, a, b, c, { transB: true });
      matmul(dev, a, b, c, { transB: true });
      const rows = await dev.kernelProfile();
      const after = await c.read();
      assert.deepEqual(new Uint32Array(after.buffer), new Uint32Array(before.buffer));
      assert.deepEqual((await t.read())[99], 9);
      const byName = new Map(rows.map((r) => [r.name, r]));
      const fills = [...byName.values()].filter((r) => r.name.startsWith("elementwise:"));
      assert.equal(fills.reduce((s, r) => s + r.calls, 0), 10, JSON.stringify(rows));
      const gemms = rows.filter((r) => r.name.startsWith("gemm"));
      assert.equal(gemms.reduce((s, r) => s + r.calls, 0), 2, JSON.stringify(rows));
      assert.ok(rows.every((r) => r.ms >= 0) && rows.some((r) => r.ms > 0), JSON.stringify(rows));
      // Sorted by time, and the table keeps adding up.
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].ms >= rows[i].ms);
      fill(dev, 1, t);
      const again = await dev.kernelProfile();
      assert.equal(again.reduce((s, r) => s + r.calls, 0), 13);
    } finally {
      dev.destroy();
    }
  },
);
