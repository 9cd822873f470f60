import assert from "node:assert/strict";
import { meanPassAtK, passAtK } from "../verifiers/pass_at_k.ts";

function binom(n: number, k: number): bigint {
  if (k < 0 || k > n) return 0n;
  let r = 1n;
  for (let i = 0; i < k; i++) r = (r * BigInt(n - i)) / BigInt(i + 1);
  return r;
}

Deno.test("passAtK() equals 1 - C(n-c, k) / C(n, k) computed exactly for small n", () => {
  for (let n = 1; n <= 20; n++) {
    for (let c = 0; c <= n; c++) {
      for (let k = 1; k <= n; k++) {
        const num = binom(n - c, k), den = binom(n, k);
        // Exact rational to double: scale to 1e15 first.
        const want = 1 - Number((num * 10n ** 15n) / den) / 1e15;
        assert.ok(Math.abs(passAtK(n, c, k) - want) < 1e-12, `n=${n} c=${c} k=${k}`);
      }
    }
  }
});

Deno.test("passAtK() stays finite and in [0, 1] for n up to 1024", () => {
  for (const [n, c, k] of [[1024, 1, 1], [1024, 3, 512], [1024, 1000, 16], [1024, 0, 1024]]) {
    const v = passAtK(n, c, k);
    assert.ok(Number.isFinite(v) && v >= 0 && v <= 1, `n=${n} c=${c} k=${k}: ${v}`);
  }
  assert.ok(Math.abs(passAtK(1024, 1, 1) - 1 / 1024) < 1e-15);
});

Deno.test("passAtK() refuses k > n and negative counts, and averages over problems", () => {
  assert.throws(() => passAtK(4, 1, 5), RangeError);
  assert.throws(() => passAtK(4, -1, 1), RangeError);
  assert.equal(meanPassAtK([{ n: 4, c: 4 }, { n: 4, c: 0 }], 2), 0.5);
});
