// gemm.wgsl: C[M, N] = op(A) op(B) (+ bias[N]) (+ C when accumulating), fp32, row-major.
//
// op(A) is A [M, K] or, transposed, A stored [K, M]; op(B) is B [K, N] or, transposed, B stored
// [N, K]. The model uses three of the four layouts:
//   y = x W^T + b        "nt"  A [M, K], B [N, K]: both operands contiguous along K
//   dx = dy W            "nn"  A [M, K], B [K, N]
//   dW += dy^T x         "tn"  A [K, M], B [K, N]: both contiguous along M / N
// Entry points (one invocation = one 4 x 4 block of C; workgroup 8 x 8 invocations = 32 x 32):
//   gemm_nt4   vec4 loads along K (needs K % 4 == 0): 8 vec4 loads per 64 FMAs
//   gemm_nn4   vec4 loads along K of A and along N of B (needs K % 4 == 0, N % 4 == 0)
//   gemm_tn4   vec4 loads along M of A and along N of B (needs M % 4 == 0, N % 4 == 0)
//   gemm_nt8, gemm_nn8, gemm_tn8: the same with 4 x 8 blocks (fewer loads per FMA; nn8 and
//              tn8 need N % 8 == 0), chosen when N >= 64. On llvmpipe they are about 25%
//              faster than the 4 x 4 forms at the LM-head shapes (measured with /tmp scripts
//              while another job shared the cores; see the bench for figures).
//   gemm_nt16, gemm_nn16, gemm_tn16: 16 x 16 blocks, workgroup 8 x 4 (= 64 x 128 of C), 32
//              vec4 loads per 1024 FMAs, for products with rows and columns enough (engine/
//              gemm.ts blockedEntry); nt16 is 1.3-1.8x gemm_nt8 on llvmpipe at the model's
//              shapes. Long-K "nn" and "tn" products run faster as "nt" after transposes
//              (gemm.ts relayout decides).
//   gemm_nt16_fold, gemm_nt16_dlogits: gemm_nt16 with the LM head's epilogues (engine/
//              vocab_head.ts): each row's 16 logits become one partial softmax state instead of
//              16 stores (forward), or are stored as dlogits (backward).
//   fold_part16, dlogits16: the two epilogues on stored logits (the same functions, the same
//              bits), where the product ran in another kernel.
//   gemm_nt_tex, gemm_nn_tex, gemm_tn_tex, gemm_nt_tex_fold, gemm_nt_tex_dlogits: the 16 x 16
//              kernels' arithmetic in 16 x 32 blocks with A and B read from textures through a
//              sampler, where llvmpipe's loads cost half (the "sampled operands" section below;
//              engine/gemm.ts `sampled` decides): 2-2.4x the storage kernels on llvmpipe.
//   gemm_any   scalar loads through strides, any layout and size (the fallback)
//   sum_rows   out[n] (+)= sum_m x[m, n], one invocation per column, rows in order
//   transpose  out [N, M] = x [M, N]^T (at the end of the file)
// Bindings: 0 P, 1 A, 2 B, 3 C (read_write), 4 bias (read only with BIAS; a dummy otherwise);
// the texture entries 10 and 11 (A's and B's textures) and 12 (the sampler) instead of 1 and 2.
// Rows / columns past M / N are clamped on load and masked on store, so any M, N works. Every
// output element sums its K terms in increasing k: results are deterministic.
// Why no workgroup memory: on llvmpipe (a CPU) barriers and shared tiles cost more than the
// cache reuse they buy; register blocking with vec4 loads is the fast form there. (Mesa 22.3
// loads workgroup memory lane by lane, as it loads storage: the 16 x 16 kernel with its A and B
// tiles staged in workgroup memory took 264-331 ms at [512, 896, 4864] against 152 without.) The
// workgroup-memory tiles for GPUs are in gemm_tiled.wgsl.
// Where the time goes on llvmpipe (bench/jit_profile.ts, gemm_nt16 at [512, 896, 4864]): about
// three quarters of the CPU samples fall in Mesa's per-lane load loops (for each load and each
// component, a pass over the 8 SIMD lanes with a mask test and a bounds check per lane), the
// rest in the arithmetic, which compiles to separate vmulps and vaddps (no fused multiply-add,
// with fma() too) plus a blend with the loop mask per accumulator update. The loads per
// multiply-add therefore set the speed. Blocks past 16 x 16 measured slower (32 x 16: 164 ms
// against 148-152), likely from more spills and a k loop whose code outgrows the CPU's 32 KB
// instruction cache (the 16 x 16 loop's hot code already spans about 32 KB).

struct P {
  m: u32,
  n: u32,
  k: u32,
  flags: u32, // sum_rows: bit 0 accumulates into out (the products take BIAS and ACC below)
  // strides of gemm_any: A(m, k) = a[m * sam + k * sak], B(k, n) = b[k * sbk + n * sbn]
  sam: u32,
  sak: u32,
  sbk: u32,
  sbn: u32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a4: array<vec4f>;
@group(0) @binding(2) var<storage, read> b4: array<vec4f>;
@group(0) @binding(1) var<storage, read> a1: array<f32>;
@group(0) @binding(2) var<storage, read> b1: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// The products' options, fixed per pipeline (engine/gemm.ts passes them as constants): llvmpipe
// runs both sides of a branch under a lane mask, so testing a uniform flag at every store paid
// for the bias and C loads even when off ([512, 64, 8192] gemm_nt16 31.0 -> 25.0 ms, [512, 896,
// 4864] 150 -> 135, alternating in one process).
override BIAS: bool = false; // add bias[col]
override ACC: bool = false; // add C's old value (gradient accumulation)

// C[r, col] = v (+ b) (+ C[r, col]), per BIAS and ACC; r and col inside C, b the column's bias.
fn put_b(r: u32, col: u32, v0: f32, b: f32) {
  var v = v0;
  if (BIAS) { v += b; }
  let idx = r * p.n + col;
  if (ACC) { v += c[idx]; }
  c[idx] = v;
}

// put_b with bias[col] (read only with BIAS).
fn put(r: u32, col: u32, v0: f32) {
  var b = 0.0;
  if (BIAS) { b = bias[col]; }
  put_b(r, col, v0, b);
}

fn store(row0: u32, col0: u32, acc: array<vec4f, 4>) {
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + i;
    if (r >= p.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + j;
      if (col >= p.n) { break; }
      put(r, col, acc[i][j]);
    }
  }
}

@compute @workgroup_size(8, 8)
fn gemm_nt4(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let k4 = p.k / 4u;
  var ra: array<u32, 4>;
  var rb: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    ra[i] = min(row0 + i, p.m - 1u) * k4;
    rb[i] = min(col0 + i, p.n - 1u) * k4;
  }
  var acc: array<vec4f, 4>;
  for (var kk = 0u; kk < k4; kk++) {
    let b0 = b4[rb[0] + kk];
    let b1v = b4[rb[1] + kk];
    let b2 = b4[rb[2] + kk];
    let b3 = b4[rb[3] + kk];
    for (var i = 0u; i < 4u; i++) {
      let av = a4[ra[i] + kk];
      acc[i] += vec4f(dot(av, b0), dot(av, b1v), dot(av, b2), dot(av, b3));
    }
  }
  store(row0, col0, acc);
}

// 4 x 8 blocks: 12 vec4 loads per 128 FMAs (used when N >= 64).
@compute @workgroup_size(8, 8)
fn gemm_nt8(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 8u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let k4 = p.k / 4u;
  var ra: array<u32, 4>;
  var rb: array<u32, 8>;
  for (var i = 0u; i < 4u; i++) { ra[i] = min(row0 + i, p.m - 1u) * k4; }
  for (var j = 0u; j < 8u; j++) { rb[j] = min(col0 + j, p.n - 1u) * k4; }
  var lo: array<vec4f, 4>;
  var hi: array<vec4f, 4>;
  for (var kk = 0u; kk < k4; kk++) {
    let b0 = b4[rb[0] + kk];
    let b1v = b4[rb[1] + kk];
    let b2 = b4[rb[2] + kk];
    let b3 = b4[rb[3] + kk];
    let b4v = b4[rb[4] + kk];
    let b5 = b4[rb[5] + kk];
    let b6 = b4[rb[6] + kk];
    let b7 = b4[rb[7] + kk];
    for (var i = 0u; i < 4u; i++) {
      let av = a4[ra[i] + kk];
      lo[i] += vec4f(dot(av, b0), dot(av, b1v), dot(av, b2), dot(av, b3));
      hi[i] += vec4f(dot(av, b4v), dot(av, b5), dot(av, b6), dot(av, b7));
    }
  }
  store(row0, col0, lo);
  store(row0, col0 + 4u, hi);
}

// One row of a 16 x 16 block: acc[j] += (dot(av, bv[4j]), ..., dot(av, bv[4j + 3])).
fn dots16(acc: array<vec4f, 4>, av: vec4f, bv: ptr<function, array<vec4f, 16>>) -> array<vec4f, 4> {
  var r = acc;
  for (var j = 0u; j < 4u; j++) {
    let b = 4u * j;
    r[j] += vec4f(dot(av, (*bv)[b]), dot(av, (*bv)[b + 1u]), dot(av, (*bv)[b + 2u]), dot(av, (*bv)[b + 3u]));
  }
  return r;
}

// The bias of the 16 columns from col0, read once per block (zeros without BIAS; columns past
// N read the last one and are never stored).
fn bias16(col0: u32) -> array<vec4f, 4> {
  var bv: array<vec4f, 4>;
  if (BIAS) {
    for (var j = 0u; j < 4u; j++) {
      let col = min(vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(p.n - 1u));
      bv[j] = vec4f(bias[col.x], bias[col.y], bias[col.z], bias[col.w]);
    }
  }
  return bv;
}

// Stores 16 columns of row `row` from col0 (acc[j] holds columns col0 + 4j .. col0 + 4j + 3, bv
// their bias).
fn store_row(row: u32, col0: u32, acc: array<vec4f, 4>, bv: array<vec4f, 4>) {
  if (row >= p.m) { return; }
  for (var q = 0u; q < 16u; q++) {
    let col = col0 + q;
    if (col >= p.n) { break; }
    put_b(row, col, acc[q / 4u][q % 4u], bv[q / 4u][q % 4u]);
  }
}

// Stores a 16 x 16 block (acc[i] is row row0 + i), row by row with constant indices.
fn store_block(row0: u32, col0: u32, acc: array<array<vec4f, 4>, 16>) {
  let bv = bias16(col0);
  store_row(row0 + 0u, col0, acc[0], bv);
  store_row(row0 + 1u, col0, acc[1], bv);
  store_row(row0 + 2u, col0, acc[2], bv);
  store_row(row0 + 3u, col0, acc[3], bv);
  store_row(row0 + 4u, col0, acc[4], bv);
  store_row(row0 + 5u, col0, acc[5], bv);
  store_row(row0 + 6u, col0, acc[6], bv);
  store_row(row0 + 7u, col0, acc[7], bv);
  store_row(row0 + 8u, col0, acc[8], bv);
  store_row(row0 + 9u, col0, acc[9], bv);
  store_row(row0 + 10u, col0, acc[10], bv);
  store_row(row0 + 11u, col0, acc[11], bv);
  store_row(row0 + 12u, col0, acc[12], bv);
  store_row(row0 + 13u, col0, acc[13], bv);
  store_row(row0 + 14u, col0, acc[14], bv);
  store_row(row0 + 15u, col0, acc[15], bv);
}

// 16 x 16 blocks: 32 vec4 loads per 1024 FMAs. The 64 vec4 accumulators do not fit the CPU's
// registers and llvmpipe keeps some on the stack, which is still far cheaper than its storage
// loads (each a loop over the SIMD lanes). The rows are written out one by one (acc[0] ..
// acc[15], constant indices) rather than as a loop because a loop of this size is not unrolled,
// and an array indexed by a loop counter would live in memory (a looped form ran at half speed).
// nt16_block computes the block at (row0, col0), both inside C; gemm_nt16 stores it and
// gemm_nt16_fold (below) folds it into softmax state.
fn nt16_block(row0: u32, col0: u32) -> array<array<vec4f, 4>, 16> {
  let k4 = p.k / 4u;
  var ra: array<u32, 16>;
  var rb: array<u32, 16>;
  for (var i = 0u; i < 16u; i++) {
    ra[i] = min(row0 + i, p.m - 1u) * k4;
    rb[i] = min(col0 + i, p.n - 1u) * k4;
  }
  var acc: array<array<vec4f, 4>, 16>;
  var bv: array<vec4f, 16>;
  for (var kk = 0u; kk < k4; kk++) {
    for (var j = 0u; j < 16u; j++) { bv[j] = b4[rb[j] + kk]; }
    acc[0] = dots16(acc[0], a4[ra[0] + kk], &bv);
    acc[1] = dots16(acc[1], a4[ra[1] + kk], &bv);
    acc[2] = dots16(acc[2], a4[ra[2] + kk], &bv);
    acc[3] = dots16(acc[3], a4[ra[3] + kk], &bv);
    acc[4] = dots16(acc[4], a4[ra[4] + kk], &bv);
    acc[5] = dots16(acc[5], a4[ra[5] + kk], &bv);
    acc[6] = dots16(acc[6], a4[ra[6] + kk], &bv);
    acc[7] = dots16(acc[7], a4[ra[7] + kk], &bv);
    acc[8] = dots16(acc[8], a4[ra[8] + kk], &bv);
    acc[9] = dots16(acc[9], a4[ra[9] + kk], &bv);
    acc[10] = dots16(acc[10], a4[ra[10] + kk], &bv);
    acc[11] = dots16(acc[11], a4[ra[11] + kk], &bv);
    acc[12] = dots16(acc[12], a4[ra[12] + kk], &bv);
    acc[13] = dots16(acc[13], a4[ra[13] + kk], &bv);
    acc[14] = dots16(acc[14], a4[ra[14] + kk], &bv);
    acc[15] = dots16(acc[15], a4[ra[15] + kk], &bv);
  }
  return acc;
}

@compute @workgroup_size(8, 4)
fn gemm_nt16(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 16u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  store_block(row0, col0, nt16_block(row0, col0));
}

// The softmax epilogue of the fused LM head (engine/vocab_head.ts): C is a chunk of logits,
// hidden [M, K] x W[v0 : v0 + N]^T, and instead of storing a row's 16 logits of the block
// gemm_nt16_fold folds them into one partial state parts[row * q.nb + col0 / 16] = (max, sum
// exp(z - max), sum exp(z - max) (z - max), the target's logit if it lies in these columns, else
// 0); columns past N are left out. fold_part16 makes the same partials from stored logits
// (where the product ran elsewhere) through the same function, partial16, so both paths give
// the same bits; kernels/vocab_head.wgsl merges them.
// Bindings: 0 P, 1 A, 2 B, 5 Q, 6 targets [M] (u32), 7 parts (read_write); fold_part16 binds
// the stored logits [M, N] as A (binding 1) and no B.
struct Q {
  v0: u32, // vocabulary id of the chunk's first column
  nb: u32, // partials per row: ceil(N / 16)
  pad0: u32,
  pad1: u32,
}

@group(0) @binding(5) var<uniform> q: Q;
@group(0) @binding(6) var<storage, read> targets: array<u32>;
@group(0) @binding(7) var<storage, read_write> parts: array<vec4f>;

// The partial state of logits acc (columns col0 .. col0 + 15 of a row whose target is tg).
fn partial16(col0: u32, tg: u32, acc: array<vec4f, 4>) -> vec4f {
  var z: array<vec4f, 4>;
  var t = 0.0;
  for (var j = 0u; j < 4u; j++) {
    let col = vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u);
    let inside = col < vec4u(p.n);
    z[j] = select(vec4f(-3.0e38), acc[j], inside);
    let hit = select(vec4f(0.0), acc[j], inside & (col + vec4u(q.v0) == vec4u(tg)));
    t += (hit.x + hit.y) + (hit.z + hit.w);
  }
  let m4 = max(max(z[0], z[1]), max(z[2], z[3]));
  let mx = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var s4 = vec4f(0.0);
  var e4 = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    // Columns past the end weigh exactly 0 (and add 0 to e).
    let inside = vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.n);
    let zm = select(vec4f(0.0), z[j] - vec4f(mx), inside);
    let w = select(vec4f(0.0), exp(zm), inside);
    s4 += w;
    e4 += w * zm;
  }
  return vec4f(mx, (s4.x + s4.y) + (s4.z + s4.w), (e4.x + e4.y) + (e4.z + e4.w), t);
}

fn fold_row(row: u32, col0: u32, acc: array<vec4f, 4>) {
  if (row >= p.m) { return; }
  parts[row * q.nb + col0 / 16u] = partial16(col0, targets[row], acc);
}

// One invocation per row and 16 stored logits (a 1-D grid, 2-D past 65535 workgroups).
@compute @workgroup_size(64)
fn fold_part16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.m * q.nb) { return; }
  let row = i / q.nb;
  let col0 = (i % q.nb) * 16u;
  var acc: array<vec4f, 4>;
  for (var j = 0u; j < 4u; j++) {
    let col = min(vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(p.n - 1u)) + vec4u(row * p.n);
    acc[j] = vec4f(a1[col.x], a1[col.y], a1[col.z], a1[col.w]);
  }
  parts[i] = partial16(col0, targets[row], acc);
}

@compute @workgroup_size(8, 4)
fn gemm_nt16_fold(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 16u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let acc = nt16_block(row0, col0);
  fold_row(row0 + 0u, col0, acc[0]);
  fold_row(row0 + 1u, col0, acc[1]);
  fold_row(row0 + 2u, col0, acc[2]);
  fold_row(row0 + 3u, col0, acc[3]);
  fold_row(row0 + 4u, col0, acc[4]);
  fold_row(row0 + 5u, col0, acc[5]);
  fold_row(row0 + 6u, col0, acc[6]);
  fold_row(row0 + 7u, col0, acc[7]);
  fold_row(row0 + 8u, col0, acc[8]);
  fold_row(row0 + 9u, col0, acc[9]);
  fold_row(row0 + 10u, col0, acc[10]);
  fold_row(row0 + 11u, col0, acc[11]);
  fold_row(row0 + 12u, col0, acc[12]);
  fold_row(row0 + 13u, col0, acc[13]);
  fold_row(row0 + 14u, col0, acc[14]);
  fold_row(row0 + 15u, col0, acc[15]);
}

// The backward's epilogue: the chunk of logits is recomputed and stored as dlogits, C[row, col]
// = dlogp[row] (1[v0 + col = target] - exp(z - lse[row])), 0 for rows without a target.
// dlogits16 does the same in place on stored logits (where the product ran elsewhere) through
// the same function, so both give the same bits.
// Bindings: 0 P, 1 A, 2 B, 3 C, 5 Q (nb: for dlogits16), 6 targets, 8 lse [M], 9 dlogp [M].
const NO_TARGET: u32 = 0xffffffffu;

@group(0) @binding(8) var<storage, read> lse: array<f32>;
@group(0) @binding(9) var<storage, read> dlogp: array<f32>;

// dlogits of a row's logits acc (columns col0 .. col0 + 15).
fn dlogits_of(row: u32, col0: u32, acc: array<vec4f, 4>) -> array<vec4f, 4> {
  let tg = targets[row];
  var g = array<vec4f, 4>();
  if (tg != NO_TARGET) {
    let d = dlogp[row];
    let l = lse[row];
    for (var j = 0u; j < 4u; j++) {
      let col = vec4u(col0 + 4u * j + q.v0) + vec4u(0u, 1u, 2u, 3u);
      let onehot = select(vec4f(0.0), vec4f(1.0), col == vec4u(tg));
      g[j] = d * (onehot - exp(acc[j] - vec4f(l)));
    }
  }
  return g;
}

fn dlogits_row(row: u32, col0: u32, acc: array<vec4f, 4>) {
  if (row >= p.m) { return; }
  let g = dlogits_of(row, col0, acc);
  for (var j = 0u; j < 16u; j++) {
    let col = col0 + j;
    if (col >= p.n) { break; }
    c[row * p.n + col] = g[j / 4u][j % 4u];
  }
}

// In place on stored logits C [M, N]: one invocation per row and 16 columns.
@compute @workgroup_size(64)
fn dlogits16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.m * q.nb) { return; }
  let row = i / q.nb;
  let col0 = (i % q.nb) * 16u;
  var acc: array<vec4f, 4>;
  for (var j = 0u; j < 4u; j++) {
    let col = min(vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(p.n - 1u)) + vec4u(row * p.n);
    acc[j] = vec4f(c[col.x], c[col.y], c[col.z], c[col.w]);
  }
  dlogits_row(row, col0, acc);
}

@compute @workgroup_size(8, 4)
fn gemm_nt16_dlogits(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 16u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let acc = nt16_block(row0, col0);
  dlogits_row(row0 + 0u, col0, acc[0]);
  dlogits_row(row0 + 1u, col0, acc[1]);
  dlogits_row(row0 + 2u, col0, acc[2]);
  dlogits_row(row0 + 3u, col0, acc[3]);
  dlogits_row(row0 + 4u, col0, acc[4]);
  dlogits_row(row0 + 5u, col0, acc[5]);
  dlogits_row(row0 + 6u, col0, acc[6]);
  dlogits_row(row0 + 7u, col0, acc[7]);
  dlogits_row(row0 + 8u, col0, acc[8]);
  dlogits_row(row0 + 9u, col0, acc[9]);
  dlogits_row(row0 + 10u, col0, acc[10]);
  dlogits_row(row0 + 11u, col0, acc[11]);
  dlogits_row(row0 + 12u, col0, acc[12]);
  dlogits_row(row0 + 13u, col0, acc[13]);
  dlogits_row(row0 + 14u, col0, acc[14]);
  dlogits_row(row0 + 15u, col0, acc[15]);
}

// One row of a 16 x 16 block from four k steps of "nn": bv holds rows k..k+3 of B's 16
// columns (bv[4r + j] = B[k + r][col0 + 4j .. col0 + 4j + 3]) and av = A[row][k..k+3].
fn axpy16(acc: array<vec4f, 4>, av: vec4f, bv: ptr<function, array<vec4f, 16>>) -> array<vec4f, 4> {
  var r = acc;
  for (var j = 0u; j < 4u; j++) {
    r[j] += av.x * (*bv)[j] + av.y * (*bv)[4u + j] + av.z * (*bv)[8u + j] + av.w * (*bv)[12u + j];
  }
  return r;
}

// 16 x 16 blocks of "nn" (A [M, K], B [K, N]; needs K % 4 == 0 and N % 4 == 0), the same loads
// per FMA as gemm_nt16. Columns past N are clamped to the last vec4 on load, masked on store.
@compute @workgroup_size(8, 4)
fn gemm_nn16(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 16u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let k4 = p.k / 4u;
  let n4 = p.n / 4u;
  var ra: array<u32, 16>;
  for (var i = 0u; i < 16u; i++) { ra[i] = min(row0 + i, p.m - 1u) * k4; }
  var cb: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) { cb[j] = min(col0 / 4u + j, n4 - 1u); }
  var acc: array<array<vec4f, 4>, 16>;
  var bv: array<vec4f, 16>;
  for (var kk = 0u; kk < k4; kk++) {
    for (var r = 0u; r < 4u; r++) {
      let base = (4u * kk + r) * n4;
      for (var j = 0u; j < 4u; j++) { bv[4u * r + j] = b4[base + cb[j]]; }
    }
    acc[0] = axpy16(acc[0], a4[ra[0] + kk], &bv);
    acc[1] = axpy16(acc[1], a4[ra[1] + kk], &bv);
    acc[2] = axpy16(acc[2], a4[ra[2] + kk], &bv);
    acc[3] = axpy16(acc[3], a4[ra[3] + kk], &bv);
    acc[4] = axpy16(acc[4], a4[ra[4] + kk], &bv);
    acc[5] = axpy16(acc[5], a4[ra[5] + kk], &bv);
    acc[6] = axpy16(acc[6], a4[ra[6] + kk], &bv);
    acc[7] = axpy16(acc[7], a4[ra[7] + kk], &bv);
    acc[8] = axpy16(acc[8], a4[ra[8] + kk], &bv);
    acc[9] = axpy16(acc[9], a4[ra[9] + kk], &bv);
    acc[10] = axpy16(acc[10], a4[ra[10] + kk], &bv);
    acc[11] = axpy16(acc[11], a4[ra[11] + kk], &bv);
    acc[12] = axpy16(acc[12], a4[ra[12] + kk], &bv);
    acc[13] = axpy16(acc[13], a4[ra[13] + kk], &bv);
    acc[14] = axpy16(acc[14], a4[ra[14] + kk], &bv);
    acc[15] = axpy16(acc[15], a4[ra[15] + kk], &bv);
  }
  store_block(row0, col0, acc);
}

// 16 x 16 blocks of "tn" (A stored [K, M], B [K, N]; needs M % 4 == 0 and N % 4 == 0): four k
// steps per pass, as "nn" takes them (each accumulator loaded and stored once per 16
// multiply-adds): A's rows k .. k + 3 in av (4 vec4 each), B's in bv (bv[4r + j]), and row i of
// the block takes column i of A's four rows. The last K % 4 steps go one by one.
@compute @workgroup_size(8, 4)
fn gemm_tn16(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 16u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let m4 = p.m / 4u;
  let n4 = p.n / 4u;
  var rb4: array<u32, 4>;
  var cb: array<u32, 4>;
  for (var j = 0u; j < 4u; j++) {
    rb4[j] = min(row0 / 4u + j, m4 - 1u);
    cb[j] = min(col0 / 4u + j, n4 - 1u);
  }
  var acc: array<array<vec4f, 4>, 16>;
  var av: array<vec4f, 16>;
  var bv: array<vec4f, 16>;
  let k4 = p.k / 4u;
  for (var kk = 0u; kk < k4; kk++) {
    for (var r = 0u; r < 4u; r++) {
      let k = 4u * kk + r;
      for (var j = 0u; j < 4u; j++) {
        av[4u * r + j] = a4[k * m4 + rb4[j]];
        bv[4u * r + j] = b4[k * n4 + cb[j]];
      }
    }
    acc[0] = axpy16(acc[0], vec4f(av[0].x, av[4].x, av[8].x, av[12].x), &bv);
    acc[1] = axpy16(acc[1], vec4f(av[0].y, av[4].y, av[8].y, av[12].y), &bv);
    acc[2] = axpy16(acc[2], vec4f(av[0].z, av[4].z, av[8].z, av[12].z), &bv);
    acc[3] = axpy16(acc[3], vec4f(av[0].w, av[4].w, av[8].w, av[12].w), &bv);
    acc[4] = axpy16(acc[4], vec4f(av[1].x, av[5].x, av[9].x, av[13].x), &bv);
    acc[5] = axpy16(acc[5], vec4f(av[1].y, av[5].y, av[9].y, av[13].y), &bv);
    acc[6] = axpy16(acc[6], vec4f(av[1].z, av[5].z, av[9].z, av[13].z), &bv);
    acc[7] = axpy16(acc[7], vec4f(av[1].w, av[5].w, av[9].w, av[13].w), &bv);
    acc[8] = axpy16(acc[8], vec4f(av[2].x, av[6].x, av[10].x, av[14].x), &bv);
    acc[9] = axpy16(acc[9], vec4f(av[2].y, av[6].y, av[10].y, av[14].y), &bv);
    acc[10] = axpy16(acc[10], vec4f(av[2].z, av[6].z, av[10].z, av[14].z), &bv);
    acc[11] = axpy16(acc[11], vec4f(av[2].w, av[6].w, av[10].w, av[14].w), &bv);
    acc[12] = axpy16(acc[12], vec4f(av[3].x, av[7].x, av[11].x, av[15].x), &bv);
    acc[13] = axpy16(acc[13], vec4f(av[3].y, av[7].y, av[11].y, av[15].y), &bv);
    acc[14] = axpy16(acc[14], vec4f(av[3].z, av[7].z, av[11].z, av[15].z), &bv);
    acc[15] = axpy16(acc[15], vec4f(av[3].w, av[7].w, av[11].w, av[15].w), &bv);
  }
  for (var k = 4u * k4; k < p.k; k++) {
    for (var j = 0u; j < 4u; j++) {
      av[j] = a4[k * m4 + rb4[j]];
      bv[j] = b4[k * n4 + cb[j]];
    }
    for (var i = 0u; i < 16u; i++) {
      let a = av[i / 4u][i % 4u];
      for (var j = 0u; j < 4u; j++) { acc[i][j] += a * bv[j]; }
    }
  }
  store_block(row0, col0, acc);
}

// ---------------------------------------------------------------- sampled operands (llvmpipe)
//
// gemm_nt_tex, gemm_nn_tex, gemm_tn_tex (and the LM head's gemm_nt_tex_fold and
// gemm_nt_tex_dlogits): the 16 x 16 kernels' arithmetic, in 16 x 32 blocks, with A and B read
// from rgba32float textures through the nearest sampler instead of from storage. engine/gemm.ts
// copies each operand into a texture of its own layout (texel (x, y) = elements 4x .. 4x + 3 of
// row y: A [M, K] is K/4 x M texels, B [N, K] K/4 x N, B [K, N] N/4 x K, A stored [K, M] M/4 x
// K), a memcpy. Mesa 22.3 builds a sampler's texel fetch as vector code, where every storage,
// workgroup or textureLoad read is a loop over the SIMD lanes: a sampled vec4 cost about 0.4 ns
// a lane against 0.9 for a storage one in a micro kernel, and cheap loads move the best block
// from 16 x 16 to 16 x 32 and 32 x 32 (which took 18 s to compile, against 2.3 s). Each output
// sums the same terms in the same order as the 16 x 16 kernel of its layout: the same bits.
// Bindings: 0 P, 3 C, 4 bias, 10 A's texture, 11 B's texture, 12 the sampler (and the
// epilogues' 5 to 9); engine/gemm.ts gives the layouts (rgba32float is not filterable).

@group(0) @binding(10) var ta: texture_2d<f32>;
@group(0) @binding(11) var tb: texture_2d<f32>;
@group(0) @binding(12) var nearest: sampler;

// The sampling coordinate of texel i's centre on a side of n texels; with n at most 16384,
// i + 0.5 stays within about 0.002 of a texel of the centre after rounding.
fn centre(i: u32, n: u32) -> f32 {
  return (f32(i) + 0.5) / f32(n);
}

fn fetch(t: texture_2d<f32>, x: f32, y: f32) -> vec4f {
  return textureSampleLevel(t, nearest, vec2f(x, y), 0.0);
}

// Columns 0 .. 15 and 16 .. 31 of a 32-column row.
fn lo16(a: array<vec4f, 8>) -> array<vec4f, 4> {
  return array<vec4f, 4>(a[0], a[1], a[2], a[3]);
}

fn hi16(a: array<vec4f, 8>) -> array<vec4f, 4> {
  return array<vec4f, 4>(a[4], a[5], a[6], a[7]);
}

// One row of a 16 x 32 block, as dots16 (the same dot per column).
fn dots32(acc: array<vec4f, 8>, av: vec4f, bv: ptr<function, array<vec4f, 32>>) -> array<vec4f, 8> {
  var r = acc;
  for (var j = 0u; j < 8u; j++) {
    let b = 4u * j;
    r[j] += vec4f(dot(av, (*bv)[b]), dot(av, (*bv)[b + 1u]), dot(av, (*bv)[b + 2u]), dot(av, (*bv)[b + 3u]));
  }
  return r;
}

// "nt": A [M, K] and B [N, K] as K/4-wide textures. The block's rows and columns past M and N
// read the last one and are never stored.
fn nt_tex_block(row0: u32, col0: u32) -> array<array<vec4f, 8>, 16> {
  let k4 = p.k / 4u;
  var ya: array<f32, 16>;
  var yb: array<f32, 32>;
  for (var i = 0u; i < 16u; i++) { ya[i] = centre(min(row0 + i, p.m - 1u), p.m); }
  for (var j = 0u; j < 32u; j++) { yb[j] = centre(min(col0 + j, p.n - 1u), p.n); }
  var acc: array<array<vec4f, 8>, 16>;
  var bv: array<vec4f, 32>;
  for (var kk = 0u; kk < k4; kk++) {
    let x = centre(kk, k4);
    for (var j = 0u; j < 32u; j++) { bv[j] = fetch(tb, x, yb[j]); }
    acc[0] = dots32(acc[0], fetch(ta, x, ya[0]), &bv);
    acc[1] = dots32(acc[1], fetch(ta, x, ya[1]), &bv);
    acc[2] = dots32(acc[2], fetch(ta, x, ya[2]), &bv);
    acc[3] = dots32(acc[3], fetch(ta, x, ya[3]), &bv);
    acc[4] = dots32(acc[4], fetch(ta, x, ya[4]), &bv);
    acc[5] = dots32(acc[5], fetch(ta, x, ya[5]), &bv);
    acc[6] = dots32(acc[6], fetch(ta, x, ya[6]), &bv);
    acc[7] = dots32(acc[7], fetch(ta, x, ya[7]), &bv);
    acc[8] = dots32(acc[8], fetch(ta, x, ya[8]), &bv);
    acc[9] = dots32(acc[9], fetch(ta, x, ya[9]), &bv);
    acc[10] = dots32(acc[10], fetch(ta, x, ya[10]), &bv);
    acc[11] = dots32(acc[11], fetch(ta, x, ya[11]), &bv);
    acc[12] = dots32(acc[12], fetch(ta, x, ya[12]), &bv);
    acc[13] = dots32(acc[13], fetch(ta, x, ya[13]), &bv);
    acc[14] = dots32(acc[14], fetch(ta, x, ya[14]), &bv);
    acc[15] = dots32(acc[15], fetch(ta, x, ya[15]), &bv);
  }
  return acc;
}

// One row of a 16 x 32 block from four k steps of "nn", as axpy16: bv[8r + j] holds row k + r
// of B's columns col0 + 4j .. col0 + 4j + 3.
fn axpy32(acc: array<vec4f, 8>, av: vec4f, bv: ptr<function, array<vec4f, 32>>) -> array<vec4f, 8> {
  var r = acc;
  for (var j = 0u; j < 8u; j++) {
    r[j] += av.x * (*bv)[j] + av.y * (*bv)[8u + j] + av.z * (*bv)[16u + j] + av.w * (*bv)[24u + j];
  }
  return r;
}

// "nn": A [M, K] as a K/4-wide texture, B [K, N] as an N/4-wide one (K rows).
fn nn_tex_block(row0: u32, col0: u32) -> array<array<vec4f, 8>, 16> {
  let k4 = p.k / 4u;
  let n4 = p.n / 4u;
  var ya: array<f32, 16>;
  var xb: array<f32, 8>;
  for (var i = 0u; i < 16u; i++) { ya[i] = centre(min(row0 + i, p.m - 1u), p.m); }
  for (var j = 0u; j < 8u; j++) { xb[j] = centre(min(col0 / 4u + j, n4 - 1u), n4); }
  var acc: array<array<vec4f, 8>, 16>;
  var bv: array<vec4f, 32>;
  for (var kk = 0u; kk < k4; kk++) {
    let x = centre(kk, k4);
    for (var r = 0u; r < 4u; r++) {
      let y = centre(4u * kk + r, p.k);
      for (var j = 0u; j < 8u; j++) { bv[8u * r + j] = fetch(tb, xb[j], y); }
    }
    acc[0] = axpy32(acc[0], fetch(ta, x, ya[0]), &bv);
    acc[1] = axpy32(acc[1], fetch(ta, x, ya[1]), &bv);
    acc[2] = axpy32(acc[2], fetch(ta, x, ya[2]), &bv);
    acc[3] = axpy32(acc[3], fetch(ta, x, ya[3]), &bv);
    acc[4] = axpy32(acc[4], fetch(ta, x, ya[4]), &bv);
    acc[5] = axpy32(acc[5], fetch(ta, x, ya[5]), &bv);
    acc[6] = axpy32(acc[6], fetch(ta, x, ya[6]), &bv);
    acc[7] = axpy32(acc[7], fetch(ta, x, ya[7]), &bv);
    acc[8] = axpy32(acc[8], fetch(ta, x, ya[8]), &bv);
    acc[9] = axpy32(acc[9], fetch(ta, x, ya[9]), &bv);
    acc[10] = axpy32(acc[10], fetch(ta, x, ya[10]), &bv);
    acc[11] = axpy32(acc[11], fetch(ta, x, ya[11]), &bv);
    acc[12] = axpy32(acc[12], fetch(ta, x, ya[12]), &bv);
    acc[13] = axpy32(acc[13], fetch(ta, x, ya[13]), &bv);
    acc[14] = axpy32(acc[14], fetch(ta, x, ya[14]), &bv);
    acc[15] = axpy32(acc[15], fetch(ta, x, ya[15]), &bv);
  }
  return acc;
}

// "tn": A stored [K, M] as an M/4-wide texture, B [K, N] as an N/4-wide one (K rows each).
// Four k steps per pass (as "nn" takes them): each accumulator is loaded and stored once per
// 16 multiply-adds instead of per 4.
fn tn_tex_block(row0: u32, col0: u32) -> array<array<vec4f, 8>, 16> {
  let m4 = p.m / 4u;
  let n4 = p.n / 4u;
  var xa: array<f32, 4>;
  var xb: array<f32, 8>;
  for (var j = 0u; j < 4u; j++) { xa[j] = centre(min(row0 / 4u + j, m4 - 1u), m4); }
  for (var j = 0u; j < 8u; j++) { xb[j] = centre(min(col0 / 4u + j, n4 - 1u), n4); }
  var acc: array<array<vec4f, 8>, 16>;
  var av: array<vec4f, 16>;
  var bv: array<vec4f, 32>;
  let k4 = p.k / 4u;
  for (var kk = 0u; kk < k4; kk++) {
    for (var r = 0u; r < 4u; r++) {
      let y = centre(4u * kk + r, p.k);
      for (var j = 0u; j < 4u; j++) { av[4u * r + j] = fetch(ta, xa[j], y); }
      for (var j = 0u; j < 8u; j++) { bv[8u * r + j] = fetch(tb, xb[j], y); }
    }
    // Row i of the block takes column i of A's rows k .. k + 3.
    acc[0] = axpy32(acc[0], vec4f(av[0].x, av[4].x, av[8].x, av[12].x), &bv);
    acc[1] = axpy32(acc[1], vec4f(av[0].y, av[4].y, av[8].y, av[12].y), &bv);
    acc[2] = axpy32(acc[2], vec4f(av[0].z, av[4].z, av[8].z, av[12].z), &bv);
    acc[3] = axpy32(acc[3], vec4f(av[0].w, av[4].w, av[8].w, av[12].w), &bv);
    acc[4] = axpy32(acc[4], vec4f(av[1].x, av[5].x, av[9].x, av[13].x), &bv);
    acc[5] = axpy32(acc[5], vec4f(av[1].y, av[5].y, av[9].y, av[13].y), &bv);
    acc[6] = axpy32(acc[6], vec4f(av[1].z, av[5].z, av[9].z, av[13].z), &bv);
    acc[7] = axpy32(acc[7], vec4f(av[1].w, av[5].w, av[9].w, av[13].w), &bv);
    acc[8] = axpy32(acc[8], vec4f(av[2].x, av[6].x, av[10].x, av[14].x), &bv);
    acc[9] = axpy32(acc[9], vec4f(av[2].y, av[6].y, av[10].y, av[14].y), &bv);
    acc[10] = axpy32(acc[10], vec4f(av[2].z, av[6].z, av[10].z, av[14].z), &bv);
    acc[11] = axpy32(acc[11], vec4f(av[2].w, av[6].w, av[10].w, av[14].w), &bv);
    acc[12] = axpy32(acc[12], vec4f(av[3].x, av[7].x, av[11].x, av[15].x), &bv);
    acc[13] = axpy32(acc[13], vec4f(av[3].y, av[7].y, av[11].y, av[15].y), &bv);
    acc[14] = axpy32(acc[14], vec4f(av[3].z, av[7].z, av[11].z, av[15].z), &bv);
    acc[15] = axpy32(acc[15], vec4f(av[3].w, av[7].w, av[11].w, av[15].w), &bv);
  }
  // The last K % 4 steps one by one.
  for (var k = 4u * k4; k < p.k; k++) {
    let y = centre(k, p.k);
    for (var j = 0u; j < 4u; j++) { av[j] = fetch(ta, xa[j], y); }
    for (var j = 0u; j < 8u; j++) { bv[j] = fetch(tb, xb[j], y); }
    for (var i = 0u; i < 16u; i++) {
      let a = av[i / 4u][i % 4u];
      for (var j = 0u; j < 8u; j++) { acc[i][j] += a * bv[j]; }
    }
  }
  return acc;
}

// Stores a row of 32 columns (both halves through store_row, with their bias).
fn store_row32(row: u32, col0: u32, a: array<vec4f, 8>, bl: array<vec4f, 4>, bh: array<vec4f, 4>) {
  store_row(row, col0, lo16(a), bl);
  store_row(row, col0 + 16u, hi16(a), bh);
}

fn store_block32(row0: u32, col0: u32, acc: array<array<vec4f, 8>, 16>) {
  let bl = bias16(col0);
  let bh = bias16(col0 + 16u);
  store_row32(row0 + 0u, col0, acc[0], bl, bh);
  store_row32(row0 + 1u, col0, acc[1], bl, bh);
  store_row32(row0 + 2u, col0, acc[2], bl, bh);
  store_row32(row0 + 3u, col0, acc[3], bl, bh);
  store_row32(row0 + 4u, col0, acc[4], bl, bh);
  store_row32(row0 + 5u, col0, acc[5], bl, bh);
  store_row32(row0 + 6u, col0, acc[6], bl, bh);
  store_row32(row0 + 7u, col0, acc[7], bl, bh);
  store_row32(row0 + 8u, col0, acc[8], bl, bh);
  store_row32(row0 + 9u, col0, acc[9], bl, bh);
  store_row32(row0 + 10u, col0, acc[10], bl, bh);
  store_row32(row0 + 11u, col0, acc[11], bl, bh);
  store_row32(row0 + 12u, col0, acc[12], bl, bh);
  store_row32(row0 + 13u, col0, acc[13], bl, bh);
  store_row32(row0 + 14u, col0, acc[14], bl, bh);
  store_row32(row0 + 15u, col0, acc[15], bl, bh);
}

@compute @workgroup_size(8, 4)
fn gemm_nt_tex(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 32u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  store_block32(row0, col0, nt_tex_block(row0, col0));
}

@compute @workgroup_size(8, 4)
fn gemm_nn_tex(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 32u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  store_block32(row0, col0, nn_tex_block(row0, col0));
}

@compute @workgroup_size(8, 4)
fn gemm_tn_tex(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 32u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  store_block32(row0, col0, tn_tex_block(row0, col0));
}

// The LM head's epilogues on 32 columns: two partial states (the second only where it has
// columns), or the 32 dlogits.
fn fold_row32(row: u32, col0: u32, a: array<vec4f, 8>) {
  fold_row(row, col0, lo16(a));
  if (col0 + 16u < p.n) { fold_row(row, col0 + 16u, hi16(a)); }
}

@compute @workgroup_size(8, 4)
fn gemm_nt_tex_fold(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 32u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let acc = nt_tex_block(row0, col0);
  fold_row32(row0 + 0u, col0, acc[0]);
  fold_row32(row0 + 1u, col0, acc[1]);
  fold_row32(row0 + 2u, col0, acc[2]);
  fold_row32(row0 + 3u, col0, acc[3]);
  fold_row32(row0 + 4u, col0, acc[4]);
  fold_row32(row0 + 5u, col0, acc[5]);
  fold_row32(row0 + 6u, col0, acc[6]);
  fold_row32(row0 + 7u, col0, acc[7]);
  fold_row32(row0 + 8u, col0, acc[8]);
  fold_row32(row0 + 9u, col0, acc[9]);
  fold_row32(row0 + 10u, col0, acc[10]);
  fold_row32(row0 + 11u, col0, acc[11]);
  fold_row32(row0 + 12u, col0, acc[12]);
  fold_row32(row0 + 13u, col0, acc[13]);
  fold_row32(row0 + 14u, col0, acc[14]);
  fold_row32(row0 + 15u, col0, acc[15]);
}

fn dlogits_row32(row: u32, col0: u32, a: array<vec4f, 8>) {
  dlogits_row(row, col0, lo16(a));
  dlogits_row(row, col0 + 16u, hi16(a));
}

@compute @workgroup_size(8, 4)
fn gemm_nt_tex_dlogits(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 16u;
  let col0 = gid.x * 32u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let acc = nt_tex_block(row0, col0);
  dlogits_row32(row0 + 0u, col0, acc[0]);
  dlogits_row32(row0 + 1u, col0, acc[1]);
  dlogits_row32(row0 + 2u, col0, acc[2]);
  dlogits_row32(row0 + 3u, col0, acc[3]);
  dlogits_row32(row0 + 4u, col0, acc[4]);
  dlogits_row32(row0 + 5u, col0, acc[5]);
  dlogits_row32(row0 + 6u, col0, acc[6]);
  dlogits_row32(row0 + 7u, col0, acc[7]);
  dlogits_row32(row0 + 8u, col0, acc[8]);
  dlogits_row32(row0 + 9u, col0, acc[9]);
  dlogits_row32(row0 + 10u, col0, acc[10]);
  dlogits_row32(row0 + 11u, col0, acc[11]);
  dlogits_row32(row0 + 12u, col0, acc[12]);
  dlogits_row32(row0 + 13u, col0, acc[13]);
  dlogits_row32(row0 + 14u, col0, acc[14]);
  dlogits_row32(row0 + 15u, col0, acc[15]);
}

@compute @workgroup_size(8, 8)
fn gemm_nn4(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let k4 = p.k / 4u;
  let n4 = p.n / 4u;
  let cb = col0 / 4u;
  var ra: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) { ra[i] = min(row0 + i, p.m - 1u) * k4; }
  var acc: array<vec4f, 4>;
  for (var kk = 0u; kk < k4; kk++) {
    let base = kk * 4u * n4 + cb;
    let b0 = b4[base];
    let b1v = b4[base + n4];
    let b2 = b4[base + 2u * n4];
    let b3 = b4[base + 3u * n4];
    for (var i = 0u; i < 4u; i++) {
      let av = a4[ra[i] + kk];
      acc[i] += av.x * b0 + av.y * b1v + av.z * b2 + av.w * b3;
    }
  }
  store(row0, col0, acc);
}

@compute @workgroup_size(8, 8)
fn gemm_tn4(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let m4 = p.m / 4u;
  let n4 = p.n / 4u;
  let ab = row0 / 4u;
  let cb = col0 / 4u;
  var acc: array<vec4f, 4>;
  for (var kk = 0u; kk < p.k; kk++) {
    let av = a4[kk * m4 + ab];
    let bv = b4[kk * n4 + cb];
    acc[0] += av.x * bv;
    acc[1] += av.y * bv;
    acc[2] += av.z * bv;
    acc[3] += av.w * bv;
  }
  store(row0, col0, acc);
}

// 4 x 8 blocks of the "nn" and "tn" layouts (need N % 8 == 0).
@compute @workgroup_size(8, 8)
fn gemm_nn8(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 8u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let k4 = p.k / 4u;
  let n4 = p.n / 4u;
  let cb = col0 / 4u;
  var ra: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) { ra[i] = min(row0 + i, p.m - 1u) * k4; }
  var lo: array<vec4f, 4>;
  var hi: array<vec4f, 4>;
  for (var kk = 0u; kk < k4; kk++) {
    let base = kk * 4u * n4 + cb;
    let b0 = b4[base];
    let b1v = b4[base + n4];
    let b2 = b4[base + 2u * n4];
    let b3 = b4[base + 3u * n4];
    let c0 = b4[base + 1u];
    let c1 = b4[base + n4 + 1u];
    let c2 = b4[base + 2u * n4 + 1u];
    let c3 = b4[base + 3u * n4 + 1u];
    for (var i = 0u; i < 4u; i++) {
      let av = a4[ra[i] + kk];
      lo[i] += av.x * b0 + av.y * b1v + av.z * b2 + av.w * b3;
      hi[i] += av.x * c0 + av.y * c1 + av.z * c2 + av.w * c3;
    }
  }
  store(row0, col0, lo);
  store(row0, col0 + 4u, hi);
}

@compute @workgroup_size(8, 8)
fn gemm_tn8(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 8u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let m4 = p.m / 4u;
  let n4 = p.n / 4u;
  let ab = row0 / 4u;
  let cb = col0 / 4u;
  var lo: array<vec4f, 4>;
  var hi: array<vec4f, 4>;
  for (var kk = 0u; kk < p.k; kk++) {
    let av = a4[kk * m4 + ab];
    let b0 = b4[kk * n4 + cb];
    let b1v = b4[kk * n4 + cb + 1u];
    lo[0] += av.x * b0;
    lo[1] += av.y * b0;
    lo[2] += av.z * b0;
    lo[3] += av.w * b0;
    hi[0] += av.x * b1v;
    hi[1] += av.y * b1v;
    hi[2] += av.z * b1v;
    hi[3] += av.w * b1v;
  }
  store(row0, col0, lo);
  store(row0, col0 + 4u, hi);
}

@compute @workgroup_size(8, 8)
fn gemm_any(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  var ra: array<u32, 4>;
  var rb: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    ra[i] = min(row0 + i, p.m - 1u) * p.sam;
    rb[i] = min(col0 + i, p.n - 1u) * p.sbn;
  }
  var acc: array<vec4f, 4>;
  for (var kk = 0u; kk < p.k; kk++) {
    let oa = kk * p.sak;
    let ob = kk * p.sbk;
    let bv = vec4f(b1[ob + rb[0]], b1[ob + rb[1]], b1[ob + rb[2]], b1[ob + rb[3]]);
    for (var i = 0u; i < 4u; i++) { acc[i] += a1[ra[i] + oa] * bv; }
  }
  store(row0, col0, acc);
}

// x [M, N] bound at 1 (a1), out [N] at 3 (c). p.m rows, p.n columns, flags bit 0 accumulate.
@compute @workgroup_size(64)
fn sum_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let col = gid.x + gid.y * nwg.x * 64u;
  if (col >= p.n) { return; }
  var s = 0.0;
  for (var r = 0u; r < p.m; r++) { s += a1[r * p.n + col]; }
  if ((p.flags & 1u) != 0u) { s += c[col]; }
  c[col] = s;
}

// out[c, r] = x[r, c] for x [M, N] bound at 1 (a1), out [N, M] at 3 (c): p.m rows, p.n columns.
// Invocation (gid.x, r) copies columns 4 gid.x .. 4 gid.x + 3 of row r. The blocked matmul
// turns large "nn" and "tn" products into "nt" ones with it (engine/gemm.ts explains when).
@compute @workgroup_size(64)
fn transpose(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.y;
  if (r >= p.m) { return; }
  for (var j = 0u; j < 4u; j++) {
    let col = gid.x * 4u + j;
    if (col < p.n) { c[col * p.m + r] = a1[r * p.n + col]; }
  }
}
