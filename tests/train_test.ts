/**
 * The training loop's invariants: exact resume, accumulation, non-finite steps skipped, fully
 * masked rows, configuration and data errors, and every method moving its objective the right
 * way on a fixed batch.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PRESETS, type Qwen2Config } from "../engine/config.ts";
import type { Device } from "../engine/device.ts";
import { initModel } from "../engine/init_model.ts";
import { parameterNames, parameterShape, Qwen2 } from "../engine/qwen2.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import { readMetrics, withoutTimings } from "../trainers/metrics.ts";
import {
  type ObjectiveResult,
  objectives,
  TRAINER_NAMES,
  type TrainerName,
} from "../trainers/objective.ts";
import { makeOptimizer, type PhaseOptions } from "../trainers/phase.ts";
import { parseTrainArgs } from "../trainers/run_config.ts";
import { parseJsonl } from "../trainers/jsonl.ts";
import { completionMask, type MicroBatch, optimizerStep } from "../trainers/step.ts";
import { main } from "../trainers/train.ts";
import { gpuTest, testDevice } from "./util.ts";

function test(name: string, fn: (dev: Device) => Promise<void>): void {
  Deno.test(name, gpuTest, async () => fn(await testDevice()));
}

const CFG: Qwen2Config = {
  ...PRESETS.tiny,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 1,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  vocabSize: 256,
  ropeTheta: 10000,
};

function smallModel(dev: Device, seed: number): Qwen2 {
  const rng = new Rng(seed);
  const params = new Map<string, Tensor>();
  for (const name of parameterNames(CFG)) {
    const shape = parameterShape(CFG, name);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith("norm.weight") ? new Float32Array(n).fill(1) : rng.normals(n, 0.1);
    params.set(name, dev.upload(name, data, shape));
  }
  return new Qwen2(dev, CFG, params);
}

function opts(trainer: TrainerName, over: Partial<PhaseOptions> = {}): PhaseOptions {
  return {
    trainer,
    steps: 10,
    batchSize: 4,
    accumulation: 1,
    lr: 1e-2,
    warmupSteps: 0,
    schedule: "constant",
    minLrRatio: 0.1,
    weightDecay: 0,
    adamBetas: [0.9, 0.999],
    adamEps: 1e-8,
    clipNorm: 1,
    seed: 0,
    groupSize: 4,
    temperature: 1,
    maxNewTokens: 8,
    objective: {},
    ...over,
  };
}

/** Four sequences of 6-9 tokens; the first 3 are the prompt. */
function batch(seed: number): MicroBatch {
  const rng = new Rng(seed);
  const seqs = [6, 9, 7, 8].map((n) => Array.from({ length: n }, () => rng.int(CFG.vocabSize)));
  return { seqs, promptLens: [3, 3, 3, 3] };
}

test("batch 4 x accumulation 1 equals batch 1 x accumulation 4 within fp32 tolerance", async (dev) => {
  const b = batch(1);
  const grads: Float32Array[] = [];
  for (const acc of [1, 4]) {
    const model = smallModel(dev, 2);
    const opt = makeOptimizer(model, opts("sft"));
    const micros = acc === 1
      ? [b]
      : b.seqs.map((s, i) => ({ seqs: [s], promptLens: [b.promptLens[i]] }));
    await optimizerStep(
      model,
      opt,
      micros,
      0,
      (v) => objectives.sft({ logp: v.logp, mask: v.mask, reduction: "sequence" }),
    );
    grads.push(await model.grads!.get("model.layers.0.mlp.up_proj.weight")!.read() as Float32Array);
    grads.push(await model.grads!.get("model.embed_tokens.weight")!.read() as Float32Array);
    opt.dispose();
    model.dispose();
  }
  for (let i = 0; i < 2; i++) {
    const [a, c] = [grads[i], grads[i + 2]];
    let worst = 0;
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - c[j]));
    const scale = Math.max(...Array.from(a, Math.abs));
    assert.ok(scale > 0 && worst <= 1e-5 * scale + 1e-7, `max |diff| ${worst} at scale ${scale}`);
  }
});

test("a NaN gradient skips the step and leaves the weights unchanged", async (dev) => {
  const model = smallModel(dev, 3);
  const opt = makeOptimizer(model, opts("sft"));
  const before = await model.params.get("model.norm.weight")!.read();
  const out = await optimizerStep(model, opt, [batch(4)], 1e-2, (v) => {
    const r = objectives.sft({ logp: v.logp, mask: v.mask });
    r.dlogp[1][4] = NaN;
    return r;
  });
  assert.equal(out.skipped, true);
  assert.ok(out.nonfinite > 0);
  assert.deepEqual(await model.params.get("model.norm.weight")!.read(), before);
  assert.equal(opt.step, 0);
  const ok = await optimizerStep(
    model,
    opt,
    [batch(4)],
    1e-2,
    (v) => objectives.sft({ logp: v.logp, mask: v.mask }),
  );
  assert.equal(ok.skipped, false);
  assert.notDeepEqual(await model.params.get("model.norm.weight")!.read(), before);
  opt.dispose();
  model.dispose();
});

test("a row whose completion is fully masked contributes zero, not NaN", async (dev) => {
  const model = smallModel(dev, 5);
  const opt = makeOptimizer(model, opts("sft"));
  const b = batch(6);
  const masked: MicroBatch = { seqs: b.seqs, promptLens: [b.seqs[0].length, 3, 3, 3] };
  assert.ok(completionMask(masked.seqs, masked.promptLens)[0].every((m) => m === 0));
  const out = await optimizerStep(
    model,
    opt,
    [masked],
    1e-2,
    (v) => objectives.sft({ logp: v.logp, mask: v.mask }),
  );
  assert.ok(Number.isFinite(out.loss) && out.skipped === false && Number.isFinite(out.gradNorm));
  // The same step without the masked row gives the same gradient.
  const g1 = await model.grads!.get("model.norm.weight")!.read();
  const model2 = smallModel(dev, 5);
  const opt2 = makeOptimizer(model2, opts("sft"));
  await optimizerStep(
    model2,
    opt2,
    [{ seqs: b.seqs.slice(1), promptLens: [3, 3, 3] }],
    1e-2,
    (v) => objectives.sft({ logp: v.logp, mask: v.mask }),
  );
  const g2 = await model2.grads!.get("model.norm.weight")!.read();
  for (let i = 0; i < g1.length; i++) {
    assert.ok(Math.abs(g1[i] - g2[i]) <= 1e-6 + 1e-5 * Math.abs(g2[i]));
  }
  for (const x of [opt, opt2, model, model2]) x.dispose();
});

/** What each method should increase on a fixed batch. */
function progressOf(
  trainer: TrainerName,
  logp: Float32Array[],
  mask: Float32Array[],
  rewards: number[],
) {
  const s = logp.map((row, b) => row.reduce((a, x, t) => a + (mask[b][t] > 0 ? x : 0), 0));
  if (trainer === "sft") return s.reduce((a, b) => a + b, 0);
  if (["dpo", "ipo", "wdpo"].includes(trainer)) return (s[0] - s[1]) + (s[2] - s[3]);
  const mean = rewards.reduce((a, b) => a + b, 0) / rewards.length;
  return s.reduce((a, x, i) => a + (rewards[i] - mean) * x, 0);
}

for (const trainer of TRAINER_NAMES) {
  test(`${trainer}: a few steps on a fixed batch move its objective the expected way`, async (dev) => {
    const model = smallModel(dev, 7);
    const opt = makeOptimizer(model, opts(trainer));
    const b = batch(8);
    const rewards = [1, 0, 0.1, 1];
    const mask = completionMask(b.seqs, b.promptLens);
    const ref = await model.logprobs(b.seqs);
    const start = progressOf(trainer, ref, mask, rewards);
    const losses: number[] = [];
    for (let step = 0; step < 4; step++) {
      const out = await optimizerStep(model, opt, [b], 1e-2, (v): ObjectiveResult => {
        const common = { logp: v.logp, mask: v.mask, ref, old: ref };
        switch (trainer) {
          case "sft":
            return objectives.sft(common);
          case "dpo":
            return objectives.dpo(common);
          case "ipo":
            return objectives.ipo(common);
          case "wdpo":
            return objectives.wdpo({ ...common, rawWeights: [1, 2] });
          case "rloo":
            return objectives.rloo({ ...common, rewards, groupSize: 4 });
          case "grpo":
            return objectives.grpo({ ...common, rewards, groupSize: 4 });
          case "lens":
            return objectives.lens({ ...common, rewards: [1, 0, 0, 1], groupSize: 4 });
          case "nsa":
            return objectives.nsa({
              ...common,
              rewards,
              groupSize: 4,
              stepCorrect: mask.map((m) => m.map(() => 0)),
            });
          case "hnr":
            return objectives.hnr({
              ...common,
              rewards,
              groupSize: 4,
              samples: b.seqs.map((s) => s.slice(3)),
              negatives: [null, null, null, null],
            });
        }
      });
      assert.equal(out.skipped, false);
      losses.push(out.loss);
    }
    const after = progressOf(
      trainer,
      await model.logprobs(b.seqs),
      mask,
      trainer === "lens" ? [1, 0, 0, 1] : rewards,
    );
    const before = trainer === "lens" ? progressOf(trainer, ref, mask, [1, 0, 0, 1]) : start;
    assert.ok(after > before, `${trainer}: ${before} -> ${after} (losses ${losses.join(", ")})`);
    opt.dispose();
    model.dispose();
  });
}

Deno.test("an unknown or ill-typed config field is refused with its name", async () => {
  await assert.rejects(() => parseTrainArgs(["--max-new-tokens", "many"]), /maxNewTokens/);
  await assert.rejects(() => parseTrainArgs(["--trainer", "ppo"]), /trainer/);
  const dir = await Deno.makeTempDir();
  const file = join(dir, "c.json");
  await Deno.writeTextFile(file, JSON.stringify({ learningRate: 1 }));
  await assert.rejects(
    () => parseTrainArgs(["--config", file]),
    (e: Error) => e.message.includes("learningRate") && e.message.includes(file),
  );
  await Deno.writeTextFile(file, JSON.stringify({ steps: 3, seed: 2 }));
  const { config } = await parseTrainArgs(["--config", file, "--steps", "5"]);
  assert.equal(config.steps, 5);
  assert.equal(config.seed, 2);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a malformed JSONL line is an error naming the file and the line", () => {
  const text = '{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n';
  assert.throws(
    () => parseJsonl(text, "data.jsonl", ["prompt", "completion"]),
    /data\.jsonl:2: field "completion"/,
  );
  assert.throws(() => parseJsonl("{oops\n", "d.jsonl", ["prompt"]), /d\.jsonl:1: not valid JSON/);
});

test("2 steps, stop, resume, 2 more steps equals 4 uninterrupted steps bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_resume_" });
  try {
    const modelDir = join(dir, "model");
    await initModel({ preset: "tiny", out: modelDir, seed: 1 });
    const data = join(dir, "sft.jsonl");
    await Deno.writeTextFile(
      data,
      ["2 + 3 =|5", "7 - 4 =|3", "6 * 2 =|12", "9 / 3 =|3", "1 + 1 =|2"]
        .map((l) => JSON.stringify({ prompt: l.split("|")[0], completion: l.split("|")[1] }))
        .join("\n") + "\n",
    );
    const common = [
      "--trainer",
      "sft",
      "--model",
      modelDir,
      "--data",
      data,
      "--steps",
      "4",
      "--batch-size",
      "2",
      "--eval-problems",
      "0",
      "--checkpoint-every",
      "2",
      "--warmup-steps",
      "1",
    ];
    const a = join(dir, "a"), b = join(dir, "b");
    assert.equal(await main([...common, "--out", a]), 0);
    assert.equal(await main([...common, "--out", b, "--stop-after", "2"]), 0);
    assert.equal(await main([...common, "--out", b, "--resume"]), 0);
    const [ma, mb] = [readMetrics(join(a, "metrics.jsonl")), readMetrics(join(b, "metrics.jsonl"))];
    assert.equal(ma.length, 4);
    assert.deepEqual(mb.map(withoutTimings), ma.map(withoutTimings));
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      const x = await Deno.readFile(join(a, "checkpoints", "step-4", f));
      const y = await Deno.readFile(join(b, "checkpoints", "step-4", f));
      assert.ok(x.length === y.length && x.every((v, i) => v === y[i]), `${f} differs`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the memory plan of a full fine-tune of the 0.5B shapes at 1 x 256 tokens fits 24 GiB", async () => {
  const { memoryPlan } = await import("../trainers/train.ts");
  const plan = memoryPlan("0.5b-shape", 256, 8, 256);
  // fp32 weights + gradients + two moments alone are 16 bytes a parameter (494M parameters).
  assert.ok(plan.weights > 1.8 * 2 ** 30 && plan.adam_moments === 2 * plan.weights);
  assert.ok(plan.total < 24 * 2 ** 30, `plan ${plan.total} bytes`);
});

test("RL reads {prompt?, numbers, target} rows from --data and names a malformed line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_rl_data_" });
  try {
    const modelDir = join(dir, "model");
    await initModel({ preset: "tiny", out: modelDir, seed: 3 });
    const data = join(dir, "rl.jsonl");
    await Deno.writeTextFile(
      data,
      JSON.stringify({ numbers: [2, 3, 4], target: 10 }) + "\n" +
        JSON.stringify({ prompt: "Make 6 from [1, 2, 3]:", numbers: [1, 2, 3], target: 6 }) + "\n",
    );
    const args = [
      "--trainer",
      "grpo",
      "--model",
      modelDir,
      "--data",
      data,
      "--steps",
      "1",
      "--batch-size",
      "2",
      "--group-size",
      "2",
      "--max-new-tokens",
      "4",
      "--eval-problems",
      "0",
    ];
    assert.equal(await main([...args, "--out", join(dir, "run")]), 0);
    const rows = readMetrics(join(dir, "run", "metrics.jsonl"));
    assert.equal(rows.length, 1);
    assert.equal(rows[0]["completions/mean_length"], 4);
    await Deno.writeTextFile(data, JSON.stringify({ numbers: [2, 3, 4] }) + "\n");
    await assert.rejects(
      () => main([...args, "--out", join(dir, "run2")]),
      /rl\.jsonl:1: field "target"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
