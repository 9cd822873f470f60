/**
 * matmul at the Qwen2.5-0.5B shapes with N = 512 tokens: C[M, N] = A[M, K] B[K, N] for
 * [M, K, N] = [512, 896, 896], [512, 896, 128], [512, 896, 4864], [512, 4864, 896], in the
 * model's own layout (x W^T: B stored [N, K], the "nt" kernel), plain (B stored [K, N], the
 * "nn" layout of dx = dy W) and with A stored [K, M] (the "tn" layout of dW += dy^T x); and
 * as `matmul_decode` the same weights against M = 8 rows (one new token for each of 8 sequences,
 * which the tiled forms hand to gemm_skinny).
 *
 * Peer, same run and adapter: @tensorflow/tfjs-backend-webgpu's matMul on the same shapes. Both
 * are timed to completion without reading C back: ours by the device's wait for submitted work,
 * tfjs's by reading back a one-element slice of its last product (which runs after it: on
 * llvmpipe that takes as long as reading all of C, 747 vs 752 ms at [512, 896, 4864]). Fast
 * products are timed in batches per wait (`timeCalls`), the peer's the same way, and all six
 * paths of a shape (our three layouts, tfjs's three) take their timed rounds in turn
 * (`timeCallsAlternating`), so a phase of the shared machine falls on all alike. The peer is
 * tfjs's plain A B product, its fastest form; each record also carries tfjs's time for the
 * record's own layout (`tfjs_same_layout_ms`, matMul with transposeA or transposeB, and
 * `vs_same_layout`, that time over ours): tfjs takes x W^T at [512, 896, 4864] about 2.5x as
 * long as its A B.
 *
 * Beside them, `fma_ceiling` (kernels/fma_ceiling.wgsl) does the multiply-adds of [512, 896,
 * 4864] with its operands in registers: the adapter's best for that arithmetic without loads.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-webgpu";
import { type Device, params } from "../engine/device.ts";
import type { Tensor } from "../engine/tensor.ts";
import { matmul } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";
import {
  type Bench,
  type BenchResult,
  type CallJob,
  gflops,
  timeCalls,
  timeCallsAlternating,
} from "./harness.ts";

const SHAPES: [number, number, number][] = [
  [512, 896, 896],
  [512, 896, 128],
  [512, 896, 4864],
  [512, 4864, 896],
];

/** Decoding: the same weights against one new token for each of 8 sequences. */
const DECODE: [number, number, number][] = [
  [8, 896, 896],
  [8, 896, 4864],
  [8, 4864, 896],
];

/** Records kernels/fma_ceiling.wgsl: M N K multiply-adds, out [M, N] = (row % 8) + K. */
export function fmaCeiling(dev: Device, m: number, k: number, out: Tensor): void {
  const n = out.shape[1];
  const p = params().u32(m).u32(n).u32(k).f32(1);
  dev.dispatch(dev.kernel("fma_ceiling", "fma_ceiling"), [p, out], [
    Math.ceil(n / 256),
    Math.ceil(m / 8),
  ]);
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
    type Job = [string, [number, number, number]];
    const shapes: Job[] = quick ? [["matmul", [64, 128, 96]]] : [
      ...SHAPES.map((x): Job => ["matmul", x]),
      ...DECODE.map((x): Job => ["matmul_decode", x]),
    ];
    for (const [name, [m, k, n]] of shapes) {
      const rng = new Rng(m + k + n);
      const a = rng.normals(m * k), b = rng.normals(k * n);
      const ta = dev.upload("A", a, [m, k]);
      const at = new Float32Array(m * k);
      for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) at[j * m + i] = a[i * k + j];
      const taT = dev.upload("A^T", at, [k, m]);
      const tbNt = dev.upload("B^T", b, [n, k]);
      const tbNn = dev.upload("B", b, [k, n]);
      const tc = dev.empty("C", [m, n]);
      const timing = quick
        ? { warmup: 1, minMs: 0, minIters: 2, batchBelowMs: 0 }
        : { warmup: 1, minMs: 1000, minIters: 3 };
      const wait = () => dev.sync();
      const jobs: CallJob[] = [
        { record: () => matmul(dev, ta, tbNt, tc, { transB: true }), wait },
        { record: () => matmul(dev, ta, tbNn, tc), wait },
        { record: () => matmul(dev, taT, tbNn, tc, { transA: true }), wait },
      ];
      // tfjs in each layout: the peer is its plain A B product (its fastest form); the records
      // also carry the time tfjs takes for the record's own layout (the same operation).
      const tfForms = ["nn", "nt", "tn"] as const;
      const tfLast: (tf.Tensor | undefined)[] = [];
      const tfIn: tf.Tensor[] = [];
      if (haveTf) {
        const xa = tf.tensor2d(a, [m, k]), xb = tf.tensor2d(b, [k, n]);
        const xaT = tf.tensor2d(at, [k, m]), xbT = tf.tensor2d(b, [n, k]);
        tfIn.push(xa, xb, xaT, xbT);
        const forms = {
          nn: () => tf.matMul(xa, xb),
          nt: () => tf.matMul(xa, xbT, false, true),
          tn: () => tf.matMul(xaT, xb, true, false),
        };
        for (const [i, form] of tfForms.entries()) {
          jobs.push({
            record: () => {
              tfLast[i]?.dispose();
              tfLast[i] = forms[form]();
            },
            wait: async () => {
              // A one-element slice of the last product: it runs after that product, so its
              // read-back waits for all the work recorded before it.
              const s = tf.slice(tfLast[i]!, [m - 1, n - 1], [1, 1]);
              await s.data();
              s.dispose();
            },
          });
        }
      }
      // All six in turn, so that the machine's drift falls on ours and the peer's alike.
      const [nt, nn, tn, ...tfTimes] = await timeCallsAlternating(jobs, timing);
      for (const x of [...tfLast, ...tfIn]) x?.dispose();
      let peer: BenchResult["peer"];
      const tfMs: Record<string, number> = {};
      for (const [i, form] of tfForms.entries()) {
        if (tfTimes[i] !== undefined) tfMs[form] = tfTimes[i];
      }
      if (haveTf) {
        peer = { name: "tfjs-webgpu matMul", ms: tfMs.nn, gflops: gflops(2 * m * n * k, tfMs.nn) };
      }
      const layouts = [["x W^T (nt)", nt, "nt"], ["A B (nn)", nn, "nn"], [
        "A^T B (tn)",
        tn,
        "tn",
      ]] as const;
      for (const [layout, ms, form] of layouts) {
        const extra: Record<string, number | string> = { layout };
        if (tfMs[form] !== undefined) {
          extra.tfjs_same_layout_ms = +tfMs[form].toFixed(2);
          extra.vs_same_layout = +(tfMs[form] / ms).toFixed(2);
        }
        out.push({
          name,
          shape: [m, k, n],
          ms,
          gflops: gflops(2 * m * n * k, ms),
          peer,
          extra,
        });
      }
      for (const t of [ta, taT, tbNt, tbNn, tc]) t.dispose();
    }
    // The yardstick: the multiply-adds of the largest shape with no loads at all.
    const [m, k, n] = shapes[shapes.length === 1 ? 0 : 2][1];
    const sink = dev.empty("fma_ceiling.out", [m, n]);
    const ms = await timeCalls(
      () => fmaCeiling(dev, m, k, sink),
      () => dev.sync(),
      quick ? { minMs: 0, minIters: 1, batchBelowMs: 0 } : {},
    );
    sink.dispose();
    out.push({
      name: "fma_ceiling",
      shape: [m, k, n],
      ms,
      gflops: gflops(2 * m * n * k, ms),
      extra: { note: "same multiply-adds, operands in registers, no loads" },
    });
    return out;
  },
}];
