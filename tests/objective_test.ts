import assert from "node:assert/strict";
import {
  allEqual,
  checkRows,
  finiteGroups,
  groupCount,
  groupRewardMetrics,
  isTrainerName,
  k3,
  logSigmoid,
  maskedSum,
  maskedTokenMean,
  nonFiniteAt,
  objectives,
  sampleStd,
  sigmoid,
  softplus,
  TRAINER_NAMES,
} from "../trainers/objective.ts";
import { finiteDiff } from "./util.ts";

Deno.test("objectives registry maps every trainer name to a function", () => {
  assert.deepEqual(
    [...TRAINER_NAMES].sort(),
    ["dpo", "grpo", "hnr", "ipo", "lens", "nsa", "rloo", "sft", "wdpo"],
  );
  assert.deepEqual(Object.keys(objectives).sort(), [...TRAINER_NAMES].sort());
  for (const name of TRAINER_NAMES) assert.equal(typeof objectives[name], "function", name);
  assert.ok(isTrainerName("grpo") && !isTrainerName("ppo"));
});

Deno.test("objectives.sft runs through the registry and returns the interface's fields", () => {
  const r = objectives.sft({ logp: [[-1, -2]], mask: [[1, 1]] });
  assert.equal(r.loss, 1.5);
  assert.ok(r.dlogp[0] instanceof Float32Array);
  assert.equal(r.metrics.loss, 1.5);
  assert.equal(r.metrics.nonfinite, 0);
});

Deno.test("k3() is zero at ref = logp, positive elsewhere, and its derivative matches finite differences", () => {
  assert.deepEqual(k3(-1.3, -1.3), { kl: 0, dkl: 0 });
  for (const [ref, lp] of [[-1, -2], [-3, -0.5], [0, -4]]) {
    const { kl, dkl } = k3(ref, lp);
    assert.ok(kl > 0);
    const fd = finiteDiff((x) => k3(ref, x[0]).kl, Float64Array.of(lp), 1e-6)[0];
    assert.ok(Math.abs(dkl - fd) < 1e-7, `${dkl} vs ${fd}`);
  }
});

Deno.test("softplus(), logSigmoid() and sigmoid() stay finite and accurate at large |x|", () => {
  assert.equal(softplus(800), 800);
  assert.ok(softplus(-800) >= 0 && softplus(-800) < 1e-300);
  assert.ok(Math.abs(softplus(0) - Math.LN2) < 1e-16);
  assert.equal(logSigmoid(-800), -800);
  assert.equal(sigmoid(-800), 0);
  assert.equal(sigmoid(800), 1);
  assert.ok(Math.abs(sigmoid(0.3) - 1 / (1 + Math.exp(-0.3))) < 1e-16);
});

Deno.test("masked reductions never read values at masked-out positions", () => {
  const row = [NaN, -1, -2, Infinity];
  const mask = [0, 1, 1, 0];
  assert.equal(maskedSum(row, mask), -3);
  assert.equal(maskedTokenMean([row, [-4, NaN]], [mask, [1, 0]]), -7 / 3);
  assert.equal(nonFiniteAt(0, [mask], [row]), 0);
  assert.equal(nonFiniteAt(0, [[1, 1, 1, 1]], [row]), 2);
});

Deno.test("sampleStd() uses n - 1 and is exactly 0 on equal values", () => {
  assert.equal(sampleStd([0.35, 0.35, 0.35]), 0);
  assert.ok(Math.abs(sampleStd([1, 0]) - Math.SQRT1_2) < 1e-16);
  assert.equal(sampleStd([5]), 0);
  assert.ok(allEqual([0.1, 0.1], 0, 2) && !allEqual([0.1, 0.2], 0, 2));
});

Deno.test("groupRewardMetrics() reports mean, mean group std and the zero-std fraction", () => {
  const m = groupRewardMetrics(
    [1, 0, 0.35, 0.35, NaN, 1],
    2,
    finiteGroups([1, 0, 0.35, 0.35, NaN, 1], 2),
  );
  assert.ok(Math.abs(m.reward - 1.7 / 4) < 1e-15);
  assert.ok(Math.abs(m.reward_std - Math.SQRT1_2 / 2) < 1e-15);
  assert.equal(m.frac_reward_zero_std, 0.5);
});

Deno.test("checkRows() and groupCount() name the method and field in their errors", () => {
  assert.throws(() => checkRows("grpo", "old", [[1, 2]], [[1, 2, 3]]), /grpo: old\[0\]/);
  assert.throws(() => checkRows("dpo", "ref", [], [[1]]), /dpo: ref has 0 rows/);
  assert.throws(() => groupCount("rloo", 5, 2), /rloo: 5 sequences/);
  assert.equal(groupCount("rloo", 6, 3), 2);
});

/** Runs `trainers/<file>.ts` as the entry module of a fresh `deno run`; resolves "" or stderr. */
async function loadFirst(file: string): Promise<string> {
  const url = new URL(`../trainers/${file}.ts`, import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--quiet", "--no-config", url],
    stdout: "null",
    stderr: "piped",
  }).output();
  return out.success ? "" : new TextDecoder().decode(out.stderr);
}

Deno.test("every trainer module can be the first one loaded despite the registry's import cycle", async () => {
  const files = [
    "objective",
    "advantages",
    "sft",
    "dpo",
    "ipo",
    "wdpo",
    "rloo",
    "grpo",
    "lens",
    "bcpg_nsa",
    "hnr",
  ];
  const errors = await Promise.all(files.map(loadFirst));
  files.forEach((f, i) =>
    assert.equal(errors[i], "", `loading trainers/${f}.ts first: ${errors[i]}`)
  );
});
