import assert from "node:assert/strict";
import type { Device } from "../engine/device.ts";
import { blockedEntry, relayout, sampled } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";
import { lmHeadBackward, lmHeadForward } from "../engine/vocab_head.ts";
import { lmHeadBackwardRef, lmHeadForwardRef, NO_TARGET_REF } from "../engine/vocab_head_ref.ts";
import { assertClose, assertSameBits, finiteDiff, gpuTest, testDevice } from "./util.ts";

function test(name: string, fn: (dev: Device) => Promise<void>): void {
  Deno.test(name, gpuTest, async () => fn(await testDevice()));
}

function problem(seed: number, n: number, d: number, v: number) {
  const rng = new Rng(seed);
  const hidden = rng.normals(n * d, 0.5), weight = rng.normals(v * d, 0.5);
  const targets = Uint32Array.from(
    { length: n },
    (_, i) => (i % 3 === 2 ? NO_TARGET_REF : rng.int(v)),
  );
  const dlogp = rng.normals(n);
  return { hidden, weight, targets, dlogp };
}

for (
  const [n, d, v, chunk] of [
    [7, 16, 1000, 64],
    [5, 12, 130, 64],
    [3, 8, 333, 128],
    [9, 32, 4096, 8192],
    [64, 128, 4096, 2048], // the backward's products in the 16 x 16 kernels (see below)
  ]
) {
  forwardCase(n, d, v, chunk);
  backwardCase(n, d, v, chunk);
}

function forwardCase(n: number, d: number, v: number, chunk: number): void {
  test(`lmHeadForward() matches the reference for N=${n} d=${d} V=${v} in chunks of ${chunk}`, async (dev) => {
    const x = problem(n + d + v, n, d, v);
    const h = dev.upload("hidden", x.hidden, [n, d]);
    const w = dev.upload("weight", x.weight, [v, d]);
    const t = dev.upload("targets", x.targets, [n], "u32");
    const logp = dev.empty("logp", [n]), lse = dev.empty("lse", [n]), ent = dev.empty("ent", [n]);
    lmHeadForward(dev, {
      hidden: h,
      weight: w,
      targets: t,
      logp,
      lse,
      entropy: ent,
      chunkRows: chunk,
    });
    const ref = lmHeadForwardRef(x.hidden, x.weight, x.targets, n, d, v);
    assertClose(await logp.read(), ref.logp, { atol: 2e-5, rtol: 1e-5, label: "logp" });
    assertClose(await lse.read(), ref.lse, { atol: 2e-5, rtol: 1e-5, label: "lse" });
    // The entropy within the same bounds: at d = 128 (logits of std 2.8 here) it is 1.6e-5 off
    // the float64 reference. Before the fold summed exp(z - m) (z - m), terms of one sign, it
    // summed exp(z - m) z over logits of both signs and came out 4e-4 off there.
    assertClose(await ent.read(), ref.entropy, { atol: 2e-5, rtol: 1e-5, label: "entropy" });
  });
}

function backwardCase(n: number, d: number, v: number, chunk: number): void {
  test(`lmHeadBackward() matches the reference for N=${n} d=${d} V=${v} in chunks of ${chunk}`, async (dev) => {
    const x = problem(n * d + v, n, d, v);
    const h = dev.upload("hidden", x.hidden, [n, d]);
    const w = dev.upload("weight", x.weight, [v, d]);
    const t = dev.upload("targets", x.targets, [n], "u32");
    const dl = dev.upload("dlogp", x.dlogp, [n]);
    const logp = dev.empty("logp", [n]), lse = dev.empty("lse", [n]);
    lmHeadForward(dev, { hidden: h, weight: w, targets: t, logp, lse, chunkRows: chunk });
    const dh = dev.empty("dh", [n, d]);
    const dw0 = new Rng(5).normals(v * d);
    const dw = dev.upload("dw", dw0, [v, d]);
    lmHeadBackward(dev, {
      hidden: h,
      weight: w,
      targets: t,
      lse,
      dlogp: dl,
      dhidden: dh,
      dweight: dw,
      chunkRows: chunk,
    });
    const ref = lmHeadBackwardRef(x.hidden, x.weight, x.targets, x.dlogp, n, d, v);
    assertClose(await dh.read(), ref.dhidden, { atol: 1e-5, rtol: 1e-4, label: "dhidden" });
    // dweight accumulates onto what it held.
    assertClose(await dw.read(), ref.dweight.map((g, i) => g + dw0[i]), {
      atol: 1e-5,
      rtol: 1e-4,
      label: "dweight",
    });
  });
}

test("at N=64 d=128 in chunks of 2048 the blocked form turns dhidden's product, not dW's", (dev) => {
  // dhidden = dlogits W_chunk ("nn", K = 2048: through a transposed copy of W's rows) and
  // dW_chunk = dlogits^T hidden ("tn": gemm_tn16 directly into dW's rows), so the test above
  // at that size covers both.
  const before = dev.gemm;
  dev.gemm = { form: "blocked", wx: 16, wy: 16, bk: 16 };
  try {
    assert.ok(relayout(dev, 64, 128, 2048, false, false), "dhidden");
    assert.ok(!relayout(dev, 2048, 128, 64, true, false), "dweight");
    assert.equal(blockedEntry(2048, 128, 64, true, false)[0], "gemm_tn16");
  } finally {
    dev.gemm = before;
  }
  return Promise.resolve();
});

test("the head's epilogues in the product give the same bits as the stored-logits passes", async (dev) => {
  // 40 rows, chunks of 512 and a last one of 488 (not a multiple of 16): gemm_nt16_fold runs
  // both in the blocked form; targets in the last 16 ids and in partial blocks, and rows
  // without one.
  const n = 40, d = 32, v = 1000, chunk = 512;
  const x = problem(21, n, d, v);
  x.targets.set([999, 995, 511, 512, 0, 984], 0);
  const before = dev.gemm;
  dev.gemm = { form: "blocked", wx: 16, wy: 16, bk: 16 };
  try {
    const h = dev.upload("hidden", x.hidden, [n, d]);
    const w = dev.upload("weight", x.weight, [v, d]);
    const t = dev.upload("targets", x.targets, [n], "u32");
    const ref = lmHeadForwardRef(x.hidden, x.weight, x.targets, n, d, v);
    const out: Float32Array[][] = [];
    for (const fuse of [true, false]) {
      const logp = dev.empty("logp", [n]), lse = dev.empty("lse", [n]), ent = dev.empty("e", [n]);
      await dev.sync();
      dev.trim();
      const live = dev.memory.live;
      dev.resetPeak();
      lmHeadForward(dev, {
        hidden: h,
        weight: w,
        targets: t,
        logp,
        lse,
        entropy: ent,
        chunkRows: chunk,
        fuse,
      });
      await dev.sync();
      const extra = dev.memory.peak - live;
      // The stored path holds a chunk of logits; the fused one only partials and state.
      const logits = n * chunk * 4;
      assert.ok(fuse ? extra < logits : extra >= logits, `fuse=${fuse}: ${extra} bytes`);
      const got = [await logp.read(), await lse.read(), await ent.read()];
      assertClose(got[0], ref.logp, { atol: 2e-5, rtol: 1e-5, label: `logp fuse=${fuse}` });
      assertClose(got[1], ref.lse, { atol: 2e-5, rtol: 1e-5, label: `lse fuse=${fuse}` });
      assertClose(got[2], ref.entropy, { atol: 2e-5, rtol: 1e-5, label: `entropy fuse=${fuse}` });
      out.push(got);
    }
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(new Uint32Array(out[0][i].buffer), new Uint32Array(out[1][i].buffer));
    }
    // The backward: dlogits straight from the product (gemm_nt16_dlogits) or in a second pass.
    const lse = dev.upload("lse", out[0][1], [n]);
    const dl = dev.upload("dlogp", x.dlogp, [n]);
    const grads: Float32Array[][] = [];
    for (const fuse of [true, false]) {
      const dh = dev.empty("dh", [n, d]), dw = dev.zeros("dw", [v, d]);
      lmHeadBackward(dev, {
        hidden: h,
        weight: w,
        targets: t,
        lse,
        dlogp: dl,
        dhidden: dh,
        dweight: dw,
        chunkRows: chunk,
        fuse,
      });
      grads.push([await dh.read(), await dw.read()]);
    }
    const bref = lmHeadBackwardRef(x.hidden, x.weight, x.targets, x.dlogp, n, d, v);
    assertClose(grads[0][0], bref.dhidden, { atol: 1e-5, rtol: 1e-4, label: "dhidden" });
    assertClose(grads[0][1], bref.dweight, { atol: 1e-5, rtol: 1e-4, label: "dweight" });
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(new Uint32Array(grads[0][i].buffer), new Uint32Array(grads[1][i].buffer));
    }
  } finally {
    dev.gemm = before;
  }
});

test("the head through textures gives the storage kernels' bits, forward and backward", async (dev) => {
  // 130 rows, chunks of 512 and a last one of 488: every chunk's product reads textures
  // (gemm_nt_tex_fold, gemm_nt_tex_dlogits; the first chunk's nn and tn too, at d = 128);
  // targets in the last ids and in partial blocks, and rows without one.
  const n = 130, d = 128, v = 1000, chunk = 512;
  const x = problem(23, n, d, v);
  x.targets.set([999, 995, 511, 512, 0, 984, 488], 0);
  const before = [dev.gemm, dev.gemmTextures] as const;
  dev.gemm = { form: "blocked", wx: 16, wy: 16, bk: 16 };
  try {
    const h = dev.upload("hidden", x.hidden, [n, d]);
    const w = dev.upload("weight", x.weight, [v, d]);
    const t = dev.upload("targets", x.targets, [n], "u32");
    const dl = dev.upload("dlogp", x.dlogp, [n]);
    dev.gemmTextures = true;
    assert.ok(sampled(dev, h, w.rows(512, 488), n, 488, d, false, true), "the last chunk");
    // The first chunk's backward products (the last one's, 488 wide, stay in storage).
    const dlogits = dev.empty("dlogits", [n, 512]);
    assert.ok(sampled(dev, dlogits, w.rows(0, 512), n, d, 512, false, false), "dhidden's");
    assert.ok(sampled(dev, dlogits, h, 512, d, n, true, false), "dW's");
    dlogits.dispose();
    const runs: Float32Array[][] = [];
    for (const textures of [true, false]) {
      dev.gemmTextures = textures;
      const logp = dev.empty("logp", [n]), lse = dev.empty("lse", [n]), ent = dev.empty("e", [n]);
      const args = { hidden: h, weight: w, targets: t, chunkRows: chunk };
      lmHeadForward(dev, { ...args, logp, lse, entropy: ent });
      const dh = dev.empty("dh", [n, d]), dw = dev.zeros("dw", [v, d]);
      lmHeadBackward(dev, { ...args, lse, dlogp: dl, dhidden: dh, dweight: dw });
      runs.push(await Promise.all([logp, lse, ent, dh, dw].map((x) => x.read())));
    }
    const ref = lmHeadForwardRef(x.hidden, x.weight, x.targets, n, d, v);
    const bref = lmHeadBackwardRef(x.hidden, x.weight, x.targets, x.dlogp, n, d, v);
    const want = [ref.logp, ref.lse, ref.entropy, bref.dhidden, bref.dweight];
    const names = ["logp", "lse", "entropy", "dhidden", "dweight"];
    for (let i = 0; i < 5; i++) {
      const tol = i < 3 ? { atol: 2e-5, rtol: 1e-5 } : { atol: 1e-5, rtol: 1e-4 };
      assertClose(runs[0][i], want[i], { ...tol, label: names[i] });
      assertSameBits(runs[0][i], runs[1][i], names[i]);
    }
  } finally {
    [dev.gemm, dev.gemmTextures] = before;
  }
});

test("the CPU head backward matches finite differences of the CPU forward", () => {
  const n = 3, d = 4, v = 9;
  const x = problem(77, n, d, v);
  const f = (hid: ArrayLike<number>, wt: ArrayLike<number>) => {
    const r = lmHeadForwardRef(hid, wt, x.targets, n, d, v);
    return r.logp.reduce((s, lp, i) => s + lp * x.dlogp[i], 0);
  };
  const g = lmHeadBackwardRef(x.hidden, x.weight, x.targets, x.dlogp, n, d, v);
  const h64 = Float64Array.from(x.hidden), w64 = Float64Array.from(x.weight);
  assertClose(g.dhidden, finiteDiff((h) => f(h, w64), h64), { atol: 1e-6, rtol: 1e-5 });
  assertClose(g.dweight, finiteDiff((w) => f(h64, w), w64), { atol: 1e-6, rtol: 1e-5 });
  return Promise.resolve();
});

test("lmHeadForward() run twice gives identical bits", async (dev) => {
  const n = 6, d = 8, v = 300;
  const x = problem(3, n, d, v);
  const h = dev.upload("hidden", x.hidden, [n, d]);
  const w = dev.upload("weight", x.weight, [v, d]);
  const t = dev.upload("targets", x.targets, [n], "u32");
  const run = async () => {
    const logp = dev.empty("logp", [n]), lse = dev.empty("lse", [n]);
    lmHeadForward(dev, { hidden: h, weight: w, targets: t, logp, lse, chunkRows: 64 });
    return [await logp.read(), await lse.read()];
  };
  const [a, b] = [await run(), await run()];
  assert.deepEqual(new Uint32Array(a[0].buffer), new Uint32Array(b[0].buffer));
  assert.deepEqual(new Uint32Array(a[1].buffer), new Uint32Array(b[1].buffer));
});

test("lmHeadForward() names the tensors on a dimension mismatch", (dev) => {
  const h = dev.empty("hidden", [4, 8]), w = dev.empty("vocab", [10, 6]);
  const t = dev.zeros("targets", [4], "u32");
  assert.throws(
    () =>
      lmHeadForward(dev, {
        hidden: h,
        weight: w,
        targets: t,
        logp: dev.empty("a", [4]),
        lse: dev.empty("b", [4]),
      }),
    /vocab/,
  );
  return Promise.resolve();
});
