/**
 * The Qwen2 model on the GPU: per-token log-probs forward, backward from dlogp, parameters and
 * gradients by Hugging Face tensor name. The one interface between model and trainers
 * (DESIGN.md): `forward` gives logp[n] = log p(ids[n+1] | ids[..n]) per packed token, the
 * objective returns dlogp, `backward(dlogp)` accumulates parameter gradients.
 *
 * Activation memory for N packed tokens (fp32, per layer): x, n1, h, n2, attn out [N, d] each;
 * q [N, Hq*D], k and v [N, Hkv*D]; gate, up, silu*up [N, I]; lse [Hq, N]; rstd 2 x [N]. For
 * Qwen2.5-0.5B at N = 256 that is about 21 MB a layer, 0.5 GB for 24 layers. With
 * `recompute: true` only each layer's input x is kept (0.9 MB a layer at N = 256) and the
 * layer's forward runs again inside the backward (one extra forward of the blocks).
 */
import {
  attentionBackward,
  attentionDecode,
  attentionForward,
  kvCacheAppend,
} from "./attention.ts";
import {
  disposeBatch,
  type PackedBatch,
  packPerToken,
  packSequences,
  unpackPerToken,
  uploadBatch,
} from "./batch.ts";
import type { Device } from "./device.ts";
import { add, axpy } from "./elementwise.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { lmHeadBackward, lmHeadForward } from "./vocab_head.ts";
import { matmul, sumRows } from "./gemm.ts";
import { join } from "node:path";
import { loadQwen2Config, type Qwen2Config, QWEN_TOKENS, toConfigJson } from "./config.ts";
import { openCheckpoint, type TensorToWrite, writeSafetensors } from "./safetensors.ts";
import { Tokenizer, writeDefaultTokenizer } from "./tokenizer.ts";
import { HeadTextures, sampleTokens } from "./sampling.ts";
import type { ModelDims } from "./qwen2_ref.ts";
import { rmsnormBackward, rmsnormForward } from "./rmsnorm.ts";
import { ropeBackward, ropeForward } from "./rope.ts";
import { swigluBackward, swigluForward } from "./swiglu.ts";
import type { Tensor } from "./tensor.ts";

export type { ModelDims } from "./qwen2_ref.ts";

/** Hugging Face tensor names of one model, in a stable order. */
export function parameterNames(cfg: ModelDims): string[] {
  const names = ["model.embed_tokens.weight"];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    names.push(
      p + "input_layernorm.weight",
      p + "self_attn.q_proj.weight",
      p + "self_attn.q_proj.bias",
      p + "self_attn.k_proj.weight",
      p + "self_attn.k_proj.bias",
      p + "self_attn.v_proj.weight",
      p + "self_attn.v_proj.bias",
      p + "self_attn.o_proj.weight",
      p + "post_attention_layernorm.weight",
      p + "mlp.gate_proj.weight",
      p + "mlp.up_proj.weight",
      p + "mlp.down_proj.weight",
    );
  }
  names.push("model.norm.weight");
  if (!cfg.tieWordEmbeddings) names.push("lm_head.weight");
  return names;
}

/** Shape of each named parameter. */
export function parameterShape(cfg: ModelDims, name: string): number[] {
  const d = cfg.hiddenSize, ff = cfg.intermediateSize;
  const qd = cfg.numHeads * cfg.headDim, kvd = cfg.numKvHeads * cfg.headDim;
  if (name === "model.embed_tokens.weight" || name === "lm_head.weight") return [cfg.vocabSize, d];
  if (name === "model.norm.weight") return [d];
  const m = /^model\.layers\.\d+\.(.+)$/.exec(name);
  switch (m?.[1]) {
    case "input_layernorm.weight":
    case "post_attention_layernorm.weight":
      return [d];
    case "self_attn.q_proj.weight":
      return [qd, d];
    case "self_attn.q_proj.bias":
      return [qd];
    case "self_attn.k_proj.weight":
    case "self_attn.v_proj.weight":
      return [kvd, d];
    case "self_attn.k_proj.bias":
    case "self_attn.v_proj.bias":
      return [kvd];
    case "self_attn.o_proj.weight":
      return [d, qd];
    case "mlp.gate_proj.weight":
    case "mlp.up_proj.weight":
      return [ff, d];
    case "mlp.down_proj.weight":
      return [d, ff];
  }
  throw new RangeError(`not a Qwen2 parameter: ${name}`);
}

interface Layer {
  ln1: Tensor;
  wq: Tensor;
  bq: Tensor;
  wk: Tensor;
  bk: Tensor;
  wv: Tensor;
  bv: Tensor;
  wo: Tensor;
  ln2: Tensor;
  wg: Tensor;
  wu: Tensor;
  wd: Tensor;
}

const LAYER_KEYS: [keyof Layer, string][] = [
  ["ln1", "input_layernorm.weight"],
  ["wq", "self_attn.q_proj.weight"],
  ["bq", "self_attn.q_proj.bias"],
  ["wk", "self_attn.k_proj.weight"],
  ["bk", "self_attn.k_proj.bias"],
  ["wv", "self_attn.v_proj.weight"],
  ["bv", "self_attn.v_proj.bias"],
  ["wo", "self_attn.o_proj.weight"],
  ["ln2", "post_attention_layernorm.weight"],
  ["wg", "mlp.gate_proj.weight"],
  ["wu", "mlp.up_proj.weight"],
  ["wd", "mlp.down_proj.weight"],
];

/** Saved activations of one block for N tokens. */
interface Acts {
  x: Tensor; // [N, d] block input
  n1: Tensor; // [N, d]
  rstd1: Tensor; // [N]
  q: Tensor; // [N, Hq*D] after bias and RoPE
  k: Tensor; // [N, Hkv*D] after bias and RoPE
  v: Tensor; // [N, Hkv*D]
  attn: Tensor; // [N, Hq*D]
  lse: Tensor; // attention logsumexp
  h: Tensor; // [N, d]
  n2: Tensor; // [N, d]
  rstd2: Tensor; // [N]
  g: Tensor; // [N, I]
  u: Tensor; // [N, I]
  s: Tensor; // [N, I] silu(g) * u
}

export interface ForwardOptions {
  /** Also compute the entropy of each position's distribution. */
  entropy?: boolean;
  /** Keep what backward needs. */
  train?: boolean;
  /** Keep only each block's input and recompute the block in backward. */
  recompute?: boolean;
  /**
   * Per sequence, one value per target position (length T_b - 1): the LM head runs only where
   * it is > 0 (e.g. the completion mask of a training batch); log-probs elsewhere read as 0.
   * Default: every position that has a target.
   */
  rows?: readonly ArrayLike<number>[];
}

/** What `forward` leaves for `backward` (and the outputs). */
export interface ForwardState {
  batch: PackedBatch;
  /** Packed positions the LM head ran on (increasing). */
  headRows: number[];
  /** [R] log p of the target at each head row. */
  logp: Tensor;
  /** [R] logsumexp of each head row's logits. */
  lse: Tensor;
  entropy?: Tensor;
  /** Final hidden states [R, d] and targets [R] of the head rows (kept for backward). */
  headHidden?: Tensor;
  headTargets: Tensor<"u32">;
  /** Per-layer activations (only inputs when recomputing); empty for inference. */
  acts: Acts[];
  /** Input of the final norm [N, d], its rstd and the normed hidden states. */
  xL?: Tensor;
  rstdF?: Tensor;
  hidden?: Tensor;
  recompute: boolean;
}

export interface LogprobsOptions {
  /** Also return the entropy of each position's next-token distribution. */
  entropy?: boolean;
  /**
   * Only where this is > 0, per sequence one value per target position (as `forward`'s rows):
   * e.g. a completion mask, so that a reference model skips the prompt's logits. Elsewhere the
   * log-probs (and entropies) read 0. The computed ones have the same bits as without it.
   */
  rows?: readonly ArrayLike<number>[];
}

export interface LogprobsResult {
  logp: Float32Array[];
  entropy?: Float32Array[];
}

export interface GenerateOptions {
  /** Samples per prompt (G). Default 1. Output row i * G + g is sample g of prompt i. */
  samples?: number;
  /** Tokens to generate at most per sample. */
  maxNewTokens: number;
  /** 0 = greedy. Default 1. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Same seed, same model, same adapter: same tokens. Default 0. */
  seed?: number;
  /** Ids that end a sample (kept as its last token). Default: the config's / tokenizer's. */
  eosTokenIds?: readonly number[];
  /** Texts that end a sample once the decoded completion contains one (needs a tokenizer). */
  stopStrings?: readonly string[];
  /** Only ids below this are drawn (the tokenizer's vocabulary; embedding rows beyond are padding). */
  vocabLimit?: number;
  /** Called after each decoding step with the step and the count of unfinished samples. */
  onStep?: (step: number, active: number) => void;
  /**
   * Decoding steps recorded between read-backs of the drawn ids (default 8). Each read-back
   * waits for the GPU (about 12 ms in Deno, on llvmpipe and on an NVIDIA driver alike), so the
   * ids of several steps come back at once; rows keep decoding until the batch's ids are read,
   * and a batch may run up to readEvery - 1 steps past the last row's end. The tokens are the
   * same for every value.
   */
  readEvery?: number;
  /**
   * Drop finished samples from the batch (default true): at a read-back where at least a
   * quarter of the decoding rows have ended, the rest move into smaller KV caches and decode on
   * alone. Each sample's draws are keyed by its own row, so its tokens do not change.
   */
  compact?: boolean;
}

export interface Generation {
  prompt: number;
  sample: number;
  /** New tokens, the stopping EOS id included. */
  tokens: number[];
  /** log p(token) under the model (temperature 1, no filtering) for each new token. */
  logprobs: number[];
  finishReason: "eos" | "stop" | "length";
}

/** Configuration a model needs beyond the dims (a superset lives in Qwen2Config). */
export type ModelConfig = ModelDims & Partial<Qwen2Config>;

/** Where a model came from, for saving a loadable directory. */
export interface ModelSource {
  dir?: string;
}

const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "vocab.json",
  "merges.txt",
  "generation_config.json",
  "special_tokens_map.json",
];

/**
 * Qwen2 on the GPU. `Qwen2.load(device, dir)` reads any Hugging Face-layout Qwen2 directory
 * (tied or untied, F32/BF16/F16); `logprobs` is the trainers' one interface; `forward` /
 * `backward` run the training step; `generate` samples with a KV cache; `save` writes a
 * directory `load` reads back.
 */
export class Qwen2 {
  readonly params = new Map<string, Tensor>();
  grads: Map<string, Tensor> | null = null;
  tokenizer: Tokenizer | null = null;
  readonly #layers: Layer[] = [];

  /** Takes ownership of the given parameter tensors (by HF name). */
  constructor(
    readonly dev: Device,
    readonly config: ModelConfig,
    params: Map<string, Tensor>,
    readonly source: ModelSource = {},
  ) {
    for (const name of parameterNames(config)) {
      const t = params.get(name);
      if (!t) throw new Error(`Qwen2: missing parameter ${name}`);
      const want = parameterShape(config, name);
      if (t.size !== want.reduce((a, b) => a * b, 1)) {
        throw new RangeError(
          `Qwen2: parameter ${name} has ${t.size} elements, expected shape [${want.join(", ")}]`,
        );
      }
      const same = t.shape.length === want.length && t.shape.every((x, k) => x === want[k]);
      this.params.set(name, same ? t : t.reshape(want));
    }
    for (let l = 0; l < config.numLayers; l++) {
      const layer = {} as Layer;
      for (const [k, n] of LAYER_KEYS) layer[k] = this.params.get(`model.layers.${l}.${n}`)!;
      this.#layers.push(layer);
    }
  }

  get dims(): ModelDims {
    return this.config;
  }

  /**
   * Loads a Hugging Face-layout directory: config.json, model.safetensors (or a sharded index),
   * and the tokenizer when its files are there. One tensor is in host memory at a time.
   */
  static async load(
    dev: Device,
    dir: string,
    opts: { onProgress?: (done: number, total: number, name: string) => void } = {},
  ): Promise<Qwen2> {
    const cfg = await loadQwen2Config(dir);
    const reader = await openCheckpoint(dir);
    const params = new Map<string, Tensor>();
    try {
      const names = parameterNames(cfg);
      for (const [i, name] of names.entries()) {
        if (!reader.has(name)) {
          throw new Error(
            `${reader.path}: tensor ${name} is missing` +
              (name === "lm_head.weight" ? " (config.json says tie_word_embeddings: false)" : ""),
          );
        }
        const want = parameterShape(cfg, name);
        const info = reader.info(name);
        if (info.shape.length !== want.length || info.shape.some((s, k) => s !== want[k])) {
          throw new RangeError(
            `${reader.path}: tensor ${name} has shape [${info.shape.join(", ")}], ` +
              `config.json implies [${want.join(", ")}]`,
          );
        }
        params.set(name, dev.upload(name, await reader.readF32(name), want));
        opts.onProgress?.(i + 1, names.length, name);
      }
    } catch (e) {
      for (const t of params.values()) t.dispose();
      throw e;
    } finally {
      reader.close();
    }
    const model = new Qwen2(dev, cfg, params, { dir });
    try {
      await Deno.stat(join(dir, "tokenizer.json"));
      model.tokenizer = await Tokenizer.load(dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return model;
  }

  /**
   * Writes config.json, model.safetensors (F32, HF names) and the tokenizer files (copied from
   * the source directory, or the default tokenizer) into `dir`, which `load` reads back.
   */
  async save(dir: string, opts: { metadata?: Record<string, string> } = {}): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    const cfg: Qwen2Config = {
      maxPositionEmbeddings: 32768,
      bosTokenId: null,
      eosTokenIds: [QWEN_TOKENS.endoftext],
      torchDtype: "float32",
      ...this.config,
    };
    const tensors: TensorToWrite[] = [];
    for (const [name, t] of this.params) {
      const data = await t.read() as Float32Array;
      tensors.push({ name, dtype: "F32", shape: t.shape, data });
    }
    await writeSafetensors(join(dir, "model.safetensors"), tensors, {
      format: "pt",
      ...opts.metadata,
    });
    const cfgTmp = join(dir, `config.json.tmp-${crypto.randomUUID()}`);
    await Deno.writeTextFile(cfgTmp, JSON.stringify(toConfigJson(cfg), null, 2) + "\n");
    await Deno.rename(cfgTmp, join(dir, "config.json"));
    let copied = false;
    if (this.source.dir && this.source.dir !== dir) {
      for (const f of TOKENIZER_FILES) {
        try {
          await Deno.copyFile(join(this.source.dir, f), join(dir, f));
          if (f === "tokenizer.json") copied = true;
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
    }
    if (!copied && !(this.source.dir === dir && await exists(join(dir, "tokenizer.json")))) {
      await writeDefaultTokenizer(dir);
    }
  }

  get embedding(): Tensor {
    return this.params.get("model.embed_tokens.weight")!;
  }

  /** The LM head matrix [V, d]: the embedding when tied. */
  get head(): Tensor {
    return this.params.get(
      this.config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight",
    )!;
  }

  /** Allocates zeroed gradients for every parameter (once), or zeroes existing ones. */
  zeroGrads(): Map<string, Tensor> {
    if (!this.grads) {
      this.grads = new Map();
      for (const [name, p] of this.params) {
        this.grads.set(name, this.dev.zeros(`grad.${name}`, p.shape));
      }
    } else {
      for (const g of this.grads.values()) this.dev.clear(g);
    }
    return this.grads;
  }

  /** Frees the gradients (inference only from here on). */
  dropGrads(): void {
    for (const g of this.grads?.values() ?? []) g.dispose();
    this.grads = null;
  }

  dispose(): void {
    this.dropGrads();
    for (const t of this.params.values()) t.dispose();
    this.params.clear();
  }

  /** Reads every parameter back to the host (for checkpoints and tests). */
  async readParams(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.params) out.set(name, await t.read() as Float32Array);
    return out;
  }

  /** Overwrites parameters from host arrays (by name; sizes must match). */
  writeParams(values: ReadonlyMap<string, Float32Array>): void {
    for (const [name, data] of values) {
      const t = this.params.get(name);
      if (!t) throw new Error(`Qwen2.writeParams: unknown parameter ${name}`);
      if (t.size !== data.length) {
        throw new RangeError(
          `Qwen2.writeParams: ${name} has ${t.size} elements, got ${data.length}`,
        );
      }
      this.dev.write(t, data);
    }
  }

  #grad(name: string): Tensor {
    if (!this.grads) throw new Error("Qwen2.backward() before zeroGrads()");
    return this.grads.get(name)!;
  }

  #allocActs(n: number, x: Tensor): Acts {
    const { hiddenSize: d, intermediateSize: ff, numHeads: hq, numKvHeads: hkv, headDim: hd } =
      this.config;
    const e = (name: string, shape: number[]) => this.dev.empty(name, shape);
    return {
      x,
      n1: e("act.n1", [n, d]),
      rstd1: e("act.rstd1", [n]),
      q: e("act.q", [n, hq * hd]),
      k: e("act.k", [n, hkv * hd]),
      v: e("act.v", [n, hkv * hd]),
      attn: e("act.attn", [n, hq * hd]),
      lse: e("act.attn_lse", [hq, n]),
      h: e("act.h", [n, d]),
      n2: e("act.n2", [n, d]),
      rstd2: e("act.rstd2", [n]),
      g: e("act.gate", [n, ff]),
      u: e("act.up", [n, ff]),
      s: e("act.swiglu", [n, ff]),
    };
  }

  #freeActs(a: Acts, keepX: boolean): void {
    for (const [k, t] of Object.entries(a) as [keyof Acts, Tensor][]) {
      if (k !== "x" || !keepX) t.dispose();
    }
  }

  /** The attention-side projections of block l on a.n1: q, k, v with bias and RoPE. */
  #qkv(l: number, a: Acts, positions: Tensor<"u32">): void {
    const dev = this.dev, L = this.#layers[l];
    const { numHeads: hq, numKvHeads: hkv, headDim: hd, ropeTheta: theta } = this.config;
    matmul(dev, a.n1, L.wq, a.q, { transB: true, bias: L.bq });
    matmul(dev, a.n1, L.wk, a.k, { transB: true, bias: L.bk });
    matmul(dev, a.n1, L.wv, a.v, { transB: true, bias: L.bv });
    ropeForward(dev, a.q, positions, { numHeads: hq, headDim: hd, theta });
    ropeForward(dev, a.k, positions, { numHeads: hkv, headDim: hd, theta });
  }

  /** o_proj + residual, then the MLP + residual into `out`: out = h + down(silu(g) * u). */
  #afterAttention(l: number, a: Acts, out: Tensor): void {
    const dev = this.dev, L = this.#layers[l];
    const eps = this.config.rmsNormEps;
    dev.copy(a.x, a.h);
    matmul(dev, a.attn, L.wo, a.h, { transB: true, accumulate: true });
    rmsnormForward(dev, a.h, L.ln2, a.n2, a.rstd2, eps);
    matmul(dev, a.n2, L.wg, a.g, { transB: true });
    matmul(dev, a.n2, L.wu, a.u, { transB: true });
    swigluForward(dev, a.g, a.u, a.s);
    dev.copy(a.h, out);
    matmul(dev, a.s, L.wd, out, { transB: true, accumulate: true });
  }

  /** Runs block `l` on `a.x` over a packed batch, filling `a`; the block output goes to `out`. */
  #block(l: number, a: Acts, batch: PackedBatch, out: Tensor): void {
    const { numHeads: hq, numKvHeads: hkv, headDim: hd, rmsNormEps: eps } = this.config;
    rmsnormForward(this.dev, a.x, this.#layers[l].ln1, a.n1, a.rstd1, eps);
    this.#qkv(l, a, batch.positions);
    attentionForward(this.dev, {
      q: a.q,
      k: a.k,
      v: a.v,
      seqStarts: batch.seqStarts,
      out: a.attn,
      lse: a.lse,
      numHeads: hq,
      numKvHeads: hkv,
      headDim: hd,
      maxSeqLen: batch.host.maxLen,
    });
    this.#afterAttention(l, a, out);
  }

  /** Embedding, every block, final norm: the normed hidden states [N, d] of a packed batch. */
  #trunk(batch: PackedBatch, keep: "all" | "inputs" | "none"): {
    acts: Acts[];
    xL: Tensor;
    rstdF: Tensor;
    hidden: Tensor;
  } {
    const dev = this.dev, n = batch.host.tokens, d = this.config.hiddenSize;
    let x = dev.empty("act.x0", [n, d]);
    embeddingForward(dev, this.embedding, batch.ids, x);
    const acts: Acts[] = [];
    for (let l = 0; l < this.config.numLayers; l++) {
      const a = this.#allocActs(n, x);
      const out = dev.empty(`act.x${l + 1}`, [n, d]);
      this.#block(l, a, batch, out);
      if (keep === "all") acts.push(a);
      else {
        this.#freeActs(a, keep === "inputs");
        if (keep === "inputs") acts.push({ x: a.x } as Acts);
      }
      x = out;
    }
    const rstdF = dev.empty("act.rstd_final", [n]);
    const hidden = dev.empty("act.hidden", [n, d]);
    rmsnormForward(
      dev,
      x,
      this.params.get("model.norm.weight")!,
      hidden,
      rstdF,
      this.config.rmsNormEps,
    );
    return { acts, xL: x, rstdF, hidden };
  }

  /**
   * Forward over a batch of sequences packed back to back. With `train`, keeps what `backward`
   * needs (every activation, or only block inputs with `recompute`).
   */
  forward(seqs: readonly (readonly number[])[], opts: ForwardOptions = {}): ForwardState {
    const dev = this.dev;
    const batch = uploadBatch(dev, packSequences(seqs, this.config.vocabSize));
    const recompute = !!opts.recompute;
    const keep = opts.train ? (recompute ? "inputs" : "all") : "none";
    const { acts, xL, rstdF, hidden } = this.#trunk(batch, keep);
    const host = batch.host;
    if (opts.rows && opts.rows.length !== host.lengths.length) {
      throw new RangeError(
        `Qwen2.forward(): ${opts.rows.length} row masks for ${host.lengths.length} sequences`,
      );
    }
    const headRows: number[] = [];
    host.lengths.forEach((len, b) => {
      const m = opts.rows?.[b];
      if (m && m.length !== len - 1) {
        throw new RangeError(
          `Qwen2.forward(): row mask ${b} has ${m.length} values for ${len - 1} targets`,
        );
      }
      for (let t = 0; t + 1 < len; t++) if (!m || m[t] > 0) headRows.push(host.seqStarts[b] + t);
    });
    const r = headRows.length;
    const headTargets = dev.upload(
      "head.targets",
      headRows.map((i) => host.targets[i]),
      [r],
      "u32",
    );
    const headHidden = dev.empty("head.hidden", [r, this.config.hiddenSize]);
    const logp = dev.empty("logp", [r]);
    const lse = dev.empty("logp.lse", [r]);
    const entropy = opts.entropy ? dev.empty("entropy", [r]) : undefined;
    if (r > 0) {
      embeddingForward(dev, hidden, headRows, headHidden);
      lmHeadForward(dev, {
        hidden: headHidden,
        weight: this.head,
        targets: headTargets,
        logp,
        lse,
        entropy,
      });
    }
    const state: ForwardState = {
      batch,
      headRows,
      logp,
      lse,
      entropy,
      headTargets,
      acts,
      recompute,
    };
    if (opts.train) Object.assign(state, { xL, rstdF, hidden, headHidden });
    else for (const t of [xL, rstdF, hidden, headHidden]) t.dispose();
    return state;
  }

  /** Frees what a forward kept. */
  release(state: ForwardState): void {
    for (const a of state.acts) this.#freeActs(a, false);
    state.acts = [];
    for (
      const t of [
        state.logp,
        state.lse,
        state.entropy,
        state.xL,
        state.rstdF,
        state.hidden,
        state.headHidden,
        state.headTargets,
      ]
    ) {
      t?.dispose();
    }
    disposeBatch(state.batch);
  }

  /** Per-sequence log-probs (and entropies) of a forward, read back to the host. */
  async readLogprobs(state: ForwardState): Promise<LogprobsResult> {
    const spread = async (t: Tensor) => {
      const full = new Float32Array(state.batch.host.tokens);
      if (state.headRows.length > 0) {
        const v = await t.read() as Float32Array;
        state.headRows.forEach((row, i) => (full[row] = v[i]));
      }
      return unpackPerToken(state.batch.host, full);
    };
    const logp = await spread(state.logp);
    if (!state.entropy) return { logp };
    return { logp, entropy: await spread(state.entropy) };
  }

  /**
   * `lp[i][t] = log p(seqs[i][t+1] | seqs[i][0..t])`; `lp[i].length = seqs[i].length - 1`.
   * Sequences of different lengths go in one packed batch.
   */
  async logprobs(seqs: readonly (readonly number[])[]): Promise<Float32Array[]> {
    return (await this.logprobsWith(seqs)).logp;
  }

  /** `logprobs` with optional entropies. */
  async logprobsWith(
    seqs: readonly (readonly number[])[],
    opts: LogprobsOptions = {},
  ): Promise<LogprobsResult> {
    const state = this.forward(seqs, { entropy: opts.entropy, rows: opts.rows });
    try {
      return await this.readLogprobs(state);
    } finally {
      this.release(state);
    }
  }

  /**
   * Accumulates parameter gradients of `sum_b sum_t dlogp[b][t] * logp[b][t]` into `grads`
   * (call `zeroGrads()` first) and releases the forward state. `dlogp[b]` has one value per
   * target (length of sequence b minus one), as the objectives return it.
   *
   * Positions whose dlogp is exactly 0 add nothing to any gradient, so the LM head's backward
   * (its logits recomputed over the whole vocabulary) leaves them out: without a KL term, a GRPO
   * group whose rewards are all equal, a token PPO's clip has cut off. When every value is 0
   * nothing runs at all and `grads` stay as they were. The gradients are the same up to rounding
   * (the head's weight gradient sums fewer rows), and a non-finite activation at such a position
   * no longer reaches them through 0 * Inf.
   */
  backward(state: ForwardState, dlogp: readonly ArrayLike<number>[]): void {
    if (!state.hidden || !state.xL || !state.rstdF) {
      throw new Error("Qwen2.backward(): the forward was not run with { train: true }");
    }
    if (dlogp.length !== state.batch.host.lengths.length) {
      throw new RangeError(
        `Qwen2.backward(): ${dlogp.length} dlogp rows for ${state.batch.host.lengths.length} sequences`,
      );
    }
    const dev = this.dev, cfg = this.config, n = state.batch.host.tokens, d = cfg.hiddenSize;
    const flat = packPerToken(state.batch.host, dlogp);
    const rows = state.headRows;
    const onHead = new Set(rows);
    flat.forEach((g, i) => {
      if (g !== 0 && !onHead.has(i)) {
        throw new RangeError(
          `Qwen2.backward(): dlogp is ${g} at packed position ${i}, where the forward's row mask skipped the LM head`,
        );
      }
    });
    // The head rows that carry a gradient (indices into rows); NaN counts, so that it shows.
    const live: number[] = [];
    rows.forEach((pos, i) => {
      if (flat[pos] !== 0) live.push(i);
    });
    if (live.length === 0) {
      this.release(state);
      return;
    }
    const dHidden = dev.zeros("grad.hidden", [n, d]);
    const s = live.length, all = s === rows.length;
    const owned: Tensor[] = [];
    // The live rows of a head tensor [rows, width], gathered (the ids uploaded once).
    let liveIds: Tensor<"u32"> | undefined;
    const gather = (t: Tensor, width: number, name: string) => {
      if (!liveIds) {
        liveIds = dev.upload("head.live_rows", live, [s], "u32");
        owned.push(liveIds);
      }
      const out = dev.empty(name, [s, width]);
      embeddingForward(dev, t.reshape([rows.length, width]), liveIds, out);
      owned.push(out);
      return out;
    };
    const hidden = all ? state.headHidden! : gather(state.headHidden!, d, "head.hidden.live");
    const lse = all ? state.lse : gather(state.lse, 1, "logp.lse.live").reshape([s]);
    let targets = state.headTargets;
    if (!all) {
      const host = state.batch.host;
      targets = dev.upload("head.targets.live", live.map((i) => host.targets[rows[i]]), [s], "u32");
      owned.push(targets);
    }
    const dl = dev.upload("dlogp", live.map((i) => flat[rows[i]]), [s]);
    const dHead = dev.empty("grad.head_hidden", [s, d]);
    lmHeadBackward(dev, {
      hidden,
      weight: this.head,
      targets,
      lse,
      dlogp: dl,
      dhidden: dHead,
      dweight: this.#grad(cfg.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"),
    });
    // Each head row goes back to its packed position (a scatter with unique rows).
    embeddingBackward(dev, live.map((i) => rows[i]), dHead, dHidden);
    for (const t of [dl, dHead, ...owned]) t.dispose();
    let dx = dev.empty("grad.x", [n, d]);
    rmsnormBackward(
      dev,
      state.xL,
      this.params.get("model.norm.weight")!,
      state.rstdF,
      dHidden,
      dx,
      this.#grad("model.norm.weight"),
      { accumulateDw: true },
    );
    dHidden.dispose();
    for (let l = cfg.numLayers - 1; l >= 0; l--) {
      let a = state.acts[l];
      if (state.recompute) {
        const full = this.#allocActs(n, a.x);
        const scratch = dev.empty("act.recompute_out", [n, d]);
        this.#block(l, full, state.batch, scratch);
        scratch.dispose();
        a = full;
      }
      const dxIn = dev.empty("grad.x", [n, d]);
      this.#blockBackward(l, a, state.batch, dx, dxIn);
      dx.dispose();
      dx = dxIn;
      this.#freeActs(a, false);
    }
    state.acts = [];
    embeddingBackward(dev, state.batch.host.ids, dx, this.#grad("model.embed_tokens.weight"));
    dx.dispose();
    this.release(state);
  }

  /** Backward of block l: dOut [N, d] (gradient at the block output) to dX [N, d] (written). */
  #blockBackward(l: number, a: Acts, batch: PackedBatch, dOut: Tensor, dX: Tensor): void {
    const dev = this.dev, L = this.#layers[l], cfg = this.config;
    const { hiddenSize: d, intermediateSize: ff, numHeads: hq, numKvHeads: hkv, headDim: hd } = cfg;
    const n = batch.host.tokens;
    const g = (k: string) => this.#grad(`model.layers.${l}.${k}`);
    const acc = { transA: true, accumulate: true } as const;
    // MLP: out = h + s Wd^T, s = silu(g) * u, g = n2 Wg^T, u = n2 Wu^T, n2 = rmsnorm(h).
    const dS = dev.empty("grad.swiglu", [n, ff]);
    matmul(dev, dOut, L.wd, dS);
    matmul(dev, dOut, a.s, g("mlp.down_proj.weight"), acc);
    const dG = dev.empty("grad.gate", [n, ff]), dU = dev.empty("grad.up", [n, ff]);
    swigluBackward(dev, a.g, a.u, dS, dG, dU);
    dS.dispose();
    const dN2 = dev.empty("grad.n2", [n, d]);
    matmul(dev, dG, L.wg, dN2);
    matmul(dev, dU, L.wu, dN2, { accumulate: true });
    matmul(dev, dG, a.n2, g("mlp.gate_proj.weight"), acc);
    matmul(dev, dU, a.n2, g("mlp.up_proj.weight"), acc);
    dG.dispose();
    dU.dispose();
    const dH = dev.empty("grad.h", [n, d]);
    rmsnormBackward(dev, a.h, L.ln2, a.rstd2, dN2, dH, g("post_attention_layernorm.weight"), {
      accumulateDw: true,
    });
    dN2.dispose();
    add(dev, dH, dOut, dX); // dX holds dh = dOut + rmsnorm'(dN2) for now
    dH.dispose();
    // Attention: h = x + attn Wo^T.
    const dAttn = dev.empty("grad.attn", [n, hq * hd]);
    matmul(dev, dX, L.wo, dAttn);
    matmul(dev, dX, a.attn, g("self_attn.o_proj.weight"), acc);
    const dq = dev.empty("grad.q", [n, hq * hd]);
    const dk = dev.empty("grad.k", [n, hkv * hd]), dv = dev.empty("grad.v", [n, hkv * hd]);
    attentionBackward(dev, {
      q: a.q,
      k: a.k,
      v: a.v,
      out: a.attn,
      lse: a.lse,
      dout: dAttn,
      seqStarts: batch.seqStarts,
      dq,
      dk,
      dv,
      numHeads: hq,
      numKvHeads: hkv,
      headDim: hd,
      maxSeqLen: batch.host.maxLen,
    });
    dAttn.dispose();
    ropeBackward(dev, dq, batch.positions, { numHeads: hq, headDim: hd, theta: cfg.ropeTheta });
    ropeBackward(dev, dk, batch.positions, { numHeads: hkv, headDim: hd, theta: cfg.ropeTheta });
    const dN1 = dev.empty("grad.n1", [n, d]);
    matmul(dev, dq, L.wq, dN1);
    matmul(dev, dk, L.wk, dN1, { accumulate: true });
    matmul(dev, dv, L.wv, dN1, { accumulate: true });
    for (const [dt, w] of [[dq, "q"], [dk, "k"], [dv, "v"]] as const) {
      matmul(dev, dt, a.n1, g(`self_attn.${w}_proj.weight`), acc);
      sumRows(dev, dt, g(`self_attn.${w}_proj.bias`), { accumulate: true });
      dt.dispose();
    }
    const dXn = dev.empty("grad.xnorm", [n, d]);
    rmsnormBackward(dev, a.x, L.ln1, a.rstd1, dN1, dXn, g("input_layernorm.weight"), {
      accumulateDw: true,
    });
    dN1.dispose();
    axpy(dev, 1, dXn, dX);
    dXn.dispose();
  }

  /**
   * Samples completions: every prompt `samples` times. The prompts are prefilled together, each
   * once, and its KV cache rows copied to each of its samples; then every sample decodes one
   * token per step against its cache, the sampling kernel drawing on the GPU.
   */
  async generate(
    prompts: readonly (readonly number[])[],
    opts: GenerateOptions,
  ): Promise<Generation[]> {
    const dev = this.dev, cfg = this.config;
    const G = opts.samples ?? 1;
    const maxNew = opts.maxNewTokens;
    if (!Number.isInteger(G) || G < 1) throw new RangeError(`generate: samples = ${G}`);
    if (!Number.isInteger(maxNew) || maxNew < 0) {
      throw new RangeError(`generate: maxNewTokens = ${maxNew} must be a non-negative integer`);
    }
    const temperature = opts.temperature ?? 1;
    const eos = new Set(
      opts.eosTokenIds ?? this.tokenizer?.eosTokenIds ?? cfg.eosTokenIds ?? [],
    );
    const stops = opts.stopStrings ?? [];
    const every = opts.readEvery ?? 8;
    if (!Number.isInteger(every) || every < 1) {
      throw new RangeError(`generate: readEvery = ${every} must be a positive integer`);
    }
    if (stops.length > 0 && !this.tokenizer) {
      throw new Error("generate: stopStrings need a tokenizer (model.tokenizer is not set)");
    }
    const vocabLimit = Math.min(
      opts.vocabLimit ?? this.tokenizer?.vocabSize ?? cfg.vocabSize,
      cfg.vocabSize,
    );
    const rows: number[][] = [];
    for (const p of prompts) for (let g = 0; g < G; g++) rows.push([...p]);
    const R = rows.length;
    const out: Generation[] = rows.map((_, r) => ({
      prompt: Math.floor(r / G),
      sample: r % G,
      tokens: [],
      logprobs: [],
      finishReason: "length",
    }));
    if (R === 0 || maxNew === 0) return out;
    const { hiddenSize: d, numHeads: hq, numKvHeads: hkv, headDim: hd } = cfg;
    const kvw = hkv * hd;
    // Each prompt once: its samples share the prefill.
    const host = packSequences(prompts, cfg.vocabSize);
    const P = prompts.length;
    const promptOf = (r: number) => Math.floor(r / G);
    const maxLen = host.maxLen + maxNew;
    // The decoding rows: ids[i] is the output row that row i of every tensor below decodes.
    let ids = rows.map((_, r) => r);
    let caches: { k: Tensor; v: Tensor }[] = [];
    let lengths = dev.zeros("gen.lengths", [R], "u32");
    let tokens = dev.empty("gen.tokens", [R], "u32");
    let tokLogp = dev.empty("gen.logp", [R]);
    let last = dev.empty("gen.last_hidden", [R, d]);
    let rstd: Tensor | undefined;
    let positions: Tensor<"u32"> | undefined;
    // Each row's RNG key, its output row: kept through compaction, so one sample pipeline serves.
    let keys = dev.upload("gen.row_keys", ids, [R], "u32");
    const seed = opts.seed ?? 0;
    let tokHist: Tensor<"u32"> | undefined;
    let logpHist: Tensor | undefined;
    // On llvmpipe the sampler reads the head from textures: copied once for all the steps.
    const heads = HeadTextures.wanted(dev, R, d)
      ? HeadTextures.create(dev, this.head, vocabLimit)
      : undefined;
    // Each row's draw is keyed by its output row, so dropping others does not change it.
    const sample = (hidden: Tensor, step: number) =>
      sampleTokens(dev, {
        headTextures: heads,
        hidden,
        weight: this.head,
        vocabLimit,
        temperature,
        topK: opts.topK,
        topP: opts.topP,
        seed,
        counter: step,
        tokens,
        logp: tokLogp,
        rowKeys: keys,
      });
    try {
      for (let l = 0; l < cfg.numLayers; l++) {
        caches.push({
          k: dev.empty(`gen.k_cache.${l}`, [R, maxLen, kvw]),
          v: dev.empty(`gen.v_cache.${l}`, [R, maxLen, kvw]),
        });
      }
      // Prefill: the packed prompts through every block, their k/v into the caches (with
      // several samples a prompt, into caches of one row a prompt, then copied to each sample's
      // row: the prompt's positions only).
      const batch = uploadBatch(dev, host);
      const n = host.tokens;
      const shared = G > 1;
      const prefillLengths = shared ? dev.zeros("gen.prefill_lengths", [P], "u32") : lengths;
      let x = dev.empty("gen.x", [n, d]);
      embeddingForward(dev, this.embedding, batch.ids, x);
      for (let l = 0; l < cfg.numLayers; l++) {
        const a = this.#allocActs(n, x);
        const o = dev.empty("gen.x", [n, d]);
        this.#block(l, a, batch, o);
        const pc = shared
          ? {
            k: dev.empty("gen.prefill_k", [P, maxLen, kvw]),
            v: dev.empty("gen.prefill_v", [P, maxLen, kvw]),
          }
          : caches[l];
        kvCacheAppend(dev, {
          k: a.k,
          v: a.v,
          kCache: pc.k,
          vCache: pc.v,
          lengths: prefillLengths,
          numKvHeads: hkv,
          headDim: hd,
          seqStarts: batch.seqStarts,
        });
        if (shared) {
          const slab = maxLen * kvw;
          for (let r = 0; r < R; r++) {
            const q = promptOf(r), count = host.lengths[q] * kvw;
            dev.copy(pc.k, caches[l].k, count, q * slab, r * slab);
            dev.copy(pc.v, caches[l].v, count, q * slab, r * slab);
          }
          pc.k.dispose();
          pc.v.dispose();
        }
        this.#freeActs(a, false);
        x = o;
      }
      if (shared) prefillLengths.dispose();
      const lastIdx = rows.map((_, r) => {
        const q = promptOf(r);
        return host.seqStarts[q] + host.lengths[q] - 1;
      });
      const lastX = dev.empty("gen.last_x", [R, d]);
      embeddingForward(dev, x, lastIdx, lastX);
      x.dispose();
      disposeBatch(batch);
      rstd = dev.empty("gen.rstd", [R]);
      const normW = this.params.get("model.norm.weight")!;
      rmsnormForward(dev, lastX, normW, last, rstd, cfg.rmsNormEps);
      lastX.dispose();
      let lens = rows.map((_, r) => host.lengths[promptOf(r)]);
      dev.write(lengths, Uint32Array.from(lens));
      const done = new Array<boolean>(R).fill(false);
      positions = dev.empty("gen.positions", [R], "u32");
      // Each step's ids and log-probs are copied into slot j of these; read back per batch.
      tokHist = dev.empty("gen.tokens_batch", [every, R], "u32");
      logpHist = dev.empty("gen.logp_batch", [every, R]);
      const decodeStep = () => {
        // Decode: each row's new token through every block against the cache.
        const rn = ids.length;
        dev.write(positions!, Uint32Array.from(lens));
        const xd = dev.empty("gen.xd", [rn, d]);
        embeddingForward(dev, this.embedding, tokens, xd);
        let xcur = xd;
        for (let l = 0; l < cfg.numLayers; l++) {
          const a = this.#allocActs(rn, xcur);
          rmsnormForward(dev, a.x, this.#layers[l].ln1, a.n1, a.rstd1, cfg.rmsNormEps);
          this.#qkv(l, a, positions!);
          kvCacheAppend(dev, {
            k: a.k,
            v: a.v,
            kCache: caches[l].k,
            vCache: caches[l].v,
            lengths,
            numKvHeads: hkv,
            headDim: hd,
          });
          attentionDecode(dev, {
            q: a.q,
            kCache: caches[l].k,
            vCache: caches[l].v,
            lengths,
            out: a.attn,
            numHeads: hq,
            numKvHeads: hkv,
            headDim: hd,
          });
          const o = dev.empty("gen.xd", [rn, d]);
          this.#afterAttention(l, a, o);
          this.#freeActs(a, false);
          xcur = o;
        }
        rmsnormForward(dev, xcur, normW, last, rstd!, cfg.rmsNormEps);
        xcur.dispose();
        for (let r = 0; r < rn; r++) lens[r]++;
        dev.write(lengths, Uint32Array.from(lens));
      };
      // Keeps rows `keep` (indices into the current rows, ascending): their caches, last hidden
      // states, lengths and keys move into tensors of keep.length rows.
      const compact = (keep: number[]) => {
        const rn = keep.length, slab = maxLen * kvw;
        const moved = (t: Tensor, name: string) => {
          const out = dev.empty(name, [rn, maxLen, kvw]);
          // One copy per run of consecutive kept rows.
          for (let i = 0; i < rn;) {
            let j = i + 1;
            while (j < rn && keep[j] === keep[j - 1] + 1) j++;
            dev.copy(t, out, (j - i) * slab, keep[i] * slab, i * slab);
            i = j;
          }
          t.dispose();
          return out;
        };
        caches = caches.map((c, l) => ({
          k: moved(c.k, `gen.k_cache.${l}`),
          v: moved(c.v, `gen.v_cache.${l}`),
        }));
        const lastKept = dev.empty("gen.last_hidden", [rn, d]);
        embeddingForward(dev, last, keep, lastKept);
        last.dispose();
        last = lastKept;
        ids = keep.map((i) => ids[i]);
        lens = keep.map((i) => lens[i]);
        for (const t of [lengths, tokens, tokLogp, rstd, positions, keys, tokHist, logpHist]) {
          t?.dispose();
        }
        lengths = dev.upload("gen.lengths", lens, [rn], "u32");
        keys = dev.upload("gen.row_keys", ids, [rn], "u32");
        tokens = dev.empty("gen.tokens", [rn], "u32");
        tokLogp = dev.empty("gen.logp", [rn]);
        rstd = dev.empty("gen.rstd", [rn]);
        positions = dev.empty("gen.positions", [rn], "u32");
        tokHist = dev.empty("gen.tokens_batch", [every, rn], "u32");
        logpHist = dev.empty("gen.logp_batch", [every, rn]);
      };
      let active = R;
      for (let step = 0; step < maxNew && active > 0;) {
        const n = Math.min(every, maxNew - step), rn = ids.length;
        for (let j = 0; j < n; j++) {
          sample(last, step + j);
          dev.copy(tokens, tokHist, rn, 0, j * rn);
          dev.copy(tokLogp, logpHist, rn, 0, j * rn);
          if (step + j + 1 < maxNew) decodeStep();
        }
        const [tk, lp] = await Promise.all([
          dev.read<"u32">(tokHist.slice(0, n * rn)),
          dev.read<"f32">(logpHist.slice(0, n * rn)),
        ]);
        for (let j = 0; j < n && active > 0; j++) {
          for (const [i, r] of ids.entries()) {
            if (done[r]) continue;
            const t = tk[j * rn + i];
            out[r].tokens.push(t);
            out[r].logprobs.push(lp[j * rn + i]);
            if (eos.has(t)) {
              done[r] = true;
              out[r].finishReason = "eos";
            } else if (stops.length > 0) {
              const text = this.tokenizer!.decode(out[r].tokens);
              if (stops.some((s) => text.includes(s))) {
                done[r] = true;
                out[r].finishReason = "stop";
              }
            }
            if (done[r]) active--;
          }
          opts.onStep?.(step + j + 1, active);
        }
        step += n;
        if (opts.compact !== false && step < maxNew && active > 0 && active <= rn * 0.75) {
          compact(ids.flatMap((r, i) => (done[r] ? [] : [i])));
        }
      }
    } finally {
      heads?.release();
      for (const c of caches) {
        c.k.dispose();
        c.v.dispose();
      }
      for (const t of [lengths, tokens, tokLogp, last, rstd, positions, keys, tokHist, logpHist]) {
        t?.dispose();
      }
    }
    return out;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
