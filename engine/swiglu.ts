/**
 * Dispatch wrappers for kernels/swiglu.wgsl: h = silu(g) * u for the gate and up projections
 * g, u [N, I], and the backward to dg, du. CPU references are in engine/swiglu_ref.ts.
 */
import { type Device, params } from "./device.ts";
import { formatShape, type Tensor } from "./tensor.ts";

const WG = 256;

function checkSame(op: string, ref: Tensor, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.size !== ref.size) {
      throw new RangeError(
        `${op}: ${t.name} ${formatShape(t.shape)} does not match ${ref.name} ${
          formatShape(ref.shape)
        }`,
      );
    }
  }
  const all = [ref, ...ts];
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      if (all[i].buffer === all[j].buffer) {
        throw new RangeError(`${op}: ${all[i].name} and ${all[j].name} share a buffer`);
      }
    }
  }
}

/** vec4 entries when the element count allows, else one element per invocation. */
function layout(dev: Device, entry: string, n: number) {
  const vec = n % 4 === 0;
  const count = vec ? n / 4 : n;
  return {
    kernel: dev.kernel("swiglu", vec ? `${entry}4` : entry),
    p: params().u32(count),
    grid: dev.grid(Math.ceil(count / WG)),
  };
}

/** h = silu(g) * u elementwise; g, u, h [N, I] (h distinct from g and u). */
export function swigluForward(dev: Device, g: Tensor, u: Tensor, h: Tensor): Tensor {
  checkSame("swigluForward", g, u, h);
  if (g.size === 0) return h;
  const { kernel, p, grid } = layout(dev, "forward", g.size);
  dev.dispatch(kernel, [p, g, u, h], grid);
  return h;
}

/** dg = dh * u * silu'(g), du = dh * silu(g); all [N, I], outputs overwritten. */
export function swigluBackward(
  dev: Device,
  g: Tensor,
  u: Tensor,
  dh: Tensor,
  dg: Tensor,
  du: Tensor,
): void {
  checkSame("swigluBackward", g, u, dh, dg, du);
  if (g.size === 0) return;
  const { kernel, p, grid } = layout(dev, "backward", g.size);
  dev.dispatch(kernel, [p, g, u, undefined, dh, dg, du], grid);
}
