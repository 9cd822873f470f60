/**
 * Dispatch wrappers for kernels/embedding.wgsl: the token embedding gather `out[t] = W[ids[t]]`
 * and its backward `dW[v] += sum_{t: ids[t] = v} dout[t]` as a deterministic scatter-add (the
 * token ids are on the CPU: they are sorted there and each distinct id's rows are summed in
 * token order by one workgroup; no float atomics).
 *
 * W [V, d] may be larger than one storage binding (151936 x 896 fp32 is 544 MB): both directions
 * bind W (or dW) in chunks of `rowsPerChunk` rows and dispatch once per chunk. CPU references
 * are in engine/embedding_ref.ts.
 */
import { type Device, params } from "./device.ts";
import { formatShape, Tensor } from "./tensor.ts";

export interface EmbeddingOptions {
  /**
   * Rows of W bound per dispatch. Defaults to the most rows that fit one storage binding; must be
   * a multiple of embeddingRowAlignment() so that every chunk starts on a 256-byte boundary.
   * Tests pass small values to exercise chunking with tiny tensors.
   */
  rowsPerChunk?: number;
}

/** Token ids on the CPU: integers in [0, V). */
export type TokenIds = ArrayLike<number>;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The row count that chunk starts must be multiples of, for rows of d fp32 values. */
export function embeddingRowAlignment(dev: Device, d: number): number {
  const align = Math.max(256, dev.limits.minStorageBufferOffsetAlignment);
  return align / gcd(d * 4, align);
}

/** Rows per chunk for W [V, d]: the option, checked, or the most that fit one binding. */
export function embeddingRowsPerChunk(dev: Device, d: number, requested?: number): number {
  const align = embeddingRowAlignment(dev, d);
  const limit = dev.limits.maxStorageBufferBindingSize;
  const maxRows = Math.floor(limit / (d * 4));
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested <= 0 || requested % align !== 0) {
      throw new RangeError(
        `embedding: rowsPerChunk ${requested} must be a positive multiple of ${align} for rows of ${d} floats (256-byte aligned chunk starts)`,
      );
    }
    if (requested > maxRows) {
      throw new RangeError(
        `embedding: rowsPerChunk ${requested} x ${d} floats exceeds maxStorageBufferBindingSize = ${limit} bytes`,
      );
    }
    return requested;
  }
  const rows = Math.floor(maxRows / align) * align;
  if (rows === 0) {
    throw new RangeError(
      `embedding: ${align} rows of ${d} floats exceed one storage binding (${limit} bytes)`,
    );
  }
  return rows;
}

/**
 * Throws unless every id is an integer in [0, vocab), naming the first bad position and id.
 * `what` names the embedding in the message.
 */
export function checkTokenIds(ids: TokenIds, vocab: number, what = "embedding"): void {
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new RangeError(
        `${what}: token id ${id} at position ${t} is outside the vocabulary of ${vocab} rows`,
      );
    }
  }
}

function matrixDims(op: string, W: Tensor): [number, number] {
  if (W.shape.length !== 2) {
    throw new RangeError(`${op}: ${W.name} ${formatShape(W.shape)} must be [vocab, d]`);
  }
  return [W.shape[0], W.shape[1]];
}

function checkRows(op: string, t: Tensor, n: number, d: number, what: string): void {
  if (t.shape.length !== 2 || t.shape[0] !== n || t.shape[1] !== d) {
    throw new RangeError(`${op}: ${t.name} ${formatShape(t.shape)} must be [${n}, ${d}] (${what})`);
  }
}

/**
 * out [n, d] = W [V, d] gathered at `ids` [n]. With ids on the CPU (any ArrayLike of numbers)
 * they are range-checked and uploaded; with ids already on the GPU (a u32 tensor, e.g. sampled
 * tokens) they cannot be checked here, and a row whose id is >= V comes out as zeros.
 */
export function embeddingForward(
  dev: Device,
  W: Tensor,
  ids: Tensor<"u32"> | TokenIds,
  out: Tensor,
  opts: EmbeddingOptions = {},
): Tensor {
  const op = "embeddingForward";
  const [V, d] = matrixDims(op, W);
  let idsT: Tensor<"u32">;
  let owned = false;
  if (ids instanceof Tensor) {
    idsT = ids;
    if (idsT.dtype !== "u32") {
      throw new RangeError(`${op}: ids ${idsT.name} must be u32, not ${idsT.dtype}`);
    }
  } else {
    const cpu = ids as TokenIds;
    checkTokenIds(cpu, V, `${op} (${W.name} ${formatShape(W.shape)})`);
    idsT = dev.upload("embedding ids", Uint32Array.from(cpu), [cpu.length], "u32");
    owned = true;
  }
  const n = idsT.size;
  checkRows(op, out, n, d, `one row of ${W.name} per token id`);
  if (out.buffer === W.buffer) {
    throw new RangeError(`${op}: ${out.name} shares a buffer with ${W.name}`);
  }
  if (n > 0 && d > 0) {
    const rows = embeddingRowsPerChunk(dev, d, opts.rowsPerChunk);
    const k = dev.kernel("embedding", d % 4 === 0 ? "gather4" : "gather");
    const grid = dev.grid(n);
    // At least one pass even for V = 0, so that every out-of-range row is zeroed.
    for (let start = 0; start === 0 || start < V; start += rows) {
      const count = Math.min(rows, V - start);
      const p = params().u32(n).u32(d).u32(start).u32(count).u32(start === 0 ? 1 : 0).u32(V);
      dev.dispatch(k, [p, idsT, count > 0 ? W.rows(start, count) : W, out], grid);
    }
  }
  if (owned) idsT.dispose();
  return out;
}

/** The token indices sorted by id (stable) and cut into one segment per distinct id. */
export interface ScatterPlan {
  /** Distinct ids, increasing [S]. */
  uniq: Uint32Array;
  /** Segment s is perm[segStart[s] .. segStart[s + 1]) [S + 1]. */
  segStart: Uint32Array;
  /** Token indices sorted by id, ties in increasing token order [n]. */
  perm: Uint32Array;
}

export function scatterPlan(ids: TokenIds): ScatterPlan {
  const n = ids.length;
  const perm = Uint32Array.from({ length: n }, (_, t) => t);
  // Sorting on (id, t) makes the order total, so it is stable whatever the sort does.
  perm.sort((a, b) => ids[a] - ids[b] || a - b);
  const uniq: number[] = [];
  const starts: number[] = [];
  for (let k = 0; k < n; k++) {
    if (k === 0 || ids[perm[k]] !== ids[perm[k - 1]]) {
      uniq.push(ids[perm[k]]);
      starts.push(k);
    }
  }
  starts.push(n);
  return { uniq: Uint32Array.from(uniq), segStart: Uint32Array.from(starts), perm };
}

/**
 * dW [V, d] += scatter of dout [n, d] at `ids` [n] (CPU ids, range-checked). Rows of dW whose id
 * does not occur are untouched; each touched row gets the sum of its tokens' rows, added in
 * increasing token order. Accumulates, so the tied LM head can add into the same gradient.
 */
export function embeddingBackward(
  dev: Device,
  ids: TokenIds,
  dout: Tensor,
  dW: Tensor,
  opts: EmbeddingOptions = {},
): void {
  const op = "embeddingBackward";
  const [V, d] = matrixDims(op, dW);
  checkTokenIds(ids, V, `${op} (${dW.name} ${formatShape(dW.shape)})`);
  const n = ids.length;
  checkRows(op, dout, n, d, `one gradient row per token id`);
  if (dout.buffer === dW.buffer) {
    throw new RangeError(`${op}: ${dout.name} shares a buffer with ${dW.name}`);
  }
  if (n === 0 || d === 0) return;
  const rows = embeddingRowsPerChunk(dev, d, opts.rowsPerChunk);
  const plan = scatterPlan(ids);
  const S = plan.uniq.length;
  const meta = new Uint32Array(2 * S + 1 + n);
  meta.set(plan.uniq, 0);
  meta.set(plan.segStart, S);
  meta.set(plan.perm, 2 * S + 1);
  const metaT = dev.upload("embedding scatter plan", meta, [meta.length], "u32");
  const k = dev.kernel("embedding", d % 4 === 0 ? "scatter4" : "scatter");
  let seg = 0;
  for (let start = 0; start < V && seg < S; start += rows) {
    const count = Math.min(rows, V - start);
    const seg0 = seg;
    while (seg < S && plan.uniq[seg] < start + count) seg++;
    const nseg = seg - seg0;
    if (nseg === 0) continue;
    const p = params().u32(d).u32(seg0).u32(nseg).u32(start).u32(S);
    dev.dispatch(k, [p, metaT, undefined, undefined, dout, dW.rows(start, count)], dev.grid(nseg));
  }
  metaT.dispose();
}
