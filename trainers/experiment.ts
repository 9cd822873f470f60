/**
 * `deno task experiment countdown [--budget small|full] [--model DIR] [--out DIR]
 * [--results FILE] [--seed S] [--methods rloo,grpo,lens,dpo,ipo]`: the Countdown comparison of
 * the papers at a chosen scale. From one SFT checkpoint it trains RLOO, GRPO and LENS with equal
 * rollout budgets and seeds (the same prompts at every step, the same sampling seeds, the same
 * binary verifier reward, the same KL coefficient and learning rate), and DPO and IPO on pairs
 * built by the verifier from the SFT model's own samples of those same prompts (an equal sample
 * budget, spent offline). Every method is evaluated with pass@k (k = 1, 4, 8, 16 from n = 16
 * samples per held-out problem) at the SFT start, during training and at the end;
 * `frac_reward_zero_std` is logged at every RL step.
 *
 * The run directory holds one sub-directory per phase (sft/, rloo/, ...; each with
 * metrics.jsonl, evals.jsonl, report.html and result.json), the SFT model (sft/model/), the
 * pairs (pairs.jsonl) and summary.json; the figures are written to `experiments/countdown/
 * RESULTS.md`. A phase whose result.json exists for the same settings is not run again, so an
 * interrupted experiment continues where it stopped.
 *
 * The `small` budget is sized to finish within an hour on a 2-core CPU (llvmpipe) with the tiny
 * preset; the `full` budget is meant for a GPU and a real Qwen2.5 checkpoint (`--model`).
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { parameterCount, type PresetName, PRESETS } from "../engine/config.ts";
import { Device } from "../engine/device.ts";
import { ensureModel } from "../engine/init_model.ts";
import { Qwen2 } from "../engine/qwen2.ts";
import { Tokenizer } from "../engine/tokenizer.ts";
import type { Problem } from "../verifiers/countdown/problems.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import { evalRow, openEvals, openMetrics } from "./metrics.ts";
import type { TrainerName } from "./objective.ts";
import { buildPairs } from "./pairs.ts";
import {
  makeOptimizer,
  type PhaseData,
  type PhaseOptions,
  runPhase,
  type SftExample,
  stepItems,
} from "./phase.ts";
import { Rng } from "../engine/rng.ts";
import { solve } from "../verifiers/countdown/solver.ts";
import { makeTrace, renderTrace, type TraceStyle } from "../verifiers/countdown/traces.ts";
import { ProgressBar } from "./progress.ts";
import { renderReport } from "./report.ts";
import { countdownSplits, countdownTask, sftExamples } from "./tasks.ts";

export const EXPERIMENT_METHODS = ["rloo", "grpo", "lens", "dpo", "ipo"] as const;
export type ExperimentMethod = typeof EXPERIMENT_METHODS[number];

/** Everything that sizes an experiment. */
export interface Budget {
  /** Checkpoint written when no model directory is given. */
  preset: PresetName;
  /** Numbers per Countdown problem, the range of each number and of the target. */
  numbers: number;
  numberRange: [number, number];
  targetRange: [number, number];
  trainProblems: number;
  /**
   * SFT on solver-written traces of one style, of every style in turn ("mixed"), or on the
   * equation alone after an empty think block ("answer": a short target a tiny model can learn
   * within a CPU budget; it scores 1.0 like every trace).
   */
  sft: { steps: number; batch: number; lr: number; style: SftStyle };
  /** RLOO, GRPO and LENS: prompts per step, samples per prompt, KL coefficient. */
  rl: {
    steps: number;
    prompts: number;
    groupSize: number;
    lr: number;
    beta: number;
    temperature: number;
    maxNewTokens: number;
  };
  /** DPO and IPO: pairs per step; their pairs come from rl.steps x rl.prompts x groupSize samples. */
  pref: { steps: number; batch: number; lr: number; beta: number };
  /** pass@k on held-out problems with n samples each, every `every` steps and at the end. */
  eval: { problems: number; n: number; every: number; temperature: number };
}

export type SftStyle = TraceStyle | "mixed" | "answer";

export const BUDGETS: Record<"small" | "full", Budget> = {
  small: {
    preset: "tiny",
    numbers: 3,
    numberRange: [1, 6],
    targetRange: [1, 20],
    trainProblems: 2000,
    sft: { steps: 400, batch: 16, lr: 1e-2, style: "answer" },
    rl: {
      steps: 16,
      prompts: 4,
      groupSize: 8,
      lr: 1e-3,
      beta: 0.04,
      temperature: 1,
      maxNewTokens: 24,
    },
    pref: { steps: 16, batch: 4, lr: 1e-3, beta: 0.1 },
    eval: { problems: 32, n: 16, every: 8, temperature: 1 },
  },
  full: {
    preset: "small",
    numbers: 3,
    numberRange: [1, 99],
    targetRange: [1, 100],
    trainProblems: 20000,
    sft: { steps: 500, batch: 32, lr: 1e-5, style: "mixed" },
    rl: {
      steps: 200,
      prompts: 16,
      groupSize: 8,
      lr: 1e-6,
      beta: 0.04,
      temperature: 1,
      maxNewTokens: 256,
    },
    pref: { steps: 200, batch: 16, lr: 5e-7, beta: 0.1 },
    eval: { problems: 256, n: 16, every: 50, temperature: 1 },
  },
};

export interface ExperimentOptions {
  budget: Budget;
  budgetName: string;
  out: string;
  /** Where RESULTS.md goes (null: not written). */
  results: string | null;
  seed: number;
  methods: readonly ExperimentMethod[];
  /** An HF-layout Qwen2 directory to start from (else the budget's preset, seeded). */
  model: string | null;
  /** The command line, for RESULTS.md. */
  command: string;
  log?: (s: string) => void;
  /** The device to run on (default: a new one). */
  device?: Device;
}

/** One evaluation point of a phase. */
export interface EvalPoint {
  step: number;
  passAtK: Record<string, number>;
  meanReward: number;
  seconds: number;
}

/** What a finished phase leaves in its result.json. */
export interface PhaseResult {
  method: "sft" | ExperimentMethod;
  /** The settings it ran with (a different value means it is run again). */
  key: string;
  evals: EvalPoint[];
  /** Per optimizer step (RL methods): frac_reward_zero_std, reward and accuracy. */
  fracZeroStd: number[];
  reward: number[];
  accuracy: number[];
  /** Per optimizer step (every method): the global gradient norm before clipping. */
  gradNorm: number[];
  /** Per step (LENS): the fraction of groups with no correct sample, which LENS still uses. */
  negativeGroups: number[];
  /** Per step, the final values of a few method metrics (DPO/IPO: rewards/accuracies, margins). */
  last: Record<string, number>;
  seconds: number;
  /** The commit of the code that ran the phase (when git could tell). */
  commit?: string;
  /** DPO/IPO: how the pairs were made, and how long sampling and scoring them took. */
  pairs?: {
    total: number;
    chosenFromSamples: number;
    rejectedFromSamples: number;
    seconds?: number;
  };
}

const KS = [1, 4, 8, 16];

function point(step: number, r: EvalResult): EvalPoint {
  return { step, passAtK: r.passAtK, meanReward: r.meanReward, seconds: r.seconds };
}

async function readResult(dir: string, key: string): Promise<PhaseResult | null> {
  try {
    const r = JSON.parse(await Deno.readTextFile(join(dir, "result.json"))) as PhaseResult;
    return r.key === key ? r : null;
  } catch {
    return null;
  }
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

function writeJson(path: string, value: unknown): Promise<void> {
  return writeAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

function phaseOptions(b: Budget, trainer: TrainerName, seed: number): PhaseOptions {
  const rl = trainer === "rloo" || trainer === "grpo" || trainer === "lens";
  const pref = trainer === "dpo" || trainer === "ipo";
  const { steps, batch, lr } = rl
    ? { steps: b.rl.steps, batch: b.rl.prompts, lr: b.rl.lr }
    : pref
    ? b.pref
    : b.sft;
  return {
    trainer,
    steps,
    batchSize: batch,
    lr,
    objective: rl ? { beta: b.rl.beta } : pref ? { beta: b.pref.beta } : {},
    accumulation: 1,
    warmupSteps: 2,
    schedule: "cosine",
    minLrRatio: 0.1,
    weightDecay: 0,
    adamBetas: [0.9, 0.999],
    adamEps: 1e-8,
    clipNorm: 1,
    seed,
    groupSize: b.rl.groupSize,
    temperature: b.rl.temperature,
    maxNewTokens: b.rl.maxNewTokens,
    reward: "binary",
  };
}

export async function runExperiment(o: ExperimentOptions): Promise<{
  sft: PhaseResult;
  methods: PhaseResult[];
  seconds: number;
}> {
  const log = o.log ?? ((s: string) => console.log(s));
  const b = o.budget;
  const t0 = performance.now();
  // The code is loaded now, so the commit checked out now is the one that runs every phase.
  const commit = gitCommit();
  await Deno.mkdir(o.out, { recursive: true });
  const dev = o.device ?? await Device.create();
  const baseDir = o.model ??
    await ensureModel({ preset: b.preset, out: join(o.out, "base-model"), seed: o.seed }, log);
  const tok = await Tokenizer.default();
  const { train, held } = countdownSplits(
    { count: b.numbers, numberRange: b.numberRange, targetRange: b.targetRange },
    b.eval.problems,
    b.trainProblems,
    o.seed,
  );
  const evalOnce = async (model: Qwen2, label: string) => {
    const bar = new ProgressBar(`eval ${label}`, held.length);
    const r = await evaluate(model, tok, countdownTask, held, {
      n: b.eval.n,
      ks: KS,
      temperature: b.eval.temperature,
      maxNewTokens: b.rl.maxNewTokens,
      seeds: [o.seed],
      batchProblems: Math.max(1, Math.floor(128 / b.eval.n)),
    }, (done) => bar.update(done));
    const top = String(KS.filter((k) => k <= b.eval.n).pop() ?? 1);
    bar.finish({ "pass@1": r.passAtK["1"], [`pass@${top}`]: r.passAtK[top] });
    return r;
  };
  const loadModel = async (dir: string) => {
    const m = await Qwen2.load(dev, dir);
    m.tokenizer ??= tok;
    return m;
  };

  // 1. SFT from the base model, once.
  const sftDir = join(o.out, "sft");
  const sftModelDir = join(sftDir, "model");
  // What the SFT phase and its evaluations depend on (the RL and pair settings do not matter).
  const sftKey = JSON.stringify({
    base: baseDir,
    seed: o.seed,
    b: { ...b, rl: null, pref: null },
    evalTokens: b.rl.maxNewTokens,
  });
  let sft = await readResult(sftDir, sftKey);
  if (sft) log(`sft: done earlier (${sftDir}/result.json)`);
  else {
    sft = await runMethod("sft", sftKey, sftDir, baseDir, null);
  }

  // 2. Every method from the SFT model, with the SFT model as reference.
  const methods: PhaseResult[] = [];
  let pairsInfo: PhaseResult["pairs"] | undefined;
  let pairs: PhaseData<Problem> | null = null;
  for (const m of o.methods) {
    const key = JSON.stringify({ sft: sftKey, m, rl: b.rl, pref: b.pref, eval: b.eval });
    const dir = join(o.out, m);
    const done = await readResult(dir, key);
    if (done) {
      log(`${m}: done earlier (${dir}/result.json)`);
      methods.push(done);
      continue;
    }
    if ((m === "dpo" || m === "ipo") && !pairs) {
      ({ data: pairs, info: pairsInfo } = await verifierPairs());
    }
    methods.push(await runMethod(m, key, dir, sftModelDir, pairs));
  }
  const seconds = (performance.now() - t0) / 1000;
  await writeJson(join(o.out, "summary.json"), {
    budget: o.budgetName,
    settings: b,
    seed: o.seed,
    sft,
    methods,
    seconds,
  });
  if (o.results) {
    await Deno.mkdir(dirname(o.results), { recursive: true });
    await writeAtomic(o.results, resultsMarkdown(o, dev, baseDir, sft, methods, seconds));
    log(`wrote ${o.results}`);
  }
  return { sft, methods, seconds };

  /** Pairs from the SFT model's samples of the prompts the RL methods see, cached on disk. */
  async function verifierPairs() {
    const path = join(o.out, "pairs.jsonl");
    const key = JSON.stringify({ sft: sftKey, rl: b.rl });
    const problems: Problem[] = [];
    for (let s = 0; s < b.rl.steps; s++) {
      problems.push(...stepItems(train, s, b.rl.prompts, o.seed));
    }
    let rows;
    let seconds: number | undefined;
    try {
      const cached = JSON.parse(await Deno.readTextFile(`${path}.key`));
      if (cached.key !== key) throw new Error("stale");
      seconds = cached.seconds;
      rows = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
      log(`pairs: ${rows.length} from ${path}`);
    } catch {
      const tp = performance.now();
      const model = await loadModel(sftModelDir);
      const bar = new ProgressBar("pairs", problems.length);
      rows = await buildPairs(model, tok, problems, {
        samples: b.rl.groupSize,
        maxNewTokens: b.rl.maxNewTokens,
        temperature: b.rl.temperature,
        seed: o.seed,
        // The solver's chosen completion in the style the SFT model learned.
        solverCompletion: b.sft.style === "answer"
          ? (_p, t) => answerOnly(t.answer)
          : b.sft.style === "mixed"
          ? undefined
          : (p, t) => renderTrace(p, t.plan, b.sft.style as TraceStyle).response,
      }, (d) => bar.update(d));
      bar.finish({ pairs: rows.length });
      model.dispose();
      await writeAtomic(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
      seconds = (performance.now() - tp) / 1000;
      await writeJson(`${path}.key`, { key, seconds });
    }
    const info = {
      seconds,
      total: rows.length,
      chosenFromSamples: rows.filter((r) => r.chosen_source === "sample").length,
      rejectedFromSamples: rows.filter((r) => r.rejected_source === "sample").length,
    };
    return { data: { kind: "pairs", pairs: rows } as PhaseData<Problem>, info };
  }

  async function runMethod(
    method: "sft" | ExperimentMethod,
    key: string,
    dir: string,
    from: string,
    pairData: PhaseData<Problem> | null,
  ): Promise<PhaseResult> {
    const tm = performance.now();
    await Deno.mkdir(dir, { recursive: true });
    const opts = phaseOptions(b, method, o.seed);
    await writeJson(join(dir, "config.json"), { method, ...opts, budget: o.budgetName });
    const model = await loadModel(from);
    const ref = method === "sft" ? null : await loadModel(from);
    const metrics = openMetrics(dir);
    const evals = openEvals(dir);
    const result: PhaseResult = {
      method,
      key,
      evals: [],
      fracZeroStd: [],
      reward: [],
      accuracy: [],
      gradNorm: [],
      negativeGroups: [],
      last: {},
      seconds: 0,
      commit,
      ...(method === "dpo" || method === "ipo" ? { pairs: pairsInfo } : {}),
    };
    const evalAt = async (step: number) => {
      const r = await evalOnce(model, `${method} step ${step}`);
      evals.write(evalRow(step, { ...r, task: "countdown" }, method));
      result.evals.push(point(step, r));
    };
    // The SFT model's evaluation is the shared starting point of every method.
    if (method !== "sft" && sft) {
      const start = sft.evals[sft.evals.length - 1];
      result.evals.push({ ...start, step: 0 });
      evals.write(
        evalRow(0, { ...start, problems: held.length, n: b.eval.n, task: "countdown" }, method),
      );
    }
    if (method === "sft") await evalAt(0);
    const data: PhaseData<Problem> = method === "sft"
      ? { kind: "sft", examples: traceExamples(train, b.sft.style, tok, o.seed) }
      : pairData ?? { kind: "rl", task: countdownTask, problems: train };
    const opt = makeOptimizer(model, opts);
    const bar = new ProgressBar(method, opts.steps);
    try {
      await runPhase(model, ref, tok, opt, opts, data, 0, {
        onStep: async ({ step, metrics: row }) => {
          metrics.write({ step, phase: method, ...row });
          if ("frac_reward_zero_std" in row && data.kind === "rl") {
            result.fracZeroStd.push(row.frac_reward_zero_std);
            result.reward.push(row.reward);
            result.accuracy.push(row.accuracy);
          }
          result.gradNorm.push(row.grad_norm);
          if ("lens/negative_groups" in row) {
            result.negativeGroups.push(row["lens/negative_groups"]);
          }
          for (const k of ["loss", "rewards/accuracies", "rewards/margins", "kl"]) {
            if (k in row) result.last[k] = row[k];
          }
          bar.update(step, {
            loss: row.loss,
            ...("reward" in row ? { reward: row.reward } : {}),
            ...("frac_reward_zero_std" in row ? { zero_std: row.frac_reward_zero_std } : {}),
          });
          if (method !== "sft" && step % b.eval.every === 0 && step < opts.steps) {
            await evalAt(step);
          }
        },
      });
      bar.finish();
      if (method === "sft") await model.save(sftModelDir);
      await evalAt(opts.steps);
    } finally {
      metrics.close();
      evals.close();
      opt.dispose();
      ref?.dispose();
      model.dispose();
    }
    renderReport(dir);
    result.seconds = (performance.now() - tm) / 1000;
    await writeJson(join(dir, "result.json"), result);
    const end = result.evals[result.evals.length - 1].passAtK;
    log(
      `${method}: ${result.seconds.toFixed(0)} s; pass@1 ${fmt(end["1"])}, pass@16 ${
        fmt(end["16"])
      }`,
    );
    return result;
  }
}

/** The "answer" SFT style: an empty think block, then the equation. */
function answerOnly(equation: string): string {
  return `<think>\n</think>\n<answer>${equation}</answer>`;
}

/** SFT examples: one solver-written trace per problem, in `style` (or every style in turn). */
function traceExamples(
  problems: readonly Problem[],
  style: SftStyle,
  tok: Tokenizer,
  seed: number,
): SftExample[] {
  if (style === "mixed") return sftExamples(countdownTask, problems, tok, seed);
  const rng = new Rng(seed);
  return problems.map((p) => {
    const sol = solve(p.numbers, p.target)!;
    const t = makeTrace(p, sol, { style: style === "answer" ? "compact" : style, rng });
    const completion = style === "answer" ? answerOnly(t.answer) : t.response;
    return { prompt: countdownTask.prompt(p, tok), completion };
  });
}

function fmt(x: number | undefined, digits = 3): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function cpuName(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    const m = info.match(/^model name\s*:\s*(.+)$/m);
    return m ? m[1].trim() : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

function gitCommit(): string {
  try {
    const out = new Deno.Command("git", {
      args: ["describe", "--always", "--dirty", "--abbrev=7"],
      stderr: "null",
    })
      .outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}

/** Plain statements read off the figures (no judgement beyond what they show). */
export function reading(sft: PhaseResult, methods: PhaseResult[], ks: number[]): string[] {
  const out: string[] = [];
  const kMax = String(ks[ks.length - 1]);
  const start = sft.evals[sft.evals.length - 1];
  const all = [...sft.evals, ...methods.flatMap((m) => m.evals)];
  if (all.every((e) => !(e.passAtK[kMax] > 0))) {
    out.push(
      `No evaluation point solved a held-out problem (pass@${kMax} = 0 everywhere, the SFT ` +
        "model included), so this run cannot rank the methods by pass@k; the training signal " +
        "below is what it shows.",
    );
  } else {
    for (const k of ["1", kMax]) {
      const ends = methods.map((m) => ({ m: m.method, v: m.evals[m.evals.length - 1].passAtK[k] }));
      if (ends.length === 0) continue;
      const best = ends.reduce((a, b) => (b.v > a.v ? b : a), ends[0]);
      const points = methods.flatMap((m) =>
        m.evals.slice(1).map((e) => ({ m: m.method, step: e.step, v: e.passAtK[k] }))
      );
      const peak = points.reduce((a, b) => (b.v > a.v ? b : a), points[0]);
      out.push(
        `pass@${k} at the end: ${ends.map((e) => `${e.m} ${fmt(e.v)}`).join(", ")}; the SFT ` +
          `start was ${fmt(start.passAtK[k])}; ${
            best.v > 0 ? `highest: ${best.m}` : "none above 0"
          }${
            peak && peak.v > 0
              ? `; highest during training: ${peak.m} at step ${peak.step} (${fmt(peak.v)})`
              : ""
          }.`,
      );
    }
  }
  for (const m of methods.filter((x) => x.fracZeroStd.length > 0)) {
    const z = mean(m.fracZeroStd);
    // Steps where every group had equal rewards: no policy-gradient signal for RLOO or GRPO.
    const flat = m.fracZeroStd.flatMap((f, i) => (f === 1 ? [m.gradNorm[i]] : []));
    const onFlat = flat.length
      ? `; on the ${flat.length} of ${m.fracZeroStd.length} steps where every group had ` +
        `equal rewards its mean grad_norm was ${fmt(mean(flat), 4)}`
      : "";
    const name = m.method.toUpperCase();
    if (m.method === "lens") {
      out.push(
        `${name}: frac_reward_zero_std ${fmt(z)}, mean grad_norm ${fmt(mean(m.gradNorm), 4)}` +
          `${onFlat}${
            flat.length && mean(flat) > 0 ? " (its all-wrong groups still gave a gradient)" : ""
          }.`,
      );
    } else if (z === 1) {
      out.push(
        `${name}: every group had equal rewards at every step (frac_reward_zero_std 1.000), ` +
          `so its policy-gradient term was zero and only the KL term acted (mean grad_norm ${
            fmt(mean(m.gradNorm), 4)
          }).`,
      );
    } else {
      out.push(
        `${name}: frac_reward_zero_std ${fmt(z)}, mean reward ${fmt(mean(m.reward))}, mean ` +
          `grad_norm ${fmt(mean(m.gradNorm), 4)}${onFlat}.`,
      );
    }
  }
  return out;
}

/** RESULTS.md: the command, the machine, the settings and every figure measured. */
export function resultsMarkdown(
  o: ExperimentOptions,
  dev: { description: string; isFallback: boolean },
  baseDir: string,
  sft: PhaseResult,
  methods: PhaseResult[],
  seconds: number,
): string {
  const b = o.budget;
  const ks = KS.filter((k) => k <= b.eval.n);
  const L: string[] = [];
  L.push("# Countdown: RLOO, GRPO and LENS against DPO and IPO, from one SFT checkpoint", "");
  L.push(
    "Written by `deno task experiment countdown`; every figure below was measured by the run " +
      "described here. Re-running the command rewrites this file.",
    "",
  );
  L.push("## Run", "");
  L.push(`- Command: \`${o.command}\``);
  L.push(`- Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`);
  const commits = [...new Set([sft, ...methods].map((m) => m.commit ?? "not recorded"))];
  L.push(`- Code: commit ${commits.join(", ")} ran the phases; ${gitCommit()} wrote this file`);
  L.push(
    `- Machine: ${cpuName()}, ${navigator.hardwareConcurrency} logical cores; WebGPU adapter ` +
      `${dev.description}${
        dev.isFallback ? " (software fallback)" : ""
      }; Deno ${Deno.version.deno}`,
  );
  const pairSeconds = methods.find((m) => m.pairs)?.pairs?.seconds ?? 0;
  const measured = [sft, ...methods].reduce((a, m) => a + m.seconds, 0) + pairSeconds;
  L.push(
    `- Time: ${(measured / 60).toFixed(1)} min for the phases below${
      methods.some((m) => m.pairs) && !pairSeconds ? " (pair building not recorded)" : ""
    }; this invocation ${(seconds / 60).toFixed(1)} min (finished phases are reused)`,
  );
  const base = o.model
    ? `the checkpoint in \`${o.model}\``
    : `the \`${b.preset}\` preset with seeded random weights (${
      (parameterCount(PRESETS[b.preset]) / 1e6).toFixed(1)
    }M parameters, most of them the 151,936-row embedding)`;
  L.push(`- Base model: ${base}, written to \`${baseDir}\``, "");
  L.push("## Settings", "");
  L.push(
    `- Countdown with ${b.numbers} numbers in ${b.numberRange.join("..")}, targets in ` +
      `${b.targetRange.join("..")}; ${b.trainProblems} generated training problems; ` +
      `${b.eval.problems} held-out problems.`,
  );
  L.push(
    `- SFT: ${b.sft.steps} steps x ${b.sft.batch} solver-written completions (${
      b.sft.style === "mixed"
        ? "traces of every style in turn"
        : b.sft.style === "answer"
        ? "the equation alone after an empty think block"
        : `${b.sft.style}-style traces`
    }), lr ${b.sft.lr}, cosine schedule.`,
  );
  L.push(
    `- RLOO, GRPO, LENS: ${b.rl.steps} steps x ${b.rl.prompts} prompts x G = ` +
      `${b.rl.groupSize} samples (${b.rl.steps * b.rl.prompts * b.rl.groupSize} rollouts each, ` +
      `the same prompts and sampling seeds for all three), temperature ${b.rl.temperature}, at ` +
      `most ${b.rl.maxNewTokens} new tokens, reward 1 if the official scorer gives full marks ` +
      `else 0, KL coefficient ${b.rl.beta} to the SFT model, lr ${b.rl.lr}.`,
  );
  L.push(
    `- DPO, IPO: ${b.pref.steps} steps x ${b.pref.batch} pairs, beta ${b.pref.beta}, lr ` +
      `${b.pref.lr}; pairs built by the verifier from the SFT model's own samples of the same ` +
      `prompts (G = ${b.rl.groupSize} each): chosen a verified-correct sample (else the ` +
      `solver's solution written in the SFT completion style), rejected a wrong sample (else a ` +
      `synthetic hard negative).`,
  );
  L.push(
    `- Evaluation: n = ${b.eval.n} samples per held-out problem at temperature ` +
      `${b.eval.temperature}; unbiased pass@k; at the start (the SFT model), every ` +
      `${b.eval.every} steps and at the end.`,
    "",
  );
  L.push("## pass@k on the held-out problems", "");
  L.push(`| method | step | ${ks.map((k) => `pass@${k}`).join(" | ")} | mean dense reward |`);
  L.push(`|---|---:|${ks.map(() => "---:").join("|")}|---:|`);
  const row = (name: string, e: EvalPoint) =>
    `| ${name} | ${e.step} | ${ks.map((k) => fmt(e.passAtK[String(k)])).join(" | ")} | ${
      fmt(e.meanReward)
    } |`;
  L.push(row("base (before SFT)", sft.evals[0]));
  L.push(row("SFT", { ...sft.evals[sft.evals.length - 1], step: b.sft.steps }));
  for (const m of methods) for (const e of m.evals.slice(1)) L.push(row(m.method, e));
  L.push("");
  const rl = methods.filter((m) => m.fracZeroStd.length > 0);
  L.push("## What the figures say", "");
  for (const line of reading(sft, methods, ks)) L.push(`- ${line}`);
  L.push("");
  if (rl.length) {
    L.push("## Training signal of the RL methods", "");
    L.push(
      "`frac_reward_zero_std` is the fraction of prompt groups whose G rewards are all equal: " +
        "such a group gives RLOO and GRPO no policy-gradient signal (only the KL term acts), " +
        "while LENS still pushes down the wrong samples of an all-wrong group. `grad_norm` is " +
        "the global gradient norm before clipping, averaged over steps.",
      "",
    );
    L.push(
      "| method | frac_reward_zero_std (mean) | first quarter | last quarter | reward (mean) | " +
        "grad_norm (mean) | frac_reward_zero_std per step |",
    );
    L.push("|---|---:|---:|---:|---:|---:|---|");
    for (const m of rl) {
      const q = Math.max(1, Math.floor(m.fracZeroStd.length / 4));
      L.push(
        `| ${m.method} | ${fmt(mean(m.fracZeroStd))} | ${fmt(mean(m.fracZeroStd.slice(0, q)))} | ${
          fmt(mean(m.fracZeroStd.slice(-q)))
        } | ${fmt(mean(m.reward))} | ${fmt(mean(m.gradNorm), 4)} | ${
          m.fracZeroStd.map((x) => x.toFixed(2)).join(" ")
        } |`,
      );
    }
    const lens = rl.find((m) => m.negativeGroups.length > 0);
    if (lens) {
      L.push(
        "",
        `LENS: on average ${fmt(mean(lens.negativeGroups))} of its groups per step had no ` +
          "correct sample and were still used (de-meaned calibrated rewards, weight alpha).",
      );
    }
    L.push("");
  }
  const pref = methods.filter((m) => m.pairs);
  if (pref.length) {
    const p = pref[0].pairs!;
    L.push("## Preference pairs", "");
    L.push(
      `${p.total} pairs; chosen from the model's samples: ${p.chosenFromSamples} (the rest ` +
        `solver-written); rejected from samples: ${p.rejectedFromSamples} (the rest synthetic ` +
        `hard negatives).`,
      "",
    );
    L.push(
      "| method | final loss | rewards/accuracies | rewards/margins | grad_norm (mean) |",
    );
    L.push("|---|---:|---:|---:|---:|");
    for (const m of pref) {
      L.push(
        `| ${m.method} | ${fmt(m.last.loss, 4)} | ${fmt(m.last["rewards/accuracies"])} | ${
          fmt(m.last["rewards/margins"], 4)
        } | ${fmt(mean(m.gradNorm), 4)} |`,
      );
    }
    L.push("");
  }
  L.push("## Time per phase", "");
  L.push("| phase | minutes |", "|---|---:|");
  for (const m of [sft, ...methods]) L.push(`| ${m.method} | ${(m.seconds / 60).toFixed(1)} |`);
  if (pairSeconds) L.push(`| pairs (sampling and scoring) | ${(pairSeconds / 60).toFixed(1)} |`);
  L.push("");
  L.push(
    "Per-step metrics, evaluations and plots are in each phase's directory under " +
      `\`${o.out}\` (metrics.jsonl, evals.jsonl, report.html).`,
    "",
  );
  return L.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      budget: { type: "string", default: "small" },
      model: { type: "string" },
      out: { type: "string" },
      results: { type: "string" },
      seed: { type: "string", default: "0" },
      methods: { type: "string", default: EXPERIMENT_METHODS.join(",") },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  const usage = "usage: deno task experiment countdown [--budget small|full] [--model DIR] " +
    "[--out DIR] [--results FILE] [--seed S] [--methods rloo,grpo,lens,dpo,ipo]";
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== "countdown") {
    console.error(`experiment: the one experiment is "countdown"\n${usage}`);
    return 2;
  }
  const name = values.budget!;
  if (name !== "small" && name !== "full") {
    console.error(`experiment: --budget must be small or full, got "${name}"`);
    return 2;
  }
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    console.error(`experiment: --seed must be a non-negative integer, got "${values.seed}"`);
    return 2;
  }
  const methods = values.methods!.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = methods.filter((m) => !(EXPERIMENT_METHODS as readonly string[]).includes(m));
  if (unknown.length || methods.length === 0) {
    console.error(
      `experiment: unknown method(s) ${unknown.join(", ") || "(none given)"}; ` +
        `choose from ${EXPERIMENT_METHODS.join(",")}`,
    );
    return 2;
  }
  if (name === "full" && !values.model) {
    console.error(
      "experiment: note: the full budget is sized for a GPU and a pretrained Qwen2.5 checkpoint " +
        "(--model DIR); without one it starts from the randomly initialized small preset",
    );
  }
  await runExperiment({
    budget: BUDGETS[name],
    budgetName: name,
    out: values.out ?? join("runs", `experiment-countdown-${name}`),
    results: values.results ?? join("experiments", "countdown", "RESULTS.md"),
    seed,
    methods: methods as ExperimentMethod[],
    model: values.model ?? null,
    command: ["deno task experiment", ...argv].join(" "),
  });
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
