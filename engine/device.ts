/**
 * The device layer: allocate, write, read, dispatch. Everything model-shaped is built on top.
 *
 * - The adapter's own limits are requested (never WebGPU's defaults), and every buffer size,
 *   binding size and dispatch size is checked before it reaches WebGPU (LimitError).
 * - Work is recorded into one command encoder (one compute pass while only dispatches are
 *   recorded) and submitted at a sync point: `flush()`, `sync()` or a read-back. So a training
 *   step is one submission unless it reads something back in the middle.
 * - A pair of error scopes (out-of-memory, validation) is open while a batch is recorded and
 *   popped when it is submitted; the first error becomes a typed error thrown at the next
 *   sync point, naming the kernels of the batch.
 * - Uniform parameters of all dispatches of a batch are packed into one arena buffer and
 *   written once, just before the batch is submitted.
 * - Freed buffers go back to a pool keyed by rounded size, released textures to one keyed by
 *   size; pipelines are cached by kernel file, entry point and override constants.
 * - A lost device rejects every pending read-back with DeviceLostError instead of hanging.
 */
import {
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  LimitError,
  NoAdapterError,
  ShaderError,
} from "./errors.ts";
import {
  type DType,
  formatShape,
  numel,
  Tensor,
  type TensorSlice,
  type TypedArrayFor,
} from "./tensor.ts";
import { formatKernelTimes, KernelProfiler, type KernelTime } from "./kernel_profile.ts";

/** Uniform parameters of one dispatch, built field by field (4 bytes each, std140-free). */
export class Params {
  readonly #words: number[] = [];
  readonly #f32 = new Float32Array(1);
  readonly #u32 = new Uint32Array(this.#f32.buffer);

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 param ${v}`);
    this.#words.push(v >>> 0);
    return this;
  }
  i32(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) {
      throw new RangeError(`i32 param ${v}`);
    }
    this.#words.push(v >>> 0);
    return this;
  }
  f32(v: number): this {
    this.#f32[0] = v;
    this.#words.push(this.#u32[0]);
    return this;
  }
  /** The words padded to a multiple of 16 bytes. */
  bytes(): Uint32Array {
    const n = Math.max(4, Math.ceil(this.#words.length / 4) * 4);
    const out = new Uint32Array(n);
    out.set(this.#words);
    return out;
  }
}

export function params(): Params {
  return new Params();
}

/**
 * A pooled rgba32float 2-D texture that holds a matrix for sampled reads (`copyToTexture`):
 * texel (x, y) is elements 4x .. 4x + 3 of row y. On llvmpipe a `textureSampleLevel` through
 * the nearest sampler costs about half what a storage load of the same vec4 does (Mesa 22.3
 * vectorizes the sampler's texel fetch; storage, workgroup and `textureLoad` reads are a loop
 * over the SIMD lanes), so the matmul reads its operands this way there (engine/gemm.ts).
 */
export class Texture {
  #released = false;
  constructor(
    readonly name: string,
    readonly texture: GPUTexture,
    readonly view: GPUTextureView,
    readonly width: number,
    readonly height: number,
    readonly device: Device,
  ) {}

  get released(): boolean {
    return this.#released;
  }

  /** Returns the texture to the device's pool (recorded work that reads it still does). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.device.releaseTexture(this);
  }
}

/** The nearest-texel sampler (non-filtering, clamped), bound where a kernel declares `sampler`. */
export const NEAREST: unique symbol = Symbol("nearest sampler");

/**
 * What a dispatch binds at `@binding(i)`: a tensor, a chunk of one, uniform parameters, a
 * texture, or the nearest sampler.
 */
export type Binding = Tensor | TensorSlice | Params | Texture | typeof NEAREST;

/**
 * The kind of each binding of a kernel whose layout cannot be derived ("auto" layouts take a
 * sampled texture to be filterable, which rgba32float is not): uniform, read-only storage,
 * read-write storage, an unfilterable float texture, a non-filtering sampler.
 */
export type BindingKind = "uniform" | "read" | "storage" | "texture" | "sampler";

/** A compiled compute pipeline. */
export interface Kernel {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/**
 * Which matmul kernel runs (engine/gemm.ts): "blocked" (kernels/gemm.wgsl, register blocks
 * without workgroup memory, the fast form on llvmpipe) or "tiled" (kernels/gemm_tiled.wgsl,
 * workgroup-memory tiles of 4 wy x 4 wx with k steps of bk, the form for GPUs) or "tiled8"
 * (the same with 8 x 8 blocks per invocation: tiles of 8 wy x 8 wx).
 */
export interface GemmForm {
  form: "blocked" | "tiled" | "tiled8";
  wx: number;
  wy: number;
  bk: number;
}

/**
 * Which attention kernels of kernels/attention.wgsl run (engine/attention.ts): "rows4" (four
 * query rows or two key rows per invocation, the fast form on llvmpipe) or "rows1" (one row per
 * invocation and dk/dv per query head then summed: four to fourteen times the invocations, the
 * form for GPUs). Decoding is the same in both.
 */
export type AttentionForm = "rows4" | "rows1";

export interface DeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** The matmul kernel; by default "blocked" on a fallback (CPU) adapter, "tiled" elsewhere. */
  gemm?: Partial<GemmForm>;
  /**
   * Whether the blocked matmul reads its large operands from textures (see `Texture`); by
   * default on a fallback (CPU) adapter. A product gets the bits of its layout's 16 x 16
   * storage kernel either way (not those of a relayout through transposes, which only the
   * storage path takes).
   */
  gemmTextures?: boolean;
  /** The attention kernels; by default "rows4" on a fallback (CPU) adapter, "rows1" elsewhere. */
  attention?: AttentionForm;
  /** Where the adapter line goes; defaults to stderr. Pass `() => {}` to silence. */
  log?: (line: string) => void;
}

export interface MemoryStats {
  /** Bytes of all GPU buffers currently held (in use or pooled). */
  live: number;
  /** Highest `live` since creation or the last `resetPeak()`. */
  peak: number;
  /** Bytes held by the pool, free for reuse. */
  pooled: number;
}

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const UNIFORM_SLOT = 256;
const UNIFORM_ARENA_BYTES = 256 * 1024;
const POOL_ROUND = 256;

const kernelSources = new Map<string, string>();

/** Reads `kernels/<file>.wgsl` once (also inside a `deno compile` binary with --include). */
export function kernelSource(file: string): string {
  let src = kernelSources.get(file);
  if (src === undefined) {
    src = Deno.readTextFileSync(new URL(`../kernels/${file}.wgsl`, import.meta.url));
    kernelSources.set(file, src);
  }
  return src;
}

export class Device {
  readonly description: string;
  readonly isFallback: boolean;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  #gemm: GemmForm;
  /** See DeviceOptions.gemmTextures. */
  gemmTextures: boolean;
  #attention: AttentionForm;

  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #batchKernels: string[] = [];
  #scopeOpen = false;
  #pendingChecks: Promise<void>[] = [];
  #pendingError: Error | null = null;
  #lost: DeviceLostError | null = null;
  #lostWaiters = new Set<(e: Error) => void>();

  #uniformArena: GPUBuffer;
  #uniformStaging = new Uint8Array(UNIFORM_ARENA_BYTES);
  #uniformUsed = 0;

  #pool = new Map<number, GPUBuffer[]>();
  #sizes = new WeakMap<GPUBuffer, number>();
  #live = 0;
  #peak = 0;
  #pooled = 0;
  #texturePool = new Map<string, Texture[]>();
  #sampler: GPUSampler | null = null;
  #pipelines = new Map<string, Kernel>();
  #modules = new Map<string, GPUShaderModule>();
  #staging: GPUBuffer[] = [];
  #profiler: KernelProfiler | null = null;

  /** Counters, for benchmarks and tests. */
  readonly counters = { dispatches: 0, submits: 0, readbacks: 0 };

  private constructor(readonly gpu: GPUDevice, info: GPUAdapterInfo) {
    this.description = info.description || `${info.vendor} ${info.architecture} ${info.device}`;
    this.isFallback = (info as GPUAdapterInfo & { isFallbackAdapter?: boolean })
      .isFallbackAdapter ?? false;
    this.limits = gpu.limits;
    this.features = new Set(gpu.features);
    this.#gemm = { form: this.isFallback ? "blocked" : "tiled", wx: 16, wy: 16, bk: 16 };
    this.gemmTextures = this.isFallback;
    this.#attention = this.isFallback ? "rows4" : "rows1";
    this.#uniformArena = gpu.createBuffer({
      label: "uniform arena",
      size: UNIFORM_ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    gpu.lost.then((info) => {
      this.#lost = new DeviceLostError(info.reason ?? "unknown", info.message);
      for (const reject of this.#lostWaiters) reject(this.#lost);
      this.#lostWaiters.clear();
    });
    gpu.addEventListener("uncapturederror", (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.#pendingError ??= err instanceof GPUOutOfMemoryError
        ? new GpuOutOfMemoryError("unscoped GPU work", err.message)
        : new GpuValidationError("unscoped GPU work", err.message);
    });
  }

  /** Acquires the adapter and a device with the adapter's own limits. */
  static async create(opts: DeviceOptions = {}): Promise<Device> {
    if (typeof navigator === "undefined" || !("gpu" in navigator)) {
      throw new NoAdapterError("navigator.gpu is missing in this runtime");
    }
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: opts.powerPreference ?? "high-performance",
    });
    if (!adapter) {
      throw new NoAdapterError(
        "requestAdapter() returned null (no Vulkan/GL driver; on a CPU-only machine install Mesa)",
      );
    }
    const requiredLimits: Record<string, number> = {};
    const wanted = [
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupSizeY",
      "maxComputeWorkgroupSizeZ",
      "maxComputeWorkgroupsPerDimension",
      "maxStorageBuffersPerShaderStage",
      "maxUniformBufferBindingSize",
      "maxBindGroups",
      "maxBindingsPerBindGroup",
      "maxTextureDimension2D",
    ] as const;
    for (const k of wanted) {
      const v = adapter.limits[k];
      if (typeof v === "number") requiredLimits[k] = v;
    }
    const requiredFeatures: GPUFeatureName[] = [];
    for (const f of ["timestamp-query", "shader-f16", "subgroups"] as GPUFeatureName[]) {
      if (adapter.features.has(f)) requiredFeatures.push(f);
    }
    const gpu = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    const dev = new Device(gpu, adapter.info);
    if (opts.gemm) dev.gemm = { ...dev.gemm, ...opts.gemm };
    if (opts.gemmTextures !== undefined) dev.gemmTextures = opts.gemmTextures;
    if (opts.attention) dev.attention = opts.attention;
    const log = opts.log ?? ((line: string) => console.error(line));
    if (profileFromEnv()) {
      dev.startKernelProfile();
      // What has been read back by then (every sync point's work); printed once per device.
      globalThis.addEventListener("unload", () => log(formatKernelTimes(dev.#profiler!.table())));
    }
    log(
      `[device] ${dev.description}${dev.isFallback ? " (fallback/software adapter)" : ""}; ` +
        `binding ${(dev.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, ` +
        `buffer ${(dev.limits.maxBufferSize / 2 ** 20).toFixed(0)} MiB, ` +
        `workgroup memory ${dev.limits.maxComputeWorkgroupStorageSize / 1024} KiB`,
    );
    return dev;
  }

  get lost(): boolean {
    return this.#lost !== null;
  }

  // ---------------------------------------------------------------- memory

  get memory(): MemoryStats {
    return { live: this.#live, peak: this.#peak, pooled: this.#pooled };
  }

  resetPeak(): void {
    this.#peak = this.#live;
  }

  /** Destroys every pooled buffer (their memory goes back to the driver). */
  trim(): void {
    for (const list of this.#pool.values()) {
      for (const b of list) {
        this.#live -= this.#sizes.get(b) ?? 0;
        b.destroy();
      }
    }
    this.#pool.clear();
    for (const list of this.#texturePool.values()) {
      for (const t of list) {
        this.#live -= textureBytes(t.width, t.height);
        t.texture.destroy();
      }
    }
    this.#texturePool.clear();
    this.#pooled = 0;
  }

  #checkLost(): void {
    if (this.#lost) throw this.#lost;
  }

  /** Opens the batch's error scopes on the first GPU call after a sync point. */
  #open(): void {
    this.#checkLost();
    if (this.#scopeOpen) return;
    this.gpu.pushErrorScope("out-of-memory");
    this.gpu.pushErrorScope("validation");
    this.#scopeOpen = true;
  }

  #closeScopes(context: string): void {
    if (!this.#scopeOpen) return;
    this.#scopeOpen = false;
    const validation = this.gpu.popErrorScope();
    const oom = this.gpu.popErrorScope();
    this.#pendingChecks.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        if (o) this.#pendingError ??= new GpuOutOfMemoryError(context, o.message);
        if (v) {
          this.#pendingError ??= /compil|pars|shader/i.test(v.message)
            ? new ShaderError(context, v.message)
            : new GpuValidationError(context, v.message);
        }
      }, () => {}),
    );
  }

  /**
   * A raw storage buffer of at least `bytes`, from the pool when one of the same rounded size
   * is free. `what` names it in errors.
   */
  allocBuffer(what: string, bytes: number): GPUBuffer {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`${what}: size ${bytes} bytes`);
    if (bytes > this.limits.maxBufferSize) {
      throw new LimitError(what, "maxBufferSize (bytes)", bytes, this.limits.maxBufferSize);
    }
    const size = Math.max(POOL_ROUND, Math.ceil(bytes / POOL_ROUND) * POOL_ROUND);
    const free = this.#pool.get(size);
    if (free && free.length > 0) {
      this.#pooled -= size;
      return free.pop()!;
    }
    this.#open();
    const buf = this.gpu.createBuffer({ label: what, size, usage: STORAGE_USAGE });
    this.#sizes.set(buf, size);
    this.#live += size;
    if (this.#live > this.#peak) this.#peak = this.#live;
    return buf;
  }

  /** Returns a buffer to the pool. */
  release(buf: GPUBuffer): void {
    const size = this.#sizes.get(buf);
    if (size === undefined) return;
    let list = this.#pool.get(size);
    if (!list) this.#pool.set(size, list = []);
    list.push(buf);
    this.#pooled += size;
  }

  /**
   * A texture of `width` x `height` rgba32float texels (contents undefined), from the pool when
   * one of that size is free; counted in `memory` like a buffer. `what` names it in errors.
   */
  texture(what: string, width: number, height: number): Texture {
    const max = this.limits.maxTextureDimension2D;
    for (const [side, n] of [["width", width], ["height", height]] as const) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what}: texture ${side} ${n}`);
      if (n > max) {
        throw new LimitError(`${what} (texture ${side})`, "maxTextureDimension2D", n, max);
      }
    }
    const key = `${width}x${height}`;
    const free = this.#texturePool.get(key);
    if (free && free.length > 0) {
      const t = free.pop()!;
      this.#pooled -= textureBytes(width, height);
      return new Texture(what, t.texture, t.view, width, height, this);
    }
    this.#open();
    const texture = this.gpu.createTexture({
      label: what,
      size: [width, height],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    });
    this.#live += textureBytes(width, height);
    if (this.#live > this.#peak) this.#peak = this.#live;
    return new Texture(what, texture, texture.createView(), width, height, this);
  }

  /** Returns a texture to the pool (use `Texture.release`). */
  releaseTexture(t: Texture): void {
    const key = `${t.width}x${t.height}`;
    let list = this.#texturePool.get(key);
    if (!list) this.#texturePool.set(key, list = []);
    list.push(t);
    this.#pooled += textureBytes(t.width, t.height);
  }

  /**
   * Whether `copyToTexture` can take `rows` rows of `cols` elements starting at element
   * `start` of a buffer: rows 256-byte aligned (cols % 64 == 0), the start 16-byte aligned, and
   * both sides within maxTextureDimension2D.
   */
  textureFits(rows: number, cols: number, start = 0): boolean {
    const max = this.limits.maxTextureDimension2D;
    return cols % 64 === 0 && start % 4 === 0 && rows >= 1 && rows <= max && cols / 4 <= max;
  }

  /**
   * Records a copy of `rows` rows of `cols` elements (row-major, from element `start` of x's
   * buffer) into texture t of cols / 4 x rows texels. See `textureFits` for the shapes taken.
   */
  copyToTexture(x: Tensor | TensorSlice, rows: number, cols: number, t: Texture): void {
    const tensor = x instanceof Tensor ? x : x.tensor;
    const start = x instanceof Tensor ? 0 : x.start;
    const what = `copy of ${tensor.name} [${rows}, ${cols}] into texture ${t.name}`;
    if (tensor.disposed) throw new Error(`${what}: tensor disposed`);
    if (t.released) throw new Error(`${what}: texture released`);
    if (!this.textureFits(rows, cols, start)) {
      throw new RangeError(`${what}: rows must be 256-byte aligned and start 16-byte aligned`);
    }
    if (t.width !== cols / 4 || t.height !== rows) {
      throw new RangeError(`${what}: the texture is ${t.width} x ${t.height} texels`);
    }
    if (start + rows * cols > tensor.size) {
      throw new RangeError(`${what}: out of range of the tensor's ${tensor.size} elements`);
    }
    this.#open();
    this.#endPass();
    this.#enc().copyBufferToTexture(
      { buffer: tensor.buffer, offset: start * 4, bytesPerRow: cols * 4, rowsPerImage: rows },
      { texture: t.texture },
      [cols / 4, rows],
    );
    this.#batchKernels.push(`copy ${tensor.name} -> texture ${t.name}`);
  }

  // ---------------------------------------------------------------- tensors

  /** An uninitialised tensor (contents are whatever the pooled buffer held). */
  empty<D extends DType = "f32">(name: string, shape: readonly number[], dtype?: D): Tensor<D> {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new RangeError(`tensor ${name}: bad shape ${formatShape(shape)}`);
      }
    }
    const bytes = numel(shape) * 4;
    const buf = this.allocBuffer(`tensor ${name} ${formatShape(shape)}`, bytes);
    return new Tensor(this, buf, [...shape], (dtype ?? "f32") as D, name);
  }

  /** A tensor filled with zeros (cleared on the GPU, in order with recorded work). */
  zeros<D extends DType = "f32">(name: string, shape: readonly number[], dtype?: D): Tensor<D> {
    const t = this.empty(name, shape, dtype);
    this.clear(t);
    return t;
  }

  /** Uploads data into a new tensor. */
  upload<D extends DType = "f32">(
    name: string,
    data: TypedArrayFor<D> | ArrayLike<number>,
    shape: readonly number[],
    dtype?: D,
  ): Tensor<D> {
    const dt = (dtype ?? "f32") as D;
    if (data.length !== numel(shape)) {
      throw new RangeError(
        `tensor ${name}: ${data.length} values for shape ${formatShape(shape)} (${
          numel(shape)
        } elements)`,
      );
    }
    const t = this.empty(name, shape, dt);
    this.write(t, data);
    return t;
  }

  /**
   * Writes data into a tensor (or an element offset of it). Recorded work is submitted first,
   * so the write lands after everything recorded before it.
   */
  write(t: Tensor, data: ArrayLike<number> | ArrayBufferView, elementOffset = 0): void {
    let view: ArrayBufferView;
    if (ArrayBuffer.isView(data)) view = data;
    else if (t.dtype === "f32") view = Float32Array.from(data as ArrayLike<number>);
    else if (t.dtype === "u32") view = Uint32Array.from(data as ArrayLike<number>);
    else view = Int32Array.from(data as ArrayLike<number>);
    const bytes = view.byteLength;
    if (elementOffset * 4 + bytes > t.bytes) {
      throw new RangeError(
        `write of ${bytes} bytes at element ${elementOffset} overflows tensor ${t.name} (${t.bytes} bytes)`,
      );
    }
    if (this.#encoder) this.flush();
    this.#open();
    this.gpu.queue.writeBuffer(
      t.buffer,
      elementOffset * 4,
      view.buffer as ArrayBuffer,
      view.byteOffset,
      bytes,
    );
  }

  /** Copies data back to the CPU: submits recorded work, waits, checks errors. */
  async read<D extends DType>(t: Tensor<D> | TensorSlice): Promise<TypedArrayFor<D>> {
    const tensor = ("tensor" in t ? t.tensor : t) as Tensor<D>;
    const start = "tensor" in t ? t.start : 0;
    const count = "tensor" in t ? t.count : tensor.size;
    const bytes = count * 4;
    const out =
      (tensor.dtype === "f32"
        ? new Float32Array(count)
        : tensor.dtype === "u32"
        ? new Uint32Array(count)
        : new Int32Array(count)) as TypedArrayFor<D>;
    if (count === 0) return out;
    this.#open();
    const stage = this.#takeStaging(bytes);
    this.#endPass();
    this.#enc().copyBufferToBuffer(tensor.buffer, start * 4, stage, 0, Math.ceil(bytes / 4) * 4);
    this.flush();
    this.counters.readbacks++;
    try {
      await this.#untilLost(stage.mapAsync(GPUMapMode.READ, 0, bytes));
      new Uint8Array(out.buffer).set(new Uint8Array(stage.getMappedRange(0, bytes)));
      stage.unmap();
    } catch (e) {
      await this.checkErrors();
      throw this.#lost ?? e;
    }
    this.#staging.push(stage);
    await this.checkErrors();
    return out;
  }

  #takeStaging(bytes: number): GPUBuffer {
    const i = this.#staging.findIndex((b) => b.size >= bytes && b.size <= bytes * 4 + 4096);
    if (i >= 0) return this.#staging.splice(i, 1)[0];
    return this.gpu.createBuffer({
      label: "read-back staging",
      size: Math.max(256, Math.ceil(bytes / 256) * 256),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  #untilLost<T>(p: Promise<T>): Promise<T> {
    if (this.#lost) return Promise.reject(this.#lost);
    return new Promise<T>((resolve, reject) => {
      this.#lostWaiters.add(reject);
      p.then(resolve, reject).finally(() => this.#lostWaiters.delete(reject));
    });
  }

  // ---------------------------------------------------------------- kernels

  /** The matmul kernel in use (see GemmForm). Same form, same bits. */
  get gemm(): GemmForm {
    return { ...this.#gemm };
  }

  /** Chooses the matmul kernel; a tile over the workgroup limits is refused, naming them. */
  set gemm(g: GemmForm) {
    if (g.form !== "blocked" && g.form !== "tiled" && g.form !== "tiled8") {
      throw new RangeError(
        `gemm form ${JSON.stringify(g.form)}: expected "blocked", "tiled" or "tiled8"`,
      );
    }
    for (const [k, v] of [["wx", g.wx], ["wy", g.wy], ["bk", g.bk]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`gemm ${k} ${v}: expected >= 1`);
    }
    const sizes = [
      [`gemm tile ${g.wx} x ${g.wy} invocations`, "maxComputeInvocationsPerWorkgroup", g.wx * g.wy],
      [`gemm tile wx ${g.wx}`, "maxComputeWorkgroupSizeX", g.wx],
      [`gemm tile wy ${g.wy}`, "maxComputeWorkgroupSizeY", g.wy],
    ] as const;
    for (const [what, limitName, requested] of sizes) {
      const limit = this.limits[limitName];
      if (requested > limit) throw new LimitError(what, limitName, requested, limit);
    }
    const r = g.form === "tiled8" ? 2 : 1;
    const bytes = 16 * g.bk * (r * g.wx + r * g.wy + 2);
    const ws = this.limits.maxComputeWorkgroupStorageSize;
    if (bytes > ws) {
      throw new LimitError(
        `gemm tile ${g.wx} x ${g.wy}, bk ${g.bk} (workgroup bytes)`,
        "maxComputeWorkgroupStorageSize",
        bytes,
        ws,
      );
    }
    this.#gemm = { form: g.form, wx: g.wx, wy: g.wy, bk: g.bk };
  }

  /** The attention kernels in use (see AttentionForm). Same form, same bits. */
  get attention(): AttentionForm {
    return this.#attention;
  }

  set attention(form: AttentionForm) {
    if (form !== "rows4" && form !== "rows1") {
      throw new RangeError(`attention form ${JSON.stringify(form)}: expected "rows4" or "rows1"`);
    }
    this.#attention = form;
  }

  /**
   * The pipeline for `entry` in `kernels/<file>.wgsl` with the given override constants,
   * compiled once and cached.
   */
  kernel(
    file: string,
    entry: string,
    constants: Record<string, number> = {},
    layout?: Readonly<Record<number, BindingKind>>,
  ): Kernel {
    const keys = Object.keys(constants).sort();
    const key = `${file}:${entry}:${keys.map((k) => `${k}=${constants[k]}`).join(",")}`;
    let k = this.#pipelines.get(key);
    if (k) return k;
    this.#open();
    let module = this.#modules.get(file);
    if (!module) {
      module = this.gpu.createShaderModule({ label: file, code: kernelSource(file) });
      this.#modules.set(file, module);
    }
    const groupLayout = layout && this.gpu.createBindGroupLayout({
      label: key,
      entries: Object.entries(layout).map(([i, kind]) => layoutEntry(Number(i), kind)),
    });
    const pipeline = this.gpu.createComputePipeline({
      label: key,
      layout: groupLayout
        ? this.gpu.createPipelineLayout({ label: key, bindGroupLayouts: [groupLayout] })
        : "auto",
      compute: { module, entryPoint: entry, constants },
    });
    k = { name: key, pipeline, layout: groupLayout ?? pipeline.getBindGroupLayout(0) };
    this.#pipelines.set(key, k);
    this.#batchKernels.push(`compile ${key}`);
    return k;
  }

  /**
   * Splits `n` workgroups into a 2-D grid within maxComputeWorkgroupsPerDimension. Kernels
   * recover the linear index as `wid.x + wid.y * nwg.x` and skip indices >= n.
   */
  grid(n: number): [number, number] {
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (n <= max) return [Math.max(1, n), 1];
    const y = Math.ceil(n / max);
    if (y > max) {
      throw new LimitError(
        `grid of ${n} workgroups`,
        "maxComputeWorkgroupsPerDimension^2",
        n,
        max * max,
      );
    }
    return [Math.ceil(n / y), y];
  }

  /**
   * Records one dispatch. `bindings[i]` is bound at `@group(0) @binding(i)`; undefined entries
   * are skipped (an entry point binds only what it uses).
   */
  dispatch(
    kernel: Kernel,
    bindings: readonly (Binding | undefined)[],
    workgroups: number | readonly number[],
  ): void {
    const [x, y = 1, z = 1] = typeof workgroups === "number" ? [workgroups] : workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    for (const n of [x, y, z]) {
      if (!Number.isInteger(n) || n < 0) {
        throw new RangeError(`dispatch of ${kernel.name}: ${n} workgroups`);
      }
      if (n > max) {
        throw new LimitError(
          `dispatch of ${kernel.name}`,
          "maxComputeWorkgroupsPerDimension",
          n,
          max,
        );
      }
    }
    if (x === 0 || y === 0 || z === 0) return;
    // Out of timestamps for this submission: submit first (before this dispatch's uniforms).
    if (this.#profiler?.full) this.flush();
    const entries: GPUBindGroupEntry[] = [];
    let uniformBytes: Uint32Array | null = null;
    for (let i = 0; i < bindings.length; i++) {
      const b = bindings[i];
      if (b === undefined) continue;
      if (b instanceof Params) {
        uniformBytes = b.bytes();
        if (this.#uniformUsed + UNIFORM_SLOT > UNIFORM_ARENA_BYTES) this.flush();
        const offset = this.#uniformUsed;
        new Uint32Array(this.#uniformStaging.buffer, offset, uniformBytes.length).set(uniformBytes);
        this.#uniformUsed += UNIFORM_SLOT;
        entries.push({
          binding: i,
          resource: { buffer: this.#uniformArena, offset, size: uniformBytes.byteLength },
        });
        continue;
      }
      if (b === NEAREST) {
        this.#sampler ??= this.gpu.createSampler({ magFilter: "nearest", minFilter: "nearest" });
        entries.push({ binding: i, resource: this.#sampler });
        continue;
      }
      if (b instanceof Texture) {
        if (b.released) {
          throw new Error(`texture ${b.name} bound to ${kernel.name} after release()`);
        }
        entries.push({ binding: i, resource: b.view });
        continue;
      }
      entries.push({ binding: i, resource: this.#storageResource(kernel, b) });
    }
    this.#open();
    const group = this.gpu.createBindGroup({ label: kernel.name, layout: kernel.layout, entries });
    let pass: GPUComputePassEncoder;
    if (this.#profiler) {
      // A pass of its own, timestamped at its start and end.
      this.#endPass();
      pass = this.#enc().beginComputePass({ timestampWrites: this.#profiler.next(kernel.name) });
    } else {
      pass = this.#computePass();
    }
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
    if (this.#profiler) pass.end();
    this.counters.dispatches++;
    this.#batchKernels.push(kernel.name);
  }

  #storageResource(kernel: Kernel, b: Tensor | TensorSlice): GPUBufferBinding {
    const tensor = b instanceof Tensor ? b : b.tensor;
    if (tensor.disposed) {
      throw new Error(`tensor ${tensor.name} bound to ${kernel.name} after dispose()`);
    }
    const offset = b instanceof Tensor ? 0 : b.start * 4;
    const size = Math.max(4, (b instanceof Tensor ? b.size : b.count) * 4);
    const limit = this.limits.maxStorageBufferBindingSize;
    if (size > limit) {
      throw new LimitError(
        `tensor ${tensor.name} ${formatShape(tensor.shape)} bound to ${kernel.name}`,
        "maxStorageBufferBindingSize (bytes)",
        size,
        limit,
      );
    }
    const align = this.limits.minStorageBufferOffsetAlignment;
    if (offset % align !== 0) {
      throw new RangeError(
        `slice of tensor ${tensor.name} at byte ${offset} bound to ${kernel.name}: offsets must be multiples of ${align}`,
      );
    }
    return { buffer: tensor.buffer, offset, size };
  }

  /** Records a copy of `count` elements between tensors. */
  copy(src: Tensor, dst: Tensor, count = src.size, srcStart = 0, dstStart = 0): void {
    if (srcStart + count > src.size || dstStart + count > dst.size) {
      throw new RangeError(
        `copy of ${count} elements from ${src.name} to ${dst.name} is out of range`,
      );
    }
    if (count === 0) return;
    this.#open();
    this.#endPass();
    this.#enc().copyBufferToBuffer(src.buffer, srcStart * 4, dst.buffer, dstStart * 4, count * 4);
    this.#batchKernels.push(`copy ${src.name} -> ${dst.name}`);
  }

  /** Records zero-filling of a tensor. */
  clear(t: Tensor): void {
    if (t.size === 0) return;
    this.#open();
    this.#endPass();
    this.#enc().clearBuffer(t.buffer, 0, Math.ceil(t.bytes / 4) * 4);
  }

  #enc(): GPUCommandEncoder {
    if (!this.#encoder) this.#encoder = this.gpu.createCommandEncoder();
    return this.#encoder;
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#pass) this.#pass = this.#enc().beginComputePass();
    return this.#pass;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** Submits everything recorded so far (no wait). */
  flush(): void {
    this.#checkLost();
    const context = this.#batchContext();
    if (this.#encoder) {
      this.#endPass();
      if (this.#uniformUsed > 0) {
        this.gpu.queue.writeBuffer(
          this.#uniformArena,
          0,
          this.#uniformStaging,
          0,
          this.#uniformUsed,
        );
      }
      const read = this.#profiler?.resolve(this.#encoder);
      this.gpu.queue.submit([this.#encoder.finish()]);
      read?.();
      this.#encoder = null;
      this.#uniformUsed = 0;
      this.counters.submits++;
    }
    this.#closeScopes(context);
  }

  #batchContext(): string {
    const names = this.#batchKernels;
    this.#batchKernels = [];
    if (names.length === 0) return "buffer allocation or upload";
    const shown = names.length > 6 ? [...names.slice(0, 3), "...", ...names.slice(-3)] : names;
    return `a batch of ${names.length} operations (${shown.join(", ")})`;
  }

  /** Submits recorded work and waits until the GPU has finished it; throws pending errors. */
  async sync(): Promise<void> {
    this.flush();
    await this.#untilLost(this.gpu.queue.onSubmittedWorkDone());
    await this.checkErrors();
  }

  /** Throws the first error caught by a scope since the last check, if any. */
  async checkErrors(): Promise<void> {
    if (this.#scopeOpen && !this.#encoder) this.#closeScopes(this.#batchContext());
    const checks = this.#pendingChecks;
    this.#pendingChecks = [];
    await Promise.all(checks);
    const e = this.#pendingError;
    this.#pendingError = null;
    if (e) throw e;
    this.#checkLost();
  }

  /**
   * Starts timing every dispatch on the GPU (engine/kernel_profile.ts): each gets a compute pass
   * of its own with timestamps; `capacity` dispatches per submission. Needs the adapter's
   * timestamp-query feature.
   */
  startKernelProfile(capacity = 1024): void {
    if (!this.features.has("timestamp-query")) {
      throw new Error(
        `kernel profiling needs the timestamp-query feature, which ${this.description} does not offer`,
      );
    }
    this.flush();
    this.#profiler = new KernelProfiler(this.gpu, capacity);
  }

  /** Calls and GPU ms per kernel since startKernelProfile(), once the work so far is done. */
  async kernelProfile(): Promise<KernelTime[]> {
    if (!this.#profiler) throw new Error("kernelProfile(): startKernelProfile() was not called");
    await this.sync();
    await this.#profiler.settle();
    return this.#profiler.table();
  }

  destroy(): void {
    this.gpu.destroy();
  }
}

/** Whether QPT_KERNEL_PROFILE=1 (false where the environment may not be read). */
function profileFromEnv(): boolean {
  try {
    return Deno.env.get("QPT_KERNEL_PROFILE") === "1";
  } catch {
    return false;
  }
}

/** Bytes of an rgba32float texture. */
function textureBytes(width: number, height: number): number {
  return width * height * 16;
}

function layoutEntry(binding: number, kind: BindingKind): GPUBindGroupLayoutEntry {
  const visibility = GPUShaderStage.COMPUTE;
  switch (kind) {
    case "uniform":
      return { binding, visibility, buffer: { type: "uniform" } };
    case "read":
      return { binding, visibility, buffer: { type: "read-only-storage" } };
    case "storage":
      return { binding, visibility, buffer: { type: "storage" } };
    case "texture":
      return { binding, visibility, texture: { sampleType: "unfilterable-float" } };
    case "sampler":
      return { binding, visibility, sampler: { type: "non-filtering" } };
  }
}
