/**
 * matmul at the Qwen2.5-0.5B shapes with N = 512 tokens: C[M, N] = A[M, K] B[K, N] for
 * [M, K, N] = [512, 896, 896], [512, 896, 128], [512, 896, 4864], [512, 4864, 896], in the
 * model's own layout (x W^T: B stored [N, K], the "nt" kernel) and plain (B stored [K, N]).
 *
 * Peer, same run and adapter: @tensorflow/tfjs-backend-webgpu's matMul on the same shapes, timed
 * to completion (`dataSync` of a one-element slice would not wait for all of it, so the whole
 * result is read back; our timing includes a full read-back of C too).
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-webgpu";
import { matmul } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";
import { batchSize, type Bench, type BenchResult, gflops } from "./harness.ts";

const SHAPES: [number, number, number][] = [
  [512, 896, 896],
  [512, 896, 128],
  [512, 896, 4864],
  [512, 4864, 896],
];

/**
 * Median ms per product of `f(reps)`, which does `reps` products and one read-back. `reps` is
 * 1 where a product takes 20 ms or more (llvmpipe); on a fast GPU enough products share each
 * read-back that the figure is the product's, and the peer gets the same `reps`.
 */
async function median(f: (reps: number) => Promise<void>, iters: number, reps: number) {
  await f(reps);
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await f(reps);
    ts.push((performance.now() - t0) / reps);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

let tfReady: Promise<boolean> | null = null;
function initTf(log: (s: string) => void): Promise<boolean> {
  tfReady ??= (async () => {
    try {
      const ok = await tf.setBackend("webgpu");
      await tf.ready();
      return ok;
    } catch (e) {
      log(`tfjs-webgpu peer unavailable: ${(e as Error).message}`);
      return false;
    }
  })();
  return tfReady;
}

export const benches: Bench[] = [{
  name: "matmul",
  run: async ({ dev, quick, log }) => {
    const out: BenchResult[] = [];
    const haveTf = await initTf(log);
    const shapes = quick ? [[64, 128, 96] as [number, number, number]] : SHAPES;
    const iters = quick ? 2 : 3;
    for (const [m, k, n] of shapes) {
      const rng = new Rng(m + k + n);
      const a = rng.normals(m * k), b = rng.normals(k * n);
      const ta = dev.upload("A", a, [m, k]);
      const tbNt = dev.upload("B^T", b, [n, k]);
      const tbNn = dev.upload("B", b, [k, n]);
      const tc = dev.empty("C", [m, n]);
      const ours = (opts: { transB?: boolean }, b: typeof tbNt) => async (reps: number) => {
        for (let r = 0; r < reps; r++) matmul(dev, ta, b, tc, opts);
        await tc.read();
      };
      const t0 = performance.now();
      await ours({ transB: true }, tbNt)(1);
      const reps = quick ? 1 : batchSize(performance.now() - t0, 20);
      const nt = await median(ours({ transB: true }, tbNt), iters, reps);
      const nn = await median(ours({}, tbNn), iters, reps);
      let peer: BenchResult["peer"];
      if (haveTf) {
        const xa = tf.tensor2d(a, [m, k]), xb = tf.tensor2d(b, [k, n]);
        const pm = await median(
          async (reps) => {
            for (let r = 1; r < reps; r++) tf.matMul(xa, xb).dispose();
            const y = tf.matMul(xa, xb);
            await y.data();
            y.dispose();
          },
          iters,
          reps,
        );
        xa.dispose();
        xb.dispose();
        peer = { name: "tfjs-webgpu matMul", ms: pm, gflops: gflops(2 * m * n * k, pm) };
      }
      for (const [layout, ms] of [["x W^T (nt)", nt], ["A B (nn)", nn]] as const) {
        out.push({
          name: "matmul",
          shape: [m, k, n],
          ms,
          gflops: gflops(2 * m * n * k, ms),
          peer,
          extra: { layout, reps },
        });
      }
      for (const t of [ta, tbNt, tbNn, tc]) t.dispose();
    }
    return out;
  },
}];
