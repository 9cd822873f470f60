/**
 * Shared test helpers: tolerance comparison that reports the worst element, finite
 * differences, and one WebGPU device per test process.
 */
import { Device } from "../engine/device.ts";

export interface CloseOptions {
  atol?: number;
  rtol?: number;
  /** Printed in the failure message: which kernel, which option. */
  label?: string;
}

/**
 * Asserts `|a - b| <= atol + rtol * |b|` elementwise (b is the reference). On failure the
 * message names the worst element (largest excess over its tolerance), both values and the
 * count of failing elements. NaN in either side fails unless both are NaN at the same place.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  opts: CloseOptions = {},
): void {
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-5;
  const label = opts.label ? `${opts.label}: ` : "";
  if (actual.length !== expected.length) {
    throw new Error(`${label}length ${actual.length} != reference length ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  let bad = 0;
  let maxAbs = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], b = expected[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    const err = Math.abs(a - b);
    const tol = atol + rtol * Math.abs(b);
    if (Number.isFinite(err)) maxAbs = Math.max(maxAbs, err);
    if (!(err <= tol) && !(a === b)) {
      bad++;
      const excess = Number.isFinite(err) ? err - tol : Infinity;
      if (worst < 0 || excess > worstExcess) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (bad > 0) {
    throw new Error(
      `${label}${bad} of ${actual.length} elements differ beyond atol=${atol} rtol=${rtol}; ` +
        `worst at [${worst}]: got ${actual[worst]}, reference ${expected[worst]} ` +
        `(|diff| ${Math.abs(actual[worst] - expected[worst])}); max |diff| ${maxAbs}`,
    );
  }
}

/** Asserts two arrays are identical bit for bit (NaN payloads included). */
export function assertSameBits(a: ArrayLike<number>, b: ArrayLike<number>, label = ""): void {
  const fa = Float32Array.from(a), fb = Float32Array.from(b);
  const ua = new Uint32Array(fa.buffer), ub = new Uint32Array(fb.buffer);
  if (ua.length !== ub.length) throw new Error(`${label}: lengths ${ua.length} != ${ub.length}`);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) {
      throw new Error(`${label}: bits differ at [${i}]: ${fa[i]} vs ${fb[i]}`);
    }
  }
}

/**
 * Central finite differences of a scalar function `f` at `x` (float64), for the indices
 * given (all by default). `x` is restored afterwards.
 */
export function finiteDiff(
  f: (x: Float64Array) => number,
  x: Float64Array,
  eps = 1e-6,
  indices?: readonly number[],
): Float64Array {
  const g = new Float64Array(x.length);
  for (const i of indices ?? x.keys()) {
    const old = x[i];
    x[i] = old + eps;
    const fp = f(x);
    x[i] = old - eps;
    const fm = f(x);
    x[i] = old;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** `sum_i a[i] * b[i]` in float64 (the "fake loss" used to check backward passes). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

let shared: Promise<Device> | null = null;
let sharedDevice: Device | null = null;

/**
 * One device per test process (creating one per test is slow on llvmpipe). It is destroyed when
 * the process unloads, so the driver's worker threads stop before the process exits (Mesa's
 * llvmpipe can abort in its exit-time teardown when they are still running).
 */
export function testDevice(): Promise<Device> {
  if (!shared) {
    shared = Device.create({ log: () => {} }).then((d) => (sharedDevice = d));
    globalThis.addEventListener("unload", () => sharedDevice?.destroy());
  }
  return shared;
}

/** Deno.test options for tests that use the GPU: the device outlives single tests. */
export const gpuTest = { sanitizeResources: false, sanitizeOps: false } as const;

/** Runs `fn` with console.error captured; returns its result and the lines it wrote there. */
export async function captureErrors<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return [await fn(), lines];
  } finally {
    console.error = orig;
  }
}
