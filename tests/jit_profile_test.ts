import assert from "node:assert/strict";
import {
  anonExecRegions,
  byMnemonic,
  bySpan,
  countIps,
  hotspots,
  parseMatmul,
  parseObjdump,
} from "../bench/jit_profile.ts";

const MAPS = [
  "55d0c0000000-55d0c4000000 r-xp 00000000 08:01 1234   /usr/bin/deno",
  "7f20c4000000-7f20e3dc0000 rwxp 00000000 00:00 0 ",
  "7f210015a000-7f210017f000 r-xp 00000000 00:00 0 ",
  "7f2100180000-7f2100190000 rw-p 00000000 00:00 0 ",
  "7f2104cbe000-7f2104cc0000 r-xp 00000000 00:00 0                          [vdso]",
  "7f21032e5000-7f21032e6000 rwxp 00000000 00:00 0",
].join("\n");

const ASM = [
  "",
  "/tmp/region0.bin:     file format binary",
  "",
  "Disassembly of section .data:",
  "",
  "00007f210015a000 <.data>:",
  "    7f210015a000:\tc5 fc 59 c1          \tvmulps %ymm1,%ymm0,%ymm0",
  "    7f210015a004:\tc5 fc 58 c2          \tvaddps %ymm2,%ymm0,%ymm0",
  "    7f210015a008:\t62 e2 7d 29 58 0c 8f \tvpbroadcastd (%rdi,%rcx,4),%ymm17{%k1}",
  "    7f210015a00f:\teb 1c                \tjmp    0x7f210015a02d",
  "    7f210015a011:\t66 66 2e 0f 1f 84 00 \tdata16 cs nopw 0x0(%rax,%rax,1)",
  "    7f210015a018:\t00 00 00 ",
  "    7f210015a01b:\tc5 fc 59 c3          \tvmulps %ymm3,%ymm0,%ymm0",
].join("\n");

Deno.test("jit_profile: anonymous executable mappings, large ones and file-backed left out", () => {
  const r = anonExecRegions(MAPS);
  assert.deepEqual(r, [
    { lo: 0x7f210015a000n, hi: 0x7f210017f000n },
    { lo: 0x7f21032e5000n, hi: 0x7f21032e6000n },
  ]);
  // With a larger limit the 500 MB code space is kept too.
  assert.equal(anonExecRegions(MAPS, 1 << 30).length, 3);
});

Deno.test("jit_profile: objdump lines parse to address and instruction", () => {
  const ins = parseObjdump(ASM);
  assert.deepEqual(ins.map((i) => i.addr), [
    0x7f210015a000n,
    0x7f210015a004n,
    0x7f210015a008n,
    0x7f210015a00fn,
    0x7f210015a011n,
    0x7f210015a01bn,
  ]);
  assert.equal(ins[2].text, "vpbroadcastd (%rdi,%rcx,4),%ymm17{%k1}");
  assert.equal(ins[3].text, "jmp    0x7f210015a02d");
});

Deno.test("jit_profile: samples per mnemonic and the hottest instruction with its context", () => {
  const ins = parseObjdump(ASM);
  const ips = countIps(
    ["7f210015a00f", "7f210015a00f", "7f210015a00f", "7f210015a000", "7f210015a01b", "", "junk"]
      .join("\n") + "\nffffffff81000000\n",
  );
  assert.equal(ips.get(0x7f210015a00fn), 3);
  assert.equal(ips.get(0xffffffff81000000n), 1); // outside the code: counted, never attributed
  assert.deepEqual(byMnemonic(ins, ips), [["jmp", 3], ["vmulps", 2]]);
  const [h] = hotspots(ins, ips, 1, 2);
  assert.equal(h.addr, 0x7f210015a00fn);
  assert.equal(h.samples, 3);
  assert.equal(h.lines.length, 3);
  assert.match(h.lines[0], /^7f210015a004 +0 {2}vaddps/);
  assert.match(h.lines[2], /^7f210015a00f +3 {2}jmp/);
  // Per 16 bytes of code: [..00, ..10) holds 4 instructions and 4 samples, [..10, ..20) 2 and 1.
  assert.deepEqual(bySpan(ins, ips, 16), [
    { lo: 0x7f210015a000n, samples: 4, instrs: 4 },
    { lo: 0x7f210015a010n, samples: 1, instrs: 2 },
  ]);
});

Deno.test("jit_profile: --matmul parses shape and layout, rejects bad ones by name", () => {
  assert.deepEqual(parseMatmul("512x896x4864"), { shape: [512, 896, 4864], layout: "nt" });
  assert.deepEqual(parseMatmul("8x64x16:tn"), { shape: [8, 64, 16], layout: "tn" });
  assert.throws(() => parseMatmul("512x896"), /--matmul 512x896: expected MxKxN/);
  assert.throws(() => parseMatmul("512x0x4"), /expected MxKxN/);
  assert.throws(() => parseMatmul("4x4x4:tt"), /layout tt is not one of nt, nn, tn/);
});
