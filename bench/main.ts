/**
 * `deno task bench [--json FILE] [--only NAME[,NAME]] [--quick] [--large] [--gemm FORM]
 * [--attention rows4|rows1]`: runs every bench/*_bench.ts (opt-in ones only when named) on the
 * WebGPU adapter and prints ms and GFLOPS (or GB/s) beside the peer measured in the same run.
 */
import { parseArgs } from "node:util";
import { type AttentionForm, Device } from "../engine/device.ts";
import { type Bench, type BenchResult, formatResult, gemmName, parseGemm } from "./harness.ts";

export async function discoverBenches(): Promise<Bench[]> {
  const dir = new URL(".", import.meta.url);
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith("_bench.ts")) files.push(e.name);
  }
  files.sort();
  const benches: Bench[] = [];
  for (const f of files) {
    const mod = await import(new URL(f, dir).href) as { benches?: Bench[] };
    if (Array.isArray(mod.benches)) benches.push(...mod.benches);
  }
  return benches;
}

/** Runs the chosen benches (of `benches`, by default every bench file's); returns the exit code. */
export async function main(args: string[], benches?: Bench[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: "string" },
      only: { type: "string" },
      quick: { type: "boolean", default: false },
      large: { type: "boolean", default: false },
      gemm: { type: "string" },
      attention: { type: "string" },
    },
    strict: true,
  });
  const dev = await Device.create();
  if (values.gemm) dev.gemm = parseGemm(values.gemm, dev.gemm);
  if (values.attention) dev.attention = values.attention as AttentionForm;
  console.log(`matmul kernel: ${gemmName(dev.gemm)}; attention kernels: ${dev.attention}`);
  const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const all = benches ?? await discoverBenches();
  const chosen = only ? all.filter((b) => only.includes(b.name)) : all.filter((b) => !b.optIn);
  if (only && chosen.length === 0) {
    console.error(`no bench named ${only.join(", ")}; have: ${all.map((b) => b.name).join(", ")}`);
    return 2;
  }
  const results: BenchResult[] = [];
  // The JSON file is rewritten after every bench (through a temporary file), so a run cut
  // short, by a time limit or a crash, keeps the records of the benches that finished.
  const save = async (file: string) => {
    const out = {
      adapter: dev.description,
      fallback: dev.isFallback,
      gemm: dev.gemm,
      attention: dev.attention,
      results,
    };
    await Deno.writeTextFile(`${file}.tmp`, JSON.stringify(out, null, 2) + "\n");
    await Deno.rename(`${file}.tmp`, file);
  };
  for (const b of chosen) {
    const rs = await b.run({
      dev,
      quick: values.quick,
      large: values.large,
      log: (l) => console.log(l),
    });
    for (const r of rs) {
      console.log(formatResult(r));
      results.push(r);
    }
    if (values.json) await save(values.json);
  }
  if (values.json) console.log(`wrote ${values.json}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
