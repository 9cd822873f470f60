/** Bandwidth of the elementwise helpers (add over 16M elements: 3 x 64 MiB moved). */
import { add } from "../engine/elementwise.ts";
import { type Bench, gbps, timeGpu } from "./harness.ts";

export const benches: Bench[] = [{
  name: "elementwise",
  async run({ dev, quick }) {
    const n = quick ? 1 << 16 : 1 << 24;
    const a = dev.zeros("a", [n]), b = dev.zeros("b", [n]), out = dev.empty("out", [n]);
    const ms = await timeGpu(dev, () => {
      add(dev, a, b, out);
    }, { minMs: quick ? 0 : 1000, batchBelowMs: quick ? 0 : 20 });
    for (const t of [a, b, out]) t.dispose();
    return [{ name: "add", shape: [n], ms, gbps: gbps(3 * 4 * n, ms) }];
  },
}];
