/**
 * `deno task compile`: one executable (`dist/qwen-posttrain`) that runs train, eval, bench,
 * pairs, report and init-model (cli.ts), with the WGSL kernels and bench files embedded.
 *
 * `deno compile` needs the `denort` runtime binary of the target; Deno downloads it from
 * dl.deno.land, which is not reachable from every machine. When `DENORT_BIN` is set it is used;
 * otherwise this stops with a message saying exactly what is missing. The built binary is run
 * once (`self-check`: it must read every embedded kernel, round-trip text through the embedded
 * tokenizer and print the marker line) and removed if that fails, so a broken binary is never
 * left behind. A `DENORT_BIN` that is not a denort runtime (the full `deno` binary, say) gives a
 * binary that behaves as `deno` itself; the self-check catches that.
 *
 * `deno task compile [--out PATH]` (default dist/qwen-posttrain).
 */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { SELF_CHECK_OK } from "./cli.ts";

const DEFAULT_OUT = join(
  "dist",
  Deno.build.os === "windows" ? "qwen-posttrain.exe" : "qwen-posttrain",
);

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { out: { type: "string", default: DEFAULT_OUT } },
    strict: true,
  });
  const OUT = values.out!;
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort) {
    console.error(
      `compile: deno compile needs the denort runtime for ${Deno.build.target} ` +
        `(deno ${Deno.version.deno}); it is normally downloaded from dl.deno.land, which this ` +
        `machine may not reach. Set DENORT_BIN to the path of that denort binary and run again.`,
    );
    return 1;
  }
  try {
    await Deno.stat(denort);
  } catch {
    console.error(`compile: DENORT_BIN=${denort} does not exist`);
    return 1;
  }
  await Deno.mkdir(dirname(OUT), { recursive: true });
  const build = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "-A",
      "--include",
      "kernels",
      "--include",
      "bench",
      "--output",
      OUT,
      "cli.ts",
    ],
    env: { DENORT_BIN: denort },
  }).spawn().status;
  if (!build.success) {
    console.error(`compile: deno compile failed (exit ${build.code})`);
    return 1;
  }
  const smoke = await new Deno.Command(OUT, {
    args: ["self-check"],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => ({ success: false, stdout: new Uint8Array(), stderr: e.message }));
  const said = new TextDecoder().decode(smoke.stdout);
  if (!smoke.success || !said.startsWith(SELF_CHECK_OK)) {
    await Deno.remove(OUT).catch(() => {});
    const err = typeof smoke.stderr === "string"
      ? smoke.stderr
      : new TextDecoder().decode(smoke.stderr);
    console.error(
      `compile: the built binary failed its self-check and was removed (is DENORT_BIN=${denort} ` +
        `the denort runtime of deno ${Deno.version.deno} for ${Deno.build.target}?):\n` +
        `${said.slice(0, 2000)}${err.slice(0, 2000)}`,
    );
    return 1;
  }
  console.log(`built ${OUT}: ${said.trim()}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
