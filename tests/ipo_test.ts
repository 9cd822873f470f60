import assert from "node:assert/strict";
import { ipo } from "../trainers/ipo.ts";
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

/** One pair whose length-normalized margin h is exactly `h` (ref = 0, rejected at 0). */
function pairWithMargin(h: number) {
  return {
    logp: [[h, h], [0, 0, 0]],
    ref: [[0, 0], [0, 0, 0]],
    mask: [[1, 1], [1, 1, 1]],
  };
}

Deno.test("ipo() is minimal at h = 1/(2 beta), where its loss and gradient vanish", () => {
  for (const beta of [0.1, 0.5, 2]) {
    const target = 1 / (2 * beta);
    const at = ipo({ ...pairWithMargin(target), beta, alpha: 0 });
    assert.ok(Math.abs(at.loss) < 1e-24, `${at.loss}`);
    assert.ok(at.dlogp.every((g) => g.every((v) => Math.abs(v) < 1e-6)));
    for (const d of [-1, -0.1, -1e-3, 1e-3, 0.1, 1]) {
      const off = ipo({ ...pairWithMargin(target + d), beta, alpha: 0 });
      assert.ok(off.loss > at.loss, `beta ${beta}, h = target + ${d}`);
      assert.ok(Math.abs(off.loss - d * d) < 1e-9);
    }
  }
});

Deno.test("ipo() length-normalizes: repeating every token leaves the loss unchanged", () => {
  const a = ipo({ logp: [[-1, -3], [-2]], ref: [[-2, -2], [-1]], mask: [[1, 1], [1]] });
  const b = ipo({
    logp: [[-1, -3, -1, -3], [-2, -2, -2]],
    ref: [[-2, -2, -2, -2], [-1, -1, -1]],
    mask: [[1, 1, 1, 1], [1, 1, 1]],
  });
  assert.ok(Math.abs(a.loss - b.loss) < 1e-12);
  // h = (-2 - -2) - (-2 - -1) = 1; L = (1 - 5)^2 + 0.1 * 2
  assert.ok(Math.abs(a.loss - (16 + 0.2)) < 1e-12);
  assert.ok(Math.abs(a.metrics.nll - 2) < 1e-15);
});

Deno.test("ipo() adds alpha times the chosen completion's mean NLL", () => {
  const inputs = { logp: [[-1, -3], [-2]], ref: [[-2, -2], [-1]], mask: [[1, 1], [1]] };
  const with0 = ipo({ ...inputs, alpha: 0 });
  const with1 = ipo({ ...inputs, alpha: 0.7 });
  assert.ok(Math.abs(with1.loss - with0.loss - 0.7 * 2) < 1e-12);
  // the anchor pushes every chosen token up by alpha / n_w
  assert.ok(Math.abs(with1.dlogp[0][0] - with0.dlogp[0][0] - -0.7 / 2) < 1e-6);
  assert.deepEqual(with1.dlogp[1], with0.dlogp[1]);
});

Deno.test("ipo() dlogp equals finite differences of the loss on random pairs", () => {
  const rng = new Rng(30);
  const lengths = [5, 4, 6, 6, 3, 7, 4, 5];
  const { flat, rows } = ragged(lengths, () => -rng.uniform(0.05, 4));
  const ref = rows.map((r) => r.map((v) => v + rng.normal() * 0.5));
  const mask = completionMask(rng, lengths);
  mask[5] = mask[5].map(() => 0); // an empty rejected completion: l = 0, no gradient
  for (const [beta, alpha] of [[0.1, 0.1], [0.1, 0], [0.5, 1]]) {
    gradCheck(
      `ipo beta=${beta} alpha=${alpha}`,
      () => ipo({ logp: rows, ref, mask, beta, alpha }),
      flat,
    );
  }
});

Deno.test("ipo() drops a pair with a non-finite reference log-prob and reports it", () => {
  const r = ipo({
    logp: [[-1, -2], [-2], [-1], [-3]],
    ref: [[-1, -1], [-1], [NaN], [-1]],
    mask: [[1, 1], [1], [1], [1]],
  });
  assert.equal(r.metrics.nonfinite, 1);
  assert.equal(r.metrics.dropped, 2);
  assert.ok(r.dlogp.every((g) => g.every(Number.isFinite)));
  assert.deepEqual(Array.from(r.dlogp[2]), [0]);
  assert.ok(Number.isFinite(r.loss));
});
