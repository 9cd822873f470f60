/**
 * The public API of the engine.
 *
 * @example
 * ```ts ignore
 * import { Device, Qwen2 } from "./mod.ts";
 * const device = await Device.create();
 * const model = await Qwen2.load(device, "runs/default/base-model");
 * const lp: Float32Array[] = await model.logprobs([[1, 2, 3], [4, 5]]);
 * // lp[i][t] = log p(seq[i][t+1] | seq[i][0..t]); lp[i].length = seq[i].length - 1
 * ```
 */

// Engine: device, tensors, kernels, optimizer.
export { Device, type DeviceOptions, type MemoryStats } from "./engine/device.ts";
export { formatKernelTimes, type KernelTime } from "./engine/kernel_profile.ts";
export {
  DeviceLostError,
  GpuOutOfMemoryError,
  GpuValidationError,
  LimitError,
  NoAdapterError,
  ShaderError,
} from "./engine/errors.ts";
export { Tensor, type TensorSlice } from "./engine/tensor.ts";
export { Rng } from "./engine/rng.ts";
export { matmul, type MatmulOptions, sumRows } from "./engine/gemm.ts";
export { lmHeadBackward, lmHeadForward } from "./engine/vocab_head.ts";
export { rmsnormBackward, rmsnormForward } from "./engine/rmsnorm.ts";
export { ropeBackward, ropeForward } from "./engine/rope.ts";
export { swigluBackward, swigluForward } from "./engine/swiglu.ts";
export { embeddingBackward, embeddingForward } from "./engine/embedding.ts";
export {
  attentionBackward,
  attentionDecode,
  attentionForward,
  kvCacheAppend,
} from "./engine/attention.ts";
export { sampleTokens, type SampleTokensArgs } from "./engine/sampling.ts";
export { AdamW, type AdamWConfig, type StepStats } from "./engine/adamw.ts";

// Model and checkpoint I/O.
export {
  type ForwardState,
  type GenerateOptions,
  type Generation,
  parameterNames,
  parameterShape,
  Qwen2,
} from "./engine/qwen2.ts";
export { loadQwen2Config, PRESETS, type Qwen2Config } from "./engine/config.ts";
export { openCheckpoint, SafetensorsFile, writeSafetensors } from "./engine/safetensors.ts";
export { type ChatMessage, Tokenizer } from "./engine/tokenizer.ts";
export { initModel } from "./engine/init_model.ts";

// Objectives and the loop.
export { type ObjectiveResult, objectives, TRAINER_NAMES } from "./trainers/objective.ts";
export {
  grpoAdvantages,
  lensAdvantages,
  lensRewards,
  rlooAdvantages,
} from "./trainers/advantages.ts";
export { optimizerStep } from "./trainers/step.ts";
export { runPhase } from "./trainers/phase.ts";
export { rollout } from "./trainers/rollout.ts";
export { evaluate } from "./trainers/evaluate.ts";
export { latestCheckpoint, loadCheckpoint, saveCheckpoint } from "./trainers/run_state.ts";
export { evalRow, MetricsWriter, openEvals, openMetrics, readMetrics } from "./trainers/metrics.ts";
export { ProgressBar } from "./trainers/progress.ts";
export { renderReport } from "./trainers/report.ts";

// Verifiers.
export * as countdown from "./verifiers/countdown/mod.ts";
export { meanPassAtK, passAtK } from "./verifiers/pass_at_k.ts";
export * as math from "./verifiers/math/mod.ts";
