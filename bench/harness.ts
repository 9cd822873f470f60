/**
 * Benchmark plumbing shared by every `bench/<op>_bench.ts`: timing GPU work to completion,
 * and the result record that `deno task bench --json FILE` writes.
 *
 * A bench module exports `benches: Bench[]`; bench/main.ts finds every `*_bench.ts` file,
 * runs its benches and prints one line each with the peer's figure from the same run.
 */
import type { Device } from "../engine/device.ts";

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
   * When one call plus its submit-and-wait takes less than this many ms, several calls are
   * recorded per wait and the time is divided among them, so a fast GPU's figure is the work's
   * and not the round trip's (default 20; 0 turns batching off).
   */
  batchBelowMs?: number;
}

/** Calls per timed iteration: enough that one iteration lasts about 4x `belowMs`, at most 256. */
export function batchSize(oneMs: number, belowMs: number): number {
  if (belowMs <= 0 || oneMs >= belowMs) return 1;
  return Math.min(256, Math.ceil((4 * belowMs) / Math.max(oneMs, 0.01)));
}

/**
 * Median wall time in ms of one `record()`, each timed iteration ending in `dev.sync()`.
 * `record` records GPU work (dispatches) or does any async work. Calls that finish faster
 * than `batchBelowMs` are timed in batches (see TimeOptions), so the figure is per call with
 * the wait shared among the batch.
 */
export async function timeGpu(
  dev: Device,
  record: () => void | Promise<void>,
  opts: TimeOptions = {},
): Promise<number> {
  const warmup = opts.warmup ?? 1;
  let one = Infinity;
  for (let i = 0; i < warmup; i++) {
    const t0 = performance.now();
    await record();
    await dev.sync();
    one = performance.now() - t0;
  }
  const reps = batchSize(one, opts.batchBelowMs ?? 20);
  const times: number[] = [];
  const minMs = opts.minMs ?? 1000;
  const minIters = opts.minIters ?? 3;
  const maxIters = opts.maxIters ?? 50;
  let total = 0;
  while (times.length < maxIters && (times.length < minIters || total < minMs)) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await record();
    await dev.sync();
    const dt = performance.now() - t0;
    times.push(dt / reps);
    total += dt;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
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
