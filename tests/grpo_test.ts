import assert from "node:assert/strict";
import { type Aggregation, grpo, grpoDefaults } from "../trainers/grpo.ts";
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

const AGGREGATIONS: Aggregation[] = ["grpo", "dapo", "dr_grpo"];
const SCALES = ["group", "batch", "none"] as const;

/** Moves `old` so that no ratio sits within 1e-4 of a clip boundary (finite differences). */
function avoidKinks(logp: ArrayLike<number>[], old: Float64Array[]): void {
  for (let i = 0; i < old.length; i++) {
    for (let t = 0; t < old[i].length; t++) {
      for (;;) {
        const rho = Math.exp(logp[i][t] - old[i][t]);
        if ([0.8, 1.2, 1.28].every((b) => Math.abs(rho - b) > 1e-4)) break;
        old[i][t] += 0.01;
      }
    }
  }
}

function randomGroups(seed: number, groups: number, G: number) {
  const rng = new Rng(seed);
  const lengths = Array.from({ length: groups * G }, () => 4 + rng.int(5));
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 4));
  const old = rows.map((r) => r.map((v) => v - rng.normal() * 0.25));
  avoidKinks(rows, old);
  const ref = rows.map((r) => r.map((v) => v + rng.normal() * 0.3));
  const mask = completionMask(rng, lengths);
  const rewards: number[] = lengths.map(() => (rng.next() < 0.5 ? 1 : rng.next() < 0.5 ? 0 : 0.1));
  for (let j = 0; j < G; j++) rewards[j] = 0.35; // one group of equal rewards
  const truncated = lengths.map(() => rng.next() < 0.3);
  const entropy = rows.map((r) => r.map(() => rng.uniform(0, 3)));
  return { rng, flat, logp: rows, old, ref, mask, rewards, truncated, entropy };
}

Deno.test("grpo() dlogp equals finite differences for every aggregation, scale, KL and truncation option", () => {
  const b = randomGroups(60, 3, 4);
  let checks = 0;
  for (const aggregation of AGGREGATIONS) {
    for (const scale of SCALES) {
      for (const beta of [0, 0.1]) {
        for (const maskTruncated of [false, true]) {
          const label = `${aggregation} ${scale} beta=${beta} maskTruncated=${maskTruncated}`;
          gradCheck(label, () =>
            grpo({
              logp: b.logp,
              old: b.old,
              ref: beta > 0 ? b.ref : undefined,
              mask: b.mask,
              rewards: b.rewards,
              groupSize: 4,
              aggregation,
              scale,
              beta,
              truncated: b.truncated,
              maskTruncated,
            }), b.flat);
          checks++;
        }
      }
    }
  }
  assert.equal(checks, 36);
});

Deno.test("grpo() without old equals its gradient at old = logp held fixed", () => {
  const b = randomGroups(61, 2, 4);
  for (const aggregation of AGGREGATIONS) {
    const run = (old?: Float64Array[]) =>
      grpo({
        logp: b.logp,
        old,
        ref: b.ref,
        mask: b.mask,
        rewards: b.rewards,
        groupSize: 4,
        aggregation,
        beta: 0.1,
      });
    const frozen = b.logp.map((r) => Float64Array.from(r));
    const fd = finiteDiff(() => run(frozen).loss, b.flat, 1e-6);
    assertClose(run().dlogp.flatMap((r) => Array.from(r)), fd, {
      atol: 1e-7,
      rtol: 1e-4,
      label: aggregation,
    });
  }
});

Deno.test("grpo() normalizes by sequence length, total tokens, or N * maxLen per aggregation", () => {
  // scale none, no old, no KL: dlogp_t = -A_i * (aggregation weight)
  const logp = [[-1, -1, -1], [-1], [-2, -2], [-3, -3, -3, -3]];
  const mask = [[1, 1, 1], [1], [0, 1], [1, 1, 1, 1]];
  const rewards = [1, 0, 0.5, 0.1];
  const A = [0.5, -0.5, 0.2, -0.2];
  const n = [3, 1, 1, 4], N = 4, T = 9;
  const base = { logp, mask, rewards, groupSize: 2, scale: "none" as const };
  const cases: [Aggregation, number | undefined, (i: number) => number][] = [
    ["grpo", undefined, (i) => 1 / (N * n[i])],
    ["dapo", undefined, () => 1 / T],
    ["dr_grpo", undefined, () => 1 / (N * 4)], // longest row
    ["dr_grpo", 10, () => 1 / (N * 10)],
  ];
  for (const [aggregation, maxLen, w] of cases) {
    const r = grpo({ ...base, aggregation, maxLen });
    let loss = 0;
    for (let i = 0; i < 4; i++) {
      for (let t = 0; t < logp[i].length; t++) {
        const want = mask[i][t] ? -A[i] * w(i) : 0;
        assert.ok(Math.abs(r.dlogp[i][t] - want) < 1e-7, `${aggregation} ${maxLen} [${i}][${t}]`);
        loss -= mask[i][t] ? A[i] * w(i) : 0; // rho = 1
      }
    }
    assert.ok(Math.abs(r.loss - loss) < 1e-12, aggregation);
  }
});

Deno.test("grpo() zeroes the gradient of tokens whose ratio the clip removes and counts them", () => {
  // A = +0.5 for row 0, -0.5 for row 1 (scale none)
  const logp = [[0, 0], [0, 0]];
  const old = [[-Math.log(1.5), -Math.log(0.5)], [-Math.log(0.5), -Math.log(1.5)]];
  const mask = [[1, 1], [1, 1]];
  const r = grpo({
    logp,
    old,
    mask,
    rewards: [1, 0],
    groupSize: 2,
    scale: "none",
    aggregation: "dapo",
    epsHigh: 0.2,
  });
  // row 0: rho 1.5 > 1.2 with A > 0 -> clipped; rho 0.5 with A > 0 -> gradient rho * A
  // row 1: rho 0.5 < 0.8 with A < 0 -> clipped; rho 1.5 with A < 0 -> gradient rho * A
  const w = 1 / 4;
  assert.equal(r.dlogp[0][0], 0);
  assert.ok(Math.abs(r.dlogp[0][1] - -0.5 * 0.5 * w) < 1e-7);
  assert.equal(r.dlogp[1][0], 0);
  assert.ok(Math.abs(r.dlogp[1][1] - 1.5 * 0.5 * w) < 1e-7);
  assert.equal(r.metrics.clip_ratio, 0.5);
  assert.equal(r.metrics["clip_ratio/high_mean"], 0.25);
  assert.equal(r.metrics["clip_ratio/low_mean"], 0.25);
});

Deno.test("grpo() uses eps_high 0.28 for dapo, so a ratio of 1.25 still learns there", () => {
  assert.equal(grpoDefaults("dapo").epsHigh, 0.28);
  assert.equal(grpoDefaults("grpo").epsHigh, 0.2);
  const inputs = {
    logp: [[0], [0]],
    old: [[-Math.log(1.25)], [0]],
    mask: [[1], [1]],
    rewards: [1, 0],
    groupSize: 2,
  };
  assert.equal(grpo({ ...inputs, aggregation: "grpo" }).dlogp[0][0], 0);
  assert.ok(grpo({ ...inputs, aggregation: "dapo" }).dlogp[0][0] < 0);
});

Deno.test("grpo() gives zero policy gradient, never NaN, for groups of equal rewards such as 0.35", () => {
  const b = randomGroups(62, 2, 4);
  for (const scale of SCALES) {
    const r = grpo({
      logp: b.logp,
      old: b.old,
      mask: b.mask,
      rewards: new Array(8).fill(0.35),
      groupSize: 4,
      scale,
    });
    assert.ok(r.dlogp.every((g) => g.every((v) => v === 0)), scale);
    assert.equal(r.loss, 0);
    assert.equal(r.metrics.frac_reward_zero_std, 1);
    assert.equal(r.metrics.reward_std, 0);
  }
});

Deno.test("grpo() applies the k3 KL by default only for the grpo aggregation and reports kl", () => {
  const b = randomGroups(63, 2, 4);
  const common = { logp: b.logp, old: b.old, mask: b.mask, rewards: b.rewards, groupSize: 4 };
  const withRef = grpo({ ...common, ref: b.ref });
  const explicit = grpo({ ...common, ref: b.ref, beta: 0.04 });
  assert.deepEqual(withRef.dlogp, explicit.dlogp);
  assert.notDeepEqual(withRef.dlogp, grpo(common).dlogp);
  assert.ok(withRef.metrics.kl > 0);
  for (const aggregation of ["dapo", "dr_grpo"] as const) {
    const a = grpo({ ...common, aggregation, ref: b.ref });
    assert.deepEqual(a.dlogp, grpo({ ...common, aggregation }).dlogp);
    assert.equal(a.metrics.kl, withRef.metrics.kl);
  }
  assert.throws(() => grpo({ ...common, beta: 0.1 }), /needs reference/);
});

Deno.test("grpo() masks truncated completions out of the loss when asked and reports their share", () => {
  const b = randomGroups(64, 2, 4);
  const common = {
    logp: b.logp,
    old: b.old,
    mask: b.mask,
    rewards: b.rewards,
    groupSize: 4,
    truncated: b.truncated,
  };
  const on = grpo({ ...common, maskTruncated: true });
  const off = grpo(common);
  const nTrunc = b.truncated.filter(Boolean).length;
  assert.ok(nTrunc > 0 && nTrunc < 8);
  b.truncated.forEach((t, i) => {
    if (t) assert.ok(on.dlogp[i].every((v) => v === 0), `row ${i}`);
    // grpo aggregation: N counts truncated rows, so the others are unchanged
    else assert.deepEqual(on.dlogp[i], off.dlogp[i], `row ${i}`);
  });
  assert.equal(on.metrics["completions/clipped_ratio"], nTrunc / 8);
});

Deno.test("grpo() drops non-finite inputs, reports them, and stays exact on the rest", () => {
  const b = randomGroups(65, 3, 4);
  const logp = b.logp;
  const t0 = b.mask[5].indexOf(1);
  const saved = logp[5][t0];
  logp[5][t0] = NaN; // policy NaN: row 5 dropped
  b.old[6][b.mask[6].indexOf(1)] = Infinity; // old Inf: row 6 dropped
  b.ref[7][b.mask[7].indexOf(1)] = NaN; // ref NaN: row 7 dropped
  b.rewards[9] = NaN; // reward NaN: group 2 (rows 8-11) dropped
  const run = () =>
    grpo({
      logp,
      old: b.old,
      ref: b.ref,
      mask: b.mask,
      rewards: b.rewards,
      groupSize: 4,
      beta: 0.1,
    });
  const r = run();
  assert.equal(r.metrics.nonfinite, 4);
  assert.equal(r.metrics.dropped, 7);
  for (const i of [5, 6, 7, 8, 9, 10, 11]) assert.ok(r.dlogp[i].every((v) => v === 0), `row ${i}`);
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)) && Number.isFinite(r.loss));
  gradCheck("grpo with non-finite inputs", run, b.flat);
  logp[5][t0] = saved;
});

Deno.test("grpo() drops a sequence whose ratio overflows to infinity", () => {
  const r = grpo({
    logp: [[0, 0], [0]],
    old: [[-1000, 0], [0]],
    mask: [[1, 1], [1]],
    rewards: [0, 1],
    groupSize: 2,
  });
  assert.equal(r.metrics.dropped, 1);
  assert.deepEqual(Array.from(r.dlogp[0]), [0, 0]);
  assert.ok(r.dlogp[1][0] < 0 && Number.isFinite(r.loss));
});

Deno.test("grpo() reports the metrics DESIGN.md names", () => {
  const b = randomGroups(66, 2, 4);
  const r = grpo({
    logp: b.logp,
    old: b.old,
    ref: b.ref,
    mask: b.mask,
    rewards: b.rewards,
    groupSize: 4,
    entropy: b.entropy,
    truncated: b.truncated,
  });
  for (
    const k of [
      "loss",
      "reward",
      "reward_std",
      "frac_reward_zero_std",
      "kl",
      "entropy",
      "clip_ratio",
      "completions/mean_length",
      "nonfinite",
    ]
  ) {
    assert.ok(Number.isFinite(r.metrics[k]), k);
  }
  assert.equal(r.metrics.loss, r.loss);
  assert.ok(Math.abs(r.metrics.reward - b.rewards.reduce((a, c) => a + c, 0) / 8) < 1e-15);
  assert.equal(r.metrics.frac_reward_zero_std, 0.5);
});
