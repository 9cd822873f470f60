import assert from "node:assert/strict";
import { dpo } from "../trainers/dpo.ts";
import type { ObjectiveResult } from "../trainers/objective.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, finiteDiff } from "./util.ts";

/** Ragged rows as views into one flat array, so finite differences on it reach every row. */
function ragged(lengths: number[], draw: () => number) {
  const flat = new Float64Array(lengths.reduce((a, b) => a + b, 0)).map(draw);
  let o = 0;
  const rows = lengths.map((n) => flat.subarray(o, o += n));
  return { flat, rows };
}

/** Prompt positions (1-2) masked, then completion tokens, sometimes a padded tail. */
function completionMask(rng: Rng, lengths: number[]): number[][] {
  return lengths.map((n) => {
    const prompt = 1 + rng.int(2);
    const pad = rng.next() < 0.3 ? 1 : 0;
    return Array.from({ length: n }, (_, t) => (t >= prompt && t < n - pad ? 1 : 0));
  });
}

function gradCheck(label: string, run: () => ObjectiveResult, x: Float64Array): void {
  const got = run().dlogp.flatMap((r) => Array.from(r));
  const fd = finiteDiff(() => run().loss, x, 1e-6);
  assert.ok(fd.some((v) => v !== 0), `${label}: the check is vacuous`);
  assertClose(got, fd, { atol: 1e-7, rtol: 1e-4, label });
}

Deno.test("dpo() at zero margin gives loss ln 2 and dlogp of -beta/2 and +beta/2 per token", () => {
  // logp != ref, but both sequences moved by the same amount: h = 0
  const logp = [[-5, -1, -2], [-5, -3, -0.5, -0.5]];
  const ref = [[-5, -1.5, -1.5], [-5, -3.2, -0.8, 0]];
  const mask = [[0, 1, 1], [0, 1, 1, 1]];
  for (const beta of [0.1, 0.5]) {
    const r = dpo({ logp, ref, mask, beta });
    assert.ok(Math.abs(r.loss - Math.LN2) < 1e-15, `${r.loss}`);
    assert.deepEqual(Array.from(r.dlogp[0]), [0, -beta / 2, -beta / 2].map(Math.fround));
    assert.deepEqual(Array.from(r.dlogp[1]), [0, beta / 2, beta / 2, beta / 2].map(Math.fround));
    assert.equal(r.metrics["rewards/margins"], 0);
  }
  // two pairs at zero margin: the mean over pairs halves the per-token gradient
  const two = dpo({ logp: [...logp, ...logp], ref: [...ref, ...ref], mask: [...mask, ...mask] });
  assert.ok(Math.abs(two.loss - Math.LN2) < 1e-15);
  assert.equal(two.dlogp[2][1], Math.fround(-0.1 / 4));
});

Deno.test("dpo() reports TRL's implicit-reward metrics", () => {
  // chosen: s - s_ref = 2; rejected: s - s_ref = -1
  const r = dpo({
    logp: [[-1, -1], [-3, -1]],
    ref: [[-2, -2], [-2, -1]],
    mask: [[1, 1], [1, 1]],
  });
  assert.ok(Math.abs(r.metrics["rewards/chosen"] - 0.2) < 1e-15);
  assert.ok(Math.abs(r.metrics["rewards/rejected"] - -0.1) < 1e-15);
  assert.ok(Math.abs(r.metrics["rewards/margins"] - 0.3) < 1e-15);
  assert.equal(r.metrics["rewards/accuracies"], 1);
  assert.equal(r.metrics["logps/chosen"], -2);
  assert.ok(Math.abs(r.loss - Math.log1p(Math.exp(-0.3))) < 1e-15);
});

Deno.test("dpo() dlogp equals finite differences of the loss on random pairs", () => {
  const rng = new Rng(20);
  const lengths = [5, 4, 6, 6, 3, 7, 4, 5];
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 4));
  const ref = rows.map((r) => r.map((v) => v + rng.normal() * 0.5));
  const mask = completionMask(rng, lengths);
  for (const beta of [0.1, 1]) {
    gradCheck(`dpo beta=${beta}`, () => dpo({ logp: rows, ref, mask, beta }), flat);
  }
});

Deno.test("dpo() drops a pair with a non-finite log-prob and reports it", () => {
  const logp = [[-1, -2], [-2, -2], [-1, NaN], [-3, -1]];
  const ref = [[-1, -1], [-1, -1], [-1, -1], [Infinity, -1]];
  const mask = [[1, 1], [1, 1], [1, 1], [1, 1]];
  const r = dpo({ logp, ref, mask });
  assert.equal(r.metrics.nonfinite, 2);
  assert.equal(r.metrics.dropped, 2);
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)));
  assert.deepEqual(Array.from(r.dlogp[2]), [0, 0]);
  const clean = dpo({ logp: logp.slice(0, 2), ref: ref.slice(0, 2), mask: mask.slice(0, 2) });
  assert.equal(r.loss, clean.loss);
  assert.deepEqual(r.dlogp.slice(0, 2), clean.dlogp);
});

Deno.test("dpo() rejects an odd number of rows and a missing reference", () => {
  assert.throws(() => dpo({ logp: [[-1]], ref: [[-1]], mask: [[1]] }), /even/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => dpo({ logp: [[-1], [-1]], mask: [[1], [1]] } as any), /ref/);
});
