// vocab_head.wgsl: the softmax side of the fused LM head + log-softmax (engine/vocab_head.ts).
// The logits of one vocabulary chunk, s [N, C] = hidden [N, d] x W[v0 : v0 + C]^T, come from
// gemm.wgsl into a scratch buffer (or, with gemm_nt16_fold on llvmpipe, straight into partial
// states); these kernels fold each chunk into per-row running state, so no [N, V] tensor ever
// exists.
//
// state [N] of vec4f: (m = running max, s = sum exp(z - m), e = sum exp(z - m) * (z - m), t =
// target logit). e sums terms of one sign (z - m <= 0), so the entropy log(s) - e / s is the
// sum of two non-negative parts: no cancellation, where a sum of exp(z - m) * z over logits of
// both signs lost up to 4e-4 of it at d = 128. A chunk is folded in two steps: partial states
// of 16 logits each, parts [N, nb = ceil(C / 16)] of vec4f (max, sum, e sum relative to that
// max, the target's logit if among the 16 else 0), made by gemm.wgsl (gemm_nt16_fold from the
// product's registers, fold_part16 from stored logits), then merged into state in increasing
// id order. Entry points:
//   merge    one invocation per row: folds the row's nb partials into state (initialised on
//            the first chunk). Bindings: 0 P, 2 targets, 3 state, 9 parts (read).
//   finish   lse = m + log(s); logp = t - lse (0 without a target); entropy = log(s) - e / s.
//            Bindings: 0 P, 2 targets, 3 state, 4 logp, 5 lse, 6 entropy.
// The backward's dlogits come from gemm.wgsl too (gemm_nt16_dlogits, dlogits16).
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
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> state: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> logp: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> entropy: array<f32>;
@group(0) @binding(9) var<storage, read> parts_in: array<vec4f>;

@compute @workgroup_size(64)
fn merge(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.n) { return; }
  let nb = (p.c + 15u) / 16u;
  let base = row * nb;
  // The first chunk starts from its first partial (t is picked up below).
  var st = vec4f(parts_in[base].xyz, 0.0);
  var b0 = 1u;
  if (p.first == 0u) {
    st = state[row];
    b0 = 0u;
  }
  var m = st.x;
  var sum = st.y;
  var e = st.z;
  for (var b = b0; b < nb; b++) {
    let q = parts_in[base + b];
    if (q.x > m) {
      // Re-centre on the new max: sum w (z - q.x) = r (e + (m - q.x) sum), both terms <= 0.
      let r = exp(m - q.x);
      e = r * (e + (m - q.x) * sum) + q.z;
      sum = r * sum + q.y;
      m = q.x;
    } else {
      let r = exp(q.x - m);
      e += r * (q.z + (q.x - m) * q.y);
      sum += r * q.y;
    }
  }
  var t = st.w;
  let tg = targets[row];
  if (tg != NO_TARGET && tg >= p.v0 && tg < p.v0 + p.c) { t = parts_in[base + (tg - p.v0) / 16u].w; }
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
