/**
 * The Countdown experiment runner at a test-sized budget: every phase runs from one SFT model,
 * the RL methods see the same prompts with the same rollout budget, RESULTS.md carries every
 * figure, and a second invocation reuses the finished phases. Also: the reward kind of RL
 * phases (LENS always binary) and the command line's refusals.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Qwen2 } from "../engine/qwen2.ts";
import { Tokenizer } from "../engine/tokenizer.ts";
import {
  type Budget,
  BUDGETS,
  main,
  type PhaseResult,
  reading,
  runExperiment,
} from "../trainers/experiment.ts";
import { readMetrics } from "../trainers/metrics.ts";
import { makeOptimizer, type PhaseOptions, runPhase } from "../trainers/phase.ts";
import type { Task } from "../trainers/tasks.ts";
import { captureErrors, gpuTest, testDevice } from "./util.ts";

function microBudget(): Budget {
  const b = structuredClone(BUDGETS.small);
  b.trainProblems = 40;
  b.sft = { ...b.sft, steps: 2, batch: 2 };
  b.rl = { ...b.rl, steps: 2, prompts: 1, groupSize: 4, maxNewTokens: 12 };
  b.pref = { ...b.pref, steps: 2, batch: 2 };
  b.eval = { ...b.eval, problems: 2, n: 4, every: 1 };
  return b;
}

let baseModel = "";

Deno.test(
  "the experiment runs every method from one SFT model and writes RESULTS.md",
  gpuTest,
  async () => {
    const device = await testDevice();
    const out = await Deno.makeTempDir({ prefix: "experiment_" });
    const results = join(out, "RESULTS.md");
    const b = microBudget();
    const run = (log: (s: string) => void) =>
      runExperiment({
        budget: b,
        budgetName: "test",
        out,
        results,
        seed: 3,
        methods: ["rloo", "grpo", "lens", "dpo", "ipo"],
        model: null,
        command: "deno task experiment countdown --budget test",
        log,
        device,
      });
    const first: string[] = [];
    const r = await run((s) => first.push(s));
    assert.ok(first.includes(`writing the tiny checkpoint to ${join(out, "base-model")}`));
    baseModel = join(out, "base-model");
    assert.deepEqual(r.methods.map((m) => m.method), ["rloo", "grpo", "lens", "dpo", "ipo"]);
    // SFT: evaluated before and after; every method starts from the SFT model's evaluation.
    assert.deepEqual(r.sft.evals.map((e) => e.step), [0, b.sft.steps]);
    const start = r.sft.evals[1];
    for (const m of r.methods) {
      assert.deepEqual(m.evals.map((e) => e.step), [0, 1, 2], m.method);
      assert.deepEqual(m.evals[0].passAtK, start.passAtK);
      for (const e of m.evals) {
        assert.deepEqual(Object.keys(e.passAtK), ["1", "4"]);
        for (const v of Object.values(e.passAtK)) assert.ok(v >= 0 && v <= 1, `${m.method} ${v}`);
      }
      const rows = readMetrics(join(out, m.method, "metrics.jsonl"));
      assert.deepEqual(rows.map((x) => x.step), [1, 2]);
      assert.ok(rows.every((x) => Number.isFinite(x.loss)), m.method);
      await Deno.stat(join(out, m.method, "report.html"));
    }
    // The RL methods: the same rollout budget, frac_reward_zero_std at every step.
    for (const m of r.methods.slice(0, 3)) {
      assert.equal(m.fracZeroStd.length, b.rl.steps);
      assert.ok(m.fracZeroStd.every((x) => x >= 0 && x <= 1));
      assert.ok(m.reward.every((x) => [0, 0.25, 0.5, 0.75, 1].includes(x)), `${m.reward}`);
    }
    // The pairs come from the prompts the RL methods saw: one per prompt.
    const pairs = (await Deno.readTextFile(join(out, "pairs.jsonl"))).trim().split("\n");
    assert.equal(pairs.length, b.rl.steps * b.rl.prompts);
    // A solver-written chosen side is in the style the SFT model learned (answer only here).
    for (const row of pairs.map((l) => JSON.parse(l))) {
      if (row.chosen_source === "solver") {
        assert.match(row.chosen, /^<think>\n<\/think>\n<answer>[^<]+<\/answer>$/);
      }
    }
    assert.equal(r.methods[3].pairs?.total, pairs.length);
    const md = await Deno.readTextFile(results);
    assert.match(md, /Command: `deno task experiment countdown --budget test`/);
    assert.match(md, /Machine: .*WebGPU adapter/);
    for (const m of ["rloo", "grpo", "lens", "dpo", "ipo"]) {
      assert.equal(md.split("\n").filter((l) => l.startsWith(`| ${m} | `)).length >= 3, true, m);
    }
    assert.match(md, /\| pass@1 \| pass@4 \| mean dense reward \|/);
    assert.match(md, /frac_reward_zero_std \(mean\)/);
    assert.match(md, /## What the figures say/);
    assert.match(md, /Code: commit \S+ ran the phases/);
    const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assert.equal(summary.methods.length, 5);

    // A second invocation reuses every finished phase and writes the same figures.
    const again: string[] = [];
    const r2 = await run((s) => again.push(s));
    assert.equal(again.filter((s) => s.includes("done earlier")).length, 6, again.join("\n"));
    assert.deepEqual(r2.methods.map((m) => m.evals), r.methods.map((m) => m.evals));
    const strip = (s: string) =>
      s.split("\n").filter((l) => !/^- (Date|Time|Code)/.test(l)).join("\n");
    assert.equal(strip(await Deno.readTextFile(results)), strip(md));
  },
);

/** A task whose dense reward is never 0 or 1, to see which reward a phase trains on. */
const fractionalTask: Task<{ id: number }> = {
  name: "countdown",
  prompt: (p) => `Problem ${p.id}: say something.\n`,
  reward: () => 0.37,
  correct: (c) => c.length % 2 === 0,
  sftCompletion: () => "",
  stopStrings: [],
};

async function rlStep(trainer: "lens" | "grpo", reward: "dense" | "binary") {
  const dev = await testDevice();
  if (!baseModel) throw new Error("the experiment test writes the base model first");
  const model = await Qwen2.load(dev, baseModel);
  const tok = await Tokenizer.default();
  const o: PhaseOptions = {
    trainer,
    steps: 1,
    batchSize: 1,
    accumulation: 1,
    lr: 1e-3,
    warmupSteps: 0,
    schedule: "constant",
    minLrRatio: 1,
    weightDecay: 0,
    adamBetas: [0.9, 0.999],
    adamEps: 1e-8,
    clipNorm: 1,
    seed: 1,
    groupSize: 4,
    temperature: 1,
    maxNewTokens: 6,
    reward,
    objective: { beta: 0 },
  };
  const opt = makeOptimizer(model, o);
  let row: Record<string, number> = {};
  try {
    await runPhase(
      model,
      null,
      tok,
      opt,
      o,
      {
        kind: "rl",
        task: fractionalTask,
        problems: [{ id: 1 }],
      },
      0,
      { onStep: ({ metrics }) => void (row = metrics) },
    );
  } finally {
    opt.dispose();
    model.dispose();
  }
  return row;
}

Deno.test(
  "LENS trains on the binary verified reward even when the task's reward is dense",
  gpuTest,
  async () => {
    const lens = await rlStep("lens", "dense");
    assert.ok([0, 0.25, 0.5, 0.75, 1].includes(lens.reward), `${lens.reward}`);
    const dense = await rlStep("grpo", "dense");
    assert.ok(Math.abs(dense.reward - 0.37) < 1e-12, `${dense.reward}`);
    assert.equal(dense.frac_reward_zero_std, 1);
    const binary = await rlStep("grpo", "binary");
    assert.equal(binary.reward, lens.reward);
  },
);

Deno.test("deno task experiment refuses an unknown experiment, budget or method", async () => {
  const [codes, errors] = await captureErrors(async () => [
    await main(["gsm8k"]),
    await main(["countdown", "--budget", "huge"]),
    await main(["countdown", "--methods", "grpo,ppo"]),
    await main(["countdown", "--seed", "x"]),
  ]);
  assert.deepEqual(codes, [2, 2, 2, 2]);
  assert.match(errors[0], /the one experiment is "countdown"/);
  assert.match(errors[1], /--budget must be small or full, got "huge"/);
  assert.match(errors[2], /unknown method\(s\) ppo/);
  assert.match(errors[3], /--seed must be a non-negative integer/);
});

function phase(method: PhaseResult["method"], pass: number[], extra: Partial<PhaseResult> = {}) {
  return {
    method,
    key: "",
    evals: pass.map((v, i) => ({
      step: i,
      passAtK: { "1": v / 2, "16": v },
      meanReward: 0,
      seconds: 1,
    })),
    fracZeroStd: [],
    reward: [],
    accuracy: [],
    gradNorm: [0.5, 0.25],
    negativeGroups: [],
    last: {},
    seconds: 1,
    ...extra,
  } as PhaseResult;
}

Deno.test("the reading of RESULTS.md states only what the figures show", () => {
  const zero = reading(phase("sft", [0, 0]), [
    phase("grpo", [0, 0], { fracZeroStd: [1, 1], reward: [0, 0] }),
    phase("lens", [0, 0], { fracZeroStd: [1, 1], negativeGroups: [1, 0.5] }),
  ], [1, 16]);
  assert.match(zero[0], /No evaluation point solved a held-out problem/);
  assert.match(zero[1], /^GRPO: every group had equal rewards .*\(mean grad_norm 0\.3750\)/);
  assert.match(
    zero[2],
    /^LENS: .*on the 2 of 2 steps where every group had equal rewards its mean grad_norm was 0\.3750 \(its all-wrong groups still gave a gradient\)/,
  );
  const some = reading(phase("sft", [0, 0.2]), [
    phase("rloo", [0.2, 0.4], { fracZeroStd: [0.5, 0.25], reward: [0.1, 0.3] }),
    phase("dpo", [0.2, 0.1]),
  ], [1, 16]);
  assert.equal(
    some[0],
    "pass@1 at the end: rloo 0.200, dpo 0.050; the SFT start was 0.100; highest: rloo; " +
      "highest during training: rloo at step 1 (0.200).",
  );
  assert.match(some[1], /^pass@16 at the end: rloo 0\.400, dpo 0\.100; .* highest: rloo;/);
  const faded = reading(phase("sft", [0, 0]), [phase("dpo", [0, 0.5, 0])], [1, 16]);
  assert.match(faded[0], /none above 0; highest during training: dpo at step 1 \(0\.250\)\.$/);
  assert.match(some[2], /^RLOO: frac_reward_zero_std 0\.375, mean reward 0\.200/);
  assert.doesNotMatch(some[2], /steps where every group/);
});
