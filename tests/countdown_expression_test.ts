import assert from "node:assert/strict";
import {
  countBinary,
  evaluate,
  formatExpr,
  literals,
  parseExpression,
} from "../verifiers/countdown/expression.ts";
import {
  add,
  cmp,
  div,
  fromNumber,
  mul,
  parseRational,
  rat,
  ratToString,
  sub,
  toNumber,
} from "../verifiers/countdown/rational.ts";
import { Rng } from "../engine/rng.ts";

const value = (src: string, lenient = false) => {
  const p = parseExpression(src, { lenient });
  if (!p.ok) throw new Error(`${src}: ${p.error}`);
  const v = evaluate(p.expr);
  return v === null ? null : ratToString(v);
};

Deno.test("rationals stay reduced with a positive denominator and compare exactly", () => {
  assert.deepEqual(rat(6, -4), { n: -3n, d: 2n });
  assert.equal(ratToString(add(rat(1, 3), rat(1, 6))), "1/2");
  assert.equal(ratToString(sub(rat(1, 3), rat(1, 3))), "0");
  assert.equal(ratToString(mul(rat(2, 3), rat(9, 4))), "3/2");
  assert.equal(div(rat(1), rat(0)), null);
  assert.equal(cmp(rat(1, 3), rat(333, 1000)), 1);
  assert.deepEqual(fromNumber(0.375), rat(3, 8));
  assert.deepEqual(parseRational("3.25"), rat(13, 4));
  assert.deepEqual(parseRational("-7/2"), rat(-7, 2));
  assert.equal(parseRational("1/0"), null);
  assert.equal(parseRational("1.5/2"), null);
  // Fields beyond doubles are shifted down first (truncation: a few ulps off).
  assert.ok(Math.abs(toNumber(rat(10n ** 400n + 1n, 10n ** 399n)) - 10) < 1e-12);
  assert.throws(() => rat(1, 0), RangeError);
});

Deno.test("parseExpression() follows precedence, left associativity and unary minus", () => {
  assert.equal(value("2 + 3 * 4"), "14");
  assert.equal(value("10 - 4 - 3"), "3");
  assert.equal(value("48 / 4 / 2"), "6");
  assert.equal(value("-3 * -(2 - 5)"), "-9");
  assert.equal(value("8 / (3 - 8 / 3)"), "24");
  assert.equal(value("1 / (2 - 2)"), null);
  assert.equal(value("3.5 × 2 ÷ 7 − 1", true), "0");
  assert.equal(value("3 x 4", true), "12");
});

Deno.test("parseExpression() in strict mode names what it rejects", () => {
  const err = (src: string) => {
    const p = parseExpression(src);
    assert.ok(!p.ok, src);
    return p.error;
  };
  assert.match(err("2 ** 3"), /expected a number or "\(" at 3/);
  assert.match(err("7 // 2"), /at 3/);
  assert.match(err("2.5"), /unexpected character "\." at 1/);
  assert.match(err("3 = 3"), /unexpected character "=" at 2/);
  assert.match(err("05 + 1"), /leading zero "05"/);
  assert.match(err("(1 + 2"), /expected "\)" at the end/);
  assert.match(err(""), /empty/);
  assert.match(err("(".repeat(300) + "1" + ")".repeat(300)), /nesting deeper than 200/);
  assert.match(err("1+".repeat(3000) + "1"), /exceed the limit of 4096/);
});

Deno.test("formatExpr() round-trips random trees with the fewest parentheses", () => {
  const rng = new Rng(5);
  const ops = ["+", "-", "*", "/"] as const;
  const tree = (depth: number): string =>
    depth === 0 || rng.int(3) === 0
      ? String(1 + rng.int(9))
      : `(${tree(depth - 1)} ${ops[rng.int(4)]} ${tree(depth - 1)})`;
  for (let i = 0; i < 300; i++) {
    const src = tree(4);
    const p = parseExpression(src);
    assert.ok(p.ok);
    const text = formatExpr(p.expr);
    const q = parseExpression(text);
    assert.ok(q.ok);
    assert.equal(value(text), value(src), `${src} -> ${text}`);
    assert.deepEqual(literals(q.expr), literals(p.expr));
    assert.equal(countBinary(q.expr), countBinary(p.expr));
    assert.ok(text.split("(").length <= src.split("(").length);
  }
});
