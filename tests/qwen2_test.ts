/**
 * The Qwen2 model on the GPU against the float64 CPU reference (engine/qwen2_ref.ts): log-probs,
 * parameter gradients (against finite differences of the reference), generation, save/load.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PRESETS, type Qwen2Config } from "../engine/config.ts";
import type { Device } from "../engine/device.ts";
import { initModel } from "../engine/init_model.ts";
import { parameterNames, parameterShape, Qwen2 } from "../engine/qwen2.ts";
import { refHidden, refLogprobs } from "../engine/qwen2_ref.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import { assertClose, gpuTest, testDevice } from "./util.ts";

/**
 * Registers the test on the adapter's own kernel forms and, unless `once`, again on the forms a
 * GPU gets (tiled matmul with gemm_skinny for few rows, one-row attention), so that the whole
 * model is checked on those here too.
 */
function test(name: string, fn: (dev: Device) => Promise<void>, once = false): void {
  Deno.test(name, gpuTest, async () => fn(await testDevice()));
  if (once) return;
  Deno.test(`${name} [GPU forms]`, gpuTest, async () => {
    const dev = await testDevice();
    const before = { gemm: dev.gemm, attention: dev.attention };
    dev.gemm = { form: "tiled", wx: 16, wy: 16, bk: 16 };
    dev.attention = "rows1";
    try {
      await fn(dev);
    } finally {
      dev.gemm = before.gemm;
      dev.attention = before.attention;
    }
  });
}

/** A small Qwen2 (vocabulary 320) so the float64 reference is cheap enough for finite differences. */
function smallConfig(tied: boolean): Qwen2Config {
  return {
    ...PRESETS.tiny,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 8,
    vocabSize: 320,
    ropeTheta: 10000,
    tieWordEmbeddings: tied,
  };
}

/** Random weights with a scale that makes every gradient clearly non-zero. */
function randomWeights(cfg: Qwen2Config, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const w = new Map<string, Float32Array>();
  for (const name of parameterNames(cfg)) {
    const n = parameterShape(cfg, name).reduce((a, b) => a * b, 1);
    const data = name.endsWith("norm.weight")
      ? Float32Array.from(rng.normals(n, 0.2), (x) => 1 + x)
      : rng.normals(n, name.includes("embed") || name.startsWith("lm_head") ? 0.5 : 0.25);
    w.set(name, data);
  }
  return w;
}

function buildModel(dev: Device, cfg: Qwen2Config, w: Map<string, Float32Array>): Qwen2 {
  const params = new Map<string, Tensor>();
  for (const [name, data] of w) params.set(name, dev.upload(name, data, parameterShape(cfg, name)));
  return new Qwen2(dev, cfg, params);
}

function randomSeqs(rng: Rng, vocab: number, lengths: number[]): number[][] {
  return lengths.map((len) => Array.from({ length: len }, () => rng.int(vocab)));
}

test("logprobs() match the float64 reference model for sequences of different lengths", async (dev) => {
  for (const tied of [true, false]) {
    const cfg = smallConfig(tied);
    const w = randomWeights(cfg, tied ? 1 : 2);
    const model = buildModel(dev, cfg, w);
    const seqs = randomSeqs(new Rng(3), cfg.vocabSize, [7, 1, 12, 2]);
    const { logp, entropy } = await model.logprobsWith(seqs, { entropy: true });
    seqs.forEach((s, b) => {
      const ref = refLogprobs(cfg, w, s);
      assert.deepEqual(logp[b].length, s.length - 1);
      assertClose(logp[b], ref.logp, {
        atol: 1e-4,
        rtol: 1e-4,
        label: `logp tied=${tied} seq ${b}`,
      });
      assertClose(entropy![b], ref.entropy, {
        atol: 1e-4,
        rtol: 1e-4,
        label: `entropy tied=${tied} seq ${b}`,
      });
    });
    model.dispose();
  }
});

test("a sequence's log-probs do not depend on the other sequences in its batch", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 4));
  const seqs = randomSeqs(new Rng(5), cfg.vocabSize, [9, 4, 6]);
  const together = await model.logprobs(seqs);
  for (const [b, s] of seqs.entries()) {
    const [alone] = await model.logprobs([s]);
    assertClose(together[b], alone, { atol: 1e-5, rtol: 1e-5, label: `seq ${b}` });
  }
  model.dispose();
});

/** One sampled index per parameter tensor kind, and a few more in the embedding rows used. */
function probeIndices(cfg: Qwen2Config, name: string, ids: number[], rng: Rng): number[] {
  const shape = parameterShape(cfg, name);
  const n = shape.reduce((a, b) => a * b, 1);
  if (name === "model.embed_tokens.weight" || name === "lm_head.weight") {
    const d = cfg.hiddenSize;
    // Rows of tokens in the batch (input and target gradients) and one row no token uses.
    const rows = [ids[0], ids[3], ids[ids.length - 1], (Math.max(...ids) + 1) % cfg.vocabSize];
    return rows.map((r) => r * d + rng.int(d));
  }
  return [rng.int(n), rng.int(n)];
}

for (const recompute of [false, true]) {
  test(
    `backward() gives the finite-difference gradient of sum w*logp for every parameter kind${
      recompute ? " with recomputed activations" : ""
    }`,
    async (dev) => {
      // The third case has weights of exactly 0 (all of the second sequence, every third
      // position of the first), which the backward leaves out of the LM head.
      const cases = recompute ? [[true, false]] : [[true, false], [false, false], [true, true]];
      for (const [tied, zeros] of cases) {
        const cfg = smallConfig(tied);
        const w = randomWeights(cfg, 10 + Number(tied));
        const model = buildModel(dev, cfg, w);
        const rng = new Rng(7);
        const seqs = randomSeqs(rng, cfg.vocabSize, zeros ? [7, 4, 5] : [6, 3]);
        const wts = seqs.map((s, b) =>
          Array.from(
            { length: s.length - 1 },
            (_, t) => zeros && (b === 1 || t % 3 === 0) ? 0 : rng.uniform() - 0.5,
          )
        );
        model.zeroGrads();
        const state = model.forward(seqs, { train: true, recompute });
        model.backward(state, wts);
        const grads = model.grads!;
        // f(W) = sum_b sum_t w_bt * logp_bt from the float64 reference.
        const f = (wm: Map<string, Float32Array | Float64Array>) => {
          let s = 0;
          seqs.forEach((seq, b) => {
            const lp = refLogprobs(cfg, wm, seq).logp;
            for (let t = 0; t < lp.length; t++) s += wts[b][t] * lp[t];
          });
          return s;
        };
        const w64 = new Map<string, Float64Array>();
        for (const [k, v] of w) w64.set(k, Float64Array.from(v));
        const allIds = seqs.flat();
        for (const name of parameterNames(cfg)) {
          const g = await grads.get(name)!.read() as Float32Array;
          const x = w64.get(name)!;
          for (const i of probeIndices(cfg, name, allIds, rng)) {
            const eps = 1e-4, x0 = x[i];
            x[i] = x0 + eps;
            const fp = f(w64);
            x[i] = x0 - eps;
            const fm = f(w64);
            x[i] = x0;
            const fd = (fp - fm) / (2 * eps);
            // fp32 GPU gradient against a float64 central difference.
            assertClose([g[i]], [fd], {
              atol: 2e-4,
              rtol: 2e-3,
              label: `d/d ${name}[${i}] (tied=${tied}, recompute=${recompute}, zeros=${zeros})`,
            });
          }
        }
        model.dispose();
      }
    },
  );
}

test("a row mask runs the LM head on the masked positions only and gives the same gradients", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 22));
  const rng = new Rng(23);
  const seqs = randomSeqs(rng, cfg.vocabSize, [7, 5]);
  const rows = seqs.map((s) =>
    Float32Array.from({ length: s.length - 1 }, (_, t) => (t >= 2 ? 1 : 0))
  );
  const wts = rows.map((m) => Array.from(m, (x) => x * (rng.uniform() - 0.5)));
  const grads: Float32Array[] = [];
  const lps: Float32Array[][] = [];
  for (const useRows of [false, true]) {
    model.zeroGrads();
    const st = model.forward(seqs, { train: true, rows: useRows ? rows : undefined });
    assert.equal(st.headRows.length, useRows ? 6 : 10);
    lps.push((await model.readLogprobs(st)).logp);
    model.backward(st, wts);
    grads.push(
      await model.grads!.get("model.layers.1.self_attn.q_proj.weight")!.read() as Float32Array,
    );
  }
  rows.forEach((m, b) =>
    m.forEach((x, t) => {
      if (x > 0) assert.equal(lps[1][b][t], lps[0][b][t]);
      else assert.equal(lps[1][b][t], 0);
    })
  );
  // logprobsWith() takes the same rows (a reference model's log-probs of completions).
  const masked = await model.logprobsWith(seqs, { rows, entropy: true });
  assert.deepEqual(masked.logp, lps[1]);
  assertClose(grads[1], grads[0], { atol: 1e-7, rtol: 1e-5 });
  model.dispose();
});

test("a backward whose dlogp is all 0 runs nothing and leaves the gradients as they were", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 24));
  const seqs = randomSeqs(new Rng(25), cfg.vocabSize, [6, 4]);
  model.zeroGrads();
  model.backward(
    model.forward(seqs, { train: true }),
    seqs.map((s) => new Array(s.length - 1).fill(0.5)),
  );
  const name = "model.layers.0.self_attn.k_proj.weight";
  const before = await model.grads!.get(name)!.read();
  const live = dev.memory.live - dev.memory.pooled;
  const st = model.forward(seqs, { train: true });
  const dispatches = dev.counters.dispatches;
  model.backward(st, seqs.map((s) => new Array(s.length - 1).fill(0)));
  assert.equal(dev.counters.dispatches, dispatches, "dispatches for a zero dlogp");
  assert.equal(dev.memory.live - dev.memory.pooled, live, "the forward state is released");
  const after = await model.grads!.get(name)!.read();
  assert.deepEqual(new Uint32Array(after.buffer), new Uint32Array(before.buffer));
  model.dispose();
});

test("gradients accumulate over two backward passes and zeroGrads() clears them", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 20));
  const seqs = randomSeqs(new Rng(21), cfg.vocabSize, [5, 4]);
  const wts = seqs.map((s) => new Array(s.length - 1).fill(1));
  model.zeroGrads();
  model.backward(model.forward(seqs, { train: true }), wts);
  const once = await model.grads!.get("model.layers.0.mlp.up_proj.weight")!.read();
  model.backward(model.forward(seqs, { train: true }), wts);
  const twice = await model.grads!.get("model.layers.0.mlp.up_proj.weight")!.read();
  assertClose(twice, Array.from(once, (x) => 2 * x), { atol: 1e-6, rtol: 1e-5 });
  model.zeroGrads();
  const cleared = await model.grads!.get("model.layers.0.mlp.up_proj.weight")!.read();
  assert.ok(cleared.every((x) => x === 0));
  model.dispose();
});

test("forward and backward run twice give identical bits", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 30));
  const seqs = randomSeqs(new Rng(31), cfg.vocabSize, [8, 5]);
  const wts = seqs.map((s) => new Array(s.length - 1).fill(-0.5));
  const run = async () => {
    model.zeroGrads();
    const st = model.forward(seqs, { train: true });
    const lp = await st.logp.read();
    model.backward(st, wts);
    return [lp, await model.grads!.get("model.embed_tokens.weight")!.read()];
  };
  const [a1, g1] = await run();
  const [a2, g2] = await run();
  assert.deepEqual(new Uint32Array(a1.buffer), new Uint32Array(a2.buffer));
  assert.deepEqual(new Uint32Array(g1.buffer), new Uint32Array(g2.buffer));
  model.dispose();
});

test("greedy generation equals the argmax of a full forward at every step", async (dev) => {
  const cfg = smallConfig(true);
  const w = randomWeights(cfg, 40);
  const model = buildModel(dev, cfg, w);
  const prompts = randomSeqs(new Rng(41), cfg.vocabSize, [5, 2, 7]);
  const gens = await model.generate(prompts, { maxNewTokens: 6, temperature: 0, eosTokenIds: [] });
  assert.deepEqual(gens.length, 3);
  for (const g of gens) {
    const full = [...prompts[g.prompt], ...g.tokens];
    assert.deepEqual(g.tokens.length, 6);
    const hidden = refHidden(cfg, w, full);
    const emb = w.get("model.embed_tokens.weight")!;
    const d = cfg.hiddenSize;
    for (let t = 0; t < g.tokens.length; t++) {
      const p = prompts[g.prompt].length - 1 + t;
      let best = -1, bestV = -Infinity, second = -Infinity;
      for (let r = 0; r < cfg.vocabSize; r++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += hidden[p * d + i] * emb[r * d + i];
        if (s > bestV) [second, bestV, best] = [bestV, s, r];
        else if (s > second) second = s;
      }
      // A near-tie could legitimately flip under fp32; none of these random cases is one.
      assert.ok(bestV - second > 1e-4, `near tie at prompt ${g.prompt} step ${t}`);
      assert.deepEqual(g.tokens[t], best, `prompt ${g.prompt} step ${t}`);
    }
    // The returned log-probs are the model's log-probs of the chosen tokens.
    const lp = (await model.logprobs([full]))[0].slice(prompts[g.prompt].length - 1);
    assertClose(g.logprobs, lp, { atol: 1e-4, rtol: 1e-4, label: `logprobs prompt ${g.prompt}` });
  }
  model.dispose();
});

test("sampled generation is seeded, gives G samples per prompt and stops at EOS", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 50));
  const prompts = randomSeqs(new Rng(51), cfg.vocabSize, [3, 6]);
  const opts = { samples: 4, maxNewTokens: 8, temperature: 1, seed: 9, eosTokenIds: [] };
  const a = await model.generate(prompts, opts);
  const b = await model.generate(prompts, opts);
  assert.deepEqual(a.map((g) => g.tokens), b.map((g) => g.tokens));
  assert.deepEqual(
    a.map((g) => [g.prompt, g.sample]),
    [0, 1].flatMap((p) => [0, 1, 2, 3].map((s) => [p, s])),
  );
  const distinct = new Set(a.map((g) => g.tokens.join(",")));
  assert.ok(distinct.size > 1, "all 8 samples identical at temperature 1");
  const c = await model.generate(prompts, { ...opts, seed: 10 });
  assert.ok(c.some((g, i) => g.tokens.join() !== a[i].tokens.join()), "seed has no effect");
  // Stop at an id that the first sample draws: that sample ends there, with reason "eos".
  const stopId = a[0].tokens[2];
  const s = await model.generate(prompts, { ...opts, eosTokenIds: [stopId] });
  const first = s[0].tokens.indexOf(stopId);
  assert.deepEqual(s[0].tokens.length, first + 1);
  assert.deepEqual(s[0].finishReason, "eos");
  model.dispose();
});

test("generate() gives the same samples and step reports however many steps it reads back at once", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 52));
  const prompts = randomSeqs(new Rng(53), cfg.vocabSize, [3, 6]);
  const base = { samples: 3, maxNewTokens: 10, temperature: 1, seed: 4, eosTokenIds: [] };
  const free = await model.generate(prompts, base);
  // An EOS id that ends some samples part-way through a batch of steps.
  const eosTokenIds = [free[0].tokens[4], free[2].tokens[1]];
  const runs = [];
  for (const readEvery of [1, 3, 8, 16]) {
    const steps: [number, number][] = [];
    const gens = await model.generate(prompts, {
      ...base,
      eosTokenIds,
      readEvery,
      onStep: (step, active) => steps.push([step, active]),
    });
    runs.push({ gens, steps });
  }
  assert.ok(runs[0].gens.some((g) => g.finishReason === "eos"), "no sample reached the EOS id");
  assert.ok(runs[0].gens.some((g) => g.finishReason === "length"), "every sample ended early");
  for (const r of runs.slice(1)) {
    assert.deepEqual(r.gens, runs[0].gens);
    assert.deepEqual(r.steps, runs[0].steps);
  }
  await assert.rejects(
    model.generate(prompts, { ...base, readEvery: 0 }),
    /readEvery = 0 must be a positive integer/,
  );
  model.dispose();
});

test("samples of one prompt share its prefill and draw as copies of the prompt would", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 56));
  const prompts = randomSeqs(new Rng(57), cfg.vocabSize, [5, 9, 3]);
  const opts = { maxNewTokens: 12, temperature: 1, seed: 8, eosTokenIds: [] };
  const shared = await model.generate(prompts, { ...opts, samples: 4 });
  // The same rows in the same order, each prompt prefilled 4 times.
  const copies = prompts.flatMap((p) => [p, p, p, p]);
  const apart = await model.generate(copies, opts);
  shared.forEach((g, r) => {
    assert.deepEqual(g.tokens, apart[r].tokens, `row ${r}`);
    assertClose(g.logprobs, apart[r].logprobs, { atol: 1e-5, rtol: 1e-5, label: `row ${r}` });
  });
  model.dispose();
});

test("generate() drops finished samples from the batch without changing any sample", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 54));
  const rng = new Rng(55);
  // 12 rows either way: 3 prompts x 4 samples at temperature 1, 12 prompts greedy.
  const cases = [
    { prompts: randomSeqs(rng, cfg.vocabSize, [4, 7, 2]), samples: 4, temperature: 1 },
    {
      prompts: randomSeqs(rng, cfg.vocabSize, [3, 5, 2, 6, 4, 8, 3, 5, 7, 2, 4, 6]),
      samples: 1,
      temperature: 0,
    },
  ];
  for (const { prompts, samples, temperature } of cases) {
    const base = { samples, maxNewTokens: 30, temperature, seed: 6, eosTokenIds: [] };
    const free = await model.generate(prompts, base);
    // EOS ids that end rows of the first 8 at different steps (or earlier, where another draws
    // one) and that the last 4 never draw, so those run to the length limit.
    const late = new Set(free.slice(8).flatMap((g) => g.tokens));
    const eosTokenIds = free.slice(0, 8).flatMap((g, i) =>
      g.tokens.slice(1 + 3 * i).filter((t) => !late.has(t)).slice(0, 1)
    );
    const kept = await model.generate(prompts, { ...base, eosTokenIds, compact: false });
    // The KV caches' row counts, seen where compaction copies them.
    const rowsSeen: number[] = [];
    const copy = dev.copy.bind(dev);
    dev.copy = (src, dst, ...rest) => {
      if (src.name === "gen.k_cache.0") rowsSeen.push(dst.shape[0]);
      return copy(src, dst, ...rest);
    };
    let compacted;
    try {
      compacted = await model.generate(prompts, { ...base, eosTokenIds, readEvery: 2 });
    } finally {
      dev.copy = copy;
    }
    const how = `T=${temperature}`;
    const ends = kept.map((g) => g.finishReason);
    assert.ok(ends.filter((e) => e === "eos").length >= 4, `${how}: too few rows ended: ${ends}`);
    assert.ok(ends.includes("length"), `${how}: every row ended early`);
    const shrinks = [...new Set(rowsSeen)];
    assert.ok(shrinks.length >= 1, `${how}: the batch never shrank`);
    assert.ok(shrinks.every((n, i) => n < (i === 0 ? 12 : shrinks[i - 1])), `${how}: ${shrinks}`);
    assert.deepEqual(compacted, kept, how);
  }
  model.dispose();
});

test("a tied and an untied checkpoint both load and save() round-trips", async (dev) => {
  const tmp = await Deno.makeTempDir({ prefix: "qwen2_test_" });
  try {
    for (const untied of [false, true]) {
      const dir = join(tmp, untied ? "untied" : "tied");
      await initModel({
        preset: "tiny",
        out: dir,
        seed: 3,
        untied,
        dtype: untied ? "bf16" : "f32",
      });
      const model = await Qwen2.load(dev, dir);
      assert.deepEqual(model.config.tieWordEmbeddings, !untied);
      assert.deepEqual(model.params.has("lm_head.weight"), untied);
      assert.ok(model.tokenizer !== null);
      const seq = [[9707, 11, 1879, 0], [151644, 872]];
      const lp = await model.logprobs(seq);
      assert.deepEqual(lp.map((x) => x.length), [3, 1]);
      assert.ok(lp.every((row) => row.every((x) => Number.isFinite(x) && x <= 0)));
      const out = join(tmp, `${untied ? "untied" : "tied"}_saved`);
      await model.save(out);
      const again = await Qwen2.load(dev, out);
      assert.deepEqual(await again.logprobs(seq), lp);
      model.dispose();
      again.dispose();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}, true);

test("token ids past the embedding rows are refused before anything runs", async (dev) => {
  const cfg = smallConfig(true);
  const model = buildModel(dev, cfg, randomWeights(cfg, 60));
  await assert.rejects(() => model.logprobs([[1, 2, 320]]), /token id 320/);
  model.dispose();
}, true);
