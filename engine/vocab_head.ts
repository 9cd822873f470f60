/**
 * The fused LM head + log-softmax (kernels/vocab_head.wgsl with gemm.wgsl): from hidden states
 * [N, d] and the vocabulary matrix W [V, d], per row logp(target), logsumexp and entropy, and the
 * backward to d hidden and dW, streaming W in chunks of rows (the 151936 x 896 fp32 matrix is
 * 544 MB, more than one 128 MiB binding). Memory beyond inputs and outputs: one [N, C] chunk of
 * logits (C = chunk rows; the forward on llvmpipe skips it, see `lmHeadForward`), partial
 * softmax states [N, C / 16] x 16 bytes and [N] x 16 bytes of running state; never [N, V].
 * CPU reference: engine/vocab_head_ref.ts.
 */
import {
  type Binding,
  type BindingKind,
  type Device,
  NEAREST,
  params,
  type Texture,
} from "./device.ts";
import { blockedEntry, matmul, sampled } from "./gemm.ts";
import { formatShape, type Tensor, type TensorSlice } from "./tensor.ts";

export interface HeadForwardArgs {
  hidden: Tensor; // [N, d]
  weight: Tensor; // [V, d]
  targets: Tensor<"u32">; // [N], 0xFFFFFFFF = no target
  logp: Tensor; // [N] written
  lse: Tensor; // [N] written
  entropy?: Tensor; // [N] written when given
  /**
   * Vocabulary rows per chunk (a multiple of 64; default 8192, 4096 with the matmul's textures,
   * capped by the binding size).
   */
  chunkRows?: number;
  /**
   * Let the product fold its logits straight into partial states where it can (default true;
   * see `lmHeadForward`). False stores each chunk of logits first; the results are the same.
   */
  fuse?: boolean;
}

export interface HeadBackwardArgs {
  hidden: Tensor;
  weight: Tensor;
  targets: Tensor<"u32">;
  /** The forward's logsumexp. */
  lse: Tensor;
  /** d loss / d logp [N]. */
  dlogp: Tensor;
  /** [N, d]: overwritten (or added to with accumulateHidden). */
  dhidden: Tensor;
  /** [V, d]: always added to (the tied embedding's gradient may already hold a part). */
  dweight: Tensor;
  accumulateHidden?: boolean;
  chunkRows?: number;
  /** As in the forward: false stores the logits and turns them into dlogits in a second pass. */
  fuse?: boolean;
}

function dimsOf(
  op: string,
  hidden: Tensor,
  weight: Tensor,
  targets: Tensor,
): [number, number, number] {
  if (hidden.shape.length !== 2 || weight.shape.length !== 2) {
    throw new RangeError(
      `${op}: hidden ${hidden.name} ${formatShape(hidden.shape)} and weight ${weight.name} ${
        formatShape(weight.shape)
      } must be 2-D`,
    );
  }
  const [n, d] = hidden.shape;
  const [v, dw] = weight.shape;
  if (d !== dw) {
    throw new RangeError(
      `${op}: hidden ${hidden.name} ${formatShape(hidden.shape)} and weight ${weight.name} ${
        formatShape(weight.shape)
      } differ in the model dimension`,
    );
  }
  if (targets.size !== n || targets.dtype !== "u32") {
    throw new RangeError(`${op}: targets ${targets.name} must be u32 [${n}]`);
  }
  return [n, d, v];
}

function vec(op: string, t: Tensor, n: number, what: string): void {
  if (t.size !== n) {
    throw new RangeError(
      `${op}: ${what} ${t.name} ${formatShape(t.shape)} must have ${n} elements`,
    );
  }
}

/**
 * The backward's default chunk: half the forward's, because on llvmpipe dhidden's product (K =
 * the chunk) runs through a transposed copy of the chunk of W (gemm.ts relayout), which with
 * 4096 rows and the chunk of dlogits holds about 1.4 forward chunks.
 */
const BACKWARD_CHUNK = 4096;

function chunkOf(dev: Device, n: number, d: number, v: number, requested?: number): number {
  const limit = Math.floor(dev.limits.maxStorageBufferBindingSize / 4);
  let c = requested ?? 8192;
  if (c % 64 !== 0 || c <= 0) {
    throw new RangeError(`chunkRows ${c} must be a positive multiple of 64`);
  }
  while (c > 64 && (c * Math.max(n, d) > limit)) c -= 64;
  return Math.min(c, Math.ceil(v / 64) * 64);
}

/** Whether a chunk's product [n, d] x [cc, d]^T runs in gemm_nt16, whose epilogues fuse. */
function fusable(dev: Device, n: number, cc: number, d: number): boolean {
  return dev.gemm.form === "blocked" && d % 4 === 0 &&
    blockedEntry(n, cc, d, false, true)[0] === "gemm_nt16";
}

/** The bindings of gemm_nt_tex_fold and gemm_nt_tex_dlogits (see gemm.ts TEX_LAYOUT). */
const FOLD_LAYOUT: Readonly<Record<number, BindingKind>> = {
  0: "uniform",
  5: "uniform",
  6: "read",
  7: "storage",
  10: "texture",
  11: "texture",
  12: "sampler",
};
const DLOGITS_LAYOUT: Readonly<Record<number, BindingKind>> = {
  0: "uniform",
  3: "storage",
  5: "uniform",
  6: "read",
  8: "read",
  9: "read",
  10: "texture",
  11: "texture",
  12: "sampler",
};

/**
 * Textures for a chunk's product read through textures (gemm.ts `sampled`): the hidden states'
 * texture, made on the first chunk and kept for the rest, and the chunk of W's.
 */
class ChunkTextures {
  #hidden: Texture | undefined;
  constructor(
    readonly dev: Device,
    readonly hidden: Tensor,
    readonly n: number,
    readonly d: number,
  ) {}

  /** Whether the chunk [cc, d] (rows v0 ..) goes through textures. */
  take(wc: TensorSlice, cc: number): boolean {
    return sampled(this.dev, this.hidden, wc, this.n, cc, this.d, false, true);
  }

  /** The bindings 10 to 12 for the chunk; release the chunk's texture after the dispatch. */
  bind(b: (Binding | undefined)[], wc: TensorSlice, cc: number): Texture {
    const { dev, n, d } = this;
    if (!this.#hidden) {
      this.#hidden = dev.texture(`texture of ${this.hidden.name}`, d / 4, n);
      dev.copyToTexture(this.hidden, n, d, this.#hidden);
    }
    const tw = dev.texture(`texture of ${wc.tensor.name} rows ${wc.start / d}..`, d / 4, cc);
    dev.copyToTexture(wc, cc, d, tw);
    b[10] = this.#hidden;
    b[11] = tw;
    b[12] = NEAREST;
    return tw;
  }

  release(): void {
    this.#hidden?.release();
  }
}

/** gemm.wgsl's P for C [n, cc] = A [n, d] B [cc, d]^T. */
function ntParams(n: number, cc: number, d: number) {
  return params().u32(n).u32(cc).u32(d).u32(0).u32(d).u32(1).u32(1).u32(d);
}

/**
 * Folds a stored chunk of logits [n, cc] (vocabulary ids v0 ..) into the running state [n, 4]:
 * partial states of 16 logits each, then merged per row in id order (`first` starts the state).
 * `scratchParts` (at least n * ceil(cc / 16) vec4) holds the partials; taken from the pool when
 * not given.
 */
export function foldLogits(
  dev: Device,
  logits: Binding,
  targets: Tensor<"u32">,
  state: Tensor,
  n: number,
  cc: number,
  v0: number,
  first: boolean,
  scratchParts?: Tensor,
): void {
  const nb = Math.ceil(cc / 16);
  const parts = scratchParts ?? dev.empty("lm_head.parts", [n * nb, 4]);
  const p = params().u32(n).u32(cc).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0);
  const q = params().u32(v0).u32(nb).u32(0).u32(0);
  dev.dispatch(
    dev.kernel("gemm", "fold_part16"),
    [p, logits, undefined, undefined, undefined, q, targets, parts],
    dev.grid(Math.ceil((n * nb) / 64)),
  );
  merge(dev, parts, targets, state, n, cc, v0, first);
  if (!scratchParts) parts.dispose();
}

function merge(
  dev: Device,
  parts: Tensor,
  targets: Tensor<"u32">,
  state: Tensor,
  n: number,
  cc: number,
  v0: number,
  first: boolean,
): void {
  const p = params().u32(n).u32(cc).u32(v0).u32(first ? 1 : 0);
  const b: (Binding | undefined)[] = [p, undefined, targets, state];
  b[9] = parts;
  dev.dispatch(dev.kernel("vocab_head", "merge"), b, dev.grid(Math.ceil(n / 64)));
}

/**
 * Forward: logp, lse (and entropy) per row. Records work; nothing is submitted.
 *
 * Each chunk's logits are folded into partial softmax states of 16 logits, merged per row in
 * id order. With the blocked matmul (llvmpipe) and chunks wide enough for its 16 x 16 blocks,
 * gemm_nt16_fold makes the partials from the product's registers, so the logits are never
 * stored nor read back: at [1024, 64, 151936] (the default model) 785 instead of 1403 ms there,
 * holding 8 instead of 40 MiB; at [512, 896, 151936] 4.2 instead of 5.0 s, 4 instead of 20 MiB.
 * Otherwise the chunk is stored and fold_part16 reads it; both give the same bits.
 */
export function lmHeadForward(dev: Device, a: HeadForwardArgs): void {
  const op = "lmHeadForward";
  const [n, d, v] = dimsOf(op, a.hidden, a.weight, a.targets);
  vec(op, a.logp, n, "logp");
  vec(op, a.lse, n, "lse");
  if (a.entropy) vec(op, a.entropy, n, "entropy");
  if (n === 0) return;
  // Through textures a chunk of W is copied whole: 4096 rows keep the copy a tenth of the
  // naive path's [512, 151936] logits at d = 896.
  const c = chunkOf(dev, n, d, v, a.chunkRows ?? (dev.gemmTextures ? BACKWARD_CHUNK : undefined));
  let scratch: Tensor | undefined;
  const parts = dev.empty("lm_head.parts", [n * Math.ceil(c / 16), 4]);
  const state = dev.empty("lm_head.state", [n, 4]);
  const tex = new ChunkTextures(dev, a.hidden, n, d);
  for (let v0 = 0; v0 < v; v0 += c) {
    const cc = Math.min(c, v - v0);
    const wc = a.weight.rows(v0, cc);
    if (a.fuse !== false && tex.take(wc, cc)) {
      const q = params().u32(v0).u32(Math.ceil(cc / 16)).u32(0).u32(0);
      const b: (Binding | undefined)[] = [ntParams(n, cc, d)];
      b[5] = q;
      b[6] = a.targets;
      b[7] = parts;
      const tw = tex.bind(b, wc, cc);
      dev.dispatch(dev.kernel("gemm", "gemm_nt_tex_fold", {}, FOLD_LAYOUT), b, [
        Math.ceil(cc / 256),
        Math.ceil(n / 64),
      ]);
      tw.release();
      merge(dev, parts, a.targets, state, n, cc, v0, v0 === 0);
    } else if (a.fuse !== false && fusable(dev, n, cc, d)) {
      const q = params().u32(v0).u32(Math.ceil(cc / 16)).u32(0).u32(0);
      dev.dispatch(
        dev.kernel("gemm", "gemm_nt16_fold"),
        [ntParams(n, cc, d), a.hidden, wc, undefined, undefined, q, a.targets, parts],
        [Math.ceil(cc / 128), Math.ceil(n / 64)],
      );
      merge(dev, parts, a.targets, state, n, cc, v0, v0 === 0);
    } else {
      scratch ??= dev.empty("lm_head.logits_chunk", [n, c]);
      const sView = { ...scratch.slice(0, n * cc), shape: [n, cc] };
      matmul(dev, a.hidden, wc, sView, { transB: true });
      foldLogits(dev, sView, a.targets, state, n, cc, v0, v0 === 0, parts);
    }
  }
  const ent = a.entropy ?? dev.empty("lm_head.entropy_unused", [n]);
  const p = params().u32(n).u32(0).u32(0).u32(0);
  dev.dispatch(
    dev.kernel("vocab_head", "finish"),
    [p, undefined, a.targets, state, a.logp, a.lse, ent],
    dev.grid(Math.ceil(n / 64)),
  );
  if (!a.entropy) ent.dispose();
  tex.release();
  scratch?.dispose();
  parts.dispose();
  state.dispose();
}

/**
 * Backward from dlogp: dlogits = dlogp * (onehot(target) - softmax), recomputed chunk by chunk;
 * dhidden = dlogits W, dW += dlogits^T hidden (each in a fixed order: deterministic). Where the
 * forward fuses, the product stores dlogits directly (gemm_nt16_dlogits) instead of logits that
 * a second pass turns into dlogits; the bits are the same (on llvmpipe [1024, 64, 151936] 2.9
 * instead of 3.9 s, [512, 896, 151936] 17.4 instead of 19.6 s, the same process alternating).
 */
export function lmHeadBackward(dev: Device, a: HeadBackwardArgs): void {
  const op = "lmHeadBackward";
  const [n, d, v] = dimsOf(op, a.hidden, a.weight, a.targets);
  vec(op, a.lse, n, "lse");
  vec(op, a.dlogp, n, "dlogp");
  vec(op, a.dhidden, n * d, "dhidden");
  vec(op, a.dweight, v * d, "dweight");
  if (a.dweight.buffer === a.weight.buffer || a.dhidden.buffer === a.hidden.buffer) {
    throw new RangeError(`${op}: gradients must not share buffers with their inputs`);
  }
  if (n === 0) return;
  const c = chunkOf(dev, n, d, v, a.chunkRows ?? BACKWARD_CHUNK);
  const scratch = dev.empty("lm_head.dlogits_chunk", [n, c]);
  const dh = a.dhidden.reshape([n, d]);
  const dw = a.dweight.reshape([v, d]);
  const tex = new ChunkTextures(dev, a.hidden, n, d);
  for (let v0 = 0; v0 < v; v0 += c) {
    const cc = Math.min(c, v - v0);
    const sView = { ...scratch.slice(0, n * cc), shape: [n, cc] };
    const wc = a.weight.rows(v0, cc);
    if (a.fuse !== false && tex.take(wc, cc)) {
      const b: (Binding | undefined)[] = [ntParams(n, cc, d), undefined, undefined, sView];
      b[5] = params().u32(v0).u32(0).u32(0).u32(0);
      b[6] = a.targets;
      b[8] = a.lse;
      b[9] = a.dlogp;
      const tw = tex.bind(b, wc, cc);
      dev.dispatch(dev.kernel("gemm", "gemm_nt_tex_dlogits", {}, DLOGITS_LAYOUT), b, [
        Math.ceil(cc / 256),
        Math.ceil(n / 64),
      ]);
      tw.release();
    } else if (a.fuse !== false && fusable(dev, n, cc, d)) {
      const q = params().u32(v0).u32(0).u32(0).u32(0);
      const b: (Binding | undefined)[] = [ntParams(n, cc, d), a.hidden, wc, sView, undefined, q];
      b[6] = a.targets;
      b[8] = a.lse;
      b[9] = a.dlogp;
      dev.dispatch(dev.kernel("gemm", "gemm_nt16_dlogits"), b, [
        Math.ceil(cc / 128),
        Math.ceil(n / 64),
      ]);
    } else {
      matmul(dev, a.hidden, wc, sView, { transB: true });
      const nb = Math.ceil(cc / 16);
      const p = params().u32(n).u32(cc).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0);
      const b: (Binding | undefined)[] = [p, undefined, undefined, sView, undefined];
      b.push(params().u32(v0).u32(nb).u32(0).u32(0), a.targets, undefined, a.lse, a.dlogp);
      dev.dispatch(dev.kernel("gemm", "dlogits16"), b, dev.grid(Math.ceil((n * nb) / 64)));
    }
    matmul(dev, sView, wc, dh, { accumulate: v0 > 0 || !!a.accumulateHidden });
    matmul(dev, sView, a.hidden, dw.rows(v0, cc), { transA: true, accumulate: true });
  }
  tex.release();
  scratch.dispose();
}
