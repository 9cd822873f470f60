/**
 * Packing a batch of token sequences of different lengths back to back, the layout every
 * kernel of the model works in: N = sum of lengths tokens, activations [N, d].
 *
 *   ids[n]        token at packed position n
 *   positions[n]  its position inside its own sequence (RoPE)
 *   targets[n]    the next token of the same sequence, or NO_TARGET at a sequence's last token
 *   seqStarts[b]  first packed position of sequence b; seqStarts[B] = N
 */
import type { Device } from "./device.ts";
import type { Tensor } from "./tensor.ts";

/** Target id meaning "no next token here" (the last position of each sequence). */
export const NO_TARGET = 0xffffffff;

export interface PackedHost {
  ids: Uint32Array;
  positions: Uint32Array;
  targets: Uint32Array;
  seqStarts: Uint32Array;
  lengths: number[];
  /** Longest sequence. */
  maxLen: number;
  tokens: number;
}

/**
 * Packs sequences, refusing ids outside `[0, vocabRows)` before anything reaches the GPU (the
 * error names the sequence, the position, the id and the limit).
 */
export function packSequences(seqs: readonly (readonly number[])[], vocabRows: number): PackedHost {
  if (seqs.length === 0) throw new RangeError("empty batch: no sequences");
  const lengths = seqs.map((s) => s.length);
  const n = lengths.reduce((a, b) => a + b, 0);
  const ids = new Uint32Array(n), positions = new Uint32Array(n), targets = new Uint32Array(n);
  const seqStarts = new Uint32Array(seqs.length + 1);
  let o = 0;
  seqs.forEach((s, b) => {
    if (s.length === 0) throw new RangeError(`sequence ${b} is empty`);
    seqStarts[b] = o;
    for (let t = 0; t < s.length; t++) {
      const id = s[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabRows) {
        throw new RangeError(
          `sequence ${b}, position ${t}: token id ${id} is outside the embedding's ${vocabRows} rows`,
        );
      }
      ids[o + t] = id;
      positions[o + t] = t;
      targets[o + t] = t + 1 < s.length ? s[t + 1] : NO_TARGET;
    }
    o += s.length;
  });
  seqStarts[seqs.length] = n;
  return { ids, positions, targets, seqStarts, lengths, maxLen: Math.max(...lengths), tokens: n };
}

/** The packed batch on the GPU. */
export interface PackedBatch {
  host: PackedHost;
  ids: Tensor<"u32">;
  positions: Tensor<"u32">;
  targets: Tensor<"u32">;
  seqStarts: Tensor<"u32">;
}

export function uploadBatch(dev: Device, host: PackedHost): PackedBatch {
  const n = host.tokens;
  return {
    host,
    ids: dev.upload("batch.ids", host.ids, [n], "u32"),
    positions: dev.upload("batch.positions", host.positions, [n], "u32"),
    targets: dev.upload("batch.targets", host.targets, [n], "u32"),
    seqStarts: dev.upload("batch.seq_starts", host.seqStarts, [host.seqStarts.length], "u32"),
  };
}

export function disposeBatch(b: PackedBatch): void {
  for (const t of [b.ids, b.positions, b.targets, b.seqStarts]) t.dispose();
}

/** Splits a packed per-token array [N] into per-sequence rows of length T_b - 1 (drops the last). */
export function unpackPerToken(host: PackedHost, flat: Float32Array): Float32Array[] {
  return host.lengths.map((len, b) => {
    const s = host.seqStarts[b];
    return flat.slice(s, s + len - 1);
  });
}

/** Packs per-sequence rows (length T_b - 1) into [N] with zeros at each sequence's last token. */
export function packPerToken(host: PackedHost, rows: readonly ArrayLike<number>[]): Float32Array {
  const out = new Float32Array(host.tokens);
  host.lengths.forEach((len, b) => {
    const row = rows[b];
    if (!row || row.length !== len - 1) {
      throw new RangeError(
        `row ${b}: expected ${
          len - 1
        } values (sequence length ${len} minus one), got ${row?.length}`,
      );
    }
    out.set(row as ArrayLike<number>, host.seqStarts[b]);
  });
  return out;
}
