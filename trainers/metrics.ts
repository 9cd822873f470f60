/**
 * Per-step metrics and evaluation logs of a run (DESIGN.md, "Files a run writes").
 *
 *   runs/<name>/metrics.jsonl  one JSON object per optimizer step, `step` first
 *   runs/<name>/evals.jsonl    one JSON object per evaluation (pass@k of a checkpoint)
 *
 * Row conventions:
 *   step        integer >= 0; strictly increasing in metrics.jsonl, non-decreasing in
 *               evals.jsonl (several evaluations may share a step: tasks, before/after)
 *   metrics     TRL's names where they exist (`METRIC_NAMES`), plus `step_time` (s),
 *               `tokens_per_second` and `timing/<part>` (s) for generation, scoring,
 *               forward, backward and optimizer
 *   evals       `task`, `n` (samples per problem), `pass@<k>` for each k, optional
 *               `mean_score`, `problems`, `eval_time`, `phase`, `model` (see `evalRow`)
 *   values      numbers, strings, booleans or null. JSON has no NaN or Infinity, so a
 *               non-finite number is written as the string "NaN", "Infinity" or "-Infinity"
 *               and `readMetrics` turns it back into the number (a skipped step keeps its
 *               non-finite loss in the log).
 *
 * Each row is written with one write call and no buffering, so a crash leaves at most a
 * partial last line. `readMetrics` ignores an unparsable last line that has no trailing
 * newline (a write in progress); any other malformed line is an error naming file and line.
 *
 * Resume: opening a writer with `resumeStep = N` rewrites the file (temporary file + rename)
 * keeping only rows with step <= N, so after the resumed run writes steps N+1.. the file is
 * byte-identical to an uninterrupted run's, except for the wall-clock fields
 * (`isTimingKey`). Write the evaluation of step N before the checkpoint of step N, so that a
 * crash between the two repeats the evaluation instead of losing it.
 */

import { dirname } from "node:path";

/** TRL's metric names, in the order DESIGN.md lists them. */
export const METRIC_NAMES = [
  "loss",
  "grad_norm",
  "learning_rate",
  "reward",
  "reward_std",
  "frac_reward_zero_std",
  "kl",
  "entropy",
  "clip_ratio",
  "completions/mean_length",
  "rewards/chosen",
  "rewards/margins",
  "rewards/accuracies",
] as const;

/** The parts of a step whose wall-clock time is logged as `timing/<part>` (seconds). */
export const TIMING_PARTS = ["generation", "scoring", "forward", "backward", "optimizer"] as const;
export type TimingPart = typeof TIMING_PARTS[number];

export type MetricValue = number | string | boolean | null;

/** One line of metrics.jsonl or evals.jsonl. */
export interface MetricRow {
  step: number;
  [key: string]: MetricValue;
}

/** True for wall-clock fields, which differ between otherwise identical runs. */
export function isTimingKey(key: string): boolean {
  return key === "step_time" || key === "tokens_per_second" || key === "eval_time" ||
    key.startsWith("timing/");
}

/** The row without its wall-clock fields (what a resumed run must reproduce bit for bit). */
export function withoutTimings(row: MetricRow): MetricRow {
  const out: MetricRow = { step: row.step };
  for (const [k, v] of Object.entries(row)) if (!isTimingKey(k)) out[k] = v;
  return out;
}

function encodeValue(v: MetricValue): MetricValue {
  if (typeof v === "number" && !Number.isFinite(v)) {
    return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  }
  return v;
}

function decodeValue(v: MetricValue): MetricValue {
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return v;
}

/** The JSON line (without newline) for a row: `step` first, non-finite numbers as strings. */
export function encodeRow(row: MetricRow, where = "metrics row"): string {
  if (!Number.isInteger(row.step) || row.step < 0) {
    throw new Error(`${where}: step must be an integer >= 0, got ${String(row.step)}`);
  }
  const out: Record<string, MetricValue> = { step: row.step };
  for (const [k, v] of Object.entries(row)) {
    if (k === "step") continue;
    if (v === undefined) continue;
    const t = typeof v;
    if (v !== null && t !== "number" && t !== "string" && t !== "boolean") {
      throw new Error(
        `${where}: field "${k}" at step ${row.step} has type ${t}; expected a ` +
          `number, string, boolean or null`,
      );
    }
    out[k] = encodeValue(v);
  }
  return JSON.stringify(out);
}

/**
 * Parses one line. `where` is "file:line" for error messages. Non-finite strings become
 * numbers again.
 */
export function decodeRow(line: string, where: string): MetricRow {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new Error(`${where}: expected a JSON object, got ${Array.isArray(obj) ? "array" : obj}`);
  }
  const rec = obj as Record<string, unknown>;
  if (typeof rec.step !== "number" || !Number.isInteger(rec.step) || rec.step < 0) {
    throw new Error(`${where}: "step" must be an integer >= 0, got ${JSON.stringify(rec.step)}`);
  }
  const row: MetricRow = { step: rec.step };
  for (const [k, v] of Object.entries(rec)) {
    if (k === "step") continue;
    if (v !== null && typeof v === "object") {
      throw new Error(
        `${where}: field "${k}" is an ${Array.isArray(v) ? "array" : "object"}; ` +
          `rows hold numbers, strings, booleans or null`,
      );
    }
    row[k] = decodeValue(v as MetricValue);
  }
  return row;
}

/**
 * Reads a metrics.jsonl or evals.jsonl. Blank lines are skipped; a malformed line throws an
 * error naming `path:line`, except an unparsable final line without a trailing newline (a
 * write in progress when read), which is ignored. A missing file throws Deno.errors.NotFound.
 */
export function readMetrics(path: string): MetricRow[] {
  return parseMetrics(Deno.readTextFileSync(path), path);
}

/** `readMetrics` on text already in memory; `path` only names the source in errors. */
export function parseMetrics(text: string, path: string): MetricRow[] {
  const lines = text.split("\n");
  const rows: MetricRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    const last = i === lines.length - 1; // no newline after it
    try {
      rows.push(decodeRow(line, `${path}:${i + 1}`));
    } catch (e) {
      if (last) break;
      throw e;
    }
  }
  return rows;
}

export interface MetricsWriterOptions {
  /**
   * Resume after this step: rows with a larger step are dropped from the existing file and
   * writing continues after the rest. Undefined: a fresh run, the file is emptied.
   */
  resumeStep?: number;
  /** "increasing" (metrics.jsonl, default) or "nondecreasing" (evals.jsonl) step order. */
  order?: "increasing" | "nondecreasing";
}

/** Appends rows to a JSONL log, one unbuffered write per row. */
export class MetricsWriter {
  readonly path: string;
  readonly order: "increasing" | "nondecreasing";
  #file: Deno.FsFile | null;
  #lastStep: number;
  #enc = new TextEncoder();

  constructor(path: string, opts: MetricsWriterOptions = {}) {
    this.path = path;
    this.order = opts.order ?? "increasing";
    Deno.mkdirSync(dirname(path), { recursive: true });
    this.#lastStep = -1;
    if (opts.resumeStep === undefined) {
      Deno.writeTextFileSync(path, "");
    } else {
      const resume = opts.resumeStep;
      if (!Number.isInteger(resume) || resume < 0) {
        throw new Error(`${path}: resumeStep must be an integer >= 0, got ${resume}`);
      }
      // Kept lines are copied verbatim, so the prefix stays byte-identical.
      let text = "";
      try {
        text = Deno.readTextFileSync(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      let body = "";
      const lines = text.split("\n");
      for (let i = 0; i < lines.length; i++) {
        if (lines[i].trim() === "") continue;
        let row: MetricRow;
        try {
          row = decodeRow(lines[i], `${path}:${i + 1}`);
        } catch (e) {
          if (i === lines.length - 1) break; // partial last write of the interrupted run
          throw e;
        }
        if (row.step > resume) continue;
        body += lines[i] + "\n";
        this.#lastStep = Math.max(this.#lastStep, row.step);
      }
      const tmp = `${path}.tmp`;
      Deno.writeTextFileSync(tmp, body);
      Deno.renameSync(tmp, path);
    }
    this.#file = Deno.openSync(path, { append: true, create: true });
  }

  /** The largest step written so far (-1 when none). */
  get lastStep(): number {
    return this.#lastStep;
  }

  /** Appends one row; its step must follow the previous one's (see `order`). */
  write(row: MetricRow): void {
    if (this.#file === null) throw new Error(`${this.path}: write after close`);
    const line = encodeRow(row, this.path) + "\n";
    const ok = this.order === "increasing" ? row.step > this.#lastStep : row.step >= this.#lastStep;
    if (!ok) {
      throw new Error(
        `${this.path}: step ${row.step} written after step ${this.#lastStep} ` +
          `(steps must be ${
            this.order === "increasing" ? "strictly increasing" : "non-decreasing"
          })`,
      );
    }
    const bytes = this.#enc.encode(line);
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    this.#lastStep = row.step;
  }

  close(): void {
    if (this.#file === null) return;
    this.#file.close();
    this.#file = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** runs/<name>/metrics.jsonl, strictly increasing steps. */
export function openMetrics(runDir: string, resumeStep?: number): MetricsWriter {
  return new MetricsWriter(`${runDir}/metrics.jsonl`, { resumeStep, order: "increasing" });
}

/** runs/<name>/evals.jsonl, non-decreasing steps (several evaluations may share a step). */
export function openEvals(runDir: string, resumeStep?: number): MetricsWriter {
  return new MetricsWriter(`${runDir}/evals.jsonl`, { resumeStep, order: "nondecreasing" });
}

/**
 * An evaluation summary, in either spelling: the JSON of `deno task eval --out` (issue 7:
 * `pass_at_k`, `mean_score`) or the `EvalResult` of trainers/evaluate.ts (`passAtK`,
 * `meanReward`, `problems`, `seconds`).
 */
export interface EvalSummary {
  task: string;
  n: number;
  pass_at_k?: Record<string, number>;
  passAtK?: Record<string, number>;
  mean_score?: number;
  meanReward?: number;
  problems?: number;
  seconds?: number;
  model?: string;
}

/**
 * An evals.jsonl row: `{"1": x, "4": y}` flattened to `"pass@1": x, "pass@4": y` in increasing
 * k, plus `mean_score`, `problems`, `eval_time` (s) and `model` when given.
 */
export function evalRow(step: number, result: EvalSummary, phase?: string): MetricRow {
  const pass = result.pass_at_k ?? result.passAtK;
  if (!pass) throw new Error(`evalRow(step ${step}, ${result.task}): no pass_at_k / passAtK`);
  const row: MetricRow = { step };
  if (phase !== undefined) row.phase = phase;
  row.task = result.task;
  row.n = result.n;
  if (result.problems !== undefined) row.problems = result.problems;
  const ks = Object.keys(pass).sort((a, b) => Number(a) - Number(b));
  for (const k of ks) row[`pass@${k}`] = pass[k];
  const mean = result.mean_score ?? result.meanReward;
  if (mean !== undefined) row.mean_score = mean;
  if (result.seconds !== undefined) row.eval_time = result.seconds;
  if (result.model !== undefined) row.model = result.model;
  return row;
}

/**
 * Accumulates wall-clock seconds per part of a step. `fields()` gives the `timing/<part>`
 * entries of a metrics row; `reset()` starts the next step.
 */
export class StepTimer {
  #acc = new Map<string, number>();
  #now: () => number;

  /** `now` returns milliseconds (performance.now by default; injectable for tests). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** Adds `seconds` to a part. */
  add(part: TimingPart | string, seconds: number): void {
    this.#acc.set(part, (this.#acc.get(part) ?? 0) + seconds);
  }

  /** Runs `fn`, adding its duration to `part` (also when it throws). */
  time<T>(part: TimingPart | string, fn: () => T): T {
    const t0 = this.#now();
    try {
      return fn();
    } finally {
      this.add(part, (this.#now() - t0) / 1000);
    }
  }

  /** Awaits `fn`, adding its duration to `part` (also when it rejects). */
  async timeAsync<T>(part: TimingPart | string, fn: () => Promise<T>): Promise<T> {
    const t0 = this.#now();
    try {
      return await fn();
    } finally {
      this.add(part, (this.#now() - t0) / 1000);
    }
  }

  /** `{ "timing/<part>": seconds }` for every part timed since the last reset. */
  fields(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.#acc) out[`timing/${k}`] = v;
    return out;
  }

  reset(): void {
    this.#acc.clear();
  }
}
