import assert from "node:assert/strict";
import { lens } from "../trainers/lens.ts";
import { grpo } from "../trainers/grpo.ts";
import { lensAdvantages } from "../trainers/advantages.ts";
import type { ObjectiveResult } from "../trainers/objective.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, finiteDiff } from "./util.ts";

/** Ragged rows as views into one flat array, so finite differences on it reach every row. */
function ragged(lengths: number[], draw: () => number) {
  const flat = new Float64Array(lengths.reduce((a, b) => a + b, 0)).map(draw);
  let o = 0;
  const rows = lengths.map((n) => flat.subarray(o, o += n));
  return { flat, rows };
}

/** Prompt positions (1-2) masked, then completion tokens, sometimes a padded tail. */
function completionMask(rng: Rng, lengths: number[]): number[][] {
  return lengths.map((n) => {
    const prompt = 1 + rng.int(2);
    const pad = rng.next() < 0.3 ? 1 : 0;
    return Array.from({ length: n }, (_, t) => (t >= prompt && t < n - pad ? 1 : 0));
  });
}

function gradCheck(label: string, run: () => ObjectiveResult, x: Float64Array): void {
  const got = run().dlogp.flatMap((r) => Array.from(r));
  const fd = finiteDiff(() => run().loss, x, 1e-6);
  assert.ok(fd.some((v) => v !== 0), `${label}: the check is vacuous`);
  assertClose(got, fd, { atol: 1e-7, rtol: 1e-4, label });
}

/** Moves `old` so that no ratio sits within 1e-4 of a clip boundary (finite differences). */
function avoidKinks(logp: ArrayLike<number>[], old: Float64Array[]): void {
  for (let i = 0; i < old.length; i++) {
    for (let t = 0; t < old[i].length; t++) {
      for (;;) {
        const rho = Math.exp(logp[i][t] - old[i][t]);
        if ([0.8, 1.2, 1.28].every((b) => Math.abs(rho - b) > 1e-4)) break;
        old[i][t] += 0.01;
      }
    }
  }
}

/** Groups of 4: mixed, all wrong, all correct, mixed. */
function batch(seed: number) {
  const rng = new Rng(seed);
  const G = 4;
  const lengths = Array.from({ length: 4 * G }, () => 4 + rng.int(5));
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 3));
  const old = rows.map((r) => r.map((v) => v - rng.normal() * 0.25));
  avoidKinks(rows, old);
  const ref = rows.map((r) => r.map((v) => v + rng.normal() * 0.3));
  const mask = completionMask(rng, lengths);
  const rewards = [1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 0];
  return { G, flat, logp: rows, old, ref, mask, rewards };
}

function meanLogpOf(rows: ArrayLike<number>[], mask: number[][]): number[] {
  return rows.map((r, i) => {
    let s = 0, n = 0;
    for (let t = 0; t < r.length; t++) if (mask[i][t]) (s += r[t]), n++;
    return s / n;
  });
}

Deno.test("lens() dlogp equals finite differences for every aggregation, scale and KL option", () => {
  const b = batch(70);
  for (const aggregation of ["grpo", "dapo", "dr_grpo"] as const) {
    for (const scale of ["group", "batch", "none"] as const) {
      for (const beta of [0, 0.1]) {
        gradCheck(`lens ${aggregation} ${scale} beta=${beta}`, () =>
          lens({
            logp: b.logp,
            old: b.old,
            ref: beta > 0 ? b.ref : undefined,
            mask: b.mask,
            rewards: b.rewards,
            groupSize: b.G,
            aggregation,
            scale,
            beta,
          }), b.flat);
      }
    }
  }
});

Deno.test("lens() learns from an all-wrong group, pushing the most confident mistake down hardest", () => {
  // one all-wrong group, rho = 1 (old = logp), single-token completions so the gradient is
  // -A_i / N per sequence
  const logp = [[-0.1], [-1], [-2], [-3]];
  const r = lens({
    logp,
    old: logp,
    mask: [[1], [1], [1], [1]],
    rewards: [0, 0, 0, 0],
    groupSize: 4,
  });
  const g = r.dlogp.map((x) => x[0]);
  assert.ok(g.every((v) => v !== 0), `${g}`);
  assert.ok(g[0] > 0, "the confident mistake's loss rises with its log-prob");
  assert.equal(g[0], Math.max(...g));
  const wantA = lensAdvantages([0, 0, 0, 0], [-0.1, -1, -2, -3], 4);
  g.forEach((v, i) => assert.ok(Math.abs(v - -wantA[i] / 4) < 1e-7));
  // GRPO would give nothing here
  const plain = grpo({
    logp,
    old: logp,
    mask: [[1], [1], [1], [1]],
    rewards: [0, 0, 0, 0],
    groupSize: 4,
  });
  assert.ok(plain.dlogp.every((x) => x[0] === 0));
  assert.equal(r.metrics["lens/negative_groups"], 1);
});

Deno.test("lens() weights all-wrong groups by alpha and leaves all-correct groups without gradient", () => {
  const b = batch(71);
  const run = (alpha: number) =>
    lens({ logp: b.logp, old: b.old, mask: b.mask, rewards: b.rewards, groupSize: 4, alpha });
  const a1 = run(0.25), a2 = run(0.5);
  for (let i = 4; i < 8; i++) {
    for (let t = 0; t < b.logp[i].length; t++) {
      assert.ok(Math.abs(a2.dlogp[i][t] - 2 * a1.dlogp[i][t]) < 1e-7, `row ${i}`);
    }
  }
  for (const i of [0, 1, 2, 3, 12, 13, 14, 15]) assert.deepEqual(a1.dlogp[i], a2.dlogp[i]);
  for (let i = 8; i < 12; i++) assert.ok(a1.dlogp[i].every((v) => v === 0), `row ${i}`);
});

Deno.test("lens() takes the confidence pi from old and equals GRPO on lensAdvantages", () => {
  const b = batch(72);
  const r = lens({ logp: b.logp, old: b.old, mask: b.mask, rewards: b.rewards, groupSize: 4 });
  const adv = lensAdvantages(b.rewards, meanLogpOf(b.old, b.mask), 4);
  const g = grpo({
    logp: b.logp,
    old: b.old,
    mask: b.mask,
    rewards: b.rewards,
    groupSize: 4,
    advantages: adv,
  });
  assert.equal(r.loss, g.loss);
  assert.deepEqual(r.dlogp, g.dlogp);
});

Deno.test("lens() drops a group whose old log-probs are non-finite and rejects non-binary rewards", () => {
  const b = batch(73);
  b.old[5][b.mask[5].indexOf(1)] = NaN;
  const r = lens({ logp: b.logp, old: b.old, mask: b.mask, rewards: b.rewards, groupSize: 4 });
  assert.equal(r.metrics.nonfinite, 1);
  assert.equal(r.metrics.dropped, 4);
  for (let i = 4; i < 8; i++) assert.ok(r.dlogp[i].every((v) => v === 0));
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)) && Number.isFinite(r.loss));
  const bad = [...b.rewards];
  bad[0] = 0.5;
  assert.throws(
    () => lens({ logp: b.logp, mask: b.mask, rewards: bad, groupSize: 4 }),
    /binary/,
  );
});

Deno.test("lens() without old takes pi from logp held fixed", () => {
  const b = batch(74);
  const frozen = b.logp.map((r) => Float64Array.from(r));
  const common = { mask: b.mask, rewards: b.rewards, groupSize: 4 };
  const fd = finiteDiff(() => lens({ ...common, logp: b.logp, old: frozen }).loss, b.flat, 1e-6);
  const got = lens({ ...common, logp: b.logp }).dlogp.flatMap((r) => Array.from(r));
  assertClose(got, fd, { atol: 1e-7, rtol: 1e-4, label: "lens without old" });
});
