/**
 * `deno task pairs --task countdown --model DIR --samples N --out FILE.jsonl [--problems P]
 * [--seed S] [--temperature T] [--max-new-tokens M] [--numbers 3]`: preference pairs from the
 * model's own samples, scored by the official Countdown scorer. Per problem, chosen is a
 * verified-correct sample (else a solver-written trace) and rejected is a wrong sample (else a
 * synthetic hard negative, buckets in turn). Each row carries what verifier-weighted DPO needs:
 * `wrongness` (1 - official score of the rejected), `confidence` (the model's mean token
 * probability of the rejected completion) and `perplexity` (exp of its mean token NLL).
 */
import { parseArgs } from "node:util";
import { Device } from "../engine/device.ts";
import { Qwen2 } from "../engine/qwen2.ts";
import { Rng } from "../engine/rng.ts";
import { Tokenizer } from "../engine/tokenizer.ts";
import { makeNegative, NEGATIVE_BUCKETS } from "../verifiers/countdown/negatives.ts";
import { generateProblems, type Problem } from "../verifiers/countdown/problems.ts";
import { score } from "../verifiers/countdown/score.ts";
import { solve } from "../verifiers/countdown/solver.ts";
import { makeTrace, type Trace } from "../verifiers/countdown/traces.ts";
import { ProgressBar } from "./progress.ts";
import { rollout } from "./rollout.ts";
import { completionMask } from "./step.ts";
import { countdownTask } from "./tasks.ts";

export interface PairRow {
  prompt: string;
  chosen: string;
  rejected: string;
  numbers: number[];
  target: number;
  /** Where each side came from: "sample", "solver" or a hard-negative bucket. */
  chosen_source: string;
  rejected_source: string;
  wrongness: number;
  confidence: number;
  perplexity: number;
}

export interface PairOptions {
  /** Samples per problem. */
  samples: number;
  maxNewTokens: number;
  temperature: number;
  seed: number;
  /**
   * The chosen completion when no sample is correct (default: a solver-written trace of a random
   * style). The experiment passes the completion style its SFT model was trained on.
   */
  solverCompletion?: (p: Problem, trace: Trace) => string;
}

/**
 * Preference pairs from the model's own samples: per problem, chosen is a verified-correct
 * sample (else a solver trace) and rejected a wrong sample (else a synthetic hard negative).
 */
export async function buildPairs(
  model: Qwen2,
  tok: Tokenizer,
  problems: readonly Problem[],
  o: PairOptions,
  onProgress?: (done: number) => void,
): Promise<PairRow[]> {
  const G = o.samples;
  const rng = new Rng(o.seed);
  const rows: PairRow[] = [];
  const per = Math.max(1, Math.floor(64 / Math.max(1, G)));
  for (let i = 0; i < problems.length; i += per) {
    const batch = problems.slice(i, i + per);
    const r = await rollout(model, tok, countdownTask, batch, {
      samples: G,
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      seed: o.seed * 7919 + i,
    });
    for (const [j, p] of batch.entries()) {
      const idx = Array.from({ length: G }, (_, g) => j * G + g);
      const good = idx.find((k) => r.correct[k]);
      const bad = idx.find((k) => !r.correct[k]);
      const sol = solve(p.numbers, p.target);
      if (!sol) continue;
      const trace = makeTrace(p, sol, { rng });
      let rejected: string | null = null, rejectedSource = "sample";
      if (bad !== undefined) rejected = r.completions[bad];
      else {
        for (let b = 0; b < NEGATIVE_BUCKETS.length && !rejected; b++) {
          const bucket = NEGATIVE_BUCKETS[(i + j + b) % NEGATIVE_BUCKETS.length];
          const neg = makeNegative(p, trace, bucket);
          if (neg) [rejected, rejectedSource] = [neg.response, bucket];
        }
      }
      if (!rejected) continue;
      const prompt = countdownTask.prompt(p, tok);
      // The model's token log-probs of the rejected completion give confidence and perplexity.
      const pIds = tok.encode(prompt), cIds = tok.encode(rejected);
      let meanLp = 0;
      if (cIds.length > 0) {
        const seq = [...pIds, ...cIds];
        // The LM head on the completion's positions only.
        const rows = completionMask([seq], [pIds.length]);
        const lp = (await model.logprobsWith([seq], { rows })).logp[0].subarray(pIds.length - 1);
        meanLp = lp.reduce((a: number, b: number) => a + b, 0) / lp.length;
      }
      rows.push({
        prompt,
        chosen: good !== undefined
          ? r.completions[good]
          : o.solverCompletion?.(p, trace) ?? trace.response,
        rejected,
        numbers: p.numbers,
        target: p.target,
        chosen_source: good !== undefined ? "sample" : "solver",
        rejected_source: rejectedSource,
        wrongness: 1 - score(rejected, p.numbers, p.target),
        confidence: Math.exp(meanLp),
        perplexity: Math.exp(-meanLp),
      });
    }
    onProgress?.(Math.min(problems.length, i + per));
  }
  return rows;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      task: { type: "string", default: "countdown" },
      model: { type: "string" },
      samples: { type: "string", default: "8" },
      problems: { type: "string", default: "64" },
      seed: { type: "string", default: "0" },
      temperature: { type: "string", default: "1" },
      "max-new-tokens": { type: "string", default: "64" },
      numbers: { type: "string", default: "3" },
      out: { type: "string" },
    },
    strict: true,
  });
  if (values.task !== "countdown") {
    console.error(`pairs: --task ${values.task} is not supported (countdown)`);
    return 2;
  }
  if (!values.model || !values.out) {
    console.error("pairs: --model DIR and --out FILE.jsonl are required");
    return 2;
  }
  const int = (name: string, v: string) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) {
      throw new RangeError(`pairs: --${name} ${v} is not an integer`);
    }
    return x;
  };
  const G = int("samples", values.samples!), P = int("problems", values.problems!);
  const seed = int("seed", values.seed!);
  const dev = await Device.create();
  const model = await Qwen2.load(dev, values.model);
  const tok = model.tokenizer ?? await Tokenizer.default();
  model.tokenizer = tok;
  const problems = generateProblems(P, seed + 5000, { count: int("numbers", values.numbers!) });
  const bar = new ProgressBar("pairs", problems.length);
  const rows = await buildPairs(model, tok, problems, {
    samples: G,
    maxNewTokens: int("max-new-tokens", values["max-new-tokens"]!),
    temperature: Number(values.temperature),
    seed,
  }, (done) => bar.update(done));
  bar.finish();
  const tmp = `${values.out}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, rows.map((x) => JSON.stringify(x)).join("\n") + "\n");
  await Deno.rename(tmp, values.out);
  const fromSamples = rows.filter((x) => x.rejected_source === "sample").length;
  console.log(
    `wrote ${rows.length} pairs to ${values.out} (${fromSamples} rejected from samples, ` +
      `${rows.length - fromSamples} synthetic hard negatives; ` +
      `${rows.filter((x) => x.chosen_source === "sample").length} chosen from samples)`,
  );
  model.dispose();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
