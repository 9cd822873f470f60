import assert from "node:assert/strict";
import {
  attentionBackward,
  attentionDecode,
  type AttentionDims,
  attentionForward,
  type AttentionTiles,
  kvCacheAppend,
} from "../engine/attention.ts";
import {
  attentionBackwardRef,
  attentionDecodeRef,
  attentionForwardRef,
} from "../engine/attention_ref.ts";
import type { AttentionForm, Device } from "../engine/device.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import { assertClose, assertSameBits, dot, finiteDiff, gpuTest, testDevice } from "./util.ts";

interface Case {
  dims: AttentionDims;
  /** Packed sequence boundaries [B + 1]. */
  starts: number[];
  tiles?: AttentionTiles;
}

// Sequences of different lengths including 1 and an empty one; N = 70 is not a multiple of the
// rows per workgroup (256 forward and dq, 128 dk/dv). GQA groups of 2, 3 (= 1 KV head) and 1;
// head dims 4, 8, 64 and 80 (> 64 uses the second half of the row registers); 2-invocation
// workgroups so that one sequence spans many workgroups and rows of one invocation fall in
// different sequences.
const CASES: Case[] = [
  { dims: { numHeads: 4, numKvHeads: 2, headDim: 8 }, starts: [0, 1, 4, 4, 70] },
  { dims: { numHeads: 3, numKvHeads: 1, headDim: 4 }, starts: [0, 5, 6, 13] },
  { dims: { numHeads: 2, numKvHeads: 2, headDim: 64 }, starts: [0, 1, 2, 9] },
  {
    dims: { numHeads: 2, numKvHeads: 1, headDim: 8 },
    starts: [0, 3, 20, 21, 37],
    tiles: { br: 2 },
  },
  { dims: { numHeads: 2, numKvHeads: 1, headDim: 80 }, starts: [0, 2, 7] },
];

const label = (c: Case) =>
  `Hq=${c.dims.numHeads} Hkv=${c.dims.numKvHeads} D=${c.dims.headDim} starts=[${c.starts}]` +
  (c.tiles ? ` br=${c.tiles.br}` : "");

function inputs(dev: Device, rng: Rng, c: Case) {
  const { numHeads: hq, numKvHeads: hkv, headDim: hd } = c.dims;
  const n = c.starts[c.starts.length - 1];
  const host = {
    q: rng.normals(n * hq * hd),
    k: rng.normals(n * hkv * hd),
    v: rng.normals(n * hkv * hd),
    dout: rng.normals(n * hq * hd),
  };
  const t = {
    q: dev.upload("q", host.q, [n, hq * hd]),
    k: dev.upload("k", host.k, [n, hkv * hd]),
    v: dev.upload("v", host.v, [n, hkv * hd]),
    seqStarts: dev.upload("seq_starts", c.starts, [c.starts.length], "u32"),
    out: dev.empty("out", [n, hq * hd]),
    lse: dev.empty("lse", [hq, n]),
  };
  return { n, host, t };
}

/**
 * Registers the test once per attention form ("rows4", llvmpipe's default; "rows1", the GPU
 * default), with dev.attention set for its duration.
 */
function test(name: string, fn: (dev: Device) => Promise<void>): void {
  for (const form of ["rows4", "rows1"] as AttentionForm[]) {
    Deno.test(`${name} [${form}]`, gpuTest, async () => {
      const dev = await testDevice();
      const before = dev.attention;
      dev.attention = form;
      try {
        await fn(dev);
      } finally {
        dev.attention = before;
      }
    });
  }
}

function disposeAll(ts: Tensor[]) {
  for (const t of ts) t.dispose();
}

test(
  "attentionForward() matches the CPU reference for packed sequences of different lengths",
  async (dev) => {
    const rng = new Rng(21);
    for (const c of CASES) {
      const { host, t } = inputs(dev, rng, c);
      attentionForward(dev, { ...t, ...c.dims, tiles: c.tiles });
      const ref = attentionForwardRef(host.q, host.k, host.v, c.starts, c.dims);
      assertClose(await t.out.read(), ref.out, { atol: 2e-6, rtol: 1e-5, label: label(c) });
      assertClose(await t.lse.read(), ref.lse, { atol: 2e-6, rtol: 1e-5, label: label(c) });
      disposeAll(Object.values(t));
    }
  },
);

test(
  "attentionBackward() matches the CPU backward for dq, dk and dv",
  async (dev) => {
    const rng = new Rng(22);
    for (const c of CASES) {
      const { n, host, t } = inputs(dev, rng, c);
      const { numHeads: hq, numKvHeads: hkv, headDim: hd } = c.dims;
      const dout = dev.upload("dout", host.dout, [n, hq * hd]);
      const dq = dev.empty("dq", [n, hq * hd]);
      const dk = dev.empty("dk", [n, hkv * hd]), dv = dev.empty("dv", [n, hkv * hd]);
      attentionForward(dev, { ...t, ...c.dims, tiles: c.tiles });
      attentionBackward(dev, { ...t, dout, dq, dk, dv, ...c.dims, tiles: c.tiles });
      const ref = attentionBackwardRef(host.q, host.k, host.v, host.dout, c.starts, c.dims);
      // dk and dv sum up to G * 66 terms of either sign: a slightly larger absolute tolerance.
      const tol = { atol: 1e-5, rtol: 1e-4 };
      assertClose(await dq.read(), ref.dq, { ...tol, label: `dq ${label(c)}` });
      assertClose(await dk.read(), ref.dk, { ...tol, label: `dk ${label(c)}` });
      assertClose(await dv.read(), ref.dv, { ...tol, label: `dv ${label(c)}` });
      disposeAll([...Object.values(t), dout, dq, dk, dv]);
    }
  },
);

Deno.test("the CPU attention backward matches finite differences of the forward", () => {
  const rng = new Rng(23);
  for (
    const [dims, starts] of [
      [{ numHeads: 2, numKvHeads: 1, headDim: 4 }, [0, 1, 5]],
      [{ numHeads: 3, numKvHeads: 3, headDim: 4 }, [0, 3, 4, 6]],
    ] as [AttentionDims, number[]][]
  ) {
    const n = starts[starts.length - 1];
    const { numHeads: hq, numKvHeads: hkv, headDim: hd } = dims;
    const q = Float64Array.from(rng.normals(n * hq * hd));
    const k = Float64Array.from(rng.normals(n * hkv * hd));
    const v = Float64Array.from(rng.normals(n * hkv * hd));
    const dout = rng.normals(n * hq * hd);
    const g = attentionBackwardRef(q, k, v, dout, starts, dims);
    const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) =>
      dot(attentionForwardRef(qq, kk, vv, starts, dims).out, dout);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    const l = `Hq=${hq} Hkv=${hkv} starts=[${starts}]`;
    assertClose(g.dq, finiteDiff((x) => loss(x, k, v), q), { ...tol, label: `dq ${l}` });
    assertClose(g.dk, finiteDiff((x) => loss(q, x, v), k), { ...tol, label: `dk ${l}` });
    assertClose(g.dv, finiteDiff((x) => loss(q, k, x), v), { ...tol, label: `dv ${l}` });
  }
});

/** Rows `rows` of a [N, width] array, concatenated. */
function gatherRows(x: ArrayLike<number>, rows: number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    for (let e = 0; e < width; e++) out[i * width + e] = x[r * width + e];
  });
  return out;
}

test(
  "attentionDecode() after a ragged prefill equals the rows of a full causal forward",
  async (dev) => {
    const rng = new Rng(24);
    for (
      const dims of [
        { numHeads: 4, numKvHeads: 2, headDim: 8 },
        { numHeads: 2, numKvHeads: 2, headDim: 64 },
      ]
    ) {
      const { numHeads: hq, numKvHeads: hkv, headDim: hd } = dims;
      const qw = hq * hd, kw = hkv * hd;
      // Three sequences: prompts of 1, 5 and 3 tokens, then 4 single-token steps and one
      // step of 2 tokens each (Tnew = 2); maxLen leaves spare rows at the end.
      const prompts = [1, 5, 3];
      const steps = [1, 1, 1, 1, 2];
      const extra = steps.reduce((a, b) => a + b, 0);
      const lens = prompts.map((p) => p + extra);
      const starts = [0];
      for (const l of lens) starts.push(starts[starts.length - 1] + l);
      const c: Case = { dims, starts };
      const { host, t } = inputs(dev, rng, c);
      attentionForward(dev, { ...t, ...dims });
      const full = await t.out.read();
      const ref = attentionForwardRef(host.q, host.k, host.v, starts, dims);
      assertClose(full, ref.out, { atol: 2e-6, rtol: 1e-5, label: "full forward" });

      const B = prompts.length, maxLen = Math.max(...lens) + 2;
      const kCache = dev.zeros("k_cache", [B, maxLen, kw]);
      const vCache = dev.zeros("v_cache", [B, maxLen, kw]);
      const lengths = dev.zeros("lengths", [B], "u32");
      // Ragged prefill: the prompts packed.
      const pStarts = [0];
      const pRows: number[] = [];
      prompts.forEach((p, b) => {
        pStarts.push(pStarts[b] + p);
        for (let i = 0; i < p; i++) pRows.push(starts[b] + i);
      });
      const pk = dev.upload("prompt_k", gatherRows(host.k, pRows, kw), [pRows.length, kw]);
      const pv = dev.upload("prompt_v", gatherRows(host.v, pRows, kw), [pRows.length, kw]);
      const ps = dev.upload("prompt_starts", pStarts, [B + 1], "u32");
      kvCacheAppend(dev, {
        k: pk,
        v: pv,
        kCache,
        vCache,
        lengths,
        numKvHeads: hkv,
        headDim: hd,
        seqStarts: ps,
      });
      const cur = prompts.slice();
      dev.write(lengths, Uint32Array.from(cur));
      for (const tNew of steps) {
        const rows: number[] = [];
        for (let b = 0; b < B; b++) {
          for (let s = 0; s < tNew; s++) rows.push(starts[b] + cur[b] + s);
        }
        const sq = dev.upload("step_q", gatherRows(host.q, rows, qw), [rows.length, qw]);
        const sk = dev.upload("step_k", gatherRows(host.k, rows, kw), [rows.length, kw]);
        const sv = dev.upload("step_v", gatherRows(host.v, rows, kw), [rows.length, kw]);
        const so = dev.empty("step_out", [rows.length, qw]);
        const sl = dev.empty("step_lse", [hq, rows.length]);
        kvCacheAppend(dev, { k: sk, v: sv, kCache, vCache, lengths, numKvHeads: hkv, headDim: hd });
        attentionDecode(dev, { q: sq, kCache, vCache, lengths, out: so, lse: sl, ...dims });
        const l = `Hq=${hq} D=${hd} step at lengths [${cur}] Tnew=${tNew}`;
        const got = await so.read();
        assertClose(got, gatherRows(ref.out, rows, qw), { atol: 2e-6, rtol: 1e-5, label: l });
        assertClose(got, gatherRows(full, rows, qw), { atol: 2e-6, rtol: 1e-5, label: `${l} gpu` });
        const lseRef = new Float64Array(hq * rows.length);
        for (let h = 0; h < hq; h++) {
          rows.forEach((r, i) => lseRef[h * rows.length + i] = ref.lse[h * starts[B] + r]);
        }
        assertClose(await sl.read(), lseRef, { atol: 2e-6, rtol: 1e-5, label: `lse ${l}` });
        // The decode reference on the cache as the GPU holds it agrees as well.
        const dref = attentionDecodeRef(
          gatherRows(host.q, rows, qw),
          await kCache.read(),
          await vCache.read(),
          cur,
          maxLen,
          dims,
        );
        assertClose(got, dref.out, { atol: 2e-6, rtol: 1e-5, label: `decode ref ${l}` });
        // The caller advances the lengths.
        for (let b = 0; b < B; b++) cur[b] += tNew;
        dev.write(lengths, Uint32Array.from(cur));
        disposeAll([sq, sk, sv, so, sl]);
      }
      disposeAll([...Object.values(t), kCache, vCache, lengths, pk, pv, ps]);
    }
  },
);

Deno.test(
  "kvCacheAppend() drops rows past maxLen and leaves other cache rows untouched",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const kw = 4, B = 2, maxLen = 3;
    const kCache = dev.upload("k_cache", new Float32Array(B * maxLen * kw).fill(-1), [
      B,
      maxLen,
      kw,
    ]);
    const vCache = dev.upload("v_cache", new Float32Array(B * maxLen * kw).fill(-2), [
      B,
      maxLen,
      kw,
    ]);
    const lengths = dev.upload("lengths", [1, 2], [B], "u32");
    const k = dev.upload("k", Array.from({ length: 4 * kw }, (_, i) => i), [4, kw]);
    const v = dev.upload("v", Array.from({ length: 4 * kw }, (_, i) => 100 + i), [4, kw]);
    kvCacheAppend(dev, { k, v, kCache, vCache, lengths, numKvHeads: 1, headDim: 4 });
    const kc = await kCache.read(), vc = await vCache.read();
    const expK = new Float32Array(B * maxLen * kw).fill(-1);
    const expV = new Float32Array(B * maxLen * kw).fill(-2);
    // Sequence 0: rows 0, 1 of k go to cache rows 1, 2. Sequence 1: row 2 goes to cache row 2,
    // row 3 would land at row 3 = maxLen and is dropped.
    for (const [src, b, dst] of [[0, 0, 1], [1, 0, 2], [2, 1, 2]]) {
      for (let e = 0; e < kw; e++) {
        expK[(b * maxLen + dst) * kw + e] = src * kw + e;
        expV[(b * maxLen + dst) * kw + e] = 100 + src * kw + e;
      }
    }
    assert.deepEqual(Array.from(kc), Array.from(expK));
    assert.deepEqual(Array.from(vc), Array.from(expV));
    disposeAll([kCache, vCache, lengths, k, v]);
  },
);

test(
  "attention forward, backward and decode give identical bits when run twice",
  async (dev) => {
    const rng = new Rng(25);
    const c = CASES[0];
    const { numHeads: hq, numKvHeads: hkv, headDim: hd } = c.dims;
    const { n, host, t } = inputs(dev, rng, c);
    const dout = dev.upload("dout", host.dout, [n, hq * hd]);
    const B = c.starts.length - 1, maxLen = 80;
    const kCache = dev.zeros("k_cache", [B, maxLen, hkv * hd]);
    const vCache = dev.zeros("v_cache", [B, maxLen, hkv * hd]);
    const lengths = dev.zeros("lengths", [B], "u32");
    kvCacheAppend(dev, { ...t, kCache, vCache, lengths, ...c.dims });
    // Each sequence's last appended row becomes the query position.
    dev.write(lengths, [0, 2, 0, 65]);
    const dq0 = dev.upload("decode_q", rng.normals(B * hq * hd), [B, hq * hd]);
    const runs: Float32Array[][] = [];
    for (let r = 0; r < 2; r++) {
      const dq = dev.empty("dq", [n, hq * hd]);
      const dk = dev.empty("dk", [n, hkv * hd]), dv = dev.empty("dv", [n, hkv * hd]);
      const out = dev.empty("out", [n, hq * hd]), lse = dev.empty("lse", [hq, n]);
      const dOut = dev.empty("decode_out", [B, hq * hd]);
      attentionForward(dev, { ...t, out, lse, ...c.dims });
      attentionBackward(dev, { ...t, out, lse, dout, dq, dk, dv, ...c.dims });
      attentionDecode(dev, { q: dq0, kCache, vCache, lengths, out: dOut, ...c.dims });
      runs.push(await Promise.all([out, lse, dq, dk, dv, dOut].map((x) => x.read())));
      disposeAll([dq, dk, dv, out, lse, dOut]);
    }
    for (const [i, name] of ["out", "lse", "dq", "dk", "dv", "decode out"].entries()) {
      assertSameBits(runs[0][i], runs[1][i], name);
    }
    disposeAll([...Object.values(t), dout, kCache, vCache, lengths, dq0]);
  },
);

Deno.test("attention wrappers name the tensors when shapes do not match", gpuTest, async () => {
  const dev = await testDevice();
  const dims = { numHeads: 4, numKvHeads: 2, headDim: 8 };
  const n = 6;
  const q = dev.zeros("q_proj", [n, 32]), k = dev.zeros("k_proj", [n, 16]);
  const v = dev.zeros("v_proj", [n, 16]), badV = dev.zeros("v_bad", [n, 8]);
  const s = dev.upload("seq_starts", [0, 2, 6], [3], "u32");
  const sf = dev.zeros("starts_f32", [3]);
  const out = dev.empty("out", [n, 32]), lse = dev.empty("lse", [4, n]);
  const badLse = dev.empty("lse_t", [n, 4]);
  const base = { q, k, v, seqStarts: s, out, lse, ...dims };
  assert.throws(() => attentionForward(dev, { ...base, v: badV }), /v_bad \[6, 8\].*\[6, 16\]/);
  assert.throws(() => attentionForward(dev, { ...base, lse: badLse }), /lse_t \[6, 4\]/);
  assert.throws(
    () => attentionForward(dev, { ...base, seqStarts: sf as unknown as Tensor<"u32"> }),
    /starts_f32/,
  );
  assert.throws(() => attentionForward(dev, { ...base, numKvHeads: 3 }), /numKvHeads = 3/);
  assert.throws(
    () => attentionForward(dev, { ...base, headDim: 6, numHeads: 4, numKvHeads: 2 }),
    /headDim = 6/,
  );
  assert.throws(() => attentionForward(dev, { ...base, out: q }), /out.*q_proj|q_proj/);
  const dq = dev.empty("dq", [n, 32]), dk = dev.empty("dk", [n, 16]);
  const dvBad = dev.empty("dv_bad", [n + 1, 16]);
  assert.throws(
    () => attentionBackward(dev, { ...base, dout: out, dq, dk, dv: dvBad }),
    /dv_bad \[7, 16\]/,
  );
  const kc = dev.zeros("k_cache", [2, 5, 16]), vc = dev.zeros("v_cache", [2, 4, 16]);
  const lengths = dev.zeros("lengths", [2], "u32");
  assert.throws(
    () => kvCacheAppend(dev, { k, v, kCache: kc, vCache: vc, lengths, ...dims }),
    /v_cache \[2, 4, 16\]/,
  );
  const q3 = dev.zeros("q_step", [3, 32]), o3 = dev.empty("o_step", [3, 32]);
  assert.throws(
    () => attentionDecode(dev, { q: q3, kCache: kc, vCache: kc, lengths, out: o3, ...dims }),
    /q_step \[3, 32\]/,
  );
  disposeAll([q, k, v, badV, s, sf, out, lse, badLse, dq, dk, dvBad, kc, vc, lengths, q3, o3]);
});
