/**
 * JSONL training data: one JSON object per line with required string fields. A malformed line
 * is an error naming the file, the line number and what is wrong with it.
 */

export class DataError extends Error {
  override name = "DataError";
}

/** Rows of `path` with every field of `required` a string (other fields are kept as they are). */
export async function readJsonl<K extends string>(
  path: string,
  required: readonly K[],
): Promise<(Record<K, string> & Record<string, unknown>)[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseJsonl(text, path, required);
}

export function parseJsonl<K extends string>(
  text: string,
  path: string,
  required: readonly K[],
): (Record<K, string> & Record<string, unknown>)[] {
  const rows: (Record<K, string> & Record<string, unknown>)[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new DataError(`${path}:${i + 1}: expected a JSON object`);
    }
    const o = v as Record<string, unknown>;
    for (const k of required) {
      if (typeof o[k] !== "string") {
        throw new DataError(
          `${path}:${i + 1}: field "${k}" must be a string, got ${
            JSON.stringify(o[k]) ?? "nothing"
          }`,
        );
      }
    }
    rows.push(o as Record<K, string> & Record<string, unknown>);
  }
  if (rows.length === 0) throw new DataError(`${path}: no rows`);
  return rows;
}
