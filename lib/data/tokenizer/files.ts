// Reading a Hugging Face tokenizer from a checkpoint folder, and writing one back.
// tokenizer.json is used as is; for vocab-only checkpoints the equivalent tokenizer.json is built here
// the way transformers' convert_slow_tokenizer does (BertConverter, GPT2Converter, RobertaConverter),
// so one engine (the Rust `tokenizers` package) runs every checkpoint.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../../errors";
import { parseJson, readJson } from "../../io/json_safe";
import { tokenizerClassFor } from "../../models/registry";

/** Which Hugging Face tokenizer class the folder stands for; it sets default special tokens and model inputs. */
export type TokenizerFamily = "bert" | "gpt2" | "roberta" | "other";

/** Where the vocabulary came from. */
export type TokenizerSource = "tokenizer.json" | "vocab.txt" | "vocab.json+merges.txt";

export const SPECIAL_TOKEN_KEYS = [
  "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
] as const;
export type SpecialTokenKey = (typeof SPECIAL_TOKEN_KEYS)[number];

/** An added token as tokenizer.json stores it. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of tokenizer.json that tunekit reads itself (the Rust engine reads all of it). */
export interface TokenizerJson {
  added_tokens?: AddedTokenJson[];
  normalizer?: Record<string, unknown> | null;
  pre_tokenizer?: Record<string, unknown> | null;
  post_processor?: Record<string, unknown> | null;
  model: { type?: string; vocab?: unknown; merges?: unknown; unk_token?: string | null; [k: string]: unknown };
  [k: string]: unknown;
}

export interface LoadedFiles {
  dir: string;
  source: TokenizerSource;
  family: TokenizerFamily;
  /** tokenizer.json text to hand to the engine (read, or built from the vocabulary files). */
  json: string;
  parsed: TokenizerJson;
  /** tokenizer_config.json, or {} when absent. */
  config: Record<string, unknown>;
  /** Special tokens: tokenizer_config.json, then special_tokens_map.json on top, then family defaults. */
  special: Partial<Record<SpecialTokenKey, string>>;
  additionalSpecial: string[];
  modelMaxLength: number;
  /** Byte-level BPE: whether each word (each pre-split word too) gets a leading space; null for other tokenizers. */
  addPrefixSpace: boolean | null;
}

export interface TokenizerLoadOptions {
  /** transformers' from_pretrained(..., add_prefix_space=...): overrides the tokenizer's own setting (byte-level BPE only). */
  addPrefixSpace?: boolean;
}

/** HF writes int(1e30) (VERY_LARGE_INTEGER) when a checkpoint sets no limit. */
export const NO_MAX_LENGTH = 1e30;

const FAMILY_DEFAULTS: Record<TokenizerFamily, Partial<Record<SpecialTokenKey, string>>> = {
  bert: { unk_token: "[UNK]", sep_token: "[SEP]", pad_token: "[PAD]", cls_token: "[CLS]", mask_token: "[MASK]" },
  gpt2: { unk_token: "<|endoftext|>", bos_token: "<|endoftext|>", eos_token: "<|endoftext|>" },
  roberta: {
    bos_token: "<s>", eos_token: "</s>", sep_token: "</s>", cls_token: "<s>",
    unk_token: "<unk>", pad_token: "<pad>", mask_token: "<mask>",
  },
  other: {},
};

const CLASS_FAMILIES: Record<string, TokenizerFamily> = {
  BertTokenizer: "bert", DistilBertTokenizer: "bert", ElectraTokenizer: "bert", MobileBertTokenizer: "bert",
  GPT2Tokenizer: "gpt2", RobertaTokenizer: "roberta",
};
/** The family of the tokenizer class config.json's model_type stands for (its architecture's spec names the class). */
const modelTypeFamily = (modelConfig: Record<string, unknown>): TokenizerFamily | undefined => CLASS_FAMILIES[tokenizerClassFor(modelConfig.model_type) ?? ""];

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function exists(file: string): boolean {
  return fs.existsSync(file) && fs.statSync(file).isFile();
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new TunekitError(`cannot read ${file}: ${(e as Error).message}`);
  }
}


function readJsonObject(file: string): Record<string, unknown> {
  if (!exists(file)) return {};
  const v = readJson(file);
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TunekitError(`${file}: expected a JSON object at the top level`);
  }
  return v as Record<string, unknown>;
}

/** A special token may be written as a string or as an AddedToken object {content, ...}. */
function tokenContent(v: unknown, where: string): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  throw new TunekitError(`${where}: expected a string or {"content": string}, got ${JSON.stringify(v)}`);
}

function detectFamily(config: Record<string, unknown>, modelConfig: Record<string, unknown>, source: TokenizerSource,
                      parsed: TokenizerJson | null): TokenizerFamily {
  const cls = typeof config.tokenizer_class === "string" ? config.tokenizer_class.replace(/Fast$/, "") : "";
  if (CLASS_FAMILIES[cls]) return CLASS_FAMILIES[cls];
  const byType = modelTypeFamily(modelConfig);
  if (byType) return byType;
  if (source === "vocab.txt") return "bert";
  if (source === "vocab.json+merges.txt") return "gpt2";
  if (parsed?.model.type === "WordPiece") return "bert";
  if (parsed?.model.type === "BPE" && isByteLevel(parsed)) return "gpt2";
  return "other";
}

/** True when the pre-tokenizer is ByteLevel (alone or inside a Sequence): GPT-2 / RoBERTa style. */
export function isByteLevel(parsed: TokenizerJson): boolean {
  const pre = parsed.pre_tokenizer;
  if (!pre) return false;
  if (pre.type === "ByteLevel") return true;
  const list = pre.type === "Sequence" ? (pre.pretokenizers as Record<string, unknown>[] | undefined) : undefined;
  return Array.isArray(list) && list.some((p) => p && p.type === "ByteLevel");
}

const byteLevelParts = (pp: Record<string, unknown> | null | undefined, listKey: string): Record<string, unknown>[] => {
  if (!isPlainObject(pp)) return [];
  if (pp.type === "ByteLevel" || pp.type === "RobertaProcessing") return [pp];
  const list = pp.type === "Sequence" ? pp[listKey] : undefined;
  return Array.isArray(list) ? list.flatMap((p) => byteLevelParts(p as Record<string, unknown>, listKey)) : [];
};

/** The add_prefix_space of tokenizer.json's ByteLevel pre-tokenizer (the engine's default, true, when unset); null without one. */
function preTokenizerPrefixSpace(parsed: TokenizerJson): boolean | null {
  const bl = byteLevelParts(parsed.pre_tokenizer, "pretokenizers").find((p) => p.type === "ByteLevel");
  return bl ? bl.add_prefix_space !== false : null;
}

/**
 * A copy of `parsed` with add_prefix_space set on every ByteLevel pre-tokenizer, and on the ByteLevel /
 * RobertaProcessing post-processor too: that one trims the leading space off word-initial offsets unless it knows
 * the space was added (transformers' RobertaTokenizer builds both with the same value).
 */
export function withAddPrefixSpace(parsed: TokenizerJson, value: boolean): TokenizerJson {
  const out = structuredClone(parsed);
  for (const p of byteLevelParts(out.pre_tokenizer, "pretokenizers")) if (p.type === "ByteLevel") p.add_prefix_space = value;
  for (const p of byteLevelParts(out.post_processor, "processors")) p.add_prefix_space = value;
  return out;
}

/**
 * add_prefix_space as transformers resolves it: the from_pretrained argument, else tokenizer_config.json's; else, for
 * GPT2Tokenizer / RobertaTokenizer (named by tokenizer_class, or picked from config.json's model_type), their default
 * false, since both rebuild the ByteLevel pre-tokenizer from it; else (a generic fast tokenizer) tokenizer.json's own.
 */
function resolvePrefixSpace(parsed: TokenizerJson, config: Record<string, unknown>, modelConfig: Record<string, unknown>,
                            override: boolean | undefined, dir: string): boolean | null {
  const own = preTokenizerPrefixSpace(parsed);
  if (own === null) {
    if (override !== undefined) throw new TunekitError(`AutoTokenizer.fromPretrained(${dir}): addPrefixSpace applies to byte-level BPE tokenizers (GPT-2, RoBERTa); this one has no ByteLevel pre-tokenizer`);
    return null;
  }
  if (override !== undefined) return override;
  if (typeof config.add_prefix_space === "boolean") return config.add_prefix_space;
  const cls = typeof config.tokenizer_class === "string" ? config.tokenizer_class.replace(/Fast$/, "") : "";
  const family = cls ? CLASS_FAMILIES[cls] : modelTypeFamily(modelConfig);
  return family === "gpt2" || family === "roberta" ? false : own;
}

/** vocab.txt: one token a line, id = line number (transformers' load_vocab keeps everything but the "\n"). */
function readVocabTxt(file: string): Record<string, number> {
  const lines = readText(file).split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) throw new TunekitError(`${file}: the vocabulary is empty`);
  const vocab: Record<string, number> = Object.create(null);
  lines.forEach((tok, i) => { vocab[tok] = i; });
  return vocab;
}

function readVocabJson(file: string): Record<string, number> {
  const v = readJson(file);
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new TunekitError(`${file}: expected a JSON object {token: id}`);
  }
  const vocab = v as Record<string, unknown>;
  for (const [tok, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new TunekitError(`${file}: token ${JSON.stringify(tok)} has id ${JSON.stringify(id)}, expected an integer >= 0`);
    }
  }
  if (Object.keys(vocab).length === 0) throw new TunekitError(`${file}: the vocabulary is empty`);
  // Lookups by token must not reach Object.prototype ("constructor", "toString" are tokens too).
  return Object.assign(Object.create(null), vocab) as Record<string, number>;
}

/** merges.txt: a "#version" header, then "left right" a line; the final newline may be missing. */
function readMerges(file: string): string[] {
  const merges: string[] = [];
  readText(file).split("\n").forEach((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "" || (i === 0 && line.startsWith("#version"))) return;
    if (line.split(" ").length !== 2) {
      throw new TunekitError(`${file}: line ${i + 1} is ${JSON.stringify(line)}, expected two tokens separated by one space`);
    }
    merges.push(line);
  });
  return merges;
}

/** added_tokens_decoder of tokenizer_config.json (4.34+) plus legacy added_tokens.json. */
function configAddedTokens(dir: string, config: Record<string, unknown>): AddedTokenJson[] {
  const out: AddedTokenJson[] = [];
  const contents = new Set<string>();
  const dec = config.added_tokens_decoder;
  if (dec && typeof dec === "object") {
    for (const [id, t] of Object.entries(dec as Record<string, Record<string, unknown>>)) {
      const content = tokenContent(t, `tokenizer_config.json added_tokens_decoder["${id}"]`);
      if (!/^\d+$/.test(id) || content === undefined) {
        throw new TunekitError(`${path.join(dir, "tokenizer_config.json")}: added_tokens_decoder key ${JSON.stringify(id)} must be an integer id with a token`);
      }
      contents.add(content);
      out.push({
        id: Number(id), content, single_word: !!t.single_word, lstrip: !!t.lstrip, rstrip: !!t.rstrip,
        normalized: t.normalized === undefined ? !t.special : !!t.normalized, special: !!t.special,
      });
    }
  }
  const legacy = path.join(dir, "added_tokens.json");
  if (exists(legacy)) {
    for (const [content, id] of Object.entries(readJsonObject(legacy))) {
      if (!Number.isInteger(id)) throw new TunekitError(`${legacy}: token ${JSON.stringify(content)} has a non-integer id`);
      if (!contents.has(content)) {
        contents.add(content);
        out.push({ id: id as number, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: false });
      }
    }
  }
  return out;
}

/** Special tokens become special added tokens (as HF's converters do), keeping what the config says of them. */
function mergeAddedTokens(fromConfig: AddedTokenJson[], specials: string[], vocab: Record<string, number>,
                          normalizedSpecials: boolean, lstripTokens: Set<string>): AddedTokenJson[] {
  const out = new Map<string, AddedTokenJson>();
  for (const t of fromConfig) out.set(t.content, t);
  let next = 0;
  for (const id of Object.values(vocab)) if (id >= next) next = id + 1;
  for (const t of fromConfig) if (t.id >= next) next = t.id + 1;
  for (const s of specials) {
    const known = out.get(s);
    if (known) { known.special = true; continue; }
    const id = hasOwn(vocab, s) ? vocab[s] : next++;
    out.set(s, { id, content: s, single_word: false, lstrip: lstripTokens.has(s), rstrip: false, normalized: normalizedSpecials, special: true });
  }
  return [...out.values()].sort((a, b) => a.id - b.id);
}

function buildWordPiece(dir: string, vocab: Record<string, number>, config: Record<string, unknown>,
                        special: Partial<Record<SpecialTokenKey, string>>, specialList: string[]): TokenizerJson {
  const lower = config.do_lower_case === undefined ? true : !!config.do_lower_case;
  const { cls_token: cls, sep_token: sep } = special;
  const post = cls !== undefined && sep !== undefined && hasOwn(vocab, cls) && hasOwn(vocab, sep)
    ? {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: cls, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: sep, type_id: 0 } }],
      pair: [{ SpecialToken: { id: cls, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: sep, type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: sep, type_id: 1 } }],
      special_tokens: {
        [cls]: { id: cls, ids: [vocab[cls]], tokens: [cls] },
        [sep]: { id: sep, ids: [vocab[sep]], tokens: [sep] },
      },
    }
    : null;
  return {
    version: "1.0", truncation: null, padding: null,
    added_tokens: mergeAddedTokens(configAddedTokens(dir, config), specialList, vocab, false, new Set()),
    normalizer: {
      type: "BertNormalizer", clean_text: true,
      handle_chinese_chars: config.tokenize_chinese_chars === undefined ? true : !!config.tokenize_chinese_chars,
      strip_accents: config.strip_accents === undefined ? null : config.strip_accents,
      lowercase: lower,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: post,
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece", unk_token: special.unk_token ?? "[UNK]", continuing_subword_prefix: "##",
      max_input_chars_per_word: 100, vocab,
    },
  };
}

function buildByteLevelBpe(dir: string, vocab: Record<string, number>, config: Record<string, unknown>, family: TokenizerFamily,
                           special: Partial<Record<SpecialTokenKey, string>>, specialList: string[]): TokenizerJson {
  const merges = readMerges(path.join(dir, "merges.txt"));
  const addPrefixSpace = !!config.add_prefix_space;
  const added = mergeAddedTokens(configAddedTokens(dir, config), specialList, vocab, true,
    new Set(family === "roberta" && special.mask_token ? [special.mask_token] : []));
  const addedIds = new Map(added.map((a) => [a.content, a.id]));
  const idOf = (t: string) => (hasOwn(vocab, t) ? vocab[t] : addedIds.get(t));
  let post: Record<string, unknown> = { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true };
  const { cls_token: cls, sep_token: sep, bos_token: bos } = special;
  if (family === "roberta" && cls !== undefined && sep !== undefined) {
    post = {
      type: "RobertaProcessing", sep: [sep, idOf(sep)], cls: [cls, idOf(cls)],
      trim_offsets: config.trim_offsets === undefined ? true : !!config.trim_offsets, add_prefix_space: addPrefixSpace,
    };
  } else if (family !== "roberta" && config.add_bos_token === true && bos !== undefined) {
    post = {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [idOf(bos)], tokens: [bos] } },
    };
  }
  return {
    version: "1.0", truncation: null, padding: null, added_tokens: added, normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: addPrefixSpace, trim_offsets: true, use_regex: true },
    post_processor: post,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

/** Checks a BPE model's merges the way the engine does when it builds them: the engine aborts the whole process
 *  (a Rust panic) on a merge whose result is not in the vocabulary, so that must be refused here first. */
function checkBpeMerges(model: TokenizerJson["model"], file: string): void {
  const vocab = model.vocab;
  if (!vocab || typeof vocab !== "object" || Array.isArray(vocab)) throw new TunekitError(`${file}: a BPE model needs a "vocab" object {token: id}`);
  if (!Array.isArray(model.merges)) throw new TunekitError(`${file}: a BPE model needs a "merges" list`);
  const has = (t: string) => Object.prototype.hasOwnProperty.call(vocab, t);
  const prefix = typeof model.continuing_subword_prefix === "string" ? model.continuing_subword_prefix : "";
  model.merges.forEach((m: unknown, i: number) => {
    const parts = typeof m === "string" ? m.split(" ") : m;
    if (!Array.isArray(parts) || parts.length !== 2 || typeof parts[0] !== "string" || typeof parts[1] !== "string") {
      throw new TunekitError(`${file}: merge ${i + 1} is ${JSON.stringify(m)}, expected "left right" or ["left", "right"]`);
    }
    const [a, b] = parts as [string, string];
    const merged = a + (prefix !== "" && b.startsWith(prefix) ? b.slice(prefix.length) : b);
    for (const t of [a, b, merged]) {
      if (!has(t)) throw new TunekitError(`${file}: merge ${i + 1} (${JSON.stringify(a)} + ${JSON.stringify(b)}) uses ${JSON.stringify(t)}, which is not in the vocabulary`);
    }
  });
}

const isU32 = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks a TemplateProcessing post-processor (also inside a Sequence) the way the engine uses it: the engine
 *  parses some broken templates and then panics while encoding (a Rust panic there aborts the whole process):
 *  `$B` in the single template, a special token the template names but does not define, ids and tokens
 *  of different lengths. */
function checkPostProcessor(pp: unknown, file: string): void {
  if (pp === null || pp === undefined) return;
  const bad = (msg: string) => new TunekitError(`${file}: post_processor ${msg}`);
  if (!isPlainObject(pp)) throw bad(`must be an object or null, got ${JSON.stringify(pp)?.slice(0, 60)}`);
  if (pp.type === "Sequence") {
    if (!Array.isArray(pp.processors)) throw bad('of type Sequence needs a "processors" list');
    for (const p of pp.processors) checkPostProcessor(p, file);
    return;
  }
  if (pp.type !== "TemplateProcessing") return;
  const st = pp.special_tokens;
  if (!isPlainObject(st)) throw bad('TemplateProcessing needs a "special_tokens" object {name: {id, ids, tokens}}');
  for (const [name, t] of Object.entries(st)) {
    const what = `TemplateProcessing special token ${JSON.stringify(name)}`;
    if (!isPlainObject(t) || t.id !== name) throw bad(`${what}: expected {"id": ${JSON.stringify(name)}, "ids": [...], "tokens": [...]}`);
    if (!Array.isArray(t.ids) || !t.ids.every(isU32)) throw bad(`${what}: "ids" must be a list of token ids, got ${JSON.stringify(t.ids)?.slice(0, 60)}`);
    if (!Array.isArray(t.tokens) || !t.tokens.every((x) => typeof x === "string")) throw bad(`${what}: "tokens" must be a list of strings`);
    if (t.ids.length !== t.tokens.length) throw bad(`${what}: has ${t.ids.length} ids but ${t.tokens.length} tokens; expected one id per token`);
  }
  for (const which of ["single", "pair"] as const) {
    const tpl = pp[which];
    if (!Array.isArray(tpl)) throw bad(`TemplateProcessing "${which}" must be a list of {Sequence} / {SpecialToken} pieces`);
    tpl.forEach((piece: unknown, i: number) => {
      const where = `TemplateProcessing ${which}[${i}]`;
      const seq = isPlainObject(piece) ? piece.Sequence : undefined, sp = isPlainObject(piece) ? piece.SpecialToken : undefined;
      if (isPlainObject(seq)) {
        const ok = seq.id === "A" || (which === "pair" && seq.id === "B");
        if (!ok) throw bad(`${where}: sequence ${JSON.stringify(seq.id)}; expected ${which === "single" ? '"A" (a single text has no "B")' : '"A" or "B"'}`);
        if (!isU32(seq.type_id)) throw bad(`${where}: type_id must be a non-negative integer`);
      } else if (isPlainObject(sp)) {
        if (typeof sp.id !== "string" || !Object.prototype.hasOwnProperty.call(st, sp.id)) {
          throw bad(`${where}: special token ${JSON.stringify(sp.id)} is not defined in special_tokens (${Object.keys(st).map((k) => JSON.stringify(k)).join(", ") || "none"})`);
        }
        if (!isU32(sp.type_id)) throw bad(`${where}: type_id must be a non-negative integer`);
      } else {
        throw bad(`${where}: expected {"Sequence": {...}} or {"SpecialToken": {...}}, got ${JSON.stringify(piece)?.slice(0, 60)}`);
      }
    });
  }
}

const tokenizerClass = (config: Record<string, unknown>) => (typeof config.tokenizer_class === "string" ? config.tokenizer_class.replace(/Fast$/, "") : "");

/** The fast classes whose __init__ rebuilds the post-processor from add_bos_token / add_eos_token (update_post_processor). */
const LLAMA_CLASSES = new Set(["LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer"]);

function tokenIdOf(parsed: TokenizerJson, token: string): number | undefined {
  const added = (parsed.added_tokens ?? []).find((t) => t.content === token);
  if (added) return added.id;
  const vocab = parsed.model.vocab;
  return vocab && typeof vocab === "object" && !Array.isArray(vocab) && hasOwn(vocab, token) ? (vocab as Record<string, number>)[token] : undefined;
}

/**
 * LlamaTokenizerFast.update_post_processor: "<s>:0 $A:0" (+ " </s>:0"), pairs "… <s>:1 $B:1 (</s>:1)", from
 * add_bos_token (default true) and add_eos_token (default false), whatever tokenizer.json's post-processor says.
 */
function llamaPostProcessor(parsed: TokenizerJson, config: Record<string, unknown>, special: Partial<Record<SpecialTokenKey, string>>, dir: string): Record<string, unknown> {
  const flag = (key: string, dflt: boolean) => {
    const v = config[key] ?? dflt;
    if (typeof v !== "boolean") throw new TunekitError(`${path.join(dir, "tokenizer_config.json")}: ${key} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const ends: { key: SpecialTokenKey; on: boolean; before: boolean }[] = [
    { key: "bos_token", on: flag("add_bos_token", true), before: true },
    { key: "eos_token", on: flag("add_eos_token", false), before: false },
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const e of ends.filter((x) => x.on)) {
    const tok = special[e.key];
    const id = tok === undefined ? undefined : tokenIdOf(parsed, tok);
    if (tok === undefined || id === undefined) throw new TunekitError(`${dir}: add_${e.key} is true but the tokenizer has no ${e.key}${tok === undefined ? "" : ` (${JSON.stringify(tok)} is not in the vocabulary)`}`);
    specialTokens[tok] = { id: tok, ids: [id], tokens: [tok] };
  }
  const seq = (id: "A" | "B", type: number) => [
    ...ends.filter((e) => e.on && e.before).map((e) => ({ SpecialToken: { id: special[e.key], type_id: type } })),
    { Sequence: { id, type_id: type } },
    ...ends.filter((e) => e.on && !e.before).map((e) => ({ SpecialToken: { id: special[e.key], type_id: type } })),
  ];
  return { type: "TemplateProcessing", single: seq("A", 0), pair: [...seq("A", 0), ...seq("B", 1)], special_tokens: specialTokens };
}

/** transformers' BertTokenizerFast re-applies do_lower_case / strip_accents / tokenize_chinese_chars from the config. */
function applyBertConfig(parsed: TokenizerJson, config: Record<string, unknown>): boolean {
  const n = parsed.normalizer;
  if (!n || n.type !== "BertNormalizer") return false;
  let changed = false;
  const set = (key: string, cfgKey: string) => {
    if (config[cfgKey] !== undefined && n[key] !== config[cfgKey]) { n[key] = config[cfgKey]; changed = true; }
  };
  set("lowercase", "do_lower_case");
  set("strip_accents", "strip_accents");
  set("handle_chinese_chars", "tokenize_chinese_chars");
  return changed;
}

function tokenIdIn(parsed: TokenizerJson, token: string): boolean {
  const vocab = parsed.model.vocab;
  if (vocab && typeof vocab === "object" && !Array.isArray(vocab) && hasOwn(vocab, token)) return true;
  if (Array.isArray(vocab) && vocab.some((e) => Array.isArray(e) && e[0] === token)) return true; // Unigram
  return (parsed.added_tokens ?? []).some((t) => t.content === token);
}

/** Larger model_max_length values are "no limit" sentinels (HF writes 1e30; other files hold 1e12, 2^63...), not
 *  lengths: taken as lengths, padding to max_length would allocate rows of that many tokens. */
export const MAX_MODEL_LENGTH = 1_000_000;

function resolveMaxLength(config: Record<string, unknown>, modelConfig: Record<string, unknown>, family: TokenizerFamily): number {
  const raw = config.model_max_length;
  if (typeof raw === "number" && raw >= 1 && raw <= MAX_MODEL_LENGTH) return Math.floor(raw);
  // No limit in the tokenizer files: the model's position table is the real one.
  const pos = modelConfig.max_position_embeddings ?? modelConfig.n_positions ?? modelConfig.n_ctx;
  if (typeof pos === "number" && Number.isSafeInteger(pos) && pos > 2 && pos <= MAX_MODEL_LENGTH) return family === "roberta" ? pos - 2 : pos;
  return Infinity;
}

/** Reads a checkpoint folder's tokenizer files; throws one TunekitError naming the folder and the files looked for. */
export function loadTokenizerFiles(dirIn: string, options: TokenizerLoadOptions = {}): LoadedFiles {
  if (options.addPrefixSpace !== undefined && typeof options.addPrefixSpace !== "boolean") {
    throw new TunekitError(`AutoTokenizer.fromPretrained: addPrefixSpace must be true or false, got ${JSON.stringify(options.addPrefixSpace)}`);
  }
  if (typeof dirIn !== "string" || dirIn === "") {
    throw new TunekitError(`AutoTokenizer.fromPretrained: expected a checkpoint directory path, got ${JSON.stringify(dirIn)}`);
  }
  const dir = path.resolve(dirIn);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new TunekitError(`AutoTokenizer.fromPretrained: ${dir} is not a directory (expected a Hugging Face checkpoint folder)`);
  }
  const config = readJsonObject(path.join(dir, "tokenizer_config.json"));
  const specialMap = readJsonObject(path.join(dir, "special_tokens_map.json"));
  const modelConfig = readJsonObject(path.join(dir, "config.json"));

  let source: TokenizerSource;
  let parsed: TokenizerJson | null = null;
  let text = "";
  if (exists(path.join(dir, "tokenizer.json"))) {
    source = "tokenizer.json";
    text = readText(path.join(dir, "tokenizer.json"));
    parsed = parseJson(text, path.join(dir, "tokenizer.json")) as TokenizerJson;
    if (!parsed || typeof parsed !== "object" || !parsed.model || typeof parsed.model !== "object") {
      throw new TunekitError(`${path.join(dir, "tokenizer.json")}: expected an object with a "model" entry`);
    }
  } else if (exists(path.join(dir, "vocab.txt"))) {
    source = "vocab.txt";
  } else if (exists(path.join(dir, "vocab.json")) && exists(path.join(dir, "merges.txt"))) {
    source = "vocab.json+merges.txt";
  } else {
    const half = exists(path.join(dir, "vocab.json")) ? " (vocab.json is there but merges.txt is missing)" : "";
    throw new TunekitError(`no tokenizer files in ${dir}${half}: looked for tokenizer.json, vocab.txt (WordPiece), ` +
      `vocab.json + merges.txt (byte-level BPE)`);
  }

  const family = detectFamily(config, modelConfig, source, parsed);
  const special: Partial<Record<SpecialTokenKey, string>> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const v = tokenContent(specialMap[key], `special_tokens_map.json "${key}"`) ?? tokenContent(config[key], `tokenizer_config.json "${key}"`);
    if (v !== undefined) special[key] = v;
  }
  const extraRaw = specialMap.additional_special_tokens ?? config.additional_special_tokens ?? [];
  if (!Array.isArray(extraRaw)) throw new TunekitError(`${dir}: additional_special_tokens must be a list`);
  const additionalSpecial = extraRaw.map((t, i) => tokenContent(t, `additional_special_tokens[${i}]`) as string);

  // Family defaults fill what the files leave out, only where the vocabulary has the token; a token the
  // files set to null stays unset (Qwen2's bos_token / unk_token: null).
  const defaults = { ...FAMILY_DEFAULTS[family] };
  for (const key of SPECIAL_TOKEN_KEYS) if (specialMap[key] === null || config[key] === null) delete defaults[key];
  if (source === "vocab.txt") {
    const vocab = readVocabTxt(path.join(dir, "vocab.txt"));
    for (const key of SPECIAL_TOKEN_KEYS) if (special[key] === undefined && defaults[key] !== undefined && hasOwn(vocab, defaults[key]!)) special[key] = defaults[key];
    parsed = buildWordPiece(dir, vocab, config, special, [...new Set([...Object.values(special), ...additionalSpecial])]);
  } else if (source === "vocab.json+merges.txt") {
    const vocab = readVocabJson(path.join(dir, "vocab.json"));
    for (const key of SPECIAL_TOKEN_KEYS) if (special[key] === undefined && defaults[key] !== undefined && hasOwn(vocab, defaults[key]!)) special[key] = defaults[key];
    parsed = buildByteLevelBpe(dir, vocab, config, family, special, [...new Set([...Object.values(special), ...additionalSpecial])]);
  } else {
    for (const key of SPECIAL_TOKEN_KEYS) if (special[key] === undefined && defaults[key] !== undefined && tokenIdIn(parsed!, defaults[key]!)) special[key] = defaults[key];
  }
  if (parsed!.model.type === "BPE" || (parsed!.model.type === undefined && parsed!.model.merges !== undefined)) {
    checkBpeMerges(parsed!.model, source === "tokenizer.json" ? path.join(dir, "tokenizer.json") : path.join(dir, "merges.txt"));
  }
  let rebuilt = source !== "tokenizer.json" || applyBertConfig(parsed!, config);
  if (LLAMA_CLASSES.has(tokenizerClass(config))) {
    parsed!.post_processor = llamaPostProcessor(parsed!, config, special, dir);
    rebuilt = true;
  }
  checkPostProcessor(parsed!.post_processor, source === "tokenizer.json" ? path.join(dir, "tokenizer.json") : path.join(dir, source === "vocab.txt" ? "vocab.txt" : "vocab.json"));
  const addPrefixSpace = resolvePrefixSpace(parsed!, config, modelConfig, options.addPrefixSpace, dir);
  if (addPrefixSpace !== null && addPrefixSpace !== preTokenizerPrefixSpace(parsed!)) {
    parsed = withAddPrefixSpace(parsed!, addPrefixSpace);
    rebuilt = true;
  }
  // transformers >= 4.51 saves the chat template beside the config.
  const jinja = path.join(dir, "chat_template.jinja");
  if (config.chat_template === undefined && exists(jinja)) config.chat_template = readText(jinja);
  return {
    dir, source, family, json: rebuilt ? JSON.stringify(parsed) : text, parsed: parsed!, config, special, additionalSpecial,
    modelMaxLength: resolveMaxLength(config, modelConfig, family), addPrefixSpace,
  };
}

// ---------------------------------------------------------------- writing

/** Write-to-temp, fsync, rename: a crash never leaves half a file under the real name. */
export function writeFileAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = fs.openSync(tmp, "w");
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** JSON with HF's int(1e30) written as the integer Python wrote (1e+30 would load as a float). */
export function toConfigJson(obj: Record<string, unknown>): string {
  const marker = "\u0000TK_NO_MAX_LENGTH\u0000";
  const text = JSON.stringify(obj, (k, v) => (k === "model_max_length" && typeof v === "number" && v >= NO_MAX_LENGTH / 10 ? marker : v), 2);
  return text.split(JSON.stringify(marker)).join("1000000000000000019884624838656") + "\n";
}

/** vocab.txt / vocab.json + merges.txt from an engine-written tokenizer.json, so slow tokenizers load the folder too. */
export function vocabularyFiles(parsed: TokenizerJson): Record<string, string> {
  const { type, vocab, merges } = parsed.model;
  if (type === "WordPiece" && vocab && typeof vocab === "object") {
    const entries = Object.entries(vocab as Record<string, number>).sort((a, b) => a[1] - b[1]);
    if (entries.every(([, id], i) => id === i)) return { "vocab.txt": entries.map(([t]) => t).join("\n") + "\n" };
  }
  if (type === "BPE" && vocab && typeof vocab === "object" && Array.isArray(merges)) {
    const lines = merges.map((m) => (Array.isArray(m) ? m.join(" ") : String(m)));
    return { "vocab.json": JSON.stringify(vocab) + "\n", "merges.txt": ["#version: 0.2", ...lines].join("\n") + "\n" };
  }
  return {};
}

export const CLASS_FOR_FAMILY: Record<TokenizerFamily, string | undefined> = {
  bert: "BertTokenizer", gpt2: "GPT2Tokenizer", roberta: "RobertaTokenizer", other: undefined,
};

/** Entries of tokenizer_config.json's added_tokens_decoder: exactly AddedToken's fields, or transformers raises. */
export function addedTokensDecoder(added: AddedTokenJson[]): Record<string, Omit<AddedTokenJson, "id">> {
  const out: Record<string, Omit<AddedTokenJson, "id">> = {};
  for (const t of [...added].sort((a, b) => a.id - b.id)) {
    out[String(t.id)] = { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: t.special };
  }
  return out;
}
