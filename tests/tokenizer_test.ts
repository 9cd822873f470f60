import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkTokenIds,
  defaultTokenizerFiles,
  QWEN25_CHAT_TEMPLATE,
  TokenIdError,
  Tokenizer,
  TokenizerError,
  writeDefaultTokenizer,
} from "../engine/tokenizer.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tokenizer_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the default tokenizer round-trips ASCII, Unicode and digits through encode() and decode()", async () => {
  const tok = await Tokenizer.default();
  const texts = [
    "Hello world",
    "  leading spaces,\ttabs\nand\r\nnewlines  ",
    "héllo wörld, naïve café",
    "世界你好，こんにちは、안녕하세요",
    "emoji 🤗👍🏽 and math ∑ x² ≤ π",
    "مرحبا بالعالم",
    "e\u0301 (combining accent)",
    "12345 + 678 = 13023; 3.14159; -0.5e10",
  ];
  for (const t of texts) {
    const ids = tok.encode(t);
    assert.ok(ids.length > 0, t);
    // NFC normalisation is part of Qwen's tokenizer: the decoded text is the NFC form.
    assert.equal(tok.decode(ids), t.normalize("NFC"), JSON.stringify(t));
  }
  // Qwen2.5's ids: "Hello"=9707, " world"=1879; digits are split one per token ("0"=15).
  assert.deepEqual(tok.encode("Hello world"), [9707, 1879]);
  assert.deepEqual(tok.encode("2024"), [17, 15, 17, 19]);
});

Deno.test("the default tokenizer encodes <|endoftext|>, <|im_start|> and <|im_end|> to single ids", async () => {
  const tok = await Tokenizer.default();
  assert.deepEqual(tok.encode("<|endoftext|>"), [151643]);
  assert.deepEqual(tok.encode("<|im_start|>"), [151644]);
  assert.deepEqual(tok.encode("<|im_end|>"), [151645]);
  assert.deepEqual(tok.encode("<|im_start|>user\nhi<|im_end|>"), [151644, 872, 198, 6023, 151645]);
  assert.equal(tok.vocabSize, 151669);
  assert.equal(tok.padTokenId, 151643);
  assert.deepEqual(tok.eosTokenIds, [151645, 151643]);
  assert.equal(tok.idToToken(151668), "</think>");
  // 151,643 BPE tokens (ids 0..151642), then the added tokens from 151643.
  assert.equal(typeof tok.idToToken(151642), "string");
  assert.equal(tok.idToToken(151643), "<|endoftext|>");
  assert.equal(tok.idToToken(151669), undefined);
  assert.equal(tok.tokenToId("<|im_end|>"), 151645);
});

Deno.test("applyChatTemplate() renders Qwen2.5's template for a system + user conversation", async () => {
  const tok = await Tokenizer.default();
  const messages = [
    { role: "system", content: "You are a calculator." },
    { role: "user", content: "What is 2+2?" },
  ];
  assert.equal(
    tok.applyChatTemplate(messages, { addGenerationPrompt: true }),
    "<|im_start|>system\nYou are a calculator.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
  assert.equal(
    tok.applyChatTemplate(messages),
    "<|im_start|>system\nYou are a calculator.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
  );
});

Deno.test("applyChatTemplate() adds Qwen2.5's default system prompt and closes assistant turns", async () => {
  const tok = await Tokenizer.default();
  const text = tok.applyChatTemplate([
    { role: "user", content: "Hi" },
    { role: "assistant", content: "Hello!" },
  ]);
  assert.equal(
    text,
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n",
  );
  const ids = tok.encode(text);
  assert.equal(ids.filter((i) => i === 151644).length, 3);
  assert.equal(tok.decode(ids), text);
});

Deno.test("checkTokenIds() refuses an id at or past the embedding rows, naming the sequence, position, id and limit", () => {
  checkTokenIds([0, 5, 151935], 151936, "sequence 0");
  assert.throws(
    () => checkTokenIds([1, 2, 151936], 151936, "sequence 3"),
    (e: unknown) => {
      assert.ok(e instanceof TokenIdError);
      assert.deepEqual([e.what, e.position, e.id, e.limit], ["sequence 3", 2, 151936, 151936]);
      assert.match(e.message, /sequence 3: token id 151936 at position 2 .* 151936 rows/);
      return true;
    },
  );
  assert.throws(() => checkTokenIds([-1], 10, "prompt"), /prompt: token id -1 at position 0/);
  assert.throws(() => checkTokenIds([1.5], 10, "prompt"), TokenIdError);
  assert.throws(() => checkTokenIds(new Uint32Array([3, 10]), 10, "batch"), /position 1/);
});

Deno.test("decode() drops ids the tokenizer does not know and can skip special tokens", async () => {
  const tok = await Tokenizer.default();
  assert.equal(tok.decode([9707, 151900, 1879]), "Hello world");
  assert.equal(tok.decode([151644, 9707, 151645], { skipSpecialTokens: true }), "Hello");
});

Deno.test("Tokenizer.load() reads a model directory's files, its chat template and generation_config EOS ids", async () => {
  await withTempDir(async (dir) => {
    await writeDefaultTokenizer(dir);
    const files = await defaultTokenizerFiles();
    assert.deepEqual(
      await Deno.readFile(join(dir, "tokenizer.json")),
      await Deno.readFile(files.tokenizerJsonPath),
    );
    const written = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer_config.json")));
    assert.equal(written.chat_template, QWEN25_CHAT_TEMPLATE);

    // Without generation_config.json only the config's eos_token counts.
    let tok = await Tokenizer.load(dir);
    assert.deepEqual(tok.eosTokenIds, [151645]);
    assert.deepEqual(tok.encode("Hello world"), [9707, 1879]);

    await Deno.writeTextFile(
      join(dir, "generation_config.json"),
      JSON.stringify({ eos_token_id: [151645, 151643] }),
    );
    written.chat_template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}" +
      "{% if add_generation_prompt %}[assistant]{% endif %}";
    await Deno.writeTextFile(join(dir, "tokenizer_config.json"), JSON.stringify(written));
    tok = await Tokenizer.load(dir);
    assert.deepEqual(tok.eosTokenIds, [151645, 151643]);
    assert.equal(
      tok.applyChatTemplate([{ role: "user", content: "x" }], { addGenerationPrompt: true }),
      "[user]x[assistant]",
    );

    delete written.chat_template;
    await Deno.writeTextFile(join(dir, "tokenizer_config.json"), JSON.stringify(written));
    tok = await Tokenizer.load(dir);
    assert.throws(
      () => tok.applyChatTemplate([{ role: "user", content: "x" }]),
      (e: unknown) => e instanceof TokenizerError && e.file === join(dir, "tokenizer_config.json"),
    );
  });
});

Deno.test("Tokenizer.load() names the file when tokenizer.json is missing or not JSON", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "tokenizer.json");
    await assert.rejects(
      Tokenizer.load(dir),
      (e: unknown) =>
        e instanceof TokenizerError && e.file === file && /cannot read/.test(e.message),
    );
    await Deno.writeTextFile(file, "{ nope");
    await assert.rejects(
      Tokenizer.load(dir),
      (e: unknown) => e instanceof TokenizerError && e.message.startsWith(file),
    );
  });
});
