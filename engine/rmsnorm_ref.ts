/**
 * CPU reference for kernels/rmsnorm.wgsl (float64 arithmetic). x is [n, d] row-major.
 * `rstd[r] = 1 / sqrt(mean_j x[r, j]^2 + eps)`, `y = x * rstd * w`.
 */

export interface RmsnormRefOut {
  y: Float64Array;
  rstd: Float64Array;
}

export function rmsnormForwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  n: number,
  d: number,
  eps: number,
): RmsnormRefOut {
  const y = new Float64Array(n * d);
  const rstd = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j] * x[r * d + j];
    const rs = 1 / Math.sqrt(s / d + Math.fround(eps));
    rstd[r] = rs;
    for (let j = 0; j < d; j++) y[r * d + j] = x[r * d + j] * rs * w[j];
  }
  return { y, rstd };
}

export interface RmsnormRefGrads {
  dx: Float64Array;
  dw: Float64Array;
}

/**
 * dx[r, j] = rstd (w_j dy_j - x_j rstd^2 (1/d) sum_k w_k dy_k x_k);
 * dw[j] = dw0[j] + sum_r dy[r, j] x[r, j] rstd[r]. rstd is recomputed here from x.
 */
export function rmsnormBackwardRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  dy: ArrayLike<number>,
  n: number,
  d: number,
  eps: number,
  dw0?: ArrayLike<number>,
): RmsnormRefGrads {
  const { rstd } = rmsnormForwardRef(x, w, n, d, eps);
  const dx = new Float64Array(n * d);
  const dw = new Float64Array(d);
  if (dw0) { for (let j = 0; j < d; j++) dw[j] = dw0[j]; }
  for (let r = 0; r < n; r++) {
    const rs = rstd[r];
    let c = 0;
    for (let j = 0; j < d; j++) c += w[j] * dy[r * d + j] * x[r * d + j];
    const k = rs * rs * c / d;
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      dx[i] = rs * (w[j] * dy[i] - x[i] * k);
      dw[j] += dy[i] * x[i] * rs;
    }
  }
  return { dx, dw };
}
