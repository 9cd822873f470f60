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
import { type Bench, type BenchResult, gflops } from "./harness.ts";

const SHAPES: [number, number, number][] = [
  [512, 896, 896],
  [512, 896, 128],
  [512, 896, 4864],
  [512, 4864, 896],
];

async function median(f: () => Promise<void>, iters: number): Promise<number> {
  await f();
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
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
      const nt = await median(async () => {
        matmul(dev, ta, tbNt, tc, { transB: true });
        await tc.read();
      }, iters);
      const nn = await median(async () => {
        matmul(dev, ta, tbNn, tc);
        await tc.read();
      }, iters);
      let peer: BenchResult["peer"];
      if (haveTf) {
        const xa = tf.tensor2d(a, [m, k]), xb = tf.tensor2d(b, [k, n]);
        const pm = await median(async () => {
          const y = tf.matMul(xa, xb);
          await y.data();
          y.dispose();
        }, iters);
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
          extra: { layout },
        });
      }
      for (const t of [ta, tbNt, tbNn, tc]) t.dispose();
    }
    return out;
  },
}];
