import assert from "node:assert/strict";
import { AdamW, ADAMW_DEFAULTS, type AdamWConfig } from "../engine/adamw.ts";
import { adamwStepRef, type RefParam } from "../engine/adamw_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, gpuTest, testDevice } from "./util.ts";

const SIZES = [1, 37, 4096, 9000];

async function setup(seed: number, cfg: Partial<AdamWConfig>, chunkElems?: number, gradScale = 1) {
  const dev = await testDevice();
  const rng = new Rng(seed);
  const host = SIZES.map((n, i) => ({
    name: `p${i}`,
    p: rng.normals(n),
    g: rng.normals(n, gradScale),
    wd: i === 1 ? 0 : undefined,
  }));
  const entries = host.map((h) => ({
    name: h.name,
    param: dev.upload(h.name, h.p, [h.p.length]),
    grad: dev.upload(`grad.${h.name}`, h.g, [h.g.length]),
    weightDecay: h.wd,
  }));
  const opt = new AdamW(dev, entries, cfg, chunkElems);
  const ref: RefParam[] = host.map((h) => ({
    param: Float64Array.from(h.p),
    grad: h.g,
    m: new Float64Array(h.p.length),
    v: new Float64Array(h.p.length),
    weightDecay: h.wd,
  }));
  return { dev, rng, host, entries, opt, ref };
}

function cleanup(s: Awaited<ReturnType<typeof setup>>) {
  for (const e of s.entries) {
    e.param.dispose();
    e.grad.dispose();
  }
  s.opt.dispose();
}

for (
  const [label, cfg, chunk, gradScale] of [
    ["without clipping", { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0 }, undefined, 1],
    ["with clipping active", { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 1.0 }, undefined, 1],
    ["chunked over the binding size", { lr: 3e-3, weightDecay: 0.01, maxGradNorm: 5 }, 4096, 0.1],
  ] as const
) {
  Deno.test(`AdamW matches the CPU reference over three steps ${label}`, gpuTest, async () => {
    const s = await setup(11, cfg, chunk, gradScale);
    const full = { ...ADAMW_DEFAULTS, ...cfg };
    for (let t = 1; t <= 3; t++) {
      if (t > 1) {
        for (let i = 0; i < s.host.length; i++) {
          const g = s.rng.normals(s.host[i].g.length, gradScale);
          s.dev.write(s.entries[i].grad, g);
          s.ref[i].grad = g;
        }
      }
      const stats = await s.opt.stepWith(full.lr);
      const r = adamwStepRef(s.ref, t, full.lr, full);
      assert.equal(stats.skipped, false);
      assert.equal(stats.step, t);
      assertClose([stats.gradNorm], [r.gradNorm], { rtol: 1e-5, label: "grad norm" });
      assertClose([stats.clipScale], [r.clipScale], { rtol: 1e-5, label: "clip scale" });
      if (cfg.maxGradNorm === 1.0) assert.ok(r.clipScale < 1, "the test must exercise clipping");
      for (let i = 0; i < s.host.length; i++) {
        // Parameters are O(1); m/sqrt(v) is O(1): fp32 rounding of a few ops per element.
        assertClose(await s.entries[i].param.read(), s.ref[i].param, {
          atol: 1e-6,
          rtol: 1e-5,
          label: `param ${i} step ${t}`,
        });
        assertClose(await s.opt.m[i].read(), s.ref[i].m, {
          atol: 1e-7,
          rtol: 1e-5,
          label: `m ${i}`,
        });
        assertClose(await s.opt.v[i].read(), s.ref[i].v, {
          atol: 1e-9,
          rtol: 1e-5,
          label: `v ${i}`,
        });
      }
    }
    cleanup(s);
  });
}

Deno.test(
  "a NaN or Inf gradient skips the step and leaves weights and moments untouched",
  gpuTest,
  async () => {
    const s = await setup(12, { lr: 1e-2, maxGradNorm: 1 });
    await s.opt.stepWith();
    const before = await Promise.all([
      ...s.entries.map((e) => e.param.read()),
      ...s.opt.m.map((t) => t.read()),
      ...s.opt.v.map((t) => t.read()),
    ]);
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const g = Float32Array.from(s.host[3].g);
      g[4321] = bad;
      g[17] = bad;
      s.dev.write(s.entries[3].grad, g);
      const stats = await s.opt.stepWith();
      assert.equal(stats.skipped, true, `skip on ${bad}`);
      assert.equal(stats.nonfinite, 2);
      assert.equal(stats.step, 1, "a skipped step does not advance the count");
      const after = await Promise.all([
        ...s.entries.map((e) => e.param.read()),
        ...s.opt.m.map((t) => t.read()),
        ...s.opt.v.map((t) => t.read()),
      ]);
      after.forEach((a, i) => assertSameBits(a, before[i], `state ${i} after ${bad}`));
    }
    // A finite gradient afterwards steps again.
    s.dev.write(s.entries[3].grad, s.host[3].g);
    const ok = await s.opt.stepWith();
    assert.equal(ok.skipped, false);
    assert.equal(ok.step, 2);
    cleanup(s);
  },
);

Deno.test("AdamW run twice from the same state gives identical bits", gpuTest, async () => {
  const results: Float32Array[][] = [];
  for (let run = 0; run < 2; run++) {
    const s = await setup(13, { lr: 1e-2, maxGradNorm: 1 }, 4096);
    await s.opt.stepWith();
    await s.opt.stepWith();
    results.push(await Promise.all(s.entries.map((e) => e.param.read())));
    cleanup(s);
  }
  results[0].forEach((a, i) => assertSameBits(a, results[1][i], `param ${i}`));
});

Deno.test(
  "the global gradient norm equals the float64 norm of all gradients",
  gpuTest,
  async () => {
    const s = await setup(14, {}, 4096);
    const { norm, nonfinite } = await s.opt.gradNorm();
    let sq = 0;
    for (const h of s.host) for (const g of h.g) sq += g * g;
    assertClose([norm], [Math.sqrt(sq)], { rtol: 1e-5, label: "norm" });
    assert.equal(nonfinite, 0);
    cleanup(s);
  },
);
