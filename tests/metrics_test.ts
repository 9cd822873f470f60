import assert from "node:assert/strict";
import {
  decodeRow,
  encodeRow,
  evalRow,
  isTimingKey,
  METRIC_NAMES,
  MetricsWriter,
  openEvals,
  openMetrics,
  parseMetrics,
  readMetrics,
  StepTimer,
  withoutTimings,
} from "../trainers/metrics.ts";

/** A deterministic fake step: every TRL name plus timings that differ run to run. */
function fakeRow(step: number, jitter: number) {
  const row: Record<string, number> & { step: number } = { step };
  METRIC_NAMES.forEach((k, i) => (row[k] = Math.sin(step * 0.7 + i) / (i + 1)));
  row.step_time = 0.5 + jitter;
  row.tokens_per_second = 1000 / (0.5 + jitter);
  row["timing/forward"] = 0.2 + jitter;
  return row;
}

Deno.test("MetricsWriter writes one JSON object per step, step first, readable by readMetrics", () => {
  const dir = Deno.makeTempDirSync();
  const w = openMetrics(dir);
  for (let s = 1; s <= 3; s++) w.write(fakeRow(s, 0));
  w.close();
  const text = Deno.readTextFileSync(`${dir}/metrics.jsonl`);
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.ok(text.endsWith("\n"));
  for (const [i, line] of lines.entries()) assert.ok(line.startsWith(`{"step":${i + 1},`), line);
  const rows = readMetrics(`${dir}/metrics.jsonl`);
  assert.deepEqual(rows, [1, 2, 3].map((s) => fakeRow(s, 0)));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("each row is on disk as soon as write() returns (no buffering)", () => {
  const dir = Deno.makeTempDirSync();
  const w = openMetrics(dir);
  w.write({ step: 1, loss: 2.5 });
  assert.deepEqual(readMetrics(`${dir}/metrics.jsonl`), [{ step: 1, loss: 2.5 }]);
  w.write({ step: 2, loss: 2.25 });
  assert.equal(readMetrics(`${dir}/metrics.jsonl`).length, 2);
  w.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("non-finite numbers round-trip through the strings NaN, Infinity and -Infinity", () => {
  const line = encodeRow({ step: 7, loss: NaN, grad_norm: Infinity, kl: -Infinity, skipped: true });
  assert.equal(
    line,
    `{"step":7,"loss":"NaN","grad_norm":"Infinity","kl":"-Infinity","skipped":true}`,
  );
  const row = decodeRow(line, "x:1");
  assert.ok(Number.isNaN(row.loss));
  assert.equal(row.grad_norm, Infinity);
  assert.equal(row.kl, -Infinity);
  assert.equal(row.skipped, true);
});

Deno.test("a resumed run's metrics.jsonl equals an uninterrupted run's, timings aside", () => {
  const a = Deno.makeTempDirSync(), b = Deno.makeTempDirSync();
  // Uninterrupted: steps 1..4.
  const wa = openMetrics(a);
  for (let s = 1; s <= 4; s++) wa.write(fakeRow(s, 0));
  wa.close();
  // Interrupted: steps 1..3 written, checkpoint at 2, crash mid-way through writing step 4.
  const wb = openMetrics(b);
  for (let s = 1; s <= 3; s++) wb.write(fakeRow(s, 0.01 * s));
  wb.close();
  Deno.writeTextFileSync(`${b}/metrics.jsonl`, `{"step":4,"loss":0.`, { append: true });
  const wr = openMetrics(b, 2);
  assert.equal(wr.lastStep, 2);
  for (let s = 3; s <= 4; s++) wr.write(fakeRow(s, 0.05));
  wr.close();
  const ra = readMetrics(`${a}/metrics.jsonl`), rb = readMetrics(`${b}/metrics.jsonl`);
  assert.deepEqual(rb.map((r) => r.step), [1, 2, 3, 4]);
  assert.deepEqual(rb.map(withoutTimings), ra.map(withoutTimings));
  // Without the wall-clock fields the files match byte for byte.
  const strip = (dir: string) =>
    Deno.readTextFileSync(`${dir}/metrics.jsonl`).trimEnd().split("\n")
      .map((l) => encodeRow(withoutTimings(decodeRow(l, dir))));
  assert.deepEqual(strip(b), strip(a));
  // Rows kept from before the resume are copied verbatim (their own timings).
  assert.equal(rb[0].step_time, 0.5 + 0.01);
  for (const d of [a, b]) Deno.removeSync(d, { recursive: true });
});

Deno.test("resuming with no metrics file yet starts an empty one", () => {
  const dir = Deno.makeTempDirSync();
  const w = openMetrics(`${dir}/sub`, 5);
  assert.equal(w.lastStep, -1);
  w.write({ step: 6, loss: 1 });
  w.close();
  assert.deepEqual(readMetrics(`${dir}/sub/metrics.jsonl`), [{ step: 6, loss: 1 }]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a fresh writer empties an existing metrics.jsonl", () => {
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(`${dir}/metrics.jsonl`, `{"step":1,"loss":3}\n`);
  const w = openMetrics(dir);
  w.write({ step: 1, loss: 4 });
  w.close();
  assert.deepEqual(readMetrics(`${dir}/metrics.jsonl`), [{ step: 1, loss: 4 }]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("metrics steps must increase; eval steps may repeat but not go back", () => {
  const dir = Deno.makeTempDirSync();
  const w = openMetrics(dir);
  w.write({ step: 3, loss: 1 });
  assert.throws(() => w.write({ step: 3, loss: 1 }), /metrics\.jsonl: step 3 written after step 3/);
  assert.throws(() => w.write({ step: 1.5, loss: 1 }), /step must be an integer/);
  w.close();
  const e = openEvals(dir);
  e.write({ step: 0, task: "countdown", "pass@1": 0.1 });
  e.write({ step: 0, task: "gsm8k", "pass@1": 0.2 });
  assert.throws(() => e.write({ step: -1 }), /step must be an integer >= 0/);
  e.write({ step: 5, task: "countdown", "pass@1": 0.3 });
  assert.throws(() => e.write({ step: 4 }), /evals\.jsonl: step 4 written after step 5/);
  e.close();
  assert.equal(readMetrics(`${dir}/evals.jsonl`).length, 3);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("readMetrics names the file and line of a malformed row", () => {
  const good = `{"step":1,"loss":1}\n`;
  assert.throws(
    () => parseMetrics(good + `{"step":2,"loss":}\n` + good, "run/metrics.jsonl"),
    /run\/metrics\.jsonl:2: not valid JSON/,
  );
  assert.throws(
    () => parseMetrics(good + `\n[1,2]\n`, "m.jsonl"),
    /m\.jsonl:3: expected a JSON object, got array/,
  );
  assert.throws(() => parseMetrics(`{"loss":1}\n`, "m.jsonl"), /m\.jsonl:1: "step" must be/);
  assert.throws(
    () => parseMetrics(`{"step":1,"x":{"a":1}}\n`, "m.jsonl"),
    /m\.jsonl:1: field "x" is an object/,
  );
  // A partial final line without newline is a write in progress, not an error.
  assert.deepEqual(parseMetrics(good + `{"step":2,"lo`, "m.jsonl"), [{ step: 1, loss: 1 }]);
  // The same text followed by a newline is a finished, malformed line.
  assert.throws(() => parseMetrics(good + `{"step":2,"lo\n`, "m.jsonl"), /m\.jsonl:2:/);
  assert.throws(() => readMetrics("/nonexistent/metrics.jsonl"), Deno.errors.NotFound);
});

Deno.test("encodeRow refuses values that are not numbers, strings, booleans or null", () => {
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => encodeRow({ step: 1, x: [1, 2] as any }, "metrics.jsonl"),
    /metrics\.jsonl: field "x" at step 1 has type object/,
  );
  assert.equal(encodeRow({ step: 1, a: null, b: "s" }), `{"step":1,"a":null,"b":"s"}`);
});

Deno.test("evalRow flattens pass_at_k into pass@k fields in increasing k", () => {
  const r = evalRow(
    10,
    { task: "countdown", n: 16, pass_at_k: { "16": 0.9, "1": 0.25, "4": 0.5 }, mean_score: 0.4 },
    "grpo",
  );
  assert.equal(
    encodeRow(r),
    `{"step":10,"phase":"grpo","task":"countdown","n":16,"pass@1":0.25,"pass@4":0.5,` +
      `"pass@16":0.9,"mean_score":0.4}`,
  );
});

Deno.test("evalRow() also takes evaluate()'s camelCase result and refuses one without pass@k", () => {
  const r = evalRow(3, {
    task: "gsm8k",
    n: 4,
    problems: 100,
    passAtK: { "4": 0.5, "1": 0.25 },
    meanReward: 0.3,
    seconds: 12.5,
  });
  assert.equal(
    encodeRow(r),
    `{"step":3,"task":"gsm8k","n":4,"problems":100,"pass@1":0.25,"pass@4":0.5,` +
      `"mean_score":0.3,"eval_time":12.5}`,
  );
  assert.throws(() => evalRow(3, { task: "gsm8k", n: 4 }), /evalRow\(step 3, gsm8k\)/);
});

Deno.test("isTimingKey() marks only wall-clock fields", () => {
  for (const k of ["step_time", "tokens_per_second", "timing/generation", "eval_time"]) {
    assert.ok(isTimingKey(k), k);
  }
  for (const k of [...METRIC_NAMES, "step", "phase"]) assert.ok(!isTimingKey(k), k);
});

Deno.test("StepTimer accumulates seconds per part, also when the timed call throws", async () => {
  let t = 0;
  const timer = new StepTimer(() => t);
  timer.time("forward", () => (t += 250));
  timer.time("forward", () => (t += 250));
  await timer.timeAsync("generation", () => Promise.resolve(t += 1500));
  assert.throws(() =>
    timer.time("backward", () => {
      t += 100;
      throw new Error("boom");
    }), /boom/);
  assert.deepEqual(timer.fields(), {
    "timing/forward": 0.5,
    "timing/generation": 1.5,
    "timing/backward": 0.1,
  });
  timer.reset();
  assert.deepEqual(timer.fields(), {});
});

Deno.test("MetricsWriter refuses writes after close and a bad resume step", () => {
  const dir = Deno.makeTempDirSync();
  const w = new MetricsWriter(`${dir}/m.jsonl`);
  w.close();
  assert.throws(() => w.write({ step: 1 }), /m\.jsonl: write after close/);
  assert.throws(() => new MetricsWriter(`${dir}/m.jsonl`, { resumeStep: -2 }), /resumeStep/);
  Deno.removeSync(dir, { recursive: true });
});
