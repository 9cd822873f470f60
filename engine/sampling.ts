/**
 * Dispatch wrapper for kernels/sampling.wgsl: the next token of each row from its last hidden
 * state, drawn on the GPU (temperature, top-k, top-p, seeded counter-based RNG). The logits
 * `[rows, vocabLimit]`, where a layout or the top-k / top-p search needs them whole, live in a
 * GPU scratch buffer and never reach the CPU. The CPU reference is engine/sampling_ref.ts.
 */
import {
  type Binding,
  type BindingKind,
  type Device,
  NEAREST,
  params,
  type Texture,
} from "./device.ts";
import { LimitError } from "./errors.ts";
import { formatShape, type Tensor } from "./tensor.ts";

const WG = 64;

export interface SampleTokensArgs {
  /** [R, d]: final-normed last hidden states, one row per sequence (or sample). */
  hidden: Tensor;
  /** [V, d]: the LM head (the tied embedding for Qwen2.5-0.5B/1.5B). */
  weight: Tensor;
  /** Only ids < vocabLimit may be drawn (and enter logp's normalizer). Default V. */
  vocabLimit?: number;
  /** 0 = greedy argmax (ties to the lowest id); otherwise at least 1e-30. */
  temperature: number;
  /** Keep the ids whose logit is >= the k-th largest (ties kept). 0 or undefined = off. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 or undefined = off. */
  topP?: number;
  /** RNG seed (u32). */
  seed: number;
  /**
   * RNG counter (u32), e.g. the decode step: the uniform of row r is hash(seed, counter, r), or
   * hash(seed, counter, rowKeys[r]) with `rowKeys`.
   */
  counter: number;
  /**
   * Optional [R] u32: each row's RNG key in place of its index, so that a row draws the same
   * as before when the rows around it change (generation drops finished rows).
   */
  rowKeys?: Tensor<"u32">;
  /** [R] u32, written: the drawn ids. */
  tokens: Tensor<"u32">;
  /**
   * [R] f32, written: log-prob of the drawn id under the model's unmodified distribution
   * (temperature 1, no top-k/top-p) over ids < vocabLimit.
   */
  logp: Tensor;
  /**
   * Optional f32 logits scratch of at least `samplingScratchElements(dev, R, vocabLimit)`
   * elements (reused across decode steps); allocated and released per call when absent.
   */
  scratch?: Tensor;
  /**
   * Vocabulary rows per logits dispatch. Default: as many as one storage binding holds, in
   * multiples of 16 when that is not the whole vocabulary. Rounded down to a multiple of the
   * rows that keep each chunk's byte offset on the device's storage offset alignment (at least
   * one such step). The results do not depend on it.
   */
  chunkRows?: number;
  /**
   * Textures of the head's chunks (`HeadTextures.create`), kept across decode steps: with them
   * the 16 x 16 logits layout reads hidden and the head from textures where the device takes
   * them (`HeadTextures.wanted`), about 1.6x faster on llvmpipe; without, from storage.
   */
  headTextures?: HeadTextures;
  /** Rows per sampling group (logits of one group share the scratch). Default: all that fit. */
  groupRows?: number;
  /**
   * The logits layout, rows x columns per invocation (see the kernel header), for tests and
   * benchmarks; by default chosen from the group's rows and the adapter. Needs d % 4 == 0.
   * The results do not depend on it.
   */
  layout?: SamplingLayout;
}

/** Rows x columns of the logits each invocation computes. */
export type SamplingLayout = "1x8" | "4x8" | "8x8" | "16x16";
const LAYOUTS: readonly SamplingLayout[] = ["1x8", "4x8", "8x8", "16x16"];

/** The logits layout of a group of g rows where the caller names none (see sampleTokens). */
function defaultLayout(dev: Device, g: number): SamplingLayout {
  return g <= 2 ? "1x8" : !dev.isFallback || g <= 4 ? "4x8" : g <= 8 ? "8x8" : "16x16";
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Rows of a group: all R rows unless `[R, vocabLimit]` fp32 is over one storage binding. */
function groupRowsFor(dev: Device, rows: number, vocabLimit: number, want?: number): number {
  const fit = Math.floor(dev.limits.maxStorageBufferBindingSize / (vocabLimit * 4));
  if (fit < 1) {
    throw new LimitError(
      `sampleTokens: one row of ${vocabLimit} logits`,
      "maxStorageBufferBindingSize (bytes)",
      vocabLimit * 4,
      dev.limits.maxStorageBufferBindingSize,
    );
  }
  return Math.max(1, Math.min(rows, fit, want ?? rows));
}

/** Elements of the logits scratch `sampleTokens()` needs for R rows and a vocabulary limit. */
export function samplingScratchElements(
  dev: Device,
  rows: number,
  vocabLimit: number,
  groupRows?: number,
): number {
  return groupRowsFor(dev, rows, vocabLimit, groupRows) * vocabLimit;
}

function isU32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

/**
 * Draws `tokens[r]` for each row r of `hidden` and writes its `logp[r]`; everything stays on the
 * GPU (recorded, not submitted). Logits are computed in vocabulary chunks bound as slices of
 * `weight`, so a 151936 x 896 fp32 head (544 MB) works under a 128 MiB binding limit.
 */
export function sampleTokens(dev: Device, a: SampleTokensArgs): void {
  const op = "sampleTokens";
  const { hidden, weight, tokens, logp } = a;
  if (hidden.shape.length !== 2) {
    throw new RangeError(
      `${op}: hidden ${hidden.name} ${formatShape(hidden.shape)} must be [R, d]`,
    );
  }
  if (weight.shape.length !== 2) {
    throw new RangeError(
      `${op}: weight ${weight.name} ${formatShape(weight.shape)} must be [V, d]`,
    );
  }
  const [rows, d] = hidden.shape;
  const [vocab, dw] = weight.shape;
  if (dw !== d) {
    throw new RangeError(
      `${op}: weight ${weight.name} ${
        formatShape(weight.shape)
      } does not match hidden ${hidden.name} ${formatShape(hidden.shape)} (d = ${d})`,
    );
  }
  if (hidden.dtype !== "f32" || weight.dtype !== "f32") {
    throw new TypeError(`${op}: hidden ${hidden.name} and weight ${weight.name} must be f32`);
  }
  if (tokens.dtype !== "u32" || tokens.size !== rows) {
    throw new RangeError(
      `${op}: tokens ${tokens.name} ${
        formatShape(tokens.shape)
      } ${tokens.dtype} must be u32 with one id per row of hidden (${rows})`,
    );
  }
  const keys = a.rowKeys;
  if (keys && (keys.dtype !== "u32" || keys.size !== rows)) {
    throw new RangeError(
      `${op}: rowKeys ${keys.name} ${
        formatShape(keys.shape)
      } ${keys.dtype} must be u32 with one key per row of hidden (${rows})`,
    );
  }
  if (logp.dtype !== "f32" || logp.size !== rows) {
    throw new RangeError(
      `${op}: logp ${logp.name} ${
        formatShape(logp.shape)
      } ${logp.dtype} must be f32 with one value per row of hidden (${rows})`,
    );
  }
  const vl = a.vocabLimit ?? vocab;
  if (!Number.isInteger(vl) || vl < 1 || vl > vocab) {
    throw new RangeError(
      `${op}: vocabLimit ${vl} must be an integer in [1, ${vocab}] (V of ${weight.name})`,
    );
  }
  if (d < 1) throw new RangeError(`${op}: hidden ${hidden.name} has d = 0`);
  const temperature = a.temperature;
  // 1 / T must stay finite in fp32 (and T normal, not flushed to 0).
  if (
    !Number.isFinite(temperature) || temperature < 0 || (temperature > 0 && temperature < 1e-30)
  ) {
    throw new RangeError(
      `${op}: temperature ${temperature} must be 0 (greedy) or in [1e-30, inf)`,
    );
  }
  const topK = a.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) {
    throw new RangeError(`${op}: topK ${topK} must be an integer >= 0 (0 = off)`);
  }
  const topP = a.topP ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`${op}: topP ${topP} must be in (0, 1]`);
  if (a.layout !== undefined && (!LAYOUTS.includes(a.layout) || d % 4 !== 0)) {
    throw new RangeError(
      `${op}: layout ${a.layout} ${
        LAYOUTS.includes(a.layout) ? `needs d % 4 == 0 (d = ${d})` : `is not one of ${LAYOUTS}`
      }`,
    );
  }
  if (!isU32(a.seed)) throw new RangeError(`${op}: seed ${a.seed} must be a u32`);
  if (!isU32(a.counter)) throw new RangeError(`${op}: counter ${a.counter} must be a u32`);
  if (a.chunkRows !== undefined && !(Number.isInteger(a.chunkRows) && a.chunkRows >= 1)) {
    throw new RangeError(`${op}: chunkRows ${a.chunkRows} must be an integer >= 1`);
  }
  if (a.groupRows !== undefined && !(Number.isInteger(a.groupRows) && a.groupRows >= 1)) {
    throw new RangeError(`${op}: groupRows ${a.groupRows} must be an integer >= 1`);
  }
  // Written tensors must not share a buffer with any other argument.
  const reads: [string, Tensor][] = [["hidden", hidden], ["weight", weight]];
  if (keys) reads.push(["rowKeys", keys]);
  const writes: [string, Tensor][] = [["tokens", tokens], ["logp", logp]];
  if (a.scratch) writes.push(["scratch", a.scratch]);
  const all = [...writes, ...reads];
  for (const [i, [wn, w]] of writes.entries()) {
    for (const [j, [on, o]] of all.entries()) {
      if (j !== i && w.buffer === o.buffer) {
        throw new RangeError(`${op}: ${wn} ${w.name} shares a buffer with ${on} ${o.name}`);
      }
    }
  }
  if (rows === 0) return;

  const group = groupRowsFor(dev, rows, vl, a.groupRows);
  let scratch = a.scratch;
  if (scratch) {
    if (scratch.dtype !== "f32" || scratch.size < group * vl) {
      throw new RangeError(
        `${op}: scratch ${scratch.name} ${
          formatShape(scratch.shape)
        } ${scratch.dtype} must be f32 with at least ${group * vl} elements ([${group}, ${vl}])`,
      );
    }
  }
  // The logits scratch, taken from the pool when first needed (greedy decoding in the 16 x 16
  // layout never stores the logits).
  const z = () => {
    scratch ??= dev.empty("sampling logits", [group, vl]);
    return scratch.slice(0, group * vl);
  };

  const chunk = chunkFor(dev, op, weight, vl, a.chunkRows);
  const tex = texturesFit(dev, rows, d) ? a.headTextures : undefined;
  if (tex && (tex.weight !== weight || tex.vocabLimit !== vl || tex.chunk !== chunk)) {
    throw new RangeError(
      `${op}: headTextures hold ${tex.weight.name} to id ${tex.vocabLimit} in chunks of ${tex.chunk}, not ${weight.name} to id ${vl} in chunks of ${chunk}`,
    );
  }
  // Logits layout (see the kernel header), rows x columns per invocation: 1 x 8 for groups of
  // 1 or 2 rows, then 4 x 8 on a GPU (16 x 16's 64 vec4 accumulators would exceed a thread's
  // registers); on llvmpipe 4 x 8 up to 4 rows, 8 x 8 up to 8 and 16 x 16 beyond, since there a
  // part-filled block costs about what a full one does (at d = 64 and V = 151936, 9 to 15 rows
  // in 16 x 16 took 31-41 ms against 50-61 ms in 8 x 8); scalar when d % 4 != 0. The vec4
  // layouts give the same bits.
  const pick = (g: number): SamplingLayout => a.layout ?? defaultLayout(dev, g);
  const layout = (g: number): { entry: string; cols: number; rows: number } => {
    if (d % 4 !== 0) return { entry: "logits1", cols: 1, rows: 1 };
    const name = pick(g);
    const [r, c] = name.split("x").map(Number);
    return { entry: `logits${name}`, cols: c, rows: r };
  };
  const p = (g: number, row0: number, c0: number, cn: number) =>
    params().u32(g).u32(row0).u32(d).u32(vl).u32(c0).u32(cn).u32(topK < vl ? topK : 0)
      .u32(a.seed).u32(a.counter).f32(temperature).f32(topP).u32(rows);
  // Each row's max, its lowest id and the log-sum-exp come from partial states of 16 ids (see
  // the kernel's row stats section): in the 16 x 16 layout straight from its registers when
  // every chunk starts on a multiple of 16, else from the stored logits; the same bits either
  // way. At temperature 0 they are the draw. At other temperatures without top-k or top-p
  // they also carry each block's mass at the temperature, and the draw section picks a block
  // and then a token in it (from the logits recomputed for that block, or stored ones): the 16
  // x 16 layout then stores no logits. With top-k or top-p the sample pass draws from the
  // stored logits.
  const filtered = (topK > 0 && topK < vl) || topP < 1;
  const plain = temperature > 0 && !filtered;
  const nbv = Math.ceil(vl / 16);
  const gp = dev.empty("sampling partials", [group * nbv, 4]);
  const stats = dev.empty("sampling row stats", [group, 4]);
  const choice = plain ? dev.empty("sampling choice", [group, 4]) : undefined;
  // A draw's RNG key per row: the caller's, else the row's index.
  const rowKeys = keys ??
    (temperature > 0
      ? dev.upload(
        "sampling row keys",
        Uint32Array.from({ length: rows }, (_, r) => r),
        [rows],
        "u32",
      )
      : undefined);
  // The texture of hidden, made when first read (with the caller's textures of the head).
  let hiddenTexture: Texture | undefined;
  for (let row0 = 0; row0 < rows; row0 += group) {
    const g = Math.min(group, rows - row0);
    const l = layout(g);
    const fromRegisters = l.entry === "logits16x16" && (chunk % 16 === 0 || chunk >= vl);
    if (fromRegisters) {
      const store = temperature > 0 && !plain;
      const sampled = tex !== undefined;
      const entry = sampled
        ? `logits16x32_${store ? "stats" : "greedy"}_tex`
        : `logits16x16_${store ? "stats" : "greedy"}`;
      const k = dev.kernel(
        "sampling",
        entry,
        store ? {} : { DRAW: plain ? 1 : 0 },
        sampled ? (store ? STATS_TEX_LAYOUT : GREEDY_TEX_LAYOUT) : undefined,
      );
      if (sampled && !hiddenTexture) {
        hiddenTexture = dev.texture(`texture of ${hidden.name}`, d / 4, rows);
        dev.copyToTexture(hidden, rows, d, hiddenTexture);
      }
      for (let c0 = 0, ci = 0; c0 < vl; c0 += chunk, ci++) {
        const cn = Math.min(chunk, vl - c0);
        const b: (Binding | undefined)[] = [p(g, row0, c0, cn)];
        if (sampled) {
          b[11] = hiddenTexture;
          b[12] = tex.textures[ci];
          b[13] = NEAREST;
        } else {
          b[1] = hidden;
          b[2] = weight.rows(c0, cn);
        }
        b[3] = store ? z() : undefined;
        b[6] = gp;
        dev.dispatch(k, b, [Math.ceil(cn / (sampled ? 32 : 16) / WG), Math.ceil(g / 16)]);
      }
    } else {
      const kLogits = dev.kernel("sampling", l.entry);
      for (let c0 = 0; c0 < vl; c0 += chunk) {
        const cn = Math.min(chunk, vl - c0);
        const grid = [Math.ceil(cn / l.cols / WG), Math.ceil(g / l.rows)];
        dev.dispatch(kLogits, [p(g, row0, c0, cn), hidden, weight.rows(c0, cn), z()], grid);
      }
      const b: (Binding | undefined)[] = [p(g, row0, 0, 0), undefined, undefined, z()];
      b[6] = gp;
      const k = dev.kernel("sampling", "greedy_part16", { DRAW: plain ? 1 : 0 });
      dev.dispatch(k, b, dev.grid(Math.ceil(g * nbv / WG)));
    }
    const b: (Binding | undefined)[] = [p(g, row0, 0, 0), undefined, undefined, undefined];
    b.push(tokens, logp, undefined, gp, stats);
    dev.dispatch(dev.kernel("sampling", "row_stats"), b, dev.grid(Math.ceil(g / WG)));
    if (plain) {
      const bd: (Binding | undefined)[] = [p(g, row0, 0, 0)];
      bd[7] = gp;
      bd[8] = stats;
      bd[9] = rowKeys;
      bd[10] = choice;
      dev.dispatch(dev.kernel("sampling", "draw"), bd, dev.grid(g));
      const pickToken = (c0: number, cn: number, w?: Binding) => {
        const b: (Binding | undefined)[] = [p(g, row0, c0, cn), w ? hidden : undefined, w];
        b[3] = w ? undefined : z();
        b.push(tokens, logp, undefined, undefined, stats, undefined, choice);
        const k = dev.kernel("sampling", w ? "pick_w" : "pick_z");
        dev.dispatch(k, b, dev.grid(Math.ceil(g / WG)));
      };
      // From the stored logits, or (none stored) per chunk from the head's rows.
      if (!fromRegisters) pickToken(0, 0);
      else {
        for (let c0 = 0; c0 < vl; c0 += chunk) {
          const cn = Math.min(chunk, vl - c0);
          pickToken(c0, cn, weight.rows(c0, cn));
        }
      }
    } else if (temperature > 0) {
      // The thresholds (each filter its own pass, leaving its key in the row stats), the draw.
      // The searches also read the partial states (which blocks can hold a candidate).
      const bt: (Binding | undefined)[] = [p(g, row0, 0, 0), undefined, undefined, z()];
      bt[7] = gp;
      bt[8] = stats;
      if (topK > 0 && topK < vl) {
        dev.dispatch(dev.kernel("sampling", "sample_topk"), bt, dev.grid(g));
      }
      if (topP < 1) dev.dispatch(dev.kernel("sampling", "sample_topp"), bt, dev.grid(g));
      const bs: (Binding | undefined)[] = [p(g, row0, 0, 0), undefined, undefined, z(), tokens];
      bs.push(logp, undefined, undefined, stats, rowKeys);
      dev.dispatch(dev.kernel("sampling", "sample"), bs, dev.grid(g));
    }
  }
  // The pool hands these buffers out again only to work recorded after this point.
  hiddenTexture?.release();
  if (!a.scratch) scratch?.dispose();
  gp.dispose();
  stats.dispose();
  choice?.dispose();
  if (!keys) rowKeys?.dispose();
}

/** The bindings of logits16x32_greedy_tex and logits16x32_stats_tex (rgba32float). */
const GREEDY_TEX_LAYOUT: Readonly<Record<number, BindingKind>> = {
  0: "uniform",
  6: "storage",
  11: "texture",
  12: "texture",
  13: "sampler",
};
const STATS_TEX_LAYOUT: Readonly<Record<number, BindingKind>> = {
  ...GREEDY_TEX_LAYOUT,
  3: "storage",
};

/**
 * Whether the 16 x 16 logits layout reads hidden and the head from textures: with the
 * matmul's textures (`dev.gemmTextures`, llvmpipe), rows of a multiple of 64 elements and
 * hidden's rows within a texture's height. On llvmpipe, greedy steps of 16 rows at d = 64, V =
 * 151936, alternating in one process: see `HeadTextures`.
 */
function texturesFit(dev: Device, rows: number, d: number): boolean {
  return dev.gemmTextures && dev.textureFits(rows, d);
}

/**
 * The vocabulary rows per logits dispatch: as many as one storage binding holds (or
 * `requested`), in multiples of 16 when that is not the whole vocabulary, of the storage
 * offset alignment's step, and (where the head may go into textures) within a texture's height.
 */
function chunkFor(
  dev: Device,
  op: string,
  weight: Tensor,
  vl: number,
  requested?: number,
): number {
  const d = weight.shape[1];
  // Chunk starts must land on the storage offset alignment: c0 * d * 4 % align == 0.
  const align = Math.max(4, dev.limits.minStorageBufferOffsetAlignment);
  const step = align / gcd(d * 4, align);
  const fit = Math.floor(dev.limits.maxStorageBufferBindingSize / (d * 4));
  let chunk = Math.min(requested ?? fit, fit, vl);
  if (dev.gemmTextures && d % 64 === 0) chunk = Math.min(chunk, dev.limits.maxTextureDimension2D);
  if (chunk < vl) {
    // By default also a multiple of 16, so that greedy decoding can take its partial states
    // of 16 ids from the logits kernel's registers (the results do not depend on the chunk).
    const unit = requested === undefined ? step * 16 / gcd(step, 16) : step;
    chunk = Math.max(unit, Math.floor(chunk / unit) * unit);
  }
  if (chunk > fit) {
    throw new LimitError(
      `${op}: a vocabulary chunk of ${weight.name} ${formatShape(weight.shape)}`,
      "maxStorageBufferBindingSize (bytes)",
      chunk * d * 4,
      dev.limits.maxStorageBufferBindingSize,
    );
  }
  return chunk;
}

/**
 * Copies of the head's vocabulary chunks [0, vocabLimit) in textures, for the 16 x 16 logits
 * layout on llvmpipe (`dev.gemmTextures`), where a sampled read costs about half a storage one.
 * They take the head's own size again (39 MB at d = 64, 544 MB at d = 896), so generation makes
 * them once and keeps them across its decode steps (the head does not change while it runs),
 * and `sampleTokens` reads textures only when given them. sampleTokens at V = 151936 on
 * llvmpipe, alternating in one process: 16 rows greedy at d = 64 15.5 ms with them against 24.8
 * from storage (20.3 copying the head per call), 64 rows 46.1 vs 74.3, 16 rows at d = 896 105.6
 * vs 179.5, in 16 x 16 blocks; the 16 x 32 blocks since take 10-15% less (kernels/sampling.wgsl).
 */
export class HeadTextures {
  private constructor(
    readonly weight: Tensor,
    readonly vocabLimit: number,
    readonly chunk: number,
    readonly textures: Texture[],
  ) {}

  /** The textures for `weight` as `sampleTokens` would chunk it (`chunkRows` likewise). */
  static create(
    dev: Device,
    weight: Tensor,
    vocabLimit = weight.shape[0],
    chunk = chunkFor(dev, "HeadTextures", weight, vocabLimit),
  ): HeadTextures {
    const d = weight.shape[1];
    if (!dev.textureFits(Math.min(chunk, vocabLimit), d)) {
      throw new RangeError(
        `HeadTextures: ${weight.name} ${
          formatShape(weight.shape)
        } in chunks of ${chunk} does not fit textures (rows of a multiple of 64 elements, at most ${dev.limits.maxTextureDimension2D} of them)`,
      );
    }
    const textures: Texture[] = [];
    for (let c0 = 0; c0 < vocabLimit; c0 += chunk) {
      const cn = Math.min(chunk, vocabLimit - c0);
      const t = dev.texture(`texture of ${weight.name} rows ${c0}..${c0 + cn}`, d / 4, cn);
      dev.copyToTexture(weight.rows(c0, cn), cn, d, t);
      textures.push(t);
    }
    return new HeadTextures(weight, vocabLimit, chunk, textures);
  }

  /**
   * Whether `sampleTokens` on this device, in its default layout, reads the head this way for
   * [R, d] hidden states.
   */
  static wanted(dev: Device, rows: number, d: number): boolean {
    return texturesFit(dev, Math.max(rows, 1), d) && defaultLayout(dev, rows) === "16x16";
  }

  release(): void {
    for (const t of this.textures) t.release();
    this.textures.length = 0;
  }
}
