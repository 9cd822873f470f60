// sampling.wgsl: next-token sampling from last hidden states, fp32; logits never leave the GPU.
//
//   logits4x8  z[g, c0 + c] = dot(hidden[row0 + g], wc[c]) for the group rows g in [0, rows)
//              and the chunk columns c in [0, cn); wc is the block of vocabulary rows
//              [c0, c0 + cn) of the LM head [V, d], bound as a slice (the 151936 x 896 fp32
//              head is 544 MB, over the 128 MiB binding limit). One invocation computes 4 rows
//              x 8 columns from vec4 loads, no workgroup memory; needs d % 4 == 0.
//   logits8x8  the same for 8 rows x 8 columns (groups of 5 to 8 rows, on llvmpipe).
//   logits16x16  the same for 16 x 16 (groups of 9 rows or more, on llvmpipe).
//   logits1x8  the same for 1 row x 8 columns (groups of 1 or 2 rows: no redundant rows).
//              All four sum a logit as dot products of 4 k at a time in ascending k, so every
//              layout gives the same bits. On llvmpipe (V = 151936, the same process
//              alternating) against an earlier form that kept four partial sums per logit (a
//              vec4 accumulator each): R = 100, d = 64: 8 x 8 174.5 ms before, 163.6 now,
//              16 x 16 123.6; R = 16, d = 64: 38.9, 36.2, 27.8; R = 64, d = 896: 854, 755,
//              566; R = 8, d = 64: 24.8, 23.5, 26.8 (so 8 x 8 keeps groups of 5 to 8; at 9
//              to 15 a part-filled 16 x 16 block beats two 8 x 8 ones, engine/sampling.ts);
//              4 x 8 at R = 100, d = 64: 293.7 before, 232.2 now; 1 x 8 unchanged.
//   logits1    one output per invocation, scalar loads, any d.
//              bindings: 0 P, 1 hidden [R, d], 2 wc [cn, d], 3 z [rows, vl] (rw)
//              Earlier layouts tried on llvmpipe (d = 896, V = 65536, ms incl. the sample
//              pass, noisy): R = 64: 4x4 1754, 4x8 836-1439, 8x8 1797; R = 8: 4x4 310, 4x8
//              184-232, 8x8 143-200; R = 1: 4x4 164, 4x8 88-96, 1x8 54-73, 1x16 58. On a GPU
//              these layouts read W uncoalesced (each lane its own row); a tiled workgroup
//              form would suit it better.
//   row_stats, greedy_part16, logits16x16_greedy, logits16x16_stats (and logits16x32_greedy_tex,
//             logits16x32_stats_tex, the same from textures): m = max z, its lowest id, lse
//             (the row stats section below); at temperature 0 they make the whole draw.
//   draw, pick_w, pick_z  temperature > 0 without top-k or top-p: the token from the partial
//             states and one block of 16 logits (the draw section at the end).
//   sample_topk, sample_topp, sample  temperature > 0 with top-k or top-p: each one workgroup
//             of WG lanes per row g. In the mass and draw passes lane l owns the contiguous
//             ids [l * blk, (l + 1) * blk) of [0, vl), so sums run in ascending id order
//             (within a lane, then over lanes in lane 0); the search rounds visit ids l, l +
//             WG, ... (counts, and sums that need only a fixed order). Every reduction has a
//             fixed order, so results are bit-reproducible:
//               1. m and lse from row_stats.
//               2. weights w = exp((z - m) / T):
//               3. top-k (sample_topk): the k-th largest logit t_k, found by a 16-way search
//                  over the order-preserving u32 key of the fp32 logit (largest key t with
//                  count(key >= t) >= k; at most 8 rounds of parallel counts). Kept:
//                  key >= t_k (ties at the threshold all kept, as in Hugging Face's
//                  TopKLogitsWarper).
//               4. top-p (sample_topp): among the kept, the largest key t with mass(key >= t)
//                  >= p * Z_k (Z_k = mass(key >= t_k)), by the same search over parallel mass
//                  sums: the smallest value-threshold nucleus whose mass reaches p (ties kept).
//                  Each search leaves its key in stats.w for the next pass.
//               5. draw (sample): u = uniform(seed, counter, key), key = row_keys[row0 + g]
//                  (the row's index unless the caller keeps a row's key as rows come and go);
//                  target = u * Z over the kept set; the token is the first kept id
//                  (ascending) where the running mass exceeds the target (lane 0 finds the
//                  lane, that lane scans its ids).
//             logp = z[token] - lse: the unmodified distribution (T = 1, no filtering).
//             bindings: 0 P, 3 z [rows, vl] (read), 8 stats (rw in the searches); sample
//             also 4 tokens [R] u32 (rw), 5 logp [R] (rw), 9 row_keys [R] u32
// P = { rows, row0, d, vl, c0, cn, topk (0 = off), seed, counter: u32; temperature, topp: f32 }.
//
// RNG: counter-based, u = (h >> 8) / 2^24 with h = hash(seed, counter, row) a chain of
// lowbias32 integer mixes (engine/sampling_ref.ts has the same hash), so a draw depends on
// (seed, counter, row) only, never on dispatch order.
//
// Why a search and not a sort: a sort of 151936 values per row needs workgroup memory far over
// 32 KiB and many barriers (costly on llvmpipe, a CPU); the search needs one streaming pass per
// round over the row and two barriers per round (partials written, then lane 0's totals read
// back with workgroupUniformLoad, which keeps the loop uniform). Each round tests 15 pivots
// (16-way cut of the key interval, at most 8 rounds) rather than 1 (bisection, up to 32 rounds):
// at R = 64, V = 151936 the sample pass with top-k 50 took 325 ms against 1160 ms bisecting.

const WG: u32 = 64u;
// Pivots per round of the threshold searches (16-way).
const NP: u32 = 15u;
// Whether the partial states also carry the mass at the sampling temperature (the draw section).
override DRAW: bool = false;

struct P {
  rows: u32,
  row0: u32,
  d: u32,
  vl: u32,
  c0: u32,
  cn: u32,
  topk: u32,
  seed: u32,
  counter: u32,
  temperature: f32,
  topp: f32,
  hrows: u32, // rows of hidden (the height of its texture)
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> h1: array<f32>;
@group(0) @binding(1) var<storage, read> h4: array<vec4f>;
@group(0) @binding(2) var<storage, read> w1: array<f32>;
@group(0) @binding(2) var<storage, read> w4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> z_out: array<f32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(5) var<storage, read_write> logp: array<f32>;

// Every vec4 layout computes a logit the same way, z = sum over k4 ascending of dot(h[k4],
// w[k4]) (4 k at a time), so the layout never changes the bits. acc[j] holds 4 columns.

// acc[j] += (dot(h, b[4j]), .., dot(h, b[4j + 3])) for the 8 (dots8) or 16 (dots16) columns
// of one row.
fn dots8(acc: array<vec4f, 2>, h: vec4f, b: ptr<function, array<vec4f, 8>>) -> array<vec4f, 2> {
  var r = acc;
  for (var j = 0u; j < 2u; j++) {
    let q = 4u * j;
    r[j] += vec4f(dot(h, (*b)[q]), dot(h, (*b)[q + 1u]), dot(h, (*b)[q + 2u]), dot(h, (*b)[q + 3u]));
  }
  return r;
}

fn dots16(acc: array<vec4f, 4>, h: vec4f, b: ptr<function, array<vec4f, 16>>) -> array<vec4f, 4> {
  var r = acc;
  for (var j = 0u; j < 4u; j++) {
    let q = 4u * j;
    r[j] += vec4f(dot(h, (*b)[q]), dot(h, (*b)[q + 1u]), dot(h, (*b)[q + 2u]), dot(h, (*b)[q + 3u]));
  }
  return r;
}

// Group row r, chunk columns c .. c + 7 (store8) or c + 15 (store16): stores those that exist.
fn store8(r: u32, c: u32, a: array<vec4f, 2>) {
  if (r >= p.rows) { return; }
  let o = r * p.vl + p.c0 + c;
  for (var q = 0u; q < 8u; q++) {
    if (c + q >= p.cn) { return; }
    z_out[o + q] = a[q / 4u][q % 4u];
  }
}

fn store16(r: u32, c: u32, a: array<vec4f, 4>) {
  if (r >= p.rows) { return; }
  let o = r * p.vl + p.c0 + c;
  for (var q = 0u; q < 16u; q++) {
    if (c + q >= p.cn) { return; }
    z_out[o + q] = a[q / 4u][q % 4u];
  }
}

// 4 rows x 8 columns per invocation (x: 8-column blocks of the chunk, y: 4-row blocks of the
// group). Rows and columns past the end load a valid neighbour; their stores are skipped.
@compute @workgroup_size(WG)
fn logits4x8(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 8u;
  let g = gid.y * 4u;
  if (c >= p.cn || g >= p.rows) { return; }
  let d4 = p.d / 4u;
  let x0 = (p.row0 + g) * d4;
  let x1 = (p.row0 + min(g + 1u, p.rows - 1u)) * d4;
  let x2 = (p.row0 + min(g + 2u, p.rows - 1u)) * d4;
  let x3 = (p.row0 + min(g + 3u, p.rows - 1u)) * d4;
  var y: array<u32, 8>;
  for (var j = 0u; j < 8u; j++) { y[j] = min(c + j, p.cn - 1u) * d4; }
  var a0: array<vec4f, 2>;
  var a1: array<vec4f, 2>;
  var a2: array<vec4f, 2>;
  var a3: array<vec4f, 2>;
  var b: array<vec4f, 8>;
  for (var k = 0u; k < d4; k++) {
    for (var j = 0u; j < 8u; j++) { b[j] = w4[y[j] + k]; }
    a0 = dots8(a0, h4[x0 + k], &b);
    a1 = dots8(a1, h4[x1 + k], &b);
    a2 = dots8(a2, h4[x2 + k], &b);
    a3 = dots8(a3, h4[x3 + k], &b);
  }
  store8(g, c, a0);
  store8(g + 1u, c, a1);
  store8(g + 2u, c, a2);
  store8(g + 3u, c, a3);
}

// 8 rows x 8 columns per invocation, for groups of 5 to 8 rows (on llvmpipe). The rows are
// written out one by one because a loop over them would not be unrolled and its arrays would
// live in memory.
@compute @workgroup_size(WG)
fn logits8x8(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 8u;
  let g = gid.y * 8u;
  if (c >= p.cn || g >= p.rows) { return; }
  let d4 = p.d / 4u;
  var x: array<u32, 8>;
  var y: array<u32, 8>;
  for (var i = 0u; i < 8u; i++) {
    x[i] = (p.row0 + min(g + i, p.rows - 1u)) * d4;
    y[i] = min(c + i, p.cn - 1u) * d4;
  }
  var a: array<array<vec4f, 2>, 8>;
  var b: array<vec4f, 8>;
  for (var k = 0u; k < d4; k++) {
    for (var j = 0u; j < 8u; j++) { b[j] = w4[y[j] + k]; }
    a[0] = dots8(a[0], h4[x[0] + k], &b);
    a[1] = dots8(a[1], h4[x[1] + k], &b);
    a[2] = dots8(a[2], h4[x[2] + k], &b);
    a[3] = dots8(a[3], h4[x[3] + k], &b);
    a[4] = dots8(a[4], h4[x[4] + k], &b);
    a[5] = dots8(a[5], h4[x[5] + k], &b);
    a[6] = dots8(a[6], h4[x[6] + k], &b);
    a[7] = dots8(a[7], h4[x[7] + k], &b);
  }
  store8(g + 0u, c, a[0]);
  store8(g + 1u, c, a[1]);
  store8(g + 2u, c, a[2]);
  store8(g + 3u, c, a[3]);
  store8(g + 4u, c, a[4]);
  store8(g + 5u, c, a[5]);
  store8(g + 6u, c, a[6]);
  store8(g + 7u, c, a[7]);
}

// 16 rows x 16 columns per invocation, for groups of 16 rows or more (on llvmpipe): 32 vec4
// loads per 256 dot products (8 x 8: 16 per 64). block16 computes the block of group rows g ..
// g + 15 and chunk columns c .. c + 15 (c < cn, g < rows); logits16x16 stores it, and
// logits16x16_greedy folds it into greedy partial states (below).
fn block16(g: u32, c: u32) -> array<array<vec4f, 4>, 16> {
  let d4 = p.d / 4u;
  var x: array<u32, 16>;
  var y: array<u32, 16>;
  for (var i = 0u; i < 16u; i++) {
    x[i] = (p.row0 + min(g + i, p.rows - 1u)) * d4;
    y[i] = min(c + i, p.cn - 1u) * d4;
  }
  var a: array<array<vec4f, 4>, 16>;
  var b: array<vec4f, 16>;
  for (var k = 0u; k < d4; k++) {
    for (var j = 0u; j < 16u; j++) { b[j] = w4[y[j] + k]; }
    a[0] = dots16(a[0], h4[x[0] + k], &b);
    a[1] = dots16(a[1], h4[x[1] + k], &b);
    a[2] = dots16(a[2], h4[x[2] + k], &b);
    a[3] = dots16(a[3], h4[x[3] + k], &b);
    a[4] = dots16(a[4], h4[x[4] + k], &b);
    a[5] = dots16(a[5], h4[x[5] + k], &b);
    a[6] = dots16(a[6], h4[x[6] + k], &b);
    a[7] = dots16(a[7], h4[x[7] + k], &b);
    a[8] = dots16(a[8], h4[x[8] + k], &b);
    a[9] = dots16(a[9], h4[x[9] + k], &b);
    a[10] = dots16(a[10], h4[x[10] + k], &b);
    a[11] = dots16(a[11], h4[x[11] + k], &b);
    a[12] = dots16(a[12], h4[x[12] + k], &b);
    a[13] = dots16(a[13], h4[x[13] + k], &b);
    a[14] = dots16(a[14], h4[x[14] + k], &b);
    a[15] = dots16(a[15], h4[x[15] + k], &b);
  }
  return a;
}

@compute @workgroup_size(WG)
fn logits16x16(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 16u;
  let g = gid.y * 16u;
  if (c >= p.cn || g >= p.rows) { return; }
  let a = block16(g, c);
  store16(g + 0u, c, a[0]);
  store16(g + 1u, c, a[1]);
  store16(g + 2u, c, a[2]);
  store16(g + 3u, c, a[3]);
  store16(g + 4u, c, a[4]);
  store16(g + 5u, c, a[5]);
  store16(g + 6u, c, a[6]);
  store16(g + 7u, c, a[7]);
  store16(g + 8u, c, a[8]);
  store16(g + 9u, c, a[9]);
  store16(g + 10u, c, a[10]);
  store16(g + 11u, c, a[11]);
  store16(g + 12u, c, a[12]);
  store16(g + 13u, c, a[13]);
  store16(g + 14u, c, a[14]);
  store16(g + 15u, c, a[15]);
}

// 1 row x 8 columns per invocation, for groups of 1 or 2 rows (x: 8-column blocks, y: rows).
@compute @workgroup_size(WG)
fn logits1x8(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 8u;
  let g = gid.y;
  if (c >= p.cn || g >= p.rows) { return; }
  let d4 = p.d / 4u;
  let x0 = (p.row0 + g) * d4;
  var y: array<u32, 8>;
  for (var j = 0u; j < 8u; j++) { y[j] = min(c + j, p.cn - 1u) * d4; }
  var a: array<vec4f, 2>;
  var b: array<vec4f, 8>;
  for (var k = 0u; k < d4; k++) {
    for (var j = 0u; j < 8u; j++) { b[j] = w4[y[j] + k]; }
    a = dots8(a, h4[x0 + k], &b);
  }
  store8(g, c, a);
}

// x: chunk columns, y: group rows.
@compute @workgroup_size(WG)
fn logits1(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  let g = gid.y;
  if (c >= p.cn || g >= p.rows) { return; }
  let x = (p.row0 + g) * p.d;
  let y = c * p.d;
  var s = 0.0;
  for (var k = 0u; k < p.d; k++) {
    s += h1[x + k] * w1[y + k];
  }
  z_out[g * p.vl + p.c0 + c] = s;
}

// ------------------------------------------------------------------------- row stats
//
// Every row's largest logit m (and the lowest id holding it) and its log-sum-exp come from
// partial states of 16 ids, aligned to ids 16b .. 16b + 15 of the vocabulary: gp [rows,
// ceil(vl / 16)] of vec4f (max, the lowest id holding it (as f32 bits), sum exp(z - max), and
// with DRAW sum exp((z - max) / T), else 0), merged per row in id order by row_stats. At temperature 0 that is the whole draw, and
// logits16x16_greedy makes the partials from the 16 x 16 block's registers (when every chunk
// starts on a multiple of 16) without storing the logits; at other temperatures
// logits16x16_stats stores the logits and makes the partials; otherwise greedy_part16 makes
// them from the stored logits. Both go through greedy_partial, so they give the same bits, and the
// sample pass takes m and lse from row_stats too: a token's logp has the same bits whatever
// the temperature, top-k and top-p.
//   bindings: greedy_part16 0 P, 3 z, 6 gp (rw); logits16x16_greedy 0 P, 1 hidden, 2 wc, 6 gp
//   (rw); logits16x16_stats the same and 3 z (rw); row_stats 0 P, 4 tokens, 5 logp, 7 gp
//   (read), 8 stats (rw); sample reads 8 stats. The texture twins' bindings are given with them.

@group(0) @binding(6) var<storage, read_write> gp_out: array<vec4f>;
@group(0) @binding(7) var<storage, read> gp_in: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> stats_out: array<vec4f>;
@group(0) @binding(8) var<storage, read> stats_in: array<vec4f>;

// The partial state of logits acc with ids id0 .. id0 + 15, of which the first n exist (vector
// operations throughout: an array indexed by a loop counter would live in memory on llvmpipe).
fn greedy_partial(id0: u32, n: u32, acc: array<vec4f, 4>) -> vec4f {
  let lane = vec4u(0u, 1u, 2u, 3u);
  let in0 = lane < vec4u(n);
  let in1 = lane + vec4u(4u) < vec4u(n);
  let in2 = lane + vec4u(8u) < vec4u(n);
  let in3 = lane + vec4u(12u) < vec4u(n);
  let lo = vec4f(-3.4028235e38);
  let z0 = select(lo, acc[0], in0);
  let z1 = select(lo, acc[1], in1);
  let z2 = select(lo, acc[2], in2);
  let z3 = select(lo, acc[3], in3);
  let m4 = max(max(z0, z1), max(z2, z3));
  let mx = max(max(m4.x, m4.y), max(m4.z, m4.w));
  // The lowest id holding the max (columns past n never match: they hold lo, below any logit
  // that is not itself -3.4e38).
  let none = vec4u(16u);
  let mv = vec4f(mx);
  let i4 = min(
    min(select(none, lane, in0 & (z0 == mv)), select(none, lane + vec4u(4u), in1 & (z1 == mv))),
    min(select(none, lane + vec4u(8u), in2 & (z2 == mv)), select(none, lane + vec4u(12u), in3 & (z3 == mv))),
  );
  let mi = min(min(i4.x, i4.y), min(i4.z, i4.w));
  let s4 = (select(vec4f(0.0), exp(z0 - mv), in0) + select(vec4f(0.0), exp(z1 - mv), in1)) +
    (select(vec4f(0.0), exp(z2 - mv), in2) + select(vec4f(0.0), exp(z3 - mv), in3));
  var w = 0.0;
  if (DRAW) {
    let it = vec4f(1.0 / p.temperature);
    let e4 = (select(vec4f(0.0), exp((z0 - mv) * it), in0) +
      select(vec4f(0.0), exp((z1 - mv) * it), in1)) +
      (select(vec4f(0.0), exp((z2 - mv) * it), in2) + select(vec4f(0.0), exp((z3 - mv) * it), in3));
    w = (e4.x + e4.y) + (e4.z + e4.w);
  }
  return vec4f(mx, bitcast<f32>(id0 + mi), (s4.x + s4.y) + (s4.z + s4.w), w);
}

// Group row r's partial for the block at chunk column c (a multiple of 16; c0 too).
fn greedy_row(r: u32, c: u32, acc: array<vec4f, 4>) {
  if (r >= p.rows) { return; }
  let id0 = p.c0 + c;
  gp_out[r * ((p.vl + 15u) / 16u) + id0 / 16u] = greedy_partial(id0, min(16u, p.cn - c), acc);
}

// The partial states of a 16 x 16 block (group rows g .., chunk columns c ..).
fn greedy_block(g: u32, c: u32, a: array<array<vec4f, 4>, 16>) {
  greedy_row(g + 0u, c, a[0]);
  greedy_row(g + 1u, c, a[1]);
  greedy_row(g + 2u, c, a[2]);
  greedy_row(g + 3u, c, a[3]);
  greedy_row(g + 4u, c, a[4]);
  greedy_row(g + 5u, c, a[5]);
  greedy_row(g + 6u, c, a[6]);
  greedy_row(g + 7u, c, a[7]);
  greedy_row(g + 8u, c, a[8]);
  greedy_row(g + 9u, c, a[9]);
  greedy_row(g + 10u, c, a[10]);
  greedy_row(g + 11u, c, a[11]);
  greedy_row(g + 12u, c, a[12]);
  greedy_row(g + 13u, c, a[13]);
  greedy_row(g + 14u, c, a[14]);
  greedy_row(g + 15u, c, a[15]);
}

// Both: stores the block (for the sample pass) and makes its partial states.
fn stats_block(g: u32, c: u32, a: array<array<vec4f, 4>, 16>) {
  store16(g + 0u, c, a[0]);
  greedy_row(g + 0u, c, a[0]);
  store16(g + 1u, c, a[1]);
  greedy_row(g + 1u, c, a[1]);
  store16(g + 2u, c, a[2]);
  greedy_row(g + 2u, c, a[2]);
  store16(g + 3u, c, a[3]);
  greedy_row(g + 3u, c, a[3]);
  store16(g + 4u, c, a[4]);
  greedy_row(g + 4u, c, a[4]);
  store16(g + 5u, c, a[5]);
  greedy_row(g + 5u, c, a[5]);
  store16(g + 6u, c, a[6]);
  greedy_row(g + 6u, c, a[6]);
  store16(g + 7u, c, a[7]);
  greedy_row(g + 7u, c, a[7]);
  store16(g + 8u, c, a[8]);
  greedy_row(g + 8u, c, a[8]);
  store16(g + 9u, c, a[9]);
  greedy_row(g + 9u, c, a[9]);
  store16(g + 10u, c, a[10]);
  greedy_row(g + 10u, c, a[10]);
  store16(g + 11u, c, a[11]);
  greedy_row(g + 11u, c, a[11]);
  store16(g + 12u, c, a[12]);
  greedy_row(g + 12u, c, a[12]);
  store16(g + 13u, c, a[13]);
  greedy_row(g + 13u, c, a[13]);
  store16(g + 14u, c, a[14]);
  greedy_row(g + 14u, c, a[14]);
  store16(g + 15u, c, a[15]);
  greedy_row(g + 15u, c, a[15]);
}

@compute @workgroup_size(WG)
fn logits16x16_greedy(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 16u;
  let g = gid.y * 16u;
  if (c >= p.cn || g >= p.rows) { return; }
  greedy_block(g, c, block16(g, c));
}

@compute @workgroup_size(WG)
fn logits16x16_stats(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 16u;
  let g = gid.y * 16u;
  if (c >= p.cn || g >= p.rows) { return; }
  stats_block(g, c, block16(g, c));
}

// The same two with hidden and the chunk of the head read from textures through the nearest
// sampler, in 16 x 32 blocks (engine/sampling.ts copies them in; texel (x, y) holds elements 4x
// .. 4x + 3 of row y): Mesa 22.3's llvmpipe builds a sampled fetch as vector code where a storage
// load is a loop over the SIMD lanes (engine/device.ts Texture; kernels/gemm.wgsl does the same
// for the matmul), and with loads that cheap the wider block pays (16 x 16: 11.6, 59.1 and 91.9
// ms against 10.5, 50.1 and 80.1 for 16 x 32, greedy at V = 151936 for 16 rows at d = 64, 100
// rows at d = 64 and 16 rows at d = 896). block32t sums each logit as block16 does: the same bits.
// Bindings: 0 P, 3 z (stats), 6 gp, 11 hidden's texture [d / 4, hrows], 12 the chunk's [d / 4,
// cn], 13 the sampler.
@group(0) @binding(11) var th: texture_2d<f32>;
@group(0) @binding(12) var tw: texture_2d<f32>;
@group(0) @binding(13) var nearest: sampler;

// The sampling coordinate of texel i's centre on a side of n texels.
fn centre(i: u32, n: u32) -> f32 {
  return (f32(i) + 0.5) / f32(n);
}

fn fetch(t: texture_2d<f32>, x: f32, y: f32) -> vec4f {
  return textureSampleLevel(t, nearest, vec2f(x, y), 0.0);
}

// dots16 over 32 columns.
fn dots32(acc: array<vec4f, 8>, h: vec4f, b: ptr<function, array<vec4f, 32>>) -> array<vec4f, 8> {
  var r = acc;
  for (var j = 0u; j < 8u; j++) {
    let q = 4u * j;
    r[j] += vec4f(dot(h, (*b)[q]), dot(h, (*b)[q + 1u]), dot(h, (*b)[q + 2u]), dot(h, (*b)[q + 3u]));
  }
  return r;
}

// Group rows g .. g + 15 and chunk columns c .. c + 31 (c < cn, g < rows).
fn block32t(g: u32, c: u32) -> array<array<vec4f, 8>, 16> {
  let d4 = p.d / 4u;
  var x: array<f32, 16>;
  var y: array<f32, 32>;
  for (var i = 0u; i < 16u; i++) { x[i] = centre(p.row0 + min(g + i, p.rows - 1u), p.hrows); }
  for (var j = 0u; j < 32u; j++) { y[j] = centre(min(c + j, p.cn - 1u), p.cn); }
  var a: array<array<vec4f, 8>, 16>;
  var b: array<vec4f, 32>;
  for (var k = 0u; k < d4; k++) {
    let u = centre(k, d4);
    for (var j = 0u; j < 32u; j++) { b[j] = fetch(tw, u, y[j]); }
    a[0] = dots32(a[0], fetch(th, u, x[0]), &b);
    a[1] = dots32(a[1], fetch(th, u, x[1]), &b);
    a[2] = dots32(a[2], fetch(th, u, x[2]), &b);
    a[3] = dots32(a[3], fetch(th, u, x[3]), &b);
    a[4] = dots32(a[4], fetch(th, u, x[4]), &b);
    a[5] = dots32(a[5], fetch(th, u, x[5]), &b);
    a[6] = dots32(a[6], fetch(th, u, x[6]), &b);
    a[7] = dots32(a[7], fetch(th, u, x[7]), &b);
    a[8] = dots32(a[8], fetch(th, u, x[8]), &b);
    a[9] = dots32(a[9], fetch(th, u, x[9]), &b);
    a[10] = dots32(a[10], fetch(th, u, x[10]), &b);
    a[11] = dots32(a[11], fetch(th, u, x[11]), &b);
    a[12] = dots32(a[12], fetch(th, u, x[12]), &b);
    a[13] = dots32(a[13], fetch(th, u, x[13]), &b);
    a[14] = dots32(a[14], fetch(th, u, x[14]), &b);
    a[15] = dots32(a[15], fetch(th, u, x[15]), &b);
  }
  return a;
}

// A 32-column row's two partial states (the second where it has ids), and its stores.
fn greedy_row32(r: u32, c: u32, a: array<vec4f, 8>) {
  greedy_row(r, c, array<vec4f, 4>(a[0], a[1], a[2], a[3]));
  if (c + 16u < p.cn) { greedy_row(r, c + 16u, array<vec4f, 4>(a[4], a[5], a[6], a[7])); }
}

fn stats_row32(r: u32, c: u32, a: array<vec4f, 8>) {
  store16(r, c, array<vec4f, 4>(a[0], a[1], a[2], a[3]));
  store16(r, c + 16u, array<vec4f, 4>(a[4], a[5], a[6], a[7]));
  greedy_row32(r, c, a);
}

@compute @workgroup_size(WG)
fn logits16x32_greedy_tex(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 32u;
  let g = gid.y * 16u;
  if (c >= p.cn || g >= p.rows) { return; }
  let a = block32t(g, c);
  greedy_row32(g + 0u, c, a[0]);
  greedy_row32(g + 1u, c, a[1]);
  greedy_row32(g + 2u, c, a[2]);
  greedy_row32(g + 3u, c, a[3]);
  greedy_row32(g + 4u, c, a[4]);
  greedy_row32(g + 5u, c, a[5]);
  greedy_row32(g + 6u, c, a[6]);
  greedy_row32(g + 7u, c, a[7]);
  greedy_row32(g + 8u, c, a[8]);
  greedy_row32(g + 9u, c, a[9]);
  greedy_row32(g + 10u, c, a[10]);
  greedy_row32(g + 11u, c, a[11]);
  greedy_row32(g + 12u, c, a[12]);
  greedy_row32(g + 13u, c, a[13]);
  greedy_row32(g + 14u, c, a[14]);
  greedy_row32(g + 15u, c, a[15]);
}

@compute @workgroup_size(WG)
fn logits16x32_stats_tex(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x * 32u;
  let g = gid.y * 16u;
  if (c >= p.cn || g >= p.rows) { return; }
  let a = block32t(g, c);
  stats_row32(g + 0u, c, a[0]);
  stats_row32(g + 1u, c, a[1]);
  stats_row32(g + 2u, c, a[2]);
  stats_row32(g + 3u, c, a[3]);
  stats_row32(g + 4u, c, a[4]);
  stats_row32(g + 5u, c, a[5]);
  stats_row32(g + 6u, c, a[6]);
  stats_row32(g + 7u, c, a[7]);
  stats_row32(g + 8u, c, a[8]);
  stats_row32(g + 9u, c, a[9]);
  stats_row32(g + 10u, c, a[10]);
  stats_row32(g + 11u, c, a[11]);
  stats_row32(g + 12u, c, a[12]);
  stats_row32(g + 13u, c, a[13]);
  stats_row32(g + 14u, c, a[14]);
  stats_row32(g + 15u, c, a[15]);
}

// One invocation per group row and block of 16 ids of the stored logits (x * y over 65535).
@compute @workgroup_size(WG)
fn greedy_part16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let nb = (p.vl + 15u) / 16u;
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * nb) { return; }
  let r = i / nb;
  let id0 = (i % nb) * 16u;
  var acc: array<vec4f, 4>;
  for (var j = 0u; j < 4u; j++) {
    let id = min(vec4u(id0 + 4u * j) + vec4u(0u, 1u, 2u, 3u), vec4u(p.vl - 1u)) + vec4u(r * p.vl);
    acc[j] = vec4f(z[id.x], z[id.y], z[id.z], z[id.w]);
  }
  gp_out[i] = greedy_partial(id0, min(16u, p.vl - id0), acc);
}

// One invocation per group row: stats [rows] of vec4f (m = the largest logit, lse, the lowest
// id holding m (as f32 bits), 0); at temperature 0 also the token (that id) and its logp.
@compute @workgroup_size(WG)
fn row_stats(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  let nb = (p.vl + 15u) / 16u;
  let base = r * nb;
  let st = gp_in[base];
  var m = st.x;
  var mi = bitcast<u32>(st.y);
  var sum = st.z;
  for (var b = 1u; b < nb; b++) {
    let q = gp_in[base + b];
    if (q.x > m) {
      sum = sum * exp(m - q.x) + q.z;
      m = q.x;
      mi = bitcast<u32>(q.y);
    } else {
      sum += q.z * exp(q.x - m);
    }
  }
  let lse = m + log(sum);
  stats_out[r] = vec4f(m, lse, bitcast<f32>(mi), 0.0);
  if (p.temperature == 0.0) {
    tokens[p.row0 + r] = mi;
    logp[p.row0 + r] = m - lse;
  }
}

// ------------------------------------------------------------------------- sample

var<workgroup> part_f: array<f32, WG>;
var<workgroup> bc_f: f32;
var<workgroup> bc_u: u32;
var<workgroup> part_nu: array<u32, NP * WG>;
var<workgroup> part_nf: array<f32, NP * WG>;
var<workgroup> bc_nu: array<u32, NP>;
var<workgroup> bc_nf: array<f32, NP>;

// Order-preserving map of fp32 to u32: a < b as floats <=> key(a) < key(b) (-0 < +0).
fn key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

// Chris Wellons' lowbias32 integer hash (a bijection on u32).
fn lowbias32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// Uniform in [0, 1) with 24 bits, from (seed, counter, row) only.
fn uniform01(seed: u32, counter: u32, row: u32) -> f32 {
  var h = lowbias32(seed ^ 0x9e3779b9u);
  h = lowbias32(h ^ counter);
  h = lowbias32(h ^ row);
  h = lowbias32(h + 0x6a09e667u);
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

// Sum over lanes in lane order; every lane calls it and gets the same (uniform) value.
fn sum_f(lid: u32, v: f32) -> f32 {
  part_f[lid] = v;
  workgroupBarrier();
  if (lid == 0u) {
    var s = 0.0;
    for (var i = 0u; i < WG; i++) { s += part_f[i]; }
    bc_f = s;
  }
  return workgroupUniformLoad(&bc_f);
}

// The draw among the lanes' masses s, in lane order: with u = uniform(seed, counter, rkey),
// the first lane whose running mass exceeds u * total, else the last lane with mass. Leaves
// that lane in bc_u and the target left inside it in bc_f; every lane calls it.
fn choose_lane(lid: u32, s: f32, rkey: u32) {
  part_f[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var i = 0u; i < WG; i++) { total += part_f[i]; }
    let goal = uniform01(p.seed, p.counter, rkey) * total;
    var cum = 0.0;
    var lane = 0u;
    var pre = 0.0;
    for (var i = 0u; i < WG; i++) {
      let si = part_f[i];
      if (si > 0.0) {
        lane = i;
        pre = cum;
        if (cum + si > goal) { break; }
      }
      cum += si;
    }
    bc_u = lane;
    bc_f = goal - pre;
  }
  workgroupBarrier();
}

// Sum of exp((z - m) * inv_t) over this lane's ids with key(z) >= t, ascending.
fn mass_ge(base: u32, lo: u32, hi: u32, t: u32, m: f32, inv_t: f32) -> f32 {
  var s = 0.0;
  for (var v = lo; v < hi; v++) {
    let x = z[base + v];
    if (key(x) >= t) { s += exp((x - m) * inv_t); }
  }
  return s;
}

// One round of the 16-way search: the pivots are q_j = a + (j + 1) * step, j < NP (those >= b
// are ignored), in an order that does not matter (counts, or sums that only need to be
// reproducible). Returns per pivot the count (round_counts) or the mass (round_masses) of the
// ids with key >= q_j; every lane gets the same values.
//
// Both visit blocks of 16 ids (lane l blocks l, l + WG, ...) and skip a block whose largest
// logit (its partial state in gp) is under the lowest pivot: none of its ids can count, and
// once a top-k search nears the k-th largest logit only about k blocks are left to read.
fn round_counts(lid: u32, base: u32, gbase: u32, a: u32, step: u32) -> array<u32, NP> {
  var c: array<u32, NP>;
  let q0 = a + step;
  let nb = (p.vl + 15u) / 16u;
  for (var bk = lid; bk < nb; bk += WG) {
    if (key(gp_in[gbase + bk].x) < q0) { continue; }
    let v1 = min(bk * 16u + 16u, p.vl);
    for (var v = bk * 16u; v < v1; v++) {
      let k = key(z[base + v]);
      if (k >= q0) {
        for (var j = 0u; j < NP; j++) { c[j] += select(0u, 1u, k >= a + (j + 1u) * step); }
      }
    }
  }
  return total_counts(lid, c);
}

// The lanes' counts c summed per pivot; every lane calls it and gets the totals.
fn total_counts(lid: u32, c: array<u32, NP>) -> array<u32, NP> {
  for (var j = 0u; j < NP; j++) { part_nu[j * WG + lid] = c[j]; }
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 0u; j < NP; j++) {
      var s = 0u;
      for (var i = 0u; i < WG; i++) { s += part_nu[j * WG + i]; }
      bc_nu[j] = s;
    }
  }
  return workgroupUniformLoad(&bc_nu);
}

// A round over the blocks' largest logits: per pivot, the count of blocks whose max has key >=
// q_j.
fn round_block_counts(lid: u32, gbase: u32, a: u32, step: u32) -> array<u32, NP> {
  var c: array<u32, NP>;
  let nb = (p.vl + 15u) / 16u;
  for (var bk = lid; bk < nb; bk += WG) {
    let k = key(gp_in[gbase + bk].x);
    for (var j = 0u; j < NP; j++) { c[j] += select(0u, 1u, k >= a + (j + 1u) * step); }
  }
  return total_counts(lid, c);
}

fn round_masses(lid: u32, base: u32, gbase: u32, a: u32, step: u32, m: f32, inv_t: f32)
    -> array<f32, NP> {
  var c: array<f32, NP>;
  let q0 = a + step;
  let nb = (p.vl + 15u) / 16u;
  for (var bk = lid; bk < nb; bk += WG) {
    if (key(gp_in[gbase + bk].x) < q0) { continue; }
    let v1 = min(bk * 16u + 16u, p.vl);
    for (var v = bk * 16u; v < v1; v++) {
      let x = z[base + v];
      let k = key(x);
      if (k >= q0) {
        let e = exp((x - m) * inv_t);
        for (var j = 0u; j < NP; j++) { c[j] += select(0.0, e, k >= a + (j + 1u) * step); }
      }
    }
  }
  for (var j = 0u; j < NP; j++) { part_nf[j * WG + lid] = c[j]; }
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 0u; j < NP; j++) {
      var s = 0.0;
      for (var i = 0u; i < WG; i++) { s += part_nf[j * WG + i]; }
      bc_nf[j] = s;
    }
  }
  return workgroupUniformLoad(&bc_nf);
}

// The RNG key of each row: its index, or a key the caller keeps with the row (generation drops
// finished rows, and the others keep drawing as they would have).
@group(0) @binding(9) var<storage, read> row_keys: array<u32>;

// The sample pass in three entries, each a workgroup per group row (x * y over 65535), so that
// each filter compiles on its own (on llvmpipe the top-k and top-p searches in one pipeline took
// about 18 s to compile, each alone 3-5 s): sample_topk and sample_topp leave their threshold
// key in stats.w (row_stats leaves 0, which keeps every id), sample draws above it.

// One round's verdicts on its pivots q_j = a + (j + 1) * step (those at or past b ignored): the
// highest whose count (narrow_u) or mass (narrow_f) reaches `want` is the new a, the lowest that
// does not the new b; returns (a, b).
fn narrow_u(a: u32, b: u32, step: u32, n: array<u32, NP>, want: u32) -> vec2u {
  var na = a;
  var nb = b;
  for (var j = 0u; j < NP; j++) {
    let q = a + (j + 1u) * step;
    if (q < b) {
      if (n[j] >= want) { na = q; } else { nb = min(nb, q); }
    }
  }
  return vec2u(na, nb);
}

fn narrow_f(a: u32, b: u32, step: u32, s: array<f32, NP>, want: f32) -> vec2u {
  var na = a;
  var nb = b;
  for (var j = 0u; j < NP; j++) {
    let q = a + (j + 1u) * step;
    if (q < b) {
      if (s[j] >= want) { na = q; } else { nb = min(nb, q); }
    }
  }
  return vec2u(na, nb);
}

// 3. top-k threshold: the largest key a with count(key >= a) >= k (count(key >= 0) = vl >= k),
// p.topk in (0, vl). Search invariant: pred(a) true, pred(b) false; each round cuts [a, b)
// 16-fold.
@compute @workgroup_size(WG)
fn sample_topk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.rows) { return; }
  let base = g * p.vl;
  let nb = (p.vl + 15u) / 16u;
  let gbase = g * nb;
  let st = stats_out[g];
  let top = key(st.x) + 1u;
  var a = 0u;
  // With k blocks or more, start from the k-th largest block maximum: at least k ids reach it
  // (the same search over the blocks' maxima, a sixteenth of the reads a round).
  if (p.topk <= nb) {
    var b = top;
    loop {
      if (b - a <= 1u) { break; }
      let step = max((b - a) / (NP + 1u), 1u);
      let r = narrow_u(a, b, step, round_block_counts(lid, gbase, a, step), p.topk);
      a = r.x;
      b = r.y;
    }
  }
  var b = top;
  loop {
    if (b - a <= 1u) { break; }
    let step = max((b - a) / (NP + 1u), 1u);
    let r = narrow_u(a, b, step, round_counts(lid, base, gbase, a, step), p.topk);
    a = r.x;
    b = r.y;
  }
  if (lid == 0u) { stats_out[g].w = bitcast<f32>(a); }
}

// 4. top-p threshold: the largest key a >= tk (stats.w) with mass(key >= a) >= p *
// mass(key >= tk), p.topp < 1.
@compute @workgroup_size(WG)
fn sample_topp(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.rows) { return; }
  let base = g * p.vl;
  let blk = (p.vl + WG - 1u) / WG;
  let lo = min(lid * blk, p.vl);
  let hi = min(lo + blk, p.vl);
  let st = stats_out[g];
  let m = st.x;
  let inv_t = 1.0 / p.temperature;
  let tk = bitcast<u32>(st.w);
  let gbase = g * ((p.vl + 15u) / 16u);
  let want = p.topp * sum_f(lid, mass_ge(base, lo, hi, tk, m, inv_t));
  var a = tk;
  var b = key(m) + 1u;
  loop {
    if (b - a <= 1u) { break; }
    let step = max((b - a) / (NP + 1u), 1u);
    let r = narrow_f(a, b, step, round_masses(lid, base, gbase, a, step, m, inv_t), want);
    a = r.x;
    b = r.y;
  }
  if (lid == 0u) { stats_out[g].w = bitcast<f32>(a); }
}

// 5. inverse-CDF draw over the ids whose key is at least stats.w, in ascending order.
@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.rows) { return; }
  let rkey = row_keys[p.row0 + g];
  let row = p.row0 + g;
  let base = g * p.vl;
  let blk = (p.vl + WG - 1u) / WG;
  let lo = min(lid * blk, p.vl);
  let hi = min(lo + blk, p.vl);
  // m = max z and lse from row_stats (the same bits as greedy decoding's).
  let st = stats_in[g];
  let m = st.x;
  let lse = st.y;
  let t = bitcast<u32>(st.w);
  let inv_t = 1.0 / p.temperature;
  choose_lane(lid, mass_ge(base, lo, hi, t, m, inv_t), rkey);
  if (lid == bc_u) {
    let local_target = bc_f;
    var cum = 0.0;
    var tok = lo;
    for (var v = lo; v < hi; v++) {
      let x = z[base + v];
      if (key(x) >= t) {
        tok = v;
        cum += exp((x - m) * inv_t);
        if (cum > local_target) { break; }
      }
    }
    tokens[row] = tok;
    logp[row] = z[base + tok] - lse;
  }
}

// ------------------------------------------------------------------------- draw
//
// Temperature > 0 without top-k or top-p needs no pass over the logits: with DRAW the partial
// states carry w_b = sum exp((z - max_b) / T) over their 16 ids, so block b holds the mass
// exp((max_b - m) / T) * w_b of the row's weights (m from row_stats). draw (one workgroup per
// group row) walks the blocks in id order as the sample pass walks ids (lane l owns blocks
// [l * bb, (l + 1) * bb), lane 0 sums the lanes in order) to the block where the running mass
// passes u * total, u = uniform(seed, counter, key) as in sample, and writes choice [rows] of
// vec4f (the block (as f32 bits), the target left inside it in units of exp((z - max_b) / T),
// max_b, 0). pick_w (per vocabulary chunk, the block's 16 logits recomputed from hidden and
// the head as every logits layout computes them, so the logits16x16 pass need not store any)
// or pick_z (the stored logits) walks the block's ids to the token: the first whose running
// mass passes the target, else the last with mass (fp32 rounding). logp = z - lse as always.
// The draw differs from the sample pass's only in fp32 rounding of the running sums.
//   bindings: draw 0 P, 7 gp (read), 8 stats (read), 9 row_keys, 10 choice (rw); pick_w 0 P,
//   1 hidden, 2 wc, 4 tokens, 5 logp, 8 stats, 10 choice (read); pick_z 0 P, 3 z, 4, 5, 8, 10.

@group(0) @binding(10) var<storage, read_write> choice_out: array<vec4f>;
@group(0) @binding(10) var<storage, read> choice_in: array<vec4f>;

// x * y: rows of the group (2-D over 65535).
@compute @workgroup_size(WG)
fn draw(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.rows) { return; }
  draw_row(g, row_keys[p.row0 + g], lid);
}

fn draw_row(g: u32, rkey: u32, lid: u32) {
  let nb = (p.vl + 15u) / 16u;
  let base = g * nb;
  let bb = (nb + WG - 1u) / WG;
  let lo = min(lid * bb, nb);
  let hi = min(lo + bb, nb);
  let m = stats_in[g].x;
  let inv_t = 1.0 / p.temperature;
  var s = 0.0;
  for (var b = lo; b < hi; b++) {
    let q = gp_in[base + b];
    s += exp((q.x - m) * inv_t) * q.w;
  }
  choose_lane(lid, s, rkey);
  if (lid == bc_u) {
    let goal = bc_f;
    var cum = 0.0;
    var blk = lo;
    var left = 0.0;
    for (var b = lo; b < hi; b++) {
      let q = gp_in[base + b];
      let scale = exp((q.x - m) * inv_t);
      let mb = scale * q.w;
      if (mb > 0.0) {
        blk = b;
        left = (goal - cum) / scale;
        if (cum + mb > goal) { break; }
      }
      cum += mb;
    }
    choice_out[g] = vec4f(bitcast<f32>(blk), left, gp_in[base + blk].x, 0.0);
  }
}

// Group row g's token from its chosen block: zs holds the block's logits (ids 16b ..).
fn pick_row(g: u32, zs: array<vec4f, 4>) {
  let ch = choice_in[g];
  let id0 = bitcast<u32>(ch.x) * 16u;
  let n = min(16u, p.vl - id0);
  let inv_t = 1.0 / p.temperature;
  var cum = 0.0;
  var tok = 0u;
  var zt = 0.0;
  for (var i = 0u; i < n; i++) {
    let x = zs[i / 4u][i % 4u];
    let e = exp((x - ch.z) * inv_t);
    if (e > 0.0) {
      tok = i;
      zt = x;
      cum += e;
      if (cum > ch.y) { break; }
    }
  }
  tokens[p.row0 + g] = id0 + tok;
  logp[p.row0 + g] = zt - stats_in[g].y;
}

// One invocation per group row, for the rows whose block lies in this chunk (c0 and cn
// multiples of 16, or the chunk the vocabulary's end); needs d % 4 == 0.
@compute @workgroup_size(WG)
fn pick_w(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.rows) { return; }
  let id0 = bitcast<u32>(choice_in[g].x) * 16u;
  if (id0 < p.c0 || id0 >= p.c0 + p.cn) { return; }
  let d4 = p.d / 4u;
  let x = (p.row0 + g) * d4;
  var zs: array<vec4f, 4>;
  for (var i = 0u; i < 16u; i++) {
    let y = (min(id0 + i, p.c0 + p.cn - 1u) - p.c0) * d4;
    var s = 0.0;
    for (var k = 0u; k < d4; k++) { s += dot(h4[x + k], w4[y + k]); }
    zs[i / 4u][i % 4u] = s;
  }
  pick_row(g, zs);
}

@compute @workgroup_size(WG)
fn pick_z(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = gid.x + gid.y * nwg.x * WG;
  if (g >= p.rows) { return; }
  let id0 = bitcast<u32>(choice_in[g].x) * 16u;
  var zs: array<vec4f, 4>;
  for (var i = 0u; i < 16u; i++) { zs[i / 4u][i % 4u] = z[g * p.vl + min(id0 + i, p.vl - 1u)]; }
  pick_row(g, zs);
}
