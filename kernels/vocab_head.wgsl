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
// max, the target's logit if among the 16 else 0), then merged into state in increasing id
// order. Entry points:
//   part16   one invocation per row and 16 logits of the stored chunk: its partial state (the
//            arithmetic of gemm.wgsl's fold_row, which makes the same partials straight from
//            the product's registers on llvmpipe, so both give the same bits).
//            Bindings: 0 P, 1 s, 2 targets, 8 parts (read_write).
//   merge    one invocation per row: folds the row's nb partials into state (initialised on
//            the first chunk). Bindings: 0 P, 2 targets, 3 state, 9 parts (read).
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
@group(0) @binding(8) var<storage, read_write> parts_out: array<vec4f>;
@group(0) @binding(9) var<storage, read> parts_in: array<vec4f>;

@compute @workgroup_size(64)
fn part16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let nb = (p.c + 15u) / 16u;
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n * nb) { return; }
  let row = i / nb;
  let col0 = (i % nb) * 16u;
  let base = row * p.c;
  let tg = vec4u(targets[row]);
  var z: array<vec4f, 4>;
  var t = 0.0;
  for (var j = 0u; j < 4u; j++) {
    let col = vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u);
    let inside = col < vec4u(p.c);
    let cl = min(col, vec4u(p.c - 1u)) + vec4u(base);
    let v = vec4f(s[cl.x], s[cl.y], s[cl.z], s[cl.w]);
    z[j] = select(vec4f(-3.0e38), v, inside);
    let hit = select(vec4f(0.0), v, inside & (col + vec4u(p.v0) == tg));
    t += (hit.x + hit.y) + (hit.z + hit.w);
  }
  let m4 = max(max(z[0], z[1]), max(z[2], z[3]));
  let mx = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var s4 = vec4f(0.0);
  var e4 = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    // Columns past the end weigh exactly 0 (and add 0 to e).
    let inside = vec4u(col0 + 4u * j) + vec4u(0u, 1u, 2u, 3u) < vec4u(p.c);
    let zm = select(vec4f(0.0), z[j] - vec4f(mx), inside);
    let w = select(vec4f(0.0), exp(zm), inside);
    s4 += w;
    e4 += w * zm;
  }
  parts_out[i] = vec4f(mx, (s4.x + s4.y) + (s4.z + s4.w), (e4.x + e4.y) + (e4.z + e4.w), t);
}

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
