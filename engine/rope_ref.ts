/**
 * CPU reference for kernels/rope.wgsl: rotary position embedding in the "rotate half"
 * convention (pairs i and i + D/2 of each head). x is [n, heads * D] row-major; token t has
 * position pos[t].
 */

/**
 * `inv_freq[i] = 1 / theta^(2i / D)` for i < D/2, rounded to f32 step by step as Hugging Face
 * computes it in float32 (`1.0 / (base ** (arange(0, D, 2).float() / D))`): the exponent, the
 * power and the reciprocal are each rounded to f32. (torch's f32 pow may differ from the
 * correctly rounded power in the last bit for some i; this uses the correctly rounded one.)
 */
export function ropeInvFreq(theta: number, headDim: number): Float32Array {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new RangeError(`rope: head dim ${headDim} must be a positive even integer`);
  }
  const half = headDim / 2;
  const out = new Float32Array(half);
  const base = Math.fround(theta);
  for (let i = 0; i < half; i++) {
    const e = Math.fround((2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(base, e)));
  }
  return out;
}

export interface RopeRefOptions {
  headDim: number;
  theta: number;
  /** -1 rotates by -angle (the backward). Default 1. */
  sign?: number;
  /**
   * `"f64"` (default): the angle pos * inv_freq is exact in float64 (from the f32 inv_freq).
   * `"f32"`: the angle is rounded to f32 first, as Hugging Face and the kernel compute it.
   */
  angle?: "f64" | "f32";
}

/** out = x rotated per token by angle pos[t] * inv_freq[i] (float64 arithmetic). */
export function ropeRef(
  x: ArrayLike<number>,
  pos: ArrayLike<number>,
  heads: number,
  opts: RopeRefOptions,
): Float64Array {
  const D = opts.headDim, half = D / 2;
  const n = pos.length;
  if (x.length !== n * heads * D) {
    throw new RangeError(`ropeRef: ${x.length} values for [${n}, ${heads} * ${D}]`);
  }
  const invFreq = ropeInvFreq(opts.theta, D);
  const sign = opts.sign ?? 1;
  const out = new Float64Array(x.length);
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < half; i++) {
      let a = pos[t] * invFreq[i];
      if (opts.angle === "f32") a = Math.fround(a);
      const c = Math.cos(a), s = sign * Math.sin(a);
      for (let h = 0; h < heads; h++) {
        const j = (t * heads + h) * D + i;
        const u = x[j], v = x[j + half];
        out[j] = u * c - v * s;
        out[j + half] = v * c + u * s;
      }
    }
  }
  return out;
}

/** The backward of ropeRef: dx = dy rotated by -angle. */
export function ropeBackwardRef(
  dy: ArrayLike<number>,
  pos: ArrayLike<number>,
  heads: number,
  opts: RopeRefOptions,
): Float64Array {
  return ropeRef(dy, pos, heads, { ...opts, sign: -(opts.sign ?? 1) });
}
