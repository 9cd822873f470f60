/**
 * AdamW over 50M parameters (one tensor, so the update is chunked over the 128 MiB binding
 * limit on llvmpipe). Bytes moved per element: the norm pass reads g (4); the update reads
 * g, p, m, v and writes p, m, v (28). Peer: the same update as a plain JavaScript loop over
 * Float32Arrays on the CPU, timed in the same run.
 */
import { AdamW } from "../engine/adamw.ts";
import { type Bench, gbps, timeGpu } from "./harness.ts";

function cpuAdamW(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number) {
  const b1 = 0.9, b2 = 0.999, lr = 1e-3, eps = 1e-8, wd = 0.01;
  let sq = 0;
  for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  const scale = Math.sqrt(sq) > 1 ? 1 / Math.sqrt(sq) : 1;
  const s1 = lr / (1 - b1 ** t), r2 = 1 / Math.sqrt(1 - b2 ** t);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * scale;
    const mi = m[i] = b1 * m[i] + (1 - b1) * gi;
    const vi = v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    p[i] = p[i] * (1 - lr * wd) - s1 * mi / (Math.sqrt(vi) * r2 + eps);
  }
}

export const benches: Bench[] = [{
  name: "adamw",
  async run({ dev, quick }) {
    const n = quick ? 1 << 16 : 50_000_000;
    const param = dev.zeros("param", [n]);
    const grad = dev.zeros("grad", [n]);
    const opt = new AdamW(dev, [{ name: "param", param, grad }], { lr: 1e-3, weightDecay: 0.01 });
    const ms = await timeGpu(dev, () => opt.record(), {
      minMs: quick ? 0 : 2000,
      maxIters: quick ? 2 : 10,
      batchBelowMs: quick ? 0 : 20,
    });
    const bytes = 32 * n;
    opt.dispose();
    param.dispose();
    grad.dispose();
    const [p, g, m, v] = [0, 1, 2, 3].map(() => new Float32Array(n));
    let t = 0;
    const iters = quick ? 1 : 3;
    const c0 = performance.now();
    for (let i = 0; i < iters; i++) cpuAdamW(p, g, m, v, ++t);
    const cpuMs = (performance.now() - c0) / iters;
    return [{
      name: "adamw",
      shape: [n],
      ms,
      gbps: gbps(bytes, ms),
      peer: { name: "cpu-js-loop", ms: cpuMs, gbps: gbps(bytes, cpuMs) },
    }];
  },
}];
