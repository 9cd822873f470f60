/**
 * The Qwen2 forward pass on the CPU in float64: the reference the GPU model is tested against
 * (log-probs within 1e-4, and finite differences for the backward). Slow and simple on purpose:
 * one sequence at a time, plain loops, no caching.
 *
 * Block (Hugging Face Qwen2): h = x + o_proj(attn(rmsnorm(x))),
 * out = h + down(silu(gate(n)) * up(n)) with n = rmsnorm(h); final norm; LM head (the
 * embedding when tied). RoPE is rotate-half with inv_freq[i] = theta^(-2i/D).
 */

/** The dimensions the model needs, camel-cased from config.json. */
export interface ModelDims {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
}

/** Weights by Hugging Face tensor name (row-major, linear weights [out, in]). */
export type WeightMap = ReadonlyMap<string, ArrayLike<number>>;

function get(w: WeightMap, name: string): ArrayLike<number> {
  const t = w.get(name);
  if (!t) throw new Error(`reference model: missing tensor ${name}`);
  return t;
}

/** y[n, o] = sum_i x[n, i] * W[o, i] + b[o]  (x [N, in], W [out, in]). */
function linear(
  x: Float64Array,
  n: number,
  inDim: number,
  w: ArrayLike<number>,
  outDim: number,
  b?: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(n * outDim);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o] : 0;
      const xo = r * inDim, wo = o * inDim;
      for (let i = 0; i < inDim; i++) s += x[xo + i] * w[wo + i];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

function rmsnorm(x: Float64Array, n: number, d: number, w: ArrayLike<number>, eps: number) {
  const y = new Float64Array(n * d);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
    const rstd = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) y[r * d + i] = x[r * d + i] * rstd * w[i];
  }
  return y;
}

/** In place: rotate-half RoPE on [T, H, D] with positions 0..T-1. */
function rope(x: Float64Array, t: number, h: number, d: number, theta: number) {
  const half = d / 2;
  for (let p = 0; p < t; p++) {
    for (let i = 0; i < half; i++) {
      // Hugging Face computes inv_freq in fp32; the angle here is float64 of that value.
      const invFreq = Math.fround(1 / Math.pow(theta, (2 * i) / d));
      const ang = p * invFreq;
      const c = Math.cos(ang), s = Math.sin(ang);
      for (let hh = 0; hh < h; hh++) {
        const o = (p * h + hh) * d;
        const a = x[o + i], b = x[o + i + half];
        x[o + i] = a * c - b * s;
        x[o + i + half] = b * c + a * s;
      }
    }
  }
}

/** Causal GQA attention of one sequence: q [T, Hq, D], k/v [T, Hkv, D] -> [T, Hq, D]. */
function attention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  t: number,
  hq: number,
  hkv: number,
  d: number,
): Float64Array {
  const out = new Float64Array(t * hq * d);
  const group = hq / hkv;
  const scale = 1 / Math.sqrt(d);
  const s = new Float64Array(t);
  for (let h = 0; h < hq; h++) {
    const kh = Math.floor(h / group);
    for (let i = 0; i < t; i++) {
      let m = -Infinity;
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let e = 0; e < d; e++) dot += q[(i * hq + h) * d + e] * k[(j * hkv + kh) * d + e];
        s[j] = dot * scale;
        if (s[j] > m) m = s[j];
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += s[j] = Math.exp(s[j] - m);
      for (let j = 0; j <= i; j++) {
        const p = s[j] / z;
        for (let e = 0; e < d; e++) out[(i * hq + h) * d + e] += p * v[(j * hkv + kh) * d + e];
      }
    }
  }
  return out;
}

export interface RefOutput {
  /** logp[t] = log p(seq[t+1] | seq[..t]), length T - 1. */
  logp: Float64Array;
  /** Entropy of each position's next-token distribution, length T - 1. */
  entropy: Float64Array;
}

/** Final hidden states [T, d] of one sequence (after the final norm). */
export function refHidden(cfg: ModelDims, w: WeightMap, seq: readonly number[]): Float64Array {
  const { hiddenSize: d, intermediateSize: ff, numHeads: hq, numKvHeads: hkv, headDim: hd } = cfg;
  const t = seq.length;
  const emb = get(w, "model.embed_tokens.weight");
  let x = new Float64Array(t * d);
  seq.forEach((id, p) => {
    if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) {
      throw new RangeError(
        `reference model: token ${id} at position ${p} outside [0, ${cfg.vocabSize})`,
      );
    }
    for (let i = 0; i < d; i++) x[p * d + i] = emb[id * d + i];
  });
  for (let l = 0; l < cfg.numLayers; l++) {
    const pre = `model.layers.${l}.`;
    const n1 = rmsnorm(x, t, d, get(w, pre + "input_layernorm.weight"), cfg.rmsNormEps);
    const q = linear(
      n1,
      t,
      d,
      get(w, pre + "self_attn.q_proj.weight"),
      hq * hd,
      get(w, pre + "self_attn.q_proj.bias"),
    );
    const k = linear(
      n1,
      t,
      d,
      get(w, pre + "self_attn.k_proj.weight"),
      hkv * hd,
      get(w, pre + "self_attn.k_proj.bias"),
    );
    const v = linear(
      n1,
      t,
      d,
      get(w, pre + "self_attn.v_proj.weight"),
      hkv * hd,
      get(w, pre + "self_attn.v_proj.bias"),
    );
    rope(q, t, hq, hd, cfg.ropeTheta);
    rope(k, t, hkv, hd, cfg.ropeTheta);
    const a = attention(q, k, v, t, hq, hkv, hd);
    const o = linear(a, t, hq * hd, get(w, pre + "self_attn.o_proj.weight"), d);
    const h = new Float64Array(t * d);
    for (let i = 0; i < h.length; i++) h[i] = x[i] + o[i];
    const n2 = rmsnorm(h, t, d, get(w, pre + "post_attention_layernorm.weight"), cfg.rmsNormEps);
    const g = linear(n2, t, d, get(w, pre + "mlp.gate_proj.weight"), ff);
    const u = linear(n2, t, d, get(w, pre + "mlp.up_proj.weight"), ff);
    for (let i = 0; i < g.length; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
    const down = linear(g, t, ff, get(w, pre + "mlp.down_proj.weight"), d);
    x = new Float64Array(t * d);
    for (let i = 0; i < x.length; i++) x[i] = h[i] + down[i];
  }
  return rmsnorm(x, t, d, get(w, "model.norm.weight"), cfg.rmsNormEps);
}

/** Per-token log-probs (and entropies) of one sequence. */
export function refLogprobs(cfg: ModelDims, w: WeightMap, seq: readonly number[]): RefOutput {
  const d = cfg.hiddenSize, vsz = cfg.vocabSize;
  const t = seq.length;
  const hidden = refHidden(cfg, w, seq);
  const head = get(w, cfg.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  const logp = new Float64Array(Math.max(0, t - 1));
  const entropy = new Float64Array(Math.max(0, t - 1));
  const logits = new Float64Array(vsz);
  for (let p = 0; p + 1 < t; p++) {
    let m = -Infinity;
    for (let r = 0; r < vsz; r++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += hidden[p * d + i] * head[r * d + i];
      logits[r] = s;
      if (s > m) m = s;
    }
    let z = 0;
    for (let r = 0; r < vsz; r++) z += Math.exp(logits[r] - m);
    const lse = m + Math.log(z);
    let ent = 0;
    for (let r = 0; r < vsz; r++) {
      const lp = logits[r] - lse;
      ent -= Math.exp(lp) * lp;
    }
    logp[p] = logits[seq[p + 1]] - lse;
    entropy[p] = ent;
  }
  return { logp, entropy };
}
