/**
 * Scores a JSONL file of model responses.
 *
 *   deno task verify --task countdown|math --in FILE.jsonl --out FILE.jsonl
 *
 * countdown rows: {response, numbers, target} -> row + `score` (0 | 0.1 | 1).
 * math rows: {response, gold} -> row + `correct` (boolean) + `extracted` (string | null).
 * A malformed line is reported on stderr as `FILE:LINE: reason` and skipped.
 * Exit code: 0 on success (even with skipped lines), 2 on bad arguments or unreadable input.
 */
import { parseArgs } from "node:util";
import { score as countdownScore } from "./countdown/score.ts";
import { extractAnswer } from "./math/extract.ts";
import { isEquivalent } from "./math/equivalence.ts";

const USAGE = "usage: verify --task countdown|math --in FILE.jsonl --out FILE.jsonl";

type Row = Record<string, unknown>;

/** Scores one parsed row; returns the output row or a reason it is malformed. */
function scoreRow(task: "countdown" | "math", row: Row): Row | string {
  if (typeof row.response !== "string") return "field `response` must be a string";
  if (task === "countdown") {
    const { numbers, target } = row;
    if (
      !Array.isArray(numbers) || !numbers.every((n) => typeof n === "number" && Number.isFinite(n))
    ) {
      return "field `numbers` must be an array of numbers";
    }
    if (typeof target !== "number" || !Number.isFinite(target)) {
      return "field `target` must be a number";
    }
    return { ...row, score: countdownScore(row.response, numbers as number[], target) };
  }
  let gold = row.gold;
  if (typeof gold === "number" && Number.isFinite(gold)) gold = String(gold);
  if (typeof gold !== "string") return "field `gold` must be a string";
  const extracted = extractAnswer(row.response);
  const correct = extracted !== null && isEquivalent(gold, extracted);
  return { ...row, correct, extracted };
}

/** Runs the CLI on `args`; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        task: { type: "string" },
        in: { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`verify: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const task = values.task;
  if (task !== "countdown" && task !== "math") {
    console.error(
      `verify: --task must be countdown or math, got ${JSON.stringify(task)}\n${USAGE}`,
    );
    return 2;
  }
  if (!values.in || !values.out) {
    console.error(`verify: --in and --out are required\n${USAGE}`);
    return 2;
  }
  const inPath = values.in;
  let text: string;
  try {
    text = await Deno.readTextFile(inPath);
  } catch (e) {
    console.error(`verify: cannot read ${inPath}: ${(e as Error).message}`);
    return 2;
  }
  const lines = text.split("\n");
  const out: string[] = [];
  let rows = 0, skipped = 0, total = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.trim().length === 0) continue;
    rows++;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      console.error(`${inPath}:${i + 1}: invalid JSON (${(e as Error).message})`);
      skipped++;
      continue;
    }
    if (row === null || typeof row !== "object" || Array.isArray(row)) {
      console.error(`${inPath}:${i + 1}: row must be a JSON object`);
      skipped++;
      continue;
    }
    const result = scoreRow(task, row as Row);
    if (typeof result === "string") {
      console.error(`${inPath}:${i + 1}: ${result}`);
      skipped++;
      continue;
    }
    total += task === "countdown" ? (result.score as number) : result.correct ? 1 : 0;
    out.push(JSON.stringify(result));
  }
  try {
    await Deno.writeTextFile(values.out, out.length > 0 ? out.join("\n") + "\n" : "");
  } catch (e) {
    console.error(`verify: cannot write ${values.out}: ${(e as Error).message}`);
    return 2;
  }
  const scored = out.length;
  const mean = scored > 0 ? total / scored : 0;
  const what = task === "countdown" ? "mean score" : "accuracy";
  console.log(
    `verify ${task}: rows ${rows}, scored ${scored}, skipped ${skipped}, ${what} ${
      mean.toFixed(4)
    }`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
