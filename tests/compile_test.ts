import assert from "node:assert/strict";
import { main as cli } from "../cli.ts";
import { main } from "../compile.ts";

Deno.test("deno task compile without DENORT_BIN says what is missing and builds nothing", async () => {
  const saved = Deno.env.get("DENORT_BIN");
  Deno.env.delete("DENORT_BIN");
  const errors: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    assert.equal(await main([]), 1);
  } finally {
    console.error = orig;
    if (saved !== undefined) Deno.env.set("DENORT_BIN", saved);
  }
  assert.match(errors.join("\n"), /DENORT_BIN/);
  assert.match(errors.join("\n"), /denort runtime/);
});

Deno.test("the binary's entry point names its commands and refuses unknown ones", async () => {
  const orig = console.error;
  const errors: string[] = [];
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    assert.equal(await cli(["--help"]), 0);
    assert.equal(await cli(["frobnicate"]), 2);
  } finally {
    console.error = orig;
  }
  assert.match(errors[0], /train\|eval\|pairs\|report\|init-model\|bench/);
});
