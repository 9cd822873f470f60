/**
 * Bandwidth of the small helpers: add over 16M elements (3 x 64 MiB moved) and the transpose
 * the blocked matmul uses to turn long-K "nn" (and "tt", far-strided "tn") products into "nt"
 * ones, at the shape of the 0.5B MLP weight [4864, 896] (2 x 17 MB moved).
 */
import { add } from "../engine/elementwise.ts";
import { transpose } from "../engine/gemm.ts";
import { type Bench, gbps, timeGpu } from "./harness.ts";

export const benches: Bench[] = [{
  name: "elementwise",
  async run({ dev, quick }) {
    const timing = { minMs: quick ? 0 : 1000, batchBelowMs: quick ? 0 : 20 };
    const n = quick ? 1 << 16 : 1 << 24;
    const a = dev.zeros("a", [n]), b = dev.zeros("b", [n]), out = dev.empty("out", [n]);
    const ms = await timeGpu(dev, () => {
      add(dev, a, b, out);
    }, timing);
    for (const t of [a, b, out]) t.dispose();
    const [rows, cols] = quick ? [64, 96] : [4864, 896];
    const x = dev.zeros("x", [rows, cols]), xt = dev.empty("x^T", [cols, rows]);
    const tms = await timeGpu(dev, () => transpose(dev, x, xt), timing);
    for (const t of [x, xt]) t.dispose();
    return [
      { name: "add", shape: [n], ms, gbps: gbps(3 * 4 * n, ms) },
      { name: "transpose", shape: [rows, cols], ms: tms, gbps: gbps(2 * 4 * rows * cols, tms) },
    ];
  },
}];
