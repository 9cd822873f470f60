/**
 * Sampling the next token at Qwen2.5-0.5B shapes, hidden [R, 896] against the vocabulary
 * matrix [151936, 896], one decode step: 8 rows (one group of sequences) at temperature 1 (the
 * RL rollouts) and greedy (the evaluations), 16 rows at temperature 1 and 64 rows greedy (the
 * row counts where llvmpipe takes the 16 x 16 logits layout, which then stores no logits), and
 * 16 rows at temperature 1 with top-p 0.9 and with top-k 50 (`sampling_top_p`, `sampling_top_k`:
 * the threshold searches over the stored logits).
 *
 * Fused: `sampleTokens` (engine/sampling.ts), logits in vocabulary chunks into a GPU scratch,
 * the draw on the GPU; only the R ids and log-probs come back.
 * Peer, same run: the naive path, logits [R, 151936] by the matmul (in chunks, each under one
 * storage binding), read back to the CPU (4.9 MB at R = 8) and sampled there in JavaScript from the same
 * counter-based uniforms. Both draws are compared: `agree` counts the rows whose ids match
 * (the two paths sum the logits in different orders, so a row whose draw sits within an ulp of
 * a boundary may differ; a mismatch in more than one row would mean a bug).
 */
import type { Device } from "../engine/device.ts";
import { matmul } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";
import { HeadTextures, sampleTokens } from "../engine/sampling.ts";
import { sampleRowRef, samplingUniform } from "../engine/sampling_ref.ts";
import type { Tensor } from "../engine/tensor.ts";
import { type Bench, type BenchResult, interleaved } from "./harness.ts";

/** One row's draw from logits `z` as a plain CPU sampler would: greedy, softmax at T, or the
 * reference's nucleus (top-p) draw. */
function drawRow(
  z: Float32Array,
  temperature: number,
  u: number,
  topP: number,
  topK: number,
): number {
  if (topP < 1 || topK > 0) return sampleRowRef(z, { temperature, topP, topK, u }).token;
  let m = -Infinity, amax = 0;
  for (let v = 0; v < z.length; v++) {
    if (z[v] > m) {
      m = z[v];
      amax = v;
    }
  }
  if (temperature === 0) return amax;
  let total = 0;
  for (let v = 0; v < z.length; v++) total += Math.exp((z[v] - m) / temperature);
  const target = u * total;
  let cum = 0;
  for (let v = 0; v < z.length; v++) {
    cum += Math.exp((z[v] - m) / temperature);
    if (cum > target) return v;
  }
  return z.length - 1;
}

/** The naive path: full logits on the GPU, read back, drawn on the CPU. */
async function naive(
  dev: Device,
  hidden: Tensor,
  weight: Tensor,
  temperature: number,
  topP: number,
  topK: number,
  seed: number,
  counter: number,
  block: number,
): Promise<Uint32Array> {
  const [rows] = hidden.shape;
  const [v] = weight.shape;
  const parts: Tensor[] = [];
  for (let v0 = 0; v0 < v; v0 += block) {
    const c = Math.min(block, v - v0);
    const t = dev.empty(`naive.logits.${v0}`, [rows, c]);
    matmul(dev, hidden, weight.rows(v0, c), t, { transB: true });
    parts.push(t);
  }
  const z = new Float32Array(rows * v);
  let v0 = 0;
  for (const t of parts) {
    const c = t.shape[1];
    const got = await t.read();
    for (let r = 0; r < rows; r++) z.set(got.subarray(r * c, (r + 1) * c), r * v + v0);
    v0 += c;
    t.dispose();
  }
  const tokens = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    const u = samplingUniform(seed, counter, r);
    tokens[r] = drawRow(z.subarray(r * v, (r + 1) * v), temperature, u, topP, topK);
  }
  return tokens;
}

export const benches: Bench[] = [{
  name: "sampling",
  run: async ({ dev, quick }) => {
    const d = quick ? 64 : 896, v = quick ? 20000 : 151936;
    const rng = new Rng(3);
    // Weights of std 0.05 give logits of std ~1.5 at d = 896: a spread-out distribution.
    const weight = dev.upload("weight", rng.normals(v * d, quick ? 0.2 : 0.05), [v, d]);
    const limit = dev.limits.maxStorageBufferBindingSize;
    const iters = quick ? 1 : 3;
    const seed = 1234;
    const res: BenchResult[] = [];
    // rows, temperature, top-p, top-k
    const cases = [
      [8, 1, 1, 0],
      [8, 0, 1, 0],
      [16, 1, 1, 0],
      [64, 0, 1, 0],
      [16, 1, 0.9, 0],
      [16, 1, 1, 50],
    ];
    for (const [rows, temperature, topP, topK] of cases) {
      const hidden = dev.upload("hidden", rng.normals(rows * d, 1), [rows, d]);
      const tokens = dev.empty("tokens", [rows], "u32");
      const logp = dev.empty("logp", [rows]);
      const block = Math.min(v, Math.floor(limit / (4 * Math.max(rows, d)) / 64) * 64);
      let counter = 0;
      let peerTokens: Uint32Array = new Uint32Array(rows);
      // As generation does: where the device samples the head from textures (llvmpipe, 16 x 16
      // layout), the head's textures are made once and kept (their bytes are in the record).
      const heads = HeadTextures.wanted(dev, rows, d)
        ? HeadTextures.create(dev, weight)
        : undefined;
      const [fused, peer] = await interleaved(dev, [
        () =>
          sampleTokens(dev, {
            hidden,
            weight,
            temperature,
            topP,
            topK,
            seed,
            counter,
            tokens,
            logp,
            headTextures: heads,
          }),
        async () => {
          peerTokens = await naive(
            dev,
            hidden,
            weight,
            temperature,
            topP,
            topK,
            seed,
            counter,
            block,
          );
          counter++; // the next pair of calls draws with fresh uniforms
        },
      ], iters);
      // The last pair drew with counter - 1: compare its ids.
      const ours = await tokens.read();
      const agree = ours.filter((t, r) => t === peerTokens[r]).length;
      res.push({
        name: temperature === 0
          ? "sampling_greedy"
          : topP < 1
          ? "sampling_top_p"
          : topK > 0
          ? "sampling_top_k"
          : "sampling",
        shape: [rows, d, v],
        ms: fused.ms,
        gflops: (2 * rows * d * v) / (fused.ms * 1e6),
        peak_bytes: fused.peak,
        peer: { name: "logits to the CPU + JS sampler", ms: peer.ms, peak_bytes: peer.peak },
        extra: {
          temperature,
          ...(topP < 1 ? { top_p: topP } : {}),
          ...(topK > 0 ? { top_k: topK } : {}),
          agree: `${agree}/${rows}`,
          ...(heads ? { head_textures_mib: +(v * d * 4 / 2 ** 20).toFixed(1) } : {}),
        },
      });
      heads?.release();
      for (const t of [hidden, tokens, logp]) t.dispose();
    }
    weight.dispose();
    return res;
  },
}];
