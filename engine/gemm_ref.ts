/** CPU reference of kernels/gemm.wgsl (float64 accumulation). */

/** C = op(A) op(B) (+ bias) (+ c0), row-major; A [M, K] or [K, M] (transA), B [K, N] or [N, K]. */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
  opts: { transA?: boolean; transB?: boolean; bias?: ArrayLike<number>; c0?: ArrayLike<number> } =
    {},
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) {
        const av = opts.transA ? a[t * m + i] : a[i * k + t];
        const bv = opts.transB ? b[j * k + t] : b[t * n + j];
        s += av * bv;
      }
      if (opts.bias) s += opts.bias[j];
      if (opts.c0) s += opts.c0[i * n + j];
      out[i * n + j] = s;
    }
  }
  return out;
}

/** out[n] = sum_m x[m, n]. */
export function sumRowsRef(x: ArrayLike<number>, m: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j] += x[i * n + j];
  return out;
}

/** out [N, M] = x [M, N]^T (an exact copy). */
export function transposeRef(x: ArrayLike<number>, m: number, n: number): Float32Array {
  const out = new Float32Array(m * n);
  for (let r = 0; r < m; r++) for (let c = 0; c < n; c++) out[c * m + r] = x[r * n + c];
  return out;
}
