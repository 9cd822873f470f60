import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import { openEvals, openMetrics } from "../trainers/metrics.ts";
import {
  buildReportHtml,
  ema,
  linePlot,
  niceTicks,
  PRIMARY_METRICS,
  renderReport,
} from "../trainers/report.ts";
import { main as reportCli } from "../trainers/report_cli.ts";

/**
 * A fake two-phase run: SFT steps 1..20 (loss, learning_rate, grad_norm), then GRPO steps
 * 21..60 with reward metrics; a NaN loss at step 30 and an Infinity grad_norm at step 40;
 * no `kl` at all; three evaluations.
 */
function writeFakeRun(dir: string) {
  Deno.writeTextFileSync(
    `${dir}/config.json`,
    JSON.stringify({ trainer: "grpo", model: "tiny-qwen2", task: "countdown", group_size: 8 }),
  );
  const m = openMetrics(dir);
  for (let s = 1; s <= 60; s++) {
    const sft = s <= 20;
    const row: Record<string, number | string> & { step: number } = {
      step: s,
      phase: sft ? "sft" : "grpo",
      loss: s === 30 ? NaN : 2 / s + 0.05 * Math.sin(s),
      learning_rate: 1e-5 * Math.min(1, s / 5),
      grad_norm: s === 40 ? Infinity : 1 + 0.3 * Math.cos(s),
      step_time: 0.5,
      "timing/forward": 0.2,
      "timing/backward": 0.25,
    };
    if (!sft) {
      row.reward = 0.1 + s / 100;
      row.reward_std = 0.3;
      row.frac_reward_zero_std = 0.5 - s / 200;
      row["completions/mean_length"] = 40 + s;
    }
    m.write(row);
  }
  m.close();
  const e = openEvals(dir);
  e.write({ step: 0, task: "countdown", n: 8, "pass@1": 0.05, "pass@4": 0.15 });
  e.write({ step: 20, task: "countdown", n: 8, "pass@1": 0.2, "pass@4": 0.4 });
  e.write({ step: 60, task: "countdown", n: 8, "pass@1": 0.3, "pass@4": 0.55 });
  e.close();
}

/** data-metric -> polylines (class "series") with their data-count and point count. */
function plotsOf(html: string): Map<string, Array<{ count: number; points: number }>> {
  const out = new Map<string, Array<{ count: number; points: number }>>();
  const figs = html.split(`<figure class="plot"`).slice(1);
  for (const f of figs) {
    const key = /data-metric="([^"]*)"/.exec(f)![1];
    assert.equal((f.match(/<svg class="chart"/g) ?? []).length, 1, `${key}: one svg`);
    const lines = [...f.matchAll(/<polyline class="series"[^>]*>/g)].map((m) => ({
      count: Number(/data-count="(\d+)"/.exec(m[0])![1]),
      points: /points="([^"]*)"/.exec(m[0])![1].trim().split(/\s+/).filter(Boolean).length,
    }));
    out.set(key, lines);
  }
  return out;
}

Deno.test("niceTicks() covers the range with 1-2-5 steps and widens a flat range", () => {
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(3, 97, 5).ticks, [0, 20, 40, 60, 80, 100]);
  const t = niceTicks(0.13, 0.61, 5);
  assert.equal(t.step, 0.1);
  assert.deepEqual(t.ticks, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  assert.deepEqual(niceTicks(1e-6, 1e-5, 5).ticks.length, 6);
  const flat = niceTicks(2, 2, 5);
  assert.ok(flat.lo < 2 && flat.hi > 2, JSON.stringify(flat));
  assert.ok(niceTicks(0, 0).ticks.length >= 2);
  assert.throws(() => niceTicks(0, NaN), /not finite/);
});

Deno.test("ema() is the debiased exponential moving average", () => {
  assert.deepEqual(ema([4, 4, 4]), [4, 4, 4]);
  const e = ema([0, 1], 0.5);
  assert.equal(e[0], 0);
  assert.ok(Math.abs(e[1] - 2 / 3) < 1e-12); // (0.25*0 + 0.5*1) / (0.25 + 0.5)
});

Deno.test("linePlot() draws one point per finite value, in the plot area", () => {
  const svg = linePlot({
    key: "loss",
    title: "loss",
    series: [{ label: "loss", points: [[1, 2], [2, NaN], [3, 1], [4, Infinity], [5, 0.5]] }],
  });
  const pts = /points="([^"]*)"/.exec(svg)![1].split(" ").map((p) => p.split(",").map(Number));
  assert.equal(pts.length, 3);
  for (const [x, y] of pts) assert.ok(x >= 72 && x <= 540 - 16 && y >= 46 && y <= 320 - 46);
  // x increases with step, y decreases as the value falls (SVG y grows downwards).
  assert.ok(pts[0][0] < pts[1][0] && pts[1][0] < pts[2][0]);
  assert.ok(pts[0][1] < pts[1][1] && pts[1][1] < pts[2][1]);
  assert.match(svg, /class="xtick"/);
  assert.match(svg, /class="ytick"/);
});

Deno.test("renderReport() draws an svg per recorded metric with one point per finite value", () => {
  const dir = Deno.makeTempDirSync({ prefix: "report_test_" });
  writeFakeRun(dir);
  const res = renderReport(dir);
  const html = Deno.readTextFileSync(`${dir}/report.html`);
  assert.equal(res.path, `${dir}/report.html`);
  const plots = plotsOf(html);
  assert.deepEqual([...plots.keys()], res.plots);
  // Expected finite values per phase series, computed from the rows written above.
  const expect: Record<string, number[]> = {
    loss: [20, 39], // NaN at step 30
    learning_rate: [20, 40],
    grad_norm: [20, 39], // Infinity at step 40
    reward: [40],
    reward_std: [40],
    frac_reward_zero_std: [40],
    "completions/mean_length": [40],
    evals: [3, 3], // countdown pass@1, pass@4
    step_time: [20, 40],
    timing: [60, 60], // forward, backward across phases
  };
  for (const [key, counts] of Object.entries(expect)) {
    const lines = plots.get(key);
    assert.ok(lines, `plot ${key} missing; have ${[...plots.keys()]}`);
    assert.deepEqual(lines.map((l) => l.count), counts, key);
    assert.deepEqual(lines.map((l) => l.points), counts, `${key}: points attribute`);
  }
  assert.equal(plots.size, Object.keys(expect).length, [...plots.keys()].join(","));
  // Captions give the last value and range of each series.
  assert.match(
    html,
    /<figcaption>countdown pass@1: last 0\.3 \(step 60\), min 0\.05, max 0\.3; countdown pass@4: /,
  );
  // kl was never logged: named as missing, not drawn.
  assert.deepEqual(res.missing, ["kl"]);
  assert.match(html, /<p class="missing">Not recorded in this run: kl\.<\/p>/);
  // The run name and config summary appear under each plot title.
  const subtitle = `${dir.split("/").pop()} · grpo · tiny-qwen2 · countdown · group_size=8`;
  assert.equal(html.split(`<text class="subtitle"`).length - 1, plots.size);
  assert.ok(html.includes(subtitle), subtitle);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("the report is self-contained: no scripts, links, fonts or external URLs", () => {
  const dir = Deno.makeTempDirSync({ prefix: "report_test_" });
  writeFakeRun(dir);
  // A config value that looks like a URL is shown as text, never as a link.
  Deno.writeTextFileSync(
    `${dir}/config.json`,
    JSON.stringify({ model: "https://example.com/<script>x</script>" }),
  );
  renderReport(dir);
  const html = Deno.readTextFileSync(`${dir}/report.html`);
  assert.ok(!/\b(src|href)\s*=/i.test(html), "no src or href attributes");
  assert.ok(!/<script|<link|<img|<iframe|@import|url\(/i.test(html));
  assert.ok(!/\b(src|href|xmlns)="?https?:/i.test(html));
  assert.ok(html.includes("https://example.com/&lt;script&gt;x&lt;/script&gt;"));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("renderReport() works on a run with no metrics, evals or config yet", () => {
  const dir = Deno.makeTempDirSync({ prefix: "report_test_" });
  const res = renderReport(dir);
  const html = Deno.readTextFileSync(res.path);
  assert.deepEqual(res.plots, []);
  assert.deepEqual(res.missing, PRIMARY_METRICS.map(([k]) => k));
  assert.match(html, /No metrics\.jsonl in this run yet/);
  assert.match(html, /No evaluations recorded/);
  assert.match(html, /No config\.json in this run/);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /<\/html>\n$/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("a metric whose values are all non-finite is noted, not drawn", () => {
  const html = buildReportHtml({
    name: "r",
    config: null,
    metrics: [{ step: 1, loss: NaN, kl: 0.1 }, { step: 2, loss: Infinity, kl: 0.2 }],
    evals: [],
  });
  const plots = plotsOf(html);
  assert.ok(!plots.has("loss"));
  assert.deepEqual(plots.get("kl")!.map((l) => l.count), [2]);
  assert.match(html, /No finite values: loss\./);
  assert.match(html, /2 steps skipped or non-finite/);
});

Deno.test("eval/* fields of metric rows are plotted with the evaluations", () => {
  const html = buildReportHtml({
    name: "r",
    config: null,
    metrics: [
      { step: 1, loss: 1, "eval/pass@1": 0.1 },
      { step: 2, loss: 0.5 },
      { step: 3, loss: 0.25, "eval/pass@1": 0.3 },
    ],
    evals: [],
  });
  const plots = plotsOf(html);
  assert.deepEqual(plots.get("evals")!.map((l) => l.count), [2]);
  assert.ok(!plots.has("eval/pass@1"), "not drawn twice");
});

Deno.test("renderReport() names the file and line of a malformed metrics row", () => {
  const dir = Deno.makeTempDirSync({ prefix: "report_test_" });
  Deno.writeTextFileSync(`${dir}/metrics.jsonl`, `{"step":1,"loss":1}\n{"step":2,,}\n`);
  assert.throws(() => renderReport(dir), new RegExp(`${dir}/metrics\\.jsonl:2: not valid JSON`));
  Deno.writeTextFileSync(`${dir}/metrics.jsonl`, "");
  Deno.writeTextFileSync(`${dir}/config.json`, "[1]");
  assert.throws(() => renderReport(dir), /config\.json: expected a JSON object/);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("the report CLI rebuilds report.html and fails on a missing run", () => {
  const dir = Deno.makeTempDirSync({ prefix: "report_test_" });
  writeFakeRun(dir);
  const log = console.log, err = console.error;
  const said: string[] = [];
  console.log = (s: string) => said.push(s);
  console.error = (s: string) => said.push(s);
  try {
    assert.equal(reportCli([dir]), 0);
    assert.equal(reportCli([`${dir}/nope`]), 1);
    assert.equal(reportCli([]), 2);
  } finally {
    console.log = log;
    console.error = err;
  }
  assert.match(said[0], /^wrote .*report\.html \(10 plots; not recorded: kl\)$/);
  assert.match(said[1], /nope: no such run directory/);
  assert.ok(Deno.statSync(`${dir}/report.html`).size > 1000);
  Deno.removeSync(dir, { recursive: true });
});

// ---------------------------------------------------------------------------------------
// Headless Chromium (issue 7): the page as a browser draws it.

function findChromium(): string | null {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return null;
}

const CHROMIUM = findChromium();

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG into RGBA pixels. */
function decodePng(bytes: Uint8Array): { width: number; height: number; rgba: Uint8Array } {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  sig.forEach((b, i) => assert.equal(bytes[i], b, "PNG signature"));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 8, width = 0, height = 0, colorType = 0;
  const idat: Uint8Array[] = [];
  while (off < bytes.length) {
    const len = view.getUint32(off);
    const type = String.fromCharCode(...bytes.subarray(off + 4, off + 8));
    const data = bytes.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = view.getUint32(off + 8);
      height = view.getUint32(off + 12);
      assert.equal(data[8], 8, "bit depth 8");
      colorType = data[9];
      assert.ok(colorType === 2 || colorType === 6, `color type ${colorType}`);
      assert.equal(data[12], 0, "not interlaced");
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  const raw = new Uint8Array(inflateSync(Buffer.concat(idat)));
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assert.equal(filter, 0, `filter ${filter}`);
      px[y * stride + x] = (line[x] + pred) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(px.subarray(i * bpp, i * bpp + 3), i * 4);
    rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3] : 255;
  }
  return { width, height, rgba };
}

async function chromium(args: string[], profile: string): Promise<string> {
  const out = await new Deno.Command(CHROMIUM!, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      `--user-data-dir=${profile}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `chromium ${args.join(" ")} failed (${out.code}): ${stderr.slice(-2000)}`);
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "headless Chromium draws every plot of report.html (DOM and screenshot)",
  ignore: CHROMIUM === null,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "report_test_" });
    writeFakeRun(dir);
    const res = renderReport(dir);
    const url = `file://${res.path}`;
    const profile = `${dir}/chromium-profile`;

    // DOM as Chromium parsed it: one svg per figure, each series with its points.
    const dom = await chromium(["--dump-dom", url], profile);
    const plots = plotsOf(dom);
    assert.deepEqual([...plots.keys()], res.plots);
    for (const [key, lines] of plots) {
      assert.ok(lines.length > 0, `${key}: no series`);
      for (const l of lines) assert.equal(l.points, l.count, `${key}: points in the DOM`);
    }

    // Screenshot: the page is not blank, and the series strokes are on it.
    const png = `${dir}/shot.png`;
    await chromium([`--screenshot=${png}`, "--window-size=1200,1600", url], profile);
    const { width, height, rgba } = decodePng(Deno.readFileSync(png));
    assert.equal(width, 1200);
    let ink = 0, blue = 0, orange = 0;
    for (let i = 0; i < width * height; i++) {
      const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      if (r < 200 || g < 200 || b < 200) ink++;
      // Palette #1f5fbf (first phase) and #d2521b (second), drawn opaque.
      if (Math.abs(r - 0x1f) < 30 && Math.abs(g - 0x5f) < 30 && Math.abs(b - 0xbf) < 30) blue++;
      if (Math.abs(r - 0xd2) < 30 && Math.abs(g - 0x52) < 30 && Math.abs(b - 0x1b) < 30) orange++;
    }
    const total = width * height;
    assert.ok(ink > total * 0.01, `only ${ink} of ${total} pixels are not white`);
    assert.ok(ink < total * 0.6, `${ink} of ${total} pixels are dark: page not rendered right`);
    assert.ok(blue > 500, `only ${blue} pixels of the first series color`);
    assert.ok(orange > 500, `only ${orange} pixels of the second series color`);
    Deno.removeSync(dir, { recursive: true });
  },
});

if (CHROMIUM === null) {
  console.warn(
    "report_test: chromium not found on PATH; the headless Chromium test is ignored " +
      "(apt-get install -y --no-install-recommends chromium)",
  );
}
