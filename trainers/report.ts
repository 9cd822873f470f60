/**
 * runs/<name>/report.html: one self-contained page (no network: no scripts, fonts, images or
 * links) with an inline SVG line plot per metric of metrics.jsonl, the evaluations of
 * evals.jsonl (pass@k over steps) and the resolved config.json.
 *
 * Plot conventions (what a test or a reader can rely on):
 *   <figure class="plot" data-metric="NAME"> holds one <svg class="chart">
 *   each series is one <polyline class="series" data-series="LABEL" data-count="N">
 *   with exactly N points, N = the finite values of that series (NaN/Inf and non-numbers are
 *   skipped); series of more than 30 points also get a <polyline class="smooth"> (EMA)
 *   rows carrying a string `phase` are split into one series per phase
 *   metrics of `PRIMARY_METRICS` that the run did not record are named in
 *   <p class="missing">; other numeric fields are plotted after the primary ones
 *
 * The page is deterministic: the same files give the same bytes.
 */

import { basename, resolve } from "node:path";
import { type MetricRow, parseMetrics } from "./metrics.ts";
import { formatNumber } from "./progress.ts";

/** The plots every report shows (or names as missing), with their titles. */
export const PRIMARY_METRICS: ReadonlyArray<readonly [key: string, title: string]> = [
  ["loss", "loss"],
  ["reward", "reward (mean)"],
  ["reward_std", "reward std"],
  ["frac_reward_zero_std", "fraction of groups with zero reward std"],
  ["kl", "KL to reference"],
  ["grad_norm", "gradient norm (before clipping)"],
  ["learning_rate", "learning rate"],
  ["completions/mean_length", "completion length (tokens)"],
];

/** Plotted when present, after the primary ones. */
const KNOWN_EXTRA: ReadonlyArray<readonly [string, string]> = [
  ["entropy", "entropy"],
  ["clip_ratio", "clip ratio"],
  ["rewards/chosen", "rewards/chosen"],
  ["rewards/margins", "rewards/margins"],
  ["rewards/accuracies", "rewards/accuracies"],
  ["step_time", "step time (s)"],
  ["tokens_per_second", "tokens per second"],
];

const COLORS = ["#1f5fbf", "#d2521b", "#2a9d3a", "#8e3fbf", "#b8860b", "#0f8f8f", "#c0306a"];

export interface Series {
  label: string;
  /** [x, y] pairs; non-finite pairs are dropped when drawn. */
  points: Array<[number, number]>;
  /** Stroke color; by default the palette in series order. */
  color?: string;
}

export interface PlotOptions {
  /** Goes in data-metric and the figure id. */
  key: string;
  title: string;
  subtitle?: string;
  xLabel?: string;
  yLabel?: string;
  series: Series[];
  width?: number;
  height?: number;
  /** Fixed y range (e.g. [0, 1] for pass@k); otherwise from the data. */
  yRange?: [number, number];
  /** Draw an EMA over series of more than 30 points (default true; off for schedules). */
  smooth?: boolean;
}

/** Escapes text for HTML content and double-quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/**
 * Axis ticks at multiples of 1, 2 or 5 x 10^k covering [lo, hi], about `target` of them.
 * A degenerate range is widened around its value. Returns the widened range and the ticks.
 */
export function niceTicks(lo: number, hi: number, target = 5): {
  lo: number;
  hi: number;
  ticks: number[];
  step: number;
} {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new Error(`niceTicks: range [${lo}, ${hi}] is not finite`);
  }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(cleanTick(i * step, step));
  return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks, step };
}

/** i*step without float noise (0.30000000000000004 -> 0.3). */
function cleanTick(v: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  return digits > 15 ? v : Number(v.toFixed(digits));
}

/** Debiased exponential moving average (TensorBoard's smoothing). */
export function ema(values: readonly number[], weight = 0.8): number[] {
  const out: number[] = [];
  let acc = 0;
  let norm = 0;
  for (const v of values) {
    acc = acc * weight + (1 - weight) * v;
    norm = norm * weight + (1 - weight);
    out.push(acc / norm);
  }
  return out;
}

function fmt(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

/** One SVG line chart with ticks, grid, axis labels, title, subtitle and a legend. */
export function linePlot(opts: PlotOptions): string {
  const W = opts.width ?? 540, H = opts.height ?? 320;
  // A legend when series need names: several, or one named otherwise than the plot.
  const legend = opts.series.length > 1 ||
    (opts.series.length === 1 && opts.series[0].label !== opts.key);
  const ml = 72, mr = 16, mt = 46, mb = legend ? 62 : 46;
  const pw = W - ml - mr, ph = H - mt - mb;
  const series = opts.series.map((s, i) => ({
    label: s.label,
    color: s.color ?? COLORS[i % COLORS.length],
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
  }));
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1, 6);
  const yt = opts.yRange
    ? niceTicks(opts.yRange[0], opts.yRange[1], 5)
    : niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, 5);
  const sx = (x: number) => ml + ((x - xt.lo) / (xt.hi - xt.lo)) * pw;
  const sy = (y: number) => mt + ph - ((y - yt.lo) / (yt.hi - yt.lo)) * ph;
  const out: string[] = [];
  out.push(
    `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" ` +
      `aria-label="${escapeHtml(opts.title)}">`,
  );
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text class="title" x="${ml}" y="18">${escapeHtml(opts.title)}</text>`);
  if (opts.subtitle) {
    out.push(`<text class="subtitle" x="${ml}" y="34">${escapeHtml(opts.subtitle)}</text>`);
  }
  // Grid and ticks.
  out.push(`<g class="grid">`);
  for (const t of yt.ticks) {
    const y = fmt(sy(t));
    out.push(`<line x1="${ml}" y1="${y}" x2="${ml + pw}" y2="${y}"/>`);
  }
  for (const t of xt.ticks) {
    const x = fmt(sx(t));
    out.push(`<line x1="${x}" y1="${mt}" x2="${x}" y2="${mt + ph}"/>`);
  }
  out.push(`</g>`);
  out.push(`<g class="axis">`);
  out.push(`<line x1="${ml}" y1="${mt + ph}" x2="${ml + pw}" y2="${mt + ph}"/>`);
  out.push(`<line x1="${ml}" y1="${mt}" x2="${ml}" y2="${mt + ph}"/>`);
  for (const t of yt.ticks) {
    const y = fmt(sy(t));
    out.push(`<line x1="${ml - 5}" y1="${y}" x2="${ml}" y2="${y}"/>`);
    out.push(
      `<text class="ytick" x="${ml - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">` +
        `${escapeHtml(formatNumber(t))}</text>`,
    );
  }
  for (const t of xt.ticks) {
    const x = fmt(sx(t));
    out.push(`<line x1="${x}" y1="${mt + ph}" x2="${x}" y2="${mt + ph + 5}"/>`);
    out.push(
      `<text class="xtick" x="${x}" y="${mt + ph + 18}" text-anchor="middle">` +
        `${escapeHtml(formatNumber(t))}</text>`,
    );
  }
  out.push(`</g>`);
  out.push(
    `<text class="xlabel" x="${ml + pw / 2}" y="${mt + ph + 34}" text-anchor="middle">` +
      `${escapeHtml(opts.xLabel ?? "step")}</text>`,
  );
  const yl = opts.yLabel ?? opts.key;
  out.push(
    `<text class="ylabel" x="14" y="${mt + ph / 2}" text-anchor="middle" ` +
      `transform="rotate(-90 14 ${mt + ph / 2})">${escapeHtml(yl)}</text>`,
  );
  // Series.
  series.forEach((s) => {
    const color = s.color;
    const pts = s.points.map(([x, y]) => `${fmt(sx(x))},${fmt(sy(y))}`).join(" ");
    const smooth = (opts.smooth ?? true) && s.points.length > 30;
    out.push(
      `<polyline class="series" data-series="${escapeHtml(s.label)}" ` +
        `data-count="${s.points.length}" points="${pts}" fill="none" stroke="${color}" ` +
        `stroke-width="${smooth ? 1 : 2}"${smooth ? ` stroke-opacity="0.35"` : ""}/>`,
    );
    if (smooth) {
      const e = ema(s.points.map((p) => p[1]));
      const sp = s.points.map(([x], j) => `${fmt(sx(x))},${fmt(sy(e[j]))}`).join(" ");
      out.push(
        `<polyline class="smooth" points="${sp}" fill="none" stroke="${color}" ` +
          `stroke-width="2"/>`,
      );
    }
    if (s.points.length <= 30) {
      for (const [x, y] of s.points) {
        out.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="2.5" fill="${color}"/>`);
      }
    }
  });
  // Legend: one row under the x label.
  if (legend) {
    out.push(`<g class="legend">`);
    let x = ml;
    const y = H - 10;
    series.forEach((s) => {
      const color = s.color;
      out.push(
        `<line x1="${x}" y1="${y}" x2="${x + 16}" y2="${y}" stroke="${color}" stroke-width="2"/>`,
      );
      out.push(
        `<text x="${x + 20}" y="${y}" dominant-baseline="middle">${escapeHtml(s.label)}</text>`,
      );
      x += 34 + 6.5 * s.label.length;
    });
    out.push(`</g>`);
  }
  out.push(`</svg>`);
  return out.join("\n");
}

/**
 * Series of one metric over steps, one per value of the rows' string `phase` (in order of
 * appearance; each phase keeps its palette color across plots) unless `splitPhases` is false.
 */
export function metricSeries(
  rows: readonly MetricRow[],
  key: string,
  splitPhases = true,
): Series[] {
  const phases = splitPhases ? phaseOrder(rows) : [];
  const byPhase = new Map<string, Array<[number, number]>>();
  for (const r of rows) {
    const v = r[key];
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    const phase = splitPhases && typeof r.phase === "string" ? r.phase : "";
    let pts = byPhase.get(phase);
    if (!pts) byPhase.set(phase, pts = []);
    pts.push([r.step, v]);
  }
  return [...byPhase].map(([phase, points]) => {
    const i = phases.indexOf(phase);
    return { label: phase || key, points, color: COLORS[Math.max(0, i) % COLORS.length] };
  });
}

/** Distinct string `phase` values in order of first appearance. */
function phaseOrder(rows: readonly MetricRow[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (typeof r.phase === "string" && !out.includes(r.phase)) out.push(r.phase);
  }
  return out;
}

/** Pass@k series of evaluation rows: one per task and k, over steps. */
export function evalSeries(evals: readonly MetricRow[]): Series[] {
  const map = new Map<string, Array<[number, number]>>();
  for (const r of evals) {
    const task = typeof r.task === "string" ? r.task : "";
    for (const [k, v] of Object.entries(r)) {
      const m = /^(?:eval\/)?(?:(.+)\/)?pass@(\d+)$/.exec(k);
      if (!m || typeof v !== "number" || !Number.isFinite(v)) continue;
      const t = m[1] ?? task;
      const label = `${t ? t + " " : ""}pass@${m[2]}`;
      let pts = map.get(label);
      if (!pts) map.set(label, pts = []);
      pts.push([r.step, v]);
    }
  }
  const labels = [...map.keys()].sort((a, b) => {
    const ka = Number(/pass@(\d+)$/.exec(a)![1]), kb = Number(/pass@(\d+)$/.exec(b)![1]);
    const ta = a.slice(0, a.lastIndexOf("pass@")), tb = b.slice(0, b.lastIndexOf("pass@"));
    return ta === tb ? ka - kb : ta < tb ? -1 : 1;
  });
  return labels.map((label) => ({ label, points: map.get(label)! }));
}

export interface ReportData {
  /** The run's name (its directory's basename). */
  name: string;
  /** The resolved config (config.json), or null. */
  config: Record<string, unknown> | null;
  metrics: MetricRow[];
  evals: MetricRow[];
  /** Problems found while reading (shown on the page). */
  notes?: string[];
}

/** Flattens nested config objects to "a.b" keys; arrays print as JSON. */
export function flattenConfig(
  obj: Record<string, unknown>,
  prefix = "",
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      out.push(...flattenConfig(v as Record<string, unknown>, key));
    } else out.push([key, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  return out;
}

/** One line naming the run and its main settings, shown under every plot title. */
export function configSummary(name: string, config: Record<string, unknown> | null): string {
  const parts = [name];
  if (config) {
    const pick = ["trainer", "model", "task", "learning_rate", "lr", "batch_size", "group_size"];
    for (const k of pick) {
      const v = config[k];
      if (v === undefined || v === null || typeof v === "object") continue;
      parts.push(k === "trainer" || k === "model" || k === "task" ? String(v) : `${k}=${v}`);
    }
  }
  return parts.join(" · ");
}

const CSS = `
body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.summary{color:#555;margin:0 0 12px}
.plots{display:flex;flex-wrap:wrap;gap:14px}
figure.plot{margin:0;background:#fff;border:1px solid #ddd}
figcaption{font-size:12px;color:#555;padding:0 10px 8px;max-width:520px}
svg.chart{display:block;font-size:11px}
svg .title{font-size:14px;font-weight:bold;fill:#222}
svg .subtitle{font-size:11px;fill:#666}
svg .grid line{stroke:#e6e6e6;stroke-width:1}
svg .axis line{stroke:#444;stroke-width:1}
svg text{fill:#333}
.missing,.note{color:#8a5a00}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f0f0f0}
`;

/** The whole page as a string (pure: no file access). */
export function buildReportHtml(data: ReportData): string {
  const { name, config, metrics, evals } = data;
  const subtitle = configSummary(name, config);
  const h: string[] = [];
  h.push(`<!DOCTYPE html>`);
  h.push(`<html lang="en"><head><meta charset="utf-8">`);
  h.push(`<title>${escapeHtml(`${name} report`)}</title>`);
  h.push(`<style>${CSS}</style></head><body>`);
  h.push(`<h1>Run ${escapeHtml(name)}</h1>`);
  const last = metrics.length ? metrics[metrics.length - 1].step : null;
  const totalTime = metrics.reduce(
    (a, r) =>
      a + (typeof r.step_time === "number" && Number.isFinite(r.step_time) ? r.step_time : 0),
    0,
  );
  const nonfinite =
    metrics.filter((r) =>
      r.skipped === true || (typeof r.loss === "number" && !Number.isFinite(r.loss))
    ).length;
  const summary = [
    subtitle,
    `${metrics.length} logged steps` + (last !== null ? `, last step ${last}` : ""),
  ];
  if (totalTime > 0) summary.push(`training time ${formatNumber(totalTime)} s`);
  if (nonfinite > 0) summary.push(`${nonfinite} steps skipped or non-finite`);
  summary.push(`${evals.length} evaluations`);
  h.push(`<p class="summary">${escapeHtml(summary.join(" — "))}</p>`);
  for (const n of data.notes ?? []) h.push(`<p class="note">${escapeHtml(n)}</p>`);

  const figure = (
    key: string,
    title: string,
    series: Series[],
    extra: Partial<PlotOptions> = {},
  ) => {
    const id = "plot-" + key.replace(/[^A-Za-z0-9_-]/g, "_");
    return `<figure class="plot" id="${escapeHtml(id)}" data-metric="${escapeHtml(key)}">\n` +
      linePlot({ key, title, subtitle, series, ...extra }) +
      `\n<figcaption>${escapeHtml(seriesSummary(series))}</figcaption>\n</figure>`;
  };

  // Primary metrics.
  h.push(`<h2>Training</h2>`);
  h.push(`<div class="plots">`);
  const missing: string[] = [];
  const empty: string[] = [];
  const present = new Set<string>();
  for (const r of metrics) for (const k of Object.keys(r)) present.add(k);
  for (const [key, title] of PRIMARY_METRICS) {
    const s = metricSeries(metrics, key);
    if (s.length) h.push(figure(key, title, s, { smooth: key !== "learning_rate" }));
    else if (present.has(key)) empty.push(key);
    else missing.push(key);
  }
  h.push(`</div>`);
  if (missing.length) {
    h.push(
      `<p class="missing">Not recorded in this run: ${escapeHtml(missing.join(", "))}.</p>`,
    );
  }
  if (empty.length) {
    h.push(`<p class="missing">No finite values: ${escapeHtml(empty.join(", "))}.</p>`);
  }

  // Evaluations: evals.jsonl rows and eval/* fields of metric rows.
  h.push(`<h2>Evaluations</h2>`);
  const ev = evalSeries([...evals, ...metrics.filter((r) => Object.keys(r).some(isEvalKey))]);
  if (ev.length) {
    h.push(`<div class="plots">`);
    h.push(figure("evals", "pass@k over training", ev, {
      yLabel: "pass@k",
      yRange: [0, 1],
      smooth: false,
    }));
    h.push(`</div>`);
  } else {
    h.push(`<p class="missing">No evaluations recorded (evals.jsonl is absent or empty).</p>`);
  }
  if (evals.length) h.push(evalTable(evals));

  // Other fields: known extras, timing parts together, then anything else numeric.
  const primary = new Set(PRIMARY_METRICS.map(([k]) => k));
  const extraPlots: string[] = [];
  const done = new Set<string>([...primary, "step", "phase"]);
  for (const [key, title] of KNOWN_EXTRA) {
    done.add(key);
    const s = metricSeries(metrics, key);
    if (s.length) extraPlots.push(figure(key, title, s));
  }
  const timingKeys = [...present].filter((k) => k.startsWith("timing/")).sort();
  for (const k of timingKeys) done.add(k);
  // One series per part across phases (steps are unique within one metrics.jsonl).
  const timing: Series[] = timingKeys.flatMap((k, i) =>
    metricSeries(metrics, k, false).map((s) => ({
      ...s,
      label: k.replace(/^timing\//, ""),
      color: COLORS[i % COLORS.length],
    }))
  );
  if (timing.length) {
    extraPlots.push(figure("timing", "time per step by part (s)", timing, { yLabel: "seconds" }));
  }
  for (const k of [...present].sort()) {
    if (done.has(k) || isEvalKey(k)) continue;
    const s = metricSeries(metrics, k);
    if (s.length) extraPlots.push(figure(k, k, s));
  }
  if (extraPlots.length) {
    h.push(`<h2>Other logged values</h2>`);
    h.push(`<div class="plots">`, ...extraPlots, `</div>`);
  }

  // Config.
  h.push(`<h2>Configuration</h2>`);
  if (config) {
    h.push(`<table class="config"><tr><th>field</th><th>value</th></tr>`);
    for (const [k, v] of flattenConfig(config)) {
      h.push(`<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`);
    }
    h.push(`</table>`);
  } else {
    h.push(`<p class="missing">No config.json in this run.</p>`);
  }
  h.push(`</body></html>`);
  return h.join("\n") + "\n";
}

/** "label: last v (step s), min a, max b; ..." over the finite points of each series. */
export function seriesSummary(series: readonly Series[]): string {
  const parts: string[] = [];
  for (const s of series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (!pts.length) continue;
    const ys = pts.map((p) => p[1]);
    const [lx, ly] = pts[pts.length - 1];
    parts.push(
      `${s.label}: last ${formatNumber(ly)} (step ${lx}), min ${formatNumber(Math.min(...ys))}, ` +
        `max ${formatNumber(Math.max(...ys))}`,
    );
  }
  return parts.join("; ");
}

function isEvalKey(k: string): boolean {
  return k.startsWith("eval/");
}

function evalTable(evals: readonly MetricRow[]): string {
  const cols: string[] = ["step"];
  for (const r of evals) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: unknown) =>
    typeof v === "number" ? formatNumber(v) : v === undefined ? "" : String(v);
  const rows = evals.map((r) =>
    `<tr>${cols.map((c) => `<td>${escapeHtml(cell(r[c]))}</td>`).join("")}</tr>`
  );
  return `<table class="evals"><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}` +
    `</tr>\n${rows.join("\n")}\n</table>`;
}

export interface ReportResult {
  /** The written report.html. */
  path: string;
  /** data-metric keys of the figures drawn. */
  plots: string[];
  /** Primary metrics the run did not record. */
  missing: string[];
}

/**
 * Reads runDir/{config.json, metrics.jsonl, evals.jsonl} (each optional) and writes
 * runDir/report.html (temporary file + rename, so a reader never sees half a page).
 * A malformed config.json or JSONL line throws with the file (and line).
 */
export function renderReport(runDir: string): ReportResult {
  const dir = resolve(runDir);
  const st = Deno.statSync(dir);
  if (!st.isDirectory) throw new Error(`renderReport: ${runDir} is not a directory`);
  const notes: string[] = [];
  let config: Record<string, unknown> | null = null;
  const cfgPath = `${dir}/config.json`;
  const cfgText = readOptional(cfgPath);
  if (cfgText !== null) {
    try {
      const v = JSON.parse(cfgText);
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        throw new Error("expected a JSON object");
      }
      config = v;
    } catch (e) {
      throw new Error(`${cfgPath}: ${(e as Error).message}`);
    }
  }
  const metricsPath = `${dir}/metrics.jsonl`;
  const evalsPath = `${dir}/evals.jsonl`;
  const metricsText = readOptional(metricsPath);
  const metrics = metricsText !== null ? parseMetrics(metricsText, metricsPath) : [];
  if (metricsText === null) notes.push("No metrics.jsonl in this run yet.");
  const evalsText = readOptional(evalsPath);
  const evals = evalsText !== null ? parseMetrics(evalsText, evalsPath) : [];
  const html = buildReportHtml({ name: basename(dir), config, metrics, evals, notes });
  const out = `${dir}/report.html`;
  const tmp = `${out}.tmp`;
  Deno.writeTextFileSync(tmp, html);
  Deno.renameSync(tmp, out);
  const plots = [...html.matchAll(/<figure class="plot" id="[^"]*" data-metric="([^"]*)"/g)]
    .map((m) => m[1].replace(/&amp;/g, "&"));
  const missing = PRIMARY_METRICS.map(([k]) => k).filter((k) =>
    !metrics.some((r) => typeof r[k] === "number" && Number.isFinite(r[k]))
  );
  return { path: out, plots, missing };
}

function readOptional(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
