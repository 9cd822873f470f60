/**
 * Seeded random numbers for the CPU side: weight initialisation, data shuffling, test inputs.
 * sfc32 (Chris Doty-Humphrey's small fast counter generator) on 32-bit integer arithmetic, so
 * a seed gives the same stream on every machine. The state is four u32 words and can be saved
 * in a checkpoint and restored.
 */

/** Mixes a seed (any safe integer) into 32-bit words with splitmix32-style finalisers. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  #spare: number | null = null;

  constructor(seed = 0) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    this.#a = mix32(lo ^ 0x9e3779b9);
    this.#b = mix32(hi ^ 0x85ebca6b);
    this.#c = mix32(lo + 0xc2b2ae35);
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Next uniform u32. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, the second value kept for the next call). */
  normal(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Float32Array of `n` normals times `scale`. */
  normals(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * scale;
    return out;
  }

  /** Float32Array of `n` uniforms in [lo, hi). */
  uniforms(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }

  /** The state, for checkpoints. */
  state(): number[] {
    return [this.#a, this.#b, this.#c, this.#d, this.#spare ?? Number.NaN];
  }

  static fromState(s: readonly number[]): Rng {
    const r = new Rng(0);
    [r.#a, r.#b, r.#c, r.#d] = s.map((x) => x >>> 0);
    r.#spare = s.length > 4 && !Number.isNaN(s[4]) ? s[4] : null;
    return r;
  }
}
