import assert from "node:assert/strict";
import {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  fromBf16Bits,
  fromF16Bits,
  toBf16Bits,
  toF16Bits,
} from "../engine/dtype.ts";
import { Rng } from "../engine/rng.ts";

const ALL = new Uint16Array(65536).map((_, i) => i);

function f32Bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** Random finite fp32 values spread over every exponent (random bit patterns, NaN/Inf skipped). */
function randomFloats(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  const bits = f32Bits(out);
  for (let i = 0; i < n; i++) {
    let b: number;
    do b = rng.u32(); while ((b & 0x7f800000) === 0x7f800000);
    bits[i] = b;
  }
  return out;
}

/**
 * Round-to-nearest-even by value: among the truncated pattern t and t + 1, the closer one (in
 * float64, exact here), ties to the even pattern. `valueOf(t + 1)` may be the first value past
 * the largest finite one (2^128 or 65536), which stands for infinity.
 */
function nearestEven(x: number, t: number, valueOf: (h: number) => number): number {
  const a = Math.abs(x) - Math.abs(valueOf(t));
  const b = Math.abs(valueOf(t + 1)) - Math.abs(x);
  if (a < b) return t;
  if (b < a) return t + 1;
  return (t & 1) === 0 ? t : t + 1;
}

Deno.test("bf16ToF32() then f32ToBf16() returns each of the 65,536 bf16 patterns unchanged", () => {
  const back = f32ToBf16(bf16ToF32(ALL));
  for (let h = 0; h < 65536; h++) assert.equal(back[h], h, `pattern 0x${h.toString(16)}`);
});

Deno.test("f16ToF32() then f32ToF16() returns each of the 65,536 f16 patterns unchanged", () => {
  const back = f32ToF16(f16ToF32(ALL));
  for (let h = 0; h < 65536; h++) assert.equal(back[h], h, `pattern 0x${h.toString(16)}`);
});

Deno.test("bf16ToF32() is the top-16-bits widening for every pattern", () => {
  const wide = f32Bits(bf16ToF32(ALL));
  for (let h = 0; h < 65536; h++) assert.equal(wide[h], (h << 16) >>> 0);
});

Deno.test("f16ToF32() equals the platform's Float16Array for every pattern", () => {
  const platform = new Float16Array(ALL.buffer);
  const ours = f16ToF32(ALL);
  for (let h = 0; h < 65536; h++) {
    if (Number.isNaN(platform[h])) assert.ok(Number.isNaN(ours[h]), `0x${h.toString(16)}`);
    else assert.ok(Object.is(ours[h], platform[h]), `0x${h.toString(16)}: ${ours[h]}`);
  }
});

Deno.test("f32ToF16() equals Math.f16round on 200,000 random fp32 values of every exponent", () => {
  const x = randomFloats(200_000, 1);
  const ours = f32ToF16(x);
  const ref = new Float16Array(1);
  const refBits = new Uint16Array(ref.buffer);
  for (let i = 0; i < x.length; i++) {
    ref[0] = Math.f16round(x[i]);
    assert.equal(ours[i], refBits[0], `x = ${x[i]}`);
  }
});

Deno.test("f32ToF16() rounds to the nearest f16 with ties to even, by value", () => {
  // Values near the f16 range (2^-26 .. 2^17) so subnormals, normals and overflow all occur.
  const rng = new Rng(2);
  const f16Value = (h: number) => ((h & 0x7fff) === 0x7c00 ? 65536 : fromF16Bits(h & 0x7fff));
  for (let i = 0; i < 100_000; i++) {
    const x = Math.fround(2 ** rng.uniform(-26, 17));
    const got = toF16Bits(x);
    // Truncated pattern: the largest f16 not above x (by bisection over the ordered patterns).
    let lo = 0, hi = 0x7c00;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f16Value(mid) <= x) lo = mid;
      else hi = mid - 1;
    }
    const want = lo === 0x7c00 ? 0x7c00 : nearestEven(x, lo, f16Value);
    assert.equal(got, want, `x = ${x}`);
    assert.equal(toF16Bits(-x), want | 0x8000, `x = ${-x}`);
  }
});

Deno.test("f32ToBf16() rounds to the nearest bf16 with ties to even, by value", () => {
  const x = randomFloats(200_000, 3);
  const got = f32ToBf16(x);
  const bits = f32Bits(x);
  const value = (h: number) => ((h & 0x7fff) === 0x7f80 ? 2 ** 128 : fromBf16Bits(h & 0x7fff));
  for (let i = 0; i < x.length; i++) {
    const t = (bits[i] >>> 16) & 0x7fff;
    const sign = (bits[i] >>> 16) & 0x8000;
    assert.equal(got[i], sign | nearestEven(Math.abs(x[i]), t, value), `x = ${x[i]}`);
  }
});

Deno.test("f32ToBf16() sends every exact midpoint to the even neighbour and its f32 neighbours to the nearer", () => {
  const mid = new Uint32Array(3);
  const asF32 = new Float32Array(mid.buffer);
  for (let h = 0; h < 0x7f80; h++) {
    const m = ((h << 16) | 0x8000) >>> 0;
    mid[0] = m - 1;
    mid[1] = m;
    mid[2] = m + 1;
    const r = f32ToBf16(asF32);
    assert.deepEqual([...r], [h, (h & 1) === 0 ? h : h + 1, h + 1], `h = 0x${h.toString(16)}`);
  }
});

Deno.test("f16 and bf16 narrowing handle zeros, infinities, NaN, overflow and subnormals", () => {
  assert.equal(toF16Bits(0), 0x0000);
  assert.equal(toF16Bits(-0), 0x8000);
  assert.equal(toF16Bits(Infinity), 0x7c00);
  assert.equal(toF16Bits(-Infinity), 0xfc00);
  assert.ok(Number.isNaN(fromF16Bits(toF16Bits(NaN))));
  assert.equal(toF16Bits(65504), 0x7bff); // largest finite
  assert.equal(toF16Bits(65519), 0x7bff); // below the midpoint to 65536
  assert.equal(toF16Bits(65520), 0x7c00); // midpoint: ties to even = infinity
  assert.equal(toF16Bits(1e10), 0x7c00);
  assert.equal(toF16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(toF16Bits(2 ** -25), 0x0000); // half of it: tie to even = 0
  assert.equal(toF16Bits(Math.fround(2 ** -25 * 1.0001)), 0x0001);
  assert.equal(toF16Bits(3 * 2 ** -25), 0x0002); // 1.5 units: tie to even = 2
  assert.equal(toF16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the smallest normal
  assert.equal(toF16Bits(1e-45), 0x0000); // fp32 subnormal
  assert.equal(fromF16Bits(0x0001), 2 ** -24);
  assert.equal(fromF16Bits(0x03ff), 1023 * 2 ** -24);

  assert.equal(toBf16Bits(0), 0x0000);
  assert.equal(toBf16Bits(-0), 0x8000);
  assert.equal(toBf16Bits(Infinity), 0x7f80);
  assert.equal(toBf16Bits(-Infinity), 0xff80);
  assert.ok(Number.isNaN(fromBf16Bits(toBf16Bits(NaN))));
  assert.equal(toBf16Bits(3.4028234663852886e38), 0x7f80); // max fp32 rounds past bf16's max
  assert.equal(toBf16Bits(1e-45), 0x0000); // 2^-149: below half of bf16's smallest subnormal
  assert.equal(fromBf16Bits(toBf16Bits(2 ** -133)), 2 ** -133); // bf16 subnormal kept exactly
  // A NaN whose payload is only in the dropped bits stays NaN (quiet), sign kept.
  const nan = new Float32Array(new Uint32Array([0xff800001]).buffer);
  const h = f32ToBf16(nan)[0];
  assert.equal(h & 0xff80, 0xff80);
  assert.ok((h & 0x7f) !== 0);
  const h16 = f32ToF16(nan)[0];
  assert.equal(h16 & 0xfc00, 0xfc00);
  assert.ok((h16 & 0x3ff) !== 0);
});

Deno.test("conversions write into a given output and refuse one of the wrong length", () => {
  const out = new Float32Array(2);
  assert.equal(bf16ToF32(new Uint16Array([0x3f80, 0xc000]), out), out);
  assert.deepEqual([...out], [1, -2]);
  assert.throws(() => f32ToF16(new Float32Array(3), new Uint16Array(2)), RangeError);
  assert.throws(() => f16ToF32(new Uint16Array(3), new Float32Array(4)), RangeError);
});
