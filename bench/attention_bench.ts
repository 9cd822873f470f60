/**
 * Causal GQA attention at Qwen2.5-0.5B shapes: 1 sequence x 512 tokens, 14 query / 2 KV heads,
 * head dim 64. Forward and backward ms and GFLOPS, and the naive peer from the same run.
 *
 * GFLOPS counts the useful causal FLOPs: forward 4 * (T^2 / 2) * D * Hq (S = q k^T and P V over
 * the lower triangle), backward 2.5 x that (FlashAttention-2's count: dV, dP, dQ, dK plus the
 * recomputed S). Our backward executes 3.5 x (S and dP are recomputed in both the dq pass and
 * the dk/dv pass, the price of no atomics); in the "rows1" form 4.5 x (the dk and dv passes
 * each recompute S). The kernels are the device's form (`--attention`), named in `form=`.
 *
 * Peers, measured in the same run:
 * - forward: the naive attention below (NOT part of the engine) materialises the scores
 *   S [Hq, T, T] in GPU memory, softmaxes each row in place, then multiplies by V; three plain
 *   kernels, one output element per invocation. `peak_bytes` is the GPU memory the op's tensors
 *   occupy at its peak (inputs, outputs and scratch), from dev.memory.peak after resetPeak().
 * - backward: there is no GPU peer; the float64 CPU reference (engine/attention_ref.ts, plain
 *   single-threaded JavaScript) is timed once on the same inputs.
 * - decode (`attention_decode`: 8 sequences, one new query each, against a KV cache of T rows):
 *   the other form's decode kernel, timed in alternating rounds with the device's (rows4's
 *   attn_decode_rows, one invocation per row and head; rows1's attn_decode, a workgroup each).
 */
import { attentionBackward, attentionDecode, attentionForward } from "../engine/attention.ts";
import { attentionBackwardRef } from "../engine/attention_ref.ts";
import { type AttentionForm, type Device, type Kernel, params } from "../engine/device.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import { type Bench, type BenchResult, gflops, timeCallsAlternating, timeGpu } from "./harness.ts";

const HQ = 14, HKV = 2, D = 64;

const NAIVE_WGSL = /* wgsl */ `
struct P { t: u32, hq: u32, hkv: u32, d4: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> s: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read> sr: array<f32>;

// s[h, i, j] = scale q_i . k_j for j <= i, else -inf (as -3e38).
@compute @workgroup_size(256)
fn scores(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 256u;
  if (id >= p.hq * p.t * p.t) { return; }
  let h = id / (p.t * p.t);
  let i = (id / p.t) % p.t;
  let j = id % p.t;
  if (j > i) { s[id] = -3.0e38; return; }
  let kh = h / (p.hq / p.hkv);
  var acc = 0.0;
  for (var d = 0u; d < p.d4; d++) {
    acc += dot(q[(i * p.hq + h) * p.d4 + d], k[(j * p.hkv + kh) * p.d4 + d]);
  }
  s[id] = acc * p.scale;
}

// One invocation per row (h, i): softmax in place.
@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  if (row >= p.hq * p.t) { return; }
  let base = row * p.t;
  var m = -3.0e38;
  for (var j = 0u; j < p.t; j++) { m = max(m, s[base + j]); }
  var z = 0.0;
  for (var j = 0u; j < p.t; j++) { let e = exp(s[base + j] - m); s[base + j] = e; z += e; }
  for (var j = 0u; j < p.t; j++) { s[base + j] = s[base + j] / z; }
}

// out[i, h, d] = sum_j s[h, i, j] v[j, kh, d]; one invocation per (i, h, vec4 column).
@compute @workgroup_size(64)
fn pv(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  if (id >= p.t * p.hq * p.d4) { return; }
  let d = id % p.d4;
  let h = (id / p.d4) % p.hq;
  let i = id / (p.d4 * p.hq);
  let kh = h / (p.hq / p.hkv);
  var acc = vec4f(0.0);
  for (var j = 0u; j <= i; j++) {
    acc += sr[(h * p.t + i) * p.t + j] * v[(j * p.hkv + kh) * p.d4 + d];
  }
  out[id] = acc;
}
`;

const naiveKernels = new WeakMap<Device, Record<string, Kernel>>();

function naiveKernel(dev: Device, entry: string): Kernel {
  let ks = naiveKernels.get(dev);
  if (!ks) {
    const module = dev.gpu.createShaderModule({ label: "naive attention", code: NAIVE_WGSL });
    ks = {};
    for (const e of ["scores", "softmax", "pv"]) {
      const pipeline = dev.gpu.createComputePipeline({
        label: `naive attention ${e}`,
        layout: "auto",
        compute: { module, entryPoint: e },
      });
      ks[e] = { name: `naive attention ${e}`, pipeline, layout: pipeline.getBindGroupLayout(0) };
    }
    naiveKernels.set(dev, ks);
  }
  return ks[entry];
}

/** The bench peer: materialised scores, softmax, then P V (one sequence of T tokens). */
function naiveAttention(dev: Device, q: Tensor, k: Tensor, v: Tensor, out: Tensor, t: number) {
  const s = dev.empty("naive scores", [HQ, t, t]);
  const u = params().u32(t).u32(HQ).u32(HKV).u32(D / 4).f32(1 / Math.sqrt(D));
  dev.dispatch(naiveKernel(dev, "scores"), [u, q, k, undefined, s], dev.grid(HQ * t * t / 256));
  dev.dispatch(naiveKernel(dev, "softmax"), [u, undefined, undefined, undefined, s], [
    Math.ceil(HQ * t / 64),
  ]);
  dev.dispatch(
    naiveKernel(dev, "pv"),
    [u, undefined, undefined, v, undefined, out, s],
    dev.grid(Math.ceil(t * HQ * D / 4 / 64)),
  );
  s.dispose();
}

/** Bytes the op's tensors occupy at its peak: `setup` allocates them, `run` records the op. */
async function peakBytes(dev: Device, run: () => void): Promise<number> {
  await dev.sync();
  dev.trim();
  const base = dev.memory.live;
  dev.resetPeak();
  run();
  await dev.sync();
  return dev.memory.peak - base;
}

export const benches: Bench[] = [{
  name: "attention",
  async run({ dev, quick }) {
    const t = quick ? 64 : 512;
    const rng = new Rng(7);
    const timing = quick
      ? { minMs: 0, minIters: 1, warmup: 1, batchBelowMs: 0 }
      : { minMs: 2000, minIters: 3 };
    const fwdFlops = 4 * (t * t / 2) * D * HQ;
    const dims = { numHeads: HQ, numKvHeads: HKV, headDim: D };
    const results: BenchResult[] = [];

    const io = () => {
      const q = dev.upload("q", rng.normals(t * HQ * D), [t, HQ * D]);
      const k = dev.upload("k", rng.normals(t * HKV * D), [t, HKV * D]);
      const v = dev.upload("v", rng.normals(t * HKV * D), [t, HKV * D]);
      const seqStarts = dev.upload("seq_starts", [0, t], [2], "u32");
      const out = dev.empty("out", [t, HQ * D]);
      const lse = dev.empty("lse", [HQ, t]);
      return { q, k, v, seqStarts, out, lse };
    };

    // Peak bytes of each path, inputs and outputs included, each from a cleared pool.
    let a!: ReturnType<typeof io>;
    const flashPeak = await peakBytes(dev, () => {
      a = io();
      attentionForward(dev, { ...a, ...dims });
    });
    const naivePeak = await peakBytes(dev, () => {
      const b = io();
      naiveAttention(dev, b.q, b.k, b.v, b.out, t);
      for (const x of Object.values(b)) x.dispose();
    });

    const fwdMs = await timeGpu(dev, () => attentionForward(dev, { ...a, ...dims }), timing);
    const out2 = dev.empty("naive out", [t, HQ * D]);
    const naiveMs = await timeGpu(dev, () => naiveAttention(dev, a.q, a.k, a.v, out2, t), timing);
    out2.dispose();
    results.push({
      name: "attention_fwd",
      shape: [1, t, HQ, HKV, D],
      ms: fwdMs,
      gflops: gflops(fwdFlops, fwdMs),
      peak_bytes: flashPeak,
      extra: { form: dev.attention },
      peer: {
        name: "naive",
        ms: naiveMs,
        gflops: gflops(fwdFlops, naiveMs),
        peak_bytes: naivePeak,
      },
    });

    const doutHost = rng.normals(t * HQ * D);
    const dout = dev.upload("dout", doutHost, [t, HQ * D]);
    const dq = dev.empty("dq", [t, HQ * D]);
    const dk = dev.empty("dk", [t, HKV * D]), dv = dev.empty("dv", [t, HKV * D]);
    const bwd = () => attentionBackward(dev, { ...a, dout, dq, dk, dv, ...dims });
    const bwdPeak = await peakBytes(dev, bwd);
    const bwdMs = await timeGpu(dev, bwd, timing);
    const [qh, kh, vh] = await Promise.all([a.q.read(), a.k.read(), a.v.read()]);
    const t0 = performance.now();
    attentionBackwardRef(qh, kh, vh, doutHost, [0, t], dims);
    const refMs = performance.now() - t0;
    results.push({
      name: "attention_bwd",
      shape: [1, t, HQ, HKV, D],
      ms: bwdMs,
      gflops: gflops(2.5 * fwdFlops, bwdMs),
      peer: { name: "cpu_ref_f64", ms: refMs, gflops: gflops(2.5 * fwdFlops, refMs) },
      extra: { form: dev.attention, scratch_bytes: bwdPeak },
    });
    for (const x of [...Object.values(a), dout, dq, dk, dv]) x.dispose();

    // Decoding: B sequences, one new query each, every cache holding t rows.
    const B = 8;
    const kCache = dev.upload("k_cache", rng.normals(B * t * HKV * D), [B, t, HKV * D]);
    const vCache = dev.upload("v_cache", rng.normals(B * t * HKV * D), [B, t, HKV * D]);
    const lengths = dev.upload("lengths", new Array(B).fill(t - 1), [B], "u32");
    const dq1 = dev.upload("decode_q", rng.normals(B * HQ * D), [B, HQ * D]);
    const dOut = dev.empty("decode_out", [B, HQ * D]);
    const form = dev.attention;
    const other: AttentionForm = form === "rows4" ? "rows1" : "rows4";
    const decode = (f: AttentionForm) => () => {
      dev.attention = f;
      try {
        attentionDecode(dev, { q: dq1, kCache, vCache, lengths, out: dOut, ...dims });
      } finally {
        dev.attention = form;
      }
    };
    const wait = () => dev.sync();
    const [ours, theirs] = await timeCallsAlternating(
      [{ record: decode(form), wait }, { record: decode(other), wait }],
      timing,
    );
    const decFlops = 4 * B * t * D * HQ;
    results.push({
      name: "attention_decode",
      shape: [B, t, HQ, HKV, D],
      ms: ours,
      gflops: gflops(decFlops, ours),
      extra: { form },
      peer: { name: `${other} decode`, ms: theirs, gflops: gflops(decFlops, theirs) },
    });
    for (const x of [kCache, vCache, lengths, dq1, dOut]) x.dispose();
    return results;
  },
}];
