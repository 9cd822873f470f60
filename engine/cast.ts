/**
 * Dispatch wrappers for kernels/cast.wgsl: bf16 and f16 to f32 on the GPU (so 16-bit
 * checkpoints upload at half the bytes and convert there), and f32 to bf16 (round to nearest
 * even) for saving. 16-bit data lives in u32 tensors of ceil(n / 2) words, two values a word,
 * element 2i in the low half: the bytes of a Uint16Array. Tensors larger than one storage binding
 * are converted in chunks. CPU references are in engine/cast_ref.ts.
 */
import { type Device, params } from "./device.ts";
import { formatShape, type Tensor } from "./tensor.ts";

const WG = 256;
/** Chunk lengths are multiples of this many elements: 256-byte offsets on both sides. */
const CHUNK_ALIGN = 128;

export type HalfFormat = "bf16" | "f16";

export interface CastOptions {
  /**
   * Elements converted per dispatch (a multiple of 128). Defaults to what fits one storage
   * binding; tests pass small values to exercise chunking.
   */
  elemsPerChunk?: number;
}

function chunkElems(dev: Device, requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested <= 0 || requested % CHUNK_ALIGN !== 0) {
      throw new RangeError(
        `cast: elemsPerChunk ${requested} must be a positive multiple of ${CHUNK_ALIGN}`,
      );
    }
    return requested;
  }
  const maxElems = Math.floor(dev.limits.maxStorageBufferBindingSize / 4);
  return Math.floor(maxElems / CHUNK_ALIGN) * CHUNK_ALIGN;
}

function checkPair(op: string, packed: Tensor, full: Tensor): void {
  if (packed.dtype !== "u32") {
    throw new RangeError(
      `${op}: ${packed.name} holds packed 16-bit values and must be u32, not ${packed.dtype}`,
    );
  }
  if (full.dtype !== "f32") {
    throw new RangeError(`${op}: ${full.name} must be f32, not ${full.dtype}`);
  }
  const words = Math.ceil(full.size / 2);
  if (packed.size !== words) {
    throw new RangeError(
      `${op}: ${packed.name} ${
        formatShape(packed.shape)
      } has ${packed.size} words; ${full.size} values of ${full.name} ${
        formatShape(full.shape)
      } pack into ${words}`,
    );
  }
}

function run(
  dev: Device,
  entry: string,
  packed: Tensor,
  full: Tensor,
  toF32: boolean,
  opts: CastOptions,
): void {
  const n = full.size;
  const chunk = chunkElems(dev, opts.elemsPerChunk);
  const k = dev.kernel("cast", entry);
  for (let start = 0; start < n; start += chunk) {
    const count = Math.min(chunk, n - start);
    const words = Math.ceil(count / 2);
    const p = params().u32(count).u32(words);
    const half = packed.slice(start / 2, words);
    const wide = full.slice(start, count);
    const grid = dev.grid(Math.ceil(words / WG));
    if (toF32) dev.dispatch(k, [p, half, wide], grid);
    else dev.dispatch(k, [p, undefined, undefined, wide, half], grid);
  }
}

/** out [n] f32 = the bf16 or f16 values packed in `packed` [ceil(n / 2)] u32. Bit-exact. */
export function castHalfToF32(
  dev: Device,
  format: HalfFormat,
  packed: Tensor,
  out: Tensor,
  opts: CastOptions = {},
): Tensor {
  checkPair(`cast ${format} -> f32`, packed, out);
  run(dev, format === "bf16" ? "bf16_to_f32" : "f16_to_f32", packed, out, true, opts);
  return out;
}

/** out [ceil(n / 2)] u32 = x [n] rounded to bf16 (nearest, ties to even; NaN -> 0x7fc0). */
export function castF32ToBf16(dev: Device, x: Tensor, out: Tensor, opts: CastOptions = {}): Tensor {
  checkPair("cast f32 -> bf16", out, x);
  run(dev, "f32_to_bf16", out, x, false, opts);
  return out;
}

/** The bytes of a Uint16Array as u32 words (a zero high half pads an odd length). */
export function packHalf(data: Uint16Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(data.length / 2));
  new Uint16Array(words.buffer, 0, data.length).set(data);
  return words;
}

/**
 * Uploads raw bf16 or f16 values (half the bytes of f32) and converts them to a new f32 tensor
 * on the GPU.
 */
export function uploadHalf(
  dev: Device,
  name: string,
  data: Uint16Array,
  shape: readonly number[],
  format: HalfFormat,
  opts: CastOptions = {},
): Tensor {
  const out = dev.empty(name, shape);
  if (out.size !== data.length) {
    out.dispose();
    throw new RangeError(
      `tensor ${name}: ${data.length} ${format} values for shape ${formatShape(shape)}`,
    );
  }
  const words = packHalf(data);
  const packed = dev.upload(`${name} (${format})`, words, [words.length], "u32");
  castHalfToF32(dev, format, packed, out, opts);
  packed.dispose();
  return out;
}

/** Reads an f32 tensor back as bf16 bits (rounded on the GPU, half the bytes transferred). */
export async function readBf16(
  dev: Device,
  t: Tensor,
  opts: CastOptions = {},
): Promise<Uint16Array> {
  const words = Math.ceil(t.size / 2);
  const packed = dev.empty(`${t.name} (bf16)`, [words], "u32");
  castF32ToBf16(dev, t, packed, opts);
  const bits = await packed.read();
  packed.dispose();
  return new Uint16Array(bits.buffer, 0, t.size);
}
