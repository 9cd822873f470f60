/**
 * Qwen2 `config.json`: parse, validate, write, and the presets `init-model` starts from.
 *
 * Fields are camel-cased from Hugging Face's names (`num_hidden_layers` -> `numLayers`,
 * `num_attention_heads` -> `numHeads`, `num_key_value_heads` -> `numKvHeads`), so a
 * `Qwen2Config` is also the model's `ModelDims`. Optional fields take Hugging Face
 * `Qwen2Config`'s defaults (`num_key_value_heads` = `num_attention_heads`, `rms_norm_eps` 1e-6,
 * `rope_theta` 10000, `tie_word_embeddings` false, `max_position_embeddings` 32768,
 * `hidden_act` "silu"). Settings this engine does not implement are refused with a
 * `ConfigError` naming the file and the field: sliding-window attention, any `rope_scaling`,
 * an activation other than SiLU, a `head_dim` other than hidden / heads.
 *
 * @example
 * ```ts
 * import { parseQwen2Config, PRESETS, toConfigJson } from "./config.ts";
 * const cfg = parseQwen2Config(toConfigJson(PRESETS["0.5b-shape"]), "config.json");
 * if (cfg.headDim !== 64 || cfg.numKvHeads !== 2) throw new Error("0.5B shapes");
 * ```
 */

/** A validated Qwen2 configuration. */
export interface Qwen2Config {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** hidden_size / num_attention_heads. */
  headDim: number;
  /** Embedding rows (151936 for Qwen2.5), more than the tokenizer's ids. */
  vocabSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  /** `eos_token_id` as a list (it may be a number or a list in config.json); empty if absent. */
  eosTokenIds: number[];
  /** `torch_dtype` (or newer `dtype`), e.g. "bfloat16"; null when absent. */
  torchDtype: string | null;
}

/** A config.json that this engine cannot run. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly file: string, readonly field: string | null, readonly detail: string) {
    super(field === null ? `${file}: ${detail}` : `${file}: ${field}: ${detail}`);
  }
}

const REQUIRED = [
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "vocab_size",
] as const;

/** Validates a parsed config.json object; `file` is named in every error. */
export function parseQwen2Config(raw: unknown, file = "config.json"): Qwen2Config {
  const fail = (field: string | null, detail: string): never => {
    throw new ConfigError(file, field, detail);
  };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return fail(null, "must be a JSON object");
  }
  const c = raw as Record<string, unknown>;
  for (const f of REQUIRED) if (c[f] === undefined || c[f] === null) fail(f, "is required");

  const posInt = (f: string, fallback?: number): number => {
    const v = c[f] ?? fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      fail(f, `must be a positive integer, found ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const posNum = (f: string, fallback: number): number => {
    const v = c[f] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      fail(f, `must be a positive number, found ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const tokenId = (f: string, v: unknown): number => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      fail(f, `must be a token id, found ${JSON.stringify(v)}`);
    }
    return v as number;
  };

  if (c.model_type !== undefined && c.model_type !== "qwen2") {
    fail("model_type", `${JSON.stringify(c.model_type)} is not supported (only "qwen2")`);
  }
  if (c.use_sliding_window === true) {
    fail("use_sliding_window", "sliding-window attention is not supported (must be false)");
  }
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    fail("rope_scaling", `${JSON.stringify(c.rope_scaling)} is not supported (must be null)`);
  }
  if (c.hidden_act !== undefined && c.hidden_act !== "silu") {
    fail("hidden_act", `${JSON.stringify(c.hidden_act)} is not supported (only "silu")`);
  }

  const hiddenSize = posInt("hidden_size");
  const intermediateSize = posInt("intermediate_size");
  const numLayers = posInt("num_hidden_layers");
  const numHeads = posInt("num_attention_heads");
  const numKvHeads = posInt("num_key_value_heads", numHeads);
  const vocabSize = posInt("vocab_size");
  const maxPositionEmbeddings = posInt("max_position_embeddings", 32768);
  if (hiddenSize % numHeads !== 0) {
    fail("hidden_size", `${hiddenSize} is not divisible by num_attention_heads = ${numHeads}`);
  }
  if (numHeads % numKvHeads !== 0) {
    fail(
      "num_attention_heads",
      `${numHeads} is not divisible by num_key_value_heads = ${numKvHeads}`,
    );
  }
  const headDim = hiddenSize / numHeads;
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== headDim) {
    fail("head_dim", `${JSON.stringify(c.head_dim)} differs from hidden_size / heads = ${headDim}`);
  }
  if (headDim % 2 !== 0) fail("hidden_size", `head dim ${headDim} must be even for RoPE`);

  const tie = c.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") fail("tie_word_embeddings", "must be true or false");

  const bos = c.bos_token_id ?? null;
  const eos = c.eos_token_id ?? null;
  const eosTokenIds = eos === null
    ? []
    : Array.isArray(eos)
    ? eos.map((v) => tokenId("eos_token_id", v))
    : [tokenId("eos_token_id", eos)];
  const dtype = c.torch_dtype ?? c.dtype ?? null;

  return {
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    ropeTheta: posNum("rope_theta", 10000),
    rmsNormEps: posNum("rms_norm_eps", 1e-6),
    tieWordEmbeddings: tie as boolean,
    maxPositionEmbeddings,
    bosTokenId: bos === null ? null : tokenId("bos_token_id", bos),
    eosTokenIds,
    torchDtype: typeof dtype === "string" ? dtype : null,
  };
}

/** Reads and validates `<dir>/config.json` (or a path to a .json file). */
export async function loadQwen2Config(path: string): Promise<Qwen2Config> {
  const file = path.endsWith(".json") ? path : `${path.replace(/\/+$/, "")}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    throw new ConfigError(file, null, `cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, null, `not valid JSON: ${(e as Error).message}`);
  }
  return parseQwen2Config(raw, file);
}

/** The Hugging Face config.json object for a config (what `init-model` and `save` write). */
export function toConfigJson(cfg: Qwen2Config): Record<string, unknown> {
  return {
    architectures: ["Qwen2ForCausalLM"],
    attention_dropout: 0.0,
    bos_token_id: cfg.bosTokenId,
    eos_token_id: cfg.eosTokenIds.length === 1 ? cfg.eosTokenIds[0] : cfg.eosTokenIds,
    hidden_act: "silu",
    hidden_size: cfg.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: cfg.intermediateSize,
    max_position_embeddings: cfg.maxPositionEmbeddings,
    max_window_layers: cfg.numLayers,
    model_type: "qwen2",
    num_attention_heads: cfg.numHeads,
    num_hidden_layers: cfg.numLayers,
    num_key_value_heads: cfg.numKvHeads,
    rms_norm_eps: cfg.rmsNormEps,
    rope_scaling: null,
    rope_theta: cfg.ropeTheta,
    sliding_window: cfg.maxPositionEmbeddings,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    torch_dtype: cfg.torchDtype ?? "float32",
    use_cache: true,
    use_sliding_window: false,
    vocab_size: cfg.vocabSize,
  };
}

/** Qwen2.5's special token ids (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`). */
export const QWEN_TOKENS = { endoftext: 151643, imStart: 151644, imEnd: 151645 } as const;

/** Qwen2.5's embedding rows (the tokenizer's 151,669 ids are padded up to a multiple of 128). */
export const QWEN_VOCAB_SIZE = 151936;

function preset(
  hiddenSize: number,
  intermediateSize: number,
  numLayers: number,
  numHeads: number,
  numKvHeads: number,
): Qwen2Config {
  return {
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim: hiddenSize / numHeads,
    vocabSize: QWEN_VOCAB_SIZE,
    ropeTheta: 1_000_000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 32768,
    bosTokenId: QWEN_TOKENS.endoftext,
    // Instruct-style: the chat turn ends with <|im_end|>; generation also stops at <|endoftext|>.
    eosTokenIds: [QWEN_TOKENS.imEnd],
    torchDtype: "float32",
  };
}

/** Names of the built-in presets. */
export type PresetName = "tiny" | "small" | "0.5b-shape";

/**
 * Built-in shapes, all with Qwen2.5's full 151,936-row vocabulary, tied embeddings,
 * rope_theta 1e6 and eps 1e-6:
 * - `tiny`: 2 layers, hidden 64, MLP 128, 4 heads / 2 KV heads (head dim 16); ~9.8M parameters,
 *   almost all in the embedding. Fast enough for tests on llvmpipe.
 * - `small`: 4 layers, hidden 256, MLP 768, 8 heads / 2 KV heads (head dim 32); ~42M
 *   parameters. For quick end-to-end runs that should learn something.
 * - `0.5b-shape`: Qwen2.5-0.5B exactly: 24 layers, hidden 896, MLP 4864, 14 heads / 2 KV heads
 *   (head dim 64); 494M parameters.
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<Qwen2Config>>> = {
  tiny: preset(64, 128, 2, 4, 2),
  small: preset(256, 768, 4, 8, 2),
  "0.5b-shape": preset(896, 4864, 24, 14, 2),
};

/** Parameter count (the embedding counted once when tied). */
export function parameterCount(cfg: Qwen2Config): number {
  const h = cfg.hiddenSize, kv = cfg.numKvHeads * cfg.headDim;
  const attn = h * h + h + 2 * (h * kv + kv) + h * h;
  const mlp = 3 * h * cfg.intermediateSize;
  const perLayer = attn + mlp + 2 * h;
  const emb = cfg.vocabSize * h;
  return emb * (cfg.tieWordEmbeddings ? 1 : 2) + cfg.numLayers * perLayer + h;
}
