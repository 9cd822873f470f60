import assert from "node:assert/strict";
import {
  embeddingBackward,
  embeddingForward,
  embeddingRowAlignment,
  embeddingRowsPerChunk,
  scatterPlan,
} from "../engine/embedding.ts";
import { embeddingBackwardRef, embeddingForwardRef } from "../engine/embedding_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, dot, finiteDiff, gpuTest, testDevice } from "./util.ts";

/** Random ids in [0, V) plus the first and last rows and the edges of chunks of `rows`. */
function tokenIds(rng: Rng, n: number, V: number, rows: number): number[] {
  const ids = Array.from({ length: n }, () => rng.int(V));
  const edges = [0, V - 1, rows - 1, rows, 2 * rows - 1].filter((v) => v < V);
  for (let i = 0; i < Math.min(n, edges.length); i++) ids[(i * 5) % n] = edges[i];
  return ids;
}

Deno.test(
  "embeddingRowsPerChunk() keeps chunk starts on 256-byte boundaries",
  gpuTest,
  async () => {
    const dev = await testDevice();
    assert.equal(embeddingRowAlignment(dev, 3), 64); // 12-byte rows
    assert.equal(embeddingRowAlignment(dev, 896), 1); // 3584 = 14 x 256
    const rows = embeddingRowsPerChunk(dev, 896);
    assert.ok(rows * 896 * 4 <= dev.limits.maxStorageBufferBindingSize);
    assert.ok((rows + 1) * 896 * 4 > dev.limits.maxStorageBufferBindingSize, "largest chunk");
    if (dev.limits.maxStorageBufferBindingSize < 151936 * 896 * 4) {
      assert.ok(Math.ceil(151936 / rows) > 1, "the Qwen2.5 vocabulary needs several chunks");
    }
    assert.throws(() => embeddingRowsPerChunk(dev, 3, 100), /rowsPerChunk 100.*multiple of 64/);
    assert.throws(() => embeddingRowsPerChunk(dev, 896, 1 << 20), /maxStorageBufferBindingSize/);
  },
);

Deno.test(
  "embeddingForward() matches the CPU gather across several vocabulary chunks",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(41);
    // (V, d, n, rowsPerChunk): d not a multiple of 4 (scalar kernels) and wider than the 64-lane
    // workgroup, d a multiple of 4 (vec4 kernels), one token, and vocabularies bound in 3 to 7
    // chunks (the last one partial) or in one.
    const cases: [number, number, number, number | undefined][] = [
      [200, 3, 37, 64],
      [200, 3, 1, 64],
      [70, 70, 20, 32],
      [10, 5, 6, undefined],
      [100, 8, 30, 16],
      [40, 260, 9, 16],
    ];
    for (const [V, d, n, rowsPerChunk] of cases) {
      const W = rng.normals(V * d);
      const ids = tokenIds(rng, n, V, rowsPerChunk ?? V);
      const tW = dev.upload("embed_tokens", W, [V, d]), out = dev.empty("hidden", [n, d]);
      embeddingForward(dev, tW, ids, out, { rowsPerChunk });
      const label = `V=${V} d=${d} n=${n} rows=${rowsPerChunk}`;
      // A gather copies values: exact.
      assertClose(await out.read(), embeddingForwardRef(W, ids, d), { atol: 0, rtol: 0, label });
      tW.dispose();
      out.dispose();
    }
  },
);

Deno.test(
  "embeddingForward() refuses an out-of-range id and names its position",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const tW = dev.zeros("embed_tokens", [50, 4]), out = dev.empty("hidden", [3, 4]);
    assert.throws(
      () => embeddingForward(dev, tW, [3, 50, 1], out),
      /token id 50 at position 1 is outside the vocabulary of 50 rows/,
    );
    assert.throws(() => embeddingForward(dev, tW, [-1, 0, 0], out), /token id -1 at position 0/);
    assert.throws(() => embeddingForward(dev, tW, [0, 0, 1.5], out), /token id 1.5 at position 2/);
    assert.throws(
      () => embeddingBackward(dev, [0, 7, 99], out, tW),
      /token id 99 at position 2.*50 rows/,
    );
    assert.throws(() => embeddingForward(dev, tW, [0, 1], out), /hidden \[3, 4\] must be \[2, 4\]/);
    tW.dispose();
    out.dispose();
  },
);

Deno.test(
  "embeddingForward() with ids on the GPU writes zeros for ids past the vocabulary",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(42);
    const V = 130;
    for (const d of [3, 4]) {
      const W = rng.normals(V * d);
      const tW = dev.upload("embed_tokens", W, [V, d]);
      const ids = dev.upload("ids", [129, 1000, 64, 0], [4], "u32");
      const out = dev.upload("hidden", new Float32Array(4 * d).fill(7), [4, d]);
      embeddingForward(dev, tW, ids, out, { rowsPerChunk: 64 });
      const ref = embeddingForwardRef(W, [129, 0, 64, 0], d);
      ref.fill(0, d, 2 * d);
      assertClose(await out.read(), ref, { atol: 0, rtol: 0, label: `gpu ids d=${d}` });
      for (const t of [tW, ids, out]) t.dispose();
    }
  },
);

Deno.test("scatterPlan() sorts token indices by id and keeps token order within an id", () => {
  const plan = scatterPlan([5, 2, 5, 0, 2, 5]);
  assert.deepEqual([...plan.uniq], [0, 2, 5]);
  assert.deepEqual([...plan.segStart], [0, 1, 3, 6]);
  assert.deepEqual([...plan.perm], [3, 1, 4, 0, 2, 5]);
});

Deno.test(
  "embeddingBackward() adds repeated ids into dW across chunks like the CPU",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(43);
    const cases: [number, number, number, number | undefined][] = [
      [200, 3, 60, 64],
      [200, 3, 1, 64],
      [70, 70, 25, 32],
      [12, 5, 40, undefined],
      [100, 8, 50, 16],
      [40, 260, 30, 16],
    ];
    for (const [V, d, n, rowsPerChunk] of cases) {
      // Few distinct ids, so most ids repeat several times.
      const pool = tokenIds(rng, 6, V, rowsPerChunk ?? V);
      const ids = Array.from({ length: n }, () => pool[rng.int(pool.length)]);
      const dout = rng.normals(n * d), dW0 = rng.normals(V * d);
      const tdout = dev.upload("dhidden", dout, [n, d]), tdW = dev.upload("dembed", dW0, [V, d]);
      embeddingBackward(dev, ids, tdout, tdW, { rowsPerChunk });
      const got = await tdW.read();
      const label = `V=${V} d=${d} n=${n} rows=${rowsPerChunk}`;
      assertClose(got, embeddingBackwardRef(dW0, ids, dout, d), { atol: 1e-6, rtol: 1e-6, label });
      // The order is fixed: each id's rows summed in token order in f32, then added to dW once.
      const exact = Float32Array.from(dW0);
      const plan = scatterPlan(ids);
      for (let s = 0; s < plan.uniq.length; s++) {
        for (let j = 0; j < d; j++) {
          let acc = 0;
          for (let k = plan.segStart[s]; k < plan.segStart[s + 1]; k++) {
            acc = Math.fround(acc + dout[plan.perm[k] * d + j]);
          }
          const i = plan.uniq[s] * d + j;
          exact[i] = Math.fround(exact[i] + acc);
        }
      }
      assertSameBits(got, exact, `fixed summation order ${label}`);
      tdout.dispose();
      tdW.dispose();
    }
  },
);

Deno.test("the CPU embedding backward matches finite differences of the gather", () => {
  const rng = new Rng(44);
  const V = 6, d = 2, ids = [1, 4, 1, 0, 1];
  const W = Float64Array.from(rng.normals(V * d)), dout = rng.normals(ids.length * d);
  const loss = (w: Float64Array) => dot(embeddingForwardRef(w, ids, d), dout);
  const dW = embeddingBackwardRef(new Float64Array(V * d), ids, dout, d);
  assertClose(dW, finiteDiff(loss, W), { atol: 1e-7, rtol: 1e-6, label: "dW" });
});

Deno.test(
  "embeddingForward() and embeddingBackward() give identical bits when run twice",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(45);
    const V = 300, n = 90;
    for (const d of [7, 8]) {
      const ids = Array.from({ length: n }, () => rng.int(20) * 13);
      const tW = dev.upload("embed_tokens", rng.normals(V * d), [V, d]);
      const tdout = dev.upload("dhidden", rng.normals(n * d), [n, d]);
      const dW0 = rng.normals(V * d);
      const runs: Float32Array[] = [];
      for (let i = 0; i < 2; i++) {
        const out = dev.empty("hidden", [n, d]), tdW = dev.upload("dembed", dW0, [V, d]);
        embeddingForward(dev, tW, ids, out, { rowsPerChunk: 64 });
        embeddingBackward(dev, ids, tdout, tdW, { rowsPerChunk: 64 });
        embeddingBackward(dev, ids, tdout, tdW, { rowsPerChunk: 64 });
        runs.push(await out.read(), await tdW.read());
        out.dispose();
        tdW.dispose();
      }
      assertSameBits(runs[0], runs[2], `gather d=${d}`);
      assertSameBits(runs[1], runs[3], `scatter-add d=${d}`);
      tW.dispose();
      tdout.dispose();
    }
  },
);
