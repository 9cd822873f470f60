/**
 * Benchmark plumbing shared by every `bench/<op>_bench.ts`: timing GPU work to completion,
 * and the result record that `deno task bench --json FILE` writes.
 *
 * A bench module exports `benches: Bench[]`; bench/main.ts finds every `*_bench.ts` file,
 * runs its benches and prints one line each with the peer's figure from the same run.
 */
import type { Device, GemmForm } from "../engine/device.ts";

export interface PeerResult {
  name: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  peak_bytes?: number;
}

export interface BenchResult {
  name: string;
  shape: number[];
  ms: number;
  gflops?: number;
  gbps?: number;
  peak_bytes?: number;
  peer?: PeerResult;
  /** Free-form extras (tokens/s, notes). */
  extra?: Record<string, number | string>;
}

export interface BenchContext {
  dev: Device;
  /** Smaller shapes and fewer iterations (used by the test that checks benches run). */
  quick: boolean;
  /** Also the shapes only a real GPU gets through in reasonable time (the whole 0.5B model). */
  large?: boolean;
  log: (line: string) => void;
}

export interface Bench {
  /** Group name, matched by `--only`. */
  name: string;
  /** Runs only when named in `--only` (long sweeps). */
  optIn?: boolean;
  run: (ctx: BenchContext) => Promise<BenchResult[]>;
}

export interface TimeOptions {
  warmup?: number;
  /** Keep iterating until this much time has been spent (after warm-up)... */
  minMs?: number;
  /** ...but at least this many iterations, and at most maxIters. */
  minIters?: number;
  maxIters?: number;
  /**
   * When one call plus its wait takes less than this many ms, calls are timed in batches (see
   * `timeCalls`); default 20, 0 turns batching off.
   */
  batchBelowMs?: number;
  /** The largest batch (default 4096). */
  maxBatch?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** One path for `timeCallsAlternating`: record a call; wait until the recorded work is done. */
export interface CallJob {
  record: () => void | Promise<void>;
  wait: () => Promise<void>;
}

/**
 * Median ms per call of `record`, each timed iteration ending in `wait()` (which returns once
 * the recorded work is done).
 *
 * A wait has a fixed cost of its own (Deno's WebGPU polls for finished work; about 11 ms here,
 * on llvmpipe and on an NVIDIA driver alike), larger than many kernels take on a real GPU.
 * So when one call and its wait take less than `batchBelowMs`, the batch of calls per wait
 * doubles until a batch takes several times that, and the figure is the slope between batches
 * of r and r/2 calls: (T(r) - T(r/2)) / (r/2), which the fixed cost cancels out of. Where noise
 * makes the slope meaningless (not positive), it is T(r) / r, the fixed cost included.
 */
export async function timeCalls(
  record: () => void | Promise<void>,
  wait: () => Promise<void>,
  opts: TimeOptions = {},
): Promise<number> {
  return (await timeCallsAlternating([{ record, wait }], opts))[0];
}

/**
 * `timeCalls` for several paths at once, their timed iterations taken in turn (a, b, c, a, b,
 * c, ...) so that the machine's drift falls on all of them alike: on a shared CPU it shifts by
 * as much as the ratios a bench reports, and timing one path after another puts a phase change
 * between them. Each path gets its warm-up and its own batch size; the rounds go on until every
 * path has `minIters` of them and `minMs` of timed work, or `maxIters` rounds.
 */
export async function timeCallsAlternating(
  jobs: CallJob[],
  opts: TimeOptions = {},
): Promise<number[]> {
  const run = async (job: CallJob, reps: number) => {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await job.record();
    await job.wait();
    return performance.now() - t0;
  };
  const minMs = opts.minMs ?? 1000;
  const minIters = opts.minIters ?? 3;
  const maxIters = opts.maxIters ?? 50;
  const below = opts.batchBelowMs ?? 20;
  const maxBatch = opts.maxBatch ?? 4096;
  // Per path: 1 (one call per wait) or the batch r of the slope between r and r/2 calls.
  const reps: number[] = [];
  const big: number[][] = [], small: number[][] = [], total: number[] = [];
  for (const job of jobs) {
    for (let i = 0; i < (opts.warmup ?? 1); i++) await run(job, 1);
    const one = await run(job, 1);
    let r = 1;
    if (below > 0 && one < below) {
      r = 2;
      while (r < maxBatch && await run(job, r) < 4 * Math.max(below, one)) r *= 2;
    }
    reps.push(r);
    // An unbatched path's first timed call counts as its first iteration.
    big.push(r === 1 ? [one] : []);
    small.push([]);
    total.push(r === 1 ? one : 0);
  }
  const done = (j: number) => big[j].length >= minIters && total[j] >= minMs;
  while (!jobs.every((_, j) => done(j)) && jobs.some((_, j) => big[j].length < maxIters)) {
    for (const [j, job] of jobs.entries()) {
      if (big[j].length >= maxIters) continue;
      const b = await run(job, reps[j]);
      big[j].push(b);
      total[j] += b;
      if (reps[j] > 1) {
        const s = await run(job, reps[j] / 2);
        small[j].push(s);
        total[j] += s;
      }
    }
  }
  return jobs.map((_, j) => {
    if (reps[j] === 1) return median(big[j]);
    const slope = (median(big[j]) - median(small[j])) / (reps[j] / 2);
    return slope > 0 ? slope : median(big[j]) / reps[j];
  });
}

/** `timeCalls` with the device's own wait for submitted work. */
export function timeGpu(
  dev: Device,
  record: () => void | Promise<void>,
  opts: TimeOptions = {},
): Promise<number> {
  return timeCalls(record, () => dev.sync(), opts);
}

/**
 * Times the paths in turn (a, b, a, b, ...) so that the machine's drift, which on a shared CPU
 * is as large as the differences the benches compare, falls on all of them alike. Each gets one
 * untimed warm-up call, then `iters` timed ones, each with the buffer pool emptied first and
 * ending once its GPU work is done; returned per path: the median ms and the largest peak of
 * extra GPU bytes (the device's live-bytes counter above what was live before the call).
 */
export async function interleaved(
  dev: Device,
  fs: (() => void | Promise<void>)[],
  iters: number,
): Promise<{ ms: number; peak: number }[]> {
  const ts = fs.map(() => [] as number[]);
  const peaks = fs.map(() => 0);
  for (let i = -1; i < iters; i++) {
    for (const [j, f] of fs.entries()) {
      await dev.sync();
      dev.trim();
      const base = dev.memory.live;
      dev.resetPeak();
      const t0 = performance.now();
      await f();
      await dev.sync();
      if (i >= 0) ts[j].push(performance.now() - t0);
      peaks[j] = Math.max(peaks[j], dev.memory.peak - base);
    }
  }
  return ts.map((t, j) => ({ ms: median(t), peak: peaks[j] }));
}

/** GFLOP/s of `flops` done in `ms`. */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}

/** GB/s of `bytes` moved in `ms`. */
export function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}

/** One printable line: name, shape, ms, rate, and the peer beside it. */
export function formatResult(r: BenchResult): string {
  const rate = (x: { gflops?: number; gbps?: number }) =>
    x.gflops !== undefined
      ? `${x.gflops.toFixed(2)} GFLOPS`
      : x.gbps !== undefined
      ? `${x.gbps.toFixed(2)} GB/s`
      : "";
  const mib = (b?: number) => b === undefined ? "" : ` peak ${(b / 2 ** 20).toFixed(1)} MiB`;
  let line = `${r.name.padEnd(18)} [${r.shape.join(", ")}]`.padEnd(48) +
    `${r.ms.toFixed(2).padStart(10)} ms  ${rate(r).padEnd(16)}${mib(r.peak_bytes)}`;
  if (r.peer) {
    const speedup = r.peer.ms / r.ms;
    line += `  | peer ${r.peer.name}: ${r.peer.ms.toFixed(2)} ms ${rate(r.peer)}${
      mib(r.peer.peak_bytes)
    } (x${speedup.toFixed(2)})`;
  }
  if (r.extra) {
    line += "  " + Object.entries(r.extra).map(([k, v]) => `${k}=${v}`).join(" ");
  }
  return line;
}

/** `blocked`, `tiled` or `tiled8`, optionally with `:WX,WY,BK` (e.g. `tiled8:16,8,16`). */
export function parseGemm(s: string, base: GemmForm): GemmForm {
  const m = /^(blocked|tiled8|tiled)(?::(\d+),(\d+),(\d+))?$/.exec(s);
  if (!m) throw new RangeError(`--gemm ${s}: expected blocked, tiled or tiled8[:WX,WY,BK]`);
  const form = m[1] as GemmForm["form"];
  return m[2] ? { form, wx: +m[2], wy: +m[3], bk: +m[4] } : { ...base, form };
}

/** The `--gemm` spelling of a form: `blocked`, or `tiled:WX,WY,BK` / `tiled8:WX,WY,BK`. */
export function gemmName(g: GemmForm): string {
  return g.form === "blocked" ? "blocked" : `${g.form}:${g.wx},${g.wy},${g.bk}`;
}
