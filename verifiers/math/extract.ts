/**
 * Final-answer extraction from model text for math tasks.
 *
 * Order of preference: the last `\boxed{...}` / `\fbox{...}` (nested braces,
 * also the brace-less `\boxed 5`), the last GSM8K `#### x` line, the last
 * "final answer is x", and optionally the last number in the text.
 * Every path is a constant number of linear scans, so megabyte strings and
 * deep nesting stay bounded.
 */

/** Options for {@link extractAnswer}. */
export interface ExtractOptions {
  /** When nothing else matches, return the last number in the text. Default false. */
  lastNumberFallback?: boolean;
}

/** How many unbalanced `\boxed{` occurrences (from the end) are tried before giving up. */
const MAX_BOX_TRIES = 4;

/** Reads a `{...}` group whose `{` is at `open`; returns the inside or null if unbalanced. */
function readGroup(text: string, open: number): string | null {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */) {
      i++; // skip the escaped char (\{ \} do not count)
      continue;
    }
    if (c === 123 /* { */) depth++;
    else if (c === 125 /* } */) {
      depth--;
      if (depth === 0) return text.slice(open + 1, i);
    }
  }
  return null;
}

/** Content of a box command whose name ends just before `pos`, or null. */
function readBoxArgument(text: string, pos: number): string | null {
  let i = pos;
  while (i < text.length && (text[i] === " " || text[i] === "\t")) i++;
  if (i >= text.length) return null;
  if (text[i] === "{") return readGroup(text, i);
  if (i === pos) return null; // `\boxedx` is another command name
  // `\boxed 5`: a token up to whitespace or `$`.
  let j = i;
  while (j < text.length && !/[\s$]/.test(text[j])) j++;
  return j > i ? text.slice(i, j) : null;
}

function lastBoxed(text: string): string | null {
  const names = ["\\boxed", "\\fbox"];
  let end = text.length;
  for (let tries = 0; tries < MAX_BOX_TRIES; tries++) {
    let best = -1;
    let bestName = "";
    for (const name of names) {
      const k = end >= name.length ? text.lastIndexOf(name, end - name.length) : -1;
      if (k > best) {
        best = k;
        bestName = name;
      }
    }
    if (best < 0) return null;
    const inner = readBoxArgument(text, best + bestName.length);
    if (inner !== null && inner.trim().length > 0) return inner.trim(); // `\boxed{}` is no answer
    end = best;
  }
  return null;
}

function lastHashes(text: string): string | null {
  const k = text.lastIndexOf("####");
  if (k < 0) return null;
  let end = text.indexOf("\n", k);
  if (end < 0) end = text.length;
  const v = text.slice(k + 4, end).trim();
  return v.length > 0 ? v : null;
}

function lastFinalAnswer(text: string): string | null {
  const lower = text.toLowerCase();
  const key = "final answer is";
  const k = lower.lastIndexOf(key);
  if (k < 0) return null;
  let end = text.indexOf("\n", k);
  if (end < 0) end = text.length;
  let v = text.slice(k + key.length, Math.min(end, k + key.length + 400)).trim();
  v = v.replace(/^[:\s]+/, "");
  // "The final answer is $5$. I hope..." keeps the first sentence.
  const dollar = /^\$([^$]*)\$/.exec(v);
  if (dollar) v = dollar[1];
  else v = v.replace(/\.(\s.*)?$/, "");
  v = v.trim().replace(/[.\s]+$/, "");
  return v.length > 0 ? v : null;
}

function lastNumber(text: string): string | null {
  // Scan backwards over at most the tail; a number is short.
  const re = /-?\d[\d,]*(?:\.\d+)?|-?\.\d+/g;
  const tail = text.length > 4096 ? text.slice(-4096) : text;
  let last: string | null = null;
  for (const m of tail.matchAll(re)) last = m[0];
  if (last === null && tail !== text) {
    for (const m of text.matchAll(re)) last = m[0];
  }
  return last === null ? null : last.replace(/,$/, "");
}

/**
 * The final answer written in `text`, or null when there is none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extractAnswer } from "./extract.ts";
 * assert.equal(extractAnswer("so \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
 * assert.equal(extractAnswer("...\n#### 1,234"), "1,234");
 * ```
 */
export function extractAnswer(
  text: string,
  opts: ExtractOptions = {},
): string | null {
  if (typeof text !== "string" || text.length === 0) return null;
  return lastBoxed(text) ?? lastHashes(text) ?? lastFinalAnswer(text) ??
    (opts.lastNumberFallback ? lastNumber(text) : null);
}
