/**
 * One entry point for the compiled binary: `<binary> train|eval|bench|pairs|report|verify ...`
 * runs the same code as the `deno task` of that name.
 */
const COMMANDS: Record<
  string,
  () => Promise<{ main: (args: string[]) => Promise<number> | number }>
> = {
  train: () => import("./trainers/train.ts"),
  eval: () => import("./trainers/eval.ts"),
  pairs: () => import("./trainers/pairs.ts"),
  report: () => import("./trainers/report_cli.ts"),
  "init-model": () => import("./engine/init_model.ts"),
  bench: () => import("./bench/main.ts"),
};

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  const load = cmd ? COMMANDS[cmd] : undefined;
  if (!load) {
    console.error(`usage: <binary> ${Object.keys(COMMANDS).join("|")} [args]`);
    return cmd === undefined || cmd === "--help" ? 0 : 2;
  }
  return await (await load()).main(rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
