/** CPU reference for kernels/embedding.wgsl (float64): gather and scatter-add of rows. */

/** out [n, d] = W [V, d] at ids [n]. */
export function embeddingForwardRef(
  W: ArrayLike<number>,
  ids: ArrayLike<number>,
  d: number,
): Float64Array {
  const out = new Float64Array(ids.length * d);
  for (let t = 0; t < ids.length; t++) {
    for (let j = 0; j < d; j++) out[t * d + j] = W[ids[t] * d + j];
  }
  return out;
}

/** dW0 [V, d] plus the rows of dout [n, d] added at ids [n]. */
export function embeddingBackwardRef(
  dW0: ArrayLike<number>,
  ids: ArrayLike<number>,
  dout: ArrayLike<number>,
  d: number,
): Float64Array {
  const dW = Float64Array.from(dW0);
  for (let t = 0; t < ids.length; t++) {
    for (let j = 0; j < d; j++) dW[ids[t] * d + j] += dout[t * d + j];
  }
  return dW;
}
