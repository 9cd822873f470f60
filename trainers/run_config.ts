/**
 * The resolved configuration of a training run: every hyperparameter is a field with a default
 * (the papers' where they give one), a config file (JSON) overrides the defaults, and command
 * line flags override the file. An unknown field or a value of the wrong type is refused with an
 * error naming the field (and the file).
 */
import { parseArgs } from "node:util";
import { TRAINER_NAMES } from "./objective.ts";

type FieldType = "number" | "integer" | "boolean" | "string" | "string?" | "number?";

interface Field {
  type: FieldType;
  default: unknown;
  /** Allowed values for strings. */
  oneOf?: readonly string[];
  help: string;
}

/** The schema: field name, type, default, help. */
export const FIELDS = {
  trainer: {
    type: "string",
    default: "default",
    oneOf: ["default", ...TRAINER_NAMES],
    help: "default = SFT then GRPO with pass@1 before, between and after; or one method",
  },
  model: { type: "string?", default: null, help: "Hugging Face-layout Qwen2 directory" },
  preset: {
    type: "string",
    default: "tiny",
    oneOf: ["tiny", "small", "0.5b-shape"],
    help: "checkpoint written when no --model is given",
  },
  task: { type: "string", default: "countdown", oneOf: ["countdown", "gsm8k"], help: "task" },
  data: { type: "string?", default: null, help: "JSONL training data (else built in)" },
  out: { type: "string?", default: null, help: "run directory (runs/<trainer>)" },
  seed: { type: "integer", default: 0, help: "seed of data order, sampling and init" },
  resume: { type: "boolean", default: false, help: "continue from the newest checkpoint" },
  dryRun: { type: "boolean", default: false, help: "print the memory plan and stop" },
  steps: { type: "integer", default: 20, help: "optimizer steps of a single-method run" },
  sftSteps: { type: "integer", default: 30, help: "default run: SFT steps" },
  rlSteps: { type: "integer", default: 6, help: "default run: GRPO steps" },
  lr: { type: "number?", default: null, help: "peak learning rate (per-method default)" },
  batchSize: {
    type: "integer",
    default: 8,
    help: "sequences (SFT), pairs (DPO family) or prompts (RL) per step",
  },
  rlBatchSize: { type: "integer", default: 2, help: "prompts per RL step (default run)" },
  accumulation: { type: "integer", default: 1, help: "micro-batches per step" },
  groupSize: { type: "integer", default: 8, help: "samples per prompt G" },
  temperature: { type: "number", default: 1.0, help: "sampling temperature for rollouts" },
  topP: { type: "number", default: 1.0, help: "nucleus sampling (1 = off)" },
  topK: { type: "integer", default: 0, help: "top-k sampling (0 = off)" },
  maxNewTokens: { type: "integer", default: 128, help: "rollout and evaluation length" },
  reward: {
    type: "string",
    default: "dense",
    oneOf: ["dense", "binary"],
    help: "RL reward: the task's dense reward or 1/0 verified correct (LENS: always 1/0)",
  },
  warmupSteps: { type: "integer", default: 2, help: "linear warmup steps" },
  schedule: { type: "string", default: "cosine", oneOf: ["cosine", "constant"], help: "" },
  minLrRatio: { type: "number", default: 0.1, help: "cosine floor as a fraction of lr" },
  weightDecay: { type: "number", default: 0.0, help: "AdamW weight decay (not on norms/biases)" },
  adamBeta1: { type: "number", default: 0.9, help: "" },
  adamBeta2: { type: "number", default: 0.999, help: "" },
  adamEps: { type: "number", default: 1e-8, help: "" },
  clipNorm: { type: "number", default: 1.0, help: "global gradient-norm clip" },
  checkpointEvery: { type: "integer", default: 50, help: "steps between checkpoints" },
  stopAfter: {
    type: "integer",
    default: 0,
    help: "stop (with a checkpoint) after this global step; 0 = run to the end",
  },
  evalProblems: { type: "integer", default: 100, help: "held-out problems for pass@1" },
  countdownNumbers: { type: "integer", default: 3, help: "numbers per Countdown problem" },
  trainProblems: { type: "integer", default: 2000, help: "generated training problems" },
  beta: { type: "number?", default: null, help: "DPO/IPO beta or KL coefficient (method default)" },
  epsLow: { type: "number?", default: null, help: "lower clip range (0.2)" },
  epsHigh: { type: "number?", default: null, help: "upper clip range (0.2; 0.28 for dapo)" },
  alpha: { type: "number?", default: null, help: "IPO NLL anchor (0.1) / LENS all-wrong weight" },
  lambda: { type: "number?", default: null, help: "wdpo pull to 1 (0.3) / hnr penalty (0.5)" },
  mining: { type: "number?", default: null, help: "NSA mining coefficient (0.5)" },
  aggregation: {
    type: "string?",
    default: null,
    oneOf: ["grpo", "dapo", "dr_grpo"],
    help: "GRPO token aggregation",
  },
  scale: {
    type: "string?",
    default: null,
    oneOf: ["group", "batch", "none"],
    help: "advantage scaling",
  },
  sftReduction: { type: "string", default: "token", oneOf: ["token", "sequence"], help: "" },
} as const satisfies Record<string, Field>;

export type FieldName = keyof typeof FIELDS;

type TypeOf<F extends Field> = F["type"] extends "number" | "integer" ? number
  : F["type"] extends "number?" ? number | null
  : F["type"] extends "boolean" ? boolean
  : F["type"] extends "string?" ? string | null
  : string;

export type RunConfig = { -readonly [K in FieldName]: TypeOf<(typeof FIELDS)[K]> };

export class ConfigFieldError extends Error {
  override name = "ConfigFieldError";
}

/** The defaults. */
export function defaultConfig(): RunConfig {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(FIELDS)) out[k] = f.default;
  return out as RunConfig;
}

/** Checks one value against its field; `where` names the source for the error. */
export function checkField(name: string, value: unknown, where: string): unknown {
  const f = (FIELDS as Record<string, Field>)[name];
  if (!f) {
    throw new ConfigFieldError(
      `${where}: unknown field "${name}" (known: ${Object.keys(FIELDS).join(", ")})`,
    );
  }
  const bad = (want: string): never => {
    throw new ConfigFieldError(
      `${where}: field "${name}" must be ${want}, got ${JSON.stringify(value)}`,
    );
  };
  const nullable = f.type.endsWith("?");
  if (value === null) return nullable ? null : bad(f.type);
  switch (f.type) {
    case "number":
    case "number?":
      if (typeof value !== "number" || !Number.isFinite(value)) bad("a finite number");
      break;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
        bad("a non-negative integer");
      }
      break;
    case "boolean":
      if (typeof value !== "boolean") bad("true or false");
      break;
    default:
      if (typeof value !== "string") bad("a string");
      if (f.oneOf && !f.oneOf.includes(value as string)) bad(`one of ${f.oneOf.join(", ")}`);
  }
  return value;
}

function fromFlag(name: string, raw: string): unknown {
  const f = (FIELDS as Record<string, Field>)[name];
  if (!f) return raw;
  if (f.type.startsWith("number") || f.type === "integer") {
    const v = Number(raw);
    return raw.trim() === "" || Number.isNaN(v) ? raw : v;
  }
  if (f.type === "boolean") return raw === "true" ? true : raw === "false" ? false : raw;
  return raw;
}

/** Kebab-case flag of a field: `maxNewTokens` -> `max-new-tokens`. */
export function flagOf(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

export interface ParsedArgs {
  config: RunConfig;
  /** Where each non-default value came from ("file", "flag"). */
  sources: Record<string, string>;
  help: boolean;
}

/** Defaults, then `--config FILE.json`, then flags (every field has a kebab-case flag). */
export async function parseTrainArgs(argv: string[]): Promise<ParsedArgs> {
  const options: Record<string, { type: "string" | "boolean" }> = {
    config: { type: "string" },
    help: { type: "boolean" },
  };
  for (const [k, f] of Object.entries(FIELDS)) {
    options[flagOf(k)] = { type: f.type === "boolean" ? "boolean" : "string" };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    throw new ConfigFieldError(`command line: ${(e as Error).message}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const config = defaultConfig() as Record<string, unknown>;
  const sources: Record<string, string> = {};
  if (typeof values.config === "string") {
    const file = values.config;
    let raw: unknown;
    try {
      raw = JSON.parse(await Deno.readTextFile(file));
    } catch (e) {
      throw new ConfigFieldError(`${file}: cannot read a JSON object: ${(e as Error).message}`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ConfigFieldError(`${file}: the config must be a JSON object`);
    }
    for (const [k, v] of Object.entries(raw)) {
      config[k] = checkField(k, v, file);
      sources[k] = file;
    }
  }
  for (const [k, f] of Object.entries(FIELDS)) {
    const v = values[flagOf(k)];
    if (v === undefined) continue;
    config[k] = checkField(
      k,
      f.type === "boolean" ? v : fromFlag(k, v as string),
      `flag --${flagOf(k)}`,
    );
    sources[k] = "flag";
  }
  return { config: config as RunConfig, sources, help: !!values.help };
}

/** Help text listing every field with its flag and default. */
export function helpText(): string {
  const lines = ["deno task train [--config FILE.json] [--<field> VALUE ...]", ""];
  for (const [k, f] of Object.entries(FIELDS) as [string, Field][]) {
    const d = JSON.stringify(f.default);
    const choices = f.oneOf ? ` {${f.oneOf.join("|")}}` : "";
    lines.push(`  --${flagOf(k).padEnd(18)} ${f.type}${choices} = ${d}  ${f.help}`);
  }
  return lines.join("\n");
}
