import assert from "node:assert/strict";
import type { Device, GemmForm } from "../engine/device.ts";
import { LimitError } from "../engine/errors.ts";
import {
  blockedEntry,
  matmul,
  relayout,
  sampled,
  skinny,
  SKINNY_MAX_ROWS,
  sumRows,
  transpose,
} from "../engine/gemm.ts";
import { matmulRef, sumRowsRef, transposeRef } from "../engine/gemm_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, finiteDiff, gpuTest, testDevice } from "./util.ts";

// Every matmul test runs on both kernels: the register-blocked one (llvmpipe's default), the
// tiled one at the GPU default tile, and the tiled one at a small odd tile (3-wide k steps, 16 x
// 8 blocks) so that partial tiles in every dimension are exercised on these small shapes; the
// same for the 8 x 8-block form.
const FORMS: GemmForm[] = [
  { form: "blocked", wx: 16, wy: 16, bk: 16 },
  { form: "tiled", wx: 16, wy: 16, bk: 16 },
  { form: "tiled", wx: 4, wy: 2, bk: 3 },
  { form: "tiled8", wx: 8, wy: 8, bk: 16 },
  { form: "tiled8", wx: 2, wy: 3, bk: 5 },
];

function test(name: string, fn: (dev: Device) => Promise<void>): void {
  for (const g of FORMS) {
    const label = g.form === "blocked" ? "blocked" : `${g.form} ${g.wx}x${g.wy} bk ${g.bk}`;
    Deno.test(`${name} [${label}]`, gpuTest, async () => {
      const dev = await testDevice();
      const before = dev.gemm;
      dev.gemm = g;
      try {
        await fn(dev);
      } finally {
        dev.gemm = before;
      }
    });
  }
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [5, 7, 3],
  [4, 8, 12],
  [33, 17, 65],
  [64, 64, 64],
  [37, 20, 36],
  [12, 16, 72],
  [20, 8, 68],
  [6, 150, 10], // few rows, K past the skinny kernel's 64-way split
  [16, 70, 5],
  [100, 24, 90], // the blocked form's 16 x 16 blocks ("nt", K % 4 == 0), ragged in M and N
  [48, 12, 200],
  [100, 24, 92], // ... and of nn16 / tn16 (N % 4 == 0), ragged in M
];

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    test(
      `matmul() matches the CPU reference with transA=${transA} transB=${transB}, bias and accumulate`,
      async (dev) => {
        const rng = new Rng(1 + Number(transA) * 2 + Number(transB));
        for (const [m, k, n] of SHAPES) {
          const a = rng.normals(m * k), b = rng.normals(k * n), bias = rng.normals(n);
          const c0 = rng.normals(m * n);
          const ta = dev.upload("a", a, transA ? [k, m] : [m, k]);
          const tb = dev.upload("b", b, transB ? [n, k] : [k, n]);
          const tbias = dev.upload("bias", bias, [n]);
          for (
            const [useBias, acc] of [[false, false], [true, false], [false, true], [true, true]]
          ) {
            const tc = dev.upload("c", c0, [m, n]);
            matmul(dev, ta, tb, tc, {
              transA,
              transB,
              bias: useBias ? tbias : undefined,
              accumulate: acc,
            });
            const want = matmulRef(a, b, m, k, n, {
              transA,
              transB,
              bias: useBias ? bias : undefined,
              c0: acc ? c0 : undefined,
            });
            // K-term fp32 sums of unit normals.
            assertClose(await tc.read(), want, {
              atol: 1e-5 * Math.sqrt(k) * 4,
              rtol: 1e-5,
              label: `[${m},${k},${n}] bias=${useBias} acc=${acc}`,
            });
            tc.dispose();
          }
          for (const t of [ta, tb, tbias]) t.dispose();
        }
      },
    );
  }
}

test("matmul() reads row slices of a larger matrix (vocabulary chunks)", async (dev) => {
  const rng = new Rng(9);
  const m = 5, k = 64, rows = 40;
  const x = rng.normals(m * k), w = rng.normals(rows * k);
  const tx = dev.upload("x", x, [m, k]), tw = dev.upload("w", w, [rows, k]);
  const tc = dev.empty("c", [m, 12]);
  matmul(dev, tx, tw.rows(8, 12), tc, { transB: true });
  const want = matmulRef(x, w.subarray(8 * k, 20 * k), m, k, 12, { transB: true });
  assertClose(await tc.read(), want, { atol: 1e-4, rtol: 1e-5 });
  // A chunk wide enough for the blocked form's 16 x 16 blocks, starting at an odd row.
  const m2 = 40, n2 = 130;
  const x2 = rng.normals(m2 * k), w2 = rng.normals((n2 + 9) * k);
  const tx2 = dev.upload("x2", x2, [m2, k]), tw2 = dev.upload("w2", w2, [n2 + 9, k]);
  const tc2 = dev.empty("c2", [m2, n2]);
  matmul(dev, tx2, tw2.rows(9, n2), tc2, { transB: true });
  const want2 = matmulRef(x2, w2.subarray(9 * k), m2, k, n2, { transB: true });
  assertClose(await tc2.read(), want2, { atol: 1e-4, rtol: 1e-5, label: "[40, 64, 130]" });
});

test("matmul gradients dA = dC B^T and dB = A^T dC match finite differences", async (dev) => {
  const rng = new Rng(11);
  const m = 6, k = 8, n = 5;
  const a = Float64Array.from(rng.normals(m * k)), b = Float64Array.from(rng.normals(k * n));
  const dc = rng.normals(m * n);
  const loss = (av: Float64Array, bv: Float64Array) => {
    const c = matmulRef(av, bv, m, k, n);
    return c.reduce((s, x, i) => s + x * dc[i], 0);
  };
  const ta = dev.upload("a", Float32Array.from(a), [m, k]);
  const tb = dev.upload("b", Float32Array.from(b), [k, n]);
  const tdc = dev.upload("dc", dc, [m, n]);
  const da = dev.empty("da", [m, k]), db = dev.empty("db", [k, n]);
  matmul(dev, tdc, tb, da, { transB: true });
  matmul(dev, ta, tdc, db, { transA: true });
  assertClose(await da.read(), finiteDiff((x) => loss(x, b), a), { atol: 1e-4, rtol: 1e-4 });
  assertClose(await db.read(), finiteDiff((x) => loss(a, x), b), { atol: 1e-4, rtol: 1e-4 });
});

test("sumRows() matches the CPU reference and accumulates", async (dev) => {
  const rng = new Rng(12);
  for (const [m, n] of [[1, 1], [7, 13], [130, 70]]) {
    const x = rng.normals(m * n), o0 = rng.normals(n);
    const tx = dev.upload("x", x, [m, n]);
    const to = dev.upload("o", o0, [n]);
    sumRows(dev, tx, to, { accumulate: true });
    const want = sumRowsRef(x, m, n).map((v, i) => v + o0[i]);
    assertClose(await to.read(), want, { atol: 1e-4, rtol: 1e-5, label: `[${m},${n}]` });
    sumRows(dev, tx, to);
    assertClose(await to.read(), sumRowsRef(x, m, n), { atol: 1e-4, rtol: 1e-5 });
  }
});

test("matmul() run twice gives identical bits", async (dev) => {
  const rng = new Rng(13);
  const a = dev.upload("a", rng.normals(50 * 36), [50, 36]);
  const b = dev.upload("b", rng.normals(36 * 20), [20, 36]);
  const c1 = dev.empty("c1", [50, 20]), c2 = dev.empty("c2", [50, 20]);
  matmul(dev, a, b, c1, { transB: true });
  matmul(dev, a, b, c2, { transB: true });
  const [x, y] = [await c1.read(), await c2.read()];
  assert.deepEqual(new Uint32Array(x.buffer), new Uint32Array(y.buffer));
  // Wide enough for the blocked form's 16 x 16 blocks.
  const a3 = dev.upload("a3", rng.normals(70 * 36), [70, 36]);
  const b3 = dev.upload("b3", rng.normals(36 * 100), [100, 36]);
  const d1 = dev.empty("d1", [70, 100]), d2 = dev.empty("d2", [70, 100]);
  matmul(dev, a3, b3, d1, { transB: true });
  matmul(dev, a3, b3, d2, { transB: true });
  const [x3, y3] = [await d1.read(), await d2.read()];
  assert.deepEqual(new Uint32Array(x3.buffer), new Uint32Array(y3.buffer));
  // A few rows (the tiled forms' gemm_skinny).
  const s = dev.upload("s", rng.normals(7 * 150), [7, 150]);
  const w = dev.upload("w", rng.normals(30 * 150), [30, 150]);
  const s1 = dev.empty("s1", [7, 30]), s2 = dev.empty("s2", [7, 30]);
  matmul(dev, s, w, s1, { transB: true });
  matmul(dev, s, w, s2, { transB: true });
  const [u, v] = [await s1.read(), await s2.read()];
  assert.deepEqual(new Uint32Array(u.buffer), new Uint32Array(v.buffer));
});

Deno.test("the blocked form's entry follows the layout and the size of C", () => {
  assert.deepEqual(blockedEntry(512, 4864, 896, false, true), ["gemm_nt16", 64, 128]);
  assert.deepEqual(blockedEntry(100, 90, 24, false, true), ["gemm_nt16", 64, 128]);
  assert.equal(blockedEntry(8, 896, 896, false, true)[0], "gemm_nt8", "few rows");
  assert.equal(blockedEntry(64, 64, 896, false, true)[0], "gemm_nt8", "16 blocks only");
  assert.equal(blockedEntry(512, 16, 896, false, true)[0], "gemm_nt4", "narrow");
  assert.equal(blockedEntry(512, 4864, 898, false, true)[0], "gemm_any", "K % 4 != 0");
  assert.equal(blockedEntry(512, 4864, 896, false, false)[0], "gemm_nn16");
  assert.equal(blockedEntry(512, 4864, 896, true, false)[0], "gemm_tn16");
  assert.equal(blockedEntry(512, 4864, 898, false, false)[0], "gemm_any", "nn, K % 4 != 0");
  assert.equal(blockedEntry(512, 4862, 896, false, false)[0], "gemm_any", "nn, N % 4 != 0");
  assert.equal(blockedEntry(510, 4864, 896, true, false)[0], "gemm_any", "tn, M % 4 != 0");
  assert.equal(blockedEntry(8, 4864, 896, false, false)[0], "gemm_nn8", "nn, few rows");
  assert.equal(blockedEntry(8, 4864, 896, true, false)[0], "gemm_tn8", "tn, few rows");
  assert.equal(blockedEntry(512, 4864, 896, true, true)[0], "gemm_any");
});

Deno.test(
  "the tiled forms send few-row products contiguous along k to gemm_skinny",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const max = dev.limits.maxComputeWorkgroupsPerDimension;
    assert.ok(skinny(dev, 1, 4864, 1, 1) && skinny(dev, SKINNY_MAX_ROWS, 896, 1, 1));
    assert.ok(!skinny(dev, SKINNY_MAX_ROWS + 1, 896, 1, 1), "more rows: tiles");
    assert.ok(!skinny(dev, 8, 896, 8, 1), "A strided along k: tiles");
    assert.ok(!skinny(dev, 8, 896, 1, 896), "B strided along k: tiles");
    assert.ok(skinny(dev, 8, 4 * max, 1, 1) && !skinny(dev, 8, 4 * max + 1, 1, 1), "grid limit");
  },
);

test("matmul() names the tensors when shapes do not match", (dev) => {
  const a = dev.empty("acts", [4, 8]),
    b = dev.empty("weight", [8, 5]),
    c = dev.empty("out", [4, 6]);
  assert.throws(() => matmul(dev, a, b, c), /weight/);
  assert.throws(() => matmul(dev, a, b, a), RangeError);
  return Promise.resolve();
});

Deno.test(
  "the tiled matmul refuses a tile over the workgroup limits, naming them",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const inv = dev.limits.maxComputeInvocationsPerWorkgroup;
    assert.throws(() => dev.gemm = { form: "tiled", wx: inv, wy: 2, bk: 16 }, (e: unknown) => {
      assert.ok(e instanceof LimitError);
      assert.match(e.message, /maxComputeInvocationsPerWorkgroup/);
      return true;
    });
    assert.throws(
      () => dev.gemm = { form: "tiled", wx: 16, wy: 16, bk: 4096 },
      /maxComputeWorkgroupStorageSize/,
    );
    assert.throws(() => dev.gemm = { form: "tiled", wx: 0, wy: 16, bk: 16 }, /wx 0/);
    assert.equal(dev.gemm.form, "blocked", "llvmpipe keeps its default after the refusals");
  },
);

Deno.test(
  "transpose() copies x [M, N] to [N, M], from a tensor or a block of its rows",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(14);
    for (const [m, n] of [[1, 1], [3, 5], [37, 300]]) {
      const x = rng.normals(m * n);
      const tx = dev.upload("x", x, [m, n]), out = dev.empty("out", [n, m]);
      transpose(dev, tx, out);
      assert.deepEqual(await out.read(), transposeRef(x, m, n));
      for (const t of [tx, out]) t.dispose();
    }
    // Rows 64..95 of a [100, 8] tensor (the slice starts at an aligned offset).
    const big = rng.normals(100 * 8), tb = dev.upload("big", big, [100, 8]);
    const out = dev.empty("out", [8, 32]);
    transpose(dev, tb.rows(64, 32), out);
    assert.deepEqual(await out.read(), transposeRef(big.subarray(64 * 8, 96 * 8), 32, 8));
    assert.throws(
      () => transpose(dev, tb, dev.empty("bad", [100, 8])),
      /bad \[100, 8\] must be \[8, 100\]/,
    );
    for (const t of [tb, out]) t.dispose();
  },
);

Deno.test(
  "the blocked form turns long-K nn and tn, tt and far-strided tn products into nt ones, with the same results",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const before = dev.gemm;
    dev.gemm = { form: "blocked", wx: 16, wy: 16, bk: 16 };
    try {
      assert.ok(relayout(dev, 512, 2048, 4864, false, false), "nn, long K");
      assert.ok(!relayout(dev, 512, 4864, 896, false, false), "nn, K <= 1024: nn16");
      assert.ok(relayout(dev, 8192, 896, 512, true, false), "tn, A's rows 32 KB apart");
      assert.ok(!relayout(dev, 4864, 896, 512, true, false), "tn: tn16");
      assert.ok(relayout(dev, 896, 896, 4096, true, false), "tn, long K (a larger batch)");
      assert.ok(!relayout(dev, 896, 896, 1024, true, false), "tn, K <= 1024: tn16");
      assert.ok(relayout(dev, 512, 896, 4864, true, true), "tt");
      assert.ok(!relayout(dev, 512, 896, 4864, false, true), "nt stays");
      assert.ok(!relayout(dev, 480, 64, 8192, false, false), "narrow output stays");
      assert.ok(relayout(dev, 512, 768, 2048, false, false), "nn, 805M multiply-adds: turned");
      assert.ok(!relayout(dev, 64, 128, 1028, true, true), "small product stays");
      assert.ok(!relayout(dev, 32, 4864, 1100, false, false), "few rows, short K: stays");
      assert.ok(relayout(dev, 32, 896, 4864, false, false), "few rows, long K: turned");
      assert.ok(!relayout(dev, 512, 896, 4866, false, false), "K % 4 != 0 stays");
      const rng = new Rng(15);
      const [m, k, n] = [70, 1032, 236]; // 17M multiply-adds, N >= 128, M >= 48: turned
      const a = rng.normals(m * k), b = rng.normals(k * n), bias = rng.normals(n);
      const c0 = rng.normals(m * n);
      for (const [transA, transB] of [[false, false], [true, false], [true, true]]) {
        assert.ok(relayout(dev, m, n, k, transA, transB));
        const ta = dev.upload("a", a, transA ? [k, m] : [m, k]);
        const tb = dev.upload("b", b, transB ? [n, k] : [k, n]);
        const tbias = dev.upload("bias", bias, [n]);
        const want = matmulRef(a, b, m, k, n, { transA, transB, bias, c0 });
        // With scratch (the transposed copies) and without (the direct kernels, no memory).
        for (const scratch of [true, false]) {
          const tc = dev.upload("c", c0, [m, n]);
          await dev.sync();
          dev.trim();
          const live = dev.memory.live;
          dev.resetPeak();
          matmul(dev, ta, tb, tc, { transA, transB, bias: tbias, accumulate: true, scratch });
          await dev.sync();
          const extra = dev.memory.peak - live;
          const copies = 4 * k * ((transB ? 0 : n) + (transA ? m : 0));
          assert.ok(scratch ? extra >= copies : extra === 0, `scratch=${scratch}: ${extra} bytes`);
          assertClose(await tc.read(), want, {
            atol: 1e-5 * Math.sqrt(k) * 4,
            rtol: 1e-5,
            label: `transA=${transA} transB=${transB} scratch=${scratch}`,
          });
          tc.dispose();
        }
        for (const t of [ta, tb, tbias]) t.dispose();
      }
    } finally {
      dev.gemm = before;
    }
  },
);

// Shapes the blocked form reads through textures (gemm.ts `sampled`), ragged against its 16 x 32
// blocks, per layout: "nt" needs K % 64 == 0, "nn" K and N, "tn" M and N.
const TEXTURED: Record<string, [number, number, number][]> = {
  nt: [[64, 64, 256], [70, 128, 200], [100, 64, 130]],
  nn: [[100, 128, 192], [64, 64, 256]],
  tn: [[128, 40, 192], [64, 7, 256]],
};

Deno.test(
  "matmul() through textures matches the CPU reference and the storage kernels' bits",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const before = [dev.gemm, dev.gemmTextures] as const;
    dev.gemm = { form: "blocked", wx: 16, wy: 16, bk: 16 };
    const rng = new Rng(16);
    try {
      for (const [form, shapes] of Object.entries(TEXTURED)) {
        const transA = form[0] === "t", transB = form[1] === "t";
        for (const [m, k, n] of shapes) {
          const a = rng.normals(m * k), b = rng.normals(k * n), bias = rng.normals(n);
          const c0 = rng.normals(m * n);
          const ta = dev.upload("a", a, transA ? [k, m] : [m, k]);
          const tb = dev.upload("b", b, transB ? [n, k] : [k, n]);
          const tbias = dev.upload("bias", bias, [n]);
          for (const [useBias, acc] of [[false, false], [true, true]]) {
            const label = `${form} [${m}, ${k}, ${n}] bias=${useBias} acc=${acc}`;
            const runs: Float32Array[] = [];
            for (const textures of [true, false]) {
              dev.gemmTextures = textures;
              assert.equal(sampled(dev, ta, tb, m, n, k, transA, transB), textures, label);
              const tc = dev.upload("c", c0, [m, n]);
              const opts = { transA, transB, bias: useBias ? tbias : undefined, accumulate: acc };
              matmul(dev, ta, tb, tc, { ...opts, scratch: false });
              runs.push(await tc.read());
              tc.dispose();
            }
            const want = matmulRef(a, b, m, k, n, {
              transA,
              transB,
              bias: useBias ? bias : undefined,
              c0: acc ? c0 : undefined,
            });
            assertClose(runs[0], want, { atol: 1e-5 * Math.sqrt(k) * 4, rtol: 1e-5, label });
            assertSameBits(runs[0], runs[1], label);
          }
          for (const t of [ta, tb, tbias]) t.dispose();
        }
      }
    } finally {
      [dev.gemm, dev.gemmTextures] = before;
    }
  },
);

Deno.test(
  "matmul() through textures reads row slices, reuses its textures and runs twice to the same bits",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const before = [dev.gemm, dev.gemmTextures] as const;
    dev.gemm = { form: "blocked", wx: 16, wy: 16, bk: 16 };
    dev.gemmTextures = true;
    const rng = new Rng(17);
    try {
      // Rows 8.. of A and 68.. of B (16-byte aligned starts at K = 64), as in vocabulary chunks.
      const m = 70, k = 64, n = 200;
      const a = rng.normals((m + 8) * k), b = rng.normals((n + 68) * k);
      const ta = dev.upload("a", a, [m + 8, k]), tb = dev.upload("b", b, [n + 68, k]);
      const as = ta.rows(8, m), bs = tb.rows(68, n);
      assert.ok(sampled(dev, as, bs, m, n, k, false, true));
      const c1 = dev.empty("c1", [m, n]), c2 = dev.empty("c2", [m, n]);
      matmul(dev, as, bs, c1, { transB: true });
      await dev.sync();
      const live = dev.memory.live;
      matmul(dev, as, bs, c2, { transB: true });
      await dev.sync();
      assert.equal(dev.memory.live, live, "the second call takes the pooled textures");
      const want = matmulRef(a.subarray(8 * k), b.subarray(68 * k), m, k, n, { transB: true });
      const got = await c1.read();
      assertClose(got, want, { atol: 1e-4, rtol: 1e-5 });
      assertSameBits(got, await c2.read(), "twice");
      for (const t of [ta, tb, c1, c2]) t.dispose();
    } finally {
      [dev.gemm, dev.gemmTextures] = before;
    }
  },
);

Deno.test(
  "textures over the adapter's limits and misaligned copies are refused, naming them",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const max = dev.limits.maxTextureDimension2D;
    assert.throws(() => dev.texture("texture of w", 16, max + 1), (e: unknown) => {
      assert.ok(e instanceof LimitError);
      assert.match(e.message, /texture of w \(texture height\)/);
      assert.match(e.message, /maxTextureDimension2D/);
      return true;
    });
    assert.ok(!dev.textureFits(max + 1, 64), "too many rows");
    assert.ok(!dev.textureFits(8, 4 * max + 64), "rows too long");
    assert.ok(!dev.textureFits(8, 96), "rows not 256-byte aligned");
    assert.ok(!dev.textureFits(8, 64, 2), "start not 16-byte aligned");
    assert.ok(dev.textureFits(8, 64, 4));
    const x = dev.zeros("acts", [8, 96]);
    const t = dev.texture("texture of acts", 24, 8);
    assert.throws(() => dev.copyToTexture(x, 8, 96, t), /acts \[8, 96\].*256-byte/);
    t.release();
    assert.throws(() => dev.copyToTexture(x.reshape([12, 64]), 12, 64, t), /released/);
    x.dispose();
  },
);
