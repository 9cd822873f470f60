// rope.wgsl: rotary position embedding, "rotate half" convention (Qwen2 / Hugging Face Llama):
// in each head of D = 2 * half elements, element i pairs with i + half (i < half) and
//   out[i]        = x[i] cos(a) - x[i + half] sin(a)
//   out[i + half] = x[i + half] cos(a) + x[i] sin(a),    a = f32(pos[t]) * inv_freq[i]
// The backward is the same rotation by -a (sign = -1).
//
//   rope_inplace  x [n, heads * D] rotated in place
//                 bindings: 0 P, 1 pos [n] u32, 2 inv_freq [half], 3 x (rw)
//   rope_out      out = rotate(x), x unchanged
//                 bindings: 0 P, 1 pos, 2 inv_freq, 4 x (read), 5 out [n, heads * D] (rw)
// P = { n: u32 tokens, heads: u32, half: u32, sign: f32 }.
// One invocation per (token t, pair i), looping over the heads, so cos/sin are computed once per
// (t, i) and not once per element; linear id = (wid.x + wid.y * nwg.x) * 64 + lid = t * half + i.
//
// Precision, as Hugging Face computes it: inv_freq is f32 (computed on the CPU, see
// engine/rope_ref.ts), the angle is the f32 product pos * inv_freq (one rounding: |error| <=
// 2^-24 |a|, about 0.002 rad at a = 32768), and cos/sin are of that f32 angle. WGSL only bounds
// cos/sin inside [-pi, pi] (and GPUs' fast sin/cos lose about |a| * 2^-24 outside it), so the
// angle is first reduced with a three-part 2*pi (Cody-Waite; C1 and C2 have 8 significant bits,
// so k * C1 and k * C2 are exact for |k| < 2^16, i.e. |a| < 4e5): the reduced angle is within
// about 1e-7 of a - 2 pi k and cos/sin are then as accurate as the builtins are near zero.
// Variants: this is the only layout written. At [512, 14 x 64] on llvmpipe it moves about
// 3 GB/s, what the best RMSNorm layout reaches there; the op reads and writes n x heads x D
// floats once and is bound by memory on a GPU.

const WG: u32 = 64u;
const INV_TWO_PI: f32 = 0.15915494309189535;
const C1: f32 = 6.28125;                  // 201 / 32
const C2: f32 = 0.0019378662109375;       // 254 / 2^17
const C3: f32 = -2.559031351268004e-6;    // 2 pi - C1 - C2, rounded to f32

struct P {
  n: u32,
  heads: u32,
  half: u32,
  sign: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(3) var<storage, read_write> xio: array<f32>;
@group(0) @binding(4) var<storage, read> xin: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// (cos a, sign * sin a) for a = f32(pos) * inv_freq, reduced to about [-pi, pi] first.
fn cos_sin(t: u32, i: u32) -> vec2f {
  let a = f32(pos[t]) * inv_freq[i];
  let k = round(a * INV_TWO_PI);
  let r = ((a - k * C1) - k * C2) - k * C3;
  return vec2f(cos(r), p.sign * sin(r));
}

@compute @workgroup_size(WG)
fn rope_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= p.n * p.half) { return; }
  let t = id / p.half;
  let i = id - t * p.half;
  let cs = cos_sin(t, i);
  let row = t * p.heads * 2u * p.half;
  for (var h = 0u; h < p.heads; h++) {
    let j = row + h * 2u * p.half + i;
    let a = xio[j];
    let b = xio[j + p.half];
    xio[j] = a * cs.x - b * cs.y;
    xio[j + p.half] = b * cs.x + a * cs.y;
  }
}

@compute @workgroup_size(WG)
fn rope_out(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * WG + lid;
  if (id >= p.n * p.half) { return; }
  let t = id / p.half;
  let i = id - t * p.half;
  let cs = cos_sin(t, i);
  let row = t * p.heads * 2u * p.half;
  for (var h = 0u; h < p.heads; h++) {
    let j = row + h * 2u * p.half + i;
    let a = xin[j];
    let b = xin[j + p.half];
    out[j] = a * cs.x - b * cs.y;
    out[j + p.half] = b * cs.x + a * cs.y;
  }
}
