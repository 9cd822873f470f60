/**
 * `deno task train`: the main job. With no flags it runs the built-in default on a CPU-only
 * machine: write the tiny Qwen2 checkpoint (real Qwen tokenizer), SFT it on solver-written
 * Countdown traces (3 numbers), then GRPO with G = 8 rollouts scored by the official scorer,
 * printing pass@1 on held-out problems before SFT, after SFT and after RL. With `--trainer X`
 * it runs one method. Every hyperparameter is a field of trainers/run_config.ts.
 *
 * A run directory holds config.json (resolved), metrics.jsonl, evals.jsonl, checkpoints/step-N/
 * and report.html. `--resume` continues from the newest complete checkpoint: the data of step s
 * is a function of (seed, s) and sampling seeds of the step, so the continued run equals an
 * uninterrupted one.
 */
import { join } from "node:path";
import type { AdamW } from "../engine/adamw.ts";
import {
  loadQwen2Config,
  parameterCount,
  type PresetName,
  PRESETS,
  type Qwen2Config,
} from "../engine/config.ts";
import { Device } from "../engine/device.ts";
import { ensureModel } from "../engine/init_model.ts";
import { Qwen2 } from "../engine/qwen2.ts";
import { Rng } from "../engine/rng.ts";
import { Tokenizer } from "../engine/tokenizer.ts";
import type { Problem } from "../verifiers/countdown/problems.ts";
import { makeNegative, NEGATIVE_BUCKETS } from "../verifiers/countdown/negatives.ts";
import { score as countdownScore } from "../verifiers/countdown/score.ts";
import { solve } from "../verifiers/countdown/solver.ts";
import { checkSteps } from "../verifiers/countdown/steps.ts";
import { makeTrace } from "../verifiers/countdown/traces.ts";
import { evaluate } from "./evaluate.ts";
import { evalRow, MetricsWriter, openEvals, openMetrics } from "./metrics.ts";
import type { TrainerName } from "./objective.ts";
import {
  makeOptimizer,
  type PhaseData,
  type PhaseOptions,
  type PreferencePair,
  runPhase,
} from "./phase.ts";
import { ProgressBar } from "./progress.ts";
import { renderReport } from "./report.ts";
import { ConfigFieldError, helpText, parseTrainArgs, type RunConfig } from "./run_config.ts";
import { latestCheckpoint, loadCheckpoint, readState, saveCheckpoint } from "./run_state.ts";
import {
  countdownSplits,
  countdownTask,
  type Gsm8kProblem,
  gsm8kTask,
  loadGsm8k,
  sftExamples,
  type Task,
} from "./tasks.ts";
import { DataError, readJsonl } from "./jsonl.ts";

/** Per-method learning rates for the default sizes (small random models learn at higher lr). */
const DEFAULT_LR: Record<string, number> = {
  sft: 1e-2,
  dpo: 5e-4,
  ipo: 5e-4,
  wdpo: 5e-4,
  rloo: 5e-4,
  grpo: 1e-3,
  lens: 5e-4,
  nsa: 5e-4,
  hnr: 5e-4,
};

function phaseOptions(
  c: RunConfig,
  trainer: TrainerName,
  steps: number,
  batch: number,
): PhaseOptions {
  const objective: Record<string, unknown> = {};
  for (
    const k of [
      "beta",
      "epsLow",
      "epsHigh",
      "alpha",
      "lambda",
      "mining",
      "aggregation",
      "scale",
    ] as const
  ) {
    if (c[k] !== null) objective[k] = c[k];
  }
  if (trainer === "sft") objective.reduction = c.sftReduction;
  if (trainer === "grpo" && objective.beta === undefined) objective.beta = 0.04;
  return {
    trainer,
    steps,
    batchSize: batch,
    accumulation: c.accumulation,
    lr: c.lr ?? DEFAULT_LR[trainer],
    warmupSteps: c.warmupSteps,
    schedule: c.schedule as "cosine" | "constant",
    minLrRatio: c.minLrRatio,
    weightDecay: c.weightDecay,
    adamBetas: [c.adamBeta1, c.adamBeta2],
    adamEps: c.adamEps,
    clipNorm: c.clipNorm,
    seed: c.seed,
    groupSize: c.groupSize,
    temperature: c.temperature,
    topP: c.topP < 1 ? c.topP : undefined,
    topK: c.topK > 0 ? c.topK : undefined,
    maxNewTokens: c.maxNewTokens,
    reward: c.reward as "dense" | "binary",
    objective,
  };
}

/** Preference pairs from Countdown: a solver trace (chosen) and a hard negative (rejected). */
function countdownPairs(task: Task<Problem>, problems: Problem[], tok: Tokenizer, seed: number) {
  const rng = new Rng(seed);
  const pairs: PreferencePair[] = [];
  for (const [i, p] of problems.entries()) {
    const sol = solve(p.numbers, p.target);
    if (!sol) continue;
    const trace = makeTrace(p, sol, { rng });
    for (let b = 0; b < NEGATIVE_BUCKETS.length; b++) {
      const neg = makeNegative(p, trace, NEGATIVE_BUCKETS[(i + b) % NEGATIVE_BUCKETS.length]);
      if (!neg) continue;
      const sc = countdownScore(neg.response, p.numbers, p.target);
      pairs.push({
        prompt: task.prompt(p, tok),
        chosen: trace.response,
        rejected: neg.response,
        wrongness: 1 - sc,
        confidence: 1,
        perplexity: 1,
      });
      break;
    }
  }
  return pairs;
}

/** Thrown to end a run early at `--stop-after` (a checkpoint has been written). */
class StopRun extends Error {
  constructor(readonly step: number) {
    super(`stopped after step ${step}`);
  }
}

interface Ctx {
  c: RunConfig;
  dev: Device;
  tok: Tokenizer;
  runDir: string;
  modelDir: string;
  model: Qwen2;
  metrics: MetricsWriter;
  evals: MetricsWriter;
  log: (s: string) => void;
}

async function runEval<P>(ctx: Ctx, task: Task<P>, held: P[], step: number, phase: string) {
  const bar = new ProgressBar(`eval ${phase}`, held.length);
  const r = await evaluate(ctx.model, ctx.tok, task, held, {
    n: 1,
    ks: [1],
    temperature: 0,
    maxNewTokens: ctx.c.maxNewTokens,
    seeds: [ctx.c.seed],
    batchProblems: 50,
  }, (done) => bar.update(done));
  bar.finish({ "pass@1": r.passAtK["1"], reward: r.meanReward });
  ctx.evals.write(evalRow(step, { ...r, task: task.name }, phase));
  return r;
}

/** One phase with checkpoints; `offset` is the global step before the phase. */
async function trainPhase<P>(
  ctx: Ctx,
  o: PhaseOptions,
  data: PhaseData<P>,
  phase: string,
  offset: number,
  resumeFrom: string | null,
  ref: Qwen2 | null,
): Promise<void> {
  const opt: AdamW = makeOptimizer(ctx.model, o);
  let from = 0;
  if (resumeFrom) {
    const st = await loadCheckpoint(resumeFrom, ctx.model, opt);
    from = st.step - offset;
    ctx.log(`resumed ${phase} from ${resumeFrom} (step ${st.step})`);
  }
  const bar = new ProgressBar(phase, o.steps);
  bar.update(from);
  await runPhase(ctx.model, ref, ctx.tok, opt, o, data, from, {
    onStep: async ({ step, metrics }) => {
      const g = offset + step;
      ctx.metrics.write({ step: g, phase, ...metrics });
      bar.update(step, { loss: metrics.loss, reward: metrics.reward });
      const stop = ctx.c.stopAfter > 0 && g >= ctx.c.stopAfter;
      if (step % ctx.c.checkpointEvery === 0 || step === o.steps || stop) {
        await saveCheckpoint(ctx.runDir, g, phase, ctx.model, opt, { step: g });
        renderReport(ctx.runDir);
      }
      if (stop) throw new StopRun(g);
    },
  });
  bar.finish();
  opt.dispose();
}

async function defaultRun(ctx: Ctx, resume: string | null): Promise<void> {
  const { c } = ctx;
  const { train, held } = countdownSplits(
    { count: c.countdownNumbers },
    c.evalProblems,
    c.trainProblems,
    c.seed,
  );
  const task = countdownTask;
  const S = c.sftSteps, R = c.rlSteps;
  const done = resume ? (await readState(resume)).step : -1;
  const results: Record<string, number> = {};
  if (done < 0) results.before = (await runEval(ctx, task, held, 0, "before SFT")).passAtK["1"];
  if (done < S) {
    const examples = sftExamples(task, train, ctx.tok, c.seed);
    const o = phaseOptions(c, "sft", S, c.batchSize);
    await trainPhase(ctx, o, { kind: "sft", examples }, "sft", 0, resume, null);
    results.sft = (await runEval(ctx, task, held, S, "after SFT")).passAtK["1"];
  }
  const sftDir = join(ctx.runDir, "checkpoints", `step-${S}`);
  const o = phaseOptions(c, "grpo", R, c.rlBatchSize);
  const ref = Number(o.objective.beta) !== 0 ? await Qwen2.load(ctx.dev, sftDir) : null;
  await trainPhase(
    ctx,
    o,
    { kind: "rl", task, problems: train },
    "grpo",
    S,
    done >= S ? resume : null,
    ref,
  );
  ref?.dispose();
  results.rl = (await runEval(ctx, task, held, S + R, "after GRPO")).passAtK["1"];
  ctx.log(`pass@1 on ${held.length} held-out problems (greedy):`);
  for (const [k, v] of Object.entries(results)) ctx.log(`  ${k.padEnd(7)} ${v.toFixed(3)}`);
}

/** RL rows for Countdown: `{numbers, target}` and an optional `prompt` (used as given). */
async function readCountdownRows(path: string): Promise<Problem[]> {
  const rows = await readJsonl(path, []);
  return rows.map((r, i) => {
    const nums = r.numbers, target = r.target;
    if (!Array.isArray(nums) || !nums.every((x) => Number.isSafeInteger(x))) {
      throw new DataError(`${path}:${i + 1}: field "numbers" must be an array of integers`);
    }
    if (typeof target !== "number" || !Number.isSafeInteger(target)) {
      throw new DataError(`${path}:${i + 1}: field "target" must be an integer`);
    }
    if (r.prompt !== undefined && typeof r.prompt !== "string") {
      throw new DataError(`${path}:${i + 1}: field "prompt" must be a string`);
    }
    return { numbers: nums as number[], target, ...(r.prompt ? { prompt: r.prompt } : {}) };
  });
}

/** RL rows for math answers: `{prompt, gold}`, or GSM8K's own `{question, answer}` rows. */
async function readMathRows(path: string): Promise<Gsm8kProblem[]> {
  const rows = await readJsonl(path, []);
  if (rows.length > 0 && typeof rows[0].question === "string") return await loadGsm8k(path);
  return rows.map((r, i) => {
    for (const k of ["prompt", "gold"]) {
      if (typeof r[k] !== "string") {
        throw new DataError(`${path}:${i + 1}: field "${k}" must be a string`);
      }
    }
    const prompt = r.prompt as string;
    return { question: prompt, solution: "", answer: r.gold as string, prompt };
  });
}

async function singleRun(ctx: Ctx, resume: string | null): Promise<void> {
  const { c } = ctx;
  const trainer = c.trainer as TrainerName;
  let data: PhaseData<unknown>;
  let held: unknown[] = [];
  let task: Task<unknown>;
  const isPairs = trainer === "dpo" || trainer === "ipo" || trainer === "wdpo";
  if (c.task === "gsm8k") {
    held = (await loadGsm8k("test")).slice(0, c.evalProblems);
    task = gsm8kTask as Task<unknown>;
    if (trainer === "sft") {
      data = c.data
        ? { kind: "sft", examples: await readJsonl(c.data, ["prompt", "completion"]) }
        : {
          kind: "sft",
          examples: sftExamples(gsm8kTask, await loadGsm8k("train"), ctx.tok, c.seed),
        };
    } else if (isPairs && c.data) {
      data = { kind: "pairs", pairs: await readJsonl(c.data, ["prompt", "chosen", "rejected"]) };
    } else if (["dpo", "ipo", "wdpo", "nsa", "hnr"].includes(trainer)) {
      throw new ConfigFieldError(
        `--trainer ${trainer} on gsm8k needs --data (pairs for the DPO family; not built in)`,
      );
    } else {
      const problems = c.data ? await readMathRows(c.data) : await loadGsm8k("train");
      data = { kind: "rl", task: gsm8kTask, problems } as PhaseData<unknown>;
    }
  } else {
    const { train: generated, held: h } = countdownSplits(
      { count: c.countdownNumbers },
      c.evalProblems,
      c.trainProblems,
      c.seed,
    );
    held = h;
    task = countdownTask as Task<unknown>;
    const train = c.data && !isPairs && trainer !== "sft"
      ? await readCountdownRows(c.data)
      : generated;
    if (trainer === "sft") {
      data = c.data
        ? { kind: "sft", examples: await readJsonl(c.data, ["prompt", "completion"]) }
        : { kind: "sft", examples: sftExamples(countdownTask, train, ctx.tok, c.seed) };
    } else if (isPairs) {
      data = c.data
        ? { kind: "pairs", pairs: await readJsonl(c.data, ["prompt", "chosen", "rejected"]) }
        : { kind: "pairs", pairs: countdownPairs(countdownTask, train, ctx.tok, c.seed) };
    } else {
      const rng = new Rng(c.seed + 17);
      const negatives = new Map<Problem, string | null>();
      data = {
        kind: "rl",
        task: countdownTask,
        problems: train,
        negative: (p: Problem) => {
          if (!negatives.has(p)) {
            const sol = solve(p.numbers, p.target);
            const tr = sol ? makeTrace(p, sol, { rng }) : null;
            const b = NEGATIVE_BUCKETS[rng.int(NEGATIVE_BUCKETS.length)];
            negatives.set(p, tr ? makeNegative(p, tr, b)?.response ?? null : null);
          }
          return negatives.get(p)!;
        },
        correctSpans: (text: string, p: Problem) =>
          checkSteps(text, { numbers: p.numbers }).filter((s) => s.correct).map((s) =>
            [s.start, s.end] as [number, number]
          ),
      } as PhaseData<unknown>;
    }
  }
  const o = phaseOptions(c, trainer, c.steps, c.batchSize);
  const needsRef = data.kind === "pairs" || trainer === "nsa" ||
    (data.kind === "rl" && o.objective.beta !== 0 &&
      ["grpo", "rloo", "lens", "hnr"].includes(trainer));
  const ref = needsRef ? await Qwen2.load(ctx.dev, ctx.modelDir) : null;
  await trainPhase(ctx, o, data, trainer, 0, resume, ref);
  ref?.dispose();
  if (held.length > 0) {
    const r = await runEval(ctx, task, held, c.steps, `after ${trainer}`);
    ctx.log(
      `pass@1 on ${held.length} held-out ${c.task} problems (greedy): ${r.passAtK["1"].toFixed(3)}`,
    );
  }
}

/**
 * The memory plan of a full fine-tune (fp32 weights, gradients, two moments, activations, the
 * largest set of transient work buffers).
 */
export function memoryPlan(
  model: PresetName | Qwen2Config,
  tokens: number,
  kvRows: number,
  kvLen: number,
) {
  const cfg = typeof model === "string" ? PRESETS[model] : model;
  const p = parameterCount(cfg);
  const d = cfg.hiddenSize, f = cfg.intermediateSize;
  const q = cfg.numHeads * cfg.headDim, kv = cfg.numKvHeads * cfg.headDim;
  const perLayer = tokens * (5 * d + 2 * q + 2 * kv + 3 * f + cfg.numHeads + 2) * 4;
  // Transient work buffers, one set alive at a time: the LM head's forward chunk of logits
  // [tokens, 8192] with its partial softmax states (a quarter of its size; on llvmpipe the
  // partials alone); its backward chunk [tokens, 4096] with, on llvmpipe, the transposed copy of
  // the chunk of W that dhidden's product runs through; and a layer's backward product turned
  // the same way (dx = dy W with K = the MLP width: a copy of the weight); and over more than
  // 1024 tokens, the weight gradients turned too (copies of both operands: the MLP's [tokens,
  // f + d]; the LM head's [tokens, 4096 + d] beside its chunk).
  const v = cfg.vocabSize, c = Math.min(4096, v);
  const turned = tokens > 1024 ? tokens * Math.max(f + d, 2 * c + d) : 0;
  const transient = Math.max(
    5 * tokens * Math.min(8192, v),
    4 * Math.max(tokens * c + c * d, f * d, turned),
  );
  const plan = {
    weights: p * 4,
    gradients: p * 4,
    adam_moments: 2 * p * 4,
    activations: perLayer * cfg.numLayers + tokens * d * 4 * 3,
    transient,
    kv_cache: 2 * cfg.numLayers * kvRows * kvLen * kv * 4,
    reference_model: p * 4,
  };
  return { ...plan, total: Object.values(plan).reduce((a, b) => a + b, 0) };
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = await parseTrainArgs(argv);
  } catch (e) {
    if (e instanceof ConfigFieldError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    console.log(helpText());
    return 0;
  }
  const c = parsed.config;
  const runDir = c.out ?? join("runs", c.trainer);
  if (c.dryRun) {
    const cfg = c.model ? await loadQwen2Config(c.model) : PRESETS[c.preset as PresetName];
    const tokens = c.batchSize * 256;
    const plan = memoryPlan(cfg, tokens, c.groupSize, 256);
    console.log(
      `memory plan (${c.model ?? c.preset}, ${c.batchSize} x 256 tokens, fp32, full fine-tune):`,
    );
    for (const [k, v] of Object.entries(plan)) {
      console.log(`  ${k.padEnd(16)} ${(v / 2 ** 30).toFixed(2)} GiB`);
    }
    return 0;
  }
  await Deno.mkdir(runDir, { recursive: true });
  const resume = c.resume ? await latestCheckpoint(runDir) : null;
  if (c.resume && !resume) console.error(`no complete checkpoint in ${runDir}; starting fresh`);
  await Deno.writeTextFile(join(runDir, "config.json"), JSON.stringify(c, null, 2) + "\n");
  const dev = await Device.create();
  const modelDir = c.model ??
    await ensureModel({
      preset: c.preset as PresetName,
      out: join(runDir, "base-model"),
      seed: c.seed,
    });
  const model = await Qwen2.load(dev, resume ?? modelDir);
  const tok = model.tokenizer ?? await Tokenizer.default();
  model.tokenizer = tok;
  const resumeStep = resume ? (await readState(resume)).step : undefined;
  const ctx: Ctx = {
    c,
    dev,
    tok,
    runDir,
    modelDir,
    model,
    metrics: openMetrics(runDir, resumeStep),
    evals: openEvals(runDir, resumeStep),
    log: (s) => console.log(s),
  };
  const t0 = performance.now();
  try {
    if (c.trainer === "default") await defaultRun(ctx, resume);
    else await singleRun(ctx, resume);
  } catch (e) {
    if (!(e instanceof StopRun)) throw e;
    console.log(`${e.message} (--stop-after); continue with --resume`);
  } finally {
    ctx.metrics.close();
    ctx.evals.close();
  }
  const r = renderReport(runDir);
  console.log(
    `run directory ${runDir}; report ${r.path}; ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    // Errors about the user's input name the file, line or field: print them plainly.
    const known = [
      "DataError",
      "ConfigFieldError",
      "ConfigError",
      "CheckpointError",
      "SafetensorsError",
    ];
    if (!(e instanceof Error) || !known.includes(e.name)) throw e;
    console.error(`error: ${e.message}`);
    Deno.exit(1);
  }
}

export type { Gsm8kProblem };
