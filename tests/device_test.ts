import assert from "node:assert/strict";
import { Device, params } from "../engine/device.ts";
import { DeviceLostError, LimitError } from "../engine/errors.ts";
import { add, axpy, fill, scale } from "../engine/elementwise.ts";
import { addRef, axpyRef, scaleRef } from "../engine/elementwise_ref.ts";
import { Rng } from "../engine/rng.ts";
import { assertClose, assertSameBits, gpuTest, testDevice } from "./util.ts";

Deno.test("Device.create() requests the adapter's own limits", gpuTest, async () => {
  const dev = await testDevice();
  const adapter = (await navigator.gpu.requestAdapter())!;
  assert.equal(dev.limits.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize);
  assert.equal(dev.limits.maxBufferSize, adapter.limits.maxBufferSize);
  assert.equal(
    dev.limits.maxStorageBuffersPerShaderStage,
    adapter.limits.maxStorageBuffersPerShaderStage,
  );
  assert.ok(dev.description.length > 0);
});

Deno.test("upload() and read() round-trip f32, u32 and i32 data", gpuTest, async () => {
  const dev = await testDevice();
  const f = new Float32Array([1.5, -2, Number.NaN, Infinity, 3e-39]);
  const t = dev.upload("f", f, [5]);
  assertSameBits(await t.read(), f, "f32");
  const u = dev.upload("u", new Uint32Array([0, 1, 0xffffffff]), [3], "u32");
  assert.deepEqual([...await u.read()], [0, 1, 0xffffffff]);
  const i = dev.upload("i", new Int32Array([-5, 7]), [2], "i32");
  assert.deepEqual([...await i.read()], [-5, 7]);
  const part = await dev.read(t.slice(1, 2));
  assert.deepEqual([...part], [-2, Number.NaN]);
  for (const x of [t, u, i]) x.dispose();
});

Deno.test("elementwise add, axpy, scale and fill match the CPU reference", gpuTest, async () => {
  const dev = await testDevice();
  const rng = new Rng(1);
  for (const n of [1, 255, 256, 257, 10_000]) {
    const a = rng.normals(n), b = rng.normals(n);
    const ta = dev.upload("a", a, [n]), tb = dev.upload("b", b, [n]);
    const out = dev.empty("out", [n]);
    add(dev, ta, tb, out);
    assertClose(await out.read(), addRef(a, b), { atol: 0, rtol: 0, label: `add n=${n}` });
    axpy(dev, 0.37, ta, out);
    assertClose(await out.read(), axpyRef(0.37, a, addRef(a, b)), { label: `axpy n=${n}` });
    scale(dev, -3, ta, out);
    assertClose(await out.read(), scaleRef(-3, a), { atol: 0, rtol: 0, label: `scale n=${n}` });
    fill(dev, 2.5, out);
    assert.ok((await out.read()).every((x) => x === 2.5));
    for (const x of [ta, tb, out]) x.dispose();
  }
});

Deno.test("dispatches beyond 65535 workgroups are laid out in 2-D", gpuTest, async () => {
  const dev = await testDevice();
  const n = 256 * 70_000 + 3; // 70,001 workgroups of 256
  const [x, y] = dev.grid(Math.ceil(n / 256));
  assert.ok(x <= dev.limits.maxComputeWorkgroupsPerDimension && y === 2);
  const out = dev.zeros("big", [n]);
  fill(dev, 1, out);
  const back = await out.read();
  assert.equal(back[0], 1);
  assert.equal(back[n - 1], 1);
  assert.equal(back.reduce((s, v) => s + v, 0), n);
  out.dispose();
});

Deno.test("a tensor over maxBufferSize gives a LimitError naming it", gpuTest, async () => {
  const dev = await testDevice();
  const rows = Math.ceil(dev.limits.maxBufferSize / 4 / 1024) + 1;
  assert.throws(() => dev.empty("huge_weight", [rows, 1024]), (e: unknown) => {
    assert.ok(e instanceof LimitError);
    assert.match(e.message, /huge_weight/);
    assert.match(e.message, /maxBufferSize/);
    assert.equal(e.limit, dev.limits.maxBufferSize);
    return true;
  });
});

Deno.test(
  "binding a tensor over the storage binding limit gives a LimitError",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const limit = dev.limits.maxStorageBufferBindingSize;
    // Just over the limit (any limit: 128 MiB on llvmpipe, 2 GiB - 4 on an NVIDIA Vulkan
    // driver), with halves that start on a 256-byte boundary.
    const n = (Math.floor(limit / 512) + 1) * 128;
    const t = dev.empty("embed_tokens", [n]);
    assert.throws(() => fill(dev, 0, t), (e: unknown) => {
      assert.ok(e instanceof LimitError);
      assert.match(e.message, /embed_tokens/);
      assert.match(e.message, /maxStorageBufferBindingSize/);
      assert.equal(e.requested, n * 4);
      return true;
    });
    // The same tensor bound in chunks under the limit works.
    const half = n / 2;
    const k = dev.kernel("elementwise", "fill");
    dev.dispatch(
      k,
      [params().u32(half).f32(7), undefined, undefined, t.slice(half, half)],
      dev.grid(Math.ceil(half / 256)),
    );
    const tail = await dev.read(t.slice(n - 4, 4));
    assert.deepEqual([...tail], [7, 7, 7, 7]);
    t.dispose();
    dev.trim();
  },
);

Deno.test(
  "a WebGPU validation error surfaces as a typed error naming the kernel",
  gpuTest,
  async () => {
    const dev = await testDevice();
    const t = dev.zeros("x", [16]);
    // Entry "add" needs bindings 1 and 2; leaving them out is a validation error at bind time.
    const k = dev.kernel("elementwise", "add");
    dev.dispatch(k, [params().u32(16).f32(0), undefined, undefined, t], 1);
    await assert.rejects(() => dev.sync(), (e: unknown) => {
      assert.ok(e instanceof Error && e.name === "GpuValidationError", String(e));
      assert.match(e.message, /elementwise:add/);
      return true;
    });
    // The device stays usable.
    fill(dev, 3, t);
    assert.equal((await t.read())[0], 3);
    t.dispose();
  },
);

Deno.test("the same work run twice gives identical bits", gpuTest, async () => {
  const dev = await testDevice();
  const rng = new Rng(2);
  const a = dev.upload("a", rng.normals(5000), [5000]);
  const b = dev.upload("b", rng.normals(5000), [5000]);
  const o1 = dev.empty("o1", [5000]), o2 = dev.empty("o2", [5000]);
  add(dev, a, b, o1);
  axpy(dev, 0.1, a, o1);
  add(dev, a, b, o2);
  axpy(dev, 0.1, a, o2);
  assertSameBits(await o1.read(), await o2.read(), "add+axpy");
  for (const x of [a, b, o1, o2]) x.dispose();
});

Deno.test("a lost device rejects a pending read-back instead of hanging", gpuTest, async () => {
  const dev = await Device.create({ log: () => {} });
  const t = dev.upload("x", new Float32Array(1024), [1024]);
  const pending = t.read();
  dev.destroy();
  const outcome = await Promise.race([
    pending.then(() => "resolved", (e) => e),
    new Promise((r) => setTimeout(() => r("hung"), 5000)),
  ]);
  // The read either finished before the loss or was rejected; it never hangs.
  assert.notEqual(outcome, "hung");
  await assert.rejects(() => t.read(), DeviceLostError);
});

Deno.test("buffers are reused from the pool after dispose()", gpuTest, async () => {
  const dev = await testDevice();
  const a = dev.empty("a", [1000]);
  const buf = a.buffer;
  a.dispose();
  const b = dev.empty("b", [1000]);
  assert.equal(b.buffer, buf);
  b.dispose();
});
