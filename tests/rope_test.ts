import assert from "node:assert/strict";
import { ropeBackward, ropeForward } from "../engine/rope.ts";
import { ropeBackwardRef, ropeInvFreq, ropeRef } from "../engine/rope_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, dot, finiteDiff, gpuTest, testDevice } from "./util.ts";

const THETA = 1_000_000;

// (tokens, heads, head dim): the smallest head (one pair), an odd half (3 pairs), Qwen2.5's 64
// with its 14 query heads, and more (token, pair) invocations than one 64-lane workgroup.
const SHAPES: [number, number, number][] = [[1, 1, 2], [5, 3, 6], [3, 14, 64], [70, 2, 64]];

/** Two packed sequences, then a decode step at a cache offset: positions need not be 0..n-1. */
function packedPositions(n: number, rng: Rng): Uint32Array {
  const pos = new Uint32Array(n);
  const cut = Math.floor(n / 2);
  for (let t = 0; t < n; t++) pos[t] = t < cut ? t : t - cut;
  if (n > 0) pos[n - 1] = 1000 + rng.int(3000);
  return pos;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

Deno.test("ropeInvFreq() rounds theta^(-2i/D) to f32 as Hugging Face does", () => {
  assert.deepEqual([...ropeInvFreq(10_000, 4)], [1, Math.fround(0.01)]);
  const f = ropeInvFreq(THETA, 64);
  assert.equal(f.length, 32);
  assert.equal(f[0], 1);
  assert.ok(Math.abs(f[1] - Math.pow(THETA, -2 / 64)) < 1e-7);
  assert.throws(() => ropeInvFreq(THETA, 7), /head dim 7/);
});

Deno.test(
  "ropeForward() matches the CPU reference in place and out of place",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(21);
    for (const [n, heads, D] of SHAPES) {
      const x = rng.normals(n * heads * D);
      const pos = packedPositions(n, rng);
      const opts = { headDim: D, theta: THETA };
      const tp = dev.upload("positions", pos, [n], "u32");
      const tq = dev.upload("q", x, [n, heads * D]);
      const tout = dev.empty("q_rot", [n, heads * D]);
      ropeForward(dev, tq, tp, { ...opts, out: tout });
      const label = `n=${n} heads=${heads} D=${D}`;
      // Against the reference that rounds the angle to f32 as the kernel does, the only error
      // left is cos/sin of the reduced angle and the products: fp32 level.
      const ref = ropeRef(x, pos, heads, { ...opts, angle: "f32" });
      assertClose(await tout.read(), ref, { atol: 2e-6, rtol: 1e-5, label: `out ${label}` });
      assertClose(await tq.read(), x, { atol: 0, rtol: 0, label: `x untouched ${label}` });
      ropeForward(dev, tq, tp, opts);
      assertSameBits(await tq.read(), await tout.read(), `in place equals out of place ${label}`);
      for (const t of [tp, tq, tout]) t.dispose();
    }
  },
);

Deno.test("ropeForward() stays accurate at positions up to 32768", gpuTest, async () => {
  const dev = await testDevice();
  const rng = new Rng(22);
  const n = 40, heads = 2, D = 64;
  const x = rng.normals(n * heads * D);
  const pos = Uint32Array.from({ length: n }, (_, t) => t < 3 ? 32768 - t : rng.int(32769));
  const opts = { headDim: D, theta: THETA };
  const tp = dev.upload("positions", pos, [n], "u32");
  const tq = dev.upload("k", x, [n, heads * D]);
  ropeForward(dev, tq, tp, opts);
  const gpu = await tq.read();
  // The kernel reduces the angle to [-pi, pi] before cos/sin, so it stays at fp32 level against
  // cos/sin of the same f32 angle even where the angle is 32768 rad.
  assertClose(gpu, ropeRef(x, pos, heads, { ...opts, angle: "f32" }), {
    atol: 2e-6,
    rtol: 1e-5,
    label: "vs f32 angle",
  });
  // Against the exact float64 angle the f32 product pos * inv_freq is off by up to
  // 2^-24 * pos (half an ulp: 0.002 rad at 32768), which moves each output by up to that angle
  // times |x_i| + |x_i+half|; Hugging Face makes the same rounding.
  const angleErr = 32768 * 2 ** -24;
  assertClose(gpu, ropeRef(x, pos, heads, opts), {
    atol: 2 * maxAbs(x) * angleErr + 2e-6,
    rtol: 1e-5,
    label: "vs f64 angle",
  });
  for (const t of [tp, tq]) t.dispose();
});

Deno.test(
  "ropeBackward() matches the CPU backward in place and out of place",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(23);
    for (const [n, heads, D] of SHAPES) {
      const dy = rng.normals(n * heads * D);
      const pos = packedPositions(n, rng);
      const opts = { headDim: D, theta: THETA };
      const tp = dev.upload("positions", pos, [n], "u32");
      const tdy = dev.upload("dq_rot", dy, [n, heads * D]);
      const tdx = dev.empty("dq", [n, heads * D]);
      ropeBackward(dev, tdy, tp, { ...opts, out: tdx });
      const ref = ropeBackwardRef(dy, pos, heads, { ...opts, angle: "f32" });
      const label = `n=${n} heads=${heads} D=${D}`;
      assertClose(await tdx.read(), ref, { atol: 2e-6, rtol: 1e-5, label: `dx ${label}` });
      ropeBackward(dev, tdy, tp, opts);
      assertSameBits(await tdy.read(), await tdx.read(), `in place ${label}`);
      for (const t of [tp, tdy, tdx]) t.dispose();
    }
  },
);

Deno.test("the CPU RoPE backward matches finite differences of the forward", () => {
  const rng = new Rng(24);
  const n = 3, heads = 2, D = 6;
  const x = Float64Array.from(rng.normals(n * heads * D));
  const dy = rng.normals(n * heads * D);
  const pos = [0, 7, 2000];
  const opts = { headDim: D, theta: 10_000 };
  const loss = (xv: Float64Array) => dot(ropeRef(xv, pos, heads, opts), dy);
  assertClose(ropeBackwardRef(dy, pos, heads, opts), finiteDiff(loss, x), {
    atol: 1e-7,
    rtol: 1e-6,
    label: "dx",
  });
});

Deno.test(
  "ropeForward() then ropeBackward() gives identical bits when run twice",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(25);
    const n = 33, heads = 3, D = 10;
    const x = rng.normals(n * heads * D);
    const tp = dev.upload("positions", packedPositions(n, rng), [n], "u32");
    const runs: Float32Array[] = [];
    for (let i = 0; i < 2; i++) {
      const tq = dev.upload("q", x, [n, heads * D]), tg = dev.empty("dq", [n, heads * D]);
      ropeForward(dev, tq, tp, { headDim: D, theta: THETA });
      ropeBackward(dev, tq, tp, { headDim: D, theta: THETA, out: tg });
      runs.push(await tq.read(), await tg.read());
      tq.dispose();
      tg.dispose();
    }
    assertSameBits(runs[0], runs[2], "forward");
    assertSameBits(runs[1], runs[3], "backward");
    tp.dispose();
  },
);

Deno.test("ropeForward() names the tensors when the shapes do not fit", gpuTest, async () => {
  const dev = await testDevice();
  const tp = dev.upload("positions", [0, 1, 2], [3], "u32");
  const q = dev.zeros("q", [3, 100]);
  assert.throws(
    () => ropeForward(dev, q, tp, { headDim: 64, theta: THETA }),
    /q \[3, 100\].*heads \* 64.*positions/,
  );
  const q2 = dev.zeros("q", [4, 64]);
  assert.throws(
    () => ropeForward(dev, q2, tp, { headDim: 64, theta: THETA }),
    /\[3, heads \* 64\]/,
  );
  assert.throws(
    () => ropeForward(dev, q, tp, { headDim: 10, theta: THETA, numHeads: 14 }),
    /q \[3, 100\] holds 10 heads of 10, not numHeads = 14/,
  );
  ropeForward(dev, q, tp, { headDim: 10, theta: THETA, numHeads: 10 });
  const tp2 = dev.upload("positions", [0, 1, 2], [3], "i32");
  assert.throws(
    () => ropeForward(dev, q, tp2 as never, { headDim: 10, theta: THETA }),
    /positions.*must be u32/,
  );
  for (const t of [tp, q, q2, tp2]) t.dispose();
});
