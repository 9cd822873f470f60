import assert from "node:assert/strict";
import { hardNegativeRewards, hnr, lcsF1 } from "../trainers/hnr.ts";
import { grpo } from "../trainers/grpo.ts";
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

/** Longest common subsequence by brute force over subsets of the shorter sequence. */
function bruteLcs(a: number[], b: number[]): number {
  const [s, l] = a.length <= b.length ? [a, b] : [b, a];
  let best = 0;
  for (let bits = 0; bits < 1 << s.length; bits++) {
    const sub = s.filter((_, i) => bits & (1 << i));
    let j = 0;
    for (const x of l) if (j < sub.length && sub[j] === x) j++;
    if (j === sub.length) best = Math.max(best, sub.length);
  }
  return best;
}

function batch(seed: number) {
  const rng = new Rng(seed);
  const G = 4;
  const lengths = Array.from({ length: 2 * G }, () => 4 + rng.int(5));
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 3));
  const old = rows.map((r) => r.map((v) => v - rng.normal() * 0.1));
  const mask = completionMask(rng, lengths);
  const rewards = [1, 0, 1, 0.1, 0, 0, 1, 1];
  const samples = lengths.map((n) => Array.from({ length: n }, () => rng.int(6)));
  const neg = Array.from({ length: 6 }, () => rng.int(6));
  const negatives = lengths.map((_, i) => (i < G ? neg : null)); // only the first prompt has one
  return { G, flat, logp: rows, old, mask, rewards, samples, negatives };
}

Deno.test("lcsF1() equals 2 LCS / (|a| + |b|) against a brute-force LCS", () => {
  const rng = new Rng(90);
  for (let trial = 0; trial < 100; trial++) {
    const a = Array.from({ length: rng.int(8) }, () => rng.int(4));
    const b = Array.from({ length: rng.int(8) }, () => rng.int(4));
    const want = a.length && b.length ? (2 * bruteLcs(a, b)) / (a.length + b.length) : 0;
    assert.equal(lcsF1(a, b), want, `${a} / ${b}`);
    assert.equal(lcsF1(b, a), want);
  }
  assert.equal(lcsF1([7, 8, 9], [7, 8, 9]), 1);
  assert.equal(lcsF1([], [1]), 0);
});

Deno.test("hardNegativeRewards() subtracts lambda times the similarity only where a negative exists", () => {
  const r = hardNegativeRewards(
    [1, 1, 0.5],
    [[1, 2, 3], [4, 5], [1, 2]],
    [[1, 2, 3], null, [2, 9]],
    0.4,
  );
  assert.equal(r[0], 1 - 0.4);
  assert.equal(r[1], 1);
  assert.ok(Math.abs(r[2] - (0.5 - 0.4 * 0.5)) < 1e-15);
});

Deno.test("hnr() equals GRPO on the shaped rewards and penalizes copying the negative", () => {
  const b = batch(91);
  const common = { logp: b.logp, old: b.old, mask: b.mask, groupSize: b.G };
  const r = hnr({ ...common, rewards: b.rewards, samples: b.samples, negatives: b.negatives });
  const shaped = hardNegativeRewards(b.rewards, b.samples, b.negatives, 0.5);
  const g = grpo({ ...common, rewards: shaped });
  assert.equal(r.loss, g.loss);
  assert.deepEqual(r.dlogp, g.dlogp);
  assert.equal(r.metrics["rewards/verifier"], b.rewards.reduce((a, c) => a + c, 0) / 8);
  assert.ok(r.metrics["rewards/similarity"] > 0);

  // two correct samples, one a copy of the negative: the copy gets the lower advantage
  const one = hnr({
    logp: [[-1], [-1]],
    mask: [[1], [1]],
    rewards: [1, 1],
    groupSize: 2,
    samples: [[5, 6, 7], [1, 2, 3]],
    negatives: [[5, 6, 7], [5, 6, 7]],
  });
  assert.ok(one.dlogp[0][0] > 0 && one.dlogp[1][0] < 0);
});

Deno.test("hnr() dlogp equals finite differences of the loss", () => {
  const b = batch(92);
  for (const aggregation of ["grpo", "dapo", "dr_grpo"] as const) {
    for (const lambda of [0.5, 2]) {
      gradCheck(`hnr ${aggregation} lambda=${lambda}`, () =>
        hnr({
          logp: b.logp,
          old: b.old,
          mask: b.mask,
          rewards: b.rewards,
          groupSize: b.G,
          samples: b.samples,
          negatives: b.negatives,
          lambda,
          aggregation,
        }), b.flat);
    }
  }
});

Deno.test("hnr() drops a group with a non-finite verifier reward and reports it", () => {
  const b = batch(93);
  const rewards = [...b.rewards];
  rewards[2] = NaN;
  const r = hnr({
    logp: b.logp,
    old: b.old,
    mask: b.mask,
    rewards,
    groupSize: 4,
    samples: b.samples,
    negatives: b.negatives,
  });
  assert.equal(r.metrics.nonfinite, 1);
  assert.equal(r.metrics.dropped, 4);
  for (let i = 0; i < 4; i++) assert.ok(r.dlogp[i].every((v) => v === 0));
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)) && Number.isFinite(r.loss));
});
