import assert from "node:assert/strict";
import { join } from "node:path";
import { loadQwen2Config } from "../engine/config.ts";
import { bf16ToF32, f32ToBf16 } from "../engine/dtype.ts";
import { ensureModel, initModel, main } from "../engine/init_model.ts";
import { openCheckpoint } from "../engine/safetensors.ts";
import { Tokenizer } from "../engine/tokenizer.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "init_model_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The tiny preset's tensors as DESIGN.md names them, written out by hand. */
function tinyExpected(untied: boolean): Map<string, number[]> {
  const m = new Map<string, number[]>([
    ["model.embed_tokens.weight", [151936, 64]],
    ["model.norm.weight", [64]],
  ]);
  for (const i of [0, 1]) {
    const p = `model.layers.${i}`;
    m.set(`${p}.self_attn.q_proj.weight`, [64, 64]);
    m.set(`${p}.self_attn.k_proj.weight`, [32, 64]);
    m.set(`${p}.self_attn.v_proj.weight`, [32, 64]);
    m.set(`${p}.self_attn.o_proj.weight`, [64, 64]);
    m.set(`${p}.self_attn.q_proj.bias`, [64]);
    m.set(`${p}.self_attn.k_proj.bias`, [32]);
    m.set(`${p}.self_attn.v_proj.bias`, [32]);
    m.set(`${p}.mlp.gate_proj.weight`, [128, 64]);
    m.set(`${p}.mlp.up_proj.weight`, [128, 64]);
    m.set(`${p}.mlp.down_proj.weight`, [64, 128]);
    m.set(`${p}.input_layernorm.weight`, [64]);
    m.set(`${p}.post_attention_layernorm.weight`, [64]);
  }
  if (untied) m.set("lm_head.weight", [151936, 64]);
  return m;
}

async function sha256(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

function std(x: Float32Array): number {
  let s = 0, ss = 0;
  for (const v of x) {
    s += v;
    ss += v * v;
  }
  const mean = s / x.length;
  return Math.sqrt(ss / x.length - mean * mean);
}

Deno.test("initModel() writes a tiny f32 checkpoint whose every HF tensor name, shape and config field reads back", async () => {
  await withTempDir(async (dir) => {
    const res = await initModel({ preset: "tiny", out: dir, seed: 1 });
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);

    const raw = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assert.equal(raw.model_type, "qwen2");
    assert.deepEqual(raw.architectures, ["Qwen2ForCausalLM"]);
    assert.equal(raw.torch_dtype, "float32");
    const cfg = await loadQwen2Config(dir);
    assert.deepEqual(cfg, res.config);
    assert.equal(cfg.tieWordEmbeddings, true);
    assert.equal(cfg.headDim, 16);
    const gen = JSON.parse(await Deno.readTextFile(join(dir, "generation_config.json")));
    assert.deepEqual(gen.eos_token_id, [151645, 151643]);

    const expected = tinyExpected(false);
    const ck = await openCheckpoint(dir);
    try {
      assert.deepEqual([...ck.names], [...expected.keys()].sort());
      assert.deepEqual(res.tensorNames, [...ck.names]);
      for (const [name, shape] of expected) {
        const info = ck.info(name);
        assert.equal(info.dtype, "F32", name);
        assert.deepEqual(info.shape, shape, name);
      }
      const emb = await ck.readF32("model.embed_tokens.weight");
      assert.ok(Math.abs(std(emb) - 0.02) < 2e-4, `embedding std ${std(emb)}`);
      assert.ok((await ck.readF32("model.norm.weight")).every((v) => v === 1));
      assert.ok((await ck.readF32("model.layers.1.input_layernorm.weight")).every((v) => v === 1));
      const bias = await ck.readF32("model.layers.0.self_attn.k_proj.bias");
      assert.ok(bias.some((v) => v !== 0), "q/k/v biases are random, not zero");
      // Each tensor has its own stream: no two weights are equal.
      const q0 = await ck.readF32("model.layers.0.self_attn.q_proj.weight");
      const o0 = await ck.readF32("model.layers.0.self_attn.o_proj.weight");
      assert.notDeepEqual([...q0.subarray(0, 8)], [...o0.subarray(0, 8)]);
      assert.equal(res.parameters, 9_798_208);
    } finally {
      ck.close();
    }

    // The tokenizer files load and carry Qwen2.5's chat template.
    const tok = await Tokenizer.load(dir);
    assert.equal(
      tok.applyChatTemplate([{ role: "system", content: "s" }, { role: "user", content: "u" }], {
        addGenerationPrompt: true,
      }),
      "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>assistant\n",
    );
    assert.deepEqual(tok.eosTokenIds, [151645, 151643]);
  });
});

Deno.test("initModel() with dtype bf16 writes BF16 tensors equal to the f32 weights rounded", async () => {
  await withTempDir(async (dir) => {
    const f32Dir = join(dir, "f32"), bf16Dir = join(dir, "bf16");
    await initModel({ preset: "tiny", out: f32Dir, seed: 4 });
    await initModel({ preset: "tiny", out: bf16Dir, seed: 4, dtype: "bf16" });
    assert.equal((await loadQwen2Config(bf16Dir)).torchDtype, "bfloat16");
    const a = await openCheckpoint(f32Dir), b = await openCheckpoint(bf16Dir);
    try {
      assert.deepEqual(b.names, a.names);
      for (const name of a.names) {
        assert.equal(b.info(name).dtype, "BF16", name);
        assert.deepEqual(b.info(name).shape, a.info(name).shape, name);
      }
      for (
        const name of [
          "model.layers.1.mlp.down_proj.weight",
          "model.layers.0.self_attn.v_proj.bias",
        ]
      ) {
        const want = bf16ToF32(f32ToBf16(await a.readF32(name)));
        assert.deepEqual([...await b.readF32(name)], [...want], name);
      }
      assert.equal((await Deno.stat(join(bf16Dir, "model.safetensors"))).size < 20e6, true);
    } finally {
      a.close();
      b.close();
    }
  });
});

Deno.test("initModel() gives byte-identical files for the same seed and different weights for another", async () => {
  await withTempDir(async (dir) => {
    await initModel({ preset: "tiny", out: join(dir, "a"), seed: 5 });
    await initModel({ preset: "tiny", out: join(dir, "b"), seed: 5 });
    await initModel({ preset: "tiny", out: join(dir, "c"), seed: 6 });
    const [a, b, c] = await Promise.all(
      ["a", "b", "c"].map((d) => sha256(join(dir, d, "model.safetensors"))),
    );
    assert.equal(a, b);
    assert.notEqual(a, c);
  });
});

Deno.test("initModel() with untied writes lm_head.weight and tie_word_embeddings false", async () => {
  await withTempDir(async (dir) => {
    await initModel({ preset: "tiny", out: dir, seed: 2, untied: true, dtype: "bf16" });
    const cfg = await loadQwen2Config(dir);
    assert.equal(cfg.tieWordEmbeddings, false);
    const ck = await openCheckpoint(dir);
    try {
      assert.deepEqual([...ck.names], [...tinyExpected(true).keys()].sort());
      assert.deepEqual(ck.info("lm_head.weight").shape, [151936, 64]);
      const head = await ck.readF32("lm_head.weight");
      const emb = await ck.readF32("model.embed_tokens.weight");
      assert.notDeepEqual([...head.subarray(0, 16)], [...emb.subarray(0, 16)]);
    } finally {
      ck.close();
    }
  });
});

Deno.test("the init-model command line writes a checkpoint and refuses bad arguments with exit code 2", async () => {
  await withTempDir(async (dir) => {
    const err = console.error, log = console.log;
    const lines: string[] = [];
    console.error = (...a: unknown[]) => lines.push(a.join(" "));
    console.log = (...a: unknown[]) => lines.push(a.join(" "));
    try {
      assert.equal(await main(["--preset", "huge", "--out", dir]), 2);
      assert.equal(await main(["--preset", "tiny"]), 2);
      assert.equal(await main(["--preset", "tiny", "--out", dir, "--dtype", "f16"]), 2);
      assert.equal(await main(["--preset", "tiny", "--out", dir, "--seed", "-1"]), 2);
      assert.equal(await main(["--bogus"]), 2);
      assert.ok(lines.some((l) => l.includes("--preset must be one of tiny, small, 0.5b-shape")));
      const out = join(dir, "m");
      assert.equal(await main(["--preset", "tiny", "--out", out, "--seed", "3", "--untied"]), 0);
      const ck = await openCheckpoint(out);
      assert.ok(ck.has("lm_head.weight"));
      ck.close();
    } finally {
      console.error = err;
      console.log = log;
    }
  });
});

Deno.test("ensureModel() writes a checkpoint once and keeps it on the next call", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ensure_model_" });
  const out = join(dir, "base");
  const logs: string[] = [];
  assert.equal(await ensureModel({ preset: "tiny", out, seed: 2 }, (l) => logs.push(l)), out);
  assert.deepEqual(logs, [`writing the tiny checkpoint to ${out}`]);
  const before = await Deno.readFile(join(out, "model.safetensors"));
  // A different seed would give other weights: the existing checkpoint must be kept.
  await ensureModel({ preset: "tiny", out, seed: 3 }, (l) => logs.push(l));
  assert.equal(logs.length, 1);
  assert.deepEqual(await Deno.readFile(join(out, "model.safetensors")), before);
  await Deno.remove(dir, { recursive: true });
});
