/**
 * CPU reference for kernels/cast.wgsl, bit-exact: bf16/f16 (as Uint16Array bits) to f32 and
 * f32 to bf16 (round to nearest even, NaN -> 0x7fc0). Written independently of the kernel: f16
 * is decoded arithmetically from its fields.
 */

/** bf16 bits to f32: the 16 bits become the high half of the f32. */
export function bf16ToF32Ref(h: Uint16Array): Float32Array {
  const out = new Uint32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = h[i] * 65536;
  return new Float32Array(out.buffer);
}

/** IEEE binary16 bits to f32 (exact; NaN payloads keep their bits, shifted up by 13). */
export function f16ToF32Ref(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < h.length; i++) {
    const sign = h[i] >> 15, e = (h[i] >> 10) & 31, m = h[i] & 1023;
    if (e === 31) {
      bits[i] = ((sign << 31) | 0x7f800000 | (m << 13)) >>> 0;
    } else {
      const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
      out[i] = sign ? -v : v;
    }
  }
  return out;
}

/** f32 to bf16 bits, round to nearest with ties to even; every NaN becomes 0x7fc0 (as torch). */
export function f32ToBf16Ref(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i])) {
      out[i] = 0x7fc0;
      continue;
    }
    const u = bits[i];
    const lower = u % 65536, upper = Math.floor(u / 65536);
    // Keep the upper half, then round on the discarded lower half: above half, or exactly half
    // with an odd kept half, rounds up (carrying into the exponent as needed).
    out[i] = lower > 0x8000 || (lower === 0x8000 && (upper & 1) === 1) ? upper + 1 : upper;
  }
  return out;
}
