import assert from "node:assert/strict";
import { castF32ToBf16, castHalfToF32, packHalf, readBf16, uploadHalf } from "../engine/cast.ts";
import { bf16ToF32Ref, f16ToF32Ref, f32ToBf16Ref } from "../engine/cast_ref.ts";
import { Rng } from "../engine/rng.ts";
import { gpuTest, testDevice } from "./util.ts";

/** Exact comparison of raw bits (NaN payloads included), naming the first difference. */
function assertBits(
  got: ArrayBufferView,
  want: ArrayBufferView,
  width: 16 | 32,
  label: string,
): void {
  const View = width === 16 ? Uint16Array : Uint32Array;
  const a = new View(got.buffer as ArrayBuffer, got.byteOffset, got.byteLength / (width / 8));
  const b = new View(want.buffer as ArrayBuffer, want.byteOffset, want.byteLength / (width / 8));
  assert.equal(a.length, b.length, `${label}: lengths`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      const hex = (v: number) => `0x${v.toString(16).padStart(width / 4, "0")}`;
      throw new Error(`${label}: bits differ at [${i}]: got ${hex(a[i])}, reference ${hex(b[i])}`);
    }
  }
}

/** Every 16-bit pattern, then the specials again, so the total is odd (a half-filled last word). */
function all16(specials: number[]): Uint16Array {
  const out = new Uint16Array(65536 + specials.length);
  for (let i = 0; i < 65536; i++) out[i] = i;
  out.set(specials, 65536);
  return out;
}

const BF16_SPECIALS = [
  0x0000, // +0
  0x8000, // -0
  0x7f80, // +Inf
  0xff80, // -Inf
  0x7fc0, // quiet NaN
  0x7f81, // signalling NaN with a payload
  0xffff, // negative NaN, all payload bits
  0x0001, // smallest subnormal
  0x807f, // largest negative subnormal
  0x0080, // smallest normal
  0x7f7f, // largest finite
  0x3f80, // 1
  0xc2f7, // -123.5
];

const F16_SPECIALS = [
  0x0000,
  0x8000,
  0x7c00,
  0xfc00,
  0x7e00,
  0x7c01,
  0xffff,
  0x0001, // 2^-24, smallest subnormal
  0x03ff, // largest subnormal
  0x0400, // smallest normal 2^-14
  0x7bff, // 65504, largest finite
  0x3c00, // 1
  0xd5a0, // -90
];

Deno.test(
  "bf16 -> f32 on the GPU matches the CPU bit for bit for all 65536 patterns",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const h = all16(BF16_SPECIALS);
    // 5120-element chunks: 13 dispatches, each bound at a 256-byte-aligned offset.
    const t = uploadHalf(dev, "w", h, [h.length], "bf16", { elemsPerChunk: 128 * 40 });
    assertBits(await t.read(), bf16ToF32Ref(h), 32, "bf16 -> f32");
    t.dispose();
    const one = uploadHalf(dev, "scalar", new Uint16Array([0xbf80]), [1], "bf16");
    assert.deepEqual([...await one.read()], [-1]);
    one.dispose();
  },
);

Deno.test(
  "f16 -> f32 on the GPU matches the CPU bit for bit for all 65536 patterns",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const h = all16(F16_SPECIALS);
    const t = uploadHalf(dev, "w", h, [h.length], "f16", { elemsPerChunk: 128 * 40 });
    const got = await t.read();
    assertBits(got, f16ToF32Ref(h), 32, "f16 -> f32");
    // Spot values, independent of both implementations.
    assert.equal(got[0x0001], 2 ** -24);
    assert.equal(got[0x03ff], 1023 * 2 ** -24);
    assert.equal(got[0x7bff], 65504);
    assert.equal(got[0xfc00], -Infinity);
    assert.ok(Object.is(got[0x8000], -0));
    assert.ok(Number.isNaN(got[0x7e00]));
    t.dispose();
  },
);

Deno.test(
  "f32 -> bf16 rounds to nearest even like the CPU, for specials and random bits",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const specials = new Uint32Array([
      0x00000000,
      0x80000000,
      0x7f800000,
      0xff800000,
      0x7fc00000,
      0xffc00000,
      0x7f800001,
      0x7fffffff, // NaNs -> 0x7fc0
      0x7f7fffff, // largest finite: rounds to +Inf
      0xff7fffff, // most negative finite: -Inf
      0x7f7f7fff, // stays finite
      0x3f808000, // tie with even kept half: down
      0x3f818000, // tie with odd kept half: up
      0x3f808001, // above the tie: up
      0x3f807fff, // below the tie: down
      0x00000001, // smallest subnormal: 0
      0x00008000, // subnormal tie, even: 0
      0x00018000, // subnormal tie, odd: up to 0x0002
      0x007fffff, // largest subnormal: rounds to the smallest normal
      0x3f800000, // 1
    ]);
    const rng = new Rng(51);
    const bits = new Uint32Array(specials.length + 10001);
    bits.set(specials);
    for (let i = specials.length; i < bits.length; i++) bits[i] = rng.u32();
    const x = new Float32Array(bits.buffer);
    const tx = dev.empty("x", [x.length]);
    dev.write(tx, bits);
    const tout = dev.empty("x_bf16", [Math.ceil(x.length / 2)], "u32");
    castF32ToBf16(dev, tx, tout, { elemsPerChunk: 1024 });
    const got = new Uint16Array((await tout.read()).buffer, 0, x.length);
    const want = f32ToBf16Ref(x);
    assertBits(got, want, 16, "f32 -> bf16");
    assert.deepEqual(
      [...want.slice(0, specials.length)],
      [
        0x0000,
        0x8000,
        0x7f80,
        0xff80,
        0x7fc0,
        0x7fc0,
        0x7fc0,
        0x7fc0,
        0x7f80,
        0xff80,
        0x7f7f,
        0x3f80,
        0x3f82,
        0x3f81,
        0x3f80,
        0x0000,
        0x0000,
        0x0002,
        0x0080,
        0x3f80,
      ],
    );
    // An odd length leaves the high half of the last word zero.
    assert.equal((await tout.read())[tout.size - 1] >>> 16, 0);
    tx.dispose();
    tout.dispose();
  },
);

Deno.test(
  "bf16 values survive f32 and back unchanged, and readBf16() reads them",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const rng = new Rng(52);
    const h = Uint16Array.from({ length: 999 }, () => rng.u32() & 0xffff);
    for (let i = 0; i < h.length; i++) {
      if ((h[i] & 0x7f80) === 0x7f80 && (h[i] & 0x7f)) {
        h[i] = 0x7fc0;
      }
    }
    const t = uploadHalf(dev, "w", h, [27, 37], "bf16");
    assertBits(await readBf16(dev, t), h, 16, "round trip");
    t.dispose();
  },
);

Deno.test("casts give identical bits when run twice", gpuTest, async () => {
  const dev = await testDevice();
  const rng = new Rng(53);
  const h = Uint16Array.from({ length: 301 }, () => rng.u32() & 0xffff);
  const packed = dev.upload("packed", packHalf(h), [151], "u32");
  const a = dev.empty("a", [301]), b = dev.empty("b", [301]);
  castHalfToF32(dev, "f16", packed, a);
  castHalfToF32(dev, "f16", packed, b);
  assertBits(await a.read(), await b.read(), 32, "f16 twice");
  for (const t of [packed, a, b]) t.dispose();
});

Deno.test("casts name the tensors when the packed size does not match", gpuTest, async () => {
  const dev = await testDevice();
  const packed = dev.zeros("q_proj (bf16)", [10], "u32"), out = dev.empty("q_proj", [4, 6]);
  assert.throws(
    () => castHalfToF32(dev, "bf16", packed, out),
    /q_proj \(bf16\) \[10\] has 10 words; 24 values of q_proj \[4, 6\] pack into 12/,
  );
  assert.throws(() => castHalfToF32(dev, "bf16", out, packed), /must be u32/);
  assert.throws(() => uploadHalf(dev, "w", new Uint16Array(5), [2, 3], "f16"), /w: 5 f16 values/);
  assert.throws(
    () => castHalfToF32(dev, "f16", packed, dev.empty("x", [20]), { elemsPerChunk: 100 }),
    /128/,
  );
  packed.dispose();
  out.dispose();
});
