// cast.wgsl: conversions between fp32 tensors and 16-bit floats packed two to a u32 word
// (element 2i in the low half of word i, 2i + 1 in the high half: the little-endian bytes of a
// Uint16Array). Everything is integer bit manipulation, so results are bit-exact on every
// adapter (no float conversion that could flush subnormals or quiet NaN payloads).
//
//   bf16_to_f32   dst[k] = bits(src half k) << 16                   one invocation per word
//   f16_to_f32    IEEE binary16 -> binary32, exact (subnormals normalised, Inf kept, NaN
//                 payload kept in the top mantissa bits)           one invocation per word
//                 bindings: 0 P, 1 src [words] u32, 2 dst [n] (rw, f32 bits as u32)
//   f32_to_bf16   round to nearest, ties to even (the bias 0x7fff + lowest kept bit); any NaN
//                 becomes 0x7fc0 as torch does; values that round past the largest bf16 become
//                 Inf                                               one invocation per word
//                 bindings: 0 P, 3 src [n] (f32 bits as u32), 4 dst [words] u32 (rw)
// P = { n: u32 elements, words: u32 = ceil(n / 2) }; an odd n leaves the high half of the last
// word 0. Linear id = (wid.x + wid.y * nwg.x) * 256 + lid.
// Variants: none; one word per invocation moves 6 bytes, bound by memory.

const WG: u32 = 256u;

struct P {
  n: u32,
  words: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src16: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst32: array<u32>;
@group(0) @binding(3) var<storage, read> src32: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst16: array<u32>;

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

fn f16_to_f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) {
    return sign | 0x7f800000u | (m << 13u);
  }
  if (e != 0u) {
    return sign | ((e + 112u) << 23u) | (m << 13u);
  }
  if (m == 0u) {
    return sign;
  }
  // Subnormal m * 2^-24 with its leading one at bit b: 2^(b - 24) * (m / 2^b).
  let b = firstLeadingBit(m);
  return sign | ((b + 103u) << 23u) | ((m << (23u - b)) & 0x7fffffu);
}

fn f32_to_bf16_bits(x: u32) -> u32 {
  if ((x & 0x7fffffffu) > 0x7f800000u) {
    return 0x7fc0u;
  }
  return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(WG)
fn bf16_to_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.words) { return; }
  let w = src16[i];
  dst32[2u * i] = w << 16u;
  if (2u * i + 1u < p.n) {
    dst32[2u * i + 1u] = w & 0xffff0000u;
  }
}

@compute @workgroup_size(WG)
fn f16_to_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.words) { return; }
  let w = src16[i];
  dst32[2u * i] = f16_to_f32_bits(w & 0xffffu);
  if (2u * i + 1u < p.n) {
    dst32[2u * i + 1u] = f16_to_f32_bits(w >> 16u);
  }
}

@compute @workgroup_size(WG)
fn f32_to_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.words) { return; }
  let lo = f32_to_bf16_bits(src32[2u * i]);
  var hi = 0u;
  if (2u * i + 1u < p.n) {
    hi = f32_to_bf16_bits(src32[2u * i + 1u]);
  }
  dst16[i] = lo | (hi << 16u);
}
