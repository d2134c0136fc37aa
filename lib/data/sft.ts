// Instruction fine-tuning data (TRL's SFTTrainer): examples in TRL's dataset formats, tokenized with
// labels only on what the model should learn to write (−100 elsewhere), optionally packed into rows.
//
// Formats (one JSON object per line, TRL's names):
//   {"prompt": "…", "completion": "…"}                               prompt-completion (standard)
//   {"prompt": [{role, content}…], "completion": [{role, content}…]}  prompt-completion (conversational)
//   {"messages": [{role, content}…]}                                  conversational
//
// Labels: prompt-completion trains on the completion (TRL's completion_only_loss), conversations on the
// assistant turns (TRL's assistant_only_loss). Standard text gets the EOS token after the completion as
// TRL's add_eos does (so the model learns to stop); conversations get whatever the chat template writes
// after a turn (<|eot_id|>, <|im_end|>, </s>).
//
// Assistant spans come from rendering the conversation prefix by prefix (TRL before `{% generation %}`
// tags): turn i spans from the end of render(messages[:i], addGenerationPrompt), which must be a prefix
// of the whole conversation's render, to where render(messages[:i+1]) and the whole render part: the
// end of the former for most templates; with one that always opens a next assistant turn (Meta's first
// Llama 3 template), the span then also holds the shared start of the next header
// (<|start_header_id|>), which is harmless as generation stops at the turn's end token. Why not
// the `{% generation %}` markers: Llama 3's, Mistral's and Qwen's own templates have none, and a
// template's markers are a transformers Jinja extension, not Jinja. A template that renders a turn
// differently once later turns follow (Qwen3 writes an empty <think> block into the last turn only)
// leaves the turn's content outside that span: an error naming the example; such data can still train
// on the last assistant turn as prompt-completion.
// The spans are mapped to tokens through the tokenizer's offsets, as transformers maps generation
// spans (char_to_token), so the ids are exactly the whole text's tokenization.
import { TunekitError, DatasetError } from "../errors";
import type { Tokenizer } from "./tokenizer";
import type { EncodedFeature } from "./features/collate";
import { IGNORE_INDEX } from "./features/collate";
import { BadRows, BadRow, OnBadRow, readText, splitLines, noExamples } from "./files/read";
import { parseJson } from "../io/json_safe";
import type { ChatMessage } from "../generation/chat";

/** A message of an SFT example: text content. */
export type SftMessage = ChatMessage & { content: string };

export type SftExample =
  | { prompt: string; completion: string }
  | { prompt: SftMessage[]; completion: SftMessage[] }
  | { messages: SftMessage[] };

/** Renders a conversation to text with the model's chat template (applyChatTemplate). */
export type ChatRenderer = (messages: SftMessage[], o: { addGenerationPrompt: boolean }) => string | Promise<string>;

export const isConversation = (e: SftExample): e is { messages: SftMessage[] } => "messages" in e;
export const isChatPromptCompletion = (e: SftExample): e is { prompt: SftMessage[]; completion: SftMessage[] } =>
  "prompt" in e && Array.isArray(e.prompt);

function messages(v: unknown, what: string): SftMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw new DatasetError(`${what} must be a non-empty list of {role, content} messages`);
  return v.map((m, i) => {
    if (m === null || typeof m !== "object" || typeof m.role !== "string" || !m.role || typeof m.content !== "string")
      throw new DatasetError(`${what}[${i}] must be {"role": string, "content": string}, got ${JSON.stringify(m)?.slice(0, 80)}`);
    return { role: m.role, content: m.content };
  });
}

/** Checks one record against TRL's formats; `where` names it in errors ("train.jsonl:3"). */
export function parseSftExample(v: unknown, where: string): SftExample {
  const expected = `expected {"prompt", "completion"} (two strings, or two lists of messages) or {"messages": [{role, content}, …]}`;
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new DatasetError(`${where}: ${expected}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  const r = v as Record<string, unknown>;
  if ("messages" in r) {
    const m = messages(r.messages, `${where}: "messages"`);
    if (!m.some((x) => x.role === "assistant")) throw new DatasetError(`${where}: the conversation has no assistant message, so nothing to learn`);
    return { messages: m };
  }
  if ("prompt" in r && "completion" in r) {
    if (typeof r.prompt === "string" && typeof r.completion === "string") {
      if (!r.completion) throw new DatasetError(`${where}: "completion" is empty`);
      return { prompt: r.prompt, completion: r.completion };
    }
    if (Array.isArray(r.prompt) && Array.isArray(r.completion))
      return { prompt: messages(r.prompt, `${where}: "prompt"`), completion: messages(r.completion, `${where}: "completion"`) };
    throw new DatasetError(`${where}: "prompt" and "completion" must both be strings or both be lists of messages`);
  }
  throw new DatasetError(`${where}: ${expected}; the keys are ${Object.keys(r).join(", ") || "(none)"}`);
}

/** Reads a JSON-lines file of SFT examples; blank lines are skipped. */
export function readSftJsonl(file: string, o: { onBadRow?: OnBadRow } = {}): { examples: SftExample[]; skipped: BadRow[] } {
  const bad = new BadRows(o.onBadRow ?? "fail");
  const examples: SftExample[] = [];
  splitLines(readText(file, "a JSON-lines file of SFT examples")).forEach((line, i) => {
    if (!line.trim()) return;
    try {
      examples.push(parseSftExample(parseJson(line, `${file}:${i + 1}`, DatasetError), `${file}:${i + 1}`));
    } catch (e) {
      if (!(e instanceof TunekitError)) throw e;
      bad.add(file, i + 1, e.message.startsWith(`${file}:${i + 1}: `) ? e.message.slice(`${file}:${i + 1}: `.length) : e.message);
    }
  });
  if (!examples.length) throw bad.rows.length ? noExamples(file, bad) : new DatasetError(`${file}: no examples; expected JSON lines of prompt/completion or messages`);
  return { examples, skipped: bad.rows };
}

/** A tokenized example: labels are the input ids where the loss applies, −100 elsewhere. */
export interface SftFeature extends EncodedFeature {
  labels: number[];
  labelKind: "token";
}

export interface SftFeatureOptions {
  /** Tokens per example (TRL's max_length); longer ones keep their first maxLength tokens. */
  maxLength: number;
  /** The chat template, for conversational examples. */
  chatTemplate?: ChatRenderer;
  /** Loss only on completions (TRL's completion_only_loss). Default true. */
  completionOnlyLoss?: boolean;
  /** Loss only on assistant turns of `messages` (TRL's assistant_only_loss; TRL's default is false). Default true. */
  assistantOnlyLoss?: boolean;
}

export interface SftFeatures {
  features: SftFeature[];
  /** Examples cut to maxLength. */
  truncated: number;
  /** Examples left out because truncation removed every labelled token. */
  dropped: number;
  /** Prompt-completion texts whose prompt tokens are not the start of the whole text's tokens (TRL warns). */
  mismatched: number;
}

/** Labels at the character spans [start, end) of `text`, through the tokenizer's offsets. */
async function spanFeature(tok: Tokenizer, text: string, spans: [number, number][], all: boolean): Promise<{ ids: number[]; labels: number[] }> {
  const enc = await tok.encode(text, null, { addSpecialTokens: false });
  const labels = enc.input_ids.map((id, k) => {
    const [s, e] = enc.offset_mapping[k];
    return all || spans.some(([a, b]) => s < b && e > a) ? id : IGNORE_INDEX;
  });
  return { ids: enc.input_ids, labels };
}

async function render(t: ChatRenderer | undefined, m: SftMessage[], addGenerationPrompt: boolean, where: string): Promise<string> {
  if (!t) throw new TunekitError(`${where}: a conversational example needs the model's chat template (chatTemplate); this tokenizer has none`);
  return t(m, { addGenerationPrompt });
}

function prefixProblem(full: string, prefix: string, what: string, where: string): void {
  if (!full.startsWith(prefix))
    throw new TunekitError(`${where}: the chat template renders ${what} differently inside the whole conversation, so its tokens cannot be told apart ` +
      `(rendered alone: ${JSON.stringify(prefix.slice(-60))}); train on it as {"prompt": [...], "completion": [...]} with this turn last, or without assistantOnlyLoss`);
}

/**
 * The span [start, end) of `full` that the model writes after `before`, ending with `upTo`'s last
 * message (those in between included). It ends where upTo's render and the whole conversation part:
 * the end of upTo for most templates. A template that ignores addGenerationPrompt and always opens an
 * assistant turn (Meta's first Llama 3 template) would end it with that header: the span then ends where
 * upTo also parts from the same messages followed by a user message.
 */
async function turnSpan(t: ChatRenderer | undefined, full: string, before: SftMessage[], upTo: SftMessage[], what: string, where: string): Promise<[number, number]> {
  const start = await render(t, before, true, where);
  prefixProblem(full, start, `the conversation before ${what}`, where);
  const text = await render(t, upTo, false, where);
  const opensTurn = text === (await render(t, upTo, true, where));
  const probe = opensTurn ? await render(t, [...upTo, { role: "user", content: "?" }], false, where) : full;
  let end = start.length;
  while (end < text.length && text[end] === full[end] && text[end] === probe[end]) end++;
  if (!full.slice(start.length, end).includes(upTo[upTo.length - 1].content.trim())) prefixProblem(full, text, `the conversation up to ${what}`, where);
  return [start.length, end];
}

/** Tokenizes one example into ids and labels (not yet truncated). */
export async function tokenizeSftExample(tok: Tokenizer, e: SftExample, o: SftFeatureOptions, where = "sft example"): Promise<{ ids: number[]; labels: number[]; mismatched: boolean }> {
  const completionOnly = o.completionOnlyLoss ?? true;
  const t = o.chatTemplate;
  if (isConversation(e)) {
    const full = await render(t, e.messages, false, where);
    if (!(o.assistantOnlyLoss ?? true)) return { ...(await spanFeature(tok, full, [], true)), mismatched: false };
    const spans: [number, number][] = [];
    for (let i = 0; i < e.messages.length; i++) {
      if (e.messages[i].role !== "assistant") continue;
      if (i === 0) throw new TunekitError(`${where}: the conversation opens with an assistant message; the template needs a system or user message before it`);
      spans.push(await turnSpan(t, full, e.messages.slice(0, i), e.messages.slice(0, i + 1), `message ${i}`, where));
    }
    return { ...(await spanFeature(tok, full, spans, false)), mismatched: false };
  }
  if (isChatPromptCompletion(e)) {
    const all = [...e.prompt, ...e.completion];
    const full = await render(t, all, false, where);
    return { ...(await spanFeature(tok, full, [await turnSpan(t, full, e.prompt, all, "the completion", where)], !completionOnly)), mismatched: false };
  }
  // TRL: tokenize the prompt and prompt + completion (each with the tokenizer's special tokens), the
  // labels start after len(prompt ids); then the EOS token (appended as an id, not parsed from text).
  const p = (await tok.encode(e.prompt)).input_ids;
  const ids = [...(await tok.encode(e.prompt + e.completion)).input_ids];
  const eos = tok.eosTokenId;
  if (eos === null) throw new TunekitError(`${where}: the tokenizer has no eos_token, so the model could not learn where a completion ends; set one in tokenizer_config.json`);
  if (ids[ids.length - 1] !== eos) ids.push(eos);
  const mismatched = p.some((id, k) => ids[k] !== id);
  const labels = ids.map((id, k) => (!completionOnly || k >= p.length ? id : IGNORE_INDEX));
  return { ids, labels, mismatched };
}

/** Tokenizes examples into features with their label masks, cut to maxLength. */
export async function sftFeatures(tok: Tokenizer, examples: SftExample[], o: SftFeatureOptions): Promise<SftFeatures> {
  if (!Number.isInteger(o.maxLength) || o.maxLength < 2) throw new TunekitError(`sftFeatures: maxLength must be an integer >= 2, got ${o.maxLength}`);
  const out: SftFeatures = { features: [], truncated: 0, dropped: 0, mismatched: 0 };
  for (let i = 0; i < examples.length; i++) {
    const r = await tokenizeSftExample(tok, examples[i], o, `example ${i}`);
    if (r.mismatched) out.mismatched++;
    if (r.ids.length > o.maxLength) out.truncated++;
    const ids = r.ids.slice(0, o.maxLength), labels = r.labels.slice(0, o.maxLength);
    // The first label of a row predicts nothing (the causal LM shifts): one later label must remain.
    if (!labels.some((l, k) => k > 0 && l !== IGNORE_INDEX)) {
      out.dropped++;
      continue;
    }
    out.features.push({ inputIds: ids, attentionMask: ids.map(() => 1), labels, labelKind: "token" });
  }
  if (!out.features.length) throw new TunekitError(`sftFeatures: no example keeps a labelled token within maxLength ${o.maxLength} (${out.dropped} dropped); raise maxLength`);
  return out;
}

/**
 * Packing (TRL's packing=True, strategy "bfd"): whole examples go into rows of at most `maxLength`
 * tokens by best-fit decreasing, so few rows and little padding remain. Within a row, tunekit's
 * bodies attend across example boundaries and count positions on from the row's start (they take no
 * position_ids, which TRL's "bfd" resets per example for flash attention to separate them). The loss
 * still covers exactly the unpacked examples' tokens: each example's first label is −100 in the row,
 * so no token is predicted from the previous example's last one.
 */
export function packSftFeatures(features: SftFeature[], maxLength: number): SftFeature[] {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new TunekitError(`packSftFeatures: maxLength must be an integer >= 2, got ${maxLength}`);
  const order = features.map((f, i) => ({ f, i })).sort((a, b) => b.f.inputIds.length - a.f.inputIds.length || a.i - b.i);
  const rows: { used: number; parts: SftFeature[] }[] = [];
  for (const { f, i } of order) {
    const n = f.inputIds.length;
    if (n > maxLength) throw new TunekitError(`packSftFeatures: feature ${i} has ${n} tokens, more than maxLength ${maxLength}`);
    let best: (typeof rows)[number] | undefined;
    for (const r of rows) if (r.used + n <= maxLength && (!best || r.used > best.used)) best = r;
    if (!best) rows.push((best = { used: 0, parts: [] }));
    best.parts.push(f);
    best.used += n;
  }
  return rows.map((r) => {
    const inputIds = r.parts.flatMap((p) => p.inputIds);
    const labels = r.parts.flatMap((p) => p.labels.map((l, k) => (k === 0 ? IGNORE_INDEX : l)));
    return { inputIds, attentionMask: inputIds.map(() => 1), labels, labelKind: "token" as const };
  });
}
