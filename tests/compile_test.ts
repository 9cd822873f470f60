import assert from "node:assert/strict";
import { main as cli, SELF_CHECK_OK, selfCheck } from "../cli.ts";
import { main } from "../compile.ts";
import { captureErrors } from "./util.ts";

/** Runs `fn` with DENORT_BIN set to `value` (or unset), restoring it afterwards. */
async function withDenort<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = Deno.env.get("DENORT_BIN");
  if (value === undefined) Deno.env.delete("DENORT_BIN");
  else Deno.env.set("DENORT_BIN", value);
  try {
    return await fn();
  } finally {
    if (saved === undefined) Deno.env.delete("DENORT_BIN");
    else Deno.env.set("DENORT_BIN", saved);
  }
}

Deno.test("deno task compile without DENORT_BIN says what is missing and builds nothing", async () => {
  const [code, errors] = await withDenort(undefined, () => captureErrors(() => main([])));
  assert.equal(code, 1);
  assert.match(errors.join("\n"), /DENORT_BIN/);
  assert.match(errors.join("\n"), /denort runtime/);
});

Deno.test("the binary's entry point names its commands and refuses unknown ones", async () => {
  const [codes, errors] = await captureErrors(async () => [
    await cli(["--help"]),
    await cli(["frobnicate"]),
  ]);
  assert.deepEqual(codes, [0, 2]);
  assert.match(errors[0], /train\|eval\|pairs\|experiment\|report\|init-model\|bench\|self-check/);
});

Deno.test("self-check reads every kernel in kernels/ and round-trips the default tokenizer", async () => {
  const line = await selfCheck();
  assert.ok(line.startsWith(SELF_CHECK_OK), line);
  const files = [...Deno.readDirSync(new URL("../kernels", import.meta.url))]
    .filter((e) => e.name.endsWith(".wgsl")).length;
  assert.match(line, new RegExp(`: ${files} kernels`));
  assert.match(line, /tokenizer of 151\d{3} tokens/);
});

Deno.test("a DENORT_BIN that is not a denort runtime gives no binary and says why", async () => {
  // The full deno binary builds an executable that behaves as `deno` itself (it answers
  // --help); the self-check must catch it and remove the file.
  const dir = await Deno.makeTempDir({ prefix: "compile_" });
  const out = `${dir}/qp`;
  const [code, errors] = await withDenort(
    Deno.execPath(),
    () => captureErrors(() => main(["--out", out])),
  );
  assert.equal(code, 1);
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  assert.match(errors.join("\n"), /failed its self-check and was removed/);
  assert.match(errors.join("\n"), /denort runtime of deno/);
  await Deno.remove(dir, { recursive: true });
});
