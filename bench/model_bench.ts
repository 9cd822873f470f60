/**
 * End-to-end model throughput: forward+backward tokens/s at 512 packed tokens for the tiny
 * preset and for a two-layer slice of the Qwen2.5-0.5B shapes with the full LM head, and
 * generation tokens/s for 8 samples x 128 new tokens on the tiny preset. With `--large` (for a
 * real GPU), the same two figures for the whole 0.5b-shape model (24 layers).
 *
 * Peer (same run): the forward alone (inference `logprobs`), so the cost of training over
 * scoring is visible; for generation the peer is re-running a full forward over the growing
 * sequences at every step (no KV cache), timed over the same token count.
 */
import { PRESETS, type Qwen2Config } from "../engine/config.ts";
import type { Device } from "../engine/device.ts";
import { initTensor, qwen2TensorSpecs } from "../engine/init_model.ts";
import { Qwen2 } from "../engine/qwen2.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { Bench, BenchResult } from "./harness.ts";

function randomModel(dev: Device, cfg: Qwen2Config): Qwen2 {
  const params = new Map<string, Tensor>();
  for (const spec of qwen2TensorSpecs(cfg)) {
    params.set(spec.name, dev.upload(spec.name, initTensor(spec, 1), spec.shape));
  }
  return new Qwen2(dev, cfg, params);
}

async function fwdBwd(dev: Device, name: string, cfg: Qwen2Config, tokens: number, seqs: number) {
  const model = randomModel(dev, cfg);
  const rng = new Rng(2);
  const per = tokens / seqs;
  const batch = Array.from(
    { length: seqs },
    () => Array.from({ length: per }, () => rng.int(151_000)),
  );
  const dl = batch.map((s) => new Float32Array(s.length - 1).fill(1 / tokens));
  model.zeroGrads();
  const step = async () => {
    const st = model.forward(batch, { train: true });
    model.backward(st, dl);
    await dev.sync();
  };
  const fwd = async () => {
    await model.logprobs(batch);
  };
  await step(); // warm-up: shader compilation
  await fwd();
  const time = async (f: () => Promise<void>, iters: number) => {
    const ts: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await f();
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    return ts[Math.floor(ts.length / 2)];
  };
  const ms = await time(step, 3);
  const fms = await time(fwd, 3);
  model.dispose();
  const r: BenchResult = {
    name: `model_fwd_bwd_${name}`,
    shape: [tokens, cfg.hiddenSize, cfg.numLayers],
    ms,
    peer: { name: "forward only (logprobs)", ms: fms },
    extra: { tokens_per_second: Math.round((tokens / ms) * 1000) },
  };
  return r;
}

async function generation(
  dev: Device,
  quick: boolean,
  cfg: Qwen2Config,
  label: string,
): Promise<BenchResult> {
  const model = randomModel(dev, cfg);
  const G = 8, newTokens = quick ? 16 : 128;
  const prompt = Array.from({ length: 32 }, (_, i) => 1000 + i);
  await model.generate([prompt], { samples: G, maxNewTokens: 2, temperature: 1, eosTokenIds: [] });
  const t0 = performance.now();
  const gens = await model.generate([prompt], {
    samples: G,
    maxNewTokens: newTokens,
    temperature: 1,
    seed: 1,
    eosTokenIds: [],
  });
  const ms = performance.now() - t0;
  const produced = gens.reduce((a, g) => a + g.tokens.length, 0);
  // Peer: no cache, a full forward over every row's prefix for each new token (first 8 steps,
  // extrapolated per token).
  const steps = Math.min(8, newTokens);
  const t1 = performance.now();
  for (let s = 0; s < steps; s++) {
    await model.logprobs(gens.map((g) => [...prompt, ...g.tokens.slice(0, s + 1)]));
  }
  const peerMs = ((performance.now() - t1) / (steps * G)) * produced;
  model.dispose();
  return {
    name: `generate_${label}`,
    shape: [G, newTokens],
    ms,
    peer: { name: "full forward per token, no KV cache (extrapolated)", ms: peerMs },
    extra: { tokens_per_second: Math.round((produced / ms) * 1000) },
  };
}

export const benches: Bench[] = [{
  name: "model",
  run: async ({ dev, quick, large, log }) => {
    const out: BenchResult[] = [];
    const tokens = quick ? 64 : 512;
    out.push(await fwdBwd(dev, "tiny", PRESETS.tiny, tokens, 4));
    log(`model: tiny done`);
    const slice: Qwen2Config = { ...PRESETS["0.5b-shape"], numLayers: 2 };
    out.push(await fwdBwd(dev, "0.5b_2layers", slice, quick ? 32 : tokens, quick ? 1 : 2));
    log(`model: 0.5b two-layer slice done`);
    if (large && !quick) {
      out.push(await fwdBwd(dev, "0.5b", PRESETS["0.5b-shape"], tokens, 2));
      log(`model: whole 0.5b shape done`);
    }
    out.push(await generation(dev, quick, PRESETS.tiny, "tiny"));
    if (large && !quick) out.push(await generation(dev, quick, PRESETS["0.5b-shape"], "0.5b"));
    return out;
  },
}];
