/**
 * CPU reference for kernels/attention.wgsl (float64 arithmetic), in the layouts of
 * engine/attention.ts: q, out [N, Hq * D], k, v [N, Hkv * D], seqStarts [B + 1], lse [Hq, N].
 * S_ij = q_i . k_j / sqrt(D) for j in i's sequence and j <= i; P = softmax_j(S); out = P V.
 */
import type { AttentionDims } from "./attention.ts";

export interface AttentionRefOut {
  out: Float64Array;
  lse: Float64Array;
}

export interface AttentionRefGrads {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

/** For each token, the first token of its sequence. */
function rowStarts(seqStarts: ArrayLike<number>, n: number): Int32Array {
  const lo = new Int32Array(n);
  for (let b = 0; b + 1 < seqStarts.length; b++) {
    for (let i = seqStarts[b]; i < seqStarts[b + 1]; i++) lo[i] = seqStarts[b];
  }
  return lo;
}

/**
 * Probabilities of row i of head h over keys lo..i (p[j - lo]), and the row's logsumexp.
 * `keyRow(j)` gives the element offset of key j's head in k.
 */
function rowProbs(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  qOff: number,
  keyOffs: (j: number) => number,
  lo: number,
  hi: number,
  d: number,
  p: Float64Array,
): number {
  const scale = 1 / Math.sqrt(d);
  let m = -Infinity;
  for (let j = lo; j <= hi; j++) {
    let s = 0;
    const ko = keyOffs(j);
    for (let e = 0; e < d; e++) s += q[qOff + e] * k[ko + e];
    p[j - lo] = s * scale;
    if (p[j - lo] > m) m = p[j - lo];
  }
  let z = 0;
  for (let j = lo; j <= hi; j++) z += p[j - lo] = Math.exp(p[j - lo] - m);
  for (let j = lo; j <= hi; j++) p[j - lo] /= z;
  return m + Math.log(z);
}

/** Causal GQA attention over packed sequences: out [N, Hq * D], lse [Hq, N]. */
export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  seqStarts: ArrayLike<number>,
  dims: AttentionDims,
): AttentionRefOut {
  const { numHeads: hq, numKvHeads: hkv, headDim: d } = dims;
  const n = q.length / (hq * d);
  const g = hq / hkv;
  const out = new Float64Array(n * hq * d);
  const lse = new Float64Array(hq * n);
  const lo = rowStarts(seqStarts, n);
  const p = new Float64Array(n);
  for (let h = 0; h < hq; h++) {
    const kh = Math.floor(h / g);
    const keyOff = (j: number) => (j * hkv + kh) * d;
    for (let i = 0; i < n; i++) {
      const qo = (i * hq + h) * d;
      lse[h * n + i] = rowProbs(q, k, qo, keyOff, lo[i], i, d, p);
      for (let j = lo[i]; j <= i; j++) {
        const pj = p[j - lo[i]];
        for (let e = 0; e < d; e++) out[qo + e] += pj * v[keyOff(j) + e];
      }
    }
  }
  return { out, lse };
}

/**
 * Gradients of sum(out * dout) with respect to q, k, v:
 * dV_j = sum_i P_ij dO_i; dP_ij = dO_i . v_j; dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij');
 * dq_i = scale sum_j dS_ij k_j; dk_j = scale sum_i dS_ij q_i (over all query heads of the group).
 */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  seqStarts: ArrayLike<number>,
  dims: AttentionDims,
): AttentionRefGrads {
  const { numHeads: hq, numKvHeads: hkv, headDim: d } = dims;
  const n = q.length / (hq * d);
  const g = hq / hkv;
  const scale = 1 / Math.sqrt(d);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const lo = rowStarts(seqStarts, n);
  const p = new Float64Array(n);
  const dp = new Float64Array(n);
  for (let h = 0; h < hq; h++) {
    const kh = Math.floor(h / g);
    const keyOff = (j: number) => (j * hkv + kh) * d;
    for (let i = 0; i < n; i++) {
      const qo = (i * hq + h) * d;
      rowProbs(q, k, qo, keyOff, lo[i], i, d, p);
      let delta = 0;
      for (let j = lo[i]; j <= i; j++) {
        let s = 0;
        for (let e = 0; e < d; e++) s += dout[qo + e] * v[keyOff(j) + e];
        dp[j - lo[i]] = s;
        delta += p[j - lo[i]] * s;
      }
      for (let j = lo[i]; j <= i; j++) {
        const pj = p[j - lo[i]];
        const ds = pj * (dp[j - lo[i]] - delta) * scale;
        const ko = keyOff(j);
        for (let e = 0; e < d; e++) {
          dv[ko + e] += pj * dout[qo + e];
          dq[qo + e] += ds * k[ko + e];
          dk[ko + e] += ds * q[qo + e];
        }
      }
    }
  }
  return { dq, dk, dv };
}

/**
 * Decode against a KV cache [B, maxLen, Hkv * D]: query t of sequence b (row b * Tnew + t of
 * q [B * Tnew, Hq * D]) attends to cache rows 0 .. lengths[b] + t. Returns out and lse [Hq, rows].
 */
export function attentionDecodeRef(
  q: ArrayLike<number>,
  kCache: ArrayLike<number>,
  vCache: ArrayLike<number>,
  lengths: ArrayLike<number>,
  maxLen: number,
  dims: AttentionDims,
): AttentionRefOut {
  const { numHeads: hq, numKvHeads: hkv, headDim: d } = dims;
  const nseq = lengths.length;
  const rows = q.length / (hq * d);
  const tNew = rows / nseq;
  const g = hq / hkv;
  const out = new Float64Array(q.length);
  const lse = new Float64Array(hq * rows);
  const p = new Float64Array(maxLen);
  for (let r = 0; r < rows; r++) {
    const b = Math.floor(r / tNew);
    const hi = Math.min(lengths[b] + (r - b * tNew), maxLen - 1);
    for (let h = 0; h < hq; h++) {
      const kh = Math.floor(h / g);
      const keyOff = (j: number) => ((b * maxLen + j) * hkv + kh) * d;
      const qo = (r * hq + h) * d;
      lse[h * rows + r] = rowProbs(q, kCache, qo, keyOff, 0, hi, d, p);
      for (let j = 0; j <= hi; j++) {
        for (let e = 0; e < d; e++) out[qo + e] += p[j] * vCache[keyOff(j) + e];
      }
    }
  }
  return { out, lse };
}
