import assert from "node:assert/strict";
import { join } from "node:path";
import { PRESETS, type Qwen2Config } from "../engine/config.ts";
import { parameterNames, parameterShape, Qwen2 } from "../engine/qwen2.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import { makeOptimizer } from "../trainers/phase.ts";
import {
  CheckpointError,
  latestCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "../trainers/run_state.ts";
import { gpuTest, testDevice } from "./util.ts";

const CFG: Qwen2Config = {
  ...PRESETS.tiny,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  vocabSize: 128,
};

async function setup(seed: number) {
  const dev = await testDevice();
  const rng = new Rng(seed);
  const params = new Map<string, Tensor>();
  for (const name of parameterNames(CFG)) {
    const shape = parameterShape(CFG, name);
    params.set(name, dev.upload(name, rng.normals(shape.reduce((a, b) => a * b, 1)), shape));
  }
  const model = new Qwen2(dev, CFG, params);
  const opt = makeOptimizer(model, {
    trainer: "sft",
    steps: 1,
    batchSize: 1,
    accumulation: 1,
    lr: 1e-3,
    warmupSteps: 0,
    schedule: "constant",
    minLrRatio: 0,
    weightDecay: 0,
    adamBetas: [0.9, 0.999],
    adamEps: 1e-8,
    clipNorm: 1,
    seed: 0,
    groupSize: 1,
    temperature: 1,
    maxNewTokens: 1,
    objective: {},
  });
  return { dev, model, opt };
}

Deno.test(
  "a checkpoint round-trips weights, moments and the optimizer step bit for bit",
  gpuTest,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "run_state_" });
    try {
      const a = await setup(1);
      a.dev.write(a.opt.m[0], new Rng(2).normals(a.opt.m[0].size));
      a.opt.setStep(7);
      const ck = await saveCheckpoint(dir, 3, "sft", a.model, a.opt, { step: 3 });
      const b = await setup(9);
      const st = await loadCheckpoint(ck, b.model, b.opt);
      assert.equal(st.step, 3);
      assert.equal(b.opt.step, 7);
      assert.deepEqual(await b.opt.m[0].read(), await a.opt.m[0].read());
      assert.deepEqual(await b.model.readParams(), await a.model.readParams());
      for (const x of [a, b]) {
        x.opt.dispose();
        x.model.dispose();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "a truncated or missing checkpoint file is named, and latestCheckpoint skips it",
  gpuTest,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "run_state_" });
    try {
      const a = await setup(3);
      const c2 = await saveCheckpoint(dir, 2, "sft", a.model, a.opt);
      const c4 = await saveCheckpoint(dir, 4, "sft", a.model, a.opt);
      // A half-written directory from a crash is never picked.
      await Deno.mkdir(join(dir, "checkpoints", "step-6.tmp-dead"));
      assert.equal(await latestCheckpoint(dir), c4);
      const f = join(c4, "optimizer.safetensors");
      const bytes = await Deno.readFile(f);
      await Deno.writeFile(f, bytes.subarray(0, bytes.length - 10));
      await assert.rejects(
        () => loadCheckpoint(c4, a.model, a.opt),
        (e: Error) => e instanceof CheckpointError && e.message.includes("optimizer.safetensors"),
      );
      assert.equal(await latestCheckpoint(dir), c2);
      await Deno.remove(join(c2, "model.safetensors"));
      await assert.rejects(() => loadCheckpoint(c2, a.model, a.opt), /model\.safetensors: missing/);
      assert.equal(await latestCheckpoint(dir), null);
      a.opt.dispose();
      a.model.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
