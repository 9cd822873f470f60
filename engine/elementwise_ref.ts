/** CPU references for kernels/elementwise.wgsl (float64 arithmetic, rounded to f32 at the end). */

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float32Array {
  return Float32Array.from({ length: a.length }, (_, i) => a[i] + b[i]);
}

export function axpyRef(alpha: number, a: ArrayLike<number>, out: ArrayLike<number>): Float32Array {
  return Float32Array.from({ length: a.length }, (_, i) => out[i] + Math.fround(alpha) * a[i]);
}

export function scaleRef(alpha: number, a: ArrayLike<number>): Float32Array {
  return Float32Array.from({ length: a.length }, (_, i) => Math.fround(alpha) * a[i]);
}
