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
  const run = async (reps: number) => {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await record();
    await wait();
    return performance.now() - t0;
  };
  for (let i = 0; i < (opts.warmup ?? 1); i++) await run(1);
  const minMs = opts.minMs ?? 1000;
  const minIters = opts.minIters ?? 3;
  const maxIters = opts.maxIters ?? 50;
  const below = opts.batchBelowMs ?? 20;
  const one = await run(1);
  if (below <= 0 || one >= below) {
    const times = [one];
    let total = one;
    while (times.length < maxIters && (times.length < minIters || total < minMs)) {
      const dt = await run(1);
      times.push(dt);
      total += dt;
    }
    return median(times);
  }
  const maxBatch = opts.maxBatch ?? 4096;
  let reps = 2;
  while (reps < maxBatch && await run(reps) < 4 * Math.max(below, one)) reps *= 2;
  const big: number[] = [], small: number[] = [];
  let total = 0;
  while (big.length < maxIters && (big.length < minIters || total < minMs)) {
    const b = await run(reps), s = await run(reps / 2);
    big.push(b);
    small.push(s);
    total += b + s;
  }
  const slope = (median(big) - median(small)) / (reps / 2);
  return slope > 0 ? slope : median(big) / reps;
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
