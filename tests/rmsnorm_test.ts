import assert from "node:assert/strict";
import { rmsnormBackward, rmsnormForward, type RmsnormLayout } from "../engine/rmsnorm.ts";
import { rmsnormBackwardRef, rmsnormForwardRef } from "../engine/rmsnorm_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, dot, finiteDiff, gpuTest, testDevice } from "./util.ts";

const EPS = 1e-6;
// (rows, d): a single row and element, d not a multiple of 4 or of the 64-lane workgroup,
// exactly one workgroup's width, and row counts that span several 64-row dw blocks.
// rows4 runs where d % 4 == 0 and 64-row workgroups are partly filled (n = 1, 5, 130).
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 8],
  [3, 67],
  [5, 64],
  [130, 13],
  [130, 12],
  [2, 896],
];

const LAYOUTS: RmsnormLayout[] = ["workgroup", "rows4"];

Deno.test(
  "rmsnormForward() matches the CPU reference, including a row of length 1",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(11);
    for (const layout of LAYOUTS) {
      for (const [n, d] of SHAPES) {
        const x = rng.normals(n * d), w = rng.normals(d);
        const tx = dev.upload("x", x, [n, d]), tw = dev.upload("w", w, [d]);
        const ty = dev.empty("y", [n, d]), tr = dev.empty("rstd", [n]);
        rmsnormForward(dev, tx, tw, ty, tr, EPS, { layout });
        const ref = rmsnormForwardRef(x, w, n, d, EPS);
        const label = `${layout} n=${n} d=${d}`;
        assertClose(await ty.read(), ref.y, { atol: 1e-6, rtol: 1e-5, label: `y ${label}` });
        assertClose(await tr.read(), ref.rstd, { atol: 0, rtol: 1e-5, label: `rstd ${label}` });
        for (const t of [tx, tw, ty, tr]) t.dispose();
      }
    }
  },
);

Deno.test(
  "rmsnormBackward() matches the CPU backward, with and without accumulating dw",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(12);
    for (const layout of LAYOUTS) {
      for (const [n, d] of SHAPES) {
        for (const accumulate of [false, true]) {
          const x = rng.normals(n * d), w = rng.normals(d), dy = rng.normals(n * d);
          const dw0 = rng.normals(d);
          const tx = dev.upload("x", x, [n, d]), tw = dev.upload("w", w, [d]);
          const ty = dev.empty("y", [n, d]), tr = dev.empty("rstd", [n]);
          const tdy = dev.upload("dy", dy, [n, d]), tdx = dev.empty("dx", [n, d]);
          const tdw = dev.upload("dw", dw0, [d]);
          rmsnormForward(dev, tx, tw, ty, tr, EPS, { layout });
          rmsnormBackward(dev, tx, tw, tr, tdy, tdx, tdw, { accumulateDw: accumulate, layout });
          const ref = rmsnormBackwardRef(x, w, dy, n, d, EPS, accumulate ? dw0 : undefined);
          const label = `${layout} n=${n} d=${d} accumulate=${accumulate}`;
          assertClose(await tdx.read(), ref.dx, { atol: 1e-5, rtol: 1e-5, label: `dx ${label}` });
          assertClose(await tdw.read(), ref.dw, { atol: 1e-5, rtol: 1e-5, label: `dw ${label}` });
          for (const t of [tx, tw, ty, tr, tdy, tdx, tdw]) t.dispose();
        }
      }
    }
  },
);

Deno.test("the CPU RMSNorm backward matches finite differences of the forward", () => {
  const rng = new Rng(13);
  for (const [n, d] of [[1, 1], [3, 5]]) {
    const x = Float64Array.from(rng.normals(n * d));
    const w = Float64Array.from(rng.normals(d));
    const dy = rng.normals(n * d);
    // eps is large here so that d = 1 (where y = w * sign(x) without it) has a gradient.
    const eps = 0.5;
    const { dx, dw } = rmsnormBackwardRef(x, w, dy, n, d, eps);
    const lossX = (xv: Float64Array) => dot(rmsnormForwardRef(xv, w, n, d, eps).y, dy);
    const lossW = (wv: Float64Array) => dot(rmsnormForwardRef(x, wv, n, d, eps).y, dy);
    assertClose(dx, finiteDiff(lossX, x), { atol: 1e-7, rtol: 1e-6, label: `dx n=${n} d=${d}` });
    assertClose(dw, finiteDiff(lossW, w), { atol: 1e-7, rtol: 1e-6, label: `dw n=${n} d=${d}` });
  }
});

Deno.test(
  "rmsnormForward() and rmsnormBackward() give identical bits when run twice",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(14);
    const n = 150, d = 44;
    const tx = dev.upload("x", rng.normals(n * d), [n, d]),
      tw = dev.upload("w", rng.normals(d), [d]);
    const tdy = dev.upload("dy", rng.normals(n * d), [n, d]);
    for (const layout of LAYOUTS) {
      const runs: Float32Array[][] = [];
      for (let i = 0; i < 2; i++) {
        const ty = dev.empty("y", [n, d]), tr = dev.empty("rstd", [n]);
        const tdx = dev.empty("dx", [n, d]), tdw = dev.zeros("dw", [d]);
        rmsnormForward(dev, tx, tw, ty, tr, EPS, { layout });
        rmsnormBackward(dev, tx, tw, tr, tdy, tdx, tdw, { accumulateDw: true, layout });
        runs.push([await ty.read(), await tr.read(), await tdx.read(), await tdw.read()]);
        for (const t of [ty, tr, tdx, tdw]) t.dispose();
      }
      for (const [k, name] of ["y", "rstd", "dx", "dw"].entries()) {
        assertSameBits(runs[0][k], runs[1][k], `${layout} ${name}`);
      }
    }
    for (const t of [tx, tw, tdy]) t.dispose();
  },
);

Deno.test(
  "rmsnormForward() names the tensors when the weight does not match the rows",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const x = dev.zeros("hidden", [4, 8]), w = dev.zeros("input_layernorm", [7]);
    const y = dev.empty("y", [4, 8]), r = dev.empty("rstd", [4]);
    assert.throws(
      () => rmsnormForward(dev, x, w, y, r, EPS),
      /input_layernorm \[7\].*8.*hidden \[4, 8\]/,
    );
    assert.throws(() => rmsnormForward(dev, x, x, y, r, EPS), RangeError);
    for (const t of [x, w, y, r]) t.dispose();
  },
);
