import assert from "node:assert/strict";
import { Rng } from "../engine/rng.ts";
import {
  difficultyTiers,
  formatProblemsJsonl,
  generateCurriculum,
  generateProblem,
  generateProblems,
  parseProblemsJsonl,
  ProblemFormatError,
  readProblemsJsonl,
  tierOf,
  writeProblemsJsonl,
} from "../verifiers/countdown/problems.ts";
import { solve } from "../verifiers/countdown/solver.ts";

Deno.test("generateProblems() gives the same list for one seed and another for another", () => {
  const a = generateProblems(20, 5), b = generateProblems(20, 5), c = generateProblems(20, 6);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("generateProblems() keeps counts and ranges, and every problem is solvable", () => {
  const opts = { count: [3, 5] as [number, number], numberRange: [2, 20] as [number, number] };
  const ps = generateProblems(40, 1, { ...opts, targetRange: [10, 50] });
  const counts = new Set<number>();
  for (const p of ps) {
    counts.add(p.numbers.length);
    assert.ok(p.numbers.length >= 3 && p.numbers.length <= 5);
    assert.ok(p.numbers.every((n) => Number.isInteger(n) && n >= 2 && n <= 20));
    assert.ok(p.target >= 10 && p.target <= 50);
    assert.ok(solve(p.numbers, p.target), `${p.numbers} -> ${p.target}`);
  }
  assert.equal(counts.size, 3);
  for (const p of generateProblems(10, 2, { count: 4, integerOnly: true })) {
    assert.equal(p.numbers.length, 4);
    assert.ok(solve(p.numbers, p.target, { integerOnly: true }));
  }
});

Deno.test("generateProblem() rejects bad options and reports an impossible request", () => {
  const rng = new Rng(0);
  assert.throws(() => generateProblem(rng, { count: 7 }), RangeError);
  assert.throws(() => generateProblem(rng, { numberRange: [5, 1] }), RangeError);
  assert.throws(
    () =>
      generateProblem(rng, {
        count: 3,
        numberRange: [1, 1],
        targetRange: [50, 60],
        maxAttempts: 30,
      }),
    /no solvable problem in 30 draws/,
  );
});

Deno.test("difficultyTiers() orders by count then target, and the curriculum follows it", () => {
  const tiers = difficultyTiers();
  assert.deepEqual(tiers.map((t) => t.count), [3, 3, 4, 4, 5, 5, 6, 6]);
  assert.ok(tiers[0].targetRange[1] < tiers[1].targetRange[0]);
  const cur = generateCurriculum(2, 3, tiers.slice(0, 4));
  assert.equal(cur.length, 8);
  for (let i = 0; i < cur.length; i++) {
    assert.equal(cur[i].tier, Math.floor(i / 2));
    assert.equal(tierOf(cur[i], tiers), cur[i].tier);
    assert.ok(solve(cur[i].numbers, cur[i].target));
  }
  assert.equal(tierOf({ numbers: [1, 2], target: 3 }, tiers), -1);
});

Deno.test("problems round-trip through JSONL text and files", async () => {
  const ps = generateProblems(5, 9);
  const text = formatProblemsJsonl(ps);
  assert.equal(text.split("\n").length, 6);
  assert.match(text.split("\n")[0], /^\{"numbers":\[[\d,]+\],"target":\d+\}$/);
  assert.deepEqual(parseProblemsJsonl(text + "\n\n"), ps);
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await writeProblemsJsonl(path, ps);
    assert.deepEqual(await readProblemsJsonl(path), ps);
  } finally {
    await Deno.remove(path);
  }
  // extra keys are ignored
  assert.deepEqual(parseProblemsJsonl('{"numbers":[1,2],"target":3,"id":7}'), [{
    numbers: [1, 2],
    target: 3,
  }]);
});

Deno.test("a malformed JSONL line is reported with its file and line number", async () => {
  const bad: [string, RegExp][] = [
    ['{"numbers":[1,2],"target":3}\n{oops', /data\.jsonl:2: invalid JSON/],
    [
      '{"numbers":[1,2],"target":3}\n\n{"numbers":[1,2.5],"target":3}',
      /data\.jsonl:3: "numbers"\[1\] = 2.5/,
    ],
    ['{"numbers":"1,2","target":3}', /data\.jsonl:1: "numbers" must be an array/],
    ['{"numbers":[1,2]}', /data\.jsonl:1: "target" = undefined is not an integer/],
    ["[1,2,3]", /data\.jsonl:1: not a JSON object/],
    ['{"numbers":[],"target":3}', /data\.jsonl:1: "numbers" is empty/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseProblemsJsonl(text, "data.jsonl"), (e: unknown) => {
      assert.ok(e instanceof ProblemFormatError);
      assert.match(e.message, re);
      return true;
    });
  }
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  try {
    await Deno.writeTextFile(path, '{"numbers":[1],"target":1}\nnot json\n');
    await assert.rejects(() => readProblemsJsonl(path), (e: unknown) => {
      assert.ok(e instanceof ProblemFormatError && e.file === path && e.line === 2);
      return true;
    });
  } finally {
    await Deno.remove(path);
  }
});
