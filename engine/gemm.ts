/**
 * Dispatch wrappers for kernels/gemm.wgsl: `matmul` (C = op(A) op(B) (+ bias) (+ C)) and
 * `sumRows` (column sums, for bias gradients). CPU references: engine/gemm_ref.ts.
 *
 * Operands are Tensors or row slices of one (`w.rows(start, count)`), 2-D by their shape:
 *   A [M, K] (or [K, M] with transA), B [K, N] (or [N, K] with transB), C [M, N], bias [N].
 * Two kernels, chosen by `dev.gemm` (the device picks by adapter): "blocked" (gemm.wgsl; its
 * vec4 entries run when their layout allows it, anything else takes the strided scalar entry;
 * with `dev.gemmTextures`, llvmpipe's default, large products read copies of their operands in
 * textures instead, see `sampled`)
 * and "tiled"/"tiled8" (gemm_tiled.wgsl, workgroup-memory tiles, any layout and size; products
 * of at most SKINNY_MAX_ROWS rows with A and B contiguous along k go to its gemm_skinny, which
 * splits K across a workgroup instead).
 */
import { type Binding, type BindingKind, type Device, NEAREST, params } from "./device.ts";
import { formatShape, shapeOf, type Tensor, type TensorSlice } from "./tensor.ts";

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** [N], added to every row. */
  bias?: Tensor;
  /** Add into C instead of overwriting it. */
  accumulate?: boolean;
  /**
   * May take transient scratch the size of its operands (default true): the blocked form turns
   * long-K "nn" and "tn", "tt" and far-strided "tn" products into "nt" ones through transposed
   * copies (see `relayout`). False keeps a product off them, at its direct kernel's speed.
   */
  scratch?: boolean;
}

type Operand = Tensor | TensorSlice;

function nameOf(x: Operand): string {
  return "tensor" in x ? `${x.tensor.name}[${x.start}..${x.start + x.count})` : x.name;
}

function dims2(op: string, x: Operand, what: string): [number, number] {
  const s = shapeOf(x);
  if (s.length !== 2) {
    throw new RangeError(`${op}: ${what} ${nameOf(x)} ${formatShape(s)} must be 2-D`);
  }
  return [s[0], s[1]];
}

function bufferOf(x: Operand): GPUBuffer {
  return "tensor" in x ? x.tensor.buffer : x.buffer;
}

/** C[M, N] = op(A) op(B) (+ bias) (+ C). Records the dispatch; nothing is submitted. */
export function matmul(
  dev: Device,
  a: Operand,
  b: Operand,
  c: Operand,
  opts: MatmulOptions = {},
): void {
  const op = "matmul";
  const [a0, a1] = dims2(op, a, "A");
  const [b0, b1] = dims2(op, b, "B");
  const [c0, c1] = dims2(op, c, "C");
  const ta = !!opts.transA, tb = !!opts.transB;
  const [m, k] = ta ? [a1, a0] : [a0, a1];
  const [kb, n] = tb ? [b1, b0] : [b0, b1];
  if (k !== kb || c0 !== m || c1 !== n) {
    throw new RangeError(
      `${op}: op(A) of ${nameOf(a)} ${formatShape([a0, a1])}${ta ? "^T" : ""} is [${m}, ${k}], ` +
        `op(B) of ${nameOf(b)} ${formatShape([b0, b1])}${tb ? "^T" : ""} is [${kb}, ${n}], ` +
        `C ${nameOf(c)} is ${formatShape([c0, c1])}`,
    );
  }
  if (opts.bias && opts.bias.size !== n) {
    throw new RangeError(
      `${op}: bias ${opts.bias.name} ${formatShape(opts.bias.shape)} must have ${n} elements`,
    );
  }
  const cb = bufferOf(c);
  if (cb === bufferOf(a) || cb === bufferOf(b) || (opts.bias && opts.bias.buffer === cb)) {
    throw new RangeError(`${op}: C ${nameOf(c)} shares a buffer with an input`);
  }
  if (m === 0 || n === 0) return;
  if (k === 0) {
    if (!opts.accumulate && !opts.bias) {
      // op(A) op(B) is all zeros: C = 0 (or C unchanged when accumulating).
      if ("tensor" in c) throw new RangeError(`${op}: K = 0 into a slice is not supported`);
      dev.clear(c);
      return;
    }
  }
  if (sampled(dev, a, b, m, n, k, ta, tb)) {
    sampledMatmul(dev, a, b, c, m, n, k, ta, tb, opts);
    return;
  }
  if (opts.scratch !== false && relayout(dev, m, n, k, ta, tb)) {
    // Long-K "nn" and "tn", "tt" and far-strided "tn" products run faster as "nt" on llvmpipe
    // once the operands are turned (see relayout).
    const at = ta ? transposed(dev, a, k, m) : undefined;
    const bt = tb ? undefined : transposed(dev, b, k, n);
    matmul(dev, at ?? a, bt ?? b, c, { ...opts, transA: false, transB: true });
    // Recorded work runs in order: the pooled buffers may be handed out again right away.
    at?.dispose();
    bt?.dispose();
    return;
  }
  // Strides of A(m, k) and B(k, n) for gemm_any and gemm_tiled.
  const [sam, sak] = ta ? [1, m] : [k, 1];
  const [sbk, sbn] = tb ? [1, k] : [n, 1];
  const flags = (opts.accumulate ? 1 : 0) | (opts.bias ? 2 : 0);
  const p = params().u32(m).u32(n).u32(k).u32(flags).u32(sam).u32(sak).u32(sbk).u32(sbn);
  const bindings: (Binding | undefined)[] = [p, a, b, c, opts.bias ?? dummyBias(dev)];
  const g = dev.gemm;
  if (g.form !== "blocked" && skinny(dev, m, n, sak, sbk)) {
    const kernel = dev.kernel("gemm_tiled", "gemm_skinny", { SW: SKINNY_WG });
    dev.dispatch(kernel, bindings, [Math.ceil(n / 4), Math.ceil(m / SKINNY_BLOCK_ROWS)]);
    return;
  }
  if (g.form !== "blocked") {
    const rb = g.form === "tiled8" ? 2 : 1;
    const constants = {
      WX: g.wx,
      WY: g.wy,
      BK: g.bk,
      RB: rb,
      A_K: sak === 1 ? 1 : 0,
      B_K: sbk === 1 ? 1 : 0,
    };
    const kernel = dev.kernel("gemm_tiled", `gemm_${g.form}`, constants);
    const [bm, bn] = [4 * rb * g.wy, 4 * rb * g.wx];
    dev.dispatch(kernel, bindings, [Math.ceil(n / bn), Math.ceil(m / bm)]);
    return;
  }
  const [entry, bm, bn] = blockedEntry(m, n, k, ta, tb);
  // The bias and accumulate options are override constants of gemm.wgsl (a pipeline each).
  const constants = { BIAS: opts.bias ? 1 : 0, ACC: opts.accumulate ? 1 : 0 };
  const kernel = dev.kernel("gemm", entry, constants);
  dev.dispatch(kernel, bindings, [Math.ceil(n / bn), Math.ceil(m / bm)]);
}

/** The bindings of gemm_nt_tex, gemm_nn_tex and gemm_tn_tex (rgba32float is not filterable). */
const TEX_LAYOUT: Readonly<Record<number, BindingKind>> = {
  0: "uniform",
  3: "storage",
  4: "read",
  10: "texture",
  11: "texture",
  12: "sampler",
};

/** Where an operand's texture copy starts (an element of its buffer). */
function startOf(x: Operand): number {
  return "tensor" in x ? x.start : 0;
}

/**
 * Whether the blocked form reads this product's operands from textures (gemm_nt_tex,
 * gemm_nn_tex, gemm_tn_tex): with `dev.gemmTextures` (llvmpipe), for the "nt", "nn" and "tn"
 * layouts, products with 16 x 32 blocks enough, and operands whose rows copy into a texture as
 * they lie (`dev.textureFits`: rows of a multiple of 64 elements). On llvmpipe, "nt" against
 * the storage kernels, alternating in one process: [512, 896, 4864] 93 vs 215 ms, [512, 896,
 * 896] 19 vs 40, [512, 64, 8192] 20 vs 31, [128, 64, 512] 0.45 vs 0.60, [96, 896, 896] 5.2 vs
 * 6.8; but [64, 64, 128] 0.31 vs 0.23 and [32, 896, 896] 2.0 vs 1.9, hence at least 48 rows
 * and 32 blocks; and outputs 64 wide, with 2 blocks across to the 16 x 16 kernels' 4, lose:
 * [320, 4096, 64] nn 12.2 vs 8.2 ms, [4096, 320, 64] tn 11.8 vs 8.8 (the LM head's backward at
 * d = 64), where 128 wide is even or better (12.7 vs 12.2, 14.0 vs 16.7), hence N >= 128.
 */
export function sampled(
  dev: Device,
  a: Operand,
  b: Operand,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
): boolean {
  if (!dev.gemmTextures || dev.gemm.form !== "blocked" || (ta && tb)) return false;
  if (m < 48 || n < 128 || Math.ceil(m / 16) * Math.ceil(n / 32) < 32) return false;
  const [aRows, aCols] = ta ? [k, m] : [m, k];
  const [bRows, bCols] = tb ? [n, k] : [k, n];
  return dev.textureFits(aRows, aCols, startOf(a)) && dev.textureFits(bRows, bCols, startOf(b));
}

/** The product through textures (see `sampled`): a copy of each operand, then the kernel. */
function sampledMatmul(
  dev: Device,
  a: Operand,
  b: Operand,
  c: Operand,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
  opts: MatmulOptions,
): void {
  const [aRows, aCols] = ta ? [k, m] : [m, k];
  const [bRows, bCols] = tb ? [n, k] : [k, n];
  const txa = dev.texture(`texture of ${nameOf(a)}`, aCols / 4, aRows);
  const txb = dev.texture(`texture of ${nameOf(b)}`, bCols / 4, bRows);
  dev.copyToTexture(a, aRows, aCols, txa);
  dev.copyToTexture(b, bRows, bCols, txb);
  const entry = ta ? "gemm_tn_tex" : tb ? "gemm_nt_tex" : "gemm_nn_tex";
  const constants = { BIAS: opts.bias ? 1 : 0, ACC: opts.accumulate ? 1 : 0 };
  const p = params().u32(m).u32(n).u32(k).u32(0).u32(0).u32(0).u32(0).u32(0);
  const bindings: (Binding | undefined)[] = [p, undefined, undefined, c];
  bindings[4] = opts.bias ?? dummyBias(dev);
  bindings[10] = txa;
  bindings[11] = txb;
  bindings[12] = NEAREST;
  dev.dispatch(dev.kernel("gemm", entry, constants, TEX_LAYOUT), bindings, [
    Math.ceil(n / 256),
    Math.ceil(m / 64),
  ]);
  // Recorded work runs in order: the pooled textures may be handed out again right away.
  txa.release();
  txb.release();
}

/**
 * The gemm.wgsl entry for an [M, K] x [K, N] product in the blocked form, with the rows and
 * columns of C one workgroup covers. Products with rows and columns enough to keep 32 blocks of
 * 16 x 16 busy take the 16 x 16 entries (gemm_nt16, gemm_nn16, gemm_tn16): on llvmpipe "nt" ran
 * 1.3-1.8x faster than with 4 x 8 blocks at the model's shapes ([512, 896, 4864] 272 vs 165 ms;
 * [512, 896, 896] 57 vs 39; [128, 896, 896] 23 vs 7; [512, 896, 18992] 957 vs 582), and slower
 * with few rows ([8, 896, 896] 0.84 vs 1.14 ms) or few blocks ([64, 896, 64] 0.66 vs 0.84).
 */
export function blockedEntry(
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
): [entry: string, rows: number, cols: number] {
  const wide = m >= 16 && n >= 32 && Math.ceil(m / 16) * Math.ceil(n / 16) >= 32;
  if (!ta && tb && k % 4 === 0) {
    if (wide) return ["gemm_nt16", 64, 128];
    return n >= 64 ? ["gemm_nt8", 32, 64] : ["gemm_nt4", 32, 32];
  }
  if (!ta && !tb && k % 4 === 0 && n % 4 === 0) {
    if (wide) return ["gemm_nn16", 64, 128];
    return n >= 64 && n % 8 === 0 ? ["gemm_nn8", 32, 64] : ["gemm_nn4", 32, 32];
  }
  if (ta && !tb && m % 4 === 0 && n % 4 === 0) {
    if (wide) return ["gemm_tn16", 64, 128];
    return n >= 64 && n % 8 === 0 ? ["gemm_tn8", 32, 64] : ["gemm_tn4", 32, 32];
  }
  return ["gemm_any", 32, 32];
}

/** gemm_skinny takes products of at most this many rows (decoding) in the tiled forms. */
export const SKINNY_MAX_ROWS = 16;
const SKINNY_BLOCK_ROWS = 8; // SM in gemm_tiled.wgsl
const SKINNY_WG = 64; // SW: invocations splitting K

/**
 * Whether the tiled forms hand C[M, N] to gemm_skinny: a few rows, A and B both contiguous along
 * k (the x W^T products of decoding), and N / 4 workgroups within the grid limit.
 */
export function skinny(dev: Device, m: number, n: number, sak: number, sbk: number): boolean {
  return m <= SKINNY_MAX_ROWS && sak === 1 && sbk === 1 &&
    Math.ceil(n / 4) <= dev.limits.maxComputeWorkgroupsPerDimension;
}

/**
 * Whether the blocked form turns an "nn", "tn" or "tt" product into an "nt" one (transposing B,
 * and A when it is stored [K, M], into pooled scratch of their size; a transpose costs about 5
 * ns an element on llvmpipe). Measured there, the direct 16 x 16 kernels against transposes plus
 * gemm_nt16, the same process alternating:
 * - "nn" walks down B's rows, a page apart at the model's widths, and falls behind once K is
 *   long: [512, 4864, 896] 272 vs 170 ms, [512, 2048, 896] 110 vs 83, [128, 4864, 896] 87 vs
 *   67; at K <= 1024 it is as fast or faster and needs no copies: [512, 1024, 896] 52 vs 54,
 *   [512, 896, 896] 43 vs 41, [512, 896, 4864] 187 vs 171, [48, 896, 896] 2.7 vs 6.0.
 * - "tn" direct keeps up at the weight gradients of 512 tokens ([4864, 512, 896] 165 vs 169,
 *   [4096, 512, 896] 144 vs 147, [896, 512, 4864] 168 vs 173) and up to K = 1024 ([896, 1024,
 *   896] 71 vs 74), but not when A's rows lie 32 KB or more apart ([8192, 512, 896] 469 vs 347)
 *   or K, the tokens of a larger batch, is long ([896, 2048, 896] 151 vs 136, [896, 4096, 896]
 *   402 vs 261, [4864, 4096, 896] 2493 vs 1305, [512, 4864, 896] 434 vs 256).
 * - "tt" has no fast direct kernel.
 * And for every layout only outputs at least 128 wide (N = 64: [512, 896, 64] nn 3.7 vs 3.4,
 * [480, 8192, 64] 42.4 vs 40.9), products of at least 2^24 multiply-adds, and B's transpose
 * only for 48 rows or more unless K is long ([32, 896, 4864] nn 33.3 vs 34.2). The choice
 * depends on the shape only, so the bits are the same each run.
 */
export function relayout(
  dev: Device,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
): boolean {
  if (dev.gemm.form !== "blocked" || (transB && !transA) || k % 4 !== 0) return false;
  if (!transA && !transB && k <= 1024) return false;
  if (transA && !transB && m < 8192 && k <= 1024) return false;
  if (n < 128 || m * n * k < 2 ** 24) return false;
  if (!transB && m < 48 && k < 2048) return false;
  // The transposes run one row of their input (B [K, N], A [K, M]) per workgroup row.
  return k <= dev.limits.maxComputeWorkgroupsPerDimension;
}

/** A pooled [cols, rows] copy of x [rows, cols] (a tensor or a block of rows of one). */
function transposed(dev: Device, x: Operand, rows: number, cols: number): Tensor {
  const out = dev.empty(`${nameOf(x)}^T`, [cols, rows]);
  transpose(dev, x, out);
  return out;
}

/** out [N, M] = x [M, N]^T; x may be a block of rows of a larger tensor. */
export function transpose(dev: Device, x: Operand, out: Tensor): void {
  const [rows, cols] = dims2("transpose", x, "x");
  if (out.size !== rows * cols || (out.shape.length === 2 && out.shape[0] !== cols)) {
    throw new RangeError(
      `transpose: out ${out.name} ${formatShape(out.shape)} must be [${cols}, ${rows}]`,
    );
  }
  if (out.buffer === bufferOf(x)) throw new RangeError(`transpose: out shares a buffer with x`);
  if (rows === 0 || cols === 0) return;
  const p = params().u32(rows).u32(cols).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0);
  dev.dispatch(dev.kernel("gemm", "transpose"), [p, x, undefined, out], [
    Math.ceil(cols / 256),
    rows,
  ]);
}

const dummies = new WeakMap<Device, Tensor>();
function dummyBias(dev: Device): Tensor {
  let t = dummies.get(dev);
  if (!t || t.disposed) {
    t = dev.zeros("gemm.no_bias", [4]);
    dummies.set(dev, t);
  }
  return t;
}

/** out[n] = sum_m x[m, n] (+ out with `accumulate`), rows summed in order (deterministic). */
export function sumRows(
  dev: Device,
  x: Tensor,
  out: Tensor,
  opts: { accumulate?: boolean } = {},
): void {
  const op = "sumRows";
  if (x.shape.length < 1) throw new RangeError(`${op}: ${x.name} must have a shape`);
  const n = x.shape[x.shape.length - 1];
  const m = n === 0 ? 0 : x.size / n;
  if (out.size !== n) {
    throw new RangeError(
      `${op}: out ${out.name} ${
        formatShape(out.shape)
      } must have ${n} elements (columns of ${x.name} ${formatShape(x.shape)})`,
    );
  }
  if (out.buffer === x.buffer) throw new RangeError(`${op}: out shares a buffer with x`);
  if (n === 0) return;
  const p = params().u32(m).u32(n).u32(0).u32(opts.accumulate ? 1 : 0).u32(0).u32(0).u32(0).u32(0);
  dev.dispatch(dev.kernel("gemm", "sum_rows"), [p, x, undefined, out], dev.grid(Math.ceil(n / 64)));
}
