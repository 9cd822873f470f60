/**
 * GPU time per kernel from timestamp queries, for finding where a step's time goes (opt-in:
 * `dev.startKernelProfile()`, or `QPT_KERNEL_PROFILE=1` in the environment of any command,
 * which prints the table when the process exits).
 *
 * While profiling, every dispatch gets a compute pass of its own with a timestamp written at its
 * start and at its end; at each submission the device resolves that submission's timestamps into
 * a buffer that is read once the GPU has finished it, and the durations add up per kernel (the
 * pipeline key: file, entry point and override constants). Results are unchanged; the passes
 * cost a little time of their own. On llvmpipe the timestamps come from the CPU clock.
 */

/** Calls and GPU milliseconds of one kernel. */
export interface KernelTime {
  name: string;
  calls: number;
  ms: number;
}

export class KernelProfiler {
  readonly capacity: number;
  #gpu: GPUDevice;
  #queries: GPUQuerySet;
  #resolved: GPUBuffer;
  #names: string[] = [];
  #pending: Promise<void>[] = [];
  #totals = new Map<string, { calls: number; ns: bigint }>();

  /** `capacity`: dispatches per submission (the device submits early when they run out). */
  constructor(gpu: GPUDevice, capacity = 1024) {
    if (!Number.isInteger(capacity) || capacity < 1 || 2 * capacity > 4096) {
      throw new RangeError(`kernel profile capacity ${capacity} must be an integer in [1, 2048]`);
    }
    this.capacity = capacity;
    this.#gpu = gpu;
    this.#queries = gpu.createQuerySet({
      label: "kernel profile",
      type: "timestamp",
      count: 2 * capacity,
    });
    this.#resolved = gpu.createBuffer({
      label: "kernel profile resolve",
      size: 16 * capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** Whether this submission's timestamps are used up. */
  get full(): boolean {
    return this.#names.length >= this.capacity;
  }

  /** The timestamp writes of the next dispatch's pass, which runs kernel `name`. */
  next(name: string): GPUComputePassTimestampWrites {
    if (this.full) throw new Error("kernel profile: submit before the next dispatch");
    const i = this.#names.length;
    this.#names.push(name);
    return {
      querySet: this.#queries,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
  }

  /**
   * Records into `enc` (before it is finished) the copy of this submission's timestamps to a
   * buffer of their own; returns what to call once it is submitted (null when there were none).
   */
  resolve(enc: GPUCommandEncoder): (() => void) | null {
    const names = this.#names;
    if (names.length === 0) return null;
    this.#names = [];
    const bytes = 16 * names.length;
    enc.resolveQuerySet(this.#queries, 0, 2 * names.length, this.#resolved, 0);
    const read = this.#gpu.createBuffer({
      label: "kernel profile read",
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    enc.copyBufferToBuffer(this.#resolved, 0, read, 0, bytes);
    return () => {
      this.#pending.push(
        read.mapAsync(GPUMapMode.READ).then(() => {
          this.add(names, new BigUint64Array(read.getMappedRange().slice(0)));
          read.destroy();
        }, () => read.destroy()),
      );
    };
  }

  /** Adds the durations of `names[i]`, from `stamps[2i]` to `stamps[2i + 1]` (ns). */
  add(names: readonly string[], stamps: BigUint64Array): void {
    for (const [i, name] of names.entries()) {
      const [t0, t1] = [stamps[2 * i], stamps[2 * i + 1]];
      const e = this.#totals.get(name) ?? { calls: 0, ns: 0n };
      e.calls++;
      e.ns += t1 > t0 ? t1 - t0 : 0n;
      this.#totals.set(name, e);
    }
  }

  /** Waits for every submitted submission's timestamps (the GPU must get to them). */
  async settle(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    await Promise.all(pending);
  }

  /** Calls and milliseconds per kernel so far (read timestamps only), the most time first. */
  table(): KernelTime[] {
    return [...this.#totals].map(([name, e]) => ({ name, calls: e.calls, ms: Number(e.ns) / 1e6 }))
      .sort((a, b) => b.ms - a.ms || (a.name < b.name ? -1 : 1));
  }
}

/** A text table of `rows` (the first `top`), with each kernel's share of the total time. */
export function formatKernelTimes(rows: readonly KernelTime[], top = 30): string {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const calls = rows.reduce((s, r) => s + r.calls, 0);
  const lines = [`GPU time per kernel: ${total.toFixed(1)} ms in ${calls} dispatches`];
  for (const r of rows.slice(0, top)) {
    const share = total > 0 ? (100 * r.ms / total).toFixed(1) : "0.0";
    lines.push(
      `  ${r.ms.toFixed(1).padStart(10)} ms ${share.padStart(5)}% ${
        String(r.calls).padStart(7)
      } calls  ${r.name}`,
    );
  }
  if (rows.length > top) lines.push(`  ... ${rows.length - top} more kernels`);
  return lines.join("\n");
}
