// applyChatTemplate: transformers' tokenizer.apply_chat_template(..., tokenize=False). The template
// (tokenizer_config.json's chat_template) is rendered by @huggingface/jinja, the engine transformers.js
// uses (trim_blocks and lstrip_blocks on, raise_exception and strftime_now defined, as in Python), with
// the variables HF passes: messages, tools, documents, add_generation_prompt, every special token
// (bos_token, eos_token, …) and any extra template variables (enable_thinking, …).
import { Template } from "@huggingface/jinja";
import { TunekitError } from "../errors";
import type { Tokenizer } from "../data/tokenizer";
import { SPECIAL_TOKEN_KEYS } from "../data/tokenizer/files";

/** One message: role ("system", "user", "assistant", "tool"), content, and whatever else the template reads (tool_calls, …). */
export interface ChatMessage {
  role: string;
  content: string | Record<string, unknown>[] | null;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, for the model to answer (add_generation_prompt). Default false. */
  addGenerationPrompt?: boolean;
  /** Leave the last message open, for the model to continue it (continue_final_message). Default false. */
  continueFinalMessage?: boolean;
  /** Tool (function) schemas, for templates that support tools. */
  tools?: Record<string, unknown>[];
  /** Documents, for templates that support retrieval. */
  documents?: Record<string, unknown>[];
  /** A template to use instead of the tokenizer's, or the name of one of its named templates. */
  chatTemplate?: string;
  /** Further template variables (e.g. { enable_thinking: false } for Qwen3). */
  templateVariables?: Record<string, unknown>;
}

function pickTemplate(tokenizer: Tokenizer, o: ChatTemplateOptions): string {
  const own = tokenizer.chatTemplate;
  if (typeof own === "object" && own !== null) {
    // HF: a name picks a named template; else "tool_use" when tools are given and it exists; else "default".
    if (o.chatTemplate !== undefined) return own[o.chatTemplate] ?? o.chatTemplate;
    const name = o.tools && own.tool_use !== undefined ? "tool_use" : "default";
    if (own[name] === undefined) throw new TunekitError(`applyChatTemplate: the tokenizer has templates ${Object.keys(own).join(", ")} but none named "default"; pass chatTemplate: <name>`);
    return own[name];
  }
  const t = o.chatTemplate ?? own;
  if (t === null) throw new TunekitError(`applyChatTemplate: the tokenizer in ${tokenizer.dir} has no chat_template (tokenizer_config.json) and none was passed as chatTemplate`);
  return t;
}

const compiled = new Map<string, Template>();

/** The conversation as the model's prompt text. Encode it with addSpecialTokens: false: the template writes BOS itself. */
export function applyChatTemplate(tokenizer: Tokenizer, messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
  if (!Array.isArray(messages) || messages.length === 0 || !messages.every((m) => m && typeof m === "object" && typeof m.role === "string"))
    throw new TunekitError(`applyChatTemplate: expected a non-empty list of messages {role, content}, got ${JSON.stringify(messages)?.slice(0, 80)}`);
  const { addGenerationPrompt = false, continueFinalMessage = false } = options;
  if (addGenerationPrompt && continueFinalMessage)
    throw new TunekitError("applyChatTemplate: addGenerationPrompt and continueFinalMessage cannot both be true (one opens a new assistant turn, the other continues the last message)");
  const source = pickTemplate(tokenizer, options);
  let template = compiled.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (e) {
      throw new TunekitError(`applyChatTemplate: the chat template does not parse: ${(e as Error).message}`);
    }
    compiled.set(source, template);
  }
  const specials: Record<string, unknown> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const t = tokenizer.specialToken(key);
    if (t !== null) specials[key] = t;
  }
  specials.additional_special_tokens = tokenizer.allSpecialTokens.filter((t) => !Object.values(specials).includes(t));
  let rendered: string;
  try {
    rendered = template.render({
      ...specials, ...options.templateVariables, messages, add_generation_prompt: addGenerationPrompt,
      ...(options.tools && { tools: options.tools }), ...(options.documents && { documents: options.documents }),
    });
  } catch (e) {
    throw new TunekitError(`applyChatTemplate: ${(e as Error).message}`);
  }
  if (continueFinalMessage) {
    // HF: cut everything the template wrote after the last message's content (its end-of-turn token);
    // templates that trim the content are matched by the trimmed text.
    const last = messages[messages.length - 1].content;
    const part = Array.isArray(last) ? last[last.length - 1]?.text : last;
    const text = typeof part === "string" ? part : "";
    const find = (t: string) => (t === "" ? -1 : rendered.lastIndexOf(t));
    const [t, at] = find(text) >= 0 ? [text, find(text)] : [text.trim(), find(text.trim())];
    if (at < 0) throw new TunekitError("applyChatTemplate: continueFinalMessage needs the last message's text in the rendered prompt; the template did not write it");
    rendered = rendered.slice(0, at + t.length);
  }
  return rendered;
}
