/**
 * A tensor is a GPU buffer plus its shape, kept on the CPU side. Everything on the GPU is
 * 4 bytes an element: f32 for values, u32/i32 for token ids and indices. Layout is
 * row-major and contiguous; strides are derived from the shape.
 */
import type { Device } from "./device.ts";

export type DType = "f32" | "u32" | "i32";

export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** A contiguous element range of a tensor, bound on its own (for chunked bindings). */
export interface TensorSlice {
  readonly tensor: Tensor;
  /** First element of the range. */
  readonly start: number;
  /** Number of elements in the range. */
  readonly count: number;
  /** Shape of the range when it is used as a tensor of its own (e.g. a block of rows). */
  readonly shape?: readonly number[];
}

/** Shape of a tensor or slice: a slice without its own shape is a flat vector. */
export function shapeOf(x: Tensor | TensorSlice): readonly number[] {
  return x instanceof Tensor ? x.shape : x.shape ?? [x.count];
}

export class Tensor<D extends DType = DType> {
  #disposed = false;

  constructor(
    readonly device: Device,
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: D,
    readonly name: string,
  ) {}

  /** Element count. */
  get size(): number {
    return numel(this.shape);
  }

  /** Bytes of the data (the buffer may be larger: pooled buffers are rounded up). */
  get bytes(): number {
    return this.size * 4;
  }

  get strides(): number[] {
    return stridesOf(this.shape);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** The element range `[start, start + count)`, for binding a chunk of a large tensor. */
  slice(start: number, count: number): TensorSlice {
    if (start < 0 || count < 0 || start + count > this.size) {
      throw new RangeError(
        `slice [${start}, ${
          start + count
        }) is outside tensor ${this.name} of ${this.size} elements`,
      );
    }
    return { tensor: this, start, count };
  }

  /**
   * Rows `[start, start + count)` along the first dimension, as a slice with its own shape:
   * `w.rows(8192, 8192)` of a `[V, d]` matrix is a `[8192, d]` block. The start must land on
   * the device's storage offset alignment (256 bytes) to be bound.
   */
  rows(start: number, count: number): TensorSlice {
    const inner = this.size / (this.shape[0] || 1);
    const s = this.slice(start * inner, count * inner);
    return { ...s, shape: [count, ...this.shape.slice(1)] };
  }

  /** Same buffer, new shape of the same element count. */
  reshape(shape: readonly number[], name = this.name): Tensor<D> {
    if (numel(shape) !== this.size) {
      throw new RangeError(
        `cannot reshape ${this.name} ${formatShape(this.shape)} to ${formatShape(shape)}`,
      );
    }
    return new Tensor(this.device, this.buffer, shape, this.dtype, name);
  }

  /** Copies the data back to the CPU (flushes pending work first). */
  read(): Promise<TypedArrayFor<D>> {
    return this.device.read(this);
  }

  /** Returns the buffer to the device's pool. A disposed tensor must not be used again. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.device.release(this.buffer);
  }
}
