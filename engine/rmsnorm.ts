/**
 * Dispatch wrappers for kernels/rmsnorm.wgsl: RMSNorm over the rows of x [N, d] in fp32,
 * `y = x * rsqrt(mean(x^2) + eps) * w`. The forward also writes rstd [N] for the backward.
 * The weight gradient is reduced over rows in a fixed order (no atomics), so it is
 * bit-reproducible. CPU references are in engine/rmsnorm_ref.ts.
 */
import { type Device, params } from "./device.ts";
import { formatShape, type Tensor } from "./tensor.ts";

const WG = 64;
/** Rows summed by one invocation of dw_partial (ROWS_PER_BLOCK in the kernel). */
const ROWS_PER_BLOCK = 16;

/**
 * How the row kernels are laid out: `"workgroup"`, 64 lanes per row with a tree reduction (for
 * GPUs; any d), or `"rows4"`, one invocation per row with vec4 loads (for CPU adapters such as
 * llvmpipe, where it is about 4x faster; needs d % 4 == 0, else the workgroup form runs).
 */
export type RmsnormLayout = "workgroup" | "rows4";

export interface RmsnormOptions {
  /** Defaults to `"rows4"` on a fallback (software) adapter and `"workgroup"` elsewhere. */
  layout?: RmsnormLayout;
}

function rowKernel(dev: Device, entry: string, n: number, d: number, layout?: RmsnormLayout) {
  const l = layout ?? (dev.isFallback ? "rows4" : "workgroup");
  if (l === "rows4" && d % 4 === 0) {
    return { kernel: dev.kernel("rmsnorm", `${entry}_rows4`), grid: dev.grid(Math.ceil(n / WG)) };
  }
  return { kernel: dev.kernel("rmsnorm", entry), grid: dev.grid(n) };
}

function rowsOf(op: string, x: Tensor, w: Tensor): [number, number] {
  if (x.shape.length < 1) throw new RangeError(`${op}: ${x.name} must have at least one dimension`);
  const d = x.shape[x.shape.length - 1];
  if (w.size !== d) {
    throw new RangeError(
      `${op}: weight ${w.name} ${
        formatShape(w.shape)
      } does not match the last dimension ${d} of ${x.name} ${formatShape(x.shape)}`,
    );
  }
  return [d === 0 ? 0 : x.size / d, d];
}

function checkSize(op: string, t: Tensor, want: number, what: string): void {
  if (t.size !== want) {
    throw new RangeError(
      `${op}: ${t.name} ${formatShape(t.shape)} has ${t.size} elements, ${what} needs ${want}`,
    );
  }
}

function checkDistinct(op: string, ...ts: Tensor[]): void {
  for (let i = 0; i < ts.length; i++) {
    for (let j = i + 1; j < ts.length; j++) {
      if (ts[i].buffer === ts[j].buffer) {
        throw new RangeError(`${op}: ${ts[i].name} and ${ts[j].name} share a buffer`);
      }
    }
  }
}

/**
 * y = x * rsqrt(mean(x^2) + eps) * w per row; x, y [N, d], w [d], rstd [N] (written for the
 * backward). y must not alias x.
 */
export function rmsnormForward(
  dev: Device,
  x: Tensor,
  w: Tensor,
  y: Tensor,
  rstd: Tensor,
  eps: number,
  opts: RmsnormOptions = {},
): Tensor {
  const op = "rmsnormForward";
  const [n, d] = rowsOf(op, x, w);
  checkSize(op, y, x.size, `x ${formatShape(x.shape)}`);
  checkSize(op, rstd, n, `one rstd per row of ${x.name}`);
  checkDistinct(op, x, w, y, rstd);
  if (n === 0) return y;
  const { kernel, grid } = rowKernel(dev, "forward", n, d, opts.layout);
  dev.dispatch(kernel, [params().u32(n).u32(d).f32(eps).u32(0).u32(0), x, w, y, rstd], grid);
  return y;
}

export interface RmsnormBackwardOptions extends RmsnormOptions {
  /** Add into dw instead of overwriting it (gradient accumulation). Default false. */
  accumulateDw?: boolean;
}

/**
 * Gradients of RMSNorm from dy [N, d]: dx [N, d] (overwritten) and dw [d] (overwritten, or
 * added to with `accumulateDw`). rstd [N] is the forward's.
 */
export function rmsnormBackward(
  dev: Device,
  x: Tensor,
  w: Tensor,
  rstd: Tensor,
  dy: Tensor,
  dx: Tensor,
  dw: Tensor,
  opts: RmsnormBackwardOptions = {},
): void {
  const op = "rmsnormBackward";
  const [n, d] = rowsOf(op, x, w);
  checkSize(op, rstd, n, `one rstd per row of ${x.name}`);
  checkSize(op, dy, x.size, `x ${formatShape(x.shape)}`);
  checkSize(op, dx, x.size, `x ${formatShape(x.shape)}`);
  checkSize(op, dw, d, `w ${formatShape(w.shape)}`);
  checkDistinct(op, x, w, rstd, dy, dx, dw);
  if (d === 0) return;
  const accumulate = opts.accumulateDw ?? false;
  if (n === 0) {
    if (!accumulate) dev.clear(dw);
    return;
  }
  const blocks = Math.ceil(n / ROWS_PER_BLOCK);
  const p = () => params().u32(n).u32(d).f32(0).u32(blocks).u32(accumulate ? 1 : 0);
  const { kernel, grid } = rowKernel(dev, "backward", n, d, opts.layout);
  dev.dispatch(kernel, [p(), x, w, dx, undefined, dy, rstd], grid);
  const part = dev.empty("rmsnorm dw partials", [blocks, d]);
  dev.dispatch(
    dev.kernel("rmsnorm", "dw_partial"),
    [p(), x, undefined, undefined, undefined, dy, rstd, part],
    [Math.ceil(d / WG), blocks],
  );
  dev.dispatch(
    dev.kernel("rmsnorm", "dw_reduce"),
    [p(), undefined, undefined, undefined, undefined, undefined, undefined, undefined, part, dw],
    Math.ceil(d / WG),
  );
  // The pool hands this buffer out again only to work recorded after this point.
  part.dispose();
}
