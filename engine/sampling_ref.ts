/**
 * CPU reference for kernels/sampling.wgsl (float64 arithmetic), same procedure and semantics:
 * logits `z[r, v] = hidden[r] . weight[v]` for ids v < vocabLimit; temperature 0 is argmax
 * (lowest id on ties); otherwise weights `exp((z - max) / T)`, top-k keeps `z >= ` the k-th
 * largest logit (ties kept), top-p keeps `z >= t` for the largest value t whose kept mass
 * reaches `topP` of the top-k mass (ties kept), and the token is the first kept id, ascending,
 * where the running mass exceeds `u * total`, with `u = samplingUniform(seed, counter, row)`.
 * `logp` is `z[token] - logsumexp(z)` over ids < vocabLimit at temperature 1, unfiltered.
 *
 * The reference sorts where the kernel bisects, and sums in float64 where the kernel sums in
 * fp32, so it also reports a `margin` per row: how far the row is from a boundary where fp32
 * rounding could flip the choice (a logit gap, or a mass fraction). Token equality with the
 * GPU is expected where the margin is clearly above fp32 noise.
 */

/** Chris Wellons' lowbias32 integer hash (a bijection on u32), as in the kernel. */
export function lowbias32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The kernel's counter-based hash of (seed, counter, row), u32. */
export function samplingHash(seed: number, counter: number, row: number): number {
  let h = lowbias32((seed ^ 0x9e3779b9) >>> 0);
  h = lowbias32((h ^ counter) >>> 0);
  h = lowbias32((h ^ row) >>> 0);
  return lowbias32((h + 0x6a09e667) >>> 0);
}

/** Uniform in [0, 1) with 24 bits, exactly the kernel's value (representable in fp32). */
export function samplingUniform(seed: number, counter: number, row: number): number {
  return (samplingHash(seed, counter, row) >>> 8) / 16777216;
}

export interface SampleRowOptions {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK?: number;
  /** 1 = off. */
  topP?: number;
  /** The row's uniform in [0, 1). */
  u: number;
}

export interface SampleRowRef {
  token: number;
  /** Log-prob of the token under the unmodified softmax (T = 1, no filtering). */
  logp: number;
  /**
   * Distance to the nearest decision boundary: for greedy the gap between the two largest
   * logits; otherwise the smallest of the top-k logit gap (k-th minus (k+1)-th largest), the
   * top-p mass gap (fraction of the top-k mass between `topP` and the cumulative masses of the
   * value groups on either side of the threshold) and the draw gap (fraction of the final mass
   * between `u` and the running mass before / after the token). Infinity when none applies.
   */
  margin: number;
  /** The sampling distribution over ids < vocabLimit (one-hot for greedy). */
  probs: Float64Array;
}

/** Samples one row of logits `z` (already cut to ids < vocabLimit). */
export function sampleRowRef(z: ArrayLike<number>, opts: SampleRowOptions): SampleRowRef {
  const n = z.length;
  const topK = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  let m = -Infinity, amax = 0;
  for (let v = 0; v < n; v++) {
    if (z[v] > m) {
      m = z[v];
      amax = v;
    }
  }
  let se = 0;
  for (let v = 0; v < n; v++) se += Math.exp(z[v] - m);
  const lse = m + Math.log(se);
  const desc = Array.from(z).sort((a, b) => b - a);
  const probs = new Float64Array(n);
  if (opts.temperature === 0) {
    probs[amax] = 1;
    return {
      token: amax,
      logp: z[amax] - lse,
      margin: n > 1 ? desc[0] - desc[1] : Infinity,
      probs,
    };
  }
  let margin = Infinity;
  const w = (x: number) => Math.exp((x - m) / opts.temperature);
  // top-k: keep z >= the k-th largest value
  let tk = -Infinity;
  if (topK > 0 && topK < n) {
    tk = desc[topK - 1];
    margin = Math.min(margin, desc[topK - 1] - desc[topK]);
  }
  // top-p: value groups in descending order, cumulative mass fractions of the top-k mass
  let t = tk;
  if (topP < 1) {
    let zk = 0;
    for (const x of desc) if (x >= tk) zk += w(x);
    let cum = 0;
    for (let i = 0; i < desc.length && desc[i] >= tk;) {
      const x = desc[i];
      const before = cum;
      while (i < desc.length && desc[i] === x) cum += w(desc[i++]);
      if (cum / zk >= topP) {
        t = x;
        margin = Math.min(margin, topP - before / zk, cum / zk - topP);
        break;
      }
    }
  }
  let total = 0;
  for (let v = 0; v < n; v++) if (z[v] >= t) total += w(z[v]);
  const target = opts.u * total;
  let cum = 0, token = -1, lastKept = -1;
  for (let v = 0; v < n; v++) {
    if (z[v] < t) continue;
    probs[v] = w(z[v]) / total;
    lastKept = v;
    if (token < 0) {
      const before = cum;
      cum += w(z[v]);
      if (cum > target) {
        token = v;
        margin = Math.min(margin, (target - before) / total, (cum - target) / total);
      }
    }
  }
  if (token < 0) token = lastKept;
  return { token, logp: z[token] - lse, margin, probs };
}

/** Logits `[R, vocabLimit]` in float64: `z[r, v] = sum_j hidden[r, j] * weight[v, j]`. */
export function logitsRef(
  hidden: ArrayLike<number>,
  weight: ArrayLike<number>,
  rows: number,
  d: number,
  vocabLimit: number,
): Float64Array {
  const z = new Float64Array(rows * vocabLimit);
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < vocabLimit; v++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += hidden[r * d + j] * weight[v * d + j];
      z[r * vocabLimit + v] = s;
    }
  }
  return z;
}

export interface SampleTokensRefArgs {
  /** [rows, d] */
  hidden: ArrayLike<number>;
  /** [V, d] */
  weight: ArrayLike<number>;
  rows: number;
  d: number;
  /** Ids < vocabLimit may be drawn (at most V). */
  vocabLimit: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  counter: number;
  /** Each row's RNG key in place of its index (the kernel's rowKeys). */
  rowKeys?: ArrayLike<number>;
}

export interface SampleTokensRef {
  tokens: Uint32Array;
  logp: Float64Array;
  margin: Float64Array;
  /** Per row, the sampling distribution over ids < vocabLimit. */
  probs: Float64Array[];
}

/** The whole procedure of `sampleTokens()` on the CPU. */
export function sampleTokensRef(a: SampleTokensRefArgs): SampleTokensRef {
  const z = logitsRef(a.hidden, a.weight, a.rows, a.d, a.vocabLimit);
  const out: SampleTokensRef = {
    tokens: new Uint32Array(a.rows),
    logp: new Float64Array(a.rows),
    margin: new Float64Array(a.rows),
    probs: [],
  };
  for (let r = 0; r < a.rows; r++) {
    const row = sampleRowRef(z.subarray(r * a.vocabLimit, (r + 1) * a.vocabLimit), {
      temperature: a.temperature,
      topK: a.topK,
      topP: a.topP,
      u: samplingUniform(a.seed, a.counter, a.rowKeys?.[r] ?? r),
    });
    out.tokens[r] = row.token;
    out.logp[r] = row.logp;
    out.margin[r] = row.margin;
    out.probs.push(row.probs);
  }
  return out;
}
