/**
 * `deno run -A bench/jit_profile.ts [--wait S] [--seconds S] [--top N] [--context N] [--spans N]
 * [--matmul MxKxN[:nt|nn|tn]] [-- SCRIPT [ARGS...]]`: where the CPU time of a kernel goes on
 * llvmpipe, instruction by instruction.
 *
 * llvmpipe compiles each WGSL entry point to x86 code in anonymous executable memory, which
 * `perf` samples but cannot name. This tool runs SCRIPT (which should dispatch the kernel in
 * a loop for longer than --wait + --seconds), or without one a loop of engine/gemm.ts's
 * matmul at --matmul (default 512x896x4864:nt, the benchmark's shape), samples it with `perf record -e cpu-clock` for
 * --seconds after --wait, copies the process's small anonymous executable mappings out of
 * /proc/PID/mem while it still runs, stops it, disassembles the copies with `objdump`, and
 * prints the samples per mnemonic, per KiB of code (--spans N: the N busiest) and the hottest
 * instructions with the code before them.
 * Needs `perf` and `objdump` (Debian: linux-perf, binutils); a development aid, not part of
 * the engine or the suite (tests/jit_profile_test.ts checks its parsing on fixed text).
 *
 * What it showed for gemm_nt16 at [512, 896, 4864] (kernels/gemm.wgsl header): about 80% of
 * the samples in Mesa's per-lane loops for storage loads, and the multiply-adds compiled as
 * separate vmulps and vaddps.
 */
import { parseArgs } from "node:util";
import { Device } from "../engine/device.ts";
import { matmul } from "../engine/gemm.ts";
import { Rng } from "../engine/rng.ts";

/** An executable mapping of a process. */
export interface Region {
  lo: bigint;
  hi: bigint;
}

/** One disassembled instruction. */
export interface Instr {
  addr: bigint;
  text: string;
}

/**
 * The anonymous executable mappings in /proc/PID/maps text (no backing file, not [vdso] and
 * the like), at most `maxBytes` long each (skips the JavaScript engine's large code space).
 */
export function anonExecRegions(maps: string, maxBytes = 64 << 20): Region[] {
  const out: Region[] = [];
  for (const line of maps.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !f[1].includes("x") || f.length > 5) continue;
    const [lo, hi] = f[0].split("-").map((x) => BigInt("0x" + x));
    if (hi - lo <= BigInt(maxBytes)) out.push({ lo, hi });
  }
  return out;
}

/** Instructions from `objdump -D -b binary` output (lines "  addr:\tbytes \tmnemonic ops"). */
export function parseObjdump(text: string): Instr[] {
  const out: Instr[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*([0-9a-f]+):\t(?:[0-9a-f]{2} )+\s*\t(.+)$/.exec(line);
    if (m) out.push({ addr: BigInt("0x" + m[1]), text: m[2].trim() });
  }
  return out;
}

/** Sample counts per instruction address from `perf script -F ip` output (one hex per line). */
export function countIps(text: string): Map<bigint, number> {
  const counts = new Map<bigint, number>();
  for (const line of text.split("\n")) {
    const s = line.trim();
    if (!/^[0-9a-f]+$/.test(s)) continue;
    const ip = BigInt("0x" + s);
    counts.set(ip, (counts.get(ip) ?? 0) + 1);
  }
  return counts;
}

/** Samples per mnemonic over `instrs`, largest first. */
export function byMnemonic(instrs: Instr[], ips: Map<bigint, number>): [string, number][] {
  const by = new Map<string, number>();
  for (const i of instrs) {
    const n = ips.get(i.addr);
    if (!n) continue;
    const op = i.text.split(/\s+/)[0];
    by.set(op, (by.get(op) ?? 0) + n);
  }
  return [...by].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

/**
 * Samples per `span`-byte stretch of code (by address), largest first: where a kernel's time
 * sits (its k loop, its epilogue) when its hot code spans several stretches.
 */
export function bySpan(
  instrs: Instr[],
  ips: Map<bigint, number>,
  span = 1024,
): { lo: bigint; samples: number; instrs: number }[] {
  const by = new Map<bigint, { samples: number; instrs: number }>();
  const s = BigInt(span);
  for (const i of instrs) {
    const lo = i.addr / s * s;
    const e = by.get(lo) ?? { samples: 0, instrs: 0 };
    e.samples += ips.get(i.addr) ?? 0;
    e.instrs++;
    by.set(lo, e);
  }
  return [...by].map(([lo, e]) => ({ lo, ...e })).filter((e) => e.samples > 0)
    .sort((a, b) => b.samples - a.samples || (a.lo < b.lo ? -1 : 1));
}

/** The `top` most sampled instructions, each with `context` instructions before it. */
export function hotspots(
  instrs: Instr[],
  ips: Map<bigint, number>,
  top: number,
  context: number,
): { addr: bigint; samples: number; lines: string[] }[] {
  const index = new Map(instrs.map((ins, i) => [ins.addr, i]));
  const hot = [...ips].filter(([a]) => index.has(a)).sort((a, b) => b[1] - a[1]).slice(0, top);
  return hot.map(([addr, samples]) => {
    const i = index.get(addr)!;
    const lines = instrs.slice(Math.max(0, i - context), i + 1).map((ins) =>
      `${ins.addr.toString(16)} ${String(ips.get(ins.addr) ?? 0).padStart(6)}  ${ins.text}`
    );
    return { addr, samples, lines };
  });
}

async function run(cmd: string, args: string[], mayFail = false): Promise<string> {
  let r: Deno.CommandOutput;
  try {
    r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`jit_profile needs ${cmd} on PATH (Debian: linux-perf for perf, binutils)`);
    }
    throw e;
  }
  if (!r.success && mayFail) {
    console.error(`${cmd}: ${new TextDecoder().decode(r.stderr).trim()}`);
  } else if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/** "MxKxN[:layout]" as [m, k, n] and the layout (nt when not given). */
export function parseMatmul(spec: string): { shape: [number, number, number]; layout: string } {
  const [dims, layout = "nt"] = spec.split(":");
  const shape = dims.split("x").map(Number);
  if (shape.length !== 3 || shape.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new Error(`--matmul ${spec}: expected MxKxN with positive integers, e.g. 512x896x4864`);
  }
  if (!["nt", "nn", "tn"].includes(layout)) {
    throw new Error(`--matmul ${spec}: layout ${layout} is not one of nt, nn, tn`);
  }
  return { shape: shape as [number, number, number], layout };
}

/** Dispatches one matmul after another until the process is stopped. */
async function loopMatmul(spec: string): Promise<void> {
  const { shape: [m, k, n], layout } = parseMatmul(spec);
  const dev = await Device.create();
  const rng = new Rng(1);
  const transA = layout === "tn", transB = layout === "nt";
  const a = dev.upload("A", rng.normals(m * k), transA ? [k, m] : [m, k]);
  const b = dev.upload("B", rng.normals(k * n), transB ? [n, k] : [k, n]);
  const c = dev.empty("C", [m, n]);
  console.log(`matmul ${layout} [${m}, ${k}, ${n}] in a loop`);
  for (;;) {
    matmul(dev, a, b, c, { transA, transB });
    await dev.sync();
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      wait: { type: "string", default: "8" },
      seconds: { type: "string", default: "4" },
      top: { type: "string", default: "3" },
      context: { type: "string", default: "30" },
      matmul: { type: "string", default: "512x896x4864:nt" },
      spans: { type: "string", default: "0" },
      "loop-matmul": { type: "string" },
    },
    allowPositionals: true,
  });
  if (values["loop-matmul"]) return await loopMatmul(values["loop-matmul"]);
  parseMatmul(values.matmul!);
  const script = positionals.length > 0
    ? positionals
    : [new URL(import.meta.url).pathname, "--loop-matmul", values.matmul!];
  const tmp = await Deno.makeTempDir({ prefix: "jit_profile" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...script],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const pid = child.pid;
  try {
    await new Promise((r) => setTimeout(r, 1000 * Number(values.wait)));
    const data = `${tmp}/perf.data`;
    await run("perf", [
      "record",
      "-e",
      "cpu-clock",
      "-F",
      "2000",
      "-p",
      String(pid),
      "-o",
      data,
      "--",
      "sleep",
      values.seconds!,
    ], true); // threads that come and go during the attach make it warn and fail; data is kept
    if (!(await Deno.stat(data).catch(() => null))?.size) throw new Error("perf recorded nothing");
    const regions = anonExecRegions(await Deno.readTextFile(`/proc/${pid}/maps`));
    const mem = await Deno.open(`/proc/${pid}/mem`, { read: true });
    const instrs: Instr[] = [];
    for (const [i, r] of regions.entries()) {
      const buf = new Uint8Array(Number(r.hi - r.lo));
      try {
        await mem.seek(r.lo, Deno.SeekMode.Start);
        let got = 0;
        while (got < buf.length) {
          const n = await mem.read(buf.subarray(got));
          if (n === null) break;
          got += n;
        }
      } catch {
        continue; // unreadable (guard pages and the like)
      }
      const file = `${tmp}/region${i}.bin`;
      await Deno.writeFile(file, buf);
      const asm = await run("objdump", [
        "-D",
        "-b",
        "binary",
        "-mi386:x86-64",
        `--adjust-vma=0x${r.lo.toString(16)}`,
        file,
      ]);
      instrs.push(...parseObjdump(asm));
    }
    mem.close();
    const ips = countIps(await run("perf", ["script", "-i", data, "-F", "ip"]));
    const total = [...ips.values()].reduce((s, n) => s + n, 0);
    const inJit = instrs.reduce((s, i) => s + (ips.get(i.addr) ?? 0), 0);
    const pct = (n: number) => (100 * n / Math.max(1, total)).toFixed(1).padStart(5);
    console.log(`samples ${total}, in llvmpipe's compiled code ${inJit} (${pct(inJit)}%)`);
    for (const [op, n] of byMnemonic(instrs, ips).slice(0, 24)) {
      console.log(`  ${op.padEnd(14)} ${String(n).padStart(7)} ${pct(n)}%`);
    }
    const spans = bySpan(instrs, ips).slice(0, Number(values.spans));
    if (spans.length > 0) console.log("samples per KiB of code, by address:");
    for (const sp of spans) {
      console.log(`  ${sp.lo.toString(16)} ${String(sp.samples).padStart(7)} ${pct(sp.samples)}%`);
    }
    for (const h of hotspots(instrs, ips, Number(values.top), Number(values.context))) {
      console.log(`\nhot ${h.addr.toString(16)}: ${h.samples} samples`);
      for (const l of h.lines) console.log("  " + l);
    }
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) await main(Deno.args);
