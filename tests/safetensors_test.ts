import assert from "node:assert/strict";
import { join } from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../engine/dtype.ts";
import { Rng } from "../engine/rng.ts";
import {
  INDEX_FILE,
  MAX_HEADER_BYTES,
  openCheckpoint,
  SafetensorsError,
  SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "../engine/safetensors.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A file from a header (object or raw text) and data bytes; `length` overrides the u64. */
function rawFile(header: unknown, data: Uint8Array, length?: bigint): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Asserts that `p` rejects with a SafetensorsError about `file` and `tensor`, matching `re`. */
async function rejectsWith(
  p: Promise<unknown>,
  file: string,
  tensor: string | null,
  re: RegExp,
): Promise<void> {
  let err: unknown = null;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SafetensorsError, `expected SafetensorsError, got ${err}`);
  assert.equal(err.file, file);
  assert.equal(err.tensor, tensor);
  assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
  if (tensor !== null) {
    assert.ok(
      err.message.includes(JSON.stringify(tensor)),
      `message names the tensor: ${err.message}`,
    );
  }
  assert.match(err.message, re);
}

/** Opens `bytes` written to `dir/t.safetensors`; resolves to the file or rejects. */
async function openBytes(dir: string, bytes: Uint8Array): Promise<SafetensorsFile> {
  const path = join(dir, "t.safetensors");
  await Deno.writeFile(path, bytes);
  return await SafetensorsFile.open(path);
}

async function expectOpenError(bytes: Uint8Array, tensor: string | null, re: RegExp) {
  await withTempDir(async (dir) => {
    await rejectsWith(openBytes(dir, bytes), join(dir, "t.safetensors"), tensor, re);
  });
}

const f32 = (n: number) => ({ dtype: "F32", shape: [n], data_offsets: [0, 4 * n] });

Deno.test("writeSafetensors() then SafetensorsFile.open() round-trips F32, BF16 and F16 of every rank, scalars and empty tensors included", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(7);
    const a = rng.normals(6);
    const bits = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001, 0x8000]);
    const f16vals = new Float32Array([0.1, 65504, -2, 1e-7]);
    const tensors: TensorToWrite[] = [
      { name: "a", dtype: "F32", shape: [2, 3], data: a },
      { name: "scalar", dtype: "BF16", shape: [], data: new Float32Array([1.5]) },
      { name: "empty", dtype: "F16", shape: [0], data: new Float32Array(0) },
      { name: "empty3", dtype: "F32", shape: [4, 0, 2], data: new Float32Array(0) },
      { name: "raw_bf16", dtype: "BF16", shape: [5], data: bits },
      { name: "h", dtype: "F16", shape: [2, 2], data: f16vals },
      { name: "b16", dtype: "BF16", shape: [6], data: a },
    ];
    const path = join(dir, "m.safetensors");
    await writeSafetensors(path, tensors, { format: "pt", note: "x" });
    const st = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(st.names, ["a", "b16", "empty", "empty3", "h", "raw_bf16", "scalar"]);
      assert.deepEqual(st.metadata, { format: "pt", note: "x" });
      assert.deepEqual(
        { ...st.info("a"), offset: 0, file: "" },
        { dtype: "F32", shape: [2, 3], bytes: 24, offset: 0, file: "" },
      );
      assert.deepEqual(st.info("scalar").shape, []);
      assert.equal(st.info("scalar").bytes, 2);
      assert.deepEqual(st.info("empty3").shape, [4, 0, 2]);
      assert.deepEqual([...await st.readF32("a")], [...a]);
      assert.deepEqual([...await st.readF32("scalar")], [1.5]);
      assert.equal((await st.readF32("empty")).length, 0);
      assert.equal((await st.readF32("empty3")).length, 0);
      assert.deepEqual([...await st.readF32("raw_bf16")], [...bf16ToF32(bits)]);
      assert.deepEqual([...new Uint16Array((await st.readRaw("raw_bf16")).buffer)], [...bits]);
      assert.deepEqual([...await st.readF32("h")], [...f16ToF32(f32ToF16(f16vals))]);
      assert.deepEqual([...await st.readF32("b16")], [...bf16ToF32(f32ToBf16(a))]);
      // Concurrent reads on the one handle are serialised and each gets its own data.
      const all = await Promise.all(st.names.map((n) => st.readRaw(n)));
      assert.deepEqual(all.map((b) => b.length), st.names.map((n) => st.info(n).bytes));
      assert.deepEqual([...new Float32Array(all[0].buffer)], [...a]);
    } finally {
      st.close();
    }
  });
});

Deno.test("writeSafetensors() pads the header to 8 bytes and puts larger items first, then names, so data is aligned", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "m.safetensors");
    await writeSafetensors(path, [
      { name: "z16", dtype: "BF16", shape: [3], data: new Float32Array(3) },
      { name: "b32", dtype: "F32", shape: [1], data: new Float32Array(1) },
      { name: "a16", dtype: "F16", shape: [1], data: new Float32Array(1) },
      { name: "y32", dtype: "F32", shape: [2], data: new Float32Array(2) },
    ]);
    const bytes = await Deno.readFile(path);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const order = Object.entries(header as Record<string, { data_offsets: number[] }>)
      .sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0])
      .map(([k]) => k);
    assert.deepEqual(order, ["b32", "y32", "a16", "z16"]);
    assert.equal(bytes.length, 8 + n + 4 + 8 + 2 + 6);
  });
});

Deno.test("writeSafetensors() replaces the target through a temporary file and leaves none behind, even on error", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "m.safetensors");
    const one = (v: number): TensorToWrite[] => [
      { name: "w", dtype: "F32", shape: [1], data: new Float32Array([v]) },
    ];
    await writeSafetensors(path, one(1));
    await writeSafetensors(path, one(2));
    const st = await SafetensorsFile.open(path);
    assert.deepEqual([...await st.readF32("w")], [2]);
    st.close();
    // A failure while writing (data too short for its shape) keeps the old file intact.
    await rejectsWith(
      writeSafetensors(path, [
        { name: "w", dtype: "F32", shape: [1], data: new Float32Array([3]) },
        { name: "x", dtype: "F32", shape: [4], data: () => new Float32Array(3) },
      ]),
      path,
      "x",
      /3 elements/,
    );
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["m.safetensors"]);
    const again = await SafetensorsFile.open(path);
    assert.deepEqual([...await again.readF32("w")], [2]);
    again.close();
  });
});

Deno.test("writeSafetensors() refuses duplicate and reserved names, bad shapes and mismatched data, naming the tensor", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "m.safetensors");
    const t = (name: string, data: Float32Array | Uint16Array, shape = [2]): TensorToWrite => ({
      name,
      dtype: "F32",
      shape,
      data,
    });
    await rejectsWith(
      writeSafetensors(path, [t("a", new Float32Array(2)), t("a", new Float32Array(2))]),
      path,
      "a",
      /more than once/,
    );
    await rejectsWith(
      writeSafetensors(path, [t("__metadata__", new Float32Array(2))]),
      path,
      "__metadata__",
      /reserved/,
    );
    await rejectsWith(
      writeSafetensors(path, [t("s", new Float32Array(2), [-2])]),
      path,
      "s",
      /shape/,
    );
    await rejectsWith(
      writeSafetensors(path, [t("n", new Float32Array(3))]),
      path,
      "n",
      /3 elements/,
    );
    await rejectsWith(
      writeSafetensors(path, [t("u", new Uint16Array(2))]),
      path,
      "u",
      /Float32Array/,
    );
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("writeSafetensors() calls each lazy data function once, in file order, and reports progress", async () => {
  await withTempDir(async (dir) => {
    const calls: string[] = [];
    const lazy = (name: string, n: number): TensorToWrite => ({
      name,
      dtype: "F32",
      shape: [n],
      data: () => {
        calls.push(name);
        return new Float32Array(n).fill(n);
      },
    });
    const progress: number[] = [];
    const path = join(dir, "m.safetensors");
    await writeSafetensors(path, [lazy("b", 2), lazy("a", 3)], undefined, {
      onProgress: (w, total) => progress.push(w / total),
    });
    assert.deepEqual(calls, ["a", "b"]);
    assert.deepEqual(progress, [12 / 20, 1]);
    const st = await SafetensorsFile.open(path);
    assert.deepEqual([...await st.readF32("b")], [2, 2]);
    st.close();
  });
});

// ---- one named test per validation rule --------------------------------------------------------

Deno.test("open() refuses a file shorter than the 8-byte header length", async () => {
  await expectOpenError(new Uint8Array(5), null, /shorter than the header length/);
});

Deno.test("open() refuses a header length above 100,000,000 bytes before allocating it", async () => {
  const bytes = rawFile({}, new Uint8Array(0), BigInt(MAX_HEADER_BYTES + 1));
  await expectOpenError(bytes, null, /exceeds 100000000/);
  await expectOpenError(rawFile({}, new Uint8Array(0), 2n ** 64n - 1n), null, /exceeds/);
});

Deno.test("open() refuses a header length that runs past the end of the file", async () => {
  await expectOpenError(rawFile({}, new Uint8Array(0), 3n), null, /past the end of the file/);
});

Deno.test("open() refuses a header that is not UTF-8", async () => {
  const bytes = rawFile("{}", new Uint8Array(0));
  const bad = new Uint8Array([...bytes.subarray(0, 8), 0x7b, 0xff, 0x7d]);
  new DataView(bad.buffer).setBigUint64(0, 3n, true);
  await expectOpenError(bad, null, /not valid UTF-8/);
});

Deno.test("open() refuses a header that is not JSON or not a JSON object", async () => {
  await expectOpenError(rawFile('{"a": ', new Uint8Array(0)), null, /not valid JSON/);
  await expectOpenError(rawFile("[1, 2]", new Uint8Array(0)), null, /must be a JSON object/);
  await expectOpenError(rawFile("null", new Uint8Array(0)), null, /must be a JSON object/);
});

Deno.test("open() refuses a duplicate tensor name that JSON.parse would silently collapse", async () => {
  const e = JSON.stringify(f32(1));
  await expectOpenError(rawFile(`{"w":${e}, "w" :${e}}`, new Uint8Array(4)), "w", /more than once/);
  // The same name spelled with an escape is still the same name.
  await expectOpenError(
    rawFile(`{"w":${e},"\\u0077":${e}}`, new Uint8Array(4)),
    "w",
    /more than once/,
  );
  // Keys inside nested objects and strings that look like keys do not count.
  const ok = `{"__metadata__":{"w":"\\"w\\":{"},"w":${e}}`;
  await withTempDir(async (dir) => {
    const st = await openBytes(dir, rawFile(ok, new Uint8Array(4)));
    assert.deepEqual(st.names, ["w"]);
    assert.deepEqual(st.metadata, { w: '"w":{' });
    st.close();
  });
});

Deno.test("open() refuses an unknown dtype", async () => {
  const h = { w: { dtype: "F64", shape: [1], data_offsets: [0, 8] } };
  await expectOpenError(rawFile(h, new Uint8Array(8)), "w", /unsupported dtype/);
  const lower = { w: { dtype: "bf16", shape: [1], data_offsets: [0, 2] } };
  await expectOpenError(rawFile(lower, new Uint8Array(2)), "w", /unsupported dtype/);
});

Deno.test("open() reads I32, I64 and U8 tensors raw and readF32() refuses them by name", async () => {
  const h = {
    i64: { dtype: "I64", shape: [1], data_offsets: [0, 8] },
    i32: { dtype: "I32", shape: [1], data_offsets: [8, 12] },
    u8: { dtype: "U8", shape: [2], data_offsets: [12, 14] },
  };
  const data = new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 9, 10]);
  await withTempDir(async (dir) => {
    const st = await openBytes(dir, rawFile(h, data));
    try {
      assert.equal(new BigInt64Array((await st.readRaw("i64")).buffer)[0], 5n);
      assert.equal(new Int32Array((await st.readRaw("i32")).buffer)[0], -1);
      assert.deepEqual([...await st.readRaw("u8")], [9, 10]);
      await rejectsWith(st.readF32("i32"), st.path, "i32", /not a float type/);
    } finally {
      st.close();
    }
  });
});

Deno.test("open() refuses a shape whose byte size differs from the data_offsets range", async () => {
  const h = { w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } };
  await expectOpenError(rawFile(h, new Uint8Array(8)), "w", /is 12 bytes but data_offsets/);
});

Deno.test("open() refuses a shape whose element or byte count overflows", async () => {
  const big = { w: { dtype: "F32", shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 4] } };
  await expectOpenError(
    rawFile(big, new Uint8Array(4)),
    "w",
    /more elements than can be addressed/,
  );
  const bytes = { w: { dtype: "I64", shape: [2 ** 52], data_offsets: [0, 4] } };
  await expectOpenError(rawFile(bytes, new Uint8Array(4)), "w", /overflows the byte count/);
});

Deno.test("open() refuses negative, fractional, huge or non-numeric shape entries", async () => {
  for (const d of [-1, 1.5, 2 ** 53, "2", null]) {
    const h = { w: { dtype: "F32", shape: [d], data_offsets: [0, 4] } };
    await expectOpenError(rawFile(h, new Uint8Array(4)), "w", /non-negative integers/);
  }
  const notArray = { w: { dtype: "F32", shape: 1, data_offsets: [0, 4] } };
  await expectOpenError(rawFile(notArray, new Uint8Array(4)), "w", /shape must be an array/);
});

Deno.test("open() refuses malformed data_offsets and ranges that end before they begin", async () => {
  for (const o of [[0], [0, 4, 8], [-4, 0], [0, "4"], null, [0, 2 ** 53]]) {
    const h = { w: { dtype: "F32", shape: [1], data_offsets: o } };
    await expectOpenError(rawFile(h, new Uint8Array(4)), "w", /data_offsets must be two/);
  }
  const backwards = { w: { dtype: "U8", shape: [0], data_offsets: [4, 0] } };
  await expectOpenError(rawFile(backwards, new Uint8Array(4)), "w", /end before they begin/);
});

Deno.test("open() refuses data_offsets that run past the data", async () => {
  const h = { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  await expectOpenError(rawFile(h, new Uint8Array(4)), "w", /run past the data \(4 bytes\)/);
});

Deno.test("open() refuses overlapping data ranges", async () => {
  const h = { a: f32(2), b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } };
  await expectOpenError(rawFile(h, new Uint8Array(12)), "b", /overlap the previous tensor/);
});

Deno.test("open() refuses a gap before or between data ranges", async () => {
  const gap = { a: f32(1), b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } };
  await expectOpenError(rawFile(gap, new Uint8Array(12)), "b", /leave a gap after byte 4/);
  const late = { a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } };
  await expectOpenError(rawFile(late, new Uint8Array(8)), "a", /leave a gap after byte 0/);
});

Deno.test("open() refuses trailing bytes after the last tensor", async () => {
  await expectOpenError(rawFile({ a: f32(1) }, new Uint8Array(7)), null, /3 trailing bytes/);
  await expectOpenError(rawFile({}, new Uint8Array(1)), null, /1 trailing bytes/);
});

Deno.test("open() accepts header entries in any order and sorts names", async () => {
  const h = {
    second: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    first: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
  };
  const data = new Uint8Array(new Float32Array([1, 2]).buffer);
  await withTempDir(async (dir) => {
    const st = await openBytes(dir, rawFile(h, data));
    assert.deepEqual(st.names, ["first", "second"]);
    assert.deepEqual([...await st.readF32("second")], [2]);
    st.close();
  });
});

Deno.test("open() accepts __metadata__ of strings and refuses any other value", async () => {
  await withTempDir(async (dir) => {
    const st = await openBytes(dir, rawFile({ __metadata__: { format: "pt" } }, new Uint8Array(0)));
    assert.deepEqual(st.metadata, { format: "pt" });
    assert.deepEqual(st.names, []);
    st.close();
  });
  const num = { __metadata__: { total: 3 } };
  await expectOpenError(rawFile(num, new Uint8Array(0)), "__metadata__", /must be a string/);
  const arr = { __metadata__: ["pt"] };
  await expectOpenError(rawFile(arr, new Uint8Array(0)), "__metadata__", /object of strings/);
});

Deno.test("open() refuses tensor entries that are not objects, lack dtype or carry unknown fields", async () => {
  await expectOpenError(rawFile({ w: [1] }, new Uint8Array(0)), "w", /entry must be an object/);
  const noDtype = { w: { shape: [1], data_offsets: [0, 4] } };
  await expectOpenError(rawFile(noDtype, new Uint8Array(4)), "w", /missing field dtype/);
  const extra = { w: { ...f32(1), offsets: 1 } };
  await expectOpenError(rawFile(extra, new Uint8Array(4)), "w", /unknown field "offsets"/);
});

Deno.test("open() names the file when it cannot be opened", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "missing.safetensors");
    await rejectsWith(SafetensorsFile.open(path), path, null, /cannot open/);
  });
});

Deno.test("info() and readF32() name the file and the tensor for an unknown name", async () => {
  await withTempDir(async (dir) => {
    const st = await openBytes(dir, rawFile({ a: f32(1) }, new Uint8Array(4)));
    try {
      assert.throws(
        () => st.info("nope"),
        (e: unknown) =>
          e instanceof SafetensorsError && e.tensor === "nope" && e.message.includes(st.path),
      );
      await rejectsWith(st.readF32("nope"), st.path, "nope", /no such tensor/);
    } finally {
      st.close();
    }
  });
});

Deno.test("readRaw() names the tensor when the file was truncated after it was opened", async () => {
  await withTempDir(async (dir) => {
    const st = await openBytes(
      dir,
      rawFile({ a: f32(1), b: { ...f32(1), data_offsets: [4, 8] } }, new Uint8Array(8)),
    );
    try {
      await Deno.truncate(st.path, (await Deno.stat(st.path)).size - 2);
      assert.equal((await st.readRaw("a")).length, 4);
      await rejectsWith(st.readRaw("b"), st.path, "b", /file ended inside the tensor's data/);
    } finally {
      st.close();
    }
  });
});

// ---- fuzzing ----------------------------------------------------------------------------------

/** A valid small file with every dtype, metadata and a scalar. */
async function fuzzBase(dir: string): Promise<Uint8Array> {
  const path = join(dir, "base.safetensors");
  await writeSafetensors(path, [
    { name: "a", dtype: "F32", shape: [2, 3], data: new Rng(1).normals(6) },
    { name: "b", dtype: "BF16", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    { name: "c", dtype: "F16", shape: [], data: new Float32Array([0.5]) },
    { name: "e", dtype: "F16", shape: [0, 3], data: new Float32Array(0) },
  ], { format: "pt" });
  return await Deno.readFile(path);
}

function mutate(base: Uint8Array, rng: Rng): Uint8Array {
  const n = Number(new DataView(base.buffer).getBigUint64(0, true));
  const kind = rng.int(6);
  if (kind === 0) {
    // Flip 1-4 random bytes anywhere.
    const out = base.slice();
    for (let k = 1 + rng.int(4); k > 0; k--) out[rng.int(out.length)] = rng.int(256);
    return out;
  }
  if (kind === 1) return base.slice(0, rng.int(base.length)); // truncate
  if (kind === 2) {
    // Edit the header length.
    const out = base.slice();
    const choices = [
      BigInt(n + 1 + rng.int(16)),
      BigInt(Math.max(0, n - 1 - rng.int(16))),
      BigInt(rng.u32()),
      BigInt(base.length - 8 + rng.int(1000)),
      BigInt(rng.int(MAX_HEADER_BYTES)),
      2n ** 63n + BigInt(rng.u32()),
      BigInt(MAX_HEADER_BYTES + 1),
      BigInt(base.length),
      0n,
    ];
    new DataView(out.buffer).setBigUint64(0, choices[rng.int(choices.length)], true);
    return out;
  }
  if (kind === 3) {
    // Insert or delete bytes inside the header or data.
    const at = rng.int(base.length);
    if (rng.next() < 0.5) {
      return new Uint8Array([...base.subarray(0, at), ...base.subarray(at + 1)]);
    }
    return new Uint8Array([...base.subarray(0, at), rng.int(256), ...base.subarray(at)]);
  }
  // Structural header JSON edits, re-serialised with a (usually) consistent length.
  const header = JSON.parse(new TextDecoder().decode(base.subarray(8, 8 + n)));
  const data = base.subarray(8 + n);
  const names = Object.keys(header).filter((k) => k !== "__metadata__");
  const name = names[rng.int(names.length)];
  const entry = header[name];
  const odd = [-1, 1.5, 2 ** 53, 1e300, "3", null, [], {}, 0, 2 ** 31, 7];
  const pick = <T>(xs: T[]) => xs[rng.int(xs.length)];
  let text: string | null = null;
  switch (rng.int(9)) {
    case 0:
      entry.dtype = pick(["F64", "bf16", "I8", "", 1, null, "U8", "I64", "F32"]);
      break;
    case 1:
      if (entry.shape.length > 0) entry.shape[rng.int(entry.shape.length)] = pick(odd);
      else entry.shape.push(pick(odd));
      break;
    case 2:
      entry.data_offsets[rng.int(2)] = pick([...odd, entry.data_offsets[0] + 2]);
      break;
    case 3:
      delete entry[pick(["dtype", "shape", "data_offsets"])];
      break;
    case 4:
      entry[pick(["extra", "dtype", "shape"])] = pick(odd);
      break;
    case 5:
      header.__metadata__ = pick([{ x: 1 }, "pt", null, [], { y: "z" }]);
      break;
    case 6: {
      // A duplicate key that JSON.parse would hide.
      const t = JSON.stringify(header);
      text = `{${JSON.stringify(name)}:${JSON.stringify(entry)},${t.slice(1)}`;
      break;
    }
    case 7:
      header[pick(["__metadata__", "z", name + "x"])] = entry;
      break;
    default: {
      const t = JSON.stringify(header);
      const at = rng.int(t.length);
      text = t.slice(0, at) + pick(['"', "{", "}", ",", ":", "\\", "1", "\u00e9", "]"]) +
        t.slice(at);
    }
  }
  text ??= JSON.stringify(header);
  const pad = rng.next() < 0.3 ? " ".repeat(rng.int(9)) : "";
  const json = new TextEncoder().encode(text + pad);
  const len = rng.next() < 0.85 ? BigInt(json.length) : BigInt(json.length + rng.int(9) - 4);
  return rawFile(text + pad, data, len < 0n ? 0n : len);
}

Deno.test("1,000 random mutations of a valid file give a successful read or a SafetensorsError, never more allocation than the file size", async () => {
  await withTempDir(async (dir) => {
    const base = await fuzzBase(dir);
    const rng = new Rng(2024);
    const path = join(dir, "fuzz.safetensors");
    let ok = 0, refused = 0;
    const oversized: string[] = [];
    const started = performance.now();
    for (let i = 0; i < 1000; i++) {
      const bytes = mutate(base, rng);
      await Deno.writeFile(path, bytes);
      // Recorded, not thrown: the reader would wrap an exception thrown here.
      const onAllocate = (n: number, what: string) => {
        if (n > bytes.length) {
          oversized.push(`mutation ${i}: ${what} allocates ${n} > ${bytes.length}`);
        }
      };
      let st: SafetensorsFile | null = null;
      try {
        st = await SafetensorsFile.open(path, { onAllocate });
        for (const name of st.names) {
          const info = st.info(name);
          const raw = await st.readRaw(name);
          assert.equal(raw.length, info.bytes);
          if (info.dtype === "F32" || info.dtype === "BF16" || info.dtype === "F16") {
            const x = await st.readF32(name);
            assert.equal(x.length * (info.dtype === "F32" ? 4 : 2), info.bytes);
          }
        }
        ok++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          throw new Error(`mutation ${i} threw ${e} instead of a SafetensorsError`);
        }
        assert.ok(e.message.startsWith(path), e.message);
        refused++;
      } finally {
        st?.close();
      }
    }
    // Both outcomes occur, so the mutations reach past the first checks.
    assert.deepEqual(oversized, []);
    assert.ok(ok > 20 && refused > 500, `ok ${ok}, refused ${refused}`);
    assert.ok(performance.now() - started < 20_000, "the fuzz run took too long");
  });
});

// ---- checkpoints --------------------------------------------------------------------------------

Deno.test("openCheckpoint() reads a sharded checkpoint through model.safetensors.index.json", async () => {
  await withTempDir(async (dir) => {
    const x = new Float32Array([1, 2, 3]);
    await writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), [
      { name: "a", dtype: "F32", shape: [3], data: x },
      { name: "b", dtype: "BF16", shape: [1], data: new Float32Array([4]) },
    ]);
    await writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), [
      { name: "c", dtype: "F16", shape: [2], data: new Float32Array([5, 6]) },
    ]);
    const index = {
      metadata: { total_size: 20 },
      weight_map: {
        a: "model-00001-of-00002.safetensors",
        b: "model-00001-of-00002.safetensors",
        c: "model-00002-of-00002.safetensors",
      },
    };
    await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify(index));
    const ck = await openCheckpoint(dir);
    try {
      assert.deepEqual(ck.names, ["a", "b", "c"]);
      assert.equal(ck.info("c").file, join(dir, "model-00002-of-00002.safetensors"));
      assert.deepEqual([...await ck.readF32("a")], [1, 2, 3]);
      assert.deepEqual([...await ck.readF32("b")], [4]);
      assert.deepEqual([...await ck.readF32("c")], [5, 6]);
      assert.throws(
        () => ck.info("d"),
        (e: unknown) => e instanceof SafetensorsError && e.tensor === "d",
      );
    } finally {
      ck.close();
    }

    // A missing shard is named with a tensor it should hold.
    await Deno.remove(join(dir, "model-00002-of-00002.safetensors"));
    await rejectsWith(
      openCheckpoint(dir),
      join(dir, INDEX_FILE),
      "c",
      /shard model-00002-of-00002\.safetensors is missing/,
    );
    // A tensor the index lists but its shard lacks is named with the shard.
    index.weight_map.c = "model-00001-of-00002.safetensors";
    await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify(index));
    await rejectsWith(
      openCheckpoint(dir),
      join(dir, "model-00001-of-00002.safetensors"),
      "c",
      /listed in model\.safetensors\.index\.json but not in the shard/,
    );
    // A shard path that leaves the directory is refused.
    index.weight_map.c = "../x.safetensors";
    await Deno.writeTextFile(join(dir, INDEX_FILE), JSON.stringify(index));
    await rejectsWith(openCheckpoint(dir), join(dir, INDEX_FILE), "c", /must be a file name/);
    await Deno.writeTextFile(join(dir, INDEX_FILE), "{}");
    await rejectsWith(openCheckpoint(dir), join(dir, INDEX_FILE), null, /weight_map/);
  });
});

Deno.test("openCheckpoint() opens model.safetensors in a directory, a file path, and names a directory with neither", async () => {
  await withTempDir(async (dir) => {
    await rejectsWith(openCheckpoint(dir), dir, null, /neither model\.safetensors nor/);
    const path = join(dir, "model.safetensors");
    await writeSafetensors(path, [{
      name: "w",
      dtype: "F32",
      shape: [1],
      data: new Float32Array([9]),
    }]);
    for (const p of [dir, path]) {
      const ck = await openCheckpoint(p);
      assert.equal(ck.path, path);
      assert.deepEqual([...await ck.readF32("w")], [9]);
      ck.close();
    }
  });
});
