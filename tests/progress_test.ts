import assert from "node:assert/strict";
import {
  etaSeconds,
  formatDuration,
  formatMetrics,
  formatNumber,
  formatProgressLine,
  ProgressBar,
  renderBar,
  shouldPrintPlain,
} from "../trainers/progress.ts";

Deno.test("formatDuration() writes m:ss below an hour and h:mm:ss above", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(5.4), "0:05");
  assert.equal(formatDuration(59.6), "1:00");
  assert.equal(formatDuration(754), "12:34");
  assert.equal(formatDuration(3600), "1:00:00");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(100 * 3600 + 61), "100:01:01");
  assert.equal(formatDuration(NaN), "--:--");
  assert.equal(formatDuration(-1), "--:--");
  assert.equal(formatDuration(Infinity), "--:--");
});

Deno.test("etaSeconds() leaves out the warm-up step and averages a recent window", () => {
  assert.ok(Number.isNaN(etaSeconds([], 10)));
  assert.equal(etaSeconds([], 0), 0);
  // One step done: it is all there is.
  assert.equal(etaSeconds([4], 9), 36);
  // The 30 s first step (shader compilation) does not count once others exist.
  assert.equal(etaSeconds([30, 2, 2, 2], 6), 12);
  // Only the last `window` steps count: pace changed from 1 s to 3 s per step.
  const d = [10, ...Array(50).fill(1), ...Array(5).fill(3)];
  assert.equal(etaSeconds(d, 10, 5), 30);
  assert.equal(etaSeconds(d, 10, 10), 20);
});

Deno.test("formatNumber() keeps 4 significant digits and switches to exponents at the ends", () => {
  assert.equal(formatNumber(1.23456), "1.235");
  assert.equal(formatNumber(0.5), "0.5");
  assert.equal(formatNumber(12), "12");
  assert.equal(formatNumber(-0.125), "-0.125");
  assert.equal(formatNumber(0.30000000000000004), "0.3");
  assert.equal(formatNumber(1e-5), "1e-5");
  assert.equal(formatNumber(3.25e-6), "3.25e-6");
  assert.equal(formatNumber(123456.7), "1.23e+5");
  assert.equal(formatNumber(1234.5), "1235");
  assert.equal(formatNumber(NaN), "nan");
  assert.equal(formatNumber(-Infinity), "-inf");
  assert.equal(formatMetrics({ loss: 1.5, kl: undefined, reward: 0.25 }), "loss=1.5 reward=0.25");
});

Deno.test("renderBar() fills exactly `width` cells with eighth blocks or ASCII", () => {
  assert.equal(renderBar(0, 10), " ".repeat(10));
  assert.equal(renderBar(1, 10), "█".repeat(10));
  assert.equal(renderBar(0.5, 10), "█████     ");
  assert.equal(renderBar(0.35, 10), "███▌      ");
  assert.equal(renderBar(0.35, 10, true), "###.......");
  assert.equal(renderBar(2, 4, true), "####");
  assert.equal(renderBar(-1, 4, true), "....");
  assert.equal(renderBar(NaN, 4, true), "....");
  for (let f = 0; f <= 1; f += 0.01) {
    assert.equal([...renderBar(f, 17)].length, 17, `fraction ${f}`);
  }
});

Deno.test("formatProgressLine() shows phase, i/N, percent, elapsed<ETA, rate and metrics", () => {
  const line = formatProgressLine(
    {
      phase: "grpo",
      step: 12,
      total: 100,
      elapsed: 5,
      eta: 37,
      secondsPerStep: 1.9,
      metrics: { loss: 1.2346, reward: 0.5 },
    },
    100,
    true,
  );
  assert.equal(
    line,
    "grpo  12/100  12% |###...........................| 0:05<0:37 1.9 s/it loss=1.235 reward=0.5",
  );
  const fast = formatProgressLine(
    { phase: "sft", step: 3, total: 3, elapsed: 1, eta: 0, secondsPerStep: 0.25, done: true },
    80,
    true,
  );
  assert.match(fast, /^sft 3\/3 100% \|#+\| 0:01 4 it\/s$/);
});

Deno.test("formatProgressLine() fits the width by shrinking the bar and dropping metrics", () => {
  const metrics = { loss: 1.5, reward: 0.75, kl: 0.001, grad_norm: 2.5 };
  const s = { phase: "grpo", step: 5, total: 10, elapsed: 10, eta: 10, metrics };
  for (const cols of [60, 70, 80, 120]) {
    const line = formatProgressLine(s, cols, true);
    assert.ok(line.length <= cols, `${cols}: ${line.length} > ${cols}: ${line}`);
    assert.ok(line.includes("loss=1.5"), line);
    assert.ok(!/ \S+=$/.test(line), `no half pair: ${line}`);
  }
  assert.ok(formatProgressLine(s, 120, true).includes("grad_norm=2.5"));
  assert.ok(!formatProgressLine(s, 60, true).includes("grad_norm"));
});

Deno.test("shouldPrintPlain() prints the first step, each new tenth and every 30 s", () => {
  assert.equal(shouldPrintPlain(1, 100, -1, 0), true);
  assert.equal(shouldPrintPlain(5, 100, 0, 1), false);
  assert.equal(shouldPrintPlain(10, 100, 0, 1), true);
  assert.equal(shouldPrintPlain(19, 100, 1, 1), false);
  assert.equal(shouldPrintPlain(19, 100, 1, 30), true);
  assert.equal(shouldPrintPlain(20, 100, 1, 1), true);
});

/** A bar with a fake clock (ms) and captured output. */
function fakeBar(tty: boolean, total: number) {
  let t = 0;
  const out: string[] = [];
  const bar = new ProgressBar("sft", total, {
    tty,
    now: () => t,
    write: (s) => out.push(s),
    columns: 100,
  });
  return { bar, out, advance: (ms: number) => (t += ms) };
}

Deno.test("ProgressBar prints plain lines at most every 10% (plus the first and last) off a TTY", () => {
  const { bar, out, advance } = fakeBar(false, 100);
  for (let i = 1; i <= 100; i++) {
    advance(100);
    bar.update(i, { loss: 1 / i });
  }
  bar.finish();
  // Step 1, 10, 20, ..., 90, then the final line from finish().
  assert.equal(out.length, 11, out.join(""));
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")));
  assert.match(out[0], /^sft {3}1\/100 {3}1% \|\.+\| 0:00<0:10 10 it\/s loss=1$/m);
  assert.match(out[1], /^sft {2}10\/100 {2}10% /);
  assert.match(out[10], /^sft 100\/100 100% \|#+\| 0:10 10 it\/s loss=0\.01\n$/);
});

Deno.test("ProgressBar off a TTY also prints when 30 s pass without a new tenth", () => {
  const { bar, out, advance } = fakeBar(false, 1000);
  bar.update(1);
  for (let i = 2; i <= 50; i++) {
    advance(1000);
    bar.update(i);
  }
  // First step, then every 30 s (steps 31 at 30 s after step 1); no tenth is crossed.
  assert.equal(out.length, 2, out.join(""));
  assert.match(out[1], /^sft {3}31\/1000/);
});

Deno.test("ProgressBar on a TTY redraws in place, throttled, and log() keeps the bar", () => {
  const { bar, out, advance } = fakeBar(true, 10);
  bar.update(1, { loss: 2 });
  advance(50);
  bar.update(2, { loss: 1.5 }); // within 100 ms: not redrawn
  advance(100);
  bar.update(3, { loss: 1 });
  assert.equal(out.length, 2);
  assert.ok(out.every((s) => s.startsWith("\r") && s.endsWith("\x1b[K") && !s.includes("\n")));
  assert.ok(out[1].includes(" 3/10") && out[1].includes("loss=1"), out[1]);
  assert.ok(out[1].includes("█"), "block characters on a terminal");
  bar.log("checkpoint saved");
  assert.equal(out[2], "\r\x1b[Kcheckpoint saved\n");
  assert.ok(out[3].startsWith("\r") && out[3].includes(" 3/10"));
  bar.finish({ loss: 0.5 });
  assert.ok(out[out.length - 1].endsWith("\x1b[K\n"));
  assert.ok(out[out.length - 1].includes("loss=0.5"));
  const n = out.length;
  bar.finish();
  assert.equal(out.length, n, "finish() twice prints once");
});
