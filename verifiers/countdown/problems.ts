/**
 * Countdown problems: a seeded generator that keeps only solvable problems (checked by the
 * solver), difficulty tiers for a curriculum, and JSONL files of `{"numbers": [...], "target": n}`.
 */
import { Rng } from "../../engine/rng.ts";
import { solve } from "./solver.ts";

export interface Problem {
  numbers: number[];
  target: number;
}

export interface GenerateOptions {
  /** How many numbers: a count, or an inclusive range [min, max] within 3..6. Default [3, 4]. */
  count?: number | [number, number];
  /** Inclusive range of each number. Default [1, 99]. */
  numberRange?: [number, number];
  /** Inclusive range of the target. Default [1, 100]. */
  targetRange?: [number, number];
  /** Require a solution with integer intermediates only. Default false. */
  integerOnly?: boolean;
  /** Draws before giving up on one problem. Default 10000. */
  maxAttempts?: number;
}

function checkRange(name: string, r: [number, number], lo = -Infinity): void {
  if (
    !Array.isArray(r) || r.length !== 2 || !Number.isSafeInteger(r[0]) ||
    !Number.isSafeInteger(r[1]) || r[0] > r[1] || r[0] < lo
  ) {
    throw new RangeError(`${name} must be integers [min, max] with min <= max, got ${r}`);
  }
}

function resolve(opts: GenerateOptions) {
  const count: [number, number] = typeof opts.count === "number"
    ? [opts.count, opts.count]
    : opts.count ?? [3, 4];
  checkRange("count", count);
  if (count[0] < 3 || count[1] > 6) throw new RangeError(`count must lie in 3..6, got ${count}`);
  const numberRange = opts.numberRange ?? [1, 99];
  const targetRange = opts.targetRange ?? [1, 100];
  checkRange("numberRange", numberRange, 0);
  checkRange("targetRange", targetRange);
  return {
    count,
    numberRange,
    targetRange,
    integerOnly: opts.integerOnly ?? false,
    maxAttempts: opts.maxAttempts ?? 10000,
  };
}

const between = (rng: Rng, [lo, hi]: [number, number]) => lo + rng.int(hi - lo + 1);

/**
 * One solvable problem: the count is drawn uniformly, then the numbers and the target are drawn
 * uniformly until the solver finds an equation. Throws when `maxAttempts` draws all fail.
 */
export function generateProblem(rng: Rng, opts: GenerateOptions = {}): Problem {
  const o = resolve(opts);
  const n = between(rng, o.count); // drawn once, so rejections do not skew the counts
  for (let attempt = 0; attempt < o.maxAttempts; attempt++) {
    const numbers = Array.from({ length: n }, () => between(rng, o.numberRange));
    const target = between(rng, o.targetRange);
    if (solve(numbers, target, { integerOnly: o.integerOnly })) return { numbers, target };
  }
  throw new Error(
    `no solvable problem in ${o.maxAttempts} draws (count ${o.count}, numbers ${o.numberRange}, ` +
      `targets ${o.targetRange})`,
  );
}

/** `n` solvable problems from `seed` (the same seed gives the same list). */
export function generateProblems(n: number, seed: number, opts: GenerateOptions = {}): Problem[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => generateProblem(rng, opts));
}

/** A curriculum stage: a count of numbers and a target band. */
export interface Tier {
  name: string;
  count: number;
  targetRange: [number, number];
}

/**
 * Tiers ordered by difficulty: count of numbers first (3 to 6), then target size within a count
 * (default bands [1, 100] and [101, 1000]).
 */
export function difficultyTiers(
  bands: [number, number][] = [[1, 100], [101, 1000]],
  counts: number[] = [3, 4, 5, 6],
): Tier[] {
  const out: Tier[] = [];
  for (const count of counts) {
    for (const b of bands) {
      out.push({ name: `n${count}-t${b[0]}-${b[1]}`, count, targetRange: b });
    }
  }
  return out;
}

/** Index of the tier a problem falls in (its count, then its target's band), or -1. */
export function tierOf(p: Problem, tiers: Tier[] = difficultyTiers()): number {
  return tiers.findIndex((t) =>
    t.count === p.numbers.length && p.target >= t.targetRange[0] && p.target <= t.targetRange[1]
  );
}

/**
 * `perTier` problems per tier, easiest tier first; each problem carries its tier index.
 * `opts.count`/`opts.targetRange` are taken from the tier.
 */
export function generateCurriculum(
  perTier: number,
  seed: number,
  tiers: Tier[] = difficultyTiers(),
  opts: Omit<GenerateOptions, "count" | "targetRange"> = {},
): (Problem & { tier: number })[] {
  const rng = new Rng(seed);
  const out: (Problem & { tier: number })[] = [];
  tiers.forEach((t, tier) => {
    for (let i = 0; i < perTier; i++) {
      const p = generateProblem(rng, { ...opts, count: t.count, targetRange: t.targetRange });
      out.push({ ...p, tier });
    }
  });
  return out;
}

/** A JSONL line that is not a problem; names the file and the 1-based line. */
export class ProblemFormatError extends Error {
  override name = "ProblemFormatError";
  constructor(readonly file: string, readonly line: number, readonly detail: string) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** Checks one parsed row; returns the reason it is not a problem, or null. */
function invalid(row: unknown): string | null {
  if (typeof row !== "object" || row === null || Array.isArray(row)) return "not a JSON object";
  const r = row as Record<string, unknown>;
  if (!Array.isArray(r.numbers)) return `"numbers" must be an array`;
  if (r.numbers.length === 0) return `"numbers" is empty`;
  for (const [i, x] of r.numbers.entries()) {
    if (typeof x !== "number" || !Number.isSafeInteger(x)) {
      return `"numbers"[${i}] = ${JSON.stringify(x)} is not an integer`;
    }
  }
  if (typeof r.target !== "number" || !Number.isSafeInteger(r.target)) {
    return `"target" = ${JSON.stringify(r.target)} is not an integer`;
  }
  return null;
}

/** Problems of a JSONL text (blank lines skipped; other keys ignored). */
export function parseProblemsJsonl(text: string, file = "<jsonl>"): Problem[] {
  const out: Problem[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new ProblemFormatError(file, i + 1, `invalid JSON: ${(e as Error).message}`);
    }
    const why = invalid(row);
    if (why) throw new ProblemFormatError(file, i + 1, why);
    const r = row as Problem;
    out.push({ numbers: [...r.numbers], target: r.target });
  }
  return out;
}

/** One `{"numbers":[...],"target":n}` line per problem, newline-terminated. */
export function formatProblemsJsonl(problems: readonly Problem[]): string {
  return problems.map((p) => JSON.stringify({ numbers: p.numbers, target: p.target }) + "\n")
    .join("");
}

export async function readProblemsJsonl(path: string): Promise<Problem[]> {
  return parseProblemsJsonl(await Deno.readTextFile(path), path);
}

export async function writeProblemsJsonl(path: string, problems: readonly Problem[]) {
  await Deno.writeTextFile(path, formatProblemsJsonl(problems));
}
