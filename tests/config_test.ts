import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfigError,
  loadQwen2Config,
  parameterCount,
  parseQwen2Config,
  PRESETS,
  toConfigJson,
} from "../engine/config.ts";

/** Qwen2.5-0.5B-Instruct's config.json, as published. */
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-06,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  transformers_version: "4.43.1",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

function refuses(raw: unknown, field: string | null, re: RegExp) {
  assert.throws(
    () => parseQwen2Config(raw, "/m/config.json"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      assert.equal(e.field, field);
      assert.equal(e.file, "/m/config.json");
      assert.ok(e.message.startsWith("/m/config.json"), e.message);
      if (field) assert.ok(e.message.includes(field), e.message);
      assert.match(e.message, re);
      return true;
    },
  );
}

Deno.test("parseQwen2Config() reads Qwen2.5-0.5B-Instruct's config.json", () => {
  const c = parseQwen2Config(QWEN25_05B);
  assert.deepEqual(c, {
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    maxPositionEmbeddings: 32768,
    bosTokenId: 151643,
    eosTokenIds: [151645],
    torchDtype: "bfloat16",
  });
});

Deno.test("parseQwen2Config() fills Hugging Face's defaults for optional fields", () => {
  const c = parseQwen2Config({
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 1000,
    eos_token_id: [1, 2],
  });
  assert.equal(c.numKvHeads, 4);
  assert.equal(c.rmsNormEps, 1e-6);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.maxPositionEmbeddings, 32768);
  assert.equal(c.bosTokenId, null);
  assert.deepEqual(c.eosTokenIds, [1, 2]);
  assert.equal(c.torchDtype, null);
});

Deno.test("parseQwen2Config() refuses sliding-window attention, naming use_sliding_window", () => {
  refuses({ ...QWEN25_05B, use_sliding_window: true }, "use_sliding_window", /not supported/);
});

Deno.test("parseQwen2Config() refuses any rope_scaling other than null", () => {
  const yarn = { type: "yarn", factor: 4.0, original_max_position_embeddings: 32768 };
  refuses({ ...QWEN25_05B, rope_scaling: yarn }, "rope_scaling", /yarn.*not supported/);
  assert.equal(parseQwen2Config({ ...QWEN25_05B, rope_scaling: null }).ropeTheta, 1e6);
});

Deno.test("parseQwen2Config() refuses an activation other than silu", () => {
  refuses({ ...QWEN25_05B, hidden_act: "gelu" }, "hidden_act", /"gelu" is not supported/);
});

Deno.test("parseQwen2Config() refuses heads that do not divide evenly", () => {
  refuses(
    { ...QWEN25_05B, num_key_value_heads: 3 },
    "num_attention_heads",
    /14 is not divisible by num_key_value_heads = 3/,
  );
  refuses(
    { ...QWEN25_05B, num_attention_heads: 10, num_key_value_heads: 2 },
    "hidden_size",
    /896 is not divisible by num_attention_heads = 10/,
  );
  refuses({ ...QWEN25_05B, head_dim: 128 }, "head_dim", /differs/);
});

Deno.test("parseQwen2Config() names each missing required field", () => {
  for (
    const f of [
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "num_attention_heads",
      "vocab_size",
    ]
  ) {
    const raw: Record<string, unknown> = { ...QWEN25_05B };
    delete raw[f];
    refuses(raw, f, /is required/);
  }
});

Deno.test("parseQwen2Config() refuses values of the wrong type or range", () => {
  refuses({ ...QWEN25_05B, hidden_size: "896" }, "hidden_size", /positive integer/);
  refuses({ ...QWEN25_05B, num_hidden_layers: 0 }, "num_hidden_layers", /positive integer/);
  refuses({ ...QWEN25_05B, rms_norm_eps: -1 }, "rms_norm_eps", /positive number/);
  refuses({ ...QWEN25_05B, tie_word_embeddings: "yes" }, "tie_word_embeddings", /true or false/);
  refuses({ ...QWEN25_05B, eos_token_id: [1, -2] }, "eos_token_id", /token id/);
  refuses({ ...QWEN25_05B, model_type: "llama" }, "model_type", /not supported/);
  refuses([1], null, /JSON object/);
});

Deno.test("loadQwen2Config() reads a directory's config.json and names the file on errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "config.json");
    await assert.rejects(
      loadQwen2Config(dir),
      (e: unknown) => e instanceof ConfigError && e.file === file,
    );
    await Deno.writeTextFile(file, "{ not json");
    await assert.rejects(loadQwen2Config(dir), /not valid JSON/);
    await Deno.writeTextFile(file, JSON.stringify(QWEN25_05B));
    assert.equal((await loadQwen2Config(dir)).hiddenSize, 896);
    assert.equal((await loadQwen2Config(file)).numLayers, 24);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the presets parse back from their config.json and 0.5b-shape has Qwen2.5-0.5B's exact shapes", () => {
  for (const [name, p] of Object.entries(PRESETS)) {
    const json = toConfigJson(p);
    assert.equal(json.model_type, "qwen2");
    assert.deepEqual(json.architectures, ["Qwen2ForCausalLM"]);
    assert.deepEqual(parseQwen2Config(json, name), p, name);
  }
  const want = parseQwen2Config(QWEN25_05B);
  const got = PRESETS["0.5b-shape"];
  for (
    const k of [
      "hiddenSize",
      "intermediateSize",
      "numLayers",
      "numHeads",
      "numKvHeads",
      "headDim",
      "vocabSize",
      "ropeTheta",
      "rmsNormEps",
      "tieWordEmbeddings",
      "maxPositionEmbeddings",
    ] as const
  ) {
    assert.equal(got[k], want[k], k);
  }
  assert.equal(parameterCount(got), 494_032_768); // Qwen2.5-0.5B's published count
  assert.deepEqual(
    [
      PRESETS.tiny.numLayers,
      PRESETS.tiny.hiddenSize,
      PRESETS.tiny.numHeads,
      PRESETS.tiny.numKvHeads,
    ],
    [2, 64, 4, 2],
  );
  assert.equal(PRESETS.tiny.vocabSize, 151936);
  assert.equal(PRESETS.tiny.tieWordEmbeddings, true);
  assert.equal(PRESETS.small.headDim, 32);
});
