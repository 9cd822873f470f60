import assert from "node:assert/strict";
import { extractAnswer } from "../verifiers/math/extract.ts";
import { isEquivalent, normalizeAnswer } from "../verifiers/math/equivalence.ts";

const MATH500 = new URL("../../shared/data/math500/test.jsonl", import.meta.url);
const GSM8K = new URL("../../shared/data/gsm8k/test.jsonl", import.meta.url);

function readJsonl<T>(url: URL): T[] {
  return Deno.readTextFileSync(url).split("\n").filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as T);
}

interface MathRow {
  problem: string;
  solution: string;
  answer: string;
}

Deno.test("the answer extracted from each MATH-500 solution matches its reference for >= 99%", () => {
  const rows = readJsonl<MathRow>(MATH500);
  assert.equal(rows.length, 500);
  const misses: string[] = [];
  for (const r of rows) {
    const got = extractAnswer(r.solution);
    if (!isEquivalent(r.answer, got)) misses.push(`${r.answer} vs ${got}`);
  }
  const rate = 1 - misses.length / rows.length;
  console.log(
    `MATH-500 extraction agreement: ${(100 * rate).toFixed(1)}% (${misses.length} misses)`,
  );
  assert.ok(rate >= 0.99, `agreement ${rate}; misses:\n${misses.join("\n")}`);
});

Deno.test("answers of different MATH-500 records are judged different for >= 99% of sampled pairs", () => {
  const rows = readJsonl<MathRow>(MATH500);
  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  let pairs = 0;
  const wrong: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const a = rows[Math.floor(next() * rows.length)].answer;
    const b = rows[Math.floor(next() * rows.length)].answer;
    if (normalizeAnswer(a) === normalizeAnswer(b)) continue;
    pairs++;
    if (isEquivalent(a, b)) wrong.push(`${a} ~ ${b}`);
  }
  const rate = 1 - wrong.length / pairs;
  console.log(`MATH-500 distinct pairs judged different: ${(100 * rate).toFixed(2)}% of ${pairs}`);
  assert.ok(pairs > 4000, `only ${pairs} pairs`);
  assert.ok(rate >= 0.99, `rate ${rate}; judged equal:\n${wrong.join("\n")}`);
});

Deno.test("every GSM8K test answer extracts from its #### line and parses as a number", () => {
  const rows = readJsonl<{ question: string; answer: string }>(GSM8K);
  assert.equal(rows.length, 1319);
  let withCommas = 0;
  for (const [i, r] of rows.entries()) {
    const got = extractAnswer(r.answer);
    assert.ok(got !== null, `row ${i + 1}: no answer`);
    if (got.includes(",")) withCommas++;
    const n = Number(normalizeAnswer(got));
    assert.ok(Number.isFinite(n), `row ${i + 1}: ${got} does not parse`);
    assert.equal(n, Number(got.replace(/,/g, "")), `row ${i + 1}`);
    assert.ok(isEquivalent(got, String(n)), `row ${i + 1}: ${got} vs ${n}`);
  }
  assert.ok(withCommas > 0, "expected some answers with thousands separators");
});

Deno.test("MATH-500 answers stay equivalent under LaTeX rewrites and change under a digit edit", () => {
  const rows = readJsonl<MathRow>(MATH500);
  const rewrites = (a: string): string[] => [
    `$ ${a} $`,
    a.replace(/\\frac/g, "\\dfrac"),
    ` ${a.replace(/,/g, ", ")} `,
    a.includes("\\left") ? a : a.replace(/\(/g, "\\left(").replace(/\)/g, "\\right)"),
    `${a}.`,
  ];
  let kept = 0, total = 0, changed = 0, edited = 0;
  const keptMisses: string[] = [], changedMisses: string[] = [];
  for (const r of rows) {
    for (const v of rewrites(r.answer)) {
      total++;
      if (isEquivalent(r.answer, v)) kept++;
      else keptMisses.push(`${r.answer} vs ${v}`);
    }
    const m = /\d/.exec(r.answer);
    if (m) {
      const d = (Number(m[0]) + 1) % 10;
      const v = r.answer.slice(0, m.index) + d + r.answer.slice(m.index + 1);
      edited++;
      if (!isEquivalent(r.answer, v)) changed++;
      else changedMisses.push(`${r.answer} ~ ${v}`);
    }
  }
  console.log(
    `rewrites kept: ${(100 * kept / total).toFixed(2)}% of ${total}; ` +
      `digit edits judged different: ${(100 * changed / edited).toFixed(2)}% of ${edited}`,
  );
  assert.ok(kept / total >= 0.99, keptMisses.join("\n"));
  assert.ok(changed / edited >= 0.99, changedMisses.join("\n"));
});
