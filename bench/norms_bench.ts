/**
 * Bandwidth of the memory-bound kernels at Qwen2.5-0.5B shapes with N = 512 tokens: RMSNorm
 * (hidden 896), RoPE (q: 14 heads, k: 2 heads, head dim 64), SwiGLU (intermediate 4864),
 * embedding gather and scatter-add (vocab 151936 x 896) and the bf16/f16 casts.
 *
 * GB/s counts the bytes each kernel must read and write at least once. No peer is named for these
 * ops; beside each figure is a buffer-to-buffer copy of the same byte count from the same run
 * (copyBufferToBuffer, read + write), the bandwidth ceiling of the adapter.
 */
import { castF32ToBf16, castHalfToF32 } from "../engine/cast.ts";
import type { Device } from "../engine/device.ts";
import { embeddingBackward, embeddingForward } from "../engine/embedding.ts";
import { Rng } from "../engine/rng.ts";
import { rmsnormBackward, rmsnormForward } from "../engine/rmsnorm.ts";
import { ropeBackward, ropeForward } from "../engine/rope.ts";
import { swigluBackward, swigluForward } from "../engine/swiglu.ts";
import { type Bench, type BenchResult, gbps, type PeerResult, timeGpu } from "./harness.ts";

const N = 512, HIDDEN = 896, INTERMEDIATE = 4864, HEAD_DIM = 64, Q_HEADS = 14, KV_HEADS = 2;
const VOCAB = 151936;

/**
 * Milliseconds per call of `record`, from the slope between 1 and `reps` back-to-back calls in
 * one submission: the fixed cost of a submit and wait (about 12 ms on llvmpipe) is not the
 * kernel's. Where noise makes the slope meaningless (not positive), the mean over `reps` calls,
 * overhead included, is the figure. In quick mode (a smoke test of tiny shapes) it is one call
 * with its overhead.
 */
export async function msPerCall(
  dev: Device,
  record: () => void,
  quick: boolean,
  reps = 16,
): Promise<number> {
  if (quick) {
    return await timeGpu(dev, record, { minMs: 0, minIters: 1, warmup: 1, batchBelowMs: 0 });
  }
  const opts = { minMs: 500, minIters: 3, batchBelowMs: 0 };
  const one = await timeGpu(dev, record, opts);
  const many = await timeGpu(dev, () => {
    for (let i = 0; i < reps; i++) record();
  }, opts);
  const slope = (many - one) / (reps - 1);
  return slope > 0 ? slope : many / reps;
}

/** A copy moving `bytes` in total (half read, half written), as the peer. */
async function copyPeer(dev: Device, bytes: number, quick: boolean): Promise<PeerResult> {
  const n = Math.max(64, Math.round(bytes / 8));
  const a = dev.zeros("copy src", [n]), b = dev.empty("copy dst", [n]);
  const ms = await msPerCall(dev, () => dev.copy(a, b), quick);
  a.dispose();
  b.dispose();
  return { name: "copy", ms, gbps: gbps(8 * n, ms) };
}

async function measure(
  dev: Device,
  quick: boolean,
  name: string,
  shape: number[],
  bytes: number,
  record: () => void,
): Promise<BenchResult> {
  const ms = await msPerCall(dev, record, quick);
  return { name, shape, ms, gbps: gbps(bytes, ms), peer: await copyPeer(dev, bytes, quick) };
}

export const benches: Bench[] = [{
  name: "rmsnorm",
  async run({ dev, quick }) {
    const n = quick ? 16 : N, d = quick ? 96 : HIDDEN;
    const x = dev.zeros("x", [n, d]), w = dev.zeros("w", [d]), y = dev.empty("y", [n, d]);
    const rstd = dev.empty("rstd", [n]), dy = dev.zeros("dy", [n, d]), dx = dev.empty("dx", [n, d]);
    const dw = dev.zeros("dw", [d]);
    const out = [
      // reads x, w; writes y, rstd
      await measure(dev, quick, "rmsnorm_fwd", [n, d], 4 * (2 * n * d + d + n), () => {
        rmsnormForward(dev, x, w, y, rstd, 1e-6);
      }),
      // reads x, dy (dx pass and dw pass), w, rstd; writes dx, dw
      await measure(dev, quick, "rmsnorm_bwd", [n, d], 4 * (5 * n * d + 2 * d + n), () => {
        rmsnormBackward(dev, x, w, rstd, dy, dx, dw, { accumulateDw: true });
      }),
    ];
    for (const t of [x, w, y, rstd, dy, dx, dw]) t.dispose();
    return out;
  },
}, {
  name: "rope",
  async run({ dev, quick }) {
    const n = quick ? 16 : N;
    const pos = dev.upload("positions", Uint32Array.from({ length: n }, (_, t) => t), [n], "u32");
    const opts = { headDim: HEAD_DIM, theta: 1_000_000 };
    const out: BenchResult[] = [];
    for (const [label, heads] of [["q", Q_HEADS], ["k", KV_HEADS]] as const) {
      const x = dev.zeros(label, [n, heads * HEAD_DIM]);
      const dx = dev.empty(`d${label}`, [n, heads * HEAD_DIM]);
      const bytes = 4 * (2 * n * heads * HEAD_DIM + n);
      out.push(
        await measure(dev, quick, `rope_fwd_${label}`, [n, heads, HEAD_DIM], bytes, () => {
          ropeForward(dev, x, pos, opts);
        }),
        await measure(dev, quick, `rope_bwd_${label}`, [n, heads, HEAD_DIM], bytes, () => {
          ropeBackward(dev, x, pos, { ...opts, out: dx });
        }),
      );
      x.dispose();
      dx.dispose();
    }
    pos.dispose();
    return out;
  },
}, {
  name: "swiglu",
  async run({ dev, quick }) {
    const n = quick ? 16 : N, I = quick ? 128 : INTERMEDIATE;
    const g = dev.zeros("gate", [n, I]), u = dev.zeros("up", [n, I]), h = dev.empty("h", [n, I]);
    const dg = dev.empty("dgate", [n, I]), du = dev.empty("dup", [n, I]);
    const out = [
      await measure(dev, quick, "swiglu_fwd", [n, I], 4 * 3 * n * I, () => {
        swigluForward(dev, g, u, h);
      }),
      await measure(dev, quick, "swiglu_bwd", [n, I], 4 * 5 * n * I, () => {
        swigluBackward(dev, g, u, h, dg, du);
      }),
    ];
    for (const t of [g, u, h, dg, du]) t.dispose();
    return out;
  },
}, {
  name: "embedding",
  async run({ dev, quick }) {
    const n = quick ? 16 : N, V = quick ? 4096 : VOCAB, d = quick ? 64 : HIDDEN;
    const rng = new Rng(1);
    const ids = Array.from({ length: n }, () => rng.int(V));
    // The full [151936, 896] matrix: 544 MB, bound in several chunks.
    const W = dev.zeros("embed_tokens", [V, d]), dW = dev.zeros("dembed", [V, d]);
    const x = dev.empty("hidden", [n, d]);
    const out = [
      // reads n rows of W (and n ids), writes n rows
      await measure(dev, quick, "embedding_fwd", [n, V, d], 4 * (2 * n * d + n), () => {
        embeddingForward(dev, W, ids, x);
      }),
      // reads n rows of dout and the touched rows of dW, writes those rows (upload included)
      await measure(dev, quick, "embedding_bwd", [n, V, d], 4 * (3 * n * d + 3 * n), () => {
        embeddingBackward(dev, ids, x, dW);
      }),
    ];
    for (const t of [W, dW, x]) t.dispose();
    dev.trim();
    return out;
  },
}, {
  name: "cast",
  async run({ dev, quick }) {
    // One MLP weight of Qwen2.5-0.5B: [4864, 896].
    const n = quick ? 1 << 14 : INTERMEDIATE * HIDDEN;
    const packed = dev.zeros("w (bf16)", [n / 2], "u32"), w = dev.empty("w", [n]);
    const out = [
      await measure(dev, quick, "cast_bf16_f32", [n], 6 * n, () => {
        castHalfToF32(dev, "bf16", packed, w);
      }),
      await measure(dev, quick, "cast_f16_f32", [n], 6 * n, () => {
        castHalfToF32(dev, "f16", packed, w);
      }),
      await measure(dev, quick, "cast_f32_bf16", [n], 6 * n, () => {
        castF32ToBf16(dev, w, packed);
      }),
    ];
    packed.dispose();
    w.dispose();
    return out;
  },
}];
