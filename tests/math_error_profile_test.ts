import assert from "node:assert/strict";
import { errorProfile } from "../verifiers/math/error_profile.ts";

const GOOD = "She sold 48 / 2 = 24 clips in May.\nAltogether 48 + 24 = 72 clips.\n#### 72";

Deno.test("a correct, consistent solution has a zero profile", () => {
  const p = errorProfile(GOOD, "72");
  assert.deepEqual(
    [
      p.finalAnswer,
      p.numericError,
      p.stepArithmetic,
      p.structure,
      p.redundancy,
      p.orderConsistency,
    ],
    [0, 0, 0, 0, 0, 0],
  );
  assert.equal(p.wrongness, 0);
  assert.equal(p.absurdity, 0);
  assert.equal(p.steps, 2);
});

Deno.test("an arithmetic slip carried to the answer raises every dimension it touches", () => {
  const slip = "She sold 48 / 2 = 26 clips in May.\nAltogether 48 + 26 = 74 clips.\n#### 74";
  const p = errorProfile(slip, "72");
  assert.equal(p.finalAnswer, 1);
  assert.ok(Math.abs(p.numericError - 2 / 72) < 1e-12);
  assert.equal(p.stepArithmetic, 1); // the first step is wrong, the second builds on it
  assert.equal(p.orderConsistency, 0);
  assert.ok(p.wrongness > 0.4 && p.wrongness < 1);
});

Deno.test("a final answer that contradicts the last computation is order-inconsistent", () => {
  const p = errorProfile("48 / 2 = 24\n48 + 24 = 72\n#### 70", "72");
  assert.equal(p.orderConsistency, 1);
  assert.equal(p.stepArithmetic, 0);
});

Deno.test("missing answers, missing reasoning, truncation and loops are structural and redundant", () => {
  const none = errorProfile("I think the clips are many", "72", { truncated: true });
  assert.equal(none.extracted === null || none.finalAnswer === 1, true);
  assert.ok(none.structure >= 2 / 3);
  assert.equal(none.numericError, 1);
  const bare = errorProfile("#### 72", "72");
  assert.equal(bare.finalAnswer, 0);
  assert.ok(Math.abs(bare.structure - 1 / 3) < 1e-12);
  const loop = errorProfile("Let me add them.\n".repeat(6) + "#### 72", "72");
  assert.ok(loop.redundancy >= 0.7, `redundancy ${loop.redundancy}`);
  assert.ok(loop.absurdity > bare.absurdity);
});

Deno.test("wrongness and absurdity stay in [0, 1] and order solutions sensibly", () => {
  const far = errorProfile("48 * 2 = 90\n#### 9000", "72");
  const near = errorProfile("48 + 24 = 72\n#### 73", "72");
  for (const p of [far, near]) {
    assert.ok(p.wrongness >= 0 && p.wrongness <= 1 && p.absurdity >= 0 && p.absurdity <= 1);
  }
  assert.ok(far.wrongness > near.wrongness);
  assert.ok(far.absurdity > near.absurdity);
});
