/**
 * One entry point for the compiled binary: `<binary> train|eval|bench|pairs|report|verify ...`
 * runs the same code as the `deno task` of that name. `<binary> self-check` reads every
 * embedded WGSL kernel and round-trips text through the embedded default tokenizer, and prints
 * one line starting with SELF_CHECK_OK; `deno task compile` runs it on the binary it builds.
 */
import { kernelSource } from "./engine/device.ts";

export const SELF_CHECK_OK = "qwen-posttrain self-check ok";
const KERNELS = [
  "adamw",
  "attention",
  "cast",
  "elementwise",
  "embedding",
  "fma_ceiling",
  "gemm",
  "gemm_tiled",
  "rmsnorm",
  "rope",
  "sampling",
  "swiglu",
  "vocab_head",
];

/** Checks what a compiled binary must carry; throws naming what is missing. */
export async function selfCheck(): Promise<string> {
  let bytes = 0;
  for (const k of KERNELS) {
    const src = kernelSource(k);
    if (!src.includes("@compute")) throw new Error(`kernel ${k}.wgsl has no entry point`);
    bytes += src.length;
  }
  const { Tokenizer } = await import("./engine/tokenizer.ts");
  const tok = await Tokenizer.default();
  const text = "Using the numbers [3, 5, 7], create an equation that equals 22.";
  const back = tok.decode(tok.encode(text));
  if (back !== text) throw new Error(`the default tokenizer does not round-trip: ${back}`);
  return `${SELF_CHECK_OK}: ${KERNELS.length} kernels (${bytes} characters), tokenizer of ` +
    `${tok.vocabSize} tokens`;
}
const COMMANDS: Record<
  string,
  () => Promise<{ main: (args: string[]) => Promise<number> | number }>
> = {
  train: () => import("./trainers/train.ts"),
  eval: () => import("./trainers/eval.ts"),
  pairs: () => import("./trainers/pairs.ts"),
  experiment: () => import("./trainers/experiment.ts"),
  report: () => import("./trainers/report_cli.ts"),
  "init-model": () => import("./engine/init_model.ts"),
  bench: () => import("./bench/main.ts"),
};

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === "self-check") {
    console.log(await selfCheck());
    return 0;
  }
  const load = cmd ? COMMANDS[cmd] : undefined;
  if (!load) {
    console.error(`usage: <binary> ${Object.keys(COMMANDS).join("|")}|self-check [args]`);
    return cmd === undefined || cmd === "--help" ? 0 : 2;
  }
  return await (await load()).main(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
