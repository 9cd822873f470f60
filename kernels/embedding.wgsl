// embedding.wgsl: token embedding gather and its deterministic scatter-add backward, bound one
// vocabulary chunk of W at a time (the [151936, 896] fp32 matrix is 544 MB, over one 128 MiB
// storage binding). W [V, d] is bound as rows [start, start + count) = w_chunk [count, d].
//
//   gather[4] out[t, :] = W[ids[t], :] for the tokens whose id falls in this chunk; on the pass
//             with first = 1, tokens whose id is >= vocab get a row of zeros (ids that stayed on
//             the GPU cannot be checked by the wrapper). One workgroup of 64 lanes per token
//             (linear workgroup id = wid.x + wid.y * nwg.x); a token outside the chunk leaves at
//             once, so a pass costs one id read per token plus the rows it copies.
//             bindings: 0 G, 1 ids [n] u32, 2 w_chunk (read), 3 out [n, d] (rw)
//   scatter[4] dW[v, :] += sum over the tokens t with ids[t] == v, in increasing t, of dout[t, :].
//             The wrapper sorts the token indices by id on the CPU (stable) and uploads
//             meta = [uniq ids (S) | segment starts (S + 1) | permutation (n)]; one workgroup per
//             distinct id of the chunk sums its segment's rows in order into a register, then
//             adds the sum to dW once. No atomics, so the result is bit-reproducible.
//             bindings: 0 S, 1 meta u32, 4 dout [n, d] (read), 5 dw_chunk [count, d] (rw)
// G = { n: u32, d: u32, start: u32, count: u32, first: u32, vocab: u32 }
// S = { d: u32, seg0: u32 (first segment of the chunk), nseg: u32, start: u32,
//       nuniq: u32 (S, the offset of the segment starts in meta) }
// Variants: gather4 and scatter4 are the same with vec4 loads along the row (d % 4 == 0, as
// for every Qwen2 hidden size; the wrapper picks them then). On llvmpipe, gathering 512 rows of
// 896 from one chunk took 0.5-0.8 ms against 1.3-1.7 ms for the scalar entry; one invocation per
// (token, vec4) instead of a workgroup per token took 1.0 ms.

const WG: u32 = 64u;

struct G {
  n: u32,
  d: u32,
  start: u32,
  count: u32,
  first: u32,
  vocab: u32,
}

struct S {
  d: u32,
  seg0: u32,
  nseg: u32,
  start: u32,
  nuniq: u32,
}

@group(0) @binding(0) var<uniform> gp: G;
@group(0) @binding(0) var<uniform> sp: S;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dw: array<f32>;
@group(0) @binding(2) var<storage, read> w4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(4) var<storage, read> dout4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> dw4: array<vec4f>;

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
          @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= gp.n) { return; }
  let id = ids[t];
  let dst = t * gp.d;
  if (id >= gp.start && id - gp.start < gp.count) {
    let src = (id - gp.start) * gp.d;
    for (var j = lid; j < gp.d; j += WG) {
      out[dst + j] = w[src + j];
    }
  } else if (gp.first != 0u && id >= gp.vocab) {
    for (var j = lid; j < gp.d; j += WG) {
      out[dst + j] = 0.0;
    }
  }
}

@compute @workgroup_size(WG)
fn scatter(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let s = wid.x + wid.y * nwg.x;
  if (s >= sp.nseg) { return; }
  let seg = sp.seg0 + s;
  let row = (ids[seg] - sp.start) * sp.d;
  let t0 = ids[sp.nuniq + seg];
  let t1 = ids[sp.nuniq + seg + 1u];
  let perm = 2u * sp.nuniq + 1u;
  for (var j = lid; j < sp.d; j += WG) {
    var acc = 0.0;
    for (var k = t0; k < t1; k++) {
      acc += dout[ids[perm + k] * sp.d + j];
    }
    dw[row + j] = dw[row + j] + acc;
  }
}

@compute @workgroup_size(WG)
fn gather4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * nwg.x;
  if (t >= gp.n) { return; }
  let id = ids[t];
  let d4 = gp.d / 4u;
  let dst = t * d4;
  if (id >= gp.start && id - gp.start < gp.count) {
    let src = (id - gp.start) * d4;
    for (var j = lid; j < d4; j += WG) {
      out4[dst + j] = w4[src + j];
    }
  } else if (gp.first != 0u && id >= gp.vocab) {
    for (var j = lid; j < d4; j += WG) {
      out4[dst + j] = vec4f(0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn scatter4(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let s = wid.x + wid.y * nwg.x;
  if (s >= sp.nseg) { return; }
  let d4 = sp.d / 4u;
  let seg = sp.seg0 + s;
  let row = (ids[seg] - sp.start) * d4;
  let t0 = ids[sp.nuniq + seg];
  let t1 = ids[sp.nuniq + seg + 1u];
  let perm = 2u * sp.nuniq + 1u;
  for (var j = lid; j < d4; j += WG) {
    var acc = vec4f(0.0);
    for (var k = t0; k < t1; k++) {
      acc += dout4[ids[perm + k] * d4 + j];
    }
    dw4[row + j] = dw4[row + j] + acc;
  }
}
