#!/bin/bash
# One prepared run on a GPU machine (the device tool: `run` with command
# `bash bench/device/run.sh`, carry [".dev", ".gl"], timeout_s 560), built by
# bench/device/kit.sh. In order, each step capped so that the whole stays under the tool's
# 600 s a command:
#   1. the loader libraries from .gl/, the NVIDIA Vulkan driver file when the image has one,
#      deno and node_modules from .dev/; the adapter's name and limits
#   2. `bench --only gemm_forms`: the fastest tiled matmul form on this GPU
#   3. the kernel benches with that form (attention in its GPU form, rows1; sampling last), then
#      the attention bench again in the rows4 form for comparison
#   4. `bench --large --only model`: the whole 0.5B-shape model, forward + backward and generation
#   5. the kernel and model tests under the GPU's driver
# Everything lands in $OUT (logs, and --json files of every bench, rewritten after each bench
# so that a step cut off by its cap keeps what finished). SIM=1 skips the loader
# libraries, for a dry run on a machine without a GPU; Q=--quick makes the benches small.
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
Q=${Q:-}
if [ -d .gl ] && [ -z "${SIM:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv \
  2>&1 | tee "$OUT/gpu.txt"
mkdir -p /tmp/dn && xz -dc .dev/deno.xz > /tmp/dn/deno && chmod +x /tmp/dn/deno
# No registry is reachable there: point npm at a closed port so that nothing waits on it.
export PATH=/tmp/dn:$PATH DENO_DIR=/tmp/dd NO_COLOR=1 NPM_CONFIG_REGISTRY=http://127.0.0.1:9/
tar -xJf .dev/nm.tar.xz
deno eval 'const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
const l = a?.limits;
console.log("adapter", a?.info.vendor, a?.info.architecture, a?.info.description, "binding",
  l?.maxStorageBufferBindingSize, "buffer", l?.maxBufferSize, "workgroup bytes",
  l?.maxComputeWorkgroupStorageSize, "invocations", l?.maxComputeInvocationsPerWorkgroup);' \
  2>&1 | tee -a "$OUT/gpu.txt"
# Each step: timeout CAP deno task bench ARGS, without deno's download lines, into a log.
step() {
  local cap=$1 log=$2
  shift 2
  timeout "$cap" deno task bench $Q "$@" 2>&1 | grep -v "^Download" | tee "$OUT/$log"
}

echo "== matmul forms"
step "${T_FORMS:-120}" forms.log --only gemm_forms --json "$OUT/forms.json" >/dev/null
grep -v "^gemm_form " "$OUT/forms.log"
best=$(grep -o "fastest tiled form here: --gemm .*" "$OUT/forms.log" | cut -d" " -f6)
echo "using --gemm ${best:=tiled}"

echo "== kernel benches"
step "${T_BENCH:-150}" bench.log --gemm "$best" \
  --only adamw,attention,elementwise,lm_head,matmul,norms,sampling --json "$OUT/bench.json"
echo "== attention, rows4 form"
step "${T_ATTN:-45}" attention_rows4.log --only attention --attention rows4 \
  --json "$OUT/attention_rows4.json"

echo "== model (--large)"
step "${T_MODEL:-120}" model.log --gemm "$best" --large --only model --json "$OUT/model.json"

echo "== kernel and model tests"
timeout "${T_TESTS:-120}" deno test -A --parallel tests/gemm_test.ts tests/attention_test.ts \
  tests/vocab_head_test.ts tests/adamw_test.ts tests/rmsnorm_test.ts tests/rope_test.ts \
  tests/swiglu_test.ts tests/embedding_test.ts tests/sampling_test.ts tests/cast_test.ts \
  tests/device_test.ts tests/qwen2_test.ts tests/bench_test.ts > "$OUT/tests.log" 2>&1
echo "tests exit $?"
grep -E "FAILED|^ok \||^error:" "$OUT/tests.log" | tail -30
