/**
 * Exact rationals on BigInt for the Countdown scorer and step checker: `n / d` with `d > 0`
 * and `gcd(|n|, d) = 1`, so equal values have equal fields.
 */

export interface Rational {
  readonly n: bigint;
  readonly d: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** `n / d` reduced; throws RangeError when `d` is 0. */
export function rat(n: bigint | number, d: bigint | number = 1n): Rational {
  let nn = typeof n === "bigint" ? n : BigInt(n);
  let dd = typeof d === "bigint" ? d : BigInt(d);
  if (dd === 0n) throw new RangeError("rational with zero denominator");
  if (dd < 0n) [nn, dd] = [-nn, -dd];
  const g = gcd(nn, dd);
  return g > 1n ? { n: nn / g, d: dd / g } : { n: nn, d: dd };
}

/** The exact value of a finite double (doubles are dyadic rationals). */
export function fromNumber(x: number): Rational {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  if (Number.isInteger(x)) return rat(BigInt(x));
  let d = 1n;
  while (!Number.isInteger(x)) {
    x *= 2;
    d *= 2n;
  }
  return rat(BigInt(x), d);
}

/** `"12"`, `"-7"`, `"3.25"` (exact: 325/100), `"7/2"`; null when the text is none of these. */
export function parseRational(text: string): Rational | null {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:\/(\d+))?$/.exec(text.trim());
  if (!m) return null;
  const frac = m[3] ?? "";
  let n = BigInt(m[2] + frac);
  let d = 10n ** BigInt(frac.length);
  if (m[4] !== undefined) {
    if (frac) return null;
    d = BigInt(m[4]);
    if (d === 0n) return null;
  }
  if (m[1]) n = -n;
  return rat(n, d);
}

export const ZERO: Rational = { n: 0n, d: 1n };

export function add(a: Rational, b: Rational): Rational {
  return rat(a.n * b.d + b.n * a.d, a.d * b.d);
}

export function sub(a: Rational, b: Rational): Rational {
  return rat(a.n * b.d - b.n * a.d, a.d * b.d);
}

export function mul(a: Rational, b: Rational): Rational {
  return rat(a.n * b.n, a.d * b.d);
}

/** `a / b`, or null when `b` is 0. */
export function div(a: Rational, b: Rational): Rational | null {
  if (b.n === 0n) return null;
  return rat(a.n * b.d, a.d * b.n);
}

export function neg(a: Rational): Rational {
  return { n: -a.n, d: a.d };
}

export function eq(a: Rational, b: Rational): boolean {
  return a.n === b.n && a.d === b.d;
}

/** -1, 0 or 1. */
export function cmp(a: Rational, b: Rational): number {
  const l = a.n * b.d, r = b.n * a.d;
  return l < r ? -1 : l > r ? 1 : 0;
}

export function abs(a: Rational): Rational {
  return a.n < 0n ? { n: -a.n, d: a.d } : a;
}

export function isInteger(a: Rational): boolean {
  return a.d === 1n;
}

/** Nearest double (exact for small values). */
export function toNumber(a: Rational): number {
  if (a.d === 1n) return Number(a.n);
  const q = Number(a.n) / Number(a.d);
  if (Number.isFinite(q)) return q;
  // Huge fields: scale both down to doubles' range first.
  const shift = BigInt(
    Math.max(0, Math.max(a.n.toString(2).length, a.d.toString(2).length) - 1000),
  );
  return Number(a.n >> shift) / Number(a.d >> shift);
}

/** `"12"`, `"-7/2"`. */
export function ratToString(a: Rational): string {
  return a.d === 1n ? a.n.toString() : `${a.n}/${a.d}`;
}
