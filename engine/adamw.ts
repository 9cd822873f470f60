/**
 * Fused AdamW over all parameters with global gradient-norm clipping and non-finite detection
 * (kernels/adamw.wgsl). The whole step stays on the GPU; `step()` reads back four numbers
 * (grad norm, clip scale, non-finite count, skipped) for the metrics.
 *
 * A step whose gradients contain NaN or Inf is skipped on the GPU: weights and moments are left
 * untouched and the step counter does not advance.
 */
import { type Binding, type Device, params } from "./device.ts";
import type { Tensor, TensorSlice } from "./tensor.ts";

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value; 0 or Infinity disables clipping. */
  maxGradNorm: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = {
  lr: 1e-5,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.0,
  maxGradNorm: 1.0,
};

export interface ParamEntry {
  name: string;
  param: Tensor;
  grad: Tensor;
  /** Per-parameter weight decay (e.g. 0 for norms and biases); defaults to the config's. */
  weightDecay?: number;
}

export interface StepStats {
  gradNorm: number;
  clipScale: number;
  nonfinite: number;
  skipped: boolean;
  /** The optimizer step count after this step (unchanged when skipped). */
  step: number;
}

// Must match kernels/adamw.wgsl: WG lanes; a sumsq workgroup covers WG * PER_THREAD elements (one
// slot of partial sums), an update workgroup WG * UPDATE_PER_THREAD.
const WG = 256;
const PER_THREAD = 256;
const UPDATE_PER_THREAD = 4;
const SLOT_ELEMS = WG * PER_THREAD;

interface Chunk {
  entry: number;
  start: number;
  count: number;
  slot0: number;
}

export class AdamW {
  readonly m: Tensor[];
  readonly v: Tensor[];
  readonly config: AdamWConfig;
  #t = 0;
  readonly #chunks: Chunk[] = [];
  readonly #slots: number;
  readonly #partials: Tensor;
  readonly #stats: Tensor;

  /**
   * `chunkElems` bounds how many elements one dispatch binds (defaults to what fits the
   * storage binding limit); tests pass a small value to exercise chunking.
   */
  constructor(
    readonly dev: Device,
    readonly entries: readonly ParamEntry[],
    config: Partial<AdamWConfig> = {},
    chunkElems?: number,
  ) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    const maxElems = Math.floor(dev.limits.maxStorageBufferBindingSize / 4);
    // Chunks start at offsets the storage binding alignment allows.
    const align = Math.max(1, dev.limits.minStorageBufferOffsetAlignment / 4);
    const chunk = Math.floor(Math.min(chunkElems ?? maxElems, maxElems) / align) * align;
    if (chunk <= 0) throw new RangeError(`AdamW chunk of ${chunkElems} elements is too small`);
    let slots = 0;
    entries.forEach((e, i) => {
      if (e.param.size !== e.grad.size) {
        throw new RangeError(
          `AdamW: parameter ${e.name} has ${e.param.size} elements, its gradient ${e.grad.name} has ${e.grad.size}`,
        );
      }
      for (let s = 0; s < e.param.size; s += chunk) {
        const count = Math.min(chunk, e.param.size - s);
        this.#chunks.push({ entry: i, start: s, count, slot0: slots });
        slots += Math.ceil(count / SLOT_ELEMS);
      }
    });
    this.#slots = slots;
    this.m = entries.map((e) => dev.zeros(`adam_m.${e.name}`, e.param.shape));
    this.v = entries.map((e) => dev.zeros(`adam_v.${e.name}`, e.param.shape));
    this.#partials = dev.zeros("adamw.partials", [Math.max(1, 2 * slots)]);
    this.#stats = dev.zeros("adamw.stats", [4]);
  }

  /** Steps taken (skipped steps excluded). */
  get step(): number {
    return this.#t;
  }

  /** Restores the step count (from a checkpoint; the moments are written via `m`/`v`). */
  setStep(t: number): void {
    this.#t = t;
  }

  #slice(t: Tensor, c: Chunk): Tensor | TensorSlice {
    return c.start === 0 && c.count === t.size ? t : t.slice(c.start, c.count);
  }

  /** Records the norm reduction: afterwards the stats buffer holds norm, scale, count, skip. */
  recordGradNorm(): void {
    const dev = this.dev;
    const k = dev.kernel("adamw", "sumsq");
    for (const c of this.#chunks) {
      const g = this.entries[c.entry].grad;
      const groups = Math.ceil(c.count / SLOT_ELEMS);
      dev.dispatch(
        k,
        [params().u32(c.count).u32(c.slot0), this.#slice(g, c), this.#partials],
        dev.grid(groups),
      );
    }
    const maxNorm = Number.isFinite(this.config.maxGradNorm) ? this.config.maxGradNorm : 0;
    dev.dispatch(
      dev.kernel("adamw", "finalize"),
      [params().u32(this.#slots).f32(maxNorm), undefined, this.#partials, this.#stats],
      1,
    );
  }

  /** Records a whole step (norm, clip, update) with learning rate `lr`. */
  record(lr = this.config.lr): void {
    const dev = this.dev;
    const { beta1: b1, beta2: b2, eps } = this.config;
    const t = this.#t + 1;
    const bc1 = 1 - Math.pow(b1, t);
    const bc2 = 1 - Math.pow(b2, t);
    this.recordGradNorm();
    const k4 = dev.kernel("adamw", "update4");
    const k1 = dev.kernel("adamw", "update");
    for (const c of this.#chunks) {
      const e = this.entries[c.entry];
      const quads = Math.floor(c.count / 4);
      const u = (first: number) =>
        params().u32(c.count).f32(lr).f32(b1).f32(b2).f32(1 - b1).f32(1 - b2).f32(eps)
          .f32(e.weightDecay ?? this.config.weightDecay).f32(lr / bc1).f32(1 / Math.sqrt(bc2))
          .u32(first);
      const g = this.#slice(e.grad, c), p = this.#slice(e.param, c);
      const m = this.#slice(this.m[c.entry], c), v = this.#slice(this.v[c.entry], c);
      if (quads > 0) {
        // bindings 0 U, 3 stats, 7..10 g, p, m, v as vec4s
        const b: (Binding | undefined)[] = [];
        [b[0], b[3], b[7], b[8], b[9], b[10]] = [u(0), this.#stats, g, p, m, v];
        dev.dispatch(k4, b, dev.grid(Math.ceil(quads / (WG * UPDATE_PER_THREAD))));
      }
      if (c.count % 4 !== 0) {
        // the last count % 4 one by one: bindings 0 U, 1 g, 3 stats, 4..6 p, m, v
        dev.dispatch(k1, [u(4 * quads), g, undefined, this.#stats, p, m, v], 1);
      }
    }
  }

  /** Reads the stats of the last recorded step and advances the step count unless skipped. */
  async finish(): Promise<StepStats> {
    const [gradNorm, clipScale, nonfinite, skipped] = await this.#stats.read();
    if (skipped === 0) this.#t++;
    return { gradNorm, clipScale, nonfinite, skipped: skipped !== 0, step: this.#t };
  }

  /** One optimizer step: record, submit, read the stats. */
  async stepWith(lr = this.config.lr): Promise<StepStats> {
    this.record(lr);
    return await this.finish();
  }

  /** Global gradient norm only (no update), with the non-finite count. */
  async gradNorm(): Promise<{ norm: number; nonfinite: number }> {
    this.recordGradNorm();
    const [norm, , nonfinite] = await this.#stats.read();
    return { norm, nonfinite };
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v, this.#partials, this.#stats]) t.dispose();
  }
}
