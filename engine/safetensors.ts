/**
 * Safetensors reader and writer (no npm package reads them locally, so this one is ours).
 *
 * File layout: `u64 little-endian N` | `N bytes of UTF-8 JSON header` | data. The header maps
 * each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the
 * start of the data) and may hold `"__metadata__": { string: string }`.
 *
 * The reader validates the whole header before it allocates anything tensor-sized: the header
 * length (at most 100,000,000 bytes and inside the file), UTF-8, JSON, no duplicate names, known
 * dtypes, `prod(shape) * itemsize == end - begin` (overflow-checked), and data ranges that tile
 * the data exactly (sorted by offset: starting at 0, contiguous, no overlap, no trailing bytes).
 * Every failure is a `SafetensorsError` whose message names the file and the tensor. Tensors are
 * read one at a time with seek + read, so the file is never held in memory whole.
 *
 * The writer puts tensors in HF's order (larger item size first, then by name) so each tensor's
 * data is aligned to its item size, pads the header with spaces to a multiple of 8 bytes, streams
 * tensor by tensor into a temporary file beside the target, fsyncs and renames it into place.
 *
 * @example
 * ```ts
 * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/a.safetensors`, [
 *   { name: "w", dtype: "BF16", shape: [2], data: new Float32Array([1.5, -2]) },
 * ]);
 * const st = await SafetensorsFile.open(`${dir}/a.safetensors`);
 * const w = await st.readF32("w");
 * st.close();
 * await Deno.remove(dir, { recursive: true });
 * if (w.join() !== "1.5,-2") throw new Error("round trip");
 * ```
 */
import { basename, dirname, join } from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./dtype.ts";

/** Dtypes the reader accepts. Only the float ones convert to fp32; the others are raw-only. */
export type Dtype = "F32" | "F16" | "BF16" | "I32" | "I64" | "U8";
/** Dtypes the writer produces. */
export type FloatDtype = "F32" | "F16" | "BF16";

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  U8: 1,
};

/** The largest header the reader accepts (the reference Rust implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

/** A malformed, truncated or unreadable safetensors file or index, or a missing tensor. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
  constructor(
    /** The file (a .safetensors file or a model.safetensors.index.json). */
    readonly file: string,
    /** The tensor concerned, or null for a problem with the file or header as a whole. */
    readonly tensor: string | null,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(
      tensor === null
        ? `${file}: ${detail}`
        : `${file}: tensor ${JSON.stringify(tensor)}: ${detail}`,
      options,
    );
  }
}

/** Where and what one tensor is. */
export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Data size in bytes. */
  bytes: number;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  /** The file that holds the data. */
  file: string;
}

/** What a model loader needs: one file or a sharded checkpoint look the same. */
export interface TensorReader {
  readonly path: string;
  /** Tensor names, sorted. */
  readonly names: readonly string[];
  has(name: string): boolean;
  /** Dtype, shape and location; throws `SafetensorsError` for an unknown name. */
  info(name: string): TensorInfo;
  /** The tensor as fp32 (BF16 and F16 widened exactly). Integer dtypes are refused. */
  readF32(name: string): Promise<Float32Array>;
  /** The tensor's bytes as stored (little-endian). */
  readRaw(name: string): Promise<Uint8Array>;
  close(): void;
}

/** Options of `SafetensorsFile.open`. */
export interface OpenOptions {
  /** Called before every buffer the reader allocates for file content (tests bound these). */
  onAllocate?: (bytes: number, what: string) => void;
}

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error("safetensors: big-endian hosts are not supported");
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.slice(0, 40))}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

// ---------------------------------------------------------------------------------------------
// Header parsing

/** Index just past the JSON string that opens at `i` (text is known to be valid JSON). */
function endOfString(text: string, i: number): number {
  let k = i + 1;
  while (k < text.length && text.charCodeAt(k) !== 0x22) {
    k += text.charCodeAt(k) === 0x5c ? 2 : 1;
  }
  return k + 1;
}

function skipWs(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/** Index just past the JSON value that starts at `i` (text is known to be valid JSON). */
function skipValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return endOfString(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let k = i; k < text.length; k++) {
      const d = text.charCodeAt(k);
      if (d === 0x22) k = endOfString(text, k) - 1;
      else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return k + 1;
      }
    }
    return text.length;
  }
  let k = i;
  for (;;) {
    const d = text.charCodeAt(k);
    if (Number.isNaN(d) || d === 0x2c || d === 0x7d || d === 0x5d || d <= 0x20) return k;
    k++;
  }
}

/**
 * The top-level keys of a JSON object text, in order and with repeats (JSON.parse keeps only the
 * last of a repeated key, so duplicates are found here). `text` must already parse as an object;
 * the bounds checks only guarantee termination.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let i = skipWs(text, 0) + 1; // past "{"
  i = skipWs(text, i);
  if (text.charCodeAt(i) === 0x7d) return keys;
  while (i < text.length) {
    const end = endOfString(text, i);
    keys.push(JSON.parse(text.slice(i, end)) as string);
    i = skipWs(text, end) + 1; // past ":"
    i = skipValue(text, skipWs(text, i));
    i = skipWs(text, i);
    if (text.charCodeAt(i) === 0x7d) return keys;
    i = skipWs(text, i + 1); // past ","
  }
  return keys;
}

interface Entry {
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

interface ParsedHeader {
  entries: Map<string, Entry>;
  metadata: Record<string, string>;
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_BYTES, s);
}

/** Validates a decoded header against the data length; throws `SafetensorsError`. */
function parseHeader(file: string, text: string, dataLength: number): ParsedHeader {
  const fail = (tensor: string | null, detail: string): never => {
    throw new SafetensorsError(file, tensor, detail);
  };
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    return fail(null, `header is not valid JSON (${(e as Error).message})`);
  }
  if (root === null || typeof root !== "object" || Array.isArray(root)) {
    return fail(null, `header must be a JSON object, found ${describe(root)}`);
  }
  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) fail(key, "appears more than once in the header");
    seen.add(key);
  }

  const entries = new Map<string, Entry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(root as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        fail(name, `must be an object of strings, found ${describe(value)}`);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") {
          fail(name, `value of ${JSON.stringify(k)} must be a string, found ${describe(v)}`);
        }
      }
      metadata = value as Record<string, string>;
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      fail(name, `entry must be an object, found ${describe(value)}`);
    }
    const rec = value as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      if (k !== "dtype" && k !== "shape" && k !== "data_offsets") {
        fail(name, `unknown field ${JSON.stringify(k)}`);
      }
    }
    const { dtype, shape, data_offsets: offsets } = rec;
    if (dtype === undefined) fail(name, "missing field dtype");
    if (!isDtype(dtype)) {
      fail(name, `unsupported dtype ${describe(dtype)} (known: F32, F16, BF16, I32, I64, U8)`);
    }
    if (!Array.isArray(shape)) fail(name, `shape must be an array, found ${describe(shape)}`);
    let numel = 1;
    for (const d of shape as unknown[]) {
      if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
        fail(name, `shape entries must be non-negative integers, found ${describe(d)}`);
      }
      numel *= d as number;
      if (numel > Number.MAX_SAFE_INTEGER) {
        fail(name, `shape ${JSON.stringify(shape)} has more elements than can be addressed`);
      }
    }
    const itemBytes = DTYPE_BYTES[dtype as Dtype];
    if (numel > Number.MAX_SAFE_INTEGER / itemBytes) {
      fail(name, `shape ${JSON.stringify(shape)} x ${dtype} overflows the byte count`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(name, `data_offsets must be two non-negative integers, found ${describe(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    if (end < begin) fail(name, `data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) {
      fail(name, `data_offsets [${begin}, ${end}] run past the data (${dataLength} bytes)`);
    }
    const bytes = numel * itemBytes;
    if (end - begin !== bytes) {
      fail(
        name,
        `shape ${JSON.stringify(shape)} x ${dtype} is ${bytes} bytes but data_offsets ` +
          `[${begin}, ${end}] hold ${end - begin}`,
      );
    }
    entries.set(name, { dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }

  // Sorted by offset, the ranges must tile [0, dataLength) exactly.
  const byOffset = [...entries].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let expected = 0;
  for (const [name, e] of byOffset) {
    if (e.begin < expected) {
      fail(
        name,
        `data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (ends ${expected})`,
      );
    }
    if (e.begin > expected) {
      fail(name, `data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${expected}`);
    }
    expected = e.end;
  }
  if (expected !== dataLength) {
    fail(null, `${dataLength - expected} trailing bytes after the last tensor's data`);
  }
  return { entries, metadata };
}

// ---------------------------------------------------------------------------------------------
// Reader

async function readExactly(
  f: Deno.FsFile,
  buf: Uint8Array,
  position: number,
): Promise<boolean> {
  await f.seek(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < buf.length) {
    const n = await f.read(buf.subarray(got));
    if (n === null) return false;
    got += n;
  }
  return true;
}

/** One .safetensors file, header validated, tensors read on demand. */
export class SafetensorsFile implements TensorReader {
  readonly names: readonly string[];
  #file: Deno.FsFile | null;
  #entries: Map<string, Entry>;
  #dataStart: number;
  #onAllocate?: (bytes: number, what: string) => void;
  /** Reads are serialised: each one is a seek followed by reads on the one handle. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    file: Deno.FsFile,
    header: ParsedHeader,
    dataStart: number,
    /** The `__metadata__` strings (empty when absent). */
    readonly metadata: Readonly<Record<string, string>>,
    onAllocate?: (bytes: number, what: string) => void,
  ) {
    this.#file = file;
    this.#entries = header.entries;
    this.#dataStart = dataStart;
    this.#onAllocate = onAllocate;
    this.names = [...header.entries.keys()].sort();
  }

  /** Opens and validates `path`; the handle stays open until `close()`. */
  static async open(path: string, opts: OpenOptions = {}): Promise<SafetensorsFile> {
    assertLittleEndian();
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new SafetensorsError(path, null, `cannot open: ${(e as Error).message}`);
    }
    try {
      const size = (await file.stat()).size;
      if (size < 8) {
        throw new SafetensorsError(
          path,
          null,
          `file is ${size} bytes, shorter than the header length`,
        );
      }
      const lenBuf = new Uint8Array(8);
      if (!(await readExactly(file, lenBuf, 0))) {
        throw new SafetensorsError(path, null, "file ended inside the header length");
      }
      const n = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (n > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(path, null, `header length ${n} exceeds ${MAX_HEADER_BYTES}`);
      }
      if (n > BigInt(size - 8)) {
        throw new SafetensorsError(
          path,
          null,
          `header length ${n} runs past the end of the file (${size} bytes)`,
        );
      }
      const headerLen = Number(n);
      opts.onAllocate?.(headerLen, "header");
      const headerBytes = new Uint8Array(headerLen);
      if (!(await readExactly(file, headerBytes, 8))) {
        throw new SafetensorsError(path, null, "file ended inside the header");
      }
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
      } catch {
        throw new SafetensorsError(path, null, "header is not valid UTF-8");
      }
      const header = parseHeader(path, text, size - 8 - headerLen);
      return new SafetensorsFile(
        path,
        file,
        header,
        8 + headerLen,
        header.metadata,
        opts.onAllocate,
      );
    } catch (e) {
      file.close();
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError(path, null, `cannot read: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  #entry(name: string): Entry {
    const e = this.#entries.get(name);
    if (!e) throw new SafetensorsError(this.path, name, "no such tensor in the file");
    return e;
  }

  info(name: string): TensorInfo {
    const e = this.#entry(name);
    return {
      dtype: e.dtype,
      shape: [...e.shape],
      bytes: e.end - e.begin,
      offset: this.#dataStart + e.begin,
      file: this.path,
    };
  }

  readRaw(name: string): Promise<Uint8Array> {
    const e = this.#entry(name);
    const run = async () => {
      const file = this.#file;
      if (!file) throw new SafetensorsError(this.path, name, "file is closed");
      const bytes = e.end - e.begin;
      this.#onAllocate?.(bytes, name);
      const buf = new Uint8Array(bytes);
      let ok: boolean;
      try {
        ok = await readExactly(file, buf, this.#dataStart + e.begin);
      } catch (err) {
        throw new SafetensorsError(this.path, name, `read failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (!ok) {
        throw new SafetensorsError(this.path, name, "file ended inside the tensor's data");
      }
      return buf;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  async readF32(name: string): Promise<Float32Array> {
    const e = this.#entry(name);
    if (e.dtype !== "F32" && e.dtype !== "BF16" && e.dtype !== "F16") {
      throw new SafetensorsError(this.path, name, `dtype ${e.dtype} is not a float type`);
    }
    const raw = await this.readRaw(name);
    if (e.dtype === "F32") return new Float32Array(raw.buffer, 0, raw.length / 4);
    const h = new Uint16Array(raw.buffer, 0, raw.length / 2);
    return e.dtype === "BF16" ? bf16ToF32(h) : f16ToF32(h);
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints and directories

/** The index file of a sharded Hugging Face checkpoint. */
export const INDEX_FILE = "model.safetensors.index.json";
/** The weights file of a single-file Hugging Face checkpoint. */
export const SINGLE_FILE = "model.safetensors";

class ShardedCheckpoint implements TensorReader {
  readonly names: readonly string[];
  constructor(
    readonly path: string,
    private readonly shardOf: Map<string, SafetensorsFile>,
    private readonly shards: SafetensorsFile[],
  ) {
    this.names = [...shardOf.keys()].sort();
  }
  has(name: string): boolean {
    return this.shardOf.has(name);
  }
  #shard(name: string): SafetensorsFile {
    const s = this.shardOf.get(name);
    if (!s) throw new SafetensorsError(this.path, name, "not in the index's weight_map");
    return s;
  }
  info(name: string): TensorInfo {
    return this.#shard(name).info(name);
  }
  readF32(name: string): Promise<Float32Array> {
    return this.#shard(name).readF32(name);
  }
  readRaw(name: string): Promise<Uint8Array> {
    return this.#shard(name).readRaw(name);
  }
  close(): void {
    for (const s of this.shards) s.close();
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function openSharded(dir: string, indexPath: string): Promise<ShardedCheckpoint> {
  let index: unknown;
  try {
    index = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (e) {
    throw new SafetensorsError(indexPath, null, `cannot read the index: ${(e as Error).message}`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new SafetensorsError(indexPath, null, "weight_map must be an object of name -> file");
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (
      typeof shard !== "string" || shard === "" || shard === "." || shard === ".." ||
      /[\/\\]/.test(shard)
    ) {
      throw new SafetensorsError(
        indexPath,
        name,
        `shard ${describe(shard)} must be a file name in the checkpoint directory`,
      );
    }
    const list = byShard.get(shard) ?? [];
    list.push(name);
    byShard.set(shard, list);
  }
  const opened: SafetensorsFile[] = [];
  const shardOf = new Map<string, SafetensorsFile>();
  try {
    for (const [shard, names] of byShard) {
      const shardPath = join(dir, shard);
      if (!(await isFile(shardPath))) {
        throw new SafetensorsError(
          indexPath,
          names[0],
          `shard ${shard} is missing (${shardPath}; it holds ${names.length} tensor(s))`,
        );
      }
      const st = await SafetensorsFile.open(shardPath);
      opened.push(st);
      for (const name of names) {
        if (!st.has(name)) {
          throw new SafetensorsError(
            shardPath,
            name,
            `listed in ${INDEX_FILE} but not in the shard`,
          );
        }
        shardOf.set(name, st);
      }
    }
  } catch (e) {
    for (const s of opened) s.close();
    throw e;
  }
  return new ShardedCheckpoint(indexPath, shardOf, opened);
}

/**
 * Opens a checkpoint's tensors: a .safetensors file, or a Hugging Face model directory with
 * `model.safetensors.index.json` (sharded; preferred when present) or `model.safetensors`.
 */
export async function openCheckpoint(path: string): Promise<TensorReader> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (e) {
    throw new SafetensorsError(path, null, `cannot open: ${(e as Error).message}`);
  }
  if (stat.isFile) return await SafetensorsFile.open(path);
  const indexPath = join(path, INDEX_FILE);
  if (await isFile(indexPath)) return await openSharded(path, indexPath);
  const single = join(path, SINGLE_FILE);
  if (await isFile(single)) return await SafetensorsFile.open(single);
  throw new SafetensorsError(path, null, `neither ${SINGLE_FILE} nor ${INDEX_FILE} found`);
}

// ---------------------------------------------------------------------------------------------
// Writer

/** One tensor for `writeSafetensors`. */
export interface TensorToWrite {
  name: string;
  dtype: FloatDtype;
  shape: readonly number[];
  /**
   * F32: a Float32Array. BF16 / F16: raw 16-bit patterns (Uint16Array) or a Float32Array that is
   * rounded to nearest even while writing. A function is called once, when the tensor's turn to
   * be written comes, so a large model need never be in memory whole.
   */
  data: Float32Array | Uint16Array | (() => Float32Array | Uint16Array);
}

/** Options of `writeSafetensors`. */
export interface WriteOptions {
  /** Called after each tensor with bytes written so far, total data bytes and the tensor. */
  onProgress?: (written: number, total: number, tensor: string) => void;
}

async function writeAll(f: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await f.write(bytes.subarray(off));
}

const CONVERT_CHUNK = 1 << 20;

/**
 * Writes a .safetensors file atomically: temporary file in the same directory, fsync, rename.
 * Throws `SafetensorsError` (naming the tensor) for a duplicate or reserved name, a bad shape or
 * data whose type or length does not match; the target is then left untouched.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
  opts: WriteOptions = {},
): Promise<void> {
  assertLittleEndian();
  const fail = (tensor: string | null, detail: string): never => {
    throw new SafetensorsError(path, tensor, detail);
  };
  const seen = new Set<string>();
  const numels = new Map<string, number>();
  for (const t of tensors) {
    if (t.name === METADATA_KEY) fail(t.name, "is reserved for metadata");
    if (seen.has(t.name)) fail(t.name, "is given more than once");
    seen.add(t.name);
    if (t.dtype !== "F32" && t.dtype !== "BF16" && t.dtype !== "F16") {
      fail(t.name, `cannot write dtype ${describe(t.dtype)} (F32, BF16 or F16)`);
    }
    let numel = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) fail(t.name, `bad shape ${JSON.stringify(t.shape)}`);
      numel *= d;
    }
    if (!Number.isSafeInteger(numel * DTYPE_BYTES[t.dtype])) fail(t.name, "too large");
    numels.set(t.name, numel);
  }
  for (const [k, v] of Object.entries(metadata ?? {})) {
    if (typeof v !== "string") fail(METADATA_KEY, `value of ${JSON.stringify(k)} is not a string`);
  }

  // HF order: larger items first keeps every tensor aligned to its item size; then by name.
  const order = [...tensors].sort((a, b) =>
    DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (metadata) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const t of order) {
    const bytes = numels.get(t.name)! * DTYPE_BYTES[t.dtype];
    header[t.name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  const total = offset;
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);

  const dir = dirname(path);
  const tmp = join(
    dir,
    `.${basename(path)}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 10)}`,
  );
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  let closed = false;
  try {
    await writeAll(f, prefix);
    await writeAll(f, json);
    let written = 0;
    let scratch: Uint16Array | null = null;
    for (const t of order) {
      const data = typeof t.data === "function" ? t.data() : t.data;
      const numel = numels.get(t.name)!;
      if (data.length !== numel) {
        fail(
          t.name,
          `data has ${data.length} elements, shape ${JSON.stringify(t.shape)} needs ${numel}`,
        );
      }
      if (t.dtype === "F32") {
        if (!(data instanceof Float32Array)) fail(t.name, "F32 data must be a Float32Array");
        await writeAll(f, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } else if (data instanceof Uint16Array) {
        await writeAll(f, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } else if (data instanceof Float32Array) {
        scratch ??= new Uint16Array(CONVERT_CHUNK);
        const narrow = t.dtype === "BF16" ? f32ToBf16 : f32ToF16;
        for (let i = 0; i < numel; i += CONVERT_CHUNK) {
          const n = Math.min(CONVERT_CHUNK, numel - i);
          const out = scratch.subarray(0, n);
          narrow(data.subarray(i, i + n), out);
          await writeAll(f, new Uint8Array(out.buffer, 0, n * 2));
        }
      } else {
        fail(t.name, `${t.dtype} data must be a Uint16Array or a Float32Array`);
      }
      written += numel * DTYPE_BYTES[t.dtype];
      opts.onProgress?.(written, total, t.name);
    }
    await f.sync();
    f.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (e) {
    if (!closed) f.close();
    await Deno.remove(tmp).catch(() => {});
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(path, null, `write failed: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
