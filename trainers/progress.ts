/**
 * A terminal progress bar for the phases of a run (SFT, RL, evaluation):
 *
 *   grpo  12/100  12% |███▌                       | 0:05<0:37 1.9 s/it loss=1.234 reward=0.5
 *
 * On a terminal (stderr is a TTY) the line is redrawn in place with "\r" at most 10 times a
 * second. Elsewhere (CI logs, pipes) it prints plain lines: after the first step, each time
 * another 10% of the steps is done, when 30 s passed since the last line, and at the end.
 *
 * The formatting functions are pure and exported for tests; `ProgressBar` takes its clock,
 * output and terminal width as options.
 */

/** "m:ss" below an hour, "h:mm:ss" above; "--:--" for a negative or non-finite value. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  if (h > 0) return `${h}:${String(m).padStart(2, "0")}:${ss}`;
  return `${m}:${ss}`;
}

/**
 * Seconds left, from the durations of completed steps (seconds, oldest first). The first step
 * is left out once there are others (it pays for shader compilation and warm-up), and only
 * the last `window` steps count, so the estimate follows a change of pace. NaN when no step
 * is done yet.
 */
export function etaSeconds(stepDurations: readonly number[], remaining: number, window = 20) {
  if (remaining <= 0) return 0;
  let d = stepDurations;
  if (d.length >= 2) d = d.slice(1);
  if (d.length > window) d = d.slice(d.length - window);
  if (d.length === 0) return NaN;
  let sum = 0;
  for (const x of d) sum += x;
  return (sum / d.length) * remaining;
}

/** A compact number: 4 significant digits, exponent form for very large or small values. */
export function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e6) return String(v);
  if (a >= 1e5 || a < 1e-3) {
    const [mant, exp] = v.toExponential(2).split("e");
    return `${mant.replace(/\.?0+$/, "")}e${exp}`;
  }
  const p = v.toPrecision(4);
  return p.includes(".") ? p.replace(/\.?0+$/, "") : p;
}

/** "name=value" pairs in insertion order; undefined values are left out. */
export function formatMetrics(metrics: Record<string, number | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(metrics)) {
    if (v === undefined) continue;
    parts.push(`${k}=${formatNumber(v)}`);
  }
  return parts.join(" ");
}

const PARTIAL = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/**
 * The inside of a bar, exactly `width` characters: full blocks plus one eighth-block for the
 * fractional cell, or "#" and "." with `ascii`. `fraction` is clamped to [0, 1].
 */
export function renderBar(fraction: number, width: number, ascii = false): string {
  if (width <= 0) return "";
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  if (ascii) {
    const full = Math.floor(f * width);
    return "#".repeat(full) + ".".repeat(width - full);
  }
  const eighths = Math.floor(f * width * 8);
  const full = Math.floor(eighths / 8);
  const part = full < width ? PARTIAL[eighths % 8] : "";
  return "█".repeat(full) + part + " ".repeat(width - full - (part ? 1 : 0));
}

export interface ProgressState {
  phase: string;
  step: number;
  total: number;
  /** Seconds since the phase started. */
  elapsed: number;
  /** Seconds left (NaN when unknown). */
  eta: number;
  /** Mean seconds per step used for the ETA (NaN when unknown). */
  secondsPerStep?: number;
  metrics?: Record<string, number | undefined>;
  done?: boolean;
}

/**
 * One progress line fitted to `columns` characters: the bar takes what the text leaves,
 * between 10 and 30 cells; metrics that do not fit are cut off at the last whole pair.
 */
export function formatProgressLine(s: ProgressState, columns = 100, ascii = false): string {
  const total = Math.max(0, s.total);
  const frac = total > 0 ? s.step / total : 1;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const width = String(total).length;
  const count = `${String(s.step).padStart(width)}/${total}`;
  const time = s.done
    ? `${formatDuration(s.elapsed)}`
    : `${formatDuration(s.elapsed)}<${formatDuration(s.eta)}`;
  const rate = s.secondsPerStep !== undefined && Number.isFinite(s.secondsPerStep)
    ? ` ${rateText(s.secondsPerStep)}`
    : "";
  const head = `${s.phase} ${count} ${pct} `;
  const tail = ` ${time}${rate}`;
  const barWidth = Math.min(30, Math.max(10, columns - head.length - tail.length - 2 - 20));
  let line = `${head}|${renderBar(frac, barWidth, ascii)}|${tail}`;
  const m = s.metrics ? formatMetrics(s.metrics) : "";
  if (m) {
    const room = columns - line.length - 1;
    let cut = "";
    for (const pair of m.split(" ")) {
      const next = cut ? `${cut} ${pair}` : pair;
      if (next.length > room) break;
      cut = next;
    }
    if (cut) line += " " + cut;
  }
  return line;
}

function rateText(secondsPerStep: number): string {
  if (secondsPerStep >= 1 || secondsPerStep <= 0) return `${formatNumber(secondsPerStep)} s/it`;
  return `${formatNumber(1 / secondsPerStep)} it/s`;
}

/**
 * Plain (non-TTY) output policy for a step before the last: print after the first step,
 * whenever the step enters a new tenth of the total, and when `intervalS` seconds passed since
 * the last printed line (`ProgressBar.finish` prints the end). `lastDecile` is
 * floor(10 * lastPrintedStep / total), -1 before the first print.
 */
export function shouldPrintPlain(
  step: number,
  total: number,
  lastDecile: number,
  sinceLastPrintS: number,
  intervalS = 30,
): boolean {
  if (lastDecile < 0) return true;
  if (sinceLastPrintS >= intervalS) return true;
  return total > 0 && Math.floor((10 * step) / total) > lastDecile;
}

export interface ProgressOptions {
  /** Output sink (default: synchronous write to stderr). */
  write?: (text: string) => void;
  /** Redraw in place (default: Deno.stderr.isTerminal()). */
  tty?: boolean;
  /** Milliseconds (default performance.now). */
  now?: () => number;
  /** Line width (default: the terminal's columns, or 100). */
  columns?: number;
  /** Plain-mode time interval in seconds (default 30). */
  intervalS?: number;
  /** ASCII bar instead of block characters (default: on when not a TTY). */
  ascii?: boolean;
}

/** Progress of one phase of `total` steps. Call `update` after each step, `finish` at the end. */
export class ProgressBar {
  readonly phase: string;
  readonly total: number;
  #write: (text: string) => void;
  #tty: boolean;
  #now: () => number;
  #columns: number;
  #intervalS: number;
  #ascii: boolean;
  #start: number;
  #lastStepAt: number;
  #durations: number[] = [];
  #step = 0;
  #metrics: Record<string, number | undefined> = {};
  #lastPrintAt = -Infinity;
  #lastDecile = -1;
  #drawn = false;
  #finished = false;

  constructor(phase: string, total: number, opts: ProgressOptions = {}) {
    this.phase = phase;
    this.total = total;
    this.#tty = opts.tty ?? safeIsTerminal();
    this.#write = opts.write ?? writeStderr;
    this.#now = opts.now ?? (() => performance.now());
    // One column spare on a terminal: a line of exactly its width would wrap and break "\r".
    this.#columns = opts.columns ?? (this.#tty ? terminalColumns() - 1 : 100);
    this.#intervalS = opts.intervalS ?? 30;
    this.#ascii = opts.ascii ?? !this.#tty;
    this.#start = this.#now();
    this.#lastStepAt = this.#start;
  }

  /** The state as it would be drawn now. */
  state(): ProgressState {
    const now = this.#now();
    const d = this.#durations.length >= 2 ? this.#durations.slice(1) : this.#durations;
    const recent = d.slice(-20);
    const spi = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : NaN;
    return {
      phase: this.phase,
      step: this.#step,
      total: this.total,
      elapsed: (now - this.#start) / 1000,
      eta: etaSeconds(this.#durations, this.total - this.#step),
      secondsPerStep: spi,
      metrics: this.#metrics,
      done: this.#finished,
    };
  }

  /** Records that `step` steps are done (1-based count) with the latest metrics. */
  update(step: number, metrics?: Record<string, number | undefined>): void {
    const now = this.#now();
    const advanced = step - this.#step;
    if (advanced > 0) {
      const each = (now - this.#lastStepAt) / 1000 / advanced;
      for (let i = 0; i < advanced; i++) this.#durations.push(each);
      this.#lastStepAt = now;
    }
    this.#step = step;
    if (metrics) this.#metrics = { ...this.#metrics, ...metrics };
    this.#draw(false);
  }

  /** Prints a message line without breaking the bar. */
  log(message: string): void {
    if (this.#tty && this.#drawn) {
      this.#write(`\r\x1b[K${message}\n`);
      this.#draw(true);
    } else {
      this.#write(`${message}\n`);
    }
  }

  /** Draws the final line (elapsed time only) and ends it with a newline. */
  finish(metrics?: Record<string, number | undefined>): void {
    if (this.#finished) return;
    if (metrics) this.#metrics = { ...this.#metrics, ...metrics };
    this.#finished = true;
    const line = formatProgressLine(this.state(), this.#columns, this.#ascii);
    this.#write(this.#tty ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  #draw(force: boolean): void {
    const now = this.#now();
    const since = (now - this.#lastPrintAt) / 1000;
    if (this.#tty) {
      if (!force && since < 0.1 && this.#step < this.total) return;
      this.#write(`\r${formatProgressLine(this.state(), this.#columns, this.#ascii)}\x1b[K`);
      this.#drawn = true;
    } else {
      if (this.#step >= this.total) return; // finish() prints the last line
      const due = shouldPrintPlain(
        this.#step,
        this.total,
        this.#lastDecile,
        since,
        this.#intervalS,
      );
      if (!force && !due) return;
      this.#write(`${formatProgressLine(this.state(), this.#columns, this.#ascii)}\n`);
      this.#lastDecile = this.total > 0 ? Math.floor((10 * this.#step) / this.total) : 10;
    }
    this.#lastPrintAt = now;
  }
}

function safeIsTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns || 100;
  } catch {
    return 100;
  }
}

const stderrEncoder = new TextEncoder();
function writeStderr(text: string): void {
  const bytes = stderrEncoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}
