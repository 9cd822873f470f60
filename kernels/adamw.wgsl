// adamw.wgsl: global gradient norm, clipping and the fused AdamW update.
//
// A step is three kinds of dispatch, none of which reads anything back to the CPU:
//   sumsq     per gradient chunk: each workgroup writes the sum of squares of its slice and
//             the count of non-finite elements into its own slot of `partials`
//             bindings: 0 P{n, slot0}, 1 g[n] (read), 2 partials[2 * slots] (rw)
//   finalize  one workgroup sums all slots in a fixed order and writes
//             stats = [grad_norm, clip_scale, nonfinite_count (as f32), skipped (0/1)]
//             bindings: 0 F{slots, max_norm}, 2 partials (read), 3 stats[4] (rw)
//   update    per parameter chunk, one element per invocation:
//               if stats.skipped: nothing changes (weights and moments untouched)
//               g  = grad * clip_scale
//               m  = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//               p *= 1 - lr wd            (decoupled weight decay)
//               p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
//             with bc1 = 1 - b1^t, bc2 = 1 - b2^t computed on the CPU in float64.
//             (1 - b1 and 1 - b2 come from the CPU in float64: 1.0 - 0.999 in f32 is 4.7e-5 off.)
//             bindings: 0 U{n, lr, b1, b2, omb1, omb2, eps, wd, step_size, inv_sqrt_bc2}, 1 g, 3 stats,
//             4 p (rw), 5 m (rw), 6 v (rw)
//
// Non-finite detection looks at the exponent bits (all ones = Inf or NaN) because WGSL
// compilers may assume floats are finite and fold `x != x` away.
// Determinism: every reduction has a fixed shape (256 lanes, tree in workgroup memory, slots
// summed in index order), so the same gradients give the same bits.
// Variants: the sum of squares could be fused into the backward kernels, but a separate pass
// over the gradients costs one read of them and keeps every kernel independent.

const WG: u32 = 256u;
const PER_THREAD: u32 = 16u;

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

@compute @workgroup_size(256)
fn update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= u.n || stats_in[3] != 0.0) { return; }
  let g = grad[i] * stats_in[1];
  let m = u.b1 * m1[i] + u.omb1 * g;
  let v = u.b2 * m2[i] + u.omb2 * g * g;
  m1[i] = m;
  m2[i] = v;
  let decayed = param[i] * (1.0 - u.lr * u.wd);
  param[i] = decayed - u.step_size * m / (sqrt(v) * u.inv_sqrt_bc2 + u.eps);
}
