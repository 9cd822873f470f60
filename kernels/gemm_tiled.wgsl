// gemm_tiled.wgsl: C[M, N] = op(A) op(B) (+ bias[N]) (+ C when accumulating), fp32, row-major,
// with workgroup-memory tiles: the form for GPUs. (gemm.wgsl holds the register-blocked form
// without workgroup memory, which is the fast one on llvmpipe, where barriers are dear.)
//
// One workgroup of WX x WY invocations computes a BM x BN = 4 RB WY x 4 RB WX tile of C; each
// invocation a 4 RB x 4 RB block (rows 4 RB ty.., columns 4 RB tx..):
//   gemm_tiled    RB = 1: 4 x 4 blocks
//   gemm_tiled8   RB = 2: 8 x 8 blocks, half the workgroup-memory reads per multiply-add
// (the host sets the override RB to match the entry point). K is walked in steps of BK: the
// workgroup copies A's BM x BK and B's BK x BN pieces into workgroup memory (k-major, so an
// invocation reads its rows of A and columns of B as vec4s), then every invocation does its
// multiply-adds for those k. Each output sums its K terms in increasing k, so results are
// deterministic.
//
// Operands are read through strides, any layout and any size (out-of-range elements load as
// zero): A(m, k) = a[m * sam + k * sak], B(k, n) = b[k * sbk + n * sbn]. The overrides A_K and
// B_K say whether A and B are contiguous along k (sak == 1, sbk == 1), which picks the
// invocation-to-element mapping of the copies so that neighbouring invocations read neighbouring
// addresses.
// gemm_skinny (at the end) covers products of a few rows for the same forms.
// Bindings as gemm.wgsl: 0 P, 1 A, 2 B, 3 C (read_write), 4 bias (a dummy without FLAG_BIAS).

struct P {
  m: u32,
  n: u32,
  k: u32,
  flags: u32, // bit 0: accumulate into C, bit 1: add bias
  sam: u32,
  sak: u32,
  sbk: u32,
  sbn: u32,
}

override WX: u32 = 16u; // invocations along N
override WY: u32 = 16u; // invocations along M
override BK: u32 = 16u; // k per step (any size; the copies loop over the tile)
override RB: u32 = 1u; // vec4s per invocation along each of M and N: 1 (gemm_tiled), 2 (gemm_tiled8)
override A_K: bool = true; // A contiguous along k
override B_K: bool = true; // B contiguous along k

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// Row kk of a tile holds BM (or BN) floats as vec4s, plus one vec4 of padding against bank
// conflicts on the transposing stores.
override SA: u32 = RB * WY + 1u; // vec4s per row of ta
override SB: u32 = RB * WX + 1u; // vec4s per row of tb
var<workgroup> ta: array<vec4f, BK * SA>;
var<workgroup> tb: array<vec4f, BK * SB>;

// Copies A's rows m0.. and B's columns n0.. for k0..k0 + BK into ta and tb (zeros outside).
fn load_tiles(li: u32, m0: u32, n0: u32, k0: u32) {
  let bm = 4u * RB * WY;
  let bn = 4u * RB * WX;
  let threads = WX * WY;
  for (var idx = li; idx < bm * BK; idx += threads) {
    var mm: u32;
    var kk: u32;
    if (A_K) { kk = idx % BK; mm = idx / BK; } else { mm = idx % bm; kk = idx / bm; }
    let row = m0 + mm;
    let kg = k0 + kk;
    var v = 0.0;
    if (row < p.m && kg < p.k) { v = a[row * p.sam + kg * p.sak]; }
    ta[kk * SA + mm / 4u][mm % 4u] = v;
  }
  for (var idx = li; idx < bn * BK; idx += threads) {
    var nn: u32;
    var kk: u32;
    if (B_K) { kk = idx % BK; nn = idx / BK; } else { nn = idx % bn; kk = idx / bn; }
    let col = n0 + nn;
    let kg = k0 + kk;
    var v = 0.0;
    if (col < p.n && kg < p.k) { v = b[kg * p.sbk + col * p.sbn]; }
    tb[kk * SB + nn / 4u][nn % 4u] = v;
  }
}

// C[r, col] = v (+ bias[col]) (+ C[r, col]), for r < M, col < N.
fn put(r: u32, col: u32, v: f32) {
  if (r >= p.m || col >= p.n) { return; }
  var x = v;
  if ((p.flags & 2u) != 0u) { x += bias[col]; }
  let o = r * p.n + col;
  if ((p.flags & 1u) != 0u) { x += c[o]; }
  c[o] = x;
}

@compute @workgroup_size(WX, WY)
fn gemm_tiled(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3u,
) {
  let m0 = wid.y * 4u * WY;
  let n0 = wid.x * 4u * WX;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    load_tiles(li, m0, n0, k0);
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let av = ta[kk * SA + lid.y];
      let bv = tb[kk * SB + lid.x];
      acc[0] += av.x * bv;
      acc[1] += av.y * bv;
      acc[2] += av.z * bv;
      acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) { put(m0 + 4u * lid.y + i, n0 + 4u * lid.x + j, acc[i][j]); }
  }
}

fn fma4(acc: ptr<function, array<vec4f, 16>>, i: u32, s: f32, lo: vec4f, hi: vec4f) {
  (*acc)[2u * i] += s * lo;
  (*acc)[2u * i + 1u] += s * hi;
}

@compute @workgroup_size(WX, WY)
fn gemm_tiled8(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3u,
) {
  let m0 = wid.y * 8u * WY;
  let n0 = wid.x * 8u * WX;
  var acc: array<vec4f, 16>; // row i: acc[2 i] columns 0..3, acc[2 i + 1] columns 4..7
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    load_tiles(li, m0, n0, k0);
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let ra = kk * SA + 2u * lid.y;
      let rb = kk * SB + 2u * lid.x;
      let a0 = ta[ra];
      let a1 = ta[ra + 1u];
      let b0 = tb[rb];
      let b1 = tb[rb + 1u];
      fma4(&acc, 0u, a0.x, b0, b1);
      fma4(&acc, 1u, a0.y, b0, b1);
      fma4(&acc, 2u, a0.z, b0, b1);
      fma4(&acc, 3u, a0.w, b0, b1);
      fma4(&acc, 4u, a1.x, b0, b1);
      fma4(&acc, 5u, a1.y, b0, b1);
      fma4(&acc, 6u, a1.z, b0, b1);
      fma4(&acc, 7u, a1.w, b0, b1);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 8u; i++) {
    for (var j = 0u; j < 8u; j++) {
      put(m0 + 8u * lid.y + i, n0 + 8u * lid.x + j, acc[2u * i + j / 4u][j % 4u]);
    }
  }
}

// gemm_skinny: the same product for a few rows (decoding: M = the batch of sequences), where a
// tile of 4 WY rows would leave most of it idle and a grid of N / BN workgroups most of a GPU.
// A workgroup of SW invocations (a power of two) computes rows SM wid.y.. and columns 4 wid.x..;
// invocation t takes k = t, t + SW, .. (neighbouring invocations read neighbouring addresses
// when A and B are contiguous along k), then the SW partial sums are added in a fixed tree in
// workgroup memory. Rows past M repeat row M - 1 and are not stored.
const SM: u32 = 8u;
override SW: u32 = 64u;
var<workgroup> red: array<array<vec4f, SM>, SW>;

@compute @workgroup_size(SW)
fn gemm_skinny(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3u) {
  let m0 = wid.y * SM;
  let n0 = wid.x * 4u;
  var acc: array<vec4f, SM>;
  for (var k = t; k < p.k; k += SW) {
    var bv = vec4f(0.0);
    for (var j = 0u; j < 4u; j++) {
      let col = n0 + j;
      if (col < p.n) { bv[j] = b[k * p.sbk + col * p.sbn]; }
    }
    for (var i = 0u; i < SM; i++) {
      acc[i] += a[min(m0 + i, p.m - 1u) * p.sam + k * p.sak] * bv;
    }
  }
  red[t] = acc;
  workgroupBarrier();
  for (var s = SW / 2u; s > 0u; s /= 2u) {
    if (t < s) {
      for (var i = 0u; i < SM; i++) { red[t][i] += red[t + s][i]; }
    }
    workgroupBarrier();
  }
  if (t < 4u * SM) { put(m0 + t / 4u, n0 + t % 4u, red[0][t / 4u][t % 4u]); }
}
