/**
 * pass@k, the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models Trained
 * on Code", Eq. 1 and its numerically stable product form): with n samples of which c are
 * correct, `pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1..n} (1 - k / i)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { passAtK } from "./pass_at_k.ts";
 * assert.equal(passAtK(10, 0, 1), 0);
 * assert.equal(passAtK(10, 10, 5), 1);
 * assert.ok(Math.abs(passAtK(4, 1, 2) - 0.5) < 1e-12);
 * ```
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k)) {
    throw new RangeError(`passAtK: n, c and k must be integers (got ${n}, ${c}, ${k})`);
  }
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    throw new RangeError(`passAtK: need 1 <= k <= n and 0 <= c <= n (got n=${n}, c=${c}, k=${k})`);
  }
  if (n - c < k) return 1;
  // The product runs over the c largest i, each factor in (0, 1): no binomial overflow.
  let prod = 1;
  for (let i = n - c + 1; i <= n; i++) prod *= 1 - k / i;
  return 1 - prod;
}

/** Mean pass@k over problems, each with its own sample count n and correct count c. */
export function meanPassAtK(counts: readonly { n: number; c: number }[], k: number): number {
  if (counts.length === 0) throw new RangeError("meanPassAtK: no problems");
  return counts.reduce((s, x) => s + passAtK(x.n, x.c, k), 0) / counts.length;
}
