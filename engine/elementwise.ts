/**
 * Dispatch wrappers for kernels/elementwise.wgsl: add, axpy, scale, fill over whole tensors.
 * CPU references are in engine/elementwise_ref.ts.
 */
import { type Device, params } from "./device.ts";
import type { Tensor } from "./tensor.ts";

function checkSame(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) {
    throw new RangeError(`${op}: ${a.name} has ${a.size} elements, ${b.name} has ${b.size}`);
  }
}

function run(
  dev: Device,
  entry: string,
  n: number,
  alpha: number,
  a: Tensor | undefined,
  b: Tensor | undefined,
  out: Tensor,
): void {
  const k = dev.kernel("elementwise", entry);
  dev.dispatch(k, [params().u32(n).f32(alpha), a, b, out], dev.grid(Math.ceil(n / 256)));
}

/** out = a + b. */
export function add(dev: Device, a: Tensor, b: Tensor, out: Tensor): Tensor {
  checkSame("add", a, b);
  checkSame("add", a, out);
  run(dev, "add", a.size, 0, a, b, out);
  return out;
}

/** out += alpha * a. */
export function axpy(dev: Device, alpha: number, a: Tensor, out: Tensor): Tensor {
  checkSame("axpy", a, out);
  run(dev, "axpy", a.size, alpha, a, undefined, out);
  return out;
}

/** out = alpha * a (out may be a). */
export function scale(dev: Device, alpha: number, a: Tensor, out: Tensor): Tensor {
  checkSame("scale", a, out);
  if (a.buffer === out.buffer) {
    // One buffer cannot be bound read-only and read-write in the same dispatch.
    throw new RangeError(
      `scale(): ${a.name} and ${out.name} share a buffer; use a distinct output`,
    );
  }
  run(dev, "scale", a.size, alpha, a, undefined, out);
  return out;
}

/** out = alpha everywhere. */
export function fill(dev: Device, alpha: number, out: Tensor): Tensor {
  run(dev, "fill", out.size, alpha, undefined, undefined, out);
  return out;
}
