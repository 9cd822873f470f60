// rmsnorm.wgsl: RMSNorm forward and backward over the rows of x [n, d], fp32.
//
//   forward[_rows4]   y[r, j] = (x[r, j] * rstd[r]) * w[j],
//                     rstd[r] = inverseSqrt(mean_j x[r, j]^2 + eps)
//                     bindings: 0 P, 1 x [n, d], 2 w [d], 3 y [n, d] (rw), 4 rstd [n] (rw)
//   backward[_rows4]  dx[r, j] = rstd * (w[j] dy[r, j] - x[r, j] * rstd^2 * c / d),
//                     c = sum_j w[j] dy[r, j] x[r, j]
//                     bindings: 0 P, 1 x, 2 w, 5 dy [n, d], 6 rstd [n] (read), 3 dx [n, d] (rw)
//   dw_partial        part[b, j] = sum over the rows r of block b (ROWS_PER_BLOCK rows, in
//                     order) of dy[r, j] * x[r, j] * rstd[r]; one invocation per (j, b)
//                     bindings: 0 P, 1 x, 5 dy, 6 rstd, 7 part [blocks, d] (rw)
//   dw_reduce         dw[j] = (accumulate ? dw[j] : 0) + sum over blocks b in order of part[b, j]
//                     bindings: 0 P, 8 part (read), 9 dw [d] (rw)
// P = { n: u32 rows, d: u32, eps: f32, blocks: u32, accumulate: u32 }.
//
// Two layouts of the row kernels; the wrapper picks one per adapter:
//   forward, backward              one workgroup of 64 lanes per row (linear workgroup id =
//                                  wid.x + wid.y * nwg.x, rows past n skip); lanes read a
//                                  strided slice (coalesced) and the 64 partial sums meet in a
//                                  fixed tree in workgroup memory. Any d. For GPUs.
//   forward_rows4, backward_rows4  one invocation per row, vec4 loads along the row, no barriers,
//                                  no workgroup memory (needs d % 4 == 0). For llvmpipe, where at
//                                  [512, 896] it ran the forward in 1.15 ms against 5.3 ms for the
//                                  workgroup form (its barriers are costly); on a GPU it would
//                                  leave most of the chip idle and read uncoalesced.
// Both sum in a fixed order, so each is bit-reproducible. dw is two passes of fixed order (rows
// within a block, then blocks) instead of float atomics; 16-row blocks beat 64 and 512 on
// llvmpipe and give a GPU more parallel columns x blocks. vec4 columns in dw_partial were within
// 15%, so it stays scalar for every d.

const WG: u32 = 64u;
const ROWS_PER_BLOCK: u32 = 16u;

struct P {
  n: u32,
  d: u32,
  eps: f32,
  blocks: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> w4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> dy4: array<vec4f>;
@group(0) @binding(6) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(7) var<storage, read_write> part_out: array<f32>;
@group(0) @binding(8) var<storage, read> part_in: array<f32>;
@group(0) @binding(9) var<storage, read_write> dw: array<f32>;

var<workgroup> red: array<f32, WG>;

// Sums red[0..WG) into red[0] in a fixed tree; every lane must call it.
fn tree_sum(lid: u32) -> f32 {
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      red[lid] = red[lid] + red[lid + s];
    }
    workgroupBarrier();
  }
  return red[0];
}

fn hsum(v: vec4f) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.n) { return; }
  let base = row * p.d;
  var s = 0.0;
  for (var j = lid; j < p.d; j += WG) {
    let v = x[base + j];
    s += v * v;
  }
  red[lid] = s;
  let total = tree_sum(lid);
  let r = inverseSqrt(total / f32(p.d) + p.eps);
  for (var j = lid; j < p.d; j += WG) {
    out[base + j] = (x[base + j] * r) * w[j];
  }
  if (lid == 0u) { rstd_out[row] = r; }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.n) { return; }
  let base = row * p.d;
  var s = 0.0;
  for (var j = lid; j < p.d; j += WG) {
    s += w[j] * dy[base + j] * x[base + j];
  }
  red[lid] = s;
  let c = tree_sum(lid);
  let r = rstd_in[row];
  let k = r * r * c / f32(p.d);
  for (var j = lid; j < p.d; j += WG) {
    out[base + j] = r * (w[j] * dy[base + j] - x[base + j] * k);
  }
}

@compute @workgroup_size(WG)
fn forward_rows4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  if (row >= p.n) { return; }
  let d4 = p.d / 4u;
  let base = row * d4;
  var s = vec4f(0.0);
  for (var j = 0u; j < d4; j++) {
    let v = x4[base + j];
    s += v * v;
  }
  let r = inverseSqrt(hsum(s) / f32(p.d) + p.eps);
  for (var j = 0u; j < d4; j++) {
    out4[base + j] = (x4[base + j] * r) * w4[j];
  }
  rstd_out[row] = r;
}

@compute @workgroup_size(WG)
fn backward_rows4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  if (row >= p.n) { return; }
  let d4 = p.d / 4u;
  let base = row * d4;
  var s = vec4f(0.0);
  for (var j = 0u; j < d4; j++) {
    s += w4[j] * dy4[base + j] * x4[base + j];
  }
  let r = rstd_in[row];
  let k = r * r * hsum(s) / f32(p.d);
  for (var j = 0u; j < d4; j++) {
    out4[base + j] = r * (w4[j] * dy4[base + j] - x4[base + j] * k);
  }
}

@compute @workgroup_size(WG)
fn dw_partial(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let b = gid.y;
  if (j >= p.d || b >= p.blocks) { return; }
  let r0 = b * ROWS_PER_BLOCK;
  let r1 = min(r0 + ROWS_PER_BLOCK, p.n);
  var s = 0.0;
  for (var r = r0; r < r1; r++) {
    s += dy[r * p.d + j] * x[r * p.d + j] * rstd_in[r];
  }
  part_out[b * p.d + j] = s;
}

@compute @workgroup_size(WG)
fn dw_reduce(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  if (j >= p.d) { return; }
  var s = 0.0;
  for (var b = 0u; b < p.blocks; b++) {
    s += part_in[b * p.d + j];
  }
  if (p.accumulate != 0u) {
    dw[j] = dw[j] + s;
  } else {
    dw[j] = s;
  }
}
