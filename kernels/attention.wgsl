// attention.wgsl: causal GQA attention over packed sequences, FlashAttention-2 style.
//
// Layout (token-major, heads contiguous: exactly the q/k/v projections after RoPE):
//   q, out [N, Hq * D]   k, v [N, Hkv * D]   starts [B + 1] u32 (starts[0] = 0, starts[B] = N)
//   lse [Hq, N]          logsumexp of each row's scaled scores (natural log)
// Token i of sequence b (starts[b] <= i < starts[b+1]) attends to keys starts[b]..i.
// Query head h reads KV head h / G, G = Hq / Hkv. S = scale * q k^T, scale = 1 / sqrt(D).
// Scores are kept in the log2 domain (q or k pre-multiplied by scale2 = scale * log2(e), exp2).
//
// Entry points (P = { n, hq, hkv, nseq, scale2, max_len, t_new }):
//   attn_fwd        out, lse. Four consecutive query rows per invocation,
//                   i = 4 * (wid.x * BR + lid) + {0,1,2,3} (a workgroup covers 4 * BR rows of
//                   one head); online softmax over keys from the first row's sequence start to
//                   the last row, masked per row.
//                   grid (ceil(N / (4 * BR)), Hq). bindings: 0 P, 1 starts, 2 q, 3 k, 4 v,
//                   8 out, 9 lse
//   attn_bwd_stats  stats [Hq, N] vec2 = (lse * log2(e), delta = rowsum(dO * O)).
//                   grid dev.grid(ceil(Hq * N / 64)). bindings: 0 P, 5 o, 6 dout, 7 lse, 10 stats
//   attn_bwd_dq     dq = scale * sum_j dS_ij k_j, dS = P * (dO v^T - delta). Four query rows per
//                   invocation as in attn_fwd. grid (ceil(N / (4 * BR)), Hq).
//                   bindings: 0 P, 1 starts, 2 q, 3 k, 4 v, 6 dout, 11 stats, 12 dq
//   attn_bwd_dkdv   dk = scale * sum_i dS_ij q_i, dv = sum_i P_ij dO_i for two consecutive key
//                   rows per invocation, j = 2 * (wid.x * BR + lid) + {0,1}, summed over the G
//                   query heads of the KV head in order h = kh*G .. kh*G+G-1, then over
//                   queries in order (no atomics: each invocation owns its key rows).
//                   grid (ceil(N / (2 * BR)), Hkv).
//                   bindings: 0 P, 1 starts, 2 q, 3 k, 4 v, 6 dout, 11 stats, 13 dk, 14 dv
//   attn_decode     new queries against a KV cache kc, vc [B, max_len, Hkv * D]:
//                   q, out [B * t_new, Hq * D], lens [B] = cached rows before these queries;
//                   query t of sequence b sits at position lens[b] + t and attends to cache rows
//                   0..lens[b] + t (its own k/v must already be appended). lse [Hq, B * t_new].
//                   One workgroup of 64 per (query row, head): each invocation scores one key
//                   of a 64-key chunk, then invocations split (D/4 columns) x (64 / (D/4) key
//                   subsets) of the P V product; subsets merge in fixed order at the end.
//                   grid (B * t_new, Hq). bindings: 0 P, 2 q, 8 out, 9 lse, 15 kc, 16 vc, 17 lens
//   attn_decode_rows  the same, one invocation per (query row, head) (the rows4 form, for
//                   llvmpipe). grid dev.grid(ceil(B * t_new * Hq / 64)); bindings as attn_decode
//   kv_append       writes rows k, v [B * t_new, Hkv * D] to cache rows lens[b] + t.
//                   bindings: 0 P, 3 k, 4 v, 17 lens, 18 kc, 19 vc
//   kv_append_packed  rows of sequence b are starts[b]..starts[b+1]-1 of k, v [M, Hkv * D]
//                   (ragged prefill); row starts[b] + t goes to cache row lens[b] + t.
//                   bindings: 0 P, 1 starts, 3 k, 4 v, 17 lens, 18 kc, 19 vc
//                   Both append kernels drop rows that would land at or past max_len.
//                   grid dev.grid(ceil(rows * Hkv * D / 4 / 64)).
//
// The "rows1" form (dev.attention; the GPU default): the same results from one row per
// invocation. The entries above give each invocation four query rows (two key rows in dk/dv),
// which is what llvmpipe wants and what starves a GPU: at 512 tokens x 14 query heads that is
// 1,792 invocations for the forward and 512 for dk/dv, each holding 512 floats of row state.
// These hold one row (2 x D floats in the forward, 3 x D in the backward), 7,168 invocations in
// every pass at that shape; invocations of a workgroup walk the same keys (or queries) in the
// same order, so their K/V (Q/dO) reads are the same address at the same time.
//   attn1_fwd       out, lse: query row i = wid.x * BR + lid of head wid.y; online softmax over
//                   keys starts[b] .. i, rescaling only when the running maximum grows.
//                   grid (ceil(N / BR), Hq). bindings as attn_fwd
//   attn1_dq        dq for query row i of head wid.y from attn_bwd_stats' stats.
//                   grid (ceil(N / BR), Hq). bindings as attn_bwd_dq
//   attn1_dkv       one query head's share of dk (override DK = true) or dv (DK = false) for key
//                   row j = wid.x * BR + lid: the head is wid.y, queries j .. end of j's sequence
//                   in order, written to part [N, Hq * D] at head wid.y's columns (with G = 1
//                   that is dk / dv itself). grid (ceil(N / BR), Hq).
//                   bindings: 0 P, 1 starts, 2 q, 3 k, 4 v, 6 dout, 11 stats, 20 part
//   attn1_sum_heads red [N, Hkv * D] = sum over the G query heads h = kh*G .. kh*G+G-1 (in that
//                   order) of part_in [N, Hq * D]. grid dev.grid(ceil(N * Hkv * D / 4 / 64)).
//                   bindings: 0 P, 21 part_in, 22 red
//   Every output element is written by one invocation summing in a fixed order.
// Override constants: D4 = D / 4 (1..32, so D <= 128 and D % 4 == 0), BR invocations per
// workgroup of the row kernels, DK (attn1_dkv).
//
// Row kernels: each invocation keeps its rows' state (q, acc; q, dO, dq; k, v, dk, dv) in
// private arrays of HALF = 16 mat2x4f (element e holds head elements 4e..4e+3 in column 0 and
// 64+4e..64+4e+3 in column 1, used only when D > 64), indexed by loops with override bounds, so
// they unroll into registers. K/V (or Q/dO) rows are read straight from storage; invocations
// whose rows share a sequence start read the same address in the same iteration. Masked keys
// get score -3e38 / probability 0, so there is no divergent branch inside the loops.
//
// Variants and why this one (1 x 512 tokens, 14/2 heads, D = 64, llvmpipe on 2 cores shared
// with other jobs, so +-30%; forward / whole backward; compile times with the Mesa shader cache
// disabled):
// - tiled (one row per invocation, K/V tiles of 32 rows in workgroup memory behind barriers):
//   340-530 ms / 1.0-1.6 s; compile 10-20 s / 60-80 s at D = 64 (llvmpipe turns barriers into
//   coroutines that save the large private row state).
// - row kernels with rows r0 + lid + {0..3} * BR: 50-75 ms / 130-190 ms; compile 1.3 s / 4 s.
// - row kernels with consecutive rows (this file): 40 ms / 110 ms, same compile time. Less
//   masked work: an invocation's loop ends at its own last row.
// - key bounds uniform over the workgroup (broadcast loads guaranteed): no measurable change.

const NEG_BIG: f32 = -3.0e38;
const LN2: f32 = 0.6931471805599453;
const LOG2E: f32 = 1.4426950408889634;
const DWG: u32 = 64u; // attn_decode / append / stats workgroup size
const HALF: u32 = 16u;
const MAXD4: u32 = 32u; // attn_decode's private q row, the rows1 kernels' private rows

override D4: u32 = 16u;
override BR: u32 = 64u;
override DK: bool = true;

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
@group(0) @binding(5) var<storage, read> o: array<vec4f>;
@group(0) @binding(6) var<storage, read> dout: array<vec4f>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> lse: array<f32>;
@group(0) @binding(10) var<storage, read_write> stats_out: array<vec2f>;
@group(0) @binding(11) var<storage, read> stats: array<vec2f>;
@group(0) @binding(12) var<storage, read_write> dq: array<vec4f>;
@group(0) @binding(13) var<storage, read_write> dk: array<vec4f>;
@group(0) @binding(14) var<storage, read_write> dv: array<vec4f>;
@group(0) @binding(15) var<storage, read> kc: array<vec4f>;
@group(0) @binding(16) var<storage, read> vc: array<vec4f>;
@group(0) @binding(17) var<storage, read> lens: array<u32>;
@group(0) @binding(18) var<storage, read_write> kc_out: array<vec4f>;
@group(0) @binding(19) var<storage, read_write> vc_out: array<vec4f>;
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
fn attn_fwd(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let kh = h / (p.hq / p.hkv);
  let i = (wid.x * BR + lid) * 4u + vec4u(0u, 1u, 2u, 3u);
  if (i.x >= p.n) { return; }
  let ic = min(i, vec4u(p.n - 1u));
  let lo = vec4u(starts[seq_of(ic.x)], starts[seq_of(ic.y)], starts[seq_of(ic.z)],
                 starts[seq_of(ic.w)]);
  let qw = p.hq * D4;
  let kw = p.hkv * D4;
  let dl = min(D4, HALF);
  let dh = D4 - dl;
  let qb = ic * qw + h * D4;
  var q0: array<mat2x4f, HALF>;
  var q1: array<mat2x4f, HALF>;
  var q2: array<mat2x4f, HALF>;
  var q3: array<mat2x4f, HALF>;
  var a0: array<mat2x4f, HALF>;
  var a1: array<mat2x4f, HALF>;
  var a2: array<mat2x4f, HALF>;
  var a3: array<mat2x4f, HALF>;
  for (var d = 0u; d < D4; d++) {
    q0[d % HALF][d / HALF] = q[qb.x + d] * p.scale2;
    q1[d % HALF][d / HALF] = q[qb.y + d] * p.scale2;
    q2[d % HALF][d / HALF] = q[qb.z + d] * p.scale2;
    q3[d % HALF][d / HALF] = q[qb.w + d] * p.scale2;
  }
  var m = vec4f(NEG_BIG);
  var l = vec4f(0.0);
  for (var j = lo.x; j <= ic.w; j++) {
    let kb = j * kw + kh * D4;
    var s0 = vec4f(0.0);
    var s1 = vec4f(0.0);
    var s2 = vec4f(0.0);
    var s3 = vec4f(0.0);
    for (var d = 0u; d < dl; d++) {
      let x = k[kb + d];
      s0 += q0[d][0] * x;
      s1 += q1[d][0] * x;
      s2 += q2[d][0] * x;
      s3 += q3[d][0] * x;
    }
    for (var d = 0u; d < dh; d++) {
      let y = k[kb + HALF + d];
      s0 += q0[d][1] * y;
      s1 += q1[d][1] * y;
      s2 += q2[d][1] * y;
      s3 += q3[d][1] * y;
    }
    let jv = vec4u(j);
    let valid = jv >= lo & jv <= i;
    let s = select(vec4f(NEG_BIG), vec4f(hsum(s0), hsum(s1), hsum(s2), hsum(s3)), valid);
    // Until a row's first valid key m stays NEG_BIG and masked keys add exp2(0) = 1 to l and
    // acc; the first valid key scales that by exp2(NEG_BIG - s) = 0. Every row has a valid key
    // (itself), and later masked keys add exp2(NEG_BIG - m) = 0.
    let mn = max(m, s);
    let al = exp2(m - mn);
    let pj = exp2(s - mn);
    m = mn;
    l = l * al + pj;
    for (var d = 0u; d < dl; d++) {
      let x = v[kb + d];
      a0[d][0] = a0[d][0] * al.x + pj.x * x;
      a1[d][0] = a1[d][0] * al.y + pj.y * x;
      a2[d][0] = a2[d][0] * al.z + pj.z * x;
      a3[d][0] = a3[d][0] * al.w + pj.w * x;
    }
    for (var d = 0u; d < dh; d++) {
      let y = v[kb + HALF + d];
      a0[d][1] = a0[d][1] * al.x + pj.x * y;
      a1[d][1] = a1[d][1] * al.y + pj.y * y;
      a2[d][1] = a2[d][1] * al.z + pj.z * y;
      a3[d][1] = a3[d][1] * al.w + pj.w * y;
    }
  }
  let inv = 1.0 / l;
  let lsev = (m + log2(l)) * LN2;
  let ob = i * qw + h * D4;
  for (var d = 0u; d < D4; d++) {
    out[ob.x + d] = a0[d % HALF][d / HALF] * inv.x;
    if (i.y < p.n) { out[ob.y + d] = a1[d % HALF][d / HALF] * inv.y; }
    if (i.z < p.n) { out[ob.z + d] = a2[d % HALF][d / HALF] * inv.z; }
    if (i.w < p.n) { out[ob.w + d] = a3[d % HALF][d / HALF] * inv.w; }
  }
  lse[h * p.n + i.x] = lsev.x;
  if (i.y < p.n) { lse[h * p.n + i.y] = lsev.y; }
  if (i.z < p.n) { lse[h * p.n + i.z] = lsev.z; }
  if (i.w < p.n) { lse[h * p.n + i.w] = lsev.w; }
}

@compute @workgroup_size(DWG)
fn attn_bwd_stats(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * DWG + lid; // = h * N + i
  if (id >= p.hq * p.n) { return; }
  let h = id / p.n;
  let i = id - h * p.n;
  let base = i * p.hq * D4 + h * D4;
  var s4 = vec4f(0.0);
  for (var d = 0u; d < D4; d++) { s4 += dout[base + d] * o[base + d]; }
  stats_out[id] = vec2f(lse_in[id] * LOG2E, hsum(s4));
}

@compute @workgroup_size(BR)
fn attn_bwd_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let h = wid.y;
  let kh = h / (p.hq / p.hkv);
  let i = (wid.x * BR + lid) * 4u + vec4u(0u, 1u, 2u, 3u);
  if (i.x >= p.n) { return; }
  let ic = min(i, vec4u(p.n - 1u));
  let lo = vec4u(starts[seq_of(ic.x)], starts[seq_of(ic.y)], starts[seq_of(ic.z)],
                 starts[seq_of(ic.w)]);
  let qw = p.hq * D4;
  let kw = p.hkv * D4;
  let dl = min(D4, HALF);
  let dh = D4 - dl;
  let qb = ic * qw + h * D4;
  // Rows r = 0..3: q (times scale2) in q_r, dO in o_r, the dq sum in a_r.
  var q0: array<mat2x4f, HALF>;
  var q1: array<mat2x4f, HALF>;
  var q2: array<mat2x4f, HALF>;
  var q3: array<mat2x4f, HALF>;
  var o0: array<mat2x4f, HALF>;
  var o1: array<mat2x4f, HALF>;
  var o2: array<mat2x4f, HALF>;
  var o3: array<mat2x4f, HALF>;
  var a0: array<mat2x4f, HALF>;
  var a1: array<mat2x4f, HALF>;
  var a2: array<mat2x4f, HALF>;
  var a3: array<mat2x4f, HALF>;
  for (var d = 0u; d < D4; d++) {
    q0[d % HALF][d / HALF] = q[qb.x + d] * p.scale2;
    q1[d % HALF][d / HALF] = q[qb.y + d] * p.scale2;
    q2[d % HALF][d / HALF] = q[qb.z + d] * p.scale2;
    q3[d % HALF][d / HALF] = q[qb.w + d] * p.scale2;
    o0[d % HALF][d / HALF] = dout[qb.x + d];
    o1[d % HALF][d / HALF] = dout[qb.y + d];
    o2[d % HALF][d / HALF] = dout[qb.z + d];
    o3[d % HALF][d / HALF] = dout[qb.w + d];
  }
  let st0 = stats[h * p.n + ic.x];
  let st1 = stats[h * p.n + ic.y];
  let st2 = stats[h * p.n + ic.z];
  let st3 = stats[h * p.n + ic.w];
  let lse2 = vec4f(st0.x, st1.x, st2.x, st3.x);
  let delta = vec4f(st0.y, st1.y, st2.y, st3.y);
  for (var j = lo.x; j <= ic.w; j++) {
    let kb = j * kw + kh * D4;
    var s0 = vec4f(0.0);
    var s1 = vec4f(0.0);
    var s2 = vec4f(0.0);
    var s3 = vec4f(0.0);
    var t0 = vec4f(0.0);
    var t1 = vec4f(0.0);
    var t2 = vec4f(0.0);
    var t3 = vec4f(0.0);
    for (var d = 0u; d < dl; d++) {
      let x = k[kb + d];
      let y = v[kb + d];
      s0 += q0[d][0] * x;
      s1 += q1[d][0] * x;
      s2 += q2[d][0] * x;
      s3 += q3[d][0] * x;
      t0 += o0[d][0] * y;
      t1 += o1[d][0] * y;
      t2 += o2[d][0] * y;
      t3 += o3[d][0] * y;
    }
    for (var d = 0u; d < dh; d++) {
      let x = k[kb + HALF + d];
      let y = v[kb + HALF + d];
      s0 += q0[d][1] * x;
      s1 += q1[d][1] * x;
      s2 += q2[d][1] * x;
      s3 += q3[d][1] * x;
      t0 += o0[d][1] * y;
      t1 += o1[d][1] * y;
      t2 += o2[d][1] * y;
      t3 += o3[d][1] * y;
    }
    let jv = vec4u(j);
    let valid = jv >= lo & jv <= i;
    let s = vec4f(hsum(s0), hsum(s1), hsum(s2), hsum(s3));
    let dp = vec4f(hsum(t0), hsum(t1), hsum(t2), hsum(t3));
    let ds = select(vec4f(0.0), exp2(s - lse2) * (dp - delta), valid);
    for (var d = 0u; d < dl; d++) {
      let x = k[kb + d];
      a0[d][0] += ds.x * x;
      a1[d][0] += ds.y * x;
      a2[d][0] += ds.z * x;
      a3[d][0] += ds.w * x;
    }
    for (var d = 0u; d < dh; d++) {
      let x = k[kb + HALF + d];
      a0[d][1] += ds.x * x;
      a1[d][1] += ds.y * x;
      a2[d][1] += ds.z * x;
      a3[d][1] += ds.w * x;
    }
  }
  let scale = p.scale2 / LOG2E;
  let ob = i * qw + h * D4;
  for (var d = 0u; d < D4; d++) {
    dq[ob.x + d] = a0[d % HALF][d / HALF] * scale;
    if (i.y < p.n) { dq[ob.y + d] = a1[d % HALF][d / HALF] * scale; }
    if (i.z < p.n) { dq[ob.z + d] = a2[d % HALF][d / HALF] * scale; }
    if (i.w < p.n) { dq[ob.w + d] = a3[d % HALF][d / HALF] * scale; }
  }
}

@compute @workgroup_size(BR)
fn attn_bwd_dkdv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let kh = wid.y;
  let g = p.hq / p.hkv;
  let j = (wid.x * BR + lid) * 2u + vec2u(0u, 1u);
  if (j.x >= p.n) { return; }
  let jc = min(j, vec2u(p.n - 1u));
  let hi = vec2u(starts[seq_of(jc.x) + 1u], starts[seq_of(jc.y) + 1u]);
  let qw = p.hq * D4;
  let kw = p.hkv * D4;
  let dl = min(D4, HALF);
  let dh = D4 - dl;
  let kb = jc * kw + kh * D4;
  var k0: array<mat2x4f, HALF>;
  var k1: array<mat2x4f, HALF>;
  var v0: array<mat2x4f, HALF>;
  var v1: array<mat2x4f, HALF>;
  var dk0: array<mat2x4f, HALF>;
  var dk1: array<mat2x4f, HALF>;
  var dv0: array<mat2x4f, HALF>;
  var dv1: array<mat2x4f, HALF>;
  for (var d = 0u; d < D4; d++) {
    k0[d % HALF][d / HALF] = k[kb.x + d] * p.scale2;
    k1[d % HALF][d / HALF] = k[kb.y + d] * p.scale2;
    v0[d % HALF][d / HALF] = v[kb.x + d];
    v1[d % HALF][d / HALF] = v[kb.y + d];
  }
  for (var h = kh * g; h < kh * g + g; h++) {
    for (var i = j.x; i < hi.y; i++) {
      let qb = i * qw + h * D4;
      let st = stats[h * p.n + i];
      var s0 = vec4f(0.0);
      var s1 = vec4f(0.0);
      var t0 = vec4f(0.0);
      var t1 = vec4f(0.0);
      for (var d = 0u; d < dl; d++) {
        let x = q[qb + d];
        let y = dout[qb + d];
        s0 += k0[d][0] * x;
        s1 += k1[d][0] * x;
        t0 += v0[d][0] * y;
        t1 += v1[d][0] * y;
      }
      for (var d = 0u; d < dh; d++) {
        let x = q[qb + HALF + d];
        let y = dout[qb + HALF + d];
        s0 += k0[d][1] * x;
        s1 += k1[d][1] * x;
        t0 += v0[d][1] * y;
        t1 += v1[d][1] * y;
      }
      let iv = vec2u(i);
      let valid = iv >= j & iv < hi;
      let pij = select(vec2f(0.0), exp2(vec2f(hsum(s0), hsum(s1)) - st.x), valid);
      let ds = pij * (vec2f(hsum(t0), hsum(t1)) - st.y);
      for (var d = 0u; d < dl; d++) {
        let x = q[qb + d];
        let y = dout[qb + d];
        dv0[d][0] += pij.x * y;
        dv1[d][0] += pij.y * y;
        dk0[d][0] += ds.x * x;
        dk1[d][0] += ds.y * x;
      }
      for (var d = 0u; d < dh; d++) {
        let x = q[qb + HALF + d];
        let y = dout[qb + HALF + d];
        dv0[d][1] += pij.x * y;
        dv1[d][1] += pij.y * y;
        dk0[d][1] += ds.x * x;
        dk1[d][1] += ds.y * x;
      }
    }
  }
  let scale = p.scale2 / LOG2E;
  let ob = j * kw + kh * D4;
  for (var d = 0u; d < D4; d++) {
    dk[ob.x + d] = dk0[d % HALF][d / HALF] * scale;
    dv[ob.x + d] = dv0[d % HALF][d / HALF];
    if (j.y < p.n) {
      dk[ob.y + d] = dk1[d % HALF][d / HALF] * scale;
      dv[ob.y + d] = dv1[d % HALF][d / HALF];
    }
  }
}

var<workgroup> dsc: array<f32, DWG>;
var<workgroup> dmerge: array<vec4f, DWG>;

// Decode query `row` (= b * t_new + t) of head h: the cache rows it attends to (0 .. k_end - 1)
// and the offset (vec4) of its KV head in row 0 of sequence b's cache.
struct DecodeRow {
  k_end: u32,
  cache0: u32,
}

fn decode_row(row: u32, h: u32) -> DecodeRow {
  let kh = h / (p.hq / p.hkv);
  let b = row / p.t_new;
  let t = row - b * p.t_new;
  let cache0 = b * p.max_len * (p.hkv * D4) + kh * D4;
  return DecodeRow(min(lens[b] + t + 1u, p.max_len), cache0);
}

@compute @workgroup_size(DWG)
fn attn_decode(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x; // b * t_new + t
  let h = wid.y;
  let dr = decode_row(row, h);
  let k_end = dr.k_end;
  let qw = p.hq * D4;
  let kw = p.hkv * D4;
  let cache0 = dr.cache0;
  // P V split: column c (vec4) over key subset r of R = 64 / D4 subsets.
  let nsub = DWG / D4;
  let c = lid % D4;
  let r = lid / D4;

  var qr: array<vec4f, MAXD4>;
  for (var d = 0u; d < D4; d++) { qr[d] = q[row * qw + h * D4 + d] * p.scale2; }
  var m = NEG_BIG;
  var l = 0.0;
  var acc = vec4f(0.0);
  for (var k0 = 0u; k0 < k_end; k0 += DWG) {
    let j = k0 + lid;
    var s = NEG_BIG;
    if (j < k_end) {
      var s4 = vec4f(0.0);
      for (var d = 0u; d < D4; d++) { s4 += qr[d] * kc[cache0 + j * kw + d]; }
      s = (s4.x + s4.y) + (s4.z + s4.w);
    }
    dsc[lid] = s;
    workgroupBarrier();
    let jn = min(DWG, k_end - k0);
    var mt = m;
    for (var jj = 0u; jj < jn; jj++) { mt = max(mt, dsc[jj]); }
    let a = exp2(m - mt);
    l *= a;
    acc *= a;
    m = mt;
    for (var jj = 0u; jj < jn; jj++) {
      let pj = exp2(dsc[jj] - m);
      l += pj;
      if (r < nsub && jj % nsub == r) { acc += pj * vc[cache0 + (k0 + jj) * kw + c]; }
    }
    workgroupBarrier();
  }
  if (r < nsub) { dmerge[lid] = acc; }
  workgroupBarrier();
  if (lid < D4) {
    var sum = vec4f(0.0);
    for (var rr = 0u; rr < nsub; rr++) { sum += dmerge[rr * D4 + lid]; }
    out[row * qw + h * D4 + lid] = sum / l;
  }
  if (lid == 0u) { lse[h * (p.nseq * p.t_new) + row] = (m + log2(l)) * LN2; }
}

// attn_decode for the rows4 form (llvmpipe): one invocation per (query row, head), heads
// fastest, an online softmax over the cache rows in order with q and the accumulator in
// registers. attn_decode's workgroup has all 64 invocations take every score of a chunk from
// workgroup memory and exponentiate it, which a GPU does in parallel and llvmpipe does lane by
// lane: generating 64 tokens for 16 rows of the tiny model (4 heads, D = 16, 40-104 cached
// rows), 1.75 ms per call there against 0.82 here (GPU time by the kernel profile). Grid
// dev.grid(ceil(B * t_new * Hq / 64)); bindings as attn_decode.
@compute @workgroup_size(DWG)
fn attn_decode_rows(@builtin(global_invocation_id) gid: vec3u,
                    @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * DWG;
  let nrows = p.nseq * p.t_new;
  if (id >= nrows * p.hq) { return; }
  let row = id / p.hq; // b * t_new + t
  let h = id % p.hq;
  let dr = decode_row(row, h);
  let qw = p.hq * D4;
  let kw = p.hkv * D4;
  let cache0 = dr.cache0;
  var qr: array<vec4f, MAXD4>;
  var acc: array<vec4f, MAXD4>;
  for (var d = 0u; d < D4; d++) { qr[d] = q[row * qw + h * D4 + d] * p.scale2; }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j = 0u; j < dr.k_end; j++) {
    let kb = cache0 + j * kw;
    var s4 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) { s4 += qr[d] * kc[kb + d]; }
    let s = (s4.x + s4.y) + (s4.z + s4.w);
    let mn = max(m, s);
    let a = exp2(m - mn);
    let pj = exp2(s - mn);
    l = l * a + pj;
    for (var d = 0u; d < D4; d++) { acc[d] = acc[d] * a + pj * vc[kb + d]; }
    m = mn;
  }
  for (var d = 0u; d < D4; d++) { out[row * qw + h * D4 + d] = acc[d] / l; }
  lse[h * nrows + row] = (m + log2(l)) * LN2;
}

// Shared by both append kernels: copy vec4 e of new row `src_row` to cache row `dst` of seq b.
fn append_one(b: u32, dst: u32, src_row: u32, e: u32) {
  if (dst >= p.max_len) { return; }
  let kw = p.hkv * D4;
  let to = (b * p.max_len + dst) * kw + e;
  kc_out[to] = k[src_row * kw + e];
  vc_out[to] = v[src_row * kw + e];
}

@compute @workgroup_size(DWG)
fn kv_append(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * DWG + lid;
  let kw = p.hkv * D4;
  if (id >= p.n * kw) { return; }
  let row = id / kw;
  let b = row / p.t_new;
  append_one(b, lens[b] + row - b * p.t_new, row, id - row * kw);
}

@compute @workgroup_size(DWG)
fn kv_append_packed(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * DWG + lid;
  let kw = p.hkv * D4;
  if (id >= p.n * kw) { return; }
  let row = id / kw;
  let b = seq_of(row);
  append_one(b, lens[b] + row - starts[b], row, id - row * kw);
}

// ------------------------------------------------------------ the rows1 form

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
fn attn1_dkv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
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
    if (DK) { vr[d] = v[kb + d]; }
    acc[d] = vec4f(0.0);
  }
  for (var i = j; i < hi; i++) {
    let qb = i * qw + h * D4;
    let st = stats[h * p.n + i];
    var s4 = vec4f(0.0);
    var t4 = vec4f(0.0);
    for (var d = 0u; d < D4; d++) {
      s4 += kr[d] * q[qb + d];
      if (DK) { t4 += vr[d] * dout[qb + d]; }
    }
    let pij = exp2(hsum(s4) - st.x);
    if (DK) {
      // dk += dS_ij q_i, dS = P (dO_i . v_j - delta_i)
      let ds = pij * (hsum(t4) - st.y);
      for (var d = 0u; d < D4; d++) { acc[d] += ds * q[qb + d]; }
    } else {
      // dv += P_ij dO_i
      for (var d = 0u; d < D4; d++) { acc[d] += pij * dout[qb + d]; }
    }
  }
  let scale = select(1.0, p.scale2 / LOG2E, DK);
  let ob = j * qw + h * D4;
  for (var d = 0u; d < D4; d++) { part[ob + d] = acc[d] * scale; }
}

@compute @workgroup_size(DWG)
fn attn1_sum_heads(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * nwg.x) * DWG + lid; // = (j * Hkv + kh) * D4 + d
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
