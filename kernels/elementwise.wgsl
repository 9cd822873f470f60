// elementwise.wgsl: small vector helpers used between the big kernels.
//
// Entry points (all over n elements, one element per invocation, 256 per workgroup; the
// workgroup grid may be 2-D when n/256 exceeds 65535: linear id = wid.x + wid.y * nwg.x):
//   add     out = a + b                 bindings: 0 P, 1 a, 2 b, 3 out
//   axpy    out += alpha * a            bindings: 0 P, 1 a, 3 out
//   scale   out = alpha * a             bindings: 0 P, 1 a, 3 out
//   fill    out = alpha                 bindings: 0 P, 3 out
// P = { n: u32, alpha: f32 }.
// Variants: none. These are bandwidth-bound; one element per invocation is as fast as
// four on llvmpipe and keeps every size exact without a tail loop.

struct P {
  n: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
       @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(256)
fn axpy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) { out[i] = out[i] + p.alpha * a[i]; }
}

@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
         @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) { out[i] = p.alpha * a[i]; }
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i < p.n) { out[i] = p.alpha; }
}
