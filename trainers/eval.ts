/**
 * `deno task eval --model DIR --task countdown|gsm8k|math500 [--n 16] [--k 1,4,8,16]
 * [--temperature 0.6] [--seeds 2] [--limit N] [--max-new-tokens 64] [--out FILE.json]`:
 * n samples per problem, verified, reported as unbiased pass@k averaged over problems and seeds,
 * the mean reward, a breakdown (Countdown by count of numbers, MATH by level and subject) and
 * failure categories.
 */
import { parseArgs } from "node:util";
import { Device } from "../engine/device.ts";
import { Qwen2 } from "../engine/qwen2.ts";
import { Tokenizer } from "../engine/tokenizer.ts";
import { generateProblems, type Problem } from "../verifiers/countdown/problems.ts";
import { extract, score } from "../verifiers/countdown/score.ts";
import { passAtK } from "../verifiers/pass_at_k.ts";
import { ProgressBar } from "./progress.ts";
import { rollout } from "./rollout.ts";
import {
  countdownTask,
  gsm8kExtract,
  loadGsm8k,
  loadMath500,
  type Math500Problem,
  math500Task,
  type Task,
} from "./tasks.ts";
import { extractAnswer } from "../verifiers/math/extract.ts";

/** Failure category of one Countdown completion. */
export function countdownFailure(text: string, p: Problem, truncated: boolean): string | null {
  const s = score(text, p.numbers, p.target);
  if (s === 1) return null;
  const ans = extract(text);
  if (ans === null) return truncated ? "truncated" : "no_answer";
  const used = (ans.match(/\d+/g) ?? []).map(Number).sort((a, b) => a - b);
  const want = [...p.numbers].sort((a, b) => a - b);
  const same = used.length === want.length && used.every((x, i) => x === want[i]);
  return same ? "wrong_value" : "wrong_numbers";
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string" },
      task: { type: "string", default: "countdown" },
      n: { type: "string", default: "16" },
      k: { type: "string", default: "1,4,8,16" },
      temperature: { type: "string", default: "0.6" },
      seeds: { type: "string", default: "2" },
      limit: { type: "string", default: "100" },
      "max-new-tokens": { type: "string", default: "64" },
      numbers: { type: "string", default: "3" },
      out: { type: "string" },
    },
    strict: true,
  });
  if (!values.model) {
    console.error("eval: --model DIR is required (a Hugging Face-layout Qwen2 directory)");
    return 2;
  }
  const num = (name: string, v: string) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new RangeError(`eval: --${name} ${v} is not a number`);
    return x;
  };
  const n = num("n", values.n!), seeds = num("seeds", values.seeds!);
  const ks = values.k!.split(",").map((s) => num("k", s)).filter((k) => k <= n);
  const limit = num("limit", values.limit!);
  const temperature = num("temperature", values.temperature!);
  const maxNew = num("max-new-tokens", values["max-new-tokens"]!);
  const dev = await Device.create();
  const model = await Qwen2.load(dev, values.model);
  const tok = model.tokenizer ?? await Tokenizer.default();
  model.tokenizer = tok;
  let problems: unknown[];
  let task: Task<unknown>;
  if (values.task === "countdown") {
    const counts = values.numbers!.split(",").map((s) => num("numbers", s));
    problems = counts.flatMap((c, i) =>
      generateProblems(Math.ceil(limit / counts.length), 1_000_000 + i, { count: c })
    );
    task = countdownTask as Task<unknown>;
  } else if (values.task === "gsm8k") {
    problems = (await loadGsm8k("test")).slice(0, limit);
    task = (await import("./tasks.ts")).gsm8kTask as Task<unknown>;
  } else if (values.task === "math500") {
    problems = (await loadMath500()).slice(0, limit);
    task = math500Task as Task<unknown>;
  } else {
    console.error(`eval: --task ${values.task} is not supported (countdown, gsm8k, math500)`);
    return 2;
  }
  const counts: number[] = [];
  const breakdown: Record<string, { problems: number; correct: number; samples: number }> = {};
  const failures: Record<string, number> = {};
  let rewardSum = 0, samples = 0;
  const bar = new ProgressBar("eval", problems.length * seeds);
  const per = Math.max(1, Math.floor(64 / n));
  let done = 0;
  for (let s = 0; s < seeds; s++) {
    for (let i = 0; i < problems.length; i += per) {
      const batch = problems.slice(i, i + per);
      const r = await rollout(model, tok, task, batch, {
        samples: n,
        maxNewTokens: maxNew,
        temperature,
        seed: s * 7919 + i,
      });
      batch.forEach((p, j) => {
        let c = 0;
        for (let g = 0; g < n; g++) {
          const row = j * n + g;
          if (r.correct[row]) c++;
          rewardSum += r.rewards[row];
          samples++;
          let fail: string | null = null;
          if (values.task === "countdown") {
            fail = countdownFailure(r.completions[row], p as Problem, r.truncated[row]);
          } else if (!r.correct[row]) {
            const got = values.task === "math500"
              ? extractAnswer(r.completions[row])
              : gsm8kExtract(r.completions[row]);
            fail = got === null ? (r.truncated[row] ? "truncated" : "no_answer") : "wrong_value";
          }
          if (fail) failures[fail] = (failures[fail] ?? 0) + 1;
        }
        counts.push(c);
        const keys = values.task === "countdown"
          ? [`${(p as Problem).numbers.length} numbers`]
          : values.task === "math500"
          ? [`level ${(p as Math500Problem).level}`, (p as Math500Problem).subject]
          : ["all"];
        for (const key of keys) {
          const b = breakdown[key] ??= { problems: 0, correct: 0, samples: 0 };
          b.problems++;
          b.correct += c;
          b.samples += n;
        }
      });
      done += batch.length;
      bar.update(done);
    }
  }
  bar.finish();
  const pass: Record<string, number> = {};
  for (const k of ks) {
    pass[String(k)] = counts.reduce((a, c) => a + passAtK(n, c, k), 0) / counts.length;
  }
  const result = {
    task: values.task,
    model: values.model,
    n,
    seeds,
    pass_at_k: pass,
    mean_score: rewardSum / Math.max(1, samples),
    breakdown,
    failures,
  };
  console.log(`${values.task}: ${problems.length} problems x ${n} samples x ${seeds} seeds`);
  for (const [k, v] of Object.entries(pass)) console.log(`  pass@${k.padEnd(3)} ${v.toFixed(4)}`);
  console.log(`  mean score ${result.mean_score.toFixed(4)}`);
  for (const [k, v] of Object.entries(breakdown)) {
    console.log(`  ${k}: ${(v.correct / v.samples).toFixed(4)} of ${v.samples} samples correct`);
  }
  console.log(`  failures: ${JSON.stringify(failures)}`);
  if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(result, null, 2) + "\n");
  model.dispose();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
