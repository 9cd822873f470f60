// vocab_head.wgsl: the softmax side of the fused LM head + log-softmax (engine/vocab_head.ts).
// The logits of one vocabulary chunk, s [N, C] = hidden [N, d] x W[v0 : v0 + C]^T, come from
// gemm.wgsl into a scratch buffer; these kernels fold each chunk into per-row running state, so
// no [N, V] tensor ever exists.
//
// state [N] of vec4f: (m = running max, s = sum exp(z - m), e = sum exp(z - m) * (z - m), t =
// target logit). e sums terms of one sign (z - m <= 0), so the entropy log(s) - e / s is the
// sum of two non-negative parts: no cancellation, where a sum of exp(z - m) * z over logits of
// both signs lost up to 4e-4 of it at d = 128. Entry points:
//   fold     one invocation per row: online max / sum-exp / entropy sum over the chunk's C
//            logits in increasing id order, picks up the target's logit. Bindings: 0 P,
//            1 s, 2 targets, 3 state.
//   finish   lse = m + log(s); logp = t - lse (0 without a target); entropy = log(s) - e / s.
//            Bindings: 0 P, 2 targets, 3 state, 4 logp, 5 lse, 6 entropy.
//   dlogits  in place on the recomputed chunk: s[n, j] = dlogp[n] * (1[v0 + j = target] -
//            exp(s - lse[n])), 0 for rows without a target. One invocation per element.
//            Bindings: 0 P, 1 s (read_write as s_rw), 2 targets, 5 lse (read), 7 dlogp.
// Targets equal to 0xFFFFFFFF mean "no target" (the last token of each sequence).
// Deterministic: every reduction runs in a fixed order inside one invocation.

struct P {
  n: u32,      // rows
  c: u32,      // logits in this chunk
  v0: u32,     // first vocabulary id of the chunk
  first: u32,  // 1 for the first chunk (state is initialised)
}

const NO_TARGET: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(1) var<storage, read_write> s_rw: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> state: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> logp: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(5) var<storage, read> lse_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(7) var<storage, read> dlogp: array<f32>;

@compute @workgroup_size(64)
fn fold(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.n) { return; }
  var st = vec4f(-3.0e38, 0.0, 0.0, 0.0);
  if (p.first == 0u) { st = state[row]; }
  var m = st.x;
  var sum = st.y;
  var e = st.z;
  let base = row * p.c;
  // Chunk max first, so each element costs one exp.
  var cm = -3.0e38;
  for (var j = 0u; j < p.c; j++) { cm = max(cm, s[base + j]); }
  if (cm > m) {
    // Re-centre on the new max: sum w (z - cm) = r (e + (m - cm) sum), both terms <= 0.
    let r = exp(m - cm);
    e = r * (e + (m - cm) * sum);
    sum *= r;
    m = cm;
  }
  for (var j = 0u; j < p.c; j++) {
    let zm = s[base + j] - m;
    let w = exp(zm);
    sum += w;
    e += w * zm;
  }
  var t = st.w;
  let tg = targets[row];
  if (tg != NO_TARGET && tg >= p.v0 && tg < p.v0 + p.c) { t = s[base + tg - p.v0]; }
  state[row] = vec4f(m, sum, e, t);
}

@compute @workgroup_size(64)
fn finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.n) { return; }
  let st = state[row];
  let l = st.x + log(st.y);
  lse_out[row] = l;
  if (targets[row] == NO_TARGET) { logp[row] = 0.0; } else { logp[row] = st.w - l; }
  entropy[row] = log(st.y) - st.z / st.y;
}

@compute @workgroup_size(64)
fn dlogits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n * p.c) { return; }
  let row = i / p.c;
  let j = i % p.c;
  let tg = targets[row];
  if (tg == NO_TARGET) { s_rw[i] = 0.0; return; }
  var onehot = 0.0;
  if (tg == p.v0 + j) { onehot = 1.0; }
  s_rw[i] = dlogp[row] * (onehot - exp(s_rw[i] - lse_in[row]));
}
