import assert from "node:assert/strict";
import { main } from "../verifiers/verify_cli.ts";

const CLI = new URL("../verifiers/verify_cli.ts", import.meta.url).pathname;

function readRows(path: string): Record<string, unknown>[] {
  return Deno.readTextFileSync(path).split("\n").filter((l) => l.length > 0).map((l) =>
    JSON.parse(l)
  );
}

/** Runs `fn` with console.error captured; returns its result and the captured lines. */
async function captureErrors<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const lines: string[] = [];
  const orig = console.error;
  const origLog = console.log;
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return [await fn(), lines];
  } finally {
    console.error = orig;
    console.log = origLog;
  }
}

Deno.test("main() scores countdown rows and skips a malformed line with its line number", async () => {
  const dir = await Deno.makeTempDir();
  const inp = `${dir}/cd.jsonl`, out = `${dir}/cd_out.jsonl`;
  const rows = [
    JSON.stringify({
      id: 1,
      response: "<answer>44 - 19 + 35</answer>",
      numbers: [44, 19, 35],
      target: 60,
    }),
    "{not json",
    JSON.stringify({
      id: 3,
      response: "<answer>44 + 19</answer>",
      numbers: [44, 19, 35],
      target: 60,
    }),
    JSON.stringify({ id: 4, response: "x", numbers: "44", target: 60 }),
    "",
    JSON.stringify({ id: 6, response: "no tag", numbers: [1, 2], target: 3 }),
  ];
  await Deno.writeTextFile(inp, rows.join("\n") + "\n");
  const [code, msgs] = await captureErrors(() =>
    main(["--task", "countdown", "--in", inp, "--out", out])
  );
  assert.equal(code, 0);
  const got = readRows(out);
  assert.deepEqual(got.map((r) => [r.id, r.score]), [[1, 1], [3, 0.1], [6, 0]]);
  assert.deepEqual(got[0].numbers, [44, 19, 35]);
  assert.ok(msgs.some((m) => m.startsWith(`${inp}:2: invalid JSON`)), msgs.join("\n"));
  assert.ok(msgs.some((m) => m.startsWith(`${inp}:4: field \`numbers\``)), msgs.join("\n"));
  assert.ok(
    msgs.some((m) => /rows 5, scored 3, skipped 2, mean score 0\.3667/.test(m)),
    msgs.join("\n"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("main() marks math rows correct with the extracted answer", async () => {
  const dir = await Deno.makeTempDir();
  const inp = `${dir}/m.jsonl`, out = `${dir}/m_out.jsonl`;
  const rows = [
    JSON.stringify({ response: "so \\boxed{\\dfrac{1}{2}}", gold: "0.5" }),
    JSON.stringify({ response: "work\n#### 1,000", gold: "1000" }),
    JSON.stringify({ response: "\\boxed{[0,1]}", gold: "[0,1)" }),
    JSON.stringify({ response: "I give up", gold: "3" }),
    JSON.stringify({ response: "\\boxed{3}" }),
    JSON.stringify([1, 2]),
  ];
  await Deno.writeTextFile(inp, rows.join("\n"));
  const [code, msgs] = await captureErrors(() =>
    main(["--task", "math", "--in", inp, "--out", out])
  );
  assert.equal(code, 0);
  const got = readRows(out);
  assert.deepEqual(got.map((r) => [r.correct, r.extracted]), [
    [true, "\\dfrac{1}{2}"],
    [true, "1,000"],
    [false, "[0,1]"],
    [false, null],
  ]);
  assert.equal(got[0].gold, "0.5");
  assert.ok(msgs.some((m) => m.startsWith(`${inp}:5: field \`gold\``)), msgs.join("\n"));
  assert.ok(msgs.some((m) => m.startsWith(`${inp}:6: row must be a JSON object`)), msgs.join("\n"));
  assert.ok(
    msgs.some((m) => /rows 6, scored 4, skipped 2, accuracy 0\.5000/.test(m)),
    msgs.join("\n"),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("main() rejects bad arguments and a missing input file with exit code 2", async () => {
  const [c1] = await captureErrors(() => main(["--task", "chess", "--in", "a", "--out", "b"]));
  assert.equal(c1, 2);
  const [c2] = await captureErrors(() => main(["--task", "math"]));
  assert.equal(c2, 2);
  const [c3] = await captureErrors(() => main(["--bogus"]));
  assert.equal(c3, 2);
  const [c4, msgs] = await captureErrors(() =>
    main(["--task", "math", "--in", "/nonexistent/x.jsonl", "--out", "/tmp/y.jsonl"])
  );
  assert.equal(c4, 2);
  assert.ok(msgs.some((m) => m.includes("/nonexistent/x.jsonl")));
});

Deno.test("verify_cli.ts runs as a subprocess and writes scored rows", async () => {
  const dir = await Deno.makeTempDir();
  const inp = `${dir}/m.jsonl`, out = `${dir}/m_out.jsonl`;
  await Deno.writeTextFile(
    inp,
    [
      JSON.stringify({ response: "\\boxed{2\\sqrt{2}}", gold: "\\sqrt{8}" }),
      "oops",
      JSON.stringify({ response: "\\boxed{7}", gold: "8" }),
    ].join("\n") + "\n",
  );
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--task", "math", "--in", inp, "--out", out],
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(res.stdout);
  const stderr = new TextDecoder().decode(res.stderr);
  assert.equal(res.code, 0, stderr);
  assert.match(stderr, new RegExp(`${inp.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2: invalid JSON`));
  assert.match(stdout, /rows 3, scored 2, skipped 1, accuracy 0\.5000/);
  assert.deepEqual(readRows(out).map((r) => r.correct), [true, false]);
  await Deno.remove(dir, { recursive: true });
});
