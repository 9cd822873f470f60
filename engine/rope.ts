/**
 * Dispatch wrappers for kernels/rope.wgsl: rotary position embedding ("rotate half") applied to
 * q [N, Hq * D] or k [N, Hkv * D] with one u32 position per token (packed sequences each count
 * from their own start; cached decoding passes the cache offset). In place, or into `out`.
 *
 * Precision follows Hugging Face: inv_freq in f32 (ropeInvFreq), the angle as the f32 product
 * position * inv_freq, cos/sin of that f32 angle (range-reduced in the kernel; see its header).
 * CPU references are in engine/rope_ref.ts.
 */
import { type Device, params } from "./device.ts";
import { ropeInvFreq } from "./rope_ref.ts";
import { formatShape, type Tensor } from "./tensor.ts";

const WG = 64;

export interface RopeOptions {
  /** Elements per head (64 for Qwen2.5-0.5B); even. */
  headDim: number;
  /** `rope_theta` of the config (1,000,000 for Qwen2.5). */
  theta: number;
  /** Heads in x (q: num_attention_heads, k: num_key_value_heads); checked against x's shape. */
  numHeads?: number;
  /** Write the result here instead of rotating x in place; [N, H * D] like x. */
  out?: Tensor;
}

/** One inv_freq tensor per (device, theta, head dim), uploaded on first use. */
const invFreqCache = new WeakMap<Device, Map<string, Tensor>>();

function invFreqTensor(dev: Device, theta: number, headDim: number): Tensor {
  let m = invFreqCache.get(dev);
  if (!m) invFreqCache.set(dev, m = new Map());
  const key = `${theta}:${headDim}`;
  let t = m.get(key);
  if (!t || t.disposed) {
    t = dev.upload(`rope inv_freq theta=${theta} D=${headDim}`, ropeInvFreq(theta, headDim), [
      headDim / 2,
    ]);
    m.set(key, t);
  }
  return t;
}

function rotate(
  op: string,
  dev: Device,
  x: Tensor,
  positions: Tensor<"u32">,
  opts: RopeOptions,
  sign: number,
): Tensor {
  const D = opts.headDim;
  if (!Number.isInteger(D) || D < 2 || D % 2 !== 0) {
    throw new RangeError(`${op}: head dim ${D} must be a positive even integer`);
  }
  if (positions.dtype !== "u32") {
    throw new RangeError(`${op}: positions ${positions.name} must be u32, not ${positions.dtype}`);
  }
  const n = positions.size;
  const width = n === 0 ? 0 : x.size / n;
  if (x.shape.length < 2 || x.shape[0] !== n || width % D !== 0) {
    throw new RangeError(
      `${op}: ${x.name} ${
        formatShape(x.shape)
      } must be [${n}, heads * ${D}] for ${n} positions in ${positions.name}`,
    );
  }
  const heads = width / D;
  if (opts.numHeads !== undefined && opts.numHeads !== heads && n > 0) {
    throw new RangeError(
      `${op}: ${x.name} ${
        formatShape(x.shape)
      } holds ${heads} heads of ${D}, not numHeads = ${opts.numHeads}`,
    );
  }
  const out = opts.out;
  if (out) {
    if (out.size !== x.size) {
      throw new RangeError(
        `${op}: out ${out.name} ${formatShape(out.shape)} does not match ${x.name} ${
          formatShape(x.shape)
        }`,
      );
    }
    if (out.buffer === x.buffer) {
      throw new RangeError(
        `${op}: out ${out.name} shares a buffer with ${x.name}; omit out to rotate in place`,
      );
    }
  }
  if (n === 0 || heads === 0) return out ?? x;
  const half = D / 2;
  const p = params().u32(n).u32(heads).u32(half).f32(sign);
  const invFreq = invFreqTensor(dev, opts.theta, D);
  const grid = dev.grid(Math.ceil((n * half) / WG));
  if (out) {
    dev.dispatch(dev.kernel("rope", "rope_out"), [p, positions, invFreq, undefined, x, out], grid);
    return out;
  }
  dev.dispatch(dev.kernel("rope", "rope_inplace"), [p, positions, invFreq, x], grid);
  return x;
}

/**
 * Rotates x [N, H * D] or [N, H, D] (q or k) by the angles of `positions` [N] (u32). In place unless
 * `opts.out` is given; returns the rotated tensor.
 */
export function ropeForward(
  dev: Device,
  x: Tensor,
  positions: Tensor<"u32">,
  opts: RopeOptions,
): Tensor {
  return rotate("ropeForward", dev, x, positions, opts, 1);
}

/**
 * The gradient through ropeForward: dy rotated by -angle. In place on dy unless `opts.out` is
 * given; returns dx.
 */
export function ropeBackward(
  dev: Device,
  dy: Tensor,
  positions: Tensor<"u32">,
  opts: RopeOptions,
): Tensor {
  return rotate("ropeBackward", dev, dy, positions, opts, -1);
}
