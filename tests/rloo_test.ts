import assert from "node:assert/strict";
import { rloo } from "../trainers/rloo.ts";
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

function randomGroups(seed: number, groups: number, G: number) {
  const rng = new Rng(seed);
  const lengths = Array.from({ length: groups * G }, () => 4 + rng.int(4));
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 4));
  const ref = rows.map((r) => r.map((v) => v + rng.normal() * 0.3));
  const mask = completionMask(rng, lengths);
  const rewards: number[] = lengths.map(() => (rng.next() < 0.5 ? 1 : rng.next() < 0.5 ? 0 : 0.1));
  return { flat, logp: rows, ref, mask, rewards };
}

Deno.test("rloo() with groups of two pushes each sequence by r_i - r_j over N", () => {
  const logp = [[-1, -2], [-3], [-1], [-2, -2, -2]];
  const mask = [[1, 1], [1], [1], [0, 1, 1]];
  const r = rloo({ logp, mask, rewards: [1, 0, 0.35, 0.6], groupSize: 2 });
  const N = 4;
  assert.deepEqual(Array.from(r.dlogp[0]), [-1 / N, -1 / N].map(Math.fround));
  assert.deepEqual(Array.from(r.dlogp[1]), [1 / N].map(Math.fround));
  assert.deepEqual(Array.from(r.dlogp[2]), [Math.fround((0.6 - 0.35) / N)]);
  assert.deepEqual(
    Array.from(r.dlogp[3]),
    [0, -(0.6 - 0.35) / N, -(0.6 - 0.35) / N].map(Math.fround),
  );
  // L = -(1/N) sum A_i s_i
  const want = -(1 * -3 + -1 * -3 + -0.25 * -1 + 0.25 * -4) / N;
  assert.ok(Math.abs(r.loss - want) < 1e-15);
});

Deno.test("rloo() gives zero gradient, never NaN, for groups of equal rewards such as 0.35", () => {
  const { logp, mask } = randomGroups(50, 3, 4);
  const r = rloo({ logp, mask, rewards: new Array(12).fill(0.35), groupSize: 4 });
  assert.ok(r.dlogp.every((g) => g.every((v) => v === 0)));
  assert.equal(r.loss, 0);
  assert.equal(r.metrics.frac_reward_zero_std, 1);
});

Deno.test("rloo() dlogp equals finite differences of the loss with and without the KL penalty", () => {
  const { flat, logp, ref, mask, rewards } = randomGroups(51, 3, 4);
  gradCheck("rloo no KL", () => rloo({ logp, mask, rewards, groupSize: 4 }), flat);
  gradCheck("rloo KL default", () => rloo({ logp, mask, ref, rewards, groupSize: 4 }), flat);
  gradCheck("rloo KL 0.5", () => rloo({ logp, mask, ref, rewards, groupSize: 4, beta: 0.5 }), flat);
});

Deno.test("rloo() adds beta times the sequence-summed k3 KL, averaged over sequences", () => {
  const logp = [[-1, -2], [-1]];
  const ref = [[-1.5, -2], [-0.5]];
  const mask = [[1, 1], [1]];
  const a = rloo({ logp, mask, ref, rewards: [0.5, 0.5], groupSize: 2, beta: 0.2 });
  const k = (d: number) => Math.exp(d) - d - 1;
  assert.ok(Math.abs(a.loss - (0.2 * (k(-0.5) + k(0.5))) / 2) < 1e-15);
  assert.ok(Math.abs(a.metrics.kl - (k(-0.5) + k(0.5)) / 3) < 1e-15);
});

Deno.test("rloo() drops groups with a non-finite reward and sequences with non-finite log-probs", () => {
  const { logp, ref, mask, rewards } = randomGroups(52, 3, 2);
  rewards[1] = NaN;
  rewards[2] = 1;
  rewards[3] = 0;
  const badLogp = logp.map((r) => Array.from(r));
  badLogp[4][badLogp[4].length - 1] = -Infinity;
  mask[4][mask[4].length - 1] = 1;
  const r = rloo({ logp: badLogp, mask, ref, rewards, groupSize: 2 });
  assert.equal(r.metrics.nonfinite, 2);
  assert.equal(r.metrics.dropped, 3);
  for (const i of [0, 1, 4]) assert.ok(r.dlogp[i].every((v) => v === 0), `row ${i}`);
  assert.ok(r.dlogp[2].some((v) => v !== 0) && r.dlogp[3].some((v) => v !== 0));
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)) && Number.isFinite(r.loss));
});

Deno.test("rloo() rejects beta without reference log-probs and groups of one", () => {
  const base = { logp: [[-1], [-1]], mask: [[1], [1]], rewards: [1, 0] };
  assert.throws(() => rloo({ ...base, groupSize: 2, beta: 0.1 }), /needs reference/);
  assert.throws(() => rloo({ ...base, groupSize: 1 }), /groupSize >= 2/);
});
