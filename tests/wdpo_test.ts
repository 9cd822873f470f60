import assert from "node:assert/strict";
import { rawVerifierWeight, verifierWeights, wdpo } from "../trainers/wdpo.ts";
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

function randomPairs(seed: number, pairs: number) {
  const rng = new Rng(seed);
  const lengths = Array.from({ length: 2 * pairs }, () => 3 + rng.int(5));
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 4));
  const ref = rows.map((r) => r.map((v) => v + rng.normal() * 0.5));
  const mask = completionMask(rng, lengths);
  return { rng, flat, logp: rows, ref, mask };
}

Deno.test("verifierWeights() always lie in [0.5, 2], even for extreme raw weights", () => {
  const rng = new Rng(40);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + rng.int(16);
    const raw = Array.from(
      { length: n },
      () => (rng.next() < 0.2 ? 0 : Math.exp(rng.normal() * 4)),
    );
    for (const lambda of [0.3, 1, 5]) {
      const w = verifierWeights(raw, { lambda });
      assert.equal(w.length, n);
      assert.ok(w.every((x) => x >= 0.5 && x <= 2), `trial ${trial} lambda ${lambda}: ${w}`);
    }
  }
  // and the unclipped weights keep mean 1 after the pull toward 1
  const w = verifierWeights([1, 2, 3, 2]);
  assert.ok(Math.abs(w.reduce((a, b) => a + b, 0) / 4 - 1) < 1e-15);
  assert.deepEqual(verifierWeights([0, 0]), [1, 1]);
});

Deno.test("verifierWeights() pulls toward 1 by lambda and then clips", () => {
  // raw [0, 10] -> mean-1 [0, 2] -> lambda 0.3 -> [0.7, 1.3]
  const w = verifierWeights([0, 10]);
  assert.ok(Math.abs(w[0] - 0.7) < 1e-15 && Math.abs(w[1] - 1.3) < 1e-15);
  // raw [0, 0, 0, 8] -> mean-1 [0, 0, 0, 4] -> lambda 1 -> clipped [0.5, 0.5, 0.5, 2]
  assert.deepEqual(verifierWeights([0, 0, 0, 8], { lambda: 1 }), [0.5, 0.5, 0.5, 2]);
});

Deno.test("rawVerifierWeight() grows with wrongness and confidence and shrinks with perplexity", () => {
  assert.ok(rawVerifierWeight(1, 0.5, 2) > rawVerifierWeight(0.5, 0.5, 2));
  assert.ok(rawVerifierWeight(1, 0.9, 2) > rawVerifierWeight(1, 0.5, 2));
  assert.ok(rawVerifierWeight(1, 0.5, 4) < rawVerifierWeight(1, 0.5, 2));
  assert.equal(rawVerifierWeight(1, 0.5, 4), 0.25);
});

Deno.test("wdpo() with equal raw weights equals plain DPO", () => {
  const { logp, ref, mask } = randomPairs(41, 4);
  const a = wdpo({ logp, ref, mask, rawWeights: [3, 3, 3, 3] });
  const b = dpo({ logp, ref, mask });
  assert.ok(Math.abs(a.loss - b.loss) < 1e-15);
  assert.deepEqual(a.dlogp, b.dlogp);
  assert.equal(a.metrics["weights/min"], 1);
  assert.equal(a.metrics["weights/max"], 1);
});

Deno.test("wdpo() is the weighted mean of per-pair DPO losses", () => {
  const { logp, ref, mask } = randomPairs(42, 3);
  const raw = [1, 2, 6];
  const w = verifierWeights(raw);
  const per = [0, 1, 2].map((k) =>
    dpo({
      logp: logp.slice(2 * k, 2 * k + 2),
      ref: ref.slice(2 * k, 2 * k + 2),
      mask: mask.slice(2 * k, 2 * k + 2),
    }).loss
  );
  const want = (w[0] * per[0] + w[1] * per[1] + w[2] * per[2]) / 3;
  assert.ok(Math.abs(wdpo({ logp, ref, mask, rawWeights: raw }).loss - want) < 1e-14);
});

Deno.test("wdpo() dlogp equals finite differences of the loss, with default and given signals", () => {
  const { rng, flat, logp, ref, mask } = randomPairs(43, 5);
  const wrongness = Array.from({ length: 5 }, () => rng.next());
  const confidence = Array.from({ length: 5 }, () => rng.next());
  const perplexity = Array.from({ length: 5 }, () => 1 + 10 * rng.next());
  gradCheck("wdpo defaults", () => wdpo({ logp, ref, mask }), flat);
  gradCheck(
    "wdpo signals",
    () => wdpo({ logp, ref, mask, wrongness, confidence, perplexity, beta: 0.3 }),
    flat,
  );
  gradCheck("wdpo lambda 1", () => wdpo({ logp, ref, mask, wrongness, lambda: 1 }), flat);
});

Deno.test("wdpo() drops a pair whose raw weight is non-finite and reports it", () => {
  const { logp, ref, mask } = randomPairs(44, 3);
  const r = wdpo({ logp, ref, mask, perplexity: [2, NaN, 3] });
  assert.equal(r.metrics.nonfinite, 1);
  assert.equal(r.metrics.dropped, 2);
  assert.ok(r.dlogp[2].every((v) => v === 0) && r.dlogp[3].every((v) => v === 0));
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)) && Number.isFinite(r.loss));
  assert.throws(() => wdpo({ logp, ref, mask, wrongness: [1, 1] }), /wrongness has 2 entries/);
});
