/**
 * Checkpoints of a run: `runs/<name>/checkpoints/step-N/` holds a loadable model directory
 * (config.json, model.safetensors, tokenizer files), optimizer.safetensors (AdamW moments
 * `m.<param>` / `v.<param>`) and state.json (step, optimizer step, phase, data cursor, byte size
 * of every file). It is written into `step-N.tmp-<id>` and renamed, so a crash leaves either
 * the old checkpoint or the new one complete. `latestCheckpoint` returns the newest complete one.
 */
import { join } from "node:path";
import type { AdamW } from "../engine/adamw.ts";
import type { Qwen2 } from "../engine/qwen2.ts";
import { openCheckpoint, SafetensorsFile, writeSafetensors } from "../engine/safetensors.ts";

export interface RunState {
  step: number;
  optimizerStep: number;
  phase: string;
  /** Anything JSON the loop needs to continue exactly (data cursor, ...). */
  cursor?: unknown;
  files: Record<string, number>;
}

export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** Writes a checkpoint of step `step`; returns its directory. */
export async function saveCheckpoint(
  runDir: string,
  step: number,
  phase: string,
  model: Qwen2,
  opt: AdamW,
  cursor?: unknown,
): Promise<string> {
  const root = join(runDir, "checkpoints");
  await Deno.mkdir(root, { recursive: true });
  const final = join(root, `step-${step}`);
  const tmp = `${final}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.mkdir(tmp);
  try {
    await model.save(tmp);
    const tensors = [];
    for (const [i, e] of opt.entries.entries()) {
      const m = opt.m[i], v = opt.v[i];
      tensors.push({
        name: `m.${e.name}`,
        dtype: "F32" as const,
        shape: m.shape,
        data: await m.read() as Float32Array,
      });
      tensors.push({
        name: `v.${e.name}`,
        dtype: "F32" as const,
        shape: v.shape,
        data: await v.read() as Float32Array,
      });
    }
    await writeSafetensors(join(tmp, "optimizer.safetensors"), tensors);
    const files: Record<string, number> = {};
    for await (const f of Deno.readDir(tmp)) {
      if (f.isFile) files[f.name] = (await Deno.stat(join(tmp, f.name))).size;
    }
    const state: RunState = { step, optimizerStep: opt.step, phase, cursor, files };
    await Deno.writeTextFile(join(tmp, "state.json"), JSON.stringify(state, null, 2) + "\n");
    await Deno.remove(final, { recursive: true }).catch(() => {});
    await Deno.rename(tmp, final);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  return final;
}

/** Reads and checks state.json: every recorded file present with its recorded size. */
export async function readState(dir: string): Promise<RunState> {
  const path = join(dir, "state.json");
  let state: RunState;
  try {
    state = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new CheckpointError(`${path}: missing or unreadable (${(e as Error).message})`);
  }
  if (!Number.isInteger(state.step) || typeof state.files !== "object" || state.files === null) {
    throw new CheckpointError(`${path}: not a checkpoint state (step and files are required)`);
  }
  for (const [name, size] of Object.entries(state.files)) {
    const f = join(dir, name);
    let got: number;
    try {
      got = (await Deno.stat(f)).size;
    } catch {
      throw new CheckpointError(`${f}: missing from the checkpoint`);
    }
    if (got !== size) {
      throw new CheckpointError(`${f}: ${got} bytes, the checkpoint recorded ${size} (truncated?)`);
    }
  }
  return state;
}

/** Restores weights, moments and optimizer step from a checkpoint directory. */
export async function loadCheckpoint(dir: string, model: Qwen2, opt: AdamW): Promise<RunState> {
  const state = await readState(dir);
  const weights = await openCheckpoint(dir);
  try {
    const values = new Map<string, Float32Array>();
    for (const name of model.params.keys()) {
      if (!weights.has(name)) {
        throw new CheckpointError(`${weights.path}: tensor ${name} is missing`);
      }
      values.set(name, await weights.readF32(name));
    }
    model.writeParams(values);
  } finally {
    weights.close();
  }
  const optFile = join(dir, "optimizer.safetensors");
  const st = await SafetensorsFile.open(optFile);
  try {
    for (const [i, e] of opt.entries.entries()) {
      for (const [key, t] of [["m", opt.m[i]], ["v", opt.v[i]]] as const) {
        const name = `${key}.${e.name}`;
        if (!st.has(name)) throw new CheckpointError(`${optFile}: tensor ${name} is missing`);
        model.dev.write(t, await st.readF32(name));
      }
    }
  } finally {
    st.close();
  }
  opt.setStep(state.optimizerStep);
  return state;
}

/** The newest complete checkpoint directory of a run, or null. */
export async function latestCheckpoint(runDir: string): Promise<string | null> {
  const root = join(runDir, "checkpoints");
  const steps: number[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      const m = /^step-(\d+)$/.exec(e.name);
      if (e.isDirectory && m) steps.push(Number(m[1]));
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  steps.sort((a, b) => b - a);
  for (const s of steps) {
    const dir = join(root, `step-${s}`);
    try {
      await readState(dir);
      return dir;
    } catch {
      // incomplete: try an older one
    }
  }
  return null;
}
