/**
 * `deno task compile`: one executable (`dist/qwen-posttrain`) that runs train, eval, bench,
 * pairs, report and init-model (cli.ts), with the WGSL kernels and bench files embedded.
 *
 * `deno compile` needs the `denort` runtime binary of the target; Deno downloads it from
 * dl.deno.land, which is not reachable from every machine. When `DENORT_BIN` is set it is used;
 * otherwise this stops with a message saying exactly what is missing. The built binary is run
 * once (`--help`) and removed if that fails, so a broken binary is never left behind.
 */
import { join } from "node:path";

const OUT = join("dist", Deno.build.os === "windows" ? "qwen-posttrain.exe" : "qwen-posttrain");

export async function main(_args: string[]): Promise<number> {
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
  await Deno.mkdir("dist", { recursive: true });
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
  const smoke = await new Deno.Command(OUT, { args: ["--help"], stdout: "null", stderr: "piped" })
    .output();
  if (!smoke.success) {
    await Deno.remove(OUT).catch(() => {});
    console.error(
      `compile: the built binary failed its first run and was removed:\n${
        new TextDecoder().decode(smoke.stderr)
      }`,
    );
    return 1;
  }
  console.log(`built ${OUT}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
