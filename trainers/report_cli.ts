/**
 * `deno task report runs/NAME [runs/OTHER ...]`: rebuilds runs/NAME/report.html from the
 * run's config.json, metrics.jsonl and evals.jsonl.
 */

import { renderReport } from "./report.ts";

export function main(args: string[]): number {
  if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
    console.log("usage: deno task report runs/NAME [runs/OTHER ...]");
    return args.length === 0 ? 2 : 0;
  }
  let status = 0;
  for (const dir of args) {
    try {
      const r = renderReport(dir);
      const missing = r.missing.length ? `; not recorded: ${r.missing.join(", ")}` : "";
      console.log(`wrote ${r.path} (${r.plots.length} plots${missing})`);
    } catch (e) {
      const msg = e instanceof Deno.errors.NotFound
        ? `${dir}: no such run directory`
        : (e as Error).message;
      console.error(`report: ${msg}`);
      status = 1;
    }
  }
  return status;
}

if (import.meta.main) Deno.exit(main(Deno.args));
