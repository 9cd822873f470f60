/** CPU reference for kernels/swiglu.wgsl (float64): h = silu(g) * u and its backward. */

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function swigluForwardRef(g: ArrayLike<number>, u: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: g.length }, (_, i) => g[i] * sigmoid(g[i]) * u[i]);
}

/** dg = dh * u * s (1 + g (1 - s)), du = dh * g * s with s = sigmoid(g). */
export function swigluBackwardRef(
  g: ArrayLike<number>,
  u: ArrayLike<number>,
  dh: ArrayLike<number>,
): { dg: Float64Array; du: Float64Array } {
  const dg = new Float64Array(g.length), du = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) {
    const s = sigmoid(g[i]);
    dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
    du[i] = dh[i] * g[i] * s;
  }
  return { dg, du };
}
