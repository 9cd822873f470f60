import assert from "node:assert/strict";
import { sft } from "../trainers/sft.ts";
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

Deno.test("sft() token-mean loss is the mean NLL over completion tokens", () => {
  const r = sft({ logp: [[-9, -1, -2], [-3, -5]], mask: [[0, 1, 1], [1, 0]] });
  assert.equal(r.loss, 2);
  assert.deepEqual(Array.from(r.dlogp[0]), [0, -1 / 3, -1 / 3].map(Math.fround));
  assert.deepEqual(Array.from(r.dlogp[1]), [-1 / 3, 0].map(Math.fround));
  assert.equal(r.metrics.num_tokens, 3);
  assert.equal(r.metrics["completions/mean_length"], 1.5);
});

Deno.test("sft() sequence reduction averages per-sequence means and skips empty completions", () => {
  const r = sft({
    logp: [[-9, -1, -2], [-3, -5], [-7]],
    mask: [[0, 1, 1], [1, 0], [0]],
    reduction: "sequence",
  });
  assert.equal(r.loss, (1.5 + 3) / 2);
  assert.deepEqual(Array.from(r.dlogp[0]), [0, -0.25, -0.25]);
  assert.deepEqual(Array.from(r.dlogp[1]), [-0.5, 0]);
  assert.deepEqual(Array.from(r.dlogp[2]), [0]);
});

Deno.test("sft() dlogp equals finite differences of the loss for both reductions", () => {
  const rng = new Rng(10);
  const lengths = [4, 7, 5, 3, 6];
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 4));
  const mask = completionMask(rng, lengths);
  for (const reduction of ["token", "sequence"] as const) {
    gradCheck(`sft ${reduction}`, () => sft({ logp: rows, mask, reduction }), flat);
  }
});

Deno.test("sft() drops a sequence with a non-finite log-prob, reports it and keeps the rest exact", () => {
  const logp = [[-1, NaN, -2], [-0.5, -1.5], [-3, -Infinity]];
  const mask = [[1, 1, 1], [1, 1], [1, 0]];
  const r = sft({ logp, mask });
  assert.equal(r.metrics.nonfinite, 1);
  assert.equal(r.metrics.dropped, 1);
  assert.deepEqual(Array.from(r.dlogp[0]), [0, 0, 0]);
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)));
  const clean = sft({ logp: [logp[1], logp[2]], mask: [mask[1], mask[2]] });
  assert.equal(r.loss, clean.loss);
  assert.deepEqual(r.dlogp.slice(1), clean.dlogp);
});

Deno.test("sft() reports the token-mean entropy when entropies are given", () => {
  const r = sft({ logp: [[-1, -1], [-1]], mask: [[0, 1], [1]], entropy: [[9, 2], [4]] });
  assert.equal(r.metrics.entropy, 3);
});

Deno.test("sft() rejects a mask whose shape differs from logp", () => {
  assert.throws(() => sft({ logp: [[-1, -1]], mask: [[1]] }), /sft: mask\[0\]/);
});
