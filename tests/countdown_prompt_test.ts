import assert from "node:assert/strict";
import { Tokenizer } from "../engine/tokenizer.ts";
import { basePrompt, chatMessages, chatPrompt } from "../verifiers/countdown/prompt.ts";

const P = { numbers: [44, 19, 35], target: 60 };

Deno.test("basePrompt() is DESIGN.md's Countdown prompt with the numbers and target filled in", () => {
  assert.equal(
    basePrompt(P),
    "Using the numbers [44, 19, 35], create an equation that equals 60. You can use basic " +
      "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work " +
      "in <think> </think> tags. And return the final answer equation in <answer> </answer> " +
      "tags, for example <answer> (1 + 2) / 3 </answer>.",
  );
});

Deno.test("chatMessages() is one user turn that the Qwen2.5 chat template renders", async () => {
  assert.deepEqual(chatMessages(P), [{ role: "user", content: basePrompt(P) }]);
  const tok = await Tokenizer.default();
  const text = chatPrompt(tok, P);
  assert.ok(text.includes(`<|im_start|>user\n${basePrompt(P)}<|im_end|>\n`));
  assert.ok(text.endsWith("<|im_start|>assistant\n"));
});
