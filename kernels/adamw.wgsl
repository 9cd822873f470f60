// adamw.wgsl: global gradient norm, clipping and the fused AdamW update.
//
// A step is three kinds of dispatch, none of which reads anything back to the CPU:
//   sumsq     per gradient chunk: each workgroup writes the sum of squares of its slice and
//             the count of non-finite elements into its own slot of `partials`
//             bindings: 0 P{n, slot0}, 1 g[n] (read), 2 partials[2 * slots] (rw)
//   finalize  one workgroup sums all slots in a fixed order and writes
//             stats = [grad_norm, clip_scale, nonfinite_count (as f32), skipped (0/1)]
//             bindings: 0 F{slots, max_norm}, 2 partials (read), 3 stats[4] (rw)
//   update4   per parameter chunk, its first 4 floor(n / 4) elements as vec4s, UPDATE_PER_THREAD
//   update    of them per lane; then update for the last n % 4 (all n when n < 4), one per lane:
//               if stats.skipped: nothing changes (weights and moments untouched)
//               g  = grad * clip_scale
//               m  = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//               p *= 1 - lr wd            (decoupled weight decay)
//               p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
//             with bc1 = 1 - b1^t, bc2 = 1 - b2^t computed on the CPU in float64.
//             (1 - b1 and 1 - b2 come from the CPU in float64: 1.0 - 0.999 in f32 is 4.7e-5 off.)
//             U = {n, lr, b1, b2, omb1, omb2, eps, wd, step_size, inv_sqrt_bc2, first};
//             update4 bindings: 0 U, 3 stats, 7 g, 8 p (rw), 9 m (rw), 10 v (rw) as vec4s;
//             update bindings: 0 U, 1 g, 3 stats, 4 p (rw), 5 m (rw), 6 v (rw) as floats
//             (the same buffers: one dispatch may not bind a written buffer twice)
//
// Non-finite detection looks at the exponent bits (all ones = Inf or NaN) because WGSL
// compilers may assume floats are finite and fold `x != x` away.
// Determinism: every reduction has a fixed shape (256 lanes, tree in workgroup memory, slots
// summed in index order), so the same gradients give the same bits.
// Variants: the sum of squares could be fused into the backward kernels, but a separate pass
// over the gradients costs one read of them and keeps every kernel independent. On llvmpipe,
// 50M parameters (bench/adamw_bench.ts): 16 elements per sumsq lane and one per update lane
// took 1.3 s + 0.56 s; 256 per sumsq lane (16x fewer workgroups and barrier rounds) 0.12-0.18 s;
// the update as vec4s 0.14 s with 4 per lane (16 per lane: 0.5 s; floats, 16 per lane: 0.45 s).

const WG: u32 = 256u;
const PER_THREAD: u32 = 256u; // elements per lane in sumsq: a slot is WG * PER_THREAD elements
const UPDATE_PER_THREAD: u32 = 4u; // vec4s per lane in update4

struct P {
  n: u32,
  slot0: u32,
}

struct F {
  slots: u32,
  max_norm: f32,
}

struct U {
  n: u32,
  lr: f32,
  b1: f32,
  b2: f32,
  omb1: f32,
  omb2: f32,
  eps: f32,
  wd: f32,
  step_size: f32,
  inv_sqrt_bc2: f32,
  first: u32, // update: the first element it takes (update4 takes the vec4s before it)
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(0) var<uniform> f: F;
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read> partials_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read> stats_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> param: array<f32>;
@group(0) @binding(5) var<storage, read_write> m1: array<f32>;
@group(0) @binding(6) var<storage, read_write> m2: array<f32>;
@group(0) @binding(7) var<storage, read> grad4: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> param4: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> m14: array<vec4f>;
@group(0) @binding(10) var<storage, read_write> m24: array<vec4f>;

var<workgroup> red: array<f32, 256>;
var<workgroup> bad: array<u32, 256>;

fn nonfinite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

fn tree(lid: u32) {
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    workgroupBarrier();
    if (lid < s) {
      red[lid] = red[lid] + red[lid + s];
      bad[lid] = bad[lid] + bad[lid + s];
    }
  }
  workgroupBarrier();
}

// One workgroup covers WG * PER_THREAD consecutive elements; lane l reads l, l + WG, ...
@compute @workgroup_size(256)
fn sumsq(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let base = w * WG * PER_THREAD;
  var acc = 0.0;
  var cnt = 0u;
  for (var j = 0u; j < PER_THREAD; j++) {
    let i = base + j * WG + lid;
    if (i < p.n) {
      let x = grad[i];
      if (nonfinite(x)) { cnt += 1u; } else { acc = fma(x, x, acc); }
    }
  }
  red[lid] = acc;
  bad[lid] = cnt;
  tree(lid);
  if (lid == 0u && base < p.n) {
    partials[2u * (p.slot0 + w)] = red[0];
    partials[2u * (p.slot0 + w) + 1u] = f32(bad[0]);
  }
}

@compute @workgroup_size(256)
fn finalize(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  var cnt = 0.0;
  for (var s = lid; s < f.slots; s += WG) {
    acc += partials_in[2u * s];
    cnt += partials_in[2u * s + 1u];
  }
  red[lid] = acc;
  bad[lid] = u32(cnt);
  tree(lid);
  if (lid == 0u) {
    let norm = sqrt(red[0]);
    let count = bad[0];
    var scale = 1.0;
    if (f.max_norm > 0.0 && norm > f.max_norm) { scale = f.max_norm / (norm + 1e-6); }
    var skipped = 0.0;
    if (count > 0u || nonfinite(norm)) { skipped = 1.0; }
    stats[0] = norm;
    stats[1] = scale;
    stats[2] = f32(count);
    stats[3] = skipped;
  }
}

struct Moved {
  p: vec4f,
  m: vec4f,
  v: vec4f,
}

// The AdamW step of four elements: parameters p, gradients g (before clipping), moments m, v.
fn adam(p: vec4f, g0: vec4f, m0: vec4f, v0: vec4f) -> Moved {
  let g = g0 * stats_in[1];
  let m = u.b1 * m0 + u.omb1 * g;
  let v = u.b2 * v0 + u.omb2 * g * g;
  let decayed = p * (1.0 - u.lr * u.wd);
  return Moved(decayed - u.step_size * m / (sqrt(v) * u.inv_sqrt_bc2 + u.eps), m, v);
}

// Elements 0 .. 4 floor(n / 4) as vec4s (a quarter of the per-lane loads of scalar ones on
// llvmpipe). One workgroup covers WG * UPDATE_PER_THREAD vec4s; lane l takes l, l + WG, ...
// bindings: 0 U, 3 stats, 7 grad4, 8 param4, 9 m14, 10 m24
@compute @workgroup_size(256)
fn update4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  if (stats_in[3] != 0.0) { return; }
  let base = (wid.x + wid.y * nwg.x) * WG * UPDATE_PER_THREAD + lid;
  for (var j = 0u; j < UPDATE_PER_THREAD; j++) {
    let i = base + j * WG;
    if (i >= u.n / 4u) { return; }
    let r = adam(param4[i], grad4[i], m14[i], m24[i]);
    param4[i] = r.p;
    m14[i] = r.m;
    m24[i] = r.v;
  }
}

// Elements u.first .. n - 1 one by one (the last n % 4 after update4, or all of a tensor of
// fewer than 4). bindings: 0 U, 1 grad, 3 stats, 4 param, 5 m1, 6 m2
@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = u.first + (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= u.n || stats_in[3] != 0.0) { return; }
  let r = adam(vec4f(param[i]), vec4f(grad[i]), vec4f(m1[i]), vec4f(m2[i]));
  param[i] = r.p.x;
  m1[i] = r.m.x;
  m2[i] = r.v.x;
}
