/**
 * Math answer equivalence: normalization, then structural comparison
 * (tuples, intervals, sets, matrices, lists), then numeric comparison through a
 * small recursive-descent parser/evaluator for LaTeX-ish arithmetic, then
 * case-insensitive text comparison.
 *
 * Numbers compare with relative tolerance 1e-6 (absolute 1e-9 near zero).
 * Expressions with variables are evaluated at seeded pseudo-random points.
 */

const REL_TOL = 1e-6;
const ABS_TOL = 1e-9;
const SAMPLE_POINTS = 6;
/** Inputs longer than this skip parsing and compare as text only. */
const MAX_PARSE_LEN = 2000;
/** Inputs longer than this are compared verbatim. */
const MAX_ANSWER_LEN = 20000;

/** Placeholder for `\\\\` while single-backslash spacing commands are removed. */
const ROW_BREAK = "\uE000";
/** Longer lists compare as sorted strings only (keeps the matching quadratic cost bounded). */
const MAX_LIST_MATCH = 200;

const UNIT_WORDS = [
  "square units",
  "sq units",
  "units",
  "unit",
  "degrees",
  "degree",
  "cm",
  "centimeters",
  "meters",
  "m",
  "km",
  "inches",
  "inch",
  "feet",
  "foot",
  "ft",
  "yards",
  "miles",
  "mph",
  "dollars",
  "dollar",
  "cents",
  "cent",
  "hours",
  "hour",
  "minutes",
  "minute",
  "seconds",
  "second",
  "days",
  "day",
  "weeks",
  "years",
  "pounds",
  "ounces",
  "people",
  "students",
  "cups",
];
const UNIT_RE = new RegExp(
  String.raw`^(.*\d\}?)\s*(?:` + UNIT_WORDS.join("|") + String.raw`)(?:\^\{?[23]\}?)?$`,
);

/** Replaces `\cmd{...}` (balanced) by its contents, for the given command names. */
function unwrapCommand(s: string, names: string[]): string {
  for (const name of names) {
    let guard = 0;
    for (;;) {
      const k = s.indexOf(`\\${name}{`);
      if (k < 0 || guard++ > 200) break;
      const open = k + name.length + 1;
      let depth = 0;
      let close = -1;
      for (let i = open; i < s.length; i++) {
        if (s[i] === "{") depth++;
        else if (s[i] === "}" && --depth === 0) {
          close = i;
          break;
        }
      }
      if (close < 0) break;
      s = s.slice(0, k) + s.slice(open + 1, close) + s.slice(close + 1);
    }
  }
  return s;
}

/**
 * Canonical string form of an answer: LaTeX spacing, delimiters, `\text{}`,
 * units, degrees, percent, dollars, thousands separators and `x =` prefixes
 * removed; `\dfrac`/`\tfrac` become `\frac`; all whitespace dropped.
 */
export function normalizeAnswer(s: string): string {
  let t = s.trim();
  // Protect LaTeX line breaks `\\` (matrix rows) from the single-backslash rules below.
  t = t.replace(/\\\\/g, ROW_BREAK);
  // Surrounding math delimiters.
  t = t.replace(/^\$+|\$+$/g, "").replace(/^\\\(|\\\)$/g, "").replace(
    /^\\\[|\\\]$/g,
    "",
  );
  t = t.replace(/\\(?:displaystyle|textstyle|!|,|;|:|quad|qquad)/g, " ");
  t = t.replace(/\\ /g, " ").replace(/~/g, " ");
  t = t.replace(/\\left(?![a-zA-Z])|\\right(?![a-zA-Z])/g, "");
  t = t.replace(/\\bigl|\\bigr|\\Bigl|\\Bigr|\\big|\\Big/g, "");
  t = t.replace(/\\[dt]frac/g, "\\frac");
  t = t.replace(/[.\s]+$/, ""); // trailing period before unit removal
  // Degrees, percent, dollars.
  t = t.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree/g, "");
  t = t.replace(/\\%|%/g, "").replace(/\\\$|\$/g, "");
  // Units written as text after a number: `5\text{ cm}^2`.
  t = t.replace(
    /^(.*\d\}?)\s*\\(?:text|mbox|mathrm)\{\s*[a-zA-Z .]+\}(?:\^\{?[23]\}?)?\s*$/,
    "$1",
  );
  t = unwrapCommand(t, ["text", "textbf", "mbox", "mathrm", "mathbf", "textit"]);
  t = t.replace(/\\\s*$/, "").trim();
  const unit = UNIT_RE.exec(t);
  if (unit && unit[1].trim().length > 0) t = unit[1];
  // Trailing punctuation.
  t = t.replace(/[.\s]+$/, "").replace(/^[\s]+/, "");
  // `x = 3`, `\theta = ...` prefixes (only when no other `=` follows).
  const pre = /^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=\s*(.*)$/s.exec(t);
  if (pre && !pre[1].includes("=") && pre[1].length > 0) t = pre[1];
  // Thousands separators: `1,000`, `1{,}000`, `1\,000` (spaces removed below).
  t = t.replace(/\{,\}/g, ",");
  if (/^-?\d{1,3}(,\d{3})+(\.\d+)?$/.test(t.replace(/\s/g, ""))) {
    t = t.replace(/[,\s]/g, "");
  }
  t = t.replace(/_(\w)/g, "_{$1}"); // `\log_2 8` keeps its base apart from 8
  t = t.replace(/\s+/g, "");
  // `\frac12` -> `\frac{1}{2}`, `\sqrt2` -> `\sqrt{2}`.
  t = t.replace(/\\frac(\w)(\w)/g, "\\frac{$1}{$2}")
    .replace(/\\frac\{([^{}]*)\}(\w)/g, "\\frac{$1}{$2}")
    .replace(/\\frac(\w)\{/g, "\\frac{$1}{")
    .replace(/\\sqrt(\w)/g, "\\sqrt{$1}");
  // Multiple-choice letters `(C)`.
  const choice = /^\(([A-Ea-e])\)$/.exec(t);
  if (choice) t = choice[1];
  // Leading-dot decimals and `0.50` style trailing zeros.
  t = t.replace(/(^|[^\d])\.(\d)/g, "$10.$2");
  return t.split(ROW_BREAK).join("\\\\");
}

// ---------------------------------------------------------------------------
// Tokenizer and parser.

type Tok =
  | { k: "num"; v: number }
  | { k: "id"; v: string } // variable or constant name
  | { k: "cmd"; v: string } // \name without backslash
  | { k: "op"; v: string };

function tokenize(s: string): Tok[] | null {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9.]/.test(c)) {
      const m = /^(?:\d+\.?\d*|\.\d+)/.exec(s.slice(i, i + 64));
      if (!m) return null;
      out.push({ k: "num", v: Number(m[0]) });
      i += m[0].length;
      continue;
    }
    if (/[a-zA-Z]/.test(c)) {
      out.push({ k: "id", v: c });
      i++;
      continue;
    }
    if (c === "\\") {
      const m = /^\\([a-zA-Z]+|[{}|])/.exec(s.slice(i, i + 32));
      if (!m) return null;
      let name = m[1];
      // Spaces were dropped by normalization: `\lne` is `\ln e`, `\pix` is `\pi x`.
      if (/^[a-zA-Z]+$/.test(name) && !KNOWN_COMMANDS.has(name)) {
        for (let k = name.length - 1; k > 0; k--) {
          if (KNOWN_COMMANDS.has(name.slice(0, k))) {
            name = name.slice(0, k);
            break;
          }
        }
      }
      i += name.length + 1;
      if (name === "{" || name === "}") out.push({ k: "op", v: name === "{" ? "(" : ")" });
      else if (name === "|") out.push({ k: "op", v: "|" });
      else out.push({ k: "cmd", v: name });
      continue;
    }
    if ("+-*/^()[]{}!|_".includes(c)) {
      out.push({ k: "op", v: c });
      i++;
      continue;
    }
    return null; // `,` `=` `<` and anything else are not scalar expressions
  }
  return out;
}

/** Expression tree evaluated by closures over a variable environment. */
type Node = (env: Map<string, number>) => number;

const GREEK = new Set([
  "alpha",
  "beta",
  "gamma",
  "delta",
  "theta",
  "lambda",
  "mu",
  "phi",
  "varphi",
  "omega",
  "sigma",
  "tau",
  "rho",
  "psi",
  "epsilon",
]);
const FUNCS: Record<string, (x: number) => number> = {
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  cot: (x) => 1 / Math.tan(x),
  sec: (x) => 1 / Math.cos(x),
  csc: (x) => 1 / Math.sin(x),
  arcsin: Math.asin,
  arccos: Math.acos,
  arctan: Math.atan,
  ln: Math.log,
  log: Math.log10,
  exp: Math.exp,
};

/** Division where x/0 is undefined (NaN), so `3/0` never equals `4/0` or `\infty`. */
function div(a: number, b: number): number {
  return b === 0 ? NaN : a / b;
}

function factorial(x: number): number {
  if (!Number.isInteger(x) || x < 0 || x > 170) return NaN;
  let r = 1;
  for (let i = 2; i <= x; i++) r *= i;
  return r;
}

const KNOWN_COMMANDS = new Set([
  ...GREEK,
  ...Object.keys(FUNCS),
  "pi",
  "infty",
  "infin",
  "frac",
  "cfrac",
  "binom",
  "sqrt",
  "cdot",
  "times",
  "div",
  "pm",
  "mp",
]);

class Parser {
  pos = 0;
  vars = new Set<string>();
  constructor(private toks: Tok[]) {}

  peek(): Tok | undefined {
    return this.toks[this.pos];
  }
  isOp(v: string): boolean {
    const t = this.toks[this.pos];
    return t !== undefined && t.k === "op" && t.v === v;
  }
  isCmd(v: string): boolean {
    const t = this.toks[this.pos];
    return t !== undefined && t.k === "cmd" && t.v === v;
  }
  expect(v: string): void {
    if (!this.isOp(v)) throw new Error(`expected ${v}`);
    this.pos++;
  }

  parseAll(): Node {
    const n = this.expr();
    if (this.pos !== this.toks.length) throw new Error("trailing tokens");
    return n;
  }

  expr(): Node {
    let left = this.term();
    for (;;) {
      if (this.isOp("+")) {
        this.pos++;
        const a = left, b = this.term();
        left = (e) => a(e) + b(e);
      } else if (this.isOp("-")) {
        this.pos++;
        const a = left, b = this.term();
        left = (e) => a(e) - b(e);
      } else if (this.isCmd("pm") || this.isCmd("mp")) {
        throw new Error("plus-minus is not a scalar");
      } else return left;
    }
  }

  /** True when the next token can begin an implicit product factor (`2x`, `3\sqrt{2}`). */
  startsPrimary(): boolean {
    const t = this.peek();
    if (t === undefined) return false;
    if (t.k === "num" || t.k === "id") return true;
    if (t.k === "op") return t.v === "(" || t.v === "[" || t.v === "{";
    return !["cdot", "times", "div", "pm", "mp"].includes(t.v);
  }

  term(): Node {
    let left = this.unary();
    for (;;) {
      if (this.isOp("*") || this.isCmd("cdot") || this.isCmd("times")) {
        this.pos++;
        const a = left, b = this.unary();
        left = (e) => a(e) * b(e);
      } else if (this.isOp("/") || this.isCmd("div")) {
        this.pos++;
        const a = left, b = this.unary();
        left = (e) => div(a(e), b(e));
      } else if (this.startsPrimary()) {
        const a = left, b = this.power();
        left = (e) => a(e) * b(e);
      } else return left;
    }
  }

  unary(): Node {
    if (this.isOp("-")) {
      this.pos++;
      const a = this.unary();
      return (e) => -a(e);
    }
    if (this.isOp("+")) {
      this.pos++;
      return this.unary();
    }
    return this.power();
  }

  /** `base ^ exponent`, right associative; the exponent may carry a unary minus. */
  power(): Node {
    const base = this.postfix();
    if (!this.isOp("^")) return base;
    this.pos++;
    let ex: Node;
    if (this.isOp("-")) {
      this.pos++;
      const a = this.power();
      ex = (e) => -a(e);
    } else ex = this.power();
    return (e) => Math.pow(base(e), ex(e));
  }

  postfix(): Node {
    let n = this.primary();
    while (this.isOp("!")) {
      this.pos++;
      const a = n;
      n = (e) => factorial(a(e));
    }
    return n;
  }

  /** A `{...}` group, or a single primary (for `\sqrt x`, `\frac ab`). */
  argument(): Node {
    if (this.isOp("{")) {
      this.pos++;
      const n = this.expr();
      this.expect("}");
      return n;
    }
    return this.postfix();
  }

  primary(): Node {
    const t = this.peek();
    if (t === undefined) throw new Error("unexpected end");
    this.pos++;
    if (t.k === "num") {
      const v = t.v;
      return () => v;
    }
    if (t.k === "id") {
      let name = t.v;
      if (this.isOp("_")) {
        this.pos++;
        const sub = this.peek();
        if (sub === undefined) throw new Error("bad subscript");
        if (sub.k === "op" && sub.v === "{") {
          let depth = 0;
          let text = "";
          do {
            const u = this.toks[this.pos++];
            if (u === undefined) throw new Error("bad subscript");
            if (u.k === "op" && u.v === "{") depth++;
            else if (u.k === "op" && u.v === "}") depth--;
            text += String(u.v);
          } while (depth > 0);
          name += "_" + text;
        } else {
          this.pos++;
          name += "_" + String(sub.v);
        }
      }
      if (name === "e") return () => Math.E;
      this.vars.add(name);
      return (e) => e.get(name) ?? NaN;
    }
    if (t.k === "op") {
      if (t.v === "(" || t.v === "[" || t.v === "{") {
        const close = t.v === "(" ? ")" : t.v === "[" ? "]" : "}";
        const n = this.expr();
        if (close === "}") this.expect("}");
        else if (this.isOp(")") || this.isOp("]")) this.pos++;
        else throw new Error(`expected ${close}`);
        return n;
      }
      if (t.v === "|") {
        const n = this.expr();
        this.expect("|");
        return (e) => Math.abs(n(e));
      }
      throw new Error(`unexpected ${t.v}`);
    }
    // Commands.
    const name = t.v;
    switch (name) {
      case "pi":
        return () => Math.PI;
      case "infty":
      case "infin":
        return () => Infinity;
      case "frac":
      case "cfrac": {
        const a = this.argument(), b = this.argument();
        return (e) => div(a(e), b(e));
      }
      case "binom": {
        const a = this.argument(), b = this.argument();
        return (e) => {
          const n = a(e), k = b(e);
          return factorial(n) / (factorial(k) * factorial(n - k));
        };
      }
      case "sqrt": {
        let idx: Node = () => 2;
        if (this.isOp("[")) {
          this.pos++;
          idx = this.expr();
          this.expect("]");
        }
        const a = this.argument();
        return (e) => {
          const x = a(e), n = idx(e);
          if (x < 0 && Number.isInteger(n) && n % 2 === 1) return -Math.pow(-x, 1 / n);
          return Math.pow(x, 1 / n);
        };
      }
      case "log": {
        if (this.isOp("_")) {
          this.pos++;
          const base = this.argument();
          const a = this.funcArg();
          return (e) => Math.log(a(e)) / Math.log(base(e));
        }
        const a = this.funcArg();
        return (e) => Math.log10(a(e));
      }
      default:
        break;
    }
    if (name in FUNCS) {
      const f = FUNCS[name];
      let pow: Node | null = null;
      if (this.isOp("^")) { // \sin^2 x
        this.pos++;
        pow = this.postfix();
      }
      const a = this.funcArg();
      const p = pow;
      return p ? (e) => Math.pow(f(a(e)), p(e)) : (e) => f(a(e));
    }
    if (GREEK.has(name)) {
      this.vars.add(name);
      return (e) => e.get(name) ?? NaN;
    }
    throw new Error(`unknown command \\${name}`);
  }

  /** Function argument: a bracketed group or an implicit product like `\sin 2x`. */
  funcArg(): Node {
    if (this.isOp("(") || this.isOp("{")) return this.primary();
    return this.power();
  }
}

interface Parsed {
  f: Node;
  vars: Set<string>;
}

function parseScalar(s: string): Parsed | null {
  if (s.length === 0 || s.length > MAX_PARSE_LEN) return null;
  const toks = tokenize(s);
  if (toks === null || toks.length === 0) return null;
  // A plain word ("yes", "Evelyn") is text, not a product of variables.
  if (toks.length > 1 && toks.every((t) => t.k === "id")) return null;
  const p = new Parser(toks);
  try {
    const f = p.parseAll();
    return { f, vars: p.vars };
  } catch {
    return null;
  }
}

function closeEnough(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return false;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  const d = Math.abs(a - b);
  return d <= ABS_TOL || d <= REL_TOL * Math.max(Math.abs(a), Math.abs(b));
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function scalarEqual(a: string, b: string): boolean | null {
  const pa = parseScalar(a), pb = parseScalar(b);
  if (pa === null || pb === null) return null;
  const vars = [...new Set([...pa.vars, ...pb.vars])].sort();
  if (vars.length === 0) {
    const x = pa.f(new Map()), y = pb.f(new Map());
    if (Number.isNaN(x) && Number.isNaN(y)) return null;
    return closeEnough(x, y);
  }
  const rand = rng(0x5eed);
  let checked = 0;
  for (let i = 0; i < SAMPLE_POINTS * 3 && checked < SAMPLE_POINTS; i++) {
    const env = new Map<string, number>();
    for (const v of vars) env.set(v, 0.5 + 2.5 * rand()); // positive: keeps sqrt/log real
    const x = pa.f(env), y = pb.f(env);
    if (!Number.isFinite(x) && !Number.isFinite(y)) continue;
    if (!closeEnough(x, y)) return false;
    checked++;
  }
  return checked > 0 ? true : null;
}

// ---------------------------------------------------------------------------
// Structure: lists, tuples, intervals, sets, matrices.

const OPEN = "([{";
const CLOSE = ")]}";

/** Splits on `sep` at bracket depth 0 (all of `([{` count as brackets). */
function splitTop(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\" && (s[i + 1] === "{" || s[i + 1] === "}")) {
      depth += s[i + 1] === "{" ? 1 : -1;
      i++;
      continue;
    }
    if (OPEN.includes(c)) depth++;
    else if (CLOSE.includes(c)) depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** If `s` is wrapped in one outer bracket pair, returns [open, inside, close]. */
function outerBrackets(s: string): [string, string, string] | null {
  let open: string, close: string, inner: string;
  if (s.startsWith("\\{") && s.endsWith("\\}")) {
    open = "{";
    close = "}";
    inner = s.slice(2, -2);
  } else {
    if (s.length < 2 || !OPEN.includes(s[0]) || !CLOSE.includes(s[s.length - 1])) return null;
    open = s[0];
    close = s[s.length - 1];
    inner = s.slice(1, -1);
  }
  // The opening bracket must close at the very end.
  let depth = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === "\\" && (inner[i + 1] === "{" || inner[i + 1] === "}")) {
      depth += inner[i + 1] === "{" ? 1 : -1;
      i++;
    } else if (OPEN.includes(c)) depth++;
    else if (CLOSE.includes(c)) depth--;
    if (depth < 0) return null;
  }
  if (depth !== 0) return null;
  return [open, inner, close];
}

function matrixCells(s: string): string[][] | null {
  const m = /^\\begin\{([pbvBV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$/s.exec(s);
  if (!m) return null;
  return m[2].split("\\\\").filter((r) => r.length > 0).map((r) => r.split("&"));
}

function unorderedMatch(xs: string[], ys: string[]): boolean {
  if (xs.length !== ys.length) return false;
  if (xs.length > MAX_LIST_MATCH) {
    const sx = [...xs].sort(), sy = [...ys].sort();
    return sx.every((x, i) => x === sy[i]);
  }
  const used = new Array(ys.length).fill(false);
  for (const x of xs) {
    let found = false;
    for (let j = 0; j < ys.length; j++) {
      if (!used[j] && equivNormalized(x, ys[j], 1)) {
        used[j] = true;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

function orderedMatch(xs: string[], ys: string[], depth: number): boolean {
  return xs.length === ys.length && xs.every((x, i) => equivNormalized(x, ys[i], depth + 1));
}

function equivNormalized(a: string, b: string, depth: number): boolean {
  if (a === b || a.toLowerCase() === b.toLowerCase()) return true;
  if (depth > 8) return false;
  // Unions of intervals or sets.
  if (a.includes("\\cup") || b.includes("\\cup")) {
    const xs = splitTop(a, "\\cup"), ys = splitTop(b, "\\cup");
    if (xs.length > 1 || ys.length > 1) return orderedMatch(xs, ys, depth);
  }
  const ma = matrixCells(a), mb = matrixCells(b);
  if (ma || mb) {
    if (!ma || !mb || ma.length !== mb.length) return false;
    return ma.every((row, i) => orderedMatch(row, mb[i], depth));
  }
  const oa = outerBrackets(a), ob = outerBrackets(b);
  const la = oa ? splitTop(oa[1], ",") : [], lb = ob ? splitTop(ob[1], ",") : [];
  const isSet = (o: [string, string, string] | null, s: string) =>
    o !== null && o[0] === "{" && o[2] === "}" && (s.startsWith("\\{") || s.includes(","));
  if (isSet(oa, a) || isSet(ob, b)) {
    if (!isSet(oa, a) || !isSet(ob, b)) return false;
    return unorderedMatch(la, lb);
  }
  if ((oa && la.length > 1) || (ob && lb.length > 1)) {
    // Tuples and intervals: bracket kinds must agree.
    if (!oa || !ob || oa[0] !== ob[0] || oa[2] !== ob[2]) return false;
    return orderedMatch(la, lb, depth);
  }
  // Bare comma lists ("all solutions, separated by commas") are unordered.
  const ca = splitTop(a, ","), cb = splitTop(b, ",");
  if (ca.length > 1 || cb.length > 1) return unorderedMatch(ca, cb);
  // Equations: side by side.
  const ea = splitTop(a, "="), eb = splitTop(b, "=");
  if (ea.length > 1 || eb.length > 1) {
    if (ea.length !== eb.length) return false;
    return orderedMatch(ea, eb, depth);
  }
  const num = scalarEqual(a, b);
  if (num !== null) return num;
  return textKey(a) === textKey(b);
}

function textKey(s: string): string {
  return s.toLowerCase().replace(/[{}\\]/g, "").replace(/^\((.*)\)$/, "$1");
}

/**
 * True when `predicted` denotes the same answer as `gold`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isEquivalent } from "./equivalence.ts";
 * assert.equal(isEquivalent("\\frac{1}{2}", "0.5"), true);
 * assert.equal(isEquivalent("[0,1)", "[0,1]"), false);
 * ```
 */
export function isEquivalent(gold: string, predicted: string | null): boolean {
  if (typeof gold !== "string" || typeof predicted !== "string") return false;
  // Very long answers are compared verbatim: normalization and matching stay bounded.
  if (gold.length > MAX_ANSWER_LEN || predicted.length > MAX_ANSWER_LEN) {
    return gold.trim() === predicted.trim();
  }
  const a = normalizeAnswer(gold), b = normalizeAnswer(predicted);
  if (a.length === 0 || b.length === 0) return false;
  return equivNormalized(a, b, 0);
}
