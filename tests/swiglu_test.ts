import assert from "node:assert/strict";
import { swigluBackward, swigluForward } from "../engine/swiglu.ts";
import { swigluBackwardRef, swigluForwardRef } from "../engine/swiglu_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, dot, finiteDiff, gpuTest, testDevice } from "./util.ts";

// (tokens, intermediate): one element, element counts that are not multiples of 4 (scalar
// kernels) and that are (vec4 kernels), and more than one 256-lane workgroup of each.
const SHAPES: [number, number][] = [[1, 1], [3, 5], [4, 7], [3, 701], [2, 1000]];

/** Gates from a normal plus a few extremes where exp(-g) under- or overflows. */
function gates(rng: Rng, n: number): Float32Array {
  const g = rng.normals(n, 3);
  const extremes = [-100, -30, -12, 12, 30, 100, 0];
  for (let i = 0; i < Math.min(n, extremes.length); i++) g[(i * 7919) % n] = extremes[i];
  return g;
}

Deno.test(
  "swigluForward() matches the CPU reference for every size, including one element",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(31);
    for (const [n, I] of SHAPES) {
      const g = gates(rng, n * I), u = rng.normals(n * I);
      const tg = dev.upload("gate", g, [n, I]), tu = dev.upload("up", u, [n, I]);
      const th = dev.empty("h", [n, I]);
      swigluForward(dev, tg, tu, th);
      const h = await th.read();
      assert.ok(h.every(Number.isFinite), `finite n=${n} I=${I}`);
      assertClose(h, swigluForwardRef(g, u), { atol: 1e-6, rtol: 1e-5, label: `h n=${n} I=${I}` });
      for (const t of [tg, tu, th]) t.dispose();
    }
  },
);

Deno.test("swigluBackward() matches the CPU backward", gpuTest, async () => {
  const dev = await testDevice();
  const rng = new Rng(32);
  for (const [n, I] of SHAPES) {
    const g = gates(rng, n * I), u = rng.normals(n * I), dh = rng.normals(n * I);
    const tg = dev.upload("gate", g, [n, I]), tu = dev.upload("up", u, [n, I]);
    const tdh = dev.upload("dh", dh, [n, I]);
    const tdg = dev.empty("dgate", [n, I]), tdu = dev.empty("dup", [n, I]);
    swigluBackward(dev, tg, tu, tdh, tdg, tdu);
    const ref = swigluBackwardRef(g, u, dh);
    const label = `n=${n} I=${I}`;
    assertClose(await tdg.read(), ref.dg, { atol: 1e-6, rtol: 1e-5, label: `dg ${label}` });
    assertClose(await tdu.read(), ref.du, { atol: 1e-6, rtol: 1e-5, label: `du ${label}` });
    for (const t of [tg, tu, tdh, tdg, tdu]) t.dispose();
  }
});

Deno.test("the CPU SwiGLU backward matches finite differences of the forward", () => {
  const rng = new Rng(33);
  const n = 12;
  const g = Float64Array.from(rng.normals(n, 3)), u = Float64Array.from(rng.normals(n));
  const dh = rng.normals(n);
  const { dg, du } = swigluBackwardRef(g, u, dh);
  const lossG = (gv: Float64Array) => dot(swigluForwardRef(gv, u), dh);
  const lossU = (uv: Float64Array) => dot(swigluForwardRef(g, uv), dh);
  assertClose(dg, finiteDiff(lossG, g), { atol: 1e-7, rtol: 1e-6, label: "dg" });
  assertClose(du, finiteDiff(lossU, u), { atol: 1e-7, rtol: 1e-6, label: "du" });
});

Deno.test(
  "swigluForward() and swigluBackward() give identical bits when run twice",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(34);
    for (const size of [999, 1000]) {
      const tg = dev.upload("g", gates(rng, size), [size]),
        tu = dev.upload("u", rng.normals(size), [size]);
      const tdh = dev.upload("dh", rng.normals(size), [size]);
      const runs: Float32Array[] = [];
      for (let i = 0; i < 2; i++) {
        const th = dev.empty("h", [size]),
          tdg = dev.empty("dg", [size]),
          tdu = dev.empty("du", [size]);
        swigluForward(dev, tg, tu, th);
        swigluBackward(dev, tg, tu, tdh, tdg, tdu);
        runs.push(await th.read(), await tdg.read(), await tdu.read());
        for (const t of [th, tdg, tdu]) t.dispose();
      }
      for (let k = 0; k < 3; k++) assertSameBits(runs[k], runs[k + 3], `size ${size} output ${k}`);
      for (const t of [tg, tu, tdh]) t.dispose();
    }
  },
);

Deno.test("swigluForward() names the tensors when the shapes differ", gpuTest, async () => {
  const dev = await testDevice();
  const g = dev.zeros("gate_out", [2, 8]),
    u = dev.zeros("up_out", [2, 7]),
    h = dev.empty("h", [2, 8]);
  assert.throws(() => swigluForward(dev, g, u, h), /up_out \[2, 7\].*gate_out \[2, 8\]/);
  assert.throws(() => swigluForward(dev, g, g, h), /share a buffer/);
  for (const t of [g, u, h]) t.dispose();
});
