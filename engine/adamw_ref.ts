/** CPU reference of engine/adamw.ts in float64: global-norm clipping, skip on non-finite. */
import type { AdamWConfig } from "./adamw.ts";

export interface RefParam {
  param: Float64Array;
  grad: ArrayLike<number>;
  m: Float64Array;
  v: Float64Array;
  weightDecay?: number;
}

export interface RefStepResult {
  gradNorm: number;
  clipScale: number;
  nonfinite: number;
  skipped: boolean;
}

/** One AdamW step at step count `t` (1-based) over all parameters, in place. */
export function adamwStepRef(ps: RefParam[], t: number, lr: number, c: AdamWConfig): RefStepResult {
  let sq = 0;
  let nonfinite = 0;
  for (const p of ps) {
    for (let i = 0; i < p.grad.length; i++) {
      const g = p.grad[i];
      if (Number.isFinite(g)) sq += g * g;
      else nonfinite++;
    }
  }
  const gradNorm = Math.sqrt(sq);
  const clipScale = c.maxGradNorm > 0 && Number.isFinite(c.maxGradNorm) && gradNorm > c.maxGradNorm
    ? c.maxGradNorm / (gradNorm + 1e-6)
    : 1;
  const skipped = nonfinite > 0 || !Number.isFinite(gradNorm);
  if (skipped) return { gradNorm, clipScale, nonfinite, skipped };
  const bc1 = 1 - Math.pow(c.beta1, t);
  const bc2 = 1 - Math.pow(c.beta2, t);
  for (const p of ps) {
    const wd = p.weightDecay ?? c.weightDecay;
    for (let i = 0; i < p.param.length; i++) {
      const g = p.grad[i] * clipScale;
      p.m[i] = c.beta1 * p.m[i] + (1 - c.beta1) * g;
      p.v[i] = c.beta2 * p.v[i] + (1 - c.beta2) * g * g;
      p.param[i] *= 1 - lr * wd;
      p.param[i] -= (lr / bc1) * p.m[i] / (Math.sqrt(p.v[i]) / Math.sqrt(bc2) + c.eps);
    }
  }
  return { gradNorm, clipScale, nonfinite, skipped };
}
