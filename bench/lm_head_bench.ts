/**
 * The fused LM head + log-softmax at Qwen2.5-0.5B shapes: hidden [512, 896], vocabulary matrix
 * [151936, 896] (544 MB, streamed in chunks), giving logp(target), logsumexp and entropy [512].
 *
 * Peer, same run: the naive path, which materialises the full logits [512, 151936] (311 MB, as
 * several tensors since one binding holds at most 128 MiB) and then log-softmaxes each row.
 * peak_bytes is the extra GPU memory each path allocates beyond its inputs and outputs (from
 * the device's live-bytes counter, with the buffer pool emptied first). The two forwards are
 * timed in turn, three calls each after a warm-up, and the medians compared: both spend nearly
 * all their time in the same matmul kernel, so drift between two separate runs would decide the
 * ratio otherwise.
 */
import type { Device } from "../engine/device.ts";
import { params } from "../engine/device.ts";
import { matmul } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import { foldLogits, lmHeadBackward, lmHeadForward } from "../engine/vocab_head.ts";
import { type Bench, type BenchResult, interleaved } from "./harness.ts";

/** Full logits in column blocks of `block` vocabulary rows, all alive at once, then softmax. */
function naive(
  dev: Device,
  hidden: Tensor,
  weight: Tensor,
  targets: Tensor<"u32">,
  logp: Tensor,
  lse: Tensor,
  entropy: Tensor,
  block: number,
): void {
  const [n] = hidden.shape;
  const [v] = weight.shape;
  const logits: Tensor[] = [];
  for (let v0 = 0; v0 < v; v0 += block) {
    const c = Math.min(block, v - v0);
    const t = dev.empty(`naive.logits.${v0}`, [n, c]);
    matmul(dev, hidden, weight.rows(v0, c), t, { transB: true });
    logits.push(t);
  }
  const state = dev.empty("naive.state", [n, 4]);
  let v0 = 0;
  for (const t of logits) {
    foldLogits(dev, t, targets, state, n, t.shape[1], v0, v0 === 0);
    v0 += t.shape[1];
  }
  const grid = dev.grid(Math.ceil(n / 64));
  const p = params().u32(n).u32(0).u32(0).u32(0);
  dev.dispatch(
    dev.kernel("vocab_head", "finish"),
    [p, undefined, targets, state, logp, lse, entropy],
    grid,
  );
  for (const t of logits) t.dispose();
  state.dispose();
}

export const benches: Bench[] = [{
  name: "lm_head",
  run: async ({ dev, quick }) => {
    const n = quick ? 16 : 512, d = quick ? 64 : 896, v = quick ? 20000 : 151936;
    const rng = new Rng(1);
    const hidden = dev.upload("hidden", rng.normals(n * d, 0.5), [n, d]);
    const weight = dev.upload("weight", rng.normals(v * d, 0.02), [v, d]);
    const targets = dev.upload(
      "targets",
      Uint32Array.from({ length: n }, () => rng.int(v)),
      [n],
      "u32",
    );
    const logp = dev.empty("logp", [n]), lse = dev.empty("lse", [n]), ent = dev.empty("ent", [n]);
    const iters = quick ? 1 : 3;
    // The largest block whose logits [n, block] and weight rows [block, d] each fit one binding.
    const limit = dev.limits.maxStorageBufferBindingSize;
    const block = Math.floor(limit / (4 * Math.max(n, d)) / 64) * 64;
    const [fused, peer] = await interleaved(dev, [
      () => lmHeadForward(dev, { hidden, weight, targets, logp, lse, entropy: ent }),
      () => naive(dev, hidden, weight, targets, logp, lse, ent, Math.min(block, v)),
    ], iters);
    const dl = dev.upload("dlogp", rng.normals(n), [n]);
    const dh = dev.empty("dhidden", [n, d]);
    const dw = dev.zeros("dweight", [v, d]);
    const [bwd] = await interleaved(dev, [() =>
      lmHeadBackward(dev, {
        hidden,
        weight,
        targets,
        lse,
        dlogp: dl,
        dhidden: dh,
        dweight: dw,
      })], 1);
    const flops = 2 * n * v * d;
    const res: BenchResult[] = [{
      name: "lm_head_logprobs",
      shape: [n, d, v],
      ms: fused.ms,
      gflops: flops / (fused.ms * 1e6),
      peak_bytes: fused.peak,
      peer: { name: "naive logits + log-softmax", ms: peer.ms, peak_bytes: peer.peak },
    }, {
      name: "lm_head_backward",
      shape: [n, d, v],
      ms: bwd.ms,
      gflops: (3 * flops) / (bwd.ms * 1e6),
      peak_bytes: bwd.peak,
    }];
    for (const t of [hidden, weight, targets, logp, lse, ent, dl, dh, dw]) t.dispose();
    return res;
  },
}];
