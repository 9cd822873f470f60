/** CPU reference of the fused LM head + log-softmax (engine/vocab_head.ts), float64. */

export const NO_TARGET_REF = 0xffffffff;

export interface HeadRef {
  logp: Float64Array;
  lse: Float64Array;
  entropy: Float64Array;
}

/** Logits row by row: logp(target), logsumexp and entropy. hidden [N, d], weight [V, d]. */
export function lmHeadForwardRef(
  hidden: ArrayLike<number>,
  weight: ArrayLike<number>,
  targets: ArrayLike<number>,
  n: number,
  d: number,
  v: number,
): HeadRef {
  const logp = new Float64Array(n), lse = new Float64Array(n), entropy = new Float64Array(n);
  const z = new Float64Array(v);
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let j = 0; j < v; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += hidden[r * d + i] * weight[j * d + i];
      z[j] = s;
      if (s > m) m = s;
    }
    let sum = 0, e = 0;
    for (let j = 0; j < v; j++) {
      const w = Math.exp(z[j] - m);
      sum += w;
      e += w * z[j];
    }
    lse[r] = m + Math.log(sum);
    entropy[r] = lse[r] - e / sum;
    logp[r] = targets[r] === NO_TARGET_REF ? 0 : z[targets[r]] - lse[r];
  }
  return { logp, lse, entropy };
}

/** Gradients of sum_r dlogp[r] * logp[r] with respect to hidden [N, d] and weight [V, d]. */
export function lmHeadBackwardRef(
  hidden: ArrayLike<number>,
  weight: ArrayLike<number>,
  targets: ArrayLike<number>,
  dlogp: ArrayLike<number>,
  n: number,
  d: number,
  v: number,
): { dhidden: Float64Array; dweight: Float64Array } {
  const { lse } = lmHeadForwardRef(hidden, weight, targets, n, d, v);
  const dhidden = new Float64Array(n * d), dweight = new Float64Array(v * d);
  for (let r = 0; r < n; r++) {
    if (targets[r] === NO_TARGET_REF) continue;
    for (let j = 0; j < v; j++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += hidden[r * d + i] * weight[j * d + i];
      const g = dlogp[r] * ((targets[r] === j ? 1 : 0) - Math.exp(s - lse[r]));
      for (let i = 0; i < d; i++) {
        dhidden[r * d + i] += g * weight[j * d + i];
        dweight[j * d + i] += g * hidden[r * d + i];
      }
    }
  }
  return { dhidden, dweight };
}
