/**
 * Countdown solver speed (CPU, no GPU work): median ms to find one solution for random solvable
 * (generated) problems of 3, 4 and 6 numbers, and on raw random draws (some unsolvable) (numbers 1..99; targets 1..100, and 100..999 for 6 numbers),
 * plus the slowest kind of case (an exhaustive proof of no solution with 6 numbers). No peer: the figure
 * is the claim ("3-4 numbers in milliseconds, 6 numbers typically under a second").
 * Run alone: `deno run -A bench/countdown_solver_bench.ts [--quick]`.
 */
import { Rng } from "../engine/rng.ts";
import { generateProblems } from "../verifiers/countdown/problems.ts";
import { solve, solveAll } from "../verifiers/countdown/solver.ts";
import type { Bench, BenchResult } from "./harness.ts";

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Times `solve` on `n` solvable problems (from the generator) and on `n` raw random draws. */
function timeProblems(count: number, target: [number, number], n: number, seed: number) {
  const problems = generateProblems(n, seed, { count, targetRange: target });
  const times: number[] = [];
  for (const p of problems) {
    const t0 = performance.now();
    if (!solve(p.numbers, p.target)) throw new Error(`generated problem unsolved: ${p.numbers}`);
    times.push(performance.now() - t0);
  }
  const rng = new Rng(seed + 1);
  const raw: number[] = [];
  let solved = 0;
  for (let i = 0; i < n; i++) {
    const numbers = Array.from({ length: count }, () => 1 + rng.int(99));
    const t = target[0] + rng.int(target[1] - target[0] + 1);
    const t0 = performance.now();
    if (solve(numbers, t)) solved++;
    raw.push(performance.now() - t0);
  }
  return {
    ms: median(times),
    max: Math.max(...times),
    rawMs: median(raw),
    rawMax: Math.max(...raw),
    solved,
  };
}

export function runSolverBench(quick: boolean): BenchResult[] {
  const n = quick ? 5 : 60;
  const out: BenchResult[] = [];
  const cases: [number, [number, number]][] = [[3, [1, 100]], [4, [1, 100]], [6, [100, 999]]];
  for (const [count, target] of cases) {
    const r = timeProblems(count, target, n, 1000 + count);
    out.push({
      name: `countdown_solve`,
      shape: [count, target[1]],
      ms: r.ms,
      extra: {
        max_ms: r.max.toFixed(2),
        random_draws_median_ms: r.rawMs.toFixed(2),
        random_draws_max_ms: r.rawMax.toFixed(2),
        random_draws_solvable: `${r.solved}/${n}`,
      },
    });
  }
  let t0 = performance.now();
  const none = solve([2, 3, 7, 11, 13, 17], 9999);
  out.push({
    name: "countdown_nosol",
    shape: [6, 9999],
    ms: performance.now() - t0,
    extra: { found: String(none !== null) },
  });
  t0 = performance.now();
  const all = solveAll([3, 7, 25, 50], 100);
  out.push({
    name: "countdown_all",
    shape: [4, 100],
    ms: performance.now() - t0,
    extra: { solutions: all.length },
  });
  return out;
}

export const benches: Bench[] = [{
  name: "countdown_solver",
  run: ({ quick }) => Promise.resolve(runSolverBench(quick)),
}];

if (import.meta.main) {
  const { formatResult } = await import("./harness.ts");
  for (const r of runSolverBench(Deno.args.includes("--quick"))) console.log(formatResult(r));
}
