/**
 * Dispatch wrappers for kernels/attention.wgsl (two forms of the packed kernels, chosen by
 * `dev.attention`): causal GQA attention over packed sequences
 * (FlashAttention-2 style: the forward keeps only the per-row logsumexp, the backward recomputes
 * the scores), and the decode path against a KV cache. CPU references: engine/attention_ref.ts.
 *
 * Layouts (fp32, token-major, heads contiguous; the q/k/v projections after RoPE as they are):
 *   q, out, dq, dout [N, Hq * D]   k, v, dk, dv [N, Hkv * D]
 *   seqStarts u32 [B + 1]: sequence b is tokens seqStarts[b] .. seqStarts[b+1] - 1,
 *     seqStarts[0] = 0, seqStarts[B] = N (empty sequences allowed); a token attends causally to
 *     the tokens of its own sequence only.
 *   lse [Hq, N] (head-major): natural-log logsumexp of each row's scores scale * q k^T.
 *   KV cache kCache, vCache [B, maxLen, Hkv * D]: row t of sequence b holds position t's k/v.
 *   lengths u32 [B]: rows of each sequence's cache filled before the current step.
 * Scale 1/sqrt(D); query head h uses KV head floor(h / (Hq / Hkv)). D % 4 == 0 and D <= 128.
 *
 * Decoding with a KV cache (per layer: kCache, vCache [B, maxLen, Hkv * D], one lengths [B]
 * tensor shared by all layers). Neither kvCacheAppend nor attentionDecode changes `lengths`:
 * the CALLER advances it, with `dev.write(lengths, ...)`, once per step after the last layer.
 *   1. Prefill: lengths = 0 (e.g. dev.zeros). Run the packed prompts through attentionForward
 *      as in training (seqStarts over the prompts), and per layer kvCacheAppend({k, v, kCache,
 *      vCache, lengths, seqStarts}): row seqStarts[b] + t goes to cache row lengths[b] + t.
 *      Then write lengths[b] = prompt length of b.
 *   2. Each step, Tnew new tokens per sequence (usually 1), rows sequence-major
 *      [B * Tnew, ...], RoPE positions lengths[b] + t: per layer first
 *      kvCacheAppend({k, v, kCache, vCache, lengths}) (rows to cache rows lengths[b] + t), then
 *      attentionDecode({q, kCache, vCache, lengths, out}): query t of sequence b attends to cache
 *      rows 0 .. lengths[b] + t, i.e. itself and everything before it. After the last layer
 *      write lengths[b] += Tnew.
 *   The caller keeps lengths[b] + Tnew <= maxLen: appends past maxLen are dropped and decode
 *   reads at most maxLen rows, so an overfull cache gives wrong results, not an error (lengths
 *   lives on the GPU and is not read back to check).
 * seqStarts is not read back either: the caller guarantees it is non-decreasing with
 * seqStarts[0] = 0 and seqStarts[B] = N (kernels stay in bounds otherwise, results do not).
 */
import { type Binding, type Device, params } from "./device.ts";
import { formatShape, type Tensor } from "./tensor.ts";

const LOG2E = 1.4426950408889634;
const DWG = 64;
const MAX_HEAD_DIM = 128;

/** Head counts and head dim shared by every attention call. */
export interface AttentionDims {
  /** Query heads Hq (num_attention_heads). */
  numHeads: number;
  /** KV heads Hkv (num_key_value_heads); divides numHeads. */
  numKvHeads: number;
  /** D: a multiple of 4, at most 128. */
  headDim: number;
}

/** Workgroup shape of the row kernels (see the WGSL header). */
export interface AttentionTiles {
  /**
   * Invocations per workgroup (default 64). In the "rows4" form each covers 4 query rows in the
   * forward and dq passes and 2 key rows in the dk/dv pass; in "rows1" one row in every pass.
   */
  br?: number;
}

export interface AttentionForwardArgs extends AttentionDims {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  seqStarts: Tensor<"u32">;
  /** [N, Hq * D], written. */
  out: Tensor;
  /** [Hq, N], written: kept for attentionBackward. */
  lse: Tensor;
  /** Longest sequence, when the caller knows it; checked against N only. */
  maxSeqLen?: number;
  tiles?: AttentionTiles;
}

export interface AttentionBackwardArgs extends AttentionDims {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** The forward's output and logsumexp. */
  out: Tensor;
  lse: Tensor;
  /** Gradient of the loss with respect to out, [N, Hq * D]. */
  dout: Tensor;
  seqStarts: Tensor<"u32">;
  /** Written (overwritten, not accumulated). */
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
  maxSeqLen?: number;
  /** Scratch [Hq, N, 2] for (lse * log2 e, rowsum(dout * out)); taken from the pool if absent. */
  stats?: Tensor;
  tiles?: AttentionTiles;
}

export interface AttentionDecodeArgs extends AttentionDims {
  /** [B * Tnew, Hq * D]: Tnew new queries per sequence, sequence-major. */
  q: Tensor;
  /** [B, maxLen, Hkv * D] with this step's rows already appended (kvCacheAppend). */
  kCache: Tensor;
  vCache: Tensor;
  /** u32 [B]: cache rows of each sequence before this step; query t sits at lengths[b] + t. */
  lengths: Tensor<"u32">;
  /** [B * Tnew, Hq * D], written. */
  out: Tensor;
  /** [Hq, B * Tnew], written when given. */
  lse?: Tensor;
}

export interface KvCacheAppendArgs {
  /** New rows [M, Hkv * D]. */
  k: Tensor;
  v: Tensor;
  /** [B, maxLen, Hkv * D], written at the new rows only. */
  kCache: Tensor;
  vCache: Tensor;
  /** u32 [B]: rows already in each sequence's cache (the new rows go after them). */
  lengths: Tensor<"u32">;
  numKvHeads: number;
  headDim: number;
  /**
   * u32 [B + 1] when the new rows are ragged (prefill of packed prompts): rows seqStarts[b] ..
   * seqStarts[b+1] - 1 belong to sequence b. Without it, M = B * Tnew, sequence-major.
   */
  seqStarts?: Tensor<"u32">;
}

function fail(op: string, msg: string): never {
  throw new RangeError(`${op}: ${msg}`);
}

function checkDims(op: string, d: AttentionDims): void {
  const { numHeads: hq, numKvHeads: hkv, headDim: hd } = d;
  for (const [name, x] of [["numHeads", hq], ["numKvHeads", hkv], ["headDim", hd]] as const) {
    if (!Number.isInteger(x) || x < 1) fail(op, `${name} = ${x} must be a positive integer`);
  }
  if (hq % hkv !== 0) fail(op, `numHeads = ${hq} is not a multiple of numKvHeads = ${hkv}`);
  if (hd % 4 !== 0 || hd > MAX_HEAD_DIM) {
    fail(op, `headDim = ${hd} must be a multiple of 4 and at most ${MAX_HEAD_DIM}`);
  }
}

/** Checks that t holds rows x width elements (as [rows, width] or any shape of that size). */
function checkRows(op: string, t: Tensor, rows: number, width: number, what: string): void {
  if (t.dtype !== "f32") fail(op, `${t.name} must be f32, not ${t.dtype}`);
  if (t.size !== rows * width || (t.shape.length > 0 && t.shape[0] !== rows && rows > 0)) {
    fail(op, `${t.name} ${formatShape(t.shape)} must be ${what} = [${rows}, ${width}]`);
  }
}

function checkU32(op: string, t: Tensor, size: number, what: string): void {
  if (t.dtype !== "u32") fail(op, `${t.name} must be u32, not ${t.dtype}`);
  if (t.size !== size) fail(op, `${t.name} ${formatShape(t.shape)} must be ${what} = [${size}]`);
}

/** Outputs must not share a buffer with each other or with any input. */
function checkDistinct(op: string, outs: Tensor[], ins: Tensor[]): void {
  for (let a = 0; a < outs.length; a++) {
    for (const b of [...outs.slice(a + 1), ...ins]) {
      if (outs[a].buffer === b.buffer) {
        fail(op, `${outs[a].name} shares a buffer with ${b.name}`);
      }
    }
  }
}

/** Override constants of the row kernels. */
function rowKernel(dev: Device, hd: number, tiles?: AttentionTiles) {
  const br = tiles?.br ?? 64;
  const max = dev.limits.maxComputeInvocationsPerWorkgroup;
  if (!Number.isInteger(br) || br < 1 || br > max) {
    throw new RangeError(
      `attention workgroup of ${br} invocations is outside [1, maxComputeInvocationsPerWorkgroup = ${max}]`,
    );
  }
  return { br, constants: { D4: hd / 4, BR: br } };
}

function packedDims(op: string, a: AttentionDims & { q: Tensor; seqStarts: Tensor<"u32"> }) {
  checkDims(op, a);
  const n = a.q.shape[0] ?? 0;
  const nseq = a.seqStarts.size - 1;
  if (a.seqStarts.dtype !== "u32" || nseq < 1) {
    fail(op, `seqStarts ${a.seqStarts.name} ${formatShape(a.seqStarts.shape)} must be u32 [B + 1]`);
  }
  return { n, nseq, hq: a.numHeads, hkv: a.numKvHeads, hd: a.headDim };
}

function uniforms(
  n: number,
  hq: number,
  hkv: number,
  nseq: number,
  hd: number,
  maxLen = 0,
  tNew = 0,
) {
  return params().u32(n).u32(hq).u32(hkv).u32(nseq).f32(LOG2E / Math.sqrt(hd)).u32(maxLen).u32(
    tNew,
  );
}

/**
 * Causal attention forward over packed sequences: out [N, Hq * D] and lse [Hq, N].
 * Memory beyond the inputs and outputs: none (online softmax over key tiles).
 */
export function attentionForward(dev: Device, a: AttentionForwardArgs): void {
  const op = "attentionForward";
  const { n, nseq, hq, hkv, hd } = packedDims(op, a);
  checkRows(op, a.q, n, hq * hd, "q [N, Hq * D]");
  checkRows(op, a.k, n, hkv * hd, "k [N, Hkv * D]");
  checkRows(op, a.v, n, hkv * hd, "v [N, Hkv * D]");
  checkRows(op, a.out, n, hq * hd, "out [N, Hq * D]");
  checkRows(op, a.lse, hq, n, "lse [Hq, N]");
  if (a.maxSeqLen !== undefined && (a.maxSeqLen > n || a.maxSeqLen < 0)) {
    fail(op, `maxSeqLen = ${a.maxSeqLen} is outside [0, N = ${n}]`);
  }
  checkDistinct(op, [a.out, a.lse], [a.q, a.k, a.v, a.seqStarts]);
  if (n === 0) return;
  const t = rowKernel(dev, hd, a.tiles);
  const one = dev.attention === "rows1";
  dev.dispatch(
    one
      ? dev.kernel("attention", "attn1_fwd", t.constants)
      : dev.kernel("attention", "attn_fwd", t.constants),
    [
      uniforms(n, hq, hkv, nseq, hd),
      a.seqStarts,
      a.q,
      a.k,
      a.v,
      undefined,
      undefined,
      undefined,
      a.out,
      a.lse,
    ],
    [Math.ceil(n / ((one ? 1 : 4) * t.br)), hq],
  );
}

/**
 * Backward of attentionForward: dq, dk, dv (overwritten) from dout, recomputing the scores from
 * q, k and lse. In the "rows4" form three dispatches: stats = (lse, rowsum(dout * out)); dq over
 * query rows; dk and dv over key rows, each KV head summing its query heads in a fixed order. In
 * the "rows1" form (dev.attention) stats, dq, then dk and dv per query head, summed per KV head
 * in head order by a last pass when G > 1. Both deterministic.
 */
export function attentionBackward(dev: Device, a: AttentionBackwardArgs): void {
  const op = "attentionBackward";
  const { n, nseq, hq, hkv, hd } = packedDims(op, a);
  checkRows(op, a.q, n, hq * hd, "q [N, Hq * D]");
  checkRows(op, a.k, n, hkv * hd, "k [N, Hkv * D]");
  checkRows(op, a.v, n, hkv * hd, "v [N, Hkv * D]");
  checkRows(op, a.out, n, hq * hd, "out [N, Hq * D]");
  checkRows(op, a.dout, n, hq * hd, "dout [N, Hq * D]");
  checkRows(op, a.lse, hq, n, "lse [Hq, N]");
  checkRows(op, a.dq, n, hq * hd, "dq [N, Hq * D]");
  checkRows(op, a.dk, n, hkv * hd, "dk [N, Hkv * D]");
  checkRows(op, a.dv, n, hkv * hd, "dv [N, Hkv * D]");
  if (a.stats) checkRows(op, a.stats, hq, 2 * n, "stats [Hq, N * 2]");
  const ins = [a.q, a.k, a.v, a.out, a.lse, a.dout, a.seqStarts];
  checkDistinct(op, [a.dq, a.dk, a.dv, ...(a.stats ? [a.stats] : [])], ins);
  if (n === 0) return;
  const stats = a.stats ?? dev.empty("attention backward stats", [hq, n, 2]);
  const u = uniforms(n, hq, hkv, nseq, hd);
  const c4 = { D4: hd / 4 };
  dev.dispatch(
    dev.kernel("attention", "attn_bwd_stats", c4),
    [
      u,
      undefined,
      undefined,
      undefined,
      undefined,
      a.out,
      a.dout,
      a.lse,
      undefined,
      undefined,
      stats,
    ],
    dev.grid(Math.ceil((hq * n) / DWG)),
  );
  const t = rowKernel(dev, hd, a.tiles);
  if (dev.attention === "rows1") {
    rows1Backward(dev, a, u, stats, t.constants, [Math.ceil(n / t.br), hq]);
    if (!a.stats) stats.dispose();
    return;
  }
  dev.dispatch(
    dev.kernel("attention", "attn_bwd_dq", t.constants),
    [
      u,
      a.seqStarts,
      a.q,
      a.k,
      a.v,
      undefined,
      a.dout,
      undefined,
      undefined,
      undefined,
      undefined,
      stats,
      a.dq,
    ],
    [Math.ceil(n / (4 * t.br)), hq],
  );
  dev.dispatch(
    dev.kernel("attention", "attn_bwd_dkdv", t.constants),
    [
      u,
      a.seqStarts,
      a.q,
      a.k,
      a.v,
      undefined,
      a.dout,
      undefined,
      undefined,
      undefined,
      undefined,
      stats,
      undefined,
      a.dk,
      a.dv,
    ],
    [Math.ceil(n / (2 * t.br)), hkv],
  );
  // Recorded work runs in order, so the pooled buffer may be handed out again right away.
  if (!a.stats) stats.dispose();
}

/**
 * dq, then dk and dv one query head at a time into [N, Hq * D] partials (dk and dv themselves
 * when G = 1), then each KV head's G partials summed in head order.
 */
function rows1Backward(
  dev: Device,
  a: AttentionBackwardArgs,
  u: Binding,
  stats: Tensor,
  constants: Record<string, number>,
  grid: [number, number],
): void {
  const { numHeads: hq, numKvHeads: hkv, headDim: hd } = a;
  const n = a.q.shape[0];
  const b: (Binding | undefined)[] = [];
  b[0] = u;
  b[1] = a.seqStarts;
  b[2] = a.q;
  b[3] = a.k;
  b[4] = a.v;
  b[6] = a.dout;
  b[11] = stats;
  b[12] = a.dq;
  dev.dispatch(dev.kernel("attention", "attn1_dq", constants), b, grid);
  b[12] = undefined;
  const grouped = hq !== hkv;
  for (const [what, dst] of [["dk", a.dk], ["dv", a.dv]] as const) {
    const part = grouped ? dev.empty(`attention backward ${what} per head`, [n, hq * hd]) : dst;
    b[20] = part;
    const dk = what === "dk" ? 1 : 0;
    dev.dispatch(dev.kernel("attention", "attn1_dkv", { ...constants, DK: dk }), b, grid);
    if (grouped) {
      const r: (Binding | undefined)[] = [];
      r[0] = u;
      r[21] = part;
      r[22] = dst;
      dev.dispatch(
        dev.kernel("attention", "attn1_sum_heads", { D4: hd / 4 }),
        r,
        dev.grid(Math.ceil((n * hkv * hd) / 4 / DWG)),
      );
      // Recorded work runs in order: the pooled buffer may be handed out again right away.
      part.dispose();
    }
  }
}

function cacheDims(op: string, kCache: Tensor, vCache: Tensor, lengths: Tensor, kvw: number) {
  const nseq = lengths.size;
  checkU32(op, lengths, nseq, "lengths [B]");
  const maxLen = nseq === 0 ? 0 : kCache.size / (nseq * kvw);
  if (!Number.isInteger(maxLen) || (kCache.shape.length === 3 && kCache.shape[0] !== nseq)) {
    fail(
      op,
      `kCache ${kCache.name} ${formatShape(kCache.shape)} must be [B = ${nseq}, maxLen, ${kvw}]`,
    );
  }
  checkRows(op, kCache, nseq, maxLen * kvw, "kCache [B, maxLen, Hkv * D]");
  checkRows(op, vCache, nseq, maxLen * kvw, "vCache [B, maxLen, Hkv * D]");
  return { nseq, maxLen };
}

/**
 * Attention of Tnew new queries per sequence to a KV cache (generation). Query t of sequence b
 * attends to cache rows 0 .. lengths[b] + t, so the step's own k/v rows must have been appended
 * with kvCacheAppend first. Rows past maxLen are not read.
 */
export function attentionDecode(dev: Device, a: AttentionDecodeArgs): void {
  const op = "attentionDecode";
  checkDims(op, a);
  const { numHeads: hq, numKvHeads: hkv, headDim: hd } = a;
  const { nseq, maxLen } = cacheDims(op, a.kCache, a.vCache, a.lengths, hkv * hd);
  const rows = a.q.shape[0] ?? 0;
  if (nseq === 0 || rows % nseq !== 0) {
    fail(op, `q ${a.q.name} ${formatShape(a.q.shape)} must be [B * Tnew, Hq * D] with B = ${nseq}`);
  }
  const tNew = rows / nseq;
  checkRows(op, a.q, rows, hq * hd, "q [B * Tnew, Hq * D]");
  checkRows(op, a.out, rows, hq * hd, "out [B * Tnew, Hq * D]");
  if (a.lse) checkRows(op, a.lse, hq, rows, "lse [Hq, B * Tnew]");
  const outs = a.lse ? [a.out, a.lse] : [a.out];
  checkDistinct(op, outs, [a.q, a.kCache, a.vCache, a.lengths]);
  if (rows === 0 || maxLen === 0) return;
  const lse = a.lse ?? dev.empty("attention decode lse", [hq, rows]);
  const b: (Binding | undefined)[] = [];
  b[0] = uniforms(rows, hq, hkv, nseq, hd, maxLen, tNew);
  b[2] = a.q;
  b[8] = a.out;
  b[9] = lse;
  b[15] = a.kCache;
  b[16] = a.vCache;
  b[17] = a.lengths;
  if (dev.attention === "rows4") {
    // One invocation per (row, head): llvmpipe's form (see the kernel).
    const k = dev.kernel("attention", "attn_decode_rows", { D4: hd / 4 });
    dev.dispatch(k, b, dev.grid(Math.ceil((rows * hq) / 64)));
  } else {
    dev.dispatch(dev.kernel("attention", "attn_decode", { D4: hd / 4 }), b, [rows, hq]);
  }
  if (!a.lse) lse.dispose();
}

/**
 * Appends new k/v rows to the cache: row t of sequence b goes to cache row lengths[b] + t.
 * lengths is not advanced (the caller knows the new lengths). Rows that would land at or past
 * maxLen are dropped.
 */
export function kvCacheAppend(dev: Device, a: KvCacheAppendArgs): void {
  const op = "kvCacheAppend";
  checkDims(op, { numHeads: a.numKvHeads, numKvHeads: a.numKvHeads, headDim: a.headDim });
  const kvw = a.numKvHeads * a.headDim;
  const { nseq, maxLen } = cacheDims(op, a.kCache, a.vCache, a.lengths, kvw);
  const rows = a.k.shape[0] ?? 0;
  checkRows(op, a.k, rows, kvw, "k [rows, Hkv * D]");
  checkRows(op, a.v, rows, kvw, "v [rows, Hkv * D]");
  if (a.seqStarts) checkU32(op, a.seqStarts, nseq + 1, "seqStarts [B + 1]");
  else if (nseq === 0 || rows % nseq !== 0) {
    fail(op, `k ${a.k.name} ${formatShape(a.k.shape)} must be [B * Tnew, Hkv * D], B = ${nseq}`);
  }
  checkDistinct(op, [a.kCache, a.vCache], [
    a.k,
    a.v,
    a.lengths,
    ...(a.seqStarts ? [a.seqStarts] : []),
  ]);
  if (rows === 0 || maxLen === 0) return;
  const b: (Binding | undefined)[] = [];
  b[0] = uniforms(
    rows,
    a.numKvHeads,
    a.numKvHeads,
    nseq,
    a.headDim,
    maxLen,
    a.seqStarts ? 0 : rows / nseq,
  );
  b[1] = a.seqStarts;
  b[3] = a.k;
  b[4] = a.v;
  b[17] = a.lengths;
  b[18] = a.kCache;
  b[19] = a.vCache;
  const entry = a.seqStarts ? "kv_append_packed" : "kv_append";
  dev.dispatch(
    dev.kernel("attention", entry, { D4: a.headDim / 4 }),
    b,
    dev.grid(Math.ceil((rows * kvw) / 4 / DWG)),
  );
}
