// attention_rows1.wgsl: the same causal GQA attention as attention.wgsl (same layouts, same
// uniforms P, same stats from its attn_bwd_stats), one row per invocation: the form for GPUs.
//
// attention.wgsl gives each invocation four query rows (two key rows in dk/dv), which is what
// llvmpipe wants and what starves a GPU: at 512 tokens x 14 query heads that is 1,792
// invocations for the forward and 512 for dk/dv, each holding 512 floats of row state. Here an
// invocation holds one row (2 x D floats in the forward, 3 x D in the backward), so the same
// shape runs 7,168 invocations in every pass. Invocations of a workgroup walk the same keys (or
// queries) in the same order, so their K/V (Q/dO) reads are the same address at the same time.
//
// Entry points (bindings as in attention.wgsl where they mean the same):
//   attn1_fwd      out, lse: query row i = wid.x * BR + lid of head wid.y; online softmax over
//                  keys starts[b] .. i, rescaling only when the running maximum grows.
//                  grid (ceil(N / BR), Hq). bindings: 0 P, 1 starts, 2 q, 3 k, 4 v, 8 out, 9 lse
//   attn1_dq       dq for query row i of head wid.y from stats = (lse * log2 e, delta).
//                  grid (ceil(N / BR), Hq). bindings: 0 P, 1 starts, 2 q, 3 k, 4 v, 6 dout,
//                  11 stats, 12 dq
//   attn1_dk       one query head's share of dk for key row j = wid.x * BR + lid: the head is
//   attn1_dv       wid.y, queries j .. end of j's sequence in order. Written to part [N, Hq * D]
//                  at head wid.y's columns (with G = 1 that is dk / dv itself).
//                  grid (ceil(N / BR), Hq). bindings: 0 P, 1 starts, 2 q, 3 k, 4 v, 6 dout,
//                  11 stats, 20 part
//   attn1_sum_heads  red [N, Hkv * D] = sum over the G query heads h = kh*G .. kh*G+G-1 (in that
//                  order) of part_in [N, Hq * D]. grid dev.grid(ceil(N * Hkv * D / 4 / 64)).
//                  bindings: 0 P, 21 part_in, 22 red
// Override constants: D4 = D / 4 (1..32), BR invocations per workgroup.
// Every output element is written by one invocation that sums in a fixed order: deterministic.

const NEG_BIG: f32 = -3.0e38;
const LN2: f32 = 0.6931471805599453;
const LOG2E: f32 = 1.4426950408889634;
const MAXD4: u32 = 32u;
const SWG: u32 = 64u;

override D4: u32 = 16u;
override BR: u32 = 64u;

struct P {
  n: u32,
  hq: u32,
  hkv: u32,
  nseq: u32,
  scale2: f32,
  max_len: u32,
  t_new: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> starts: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<vec4f>;
@group(0) @binding(3) var<storage, read> k: array<vec4f>;
@group(0) @binding(4) var<storage, read> v: array<vec4f>;
@group(0) @binding(6) var<storage, read> dout: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> lse: array<f32>;
@group(0) @binding(11) var<storage, read> stats: array<vec2f>;
@group(0) @binding(12) var<storage, read_write> dq: array<vec4f>;
@group(0) @binding(20) var<storage, read_write> part: array<vec4f>;
@group(0) @binding(21) var<storage, read> part_in: array<vec4f>;
@group(0) @binding(22) var<storage, read_write> red: array<vec4f>;

// The sequence b holding token i: starts[b] <= i < starts[b + 1] (empty sequences are skipped).
fn seq_of(i: u32) -> u32 {
  var lo = 0u;
  var hi = p.nseq;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (starts[mid] <= i) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

fn hsum(x: vec4f) -> f32 {
  return (x.x + x.y) + (x.z + x.w);
}

@compute @workgroup_size(BR)
fn attn1_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let i = wid.x * BR + lid;
  if (i >= p.n) { return; }
  let kh = h / (p.hq / p.hkv);
  let lo = starts[seq_of(i)];
  let qb = i * p.hq * D4 + h * D4;
  let kw = p.hkv * D4;
  var qr: array<vec4f, MAXD4>;
  var acc: array<vec4f, MAXD4>;
  for (var d = 0u; d < D4; d++) {
    qr[d] = q[qb + d] * p.scale2;
    acc[d] = vec4f(0.0);
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j = lo; j <= i; j++) {
    let kb = j * kw + kh * D4;
    var s4 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) { s4 += qr[d] * k[kb + d]; }
    let s = hsum(s4);
    if (s > m) {
      // The first key scales the empty sums by exp2(NEG_BIG - s) = 0.
      let al = exp2(m - s);
      l *= al;
      for (var d = 0u; d < D4; d++) { acc[d] *= al; }
      m = s;
    }
    let pj = exp2(s - m);
    l += pj;
    for (var d = 0u; d < D4; d++) { acc[d] += pj * v[kb + d]; }
  }
  let inv = 1.0 / l;
  for (var d = 0u; d < D4; d++) { out[qb + d] = acc[d] * inv; }
  lse[h * p.n + i] = (m + log2(l)) * LN2;
}

@compute @workgroup_size(BR)
fn attn1_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let i = wid.x * BR + lid;
  if (i >= p.n) { return; }
  let kh = h / (p.hq / p.hkv);
  let lo = starts[seq_of(i)];
  let qb = i * p.hq * D4 + h * D4;
  let kw = p.hkv * D4;
  var qr: array<vec4f, MAXD4>;
  var dor: array<vec4f, MAXD4>;
  var acc: array<vec4f, MAXD4>;
  for (var d = 0u; d < D4; d++) {
    qr[d] = q[qb + d] * p.scale2;
    dor[d] = dout[qb + d];
    acc[d] = vec4f(0.0);
  }
  let st = stats[h * p.n + i];
  for (var j = lo; j <= i; j++) {
    let kb = j * kw + kh * D4;
    var s4 = vec4f(0.0);
    var t4 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      s4 += qr[d] * k[kb + d];
      t4 += dor[d] * v[kb + d];
    }
    let ds = exp2(hsum(s4) - st.x) * (hsum(t4) - st.y);
    for (var d = 0u; d < D4; d++) { acc[d] += ds * k[kb + d]; }
  }
  let scale = p.scale2 / LOG2E;
  for (var d = 0u; d < D4; d++) { dq[qb + d] = acc[d] * scale; }
}

// Key row j's reach: queries j .. (end of j's sequence) - 1.
fn key_end(j: u32) -> u32 {
  return starts[seq_of(j) + 1u];
}

@compute @workgroup_size(BR)
fn attn1_dv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let j = wid.x * BR + lid;
  if (j >= p.n) { return; }
  let kh = h / (p.hq / p.hkv);
  let hi = key_end(j);
  let qw = p.hq * D4;
  let kb = j * p.hkv * D4 + kh * D4;
  var kr: array<vec4f, MAXD4>;
  var acc: array<vec4f, MAXD4>;
  for (var d = 0u; d < D4; d++) {
    kr[d] = k[kb + d] * p.scale2;
    acc[d] = vec4f(0.0);
  }
  for (var i = j; i < hi; i++) {
    let qb = i * qw + h * D4;
    var s4 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) { s4 += kr[d] * q[qb + d]; }
    let pij = exp2(hsum(s4) - stats[h * p.n + i].x);
    for (var d = 0u; d < D4; d++) { acc[d] += pij * dout[qb + d]; }
  }
  let ob = j * qw + h * D4;
  for (var d = 0u; d < D4; d++) { part[ob + d] = acc[d]; }
}

@compute @workgroup_size(BR)
fn attn1_dk(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let j = wid.x * BR + lid;
  if (j >= p.n) { return; }
  let kh = h / (p.hq / p.hkv);
  let hi = key_end(j);
  let qw = p.hq * D4;
  let kb = j * p.hkv * D4 + kh * D4;
  var kr: array<vec4f, MAXD4>;
  var vr: array<vec4f, MAXD4>;
  var acc: array<vec4f, MAXD4>;
  for (var d = 0u; d < D4; d++) {
    kr[d] = k[kb + d] * p.scale2;
    vr[d] = v[kb + d];
    acc[d] = vec4f(0.0);
  }
  for (var i = j; i < hi; i++) {
    let qb = i * qw + h * D4;
    let st = stats[h * p.n + i];
    var s4 = vec4f(0.0);
    var t4 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      s4 += kr[d] * q[qb + d];
      t4 += vr[d] * dout[qb + d];
    }
    let ds = exp2(hsum(s4) - st.x) * (hsum(t4) - st.y);
    for (var d = 0u; d < D4; d++) { acc[d] += ds * q[qb + d]; }
  }
  let scale = p.scale2 / LOG2E;
  let ob = j * qw + h * D4;
  for (var d = 0u; d < D4; d++) { part[ob + d] = acc[d] * scale; }
}

@compute @workgroup_size(SWG)
fn attn1_sum_heads(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * SWG + lid; // = (j * Hkv + kh) * D4 + d
  let kw = p.hkv * D4;
  if (id >= p.n * kw) { return; }
  let j = id / kw;
  let r = id - j * kw;
  let kh = r / D4;
  let d = r - kh * D4;
  let g = p.hq / p.hkv;
  let base = j * p.hq * D4 + kh * g * D4 + d;
  var s = part_in[base];
  for (var e = 1u; e < g; e++) { s += part_in[base + e * D4]; }
  red[id] = s;
}
