/**
 * Half-precision storage formats <-> fp32, bit-exact, for checkpoints (`Uint16Array` holds the
 * raw 16-bit patterns).
 *
 * - bf16: the top 16 bits of an fp32 (1 sign, 8 exponent, 7 mantissa bits). Widening is a shift.
 * - f16: IEEE binary16 (1 sign, 5 exponent, 10 mantissa bits, subnormals below 2^-14).
 *
 * Narrowing rounds to nearest, ties to even; values past the largest finite number become
 * infinity (as IEEE rounding does), fp32 values below half the smallest f16 subnormal become a
 * signed zero, and NaN stays NaN with its sign and top payload bits (forced quiet when the kept
 * payload would be zero). Widening is exact, so `narrow(widen(h)) === h` for every pattern.
 *
 * @example
 * ```ts
 * import { bf16ToF32, f32ToBf16 } from "./dtype.ts";
 * const h = f32ToBf16(new Float32Array([1, 1 + 2 ** -8, -0.5]));
 * // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties go to the even pattern, 1.
 * if (bf16ToF32(h).join() !== "1,1,-0.5") throw new Error("bf16 rounding");
 * ```
 */

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** fp32 bit pattern -> bf16 pattern (round to nearest even). */
function bitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    // NaN: keep sign and the top 7 payload bits; a payload only in the dropped bits becomes quiet.
    const h = bits >>> 16;
    return (h & 0x7f) === 0 ? h | 0x40 : h;
  }
  // Adding 0x7fff (+1 when the kept lsb is odd) carries into the kept bits exactly when the
  // dropped half is above (or at, for odd) the midpoint; a carry out of the mantissa bumps the
  // exponent, and out of the largest finite value gives infinity. bits + 0x8000 < 2^32 here.
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** fp32 bit pattern -> f16 pattern (round to nearest even). */
function bitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const payload = mant >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // f16 subnormal (or zero): value = m * 2^(exp - 150) = (m >> (14 - e)) * 2^-24.
    const shift = 14 - e;
    if (shift > 24) return sign; // below 2^-25: rounds to zero
    const m = mant | 0x800000; // exp >= 103 here, so the value is an fp32 normal
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++;
    return sign | q; // q may reach 0x400: the smallest normal, correctly encoded
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++; // may carry to 0x7c00 = inf
  return sign | q;
}

/** f16 pattern -> fp32 bit pattern (exact). */
function f16ToBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: normalise the mantissa into fp32's implicit-one form.
  let e = 113; // 2^-14 in fp32's bias, before shifting
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

let f16Table: Uint32Array | null = null;

/** All 65,536 f16 patterns widened to fp32 bit patterns (256 KiB, built on first use). */
function f16TableBits(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToBits(h);
  }
  return f16Table;
}

function checkOut<T extends { length: number }>(out: T, n: number, what: string): T {
  if (out.length !== n) {
    throw new RangeError(`${what}: output length ${out.length} != input length ${n}`);
  }
  return out;
}

/** Bits of a float32 view; the view must start on a 4-byte boundary (typed arrays always do). */
function bitsOf(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** fp32 -> bf16 patterns, round to nearest even. */
export function f32ToBf16(x: Float32Array, out?: Uint16Array): Uint16Array {
  const o = out ? checkOut(out, x.length, "f32ToBf16") : new Uint16Array(x.length);
  const b = bitsOf(x);
  for (let i = 0; i < b.length; i++) o[i] = bitsToBf16(b[i]);
  return o;
}

/** bf16 patterns -> fp32 (exact). */
export function bf16ToF32(h: Uint16Array, out?: Float32Array): Float32Array {
  const o = out ? checkOut(out, h.length, "bf16ToF32") : new Float32Array(h.length);
  const b = bitsOf(o);
  for (let i = 0; i < h.length; i++) b[i] = h[i] << 16;
  return o;
}

/** fp32 -> f16 patterns, round to nearest even (overflow to infinity, subnormals kept). */
export function f32ToF16(x: Float32Array, out?: Uint16Array): Uint16Array {
  const o = out ? checkOut(out, x.length, "f32ToF16") : new Uint16Array(x.length);
  const b = bitsOf(x);
  for (let i = 0; i < b.length; i++) o[i] = bitsToF16(b[i]);
  return o;
}

/** f16 patterns -> fp32 (exact). */
export function f16ToF32(h: Uint16Array, out?: Float32Array): Float32Array {
  const o = out ? checkOut(out, h.length, "f16ToF32") : new Float32Array(h.length);
  const b = bitsOf(o);
  const t = f16TableBits();
  for (let i = 0; i < h.length; i++) b[i] = t[h[i]];
  return o;
}

/** One number -> bf16 pattern (the number is first rounded to fp32). */
export function toBf16Bits(x: number): number {
  f32Buf[0] = x;
  return bitsToBf16(u32Buf[0]);
}

/** One bf16 pattern -> number. */
export function fromBf16Bits(h: number): number {
  u32Buf[0] = (h & 0xffff) << 16;
  return f32Buf[0];
}

/** One number -> f16 pattern (the number is first rounded to fp32). */
export function toF16Bits(x: number): number {
  f32Buf[0] = x;
  return bitsToF16(u32Buf[0]);
}

/** One f16 pattern -> number. */
export function fromF16Bits(h: number): number {
  u32Buf[0] = f16TableBits()[h & 0xffff];
  return f32Buf[0];
}
