import assert from "node:assert/strict";
import {
  HeadTextures,
  sampleTokens,
  type SampleTokensArgs,
  samplingScratchElements,
} from "../engine/sampling.ts";
import {
  logitsRef,
  sampleRowRef,
  sampleTokensRef,
  samplingUniform,
} from "../engine/sampling_ref.ts";
import { Rng } from "../engine/rng.ts";
import type { Tensor } from "../engine/tensor.ts";
import type { Device } from "../engine/device.ts";
import { assertClose, assertSameBits, gpuTest, testDevice } from "./util.ts";

// A row's token is compared with the reference only where the reference's distance to a
// decision boundary (logit gap or mass fraction, see SampleRowRef.margin) is above this: the
// GPU logits carry fp32 rounding of about 1e-6 and its masses are fp32 sums.
const MARGIN = 2e-5;

interface Case {
  rows: number;
  d: number;
  vocab: number;
  h: Float32Array;
  w: Float32Array;
  th: Tensor;
  tw: Tensor;
  tokens: Tensor<"u32">;
  logp: Tensor<"f32">;
}

// Logits have a standard deviation of about 1.2 * scale (hidden N(0, 1), weight N(0, 0.3^2)).
function makeCase(dev: Device, rng: Rng, rows: number, d: number, vocab: number, scale = 1): Case {
  const h = rng.normals(rows * d), w = rng.normals(vocab * d, (0.3 * scale) * 4 / Math.sqrt(d));
  return {
    rows,
    d,
    vocab,
    h,
    w,
    th: dev.upload("hidden", h, [rows, d]),
    tw: dev.upload("lm_head", w, [vocab, d]),
    tokens: dev.empty("tokens", [rows], "u32"),
    logp: dev.empty("logp", [rows]),
  };
}

function dispose(c: Case): void {
  for (const t of [c.th, c.tw, c.tokens, c.logp]) t.dispose();
}

type Opts = Omit<SampleTokensArgs, "hidden" | "weight" | "tokens" | "logp">;

async function run(dev: Device, c: Case, o: Opts): Promise<[Uint32Array, Float32Array]> {
  sampleTokens(dev, { hidden: c.th, weight: c.tw, tokens: c.tokens, logp: c.logp, ...o });
  return [await c.tokens.read(), await c.logp.read()];
}

function ref(c: Case, o: Opts) {
  return sampleTokensRef(refArgs(c, o));
}

function refArgs(c: Case, o: Opts) {
  return {
    hidden: c.h,
    weight: c.w,
    rows: c.rows,
    d: c.d,
    vocabLimit: o.vocabLimit ?? c.vocab,
    // The kernel receives these as f32.
    temperature: Math.fround(o.temperature),
    topK: o.topK,
    topP: Math.fround(o.topP ?? 1),
    seed: o.seed,
    counter: o.counter,
  };
}

/** log_softmax(z)[r, tokens[r]] over ids < vocabLimit, float64. */
function refLogp(c: Case, tokens: Uint32Array, vocabLimit = c.vocab): Float64Array {
  const z = logitsRef(c.h, c.w, c.rows, c.d, vocabLimit);
  const out = new Float64Array(c.rows);
  for (let r = 0; r < c.rows; r++) {
    const row = z.subarray(r * vocabLimit, (r + 1) * vocabLimit);
    let m = -Infinity;
    for (const x of row) m = Math.max(m, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - m);
    out[r] = row[tokens[r]] - m - Math.log(s);
  }
  return out;
}

/** Asserts token equality on the rows with a clear margin; returns [compared, rows]. */
function compareTokens(got: Uint32Array, r: ReturnType<typeof ref>, label: string): number {
  let compared = 0;
  for (let i = 0; i < got.length; i++) {
    if (r.margin[i] <= MARGIN) continue;
    compared++;
    assert.equal(got[i], r.tokens[i], `${label} row ${i}: margin ${r.margin[i]}`);
  }
  return compared;
}

// (rows, d, V): the 1 x 8 logits layout (2 rows), the 4 x 8 layout with partly filled blocks,
// the scalar path (d % 4 != 0), the 8 x 8 layout with partly filled blocks (13 rows, 90 ids),
// and 64 rows over a 1000-id vocabulary (16 x 16 on llvmpipe).
const SHAPES: [number, number, number][] = [
  [2, 16, 50],
  [3, 16, 50],
  [7, 18, 333],
  [13, 16, 90],
  [64, 32, 1000],
];

Deno.test(
  "sampleTokens() at temperature 0 picks the argmax of the reference logits",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(21);
    for (const [rows, d, vocab] of SHAPES) {
      const c = makeCase(dev, rng, rows, d, vocab);
      const o = { temperature: 0, seed: 1, counter: 0 };
      const [tokens, logp] = await run(dev, c, o);
      const r = ref(c, o);
      const label = `greedy [${rows}, ${d}] x V=${vocab}`;
      assert.ok(compareTokens(tokens, r, label) >= rows * 0.9, `${label}: too many near-ties`);
      assertClose(logp, refLogp(c, tokens), { atol: 1e-5, rtol: 1e-5, label: `logp ${label}` });
      dispose(c);
    }
  },
);

Deno.test(
  "sampleTokens() at temperature 0 breaks exact ties to the lowest id",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(22);
    const d = 16, vocab = 40;
    const h = Float32Array.from(rng.normals(d), Math.abs);
    const w = rng.normals(vocab * d, 0.01);
    // Rows 29 and 11 are identical and largest: bit-identical logits.
    for (const v of [11, 29]) w.fill(1, v * d, (v + 1) * d);
    const th = dev.upload("hidden", h, [1, d]), tw = dev.upload("lm_head", w, [vocab, d]);
    const tokens = dev.empty("tokens", [1], "u32"), logp = dev.empty("logp", [1]);
    sampleTokens(dev, {
      hidden: th,
      weight: tw,
      tokens,
      logp,
      temperature: 0,
      seed: 0,
      counter: 0,
    });
    assert.deepEqual(Array.from(await tokens.read()), [11]);
    for (const t of [th, tw, tokens, logp]) t.dispose();
  },
);

Deno.test(
  "sampleTokens() draws the reference token for fixed seeds with temperature, top-k and top-p",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(23);
    const combos: Opts[] = [
      { temperature: 0.7, seed: 5, counter: 0 },
      { temperature: 0.7, topK: 5, seed: 6, counter: 1 },
      { temperature: 0.7, topP: 0.9, seed: 7, counter: 2 },
      { temperature: 0.7, topK: 5, topP: 0.9, seed: 8, counter: 3 },
      { temperature: 1.3, topK: 40, topP: 0.5, seed: 0xffffffff, counter: 0xfffffffe },
      { temperature: 1, topK: 1000000, seed: 9, counter: 4 },
    ];
    let compared = 0, total = 0;
    for (const [rows, d, vocab] of SHAPES) {
      const c = makeCase(dev, rng, rows, d, vocab);
      for (const o of combos) {
        const [tokens, logp] = await run(dev, c, o);
        const r = ref(c, o);
        const label = `[${rows}, ${d}] x V=${vocab} ${JSON.stringify(o)}`;
        compared += compareTokens(tokens, r, label);
        total += rows;
        // Whatever was drawn, logp is its unfiltered T = 1 log-softmax value.
        assertClose(logp, refLogp(c, tokens), { atol: 1e-5, rtol: 1e-5, label: `logp ${label}` });
        for (let i = 0; i < rows; i++) {
          assert.ok(r.probs[i][tokens[i]] > 0, `${label} row ${i}: token ${tokens[i]} is filtered`);
        }
      }
      dispose(c);
    }
    assert.ok(compared >= total * 0.9, `only ${compared} of ${total} rows had a clear margin`);
  },
);

Deno.test(
  "sampleTokens() with top-k 1, or a tiny temperature, equals greedy decoding",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(24);
    for (const [rows, d, vocab] of SHAPES) {
      const c = makeCase(dev, rng, rows, d, vocab);
      const [greedy, greedyLogp] = await run(dev, c, { temperature: 0, seed: 0, counter: 0 });
      const r = ref(c, { temperature: 0, seed: 0, counter: 0 });
      for (const temperature of [0.5, 2]) {
        const [t, lp] = await run(dev, c, { temperature, topK: 1, topP: 0.3, seed: 3, counter: 9 });
        for (let i = 0; i < rows; i++) {
          if (r.margin[i] > MARGIN) assert.equal(t[i], greedy[i], `row ${i} T=${temperature}`);
        }
        assertSameBits(lp, greedyLogp, `logp T=${temperature}`);
      }
      // A tiny temperature leaves the runner-up a probability of exp(-gap / T) < exp(-50).
      const [cold] = await run(dev, c, { temperature: 1e-4, seed: 4, counter: 2 });
      // At the smallest temperature every weight but the largest logit's is exactly 0.
      const [coldest, coldLogp] = await run(dev, c, { temperature: 1e-30, seed: 4, counter: 2 });
      for (let i = 0; i < rows; i++) {
        if (r.margin[i] > 5e-3) assert.equal(cold[i], greedy[i], `row ${i} T=1e-4`);
      }
      assertSameBits(coldest, greedy, "tokens T=1e-30");
      assertSameBits(coldLogp, greedyLogp, "logp T=1e-30");
      dispose(c);
    }
  },
);

Deno.test(
  "sampleTokens() repeats bits for one seed and counter and draws anew for another counter",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const c = makeCase(dev, new Rng(25), 64, 16, 200);
    const o = { temperature: 1, topP: 0.95, seed: 42, counter: 10 };
    const [t1, l1] = await run(dev, c, o);
    const [t2, l2] = await run(dev, c, o);
    assertSameBits(t1, t2, "tokens");
    assertSameBits(l1, l2, "logp");
    const [t3] = await run(dev, c, { ...o, counter: 11 });
    const [t4] = await run(dev, c, { ...o, seed: 43 });
    for (const [other, what] of [[t3, "counter"], [t4, "seed"]] as const) {
      let differ = 0;
      for (let i = 0; i < 64; i++) differ += t1[i] !== other[i] ? 1 : 0;
      // Each row's distribution is spread over many ids, so most draws change.
      assert.ok(differ >= 32, `another ${what} changed only ${differ} of 64 draws`);
    }
    dispose(c);
  },
);

Deno.test(
  "sampleTokens() draws match the sampling probabilities over 4032 seeded draws (chi-square)",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(26);
    const rows = 64, counters = 63, d = 16, vocab = 8;
    const h1 = rng.normals(d), w = rng.normals(vocab * d, 0.25);
    const h = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) h.set(h1, r * d);
    const th = dev.upload("hidden", h, [rows, d]), tw = dev.upload("lm_head", w, [vocab, d]);
    const tokens = dev.empty("tokens", [rows], "u32"), logp = dev.empty("logp", [rows]);
    const z = logitsRef(h1, w, 1, d, vocab);
    for (const o of [{ temperature: 1 }, { temperature: 0.7, topK: 5, topP: 0.9 }]) {
      const probs = sampleRowRef(z, { ...o, u: 0 }).probs;
      const counts = new Float64Array(vocab);
      for (let counter = 0; counter < counters; counter++) {
        sampleTokens(dev, { hidden: th, weight: tw, tokens, logp, ...o, seed: 1234, counter });
        for (const t of await tokens.read()) counts[t]++;
      }
      const n = rows * counters;
      let chi2 = 0, kept = 0;
      for (let v = 0; v < vocab; v++) {
        if (probs[v] === 0) {
          assert.equal(counts[v], 0, `${JSON.stringify(o)}: filtered id ${v} was drawn`);
          continue;
        }
        kept++;
        chi2 += (counts[v] - n * probs[v]) ** 2 / (n * probs[v]);
      }
      // At most 7 degrees of freedom; P(chi2 > 35) < 2e-5 for a correct sampler.
      assert.ok(kept >= 3, `${JSON.stringify(o)}: only ${kept} ids kept`);
      assert.ok(chi2 < 35, `${JSON.stringify(o)}: chi2 ${chi2.toFixed(1)} (${kept - 1} dof)`);
    }
    for (const t of [th, tw, tokens, logp]) t.dispose();
  },
);

Deno.test(
  "sampleTokens() keeps every id tied at the top-k and top-p thresholds",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rows = 64, d = 4;
    // hidden = e0, so the logits are exactly the first column of the head: ids 3 and 5 tie.
    const col = [1.0, 0.1, 0.2, 0.9, 0.3, 0.9, -1, 0.5];
    const w = new Float32Array(col.length * d);
    col.forEach((x, v) => w[v * d] = x);
    const h = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) h[r * d] = 1;
    const th = dev.upload("hidden", h, [rows, d]), tw = dev.upload("lm_head", w, [col.length, d]);
    const tokens = dev.empty("tokens", [rows], "u32"), logp = dev.empty("logp", [rows]);
    const z = Float64Array.from(col, Math.fround);
    for (const o of [{ temperature: 1, topK: 2 }, { temperature: 1, topP: 0.3 }]) {
      const probs = sampleRowRef(z, { ...o, u: 0 }).probs;
      const want = [0, 3, 5];
      assert.deepEqual([...probs.keys()].filter((v) => probs[v] > 0), want, "reference kept set");
      const seen = new Set<number>();
      for (let counter = 0; counter < 4; counter++) {
        sampleTokens(dev, { hidden: th, weight: tw, tokens, logp, ...o, seed: 99, counter });
        for (const t of await tokens.read()) seen.add(t);
      }
      assert.deepEqual([...seen].sort(), want, `${JSON.stringify(o)}: drawn ids`);
    }
    for (const t of [th, tw, tokens, logp]) t.dispose();
  },
);

Deno.test(
  "sampleTokens() draws only ids below vocabLimit and normalizes logp over them",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(27);
    const c = makeCase(dev, rng, 8, 16, 300);
    // Ids >= 100 would dominate: hidden states are positive and their rows are all 3.
    for (let i = 0; i < c.h.length; i++) c.h[i] = Math.abs(c.h[i]);
    c.w.fill(3, 100 * c.d);
    dev.write(c.th, c.h);
    dev.write(c.tw, c.w);
    for (const o of [{ temperature: 0 }, { temperature: 1.5 }, { temperature: 1, topK: 200 }]) {
      const oo = { ...o, vocabLimit: 100, seed: 3, counter: 1 };
      const [tokens, logp] = await run(dev, c, oo);
      for (const t of tokens) assert.ok(t < 100, `${JSON.stringify(oo)}: drew id ${t}`);
      const r = ref(c, oo);
      compareTokens(tokens, r, JSON.stringify(oo));
      assertClose(logp, refLogp(c, tokens, 100), { atol: 1e-5, rtol: 1e-5 });
    }
    dispose(c);
  },
);

Deno.test(
  "sampleTokens() gives the same bits with small vocabulary chunks, row groups and a given scratch",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(28);
    const sampled = { temperature: 0.8, topK: 20, topP: 0.9, seed: 77, counter: 5 };
    const plain = { temperature: 0.9, seed: 78, counter: 6 };
    const greedy = { temperature: 0, seed: 0, counter: 0 };
    for (const [rows, d, vocab] of [[20, 32, 333], [5, 18, 250]]) {
      const c = makeCase(dev, rng, rows, d, vocab);
      for (const o of [sampled, plain, greedy]) {
        const how = `d=${d} T=${o.temperature}`;
        const [t0, l0] = await run(dev, c, o);
        // d = 32: 2-row alignment steps, so 8-row chunks (42 of them); d = 18: 32-row steps.
        // At d = 32 on llvmpipe the runs use the 16 x 16 (greedy: its partials straight from
        // the registers), 4 x 8, 1 x 8, 8 x 8 and 16 x 16 layouts (the last with chunks of 8,
        // so greedy stores the logits).
        const [t1, l1] = await run(dev, c, { ...o, chunkRows: 8, groupRows: 3 });
        const scratch = dev.empty("scratch", [samplingScratchElements(dev, rows, vocab, 2)]);
        const [t2, l2] = await run(dev, c, { ...o, chunkRows: 1, groupRows: 2, scratch });
        const [t3, l3] = await run(dev, c, { ...o, groupRows: 7 });
        const [t4, l4] = await run(dev, c, { ...o, chunkRows: 8 });
        const runs = [
          [t1, l1, "chunks"],
          [t2, l2, "scratch"],
          [t3, l3, "groups of 7"],
          [t4, l4, "chunks of 8"],
        ] as const;
        for (const [t, l, what] of runs) {
          assertSameBits(t, t0, `tokens ${what} ${how}`);
          assertSameBits(l, l0, `logp ${what} ${how}`);
        }
        compareTokens(t0, ref(c, o), `chunked ${how}`);
        scratch.dispose();
      }
      dispose(c);
    }
  },
);

Deno.test("sampleTokens() gives the same bits in every logits layout", gpuTest, async () => {
  const dev = await testDevice();
  const rng = new Rng(30);
  const sampled = { temperature: 0.7, topK: 12, topP: 0.8, seed: 5, counter: 2 };
  const plain = { temperature: 1.2, seed: 6, counter: 4 };
  const greedy = { temperature: 0, seed: 0, counter: 0 };
  // Groups that fill no block, part of one, one, and several with a part (1 x 8 to 16 x 16);
  // plain draws pick their token from recomputed logits in 16 x 16, stored ones otherwise.
  for (const rows of [1, 2, 5, 9, 20]) {
    const c = makeCase(dev, rng, rows, 16, 300);
    for (const o of [sampled, plain, greedy]) {
      const [t0, l0] = await run(dev, c, o);
      compareTokens(t0, ref(c, o), `rows ${rows} T=${o.temperature}`);
      for (const layout of ["1x8", "4x8", "8x8", "16x16"] as const) {
        const [t, l] = await run(dev, c, { ...o, layout });
        const how = `${layout}, ${rows} rows, T=${o.temperature}`;
        assertSameBits(t, t0, `tokens ${how}`);
        assertSameBits(l, l0, `logp ${how}`);
      }
    }
    dispose(c);
  }
});

Deno.test(
  "sampleTokens() reads hidden and the head from textures with the storage path's bits",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const before = dev.gemmTextures;
    const rng = new Rng(32);
    const sampled = { temperature: 0.7, topK: 12, topP: 0.8, seed: 5, counter: 2 };
    const plain = { temperature: 1.2, seed: 6, counter: 4 };
    const greedy = { temperature: 0, seed: 0, counter: 0 };
    try {
      // d = 64 (rows of 256 bytes); 9 and 20 rows take the 16 x 16 layout; chunks of 256 ids
      // and a last one of 232, or the whole head in one.
      for (const [rows, chunkRows] of [[9, 256], [20, undefined]] as [number, number?][]) {
        const c = makeCase(dev, rng, rows, 64, 1000);
        dev.gemmTextures = true;
        assert.ok(HeadTextures.wanted(dev, rows, 64));
        const heads = HeadTextures.create(dev, c.tw, 1000, chunkRows ?? 1000);
        for (const o of [sampled, plain, greedy]) {
          const how = `${rows} rows, T=${o.temperature}`;
          const runs: [Uint32Array, Float32Array][] = [];
          // Textures, then storage: without the head's textures, and with textures off.
          for (const [textures, headTextures] of [[true, heads], [true], [false, heads]]) {
            dev.gemmTextures = textures as boolean;
            runs.push(
              await run(dev, c, {
                ...o,
                chunkRows,
                headTextures: headTextures as HeadTextures | undefined,
              }),
            );
          }
          compareTokens(runs[0][0], ref(c, o), how);
          for (const i of [1, 2]) {
            assertSameBits(runs[i][0], runs[0][0], `tokens ${how} (${i})`);
            assertSameBits(runs[i][1], runs[0][1], `logp ${how} (${i})`);
          }
        }
        dev.gemmTextures = true;
        await assert.rejects(
          () => run(dev, c, { ...greedy, chunkRows: 128, headTextures: heads }),
          /headTextures hold lm_head to id 1000 in chunks of/,
        );
        heads.release();
        dispose(c);
      }
    } finally {
      dev.gemmTextures = before;
    }
  },
);

Deno.test(
  "sampleTokens() with rowKeys draws a row as the row of that index does, wherever it sits",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(31);
    const c = makeCase(dev, rng, 7, 16, 300);
    // A plain draw (the draw pass) and one through the sample pass (top-k alone, as
    // each filter's pipeline compiles for seconds on llvmpipe the first time).
    for (
      const o of [{ temperature: 1, seed: 9, counter: 3 }, {
        temperature: 1,
        topK: 30,
        seed: 9,
        counter: 3,
      }]
    ) {
      const [t0, l0] = await run(dev, c, o);
      // Reordered rows, and a subset (what generation keeps once rows finish).
      for (const keys of [[4, 2, 6, 0, 1, 5, 3], [6, 1, 3]]) {
        const n = keys.length, d = c.d;
        const h = new Float32Array(n * d);
        keys.forEach((k, i) => h.set(c.h.subarray(k * d, (k + 1) * d), i * d));
        const sub: Case = {
          ...c,
          rows: n,
          h,
          th: dev.upload("hidden", h, [n, d]),
          tokens: dev.empty("tokens", [n], "u32"),
          logp: dev.empty("logp", [n]),
        };
        const rowKeys = dev.upload("keys", keys, [n], "u32");
        const [t, l] = await run(dev, sub, { ...o, rowKeys });
        const how = `keys ${keys}, ${JSON.stringify(o)}`;
        assertSameBits(t, Uint32Array.from(keys, (k) => t0[k]), `tokens, ${how}`);
        assertSameBits(l, Float32Array.from(keys, (k) => l0[k]), `logp, ${how}`);
        compareTokens(t, sampleTokensRef({ ...refArgs(sub, o), rowKeys: keys }), `ref ${keys}`);
        for (const x of [sub.th, sub.tokens, sub.logp, rowKeys]) x.dispose();
      }
    }
    dispose(c);
  },
);

Deno.test("sampleTokens() rejects bad shapes and arguments, naming them", gpuTest, async () => {
  const dev = await testDevice();
  const c = makeCase(dev, new Rng(29), 2, 8, 20);
  const base = {
    hidden: c.th,
    weight: c.tw,
    tokens: c.tokens,
    logp: c.logp,
    temperature: 1,
    seed: 0,
    counter: 0,
  };
  const flat = dev.empty("flat", [16]), wrongD = dev.empty("head7", [20, 7]);
  const f32Tokens = dev.empty("ftokens", [2]), short = dev.empty("short", [3], "u32");
  const small = dev.empty("tiny_scratch", [10]);
  const bad: [Partial<SampleTokensArgs>, RegExp][] = [
    [{ hidden: flat }, /hidden flat \[16\] must be \[R, d\]/],
    [{ weight: wrongD }, /head7 \[20, 7\] does not match hidden/],
    [{ tokens: f32Tokens as unknown as Tensor<"u32"> }, /tokens ftokens .* must be u32/],
    [{ tokens: short }, /tokens short \[3\]/],
    [{ logp: short as unknown as Tensor }, /logp short/],
    [{ temperature: -0.1 }, /temperature -0.1/],
    [{ temperature: NaN }, /temperature NaN/],
    [{ temperature: 1e-31 }, /temperature 1e-31 must be 0 \(greedy\) or in \[1e-30/],
    [{ topP: 0 }, /topP 0 must be in \(0, 1\]/],
    [{ topP: 1.5 }, /topP 1.5/],
    [{ topK: -1 }, /topK -1/],
    [{ topK: 2.5 }, /topK 2.5/],
    [{ vocabLimit: 0 }, /vocabLimit 0/],
    [{ vocabLimit: 21 }, /vocabLimit 21 must be an integer in \[1, 20\]/],
    [{ seed: -1 }, /seed -1/],
    [{ counter: 2 ** 32 }, /counter 4294967296/],
    [{ chunkRows: 0 }, /chunkRows 0/],
    [
      { rowKeys: short },
      /rowKeys short \[3\] u32 must be u32 with one key per row of hidden \(2\)/,
    ],
    [{ rowKeys: c.tokens }, /tokens tokens shares a buffer with rowKeys tokens/],
    [{ layout: "2x8" as unknown as "4x8" }, /layout 2x8 is not one of 1x8,4x8,8x8,16x16/],
    [{ scratch: small }, /scratch tiny_scratch \[10\] .* at least 40/],
    [{ logp: c.th }, /logp hidden .* must be f32 with one value per row|shares a buffer/],
    [{ scratch: c.tw }, /scratch lm_head shares a buffer with weight lm_head/],
  ];
  for (const [patch, re] of bad) {
    assert.throws(() => sampleTokens(dev, { ...base, ...patch }), re, JSON.stringify(patch));
  }
  for (const t of [flat, wrongD, f32Tokens, short, small]) t.dispose();
  dispose(c);
});

Deno.test("the CPU sampling reference keeps ties at the top-k and top-p thresholds", () => {
  // probabilities 0.1, 0.2, 0.3, 0.4 at T = 1
  const z = [1, 2, 3, 4].map(Math.log);
  const nucleus = sampleRowRef(z, { temperature: 1, topP: 0.6, u: 0.5 }).probs;
  assertClose(nucleus, [0, 0, 3 / 7, 4 / 7], { atol: 1e-12, rtol: 0 });
  const tied = [1, 3, 3, 2];
  assertClose(sampleRowRef(tied, { temperature: 1, topK: 2, u: 0 }).probs, [0, 0.5, 0.5, 0], {
    atol: 1e-12,
    rtol: 0,
  });
  assert.equal(sampleRowRef(tied, { temperature: 1, topK: 3, u: 0.999 }).token, 3);
  assert.equal(sampleRowRef(tied, { temperature: 0, u: 0.5 }).token, 1);
  // the uniforms of consecutive counters look uniform
  let s = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) s += samplingUniform(7, i, 0);
  assert.ok(Math.abs(s / n - 0.5) < 0.01, `mean ${s / n}`);
});
