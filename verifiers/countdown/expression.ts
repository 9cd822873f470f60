/**
 * Tokenizer, parser and exact evaluator for arithmetic expressions (never `eval`).
 *
 * Strict mode (the Countdown answer): non-negative integer literals without leading zeros,
 * binary `+ - * /`, unary minus, parentheses, whitespace; any other character (`.`, letters,
 * `=`, `^`) is an error, and `**` / `//` fail to parse (an operator where an operand belongs).
 * Lenient mode (reasoning steps) also reads decimals (`3.5`), `×` `·` `÷` `−` and `x` between
 * operands.
 *
 * Grammar (left-associative, `* /` bind tighter than `+ -`):
 *   expr := term (("+" | "-") term)* ; term := unary (("*" | "/") unary)* ;
 *   unary := "-" unary | primary ; primary := INT | "(" expr ")"
 */
import { add, div, mul, neg, rat, type Rational, sub } from "./rational.ts";

export type BinOp = "+" | "-" | "*" | "/";

export type Expr =
  | { kind: "num"; text: string; value: Rational }
  | { kind: "neg"; arg: Expr }
  | { kind: "bin"; op: BinOp; left: Expr; right: Expr };

export interface ParseOptions {
  /** Read decimals and the unicode operators (for reasoning text). Default false. */
  lenient?: boolean;
  /** Nesting limit of parentheses and unary minus, so hostile input cannot overflow. */
  maxDepth?: number;
  /** Token limit (so evaluation and traversal recursion stay shallow). Default 4096. */
  maxTokens?: number;
}

export type ParseResult = { ok: true; expr: Expr } | { ok: false; error: string };

type Token =
  | { t: "num"; text: string; value: Rational; pos: number }
  | { t: "op"; op: BinOp; pos: number }
  | { t: "(" | ")"; pos: number };

const OPS: Record<string, BinOp> = { "+": "+", "-": "-", "*": "*", "/": "/" };
const LENIENT_OPS: Record<string, BinOp> = {
  ...OPS,
  "×": "*",
  "·": "*",
  "x": "*",
  "÷": "/",
  "−": "-",
};

function tokenize(src: string, lenient: boolean): Token[] | string {
  const out: Token[] = [];
  const ops = lenient ? LENIENT_OPS : OPS;
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c >= "0" && c <= "9") {
      let j = i;
      while (j < src.length && src[j] >= "0" && src[j] <= "9") j++;
      let text = src.slice(i, j);
      let value: Rational;
      if (lenient && src[j] === "." && src[j + 1] >= "0" && src[j + 1] <= "9") {
        let k = j + 1;
        while (k < src.length && src[k] >= "0" && src[k] <= "9") k++;
        const frac = src.slice(j + 1, k);
        text = src.slice(i, k);
        value = rat(BigInt(src.slice(i, j) + frac), 10n ** BigInt(frac.length));
        j = k;
      } else {
        if (!lenient && text.length > 1 && text[0] === "0") {
          return `number with a leading zero "${text}" at ${i}`;
        }
        value = rat(BigInt(text));
      }
      out.push({ t: "num", text, value, pos: i });
      i = j;
      continue;
    }
    if (c === "(" || c === ")") {
      out.push({ t: c, pos: i });
      i++;
      continue;
    }
    const op = Object.hasOwn(ops, c) ? ops[c] : undefined;
    if (op) {
      out.push({ t: "op", op, pos: i });
      i++;
      continue;
    }
    return `unexpected character ${JSON.stringify(c)} at ${i}`;
  }
  return out;
}

class ParseError extends Error {}

/** Parses `src` whole; `{ ok: false, error }` names what went wrong and where. */
export function parseExpression(src: string, opts: ParseOptions = {}): ParseResult {
  const toks = tokenize(src, opts.lenient ?? false);
  if (typeof toks === "string") return { ok: false, error: toks };
  if (toks.length === 0) return { ok: false, error: "empty expression" };
  const maxTokens = opts.maxTokens ?? 4096;
  if (toks.length > maxTokens) {
    return { ok: false, error: `${toks.length} tokens exceed the limit of ${maxTokens}` };
  }
  const maxDepth = opts.maxDepth ?? 200;
  let p = 0;
  let depth = 0;
  const where = () => (p < toks.length ? `at ${toks[p].pos}` : "at the end");
  const expr = (): Expr => {
    let left = term();
    for (;;) {
      const tok = toks[p];
      if (tok?.t !== "op" || (tok.op !== "+" && tok.op !== "-")) return left;
      p++;
      left = { kind: "bin", op: tok.op, left, right: term() };
    }
  };
  const term = (): Expr => {
    let left = unary();
    for (;;) {
      const tok = toks[p];
      if (tok?.t !== "op" || (tok.op !== "*" && tok.op !== "/")) return left;
      p++;
      left = { kind: "bin", op: tok.op, left, right: unary() };
    }
  };
  const unary = (): Expr => {
    const tok = toks[p];
    if (tok?.t === "op" && tok.op === "-") {
      if (++depth > maxDepth) throw new ParseError(`nesting deeper than ${maxDepth}`);
      p++;
      const arg = unary();
      depth--;
      return { kind: "neg", arg };
    }
    return primary();
  };
  const primary = (): Expr => {
    const tok = toks[p];
    if (tok?.t === "num") {
      p++;
      return { kind: "num", text: tok.text, value: tok.value };
    }
    if (tok?.t === "(") {
      if (++depth > maxDepth) throw new ParseError(`nesting deeper than ${maxDepth}`);
      p++;
      const e = expr();
      if (toks[p]?.t !== ")") throw new ParseError(`expected ")" ${where()}`);
      p++;
      depth--;
      return e;
    }
    throw new ParseError(`expected a number or "(" ${where()}`);
  };
  try {
    const e = expr();
    if (p !== toks.length) return { ok: false, error: `unexpected token ${where()}` };
    return { ok: true, expr: e };
  } catch (e) {
    if (e instanceof ParseError) return { ok: false, error: e.message };
    throw e;
  }
}

/** Exact value, or null when some division has a zero divisor. */
export function evaluate(e: Expr): Rational | null {
  switch (e.kind) {
    case "num":
      return e.value;
    case "neg": {
      const v = evaluate(e.arg);
      return v === null ? null : neg(v);
    }
    case "bin": {
      const l = evaluate(e.left);
      if (l === null) return null;
      const r = evaluate(e.right);
      if (r === null) return null;
      switch (e.op) {
        case "+":
          return add(l, r);
        case "-":
          return sub(l, r);
        case "*":
          return mul(l, r);
        case "/":
          return div(l, r);
      }
    }
  }
}

/** Number literals in order of appearance, as written. */
export function literals(e: Expr): string[] {
  const out: string[] = [];
  const walk = (x: Expr): void => {
    if (x.kind === "num") out.push(x.text);
    else if (x.kind === "neg") walk(x.arg);
    else {
      walk(x.left);
      walk(x.right);
    }
  };
  walk(e);
  return out;
}

/** Count of binary operators. */
export function countBinary(e: Expr): number {
  if (e.kind === "num") return 0;
  if (e.kind === "neg") return countBinary(e.arg);
  return 1 + countBinary(e.left) + countBinary(e.right);
}

const PREC: Record<BinOp, number> = { "+": 1, "-": 1, "*": 2, "/": 2 };

/** Text with the fewest parentheses that keep the tree (and so its exact value). */
export function formatExpr(e: Expr): string {
  if (e.kind === "num") return e.text;
  if (e.kind === "neg") {
    const inner = formatExpr(e.arg);
    return e.arg.kind === "bin" ? `-(${inner})` : `-${inner}`;
  }
  const p = PREC[e.op];
  const side = (c: Expr, right: boolean): string => {
    const s = formatExpr(c);
    if (c.kind !== "bin") return s;
    const cp = PREC[c.op];
    const need = cp < p || (right && cp === p && (e.op === "-" || e.op === "/"));
    return need ? `(${s})` : s;
  };
  return `${side(e.left, false)} ${e.op} ${side(e.right, true)}`;
}
