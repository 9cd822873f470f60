import assert from "node:assert/strict";
import { bcpgNsa } from "../trainers/bcpg_nsa.ts";
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

function batch(seed: number, groups = 3, G = 4) {
  const rng = new Rng(seed);
  const lengths = Array.from({ length: groups * G }, () => 4 + rng.int(5));
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 3));
  const old = rows.map((r) => r.map((v) => v - rng.normal() * 0.25));
  avoidKinks(rows, old);
  const mask = completionMask(rng, lengths);
  const rewards = lengths.map((_, i) => (i % 3 === 0 ? 1 : 0));
  // steps: the first half of each row is a "correct step"
  const stepCorrect = lengths.map((n) => Array.from({ length: n }, (_, t) => (t < n / 2 ? 1 : 0)));
  return { G, flat, logp: rows, old, mask, rewards, stepCorrect };
}

Deno.test("bcpgNsa() dlogp equals finite differences for every mining coefficient, KL and aggregation", () => {
  const b = batch(80);
  for (const mining of [0.5, 1, 0, -0.5]) {
    for (const beta of [0, 0.1]) {
      for (const aggregation of ["grpo", "dapo", "dr_grpo"] as const) {
        gradCheck(`nsa mining=${mining} beta=${beta} ${aggregation}`, () =>
          bcpgNsa({
            logp: b.logp,
            old: b.old,
            mask: b.mask,
            rewards: b.rewards,
            groupSize: b.G,
            stepCorrect: b.stepCorrect,
            mining,
            beta,
            aggregation,
          }), b.flat);
      }
    }
  }
});

Deno.test("bcpgNsa() with mining 1 is GRPO with de-meaned advantages and a KL to the behaviour policy", () => {
  const b = batch(81);
  const r = bcpgNsa({
    logp: b.logp,
    old: b.old,
    mask: b.mask,
    rewards: b.rewards,
    groupSize: 4,
    stepCorrect: b.stepCorrect,
    mining: 1,
  });
  const g = grpo({
    logp: b.logp,
    old: b.old,
    ref: b.old,
    mask: b.mask,
    rewards: b.rewards,
    groupSize: 4,
    scale: "none",
    beta: 0.04,
  });
  assert.equal(r.loss, g.loss);
  assert.deepEqual(r.dlogp, g.dlogp);
});

Deno.test("bcpgNsa() scales only the correct-step tokens of wrong samples by the mining coefficient", () => {
  const b = batch(82);
  // rho = 1 and no KL: every token's gradient is linear in its advantage
  const run = (mining: number) =>
    bcpgNsa({
      logp: b.logp,
      old: b.logp,
      mask: b.mask,
      rewards: b.rewards,
      groupSize: 4,
      stepCorrect: b.stepCorrect,
      mining,
      beta: 0,
    });
  const plain = run(1);
  let mined = 0;
  for (const mu of [0.5, -0.5]) {
    const r = run(mu);
    b.logp.forEach((row, i) => {
      for (let t = 0; t < row.length; t++) {
        const isMined = b.rewards[i] < 1 && b.stepCorrect[i][t] > 0 && b.mask[i][t] > 0;
        const want = isMined ? mu * plain.dlogp[i][t] : plain.dlogp[i][t];
        assert.ok(Math.abs(r.dlogp[i][t] - want) < 1e-7, `mu ${mu} [${i}][${t}]`);
        if (isMined && plain.dlogp[i][t] !== 0) mined++;
      }
    });
    assert.ok(r.metrics["nsa/mined_token_frac"] > 0);
  }
  assert.ok(mined > 0, "some mined token had a non-zero gradient");
});

Deno.test("bcpgNsa() follows explicit correctness flags and requires behaviour log-probs", () => {
  const b = batch(83, 1, 2);
  const base = {
    logp: b.logp,
    old: b.logp,
    mask: b.mask,
    rewards: [1, 0],
    groupSize: 2,
    stepCorrect: b.stepCorrect,
    beta: 0,
  };
  // flagging the rewarded sample as wrong mines its correct steps too
  const flagged = bcpgNsa({ ...base, correct: [false, false], mining: 0 });
  const t = b.mask[0].findIndex((m, j) => m > 0 && b.stepCorrect[0][j] > 0);
  assert.ok(t >= 0);
  assert.equal(flagged.dlogp[0][t], 0);
  assert.ok(bcpgNsa({ ...base, mining: 0 }).dlogp[0][t] < 0);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => bcpgNsa({ ...base, old: undefined } as any), /old/);
});
