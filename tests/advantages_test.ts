import assert from "node:assert/strict";
import {
  demeanedAdvantages,
  grpoAdvantages,
  lensAdvantages,
  lensRewards,
  rlooAdvantages,
} from "../trainers/advantages.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose } from "./util.ts";

const NON_DYADIC = [0.35, 0.1, 0.7, 1 / 3, 2 / 3, 0.3];

function naiveMean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function naiveStd(xs: number[]): number {
  const m = naiveMean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

Deno.test("rlooAdvantages() gives r_i - r_j for groups of two", () => {
  const rng = new Rng(1);
  const r = Array.from({ length: 10 }, () => rng.uniform(-1, 2));
  const a = rlooAdvantages(r, 2);
  for (let i = 0; i < r.length; i += 2) {
    assert.equal(a[i], r[i] - r[i + 1]);
    assert.equal(a[i + 1], r[i + 1] - r[i]);
  }
});

Deno.test("rlooAdvantages() gives exactly 0 for groups of equal rewards, 0.35 included", () => {
  for (const v of [...NON_DYADIC, 0, 1]) {
    for (const G of [2, 3, 4, 5, 7, 16]) {
      const a = rlooAdvantages(new Array(2 * G).fill(v), G);
      assert.ok(a.every((x) => x === 0), `value ${v}, G ${G}: ${a}`);
    }
  }
});

Deno.test("rlooAdvantages() matches r_i minus the mean of the others on random rewards", () => {
  const rng = new Rng(2);
  for (const G of [2, 3, 5, 8]) {
    const r = Array.from({ length: 4 * G }, () => (rng.next() < 0.3 ? 1 : rng.next()));
    const want = r.map((ri, i) => {
      const g = Math.floor(i / G) * G;
      const others = r.slice(g, g + G).filter((_, j) => g + j !== i);
      return ri - naiveMean(others);
    });
    assertClose(rlooAdvantages(r, G), want, { atol: 1e-12, label: `G=${G}` });
  }
});

Deno.test("rlooAdvantages() rejects a group of one and a ragged batch", () => {
  assert.throws(() => rlooAdvantages([1, 0], 1), /groupSize/);
  assert.throws(() => rlooAdvantages([1, 0, 1], 2), /multiple/);
});

Deno.test("grpoAdvantages() gives exactly 0 for groups of equal rewards under every scale", () => {
  for (const scale of ["group", "batch", "none"] as const) {
    for (const v of [...NON_DYADIC, 0, 1]) {
      for (const G of [2, 3, 4, 7, 16]) {
        // one equal group next to a varied one, so the batch std is not zero
        const r = [...new Array(G).fill(v), ...Array.from({ length: G }, (_, j) => j / G)];
        const a = grpoAdvantages(r, G, { scale });
        assert.ok(a.slice(0, G).every((x) => x === 0), `${scale}, value ${v}, G ${G}: ${a}`);
        assert.ok(a.every(Number.isFinite));
      }
    }
  }
});

Deno.test("grpoAdvantages() divides by the group's sample std plus 1e-4 by default", () => {
  const rng = new Rng(3);
  for (const G of [2, 4, 8]) {
    const r = Array.from({ length: 3 * G }, () => rng.uniform(0, 1));
    const want = r.map((ri, i) => {
      const g = Math.floor(i / G) * G;
      const grp = r.slice(g, g + G);
      return (ri - naiveMean(grp)) / (naiveStd(grp) + 1e-4);
    });
    assertClose(grpoAdvantages(r, G), want, { atol: 1e-10, rtol: 1e-10, label: `G=${G}` });
  }
  // eps is honoured
  const a = grpoAdvantages([1, 0], 2, { eps: 1 });
  assert.ok(Math.abs(a[0] - 0.5 / (Math.SQRT1_2 + 1)) < 1e-15);
});

Deno.test("grpoAdvantages() with scale batch keeps the group mean and uses the batch std", () => {
  const r = [1, 0, 0, 0, 5, 3, 4, 4];
  const std = naiveStd(r);
  const want = [0.75, -0.25, -0.25, -0.25, 1, -1, 0, 0].map((d) => d / (std + 1e-4));
  assertClose(grpoAdvantages(r, 4, { scale: "batch" }), want, { atol: 1e-12 });
  assert.deepEqual(grpoAdvantages(r, 4, { scale: "none" }), [
    0.75,
    -0.25,
    -0.25,
    -0.25,
    1,
    -1,
    0,
    0,
  ]);
});

Deno.test("grpoAdvantages() gives 0 for groups of one sample", () => {
  assert.deepEqual(grpoAdvantages([0.3, 1, 0], 1), [0, 0, 0]);
});

Deno.test("demeanedAdvantages() is r minus the group mean, exactly 0 on equal groups", () => {
  assert.deepEqual(demeanedAdvantages([1, 0, 0.35, 0.35], 2), [0.5, -0.5, 0, 0]);
});

Deno.test("lensRewards() gives an all-wrong group non-zero rewards, lower for the more confident", () => {
  const G = 4;
  const pis = [0.6, 0.3, 0.05, 0.45];
  const r = lensRewards([0, 0, 0, 0], pis.map(Math.log), G);
  const D = 2 * 0.6;
  pis.forEach((pi, i) => {
    assert.ok(r[i] < 0, `sample ${i} reward ${r[i]}`);
    assert.ok(Math.abs(r[i] - -(pi / (G * (D - pi)))) < 1e-12);
  });
  // ordering follows confidence: 0.6 > 0.45 > 0.3 > 0.05
  assert.ok(r[0] < r[3] && r[3] < r[1] && r[1] < r[2]);
});

Deno.test("lensRewards() keeps correct samples at 1 and uses D_imp when it exceeds 2 max pi", () => {
  const G = 4;
  // group A: D_imp = 1 / ((1/4)(1/0.9 + 1/0.8)) ~ 1.69 < 2 * 0.9, so the floor 1.8 wins;
  // group B: D_imp = 1 / ((1/4)(1/0.3)) = 1.2 > 2 * 0.3, so D_imp wins.
  const pisA = [0.9, 0.8, 0.5, 0.2];
  const pisB = [0.3, 0.01, 0.02, 0.01];
  const r = lensRewards([1, 1, 0, 0, 1, 0, 0, 0], [...pisA, ...pisB].map(Math.log), G);
  assert.equal(r[0], 1);
  assert.equal(r[1], 1);
  assert.equal(r[4], 1);
  const DA = Math.max(1 / ((1 / 0.9 + 1 / 0.8) / 4), 1.8);
  assert.equal(DA, 1.8);
  assert.ok(Math.abs(r[2] - -(0.5 / (4 * (DA - 0.5)))) < 1e-12);
  const DB = Math.max(1 / (1 / 0.3 / 4), 0.6);
  assert.ok(Math.abs(DB - 1.2) < 1e-12);
  assert.ok(Math.abs(r[5] - -(0.01 / (4 * (DB - 0.01)))) < 1e-12);
});

Deno.test("lensAdvantages() keeps every correct sample positive and every wrong one negative", () => {
  const rng = new Rng(4);
  for (let trial = 0; trial < 200; trial++) {
    const G = 2 + rng.int(7);
    const correct = Array.from({ length: G }, () => (rng.next() < 0.5 ? 1 : 0));
    const i = rng.int(G);
    correct[i] = 1;
    correct[(i + 1 + rng.int(G - 1)) % G] = 0; // at least one of each: a mixed group
    const meanLogp = Array.from({ length: G }, () => -rng.uniform(0, 4));
    for (const scale of ["group", "batch", "none"] as const) {
      const a = lensAdvantages(correct, meanLogp, G, { scale });
      correct.forEach((c, i) => {
        if (c === 1) assert.ok(a[i] > 0, `trial ${trial} ${scale}: correct ${i} got ${a[i]}`);
        else assert.ok(a[i] < 0, `trial ${trial} ${scale}: wrong ${i} got ${a[i]}`);
      });
    }
  }
});

Deno.test("lensAdvantages() de-means all-wrong groups, scales them by alpha and zeroes all-correct ones", () => {
  const meanLogp = [-0.2, -1, -3, -0.5, -0.1, -2];
  const r = lensRewards([0, 0, 0, 1, 1, 1], meanLogp, 3);
  const m = (r[0] + r[1] + r[2]) / 3;
  const a = lensAdvantages([0, 0, 0, 1, 1, 1], meanLogp, 3);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(a[i] - 0.25 * (r[i] - m)) < 1e-15);
  assert.ok(a[0] < 0 && a[2] > 0); // the confident mistake is pushed down
  assert.deepEqual(a.slice(3), [0, 0, 0]);
  const b = lensAdvantages([0, 0, 0, 1, 1, 1], meanLogp, 3, { alpha: 1 });
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(b[i] - 4 * a[i]) < 1e-15);
});
