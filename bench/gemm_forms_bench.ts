/**
 * `deno task bench --only gemm_forms`: times every matmul kernel form and tile (dev.gemm) at the
 * model's shapes on this adapter, forward ("nt"), input gradient ("nn") and weight gradient
 * ("tn") layouts, checks each form's output against the first form's, and names the fastest
 * tiled form by summed time, to pass as `--gemm` (or `Device.create({ gemm })`).
 * Opt-in (it times 13 forms x 8 shapes): it runs only when named.
 */
import type { GemmForm } from "../engine/device.ts";
import { matmul } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";
import { type Bench, type BenchResult, gemmName, gflops, timeGpu } from "./harness.ts";

type Layout = "nt" | "nn" | "tn";

const SHAPES: [number, number, number, Layout][] = [
  [512, 896, 896, "nt"],
  [512, 896, 128, "nt"],
  [512, 896, 4864, "nt"],
  [512, 4864, 896, "nt"],
  [512, 4864, 896, "nn"],
  [4864, 512, 896, "tn"],
  [512, 896, 16384, "nt"],
  [16384, 512, 896, "tn"],
];

export const FORMS: GemmForm[] = [
  { form: "blocked", wx: 16, wy: 16, bk: 16 },
  ...[8, 16, 32].map((bk) => ({ form: "tiled" as const, wx: 16, wy: 16, bk })),
  { form: "tiled", wx: 8, wy: 8, bk: 16 },
  { form: "tiled", wx: 16, wy: 8, bk: 16 },
  ...[8, 16, 32].map((bk) => ({ form: "tiled8" as const, wx: 8, wy: 8, bk })),
  { form: "tiled8", wx: 16, wy: 8, bk: 16 },
  { form: "tiled8", wx: 8, wy: 16, bk: 16 },
  ...[8, 16].map((bk) => ({ form: "tiled8" as const, wx: 16, wy: 16, bk })),
];

export const benches: Bench[] = [{
  name: "gemm_forms",
  optIn: true,
  run: async ({ dev, quick, log }) => {
    const shapes = quick
      ? SHAPES.slice(0, 3).map(([m, k, n, l]) => [m / 16, k / 16, n / 16, l] as typeof SHAPES[0])
      : SHAPES;
    const forms = quick ? FORMS.filter((_, i) => i % 4 === 0) : FORMS;
    const rng = new Rng(5);
    const data = shapes.map(([m, k, n, l]) => ({
      a: dev.upload("A", rng.normals(m * k), l === "tn" ? [k, m] : [m, k]),
      b: dev.upload("B", rng.normals(k * n), l === "nt" ? [n, k] : [k, n]),
      c: dev.empty("C", [m, n]),
      opts: { transA: l === "tn", transB: l === "nt" },
    }));
    const before = dev.gemm;
    const ref: Float32Array[] = [];
    const out: BenchResult[] = [];
    let best = "", bestMs = Infinity;
    try {
      for (const g of forms) {
        dev.gemm = g;
        let total = 0;
        for (let i = 0; i < shapes.length; i++) {
          const [m, k, n, layout] = shapes[i];
          const d = data[i];
          const ms = await timeGpu(dev, () => matmul(dev, d.a, d.b, d.c, d.opts), {
            minMs: quick ? 0 : 150,
            minIters: quick ? 1 : 3,
          });
          const got = await d.c.read();
          ref[i] ??= got;
          let err = 0;
          for (let j = 0; j < got.length; j++) err = Math.max(err, Math.abs(got[j] - ref[i][j]));
          // Sums of K products of unit normals in a different order: about 1e-6 sqrt(K) apart.
          if (!(err <= 1e-4 * Math.sqrt(k))) {
            throw new Error(`${gemmName(g)} [${m}, ${k}, ${n}] ${layout}: differs by ${err}`);
          }
          total += ms;
          out.push({
            name: "gemm_form",
            shape: [m, k, n],
            ms,
            gflops: gflops(2 * m * n * k, ms),
            extra: { form: gemmName(g), layout },
          });
        }
        log(`gemm_forms: ${gemmName(g).padEnd(18)} ${total.toFixed(2)} ms over the shapes`);
        if (g.form !== "blocked" && total < bestMs) [best, bestMs] = [gemmName(g), total];
      }
    } finally {
      dev.gemm = before;
      for (const d of data) for (const t of [d.a, d.b, d.c]) t.dispose();
    }
    log(`gemm_forms: fastest tiled form here: --gemm ${best}`);
    return out;
  },
}];
