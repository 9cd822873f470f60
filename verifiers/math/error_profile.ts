/**
 * The error profile of a solution: the six verifier dimensions of hard-negative DPO, made
 * programmatic (no embedding or NLI model). Each dimension is in [0, 1], 0 = no problem:
 *
 *   finalAnswer   1 when the extracted final answer is not equivalent to the gold answer
 *   numericError  relative distance |pred - gold| / max(1, |gold|) clipped to 1; 1 when either
 *                 side is not a number, 0 when they are equivalent
 *   stepArithmetic  share of the checked computations `a op b = c` in the reasoning that are
 *                 wrong (their own arithmetic or built on a wrong result); 0 with none
 *   structure     share of failed structural checks: an answer is present, reasoning precedes
 *                 it (at least 20 characters), the text is not truncated
 *   redundancy    share of repeated non-empty lines, or of repeated 8-word windows when that is
 *                 larger (loops that never break a line)
 *   orderConsistency  1 when the final answer differs from the last computed value (the right
 *                 side of the last checked step); 0 when they agree or nothing was computed
 *
 * Combined scores (weights sum to 1):
 *   wrongness = 0.40 finalAnswer + 0.25 numericError + 0.15 stepArithmetic + 0.10 structure
 *             + 0.05 redundancy + 0.05 orderConsistency
 *     (how wrong the solution is: the verdict dominates, the size of the miss and broken steps
 *     refine it)
 *   absurdity = 0.30 stepArithmetic + 0.25 structure + 0.20 redundancy + 0.15 numericError
 *             + 0.10 orderConsistency
 *     (how implausible the text is as a solution, whatever its final answer: broken arithmetic,
 *     missing parts, loops)
 */
import { checkSteps } from "../countdown/steps.ts";
import { isEquivalent } from "./equivalence.ts";
import { extractAnswer } from "./extract.ts";

export interface ErrorProfile {
  finalAnswer: number;
  numericError: number;
  stepArithmetic: number;
  structure: number;
  redundancy: number;
  orderConsistency: number;
  wrongness: number;
  absurdity: number;
  /** The extracted final answer (null when none). */
  extracted: string | null;
  /** Checked computations and how many were wrong. */
  steps: number;
  wrongSteps: number;
}

export interface ProfileOptions {
  /** Generation stopped at its length limit. */
  truncated?: boolean;
}

const WRONGNESS = {
  finalAnswer: 0.4,
  numericError: 0.25,
  stepArithmetic: 0.15,
  structure: 0.1,
  redundancy: 0.05,
  orderConsistency: 0.05,
} as const;
const ABSURDITY = {
  stepArithmetic: 0.3,
  structure: 0.25,
  redundancy: 0.2,
  numericError: 0.15,
  orderConsistency: 0.1,
} as const;

/** A plain number in an answer string ("1,000", "$5", "50%", "-3.5"), or null. */
function numberOf(s: string | null): number | null {
  if (s === null) return null;
  const t = s.replace(/\\[$%]|[$%]|\\!|,(?=\d{3}\b)|\s/g, "").replace(/^\\?\(|\\?\)$/g, "");
  const frac = /^(-?\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(t) ??
    /^(-?)\\d?frac\{(\d+)\}\{(\d+)\}$/.exec(t);
  if (frac && frac.length === 3) return Number(frac[1]) / Number(frac[2]);
  if (frac && frac.length === 4) {
    return (frac[1] === "-" ? -1 : 1) * Number(frac[2]) / Number(frac[3]);
  }
  return /^-?\d+(?:\.\d+)?$/.test(t) ? Number(t) : null;
}

function redundancyOf(text: string): number {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const seen = new Set<string>();
  let dup = 0;
  for (const l of lines) {
    if (seen.has(l)) dup++;
    seen.add(l);
  }
  const lineShare = lines.length > 0 ? dup / lines.length : 0;
  const words = text.split(/\s+/).filter(Boolean);
  const grams = new Map<string, number>();
  let repeated = 0, total = 0;
  for (let i = 0; i + 8 <= words.length; i++) {
    const g = words.slice(i, i + 8).join(" ");
    const c = (grams.get(g) ?? 0) + 1;
    grams.set(g, c);
    total++;
    if (c > 1) repeated++;
  }
  return Math.min(1, Math.max(lineShare, total > 0 ? repeated / total : 0));
}

/** The error profile of `response` against the gold answer. */
export function errorProfile(
  response: string,
  gold: string,
  opts: ProfileOptions = {},
): ErrorProfile {
  const extracted = extractAnswer(response, { lastNumberFallback: true });
  const correct = isEquivalent(gold, extracted);
  const finalAnswer = correct ? 0 : 1;
  const pg = numberOf(gold), pp = numberOf(extracted);
  const numericError = correct
    ? 0
    : pg === null || pp === null
    ? 1
    : Math.min(1, Math.abs(pp - pg) / Math.max(1, Math.abs(pg)));
  const steps = checkSteps(response);
  const wrongSteps = steps.filter((s) => !s.correct).length;
  const stepArithmetic = steps.length > 0 ? wrongSteps / steps.length : 0;
  const answerAt = extracted === null ? -1 : response.lastIndexOf(extracted);
  const reasoning = answerAt < 0 ? response : response.slice(0, answerAt);
  const checks = [extracted !== null, reasoning.trim().length >= 20, !opts.truncated];
  const structure = checks.filter((ok) => !ok).length / checks.length;
  const redundancy = redundancyOf(response);
  let orderConsistency = 0;
  if (steps.length > 0 && pp !== null) {
    const lastValue = numberOf(steps[steps.length - 1].rhs.replace(/−/g, "-"));
    const agree = lastValue !== null &&
      Math.abs(lastValue - pp) <= 1e-9 * Math.max(1, Math.abs(pp));
    orderConsistency = agree ? 0 : 1;
  }
  const dims = {
    finalAnswer,
    numericError,
    stepArithmetic,
    structure,
    redundancy,
    orderConsistency,
  };
  let wrongness = 0, absurdity = 0;
  for (const [k, w] of Object.entries(WRONGNESS)) wrongness += w * dims[k as keyof typeof dims];
  for (const [k, w] of Object.entries(ABSURDITY)) absurdity += w * dims[k as keyof typeof dims];
  return { ...dims, wrongness, absurdity, extracted, steps: steps.length, wrongSteps };
}
