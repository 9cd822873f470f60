/**
 * Typed errors raised by the engine. A user never sees a bare WebGPU validation message:
 * each error names the tensor or kernel, the size asked for and the limit.
 */

/** A buffer, binding or dispatch exceeds one of the adapter's limits. */
export class LimitError extends Error {
  override name = "LimitError";
  constructor(
    readonly what: string,
    readonly limitName: string,
    readonly requested: number,
    readonly limit: number,
  ) {
    super(
      `${what}: ${requested.toLocaleString("en-US")} exceeds ${limitName} = ${
        limit.toLocaleString("en-US")
      }`,
    );
  }
}

/** The device ran out of memory (caught by an "out-of-memory" error scope). */
export class GpuOutOfMemoryError extends Error {
  override name = "GpuOutOfMemoryError";
  constructor(readonly context: string, detail: string) {
    super(`out of GPU memory during ${context}${detail ? `: ${detail}` : ""}`);
  }
}

/** WebGPU rejected a call (caught by a "validation" error scope). */
export class GpuValidationError extends Error {
  override name = "GpuValidationError";
  constructor(readonly context: string, detail: string) {
    super(`WebGPU validation failed during ${context}: ${detail.trim()}`);
  }
}

/** A WGSL module failed to compile; the message names the kernel file and entry point. */
export class ShaderError extends Error {
  override name = "ShaderError";
  constructor(readonly kernel: string, detail: string) {
    super(`kernel ${kernel} failed to compile: ${detail.trim()}`);
  }
}

/** The device was lost (destroyed, driver reset). Every pending read-back rejects with it. */
export class DeviceLostError extends Error {
  override name = "DeviceLostError";
  constructor(readonly reason: string, detail: string) {
    super(`GPU device lost (${reason})${detail ? `: ${detail}` : ""}`);
  }
}

/** No WebGPU adapter could be acquired. */
export class NoAdapterError extends Error {
  override name = "NoAdapterError";
  constructor(detail: string) {
    super(`no WebGPU adapter available: ${detail}`);
  }
}
