// fma_ceiling.wgsl: a benchmark yardstick, not a kernel the engine uses. It does the
// multiply-adds of an [M, K] x [K, N] product (M N K of them) with every operand already in
// registers: each invocation keeps an 8 x 4 block of accumulators (as gemm.wgsl's blocks do)
// and updates it K times with fma, loading nothing. Its rate is what the adapter can reach for
// this amount of arithmetic at best; a matmul's rate over it says how much its loads cost.
// The host passes one = 1.0 (a uniform, so the compiler cannot fold the fma): every output is then
// exactly (row % 8) + K, which the test checks, so the K steps cannot have been skipped.
// Bindings: 0 P (m, n, k, one), 1 out [M, N].

struct P {
  m: u32,
  n: u32,
  k: u32,
  one: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn fma_ceiling(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let col0 = gid.x * 4u;
  let row0 = wid.y * 8u;
  let b = vec4f(p.one);
  var acc: array<vec4f, 8>;
  for (var i = 0u; i < 8u; i++) { acc[i] = vec4f(f32(i)); }
  for (var kk = 0u; kk < p.k; kk++) {
    for (var i = 0u; i < 8u; i++) { acc[i] = fma(acc[i], b, b); }
  }
  for (var i = 0u; i < 8u; i++) {
    let r = row0 + i;
    if (r >= p.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.n) { out[r * p.n + col0 + j] = acc[i][j]; }
    }
  }
}
