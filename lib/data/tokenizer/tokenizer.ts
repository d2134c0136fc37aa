// AutoTokenizer / Tokenizer: Hugging Face tokenizers from a checkpoint folder, run by the Rust
// `tokenizers` engine (npm package `tokenizers`, the same code Python's tokenizers runs), with
// transformers' batch encoding rules (truncation strategies, padding, overflow windows) on top.
// Why this engine and not @huggingface/tokenizers: TOKENIZERS.md (beside this file).
import * as fs from "fs";
import * as path from "path";
import * as engine from "tokenizers";
import { TunekitError } from "../../errors";
import { parseJson } from "../../io/json_safe";
import {
  loadTokenizerFiles, withAddPrefixSpace, writeFileAtomic, toConfigJson, vocabularyFiles, addedTokensDecoder,
  CLASS_FOR_FAMILY, SPECIAL_TOKEN_KEYS, NO_MAX_LENGTH,
} from "./files";
import type { LoadedFiles, TokenizerLoadOptions, SpecialTokenKey, TokenizerFamily, TokenizerSource, TokenizerJson } from "./files";
import { codePointToUtf16, toUtf16 } from "./offsets";
import { truncationTargets, windowRanges, windowPairs } from "./truncation";
import type { TruncationStrategy } from "./truncation";

export type PaddingStrategy = "longest" | "max_length";

export interface EncodeOptions {
  /** Add [CLS]/[SEP] (or <s>/</s>, ...) as the checkpoint's post-processor says. Default true. */
  addSpecialTokens?: boolean;
  /** true = "longest_first". Default false, except that a maxLength without padding "max_length" turns on
   *  "longest_first" (as transformers does). */
  truncation?: boolean | TruncationStrategy | "do_not_truncate";
  /** Length limit (special tokens included) for truncation and for padding "max_length"; default modelMaxLength. */
  maxLength?: number;
  /** true = "longest" (the longest row of the batch). Default false. */
  padding?: boolean | PaddingStrategy | "do_not_pad";
  /** Round the padded length up to a multiple of this (e.g. 8). */
  padToMultipleOf?: number;
  /** Inputs are lists of words (CoNLL tokens); word_ids then index those words and offsets index into each word.
   *  Each word is tokenized on its own, as tokenizers' pre-tokenized input is; byte-level BPE gives it a leading
   *  space ("Ġ") only with add_prefix_space (see addPrefixSpace). */
  isSplitIntoWords?: boolean;
  /** Byte-level BPE only: add a space before the text, or before every word of pre-split input, for this call
   *  (transformers' add_prefix_space=True). Default: the tokenizer's own addPrefixSpace. */
  addPrefixSpace?: boolean;
}

export interface BatchEncodeOptions extends EncodeOptions {
  /** With returnOverflowingTokens: tokens shared by consecutive windows (question answering over long contexts). */
  stride?: number;
  /** Keep what truncation cut off as extra rows (windows); overflow_to_sample_mapping says which input each row is from. */
  returnOverflowingTokens?: boolean;
}

/** One encoded sequence (or pair), with transformers' field names. */
export interface Encoding {
  input_ids: number[];
  attention_mask: number[];
  /** 0 for the first sequence and its specials, 1 for the second (BERT pairs). */
  token_type_ids: number[];
  /** 1 where the post-processor added a special token (and on padding). */
  special_tokens_mask: number[];
  /** [start, end) of each token as JS string (UTF-16) indices into the text it came from — the first text or the pair,
   *  as sequence_ids says; for isSplitIntoWords, into the word that word_ids names. [0, 0] for specials and padding. */
  offset_mapping: [number, number][];
  /** Index of the word each token belongs to (within its sequence); null for specials and padding. */
  word_ids: (number | null)[];
  /** 0 or 1: which input the token came from; null for specials and padding. */
  sequence_ids: (number | null)[];
  tokens: string[];
}

/** Many encodings, field by field (rows of equal length once padded). */
export type BatchEncoding = { [K in keyof Encoding]: Encoding[K][] } & {
  /** With returnOverflowingTokens: the input index each row came from. */
  overflow_to_sample_mapping?: number[];
};

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default: the checkpoint's clean_up_tokenization_spaces (" ." -> ".", " n't" -> "n't", ...). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface PadOptions {
  padding?: boolean | PaddingStrategy | "do_not_pad";
  maxLength?: number;
  padToMultipleOf?: number;
}

type TextInput = string | string[];
type BatchInput = TextInput | [TextInput, TextInput];
/** One input sequence: a text, or (isSplitIntoWords) its words, each with its code-point -> UTF-16 map. */
type Source = { text: string; map: Int32Array | null } | { words: string[]; maps: (Int32Array | null)[]; tokenWord: number[] };
/** The engines for one add_prefix_space value: `full` encodes; `words` (no post-processor) encodes the words of
 *  pre-split input, which `full` then post-processes once as a whole, as the Rust engine does pre-tokenized input. */
type Engines = { full: engine.Tokenizer; words: engine.Tokenizer | null };

interface Plan {
  addSpecialTokens: boolean;
  truncation: TruncationStrategy | null;
  maxLength: number | null;
  padding: PaddingStrategy | null;
  padToMultipleOf: number | null;
  stride: number;
  overflow: boolean;
  splitWords: boolean;
  /** The add_prefix_space to encode with; null when the tokenizer is not byte-level. */
  prefixSpace: boolean | null;
}

const ENCODING_KEYS = [
  "input_ids", "attention_mask", "token_type_ids", "special_tokens_mask", "offset_mapping", "word_ids", "sequence_ids", "tokens",
] as const;

function isInt(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= min;
}

function fail(where: string, msg: string): never {
  throw new TunekitError(`${where}: ${msg}`);
}

/** transformers' clean_up_tokenization: str.replace of each pattern, everywhere. */
function cleanUpTokenization(s: string): string {
  return s.replaceAll(" .", ".").replaceAll(" ?", "?").replaceAll(" !", "!").replaceAll(" ,", ",")
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

export class Tokenizer {
  /** The folder it was loaded from. */
  readonly dir: string;
  /** tokenizer.json, or the vocabulary files it was built from. */
  readonly source: TokenizerSource;
  readonly family: TokenizerFamily;
  /** Inputs the model takes (transformers' model_input_names): BERT adds token_type_ids. */
  readonly modelInputNames: string[];

  private engine: engine.Tokenizer;
  /** tokenizer.json as the main engine was built from it, for the engines of enginesFor. */
  private json: string;
  private engines = new Map<boolean, Engines>();
  /** Tokens added to the engine after it was built; engines built later get them too, in order (same ids). */
  private added: string[] = [];
  private config: Record<string, unknown>;
  private special: Partial<Record<SpecialTokenKey, string>>;
  private additionalSpecial: string[];
  private prefixSpace: boolean | null;
  private numSpecial = { single: 0, pair: 0 };
  private maxLen: number;
  private readonly loadedMaxLen: number;
  private padSide: "right" | "left";
  private truncSide: "right" | "left";

  private constructor(files: LoadedFiles, eng: engine.Tokenizer) {
    this.dir = files.dir;
    this.source = files.source;
    this.family = files.family;
    this.engine = eng;
    this.json = files.json;
    this.engines.set(files.addPrefixSpace ?? false, { full: eng, words: null });
    this.config = files.config;
    this.special = { ...files.special };
    this.additionalSpecial = [...files.additionalSpecial];
    this.prefixSpace = files.addPrefixSpace;
    this.maxLen = files.modelMaxLength;
    this.loadedMaxLen = files.modelMaxLength;
    this.padSide = files.config.padding_side === "left" ? "left" : "right";
    this.truncSide = files.config.truncation_side === "left" ? "left" : "right";
    const cls = typeof files.config.tokenizer_class === "string" ? files.config.tokenizer_class.replace(/Fast$/, "") : "";
    const withTypes = cls === "BertTokenizer" || (cls === "" && files.family === "bert");
    this.modelInputNames = withTypes ? ["input_ids", "token_type_ids", "attention_mask"] : ["input_ids", "attention_mask"];
  }

  /** Loads tokenizer.json, or builds it from vocab.txt (WordPiece) or vocab.json + merges.txt (byte-level BPE).
   *  options.addPrefixSpace overrides the tokenizer's own add_prefix_space, as from_pretrained's argument does. */
  static async fromPretrained(dir: string, options: TokenizerLoadOptions = {}): Promise<Tokenizer> {
    const files = loadTokenizerFiles(dir, options);
    let eng: engine.Tokenizer;
    try {
      eng = engine.Tokenizer.fromString(files.json);
    } catch (e) {
      throw new TunekitError(`cannot build a tokenizer from ${files.dir} (${files.source}): ${(e as Error).message}`);
    }
    const tok = new Tokenizer(files, eng);
    // Special tokens the vocabulary lacks are added as new tokens, as transformers does.
    tok.addSpecial(tok.allSpecialTokens.filter((t) => eng.tokenToId(t) === null));
    tok.numSpecial.single = (await eng.encode("", null, { addSpecialTokens: true })).getLength();
    tok.numSpecial.pair = (await eng.encode("", "", { addSpecialTokens: true })).getLength();
    return tok;
  }

  // ------------------------------------------------------------ vocabulary and special tokens

  /** Byte-level BPE (GPT-2, RoBERTa): whether a space is added before the text, and before each word of pre-split
   *  input, so that the first word is tokenized like any other ("Ġword"). transformers' add_prefix_space: the
   *  from_pretrained option, else tokenizer_config.json's, else false for GPT-2 / RoBERTa. null for other tokenizers. */
  get addPrefixSpace(): boolean | null {
    return this.prefixSpace;
  }

  /** Tokens in the vocabulary, added tokens included (Python's len(tokenizer)). */
  get vocabSize(): number {
    return this.engine.getVocabSize(true);
  }

  /** Length limit of the model: tokenizer_config.json's model_max_length, else config.json's position table size. */
  get modelMaxLength(): number {
    return this.maxLen;
  }
  set modelMaxLength(n: number) {
    if (!(n === Infinity || isInt(n, 1))) fail("Tokenizer.modelMaxLength", `expected an integer >= 1 or Infinity, got ${n}`);
    this.maxLen = n;
  }

  get paddingSide(): "right" | "left" {
    return this.padSide;
  }
  set paddingSide(side: "right" | "left") {
    if (side !== "right" && side !== "left") fail("Tokenizer.paddingSide", `expected "right" or "left", got ${JSON.stringify(side)}`);
    this.padSide = side;
  }

  get truncationSide(): "right" | "left" {
    return this.truncSide;
  }
  set truncationSide(side: "right" | "left") {
    if (side !== "right" && side !== "left") fail("Tokenizer.truncationSide", `expected "right" or "left", got ${JSON.stringify(side)}`);
    this.truncSide = side;
  }

  /** tokenizer_config.json's chat_template (or chat_template.jinja): one template, or several by name
   *  ({ default, tool_use, … }, from HF's list of {name, template}); null without one. Set it to give one. */
  get chatTemplate(): string | Record<string, string> | null {
    const t = this.config.chat_template;
    if (t === undefined || t === null) return null;
    if (typeof t === "string") return t;
    if (Array.isArray(t) && t.every((x) => x && typeof x.name === "string" && typeof x.template === "string"))
      return Object.fromEntries(t.map((x: { name: string; template: string }) => [x.name, x.template]));
    return fail("Tokenizer.chatTemplate", `${this.dir}: chat_template must be a string or a list of {name, template}, got ${JSON.stringify(t)?.slice(0, 60)}`);
  }
  set chatTemplate(t: string | Record<string, string> | null) {
    if (t === null) { delete this.config.chat_template; return; }
    if (typeof t === "string") { this.config.chat_template = t; return; }
    if (typeof t !== "object" || !Object.values(t).every((x) => typeof x === "string"))
      fail("Tokenizer.chatTemplate", "expected a template string, { name: template }, or null");
    this.config.chat_template = Object.entries(t).map(([name, template]) => ({ name, template }));
  }

  tokenToId(token: string): number | null {
    return this.engine.tokenToId(token);
  }

  idToToken(id: number): string | null {
    return this.engine.idToToken(id);
  }

  /** token -> id, added tokens included. */
  getVocab(): Record<string, number> {
    return this.engine.getVocab(true);
  }

  /** The special token for `key` (e.g. "pad_token"), or null. */
  specialToken(key: SpecialTokenKey): string | null {
    return this.special[key] ?? null;
  }

  specialTokenId(key: SpecialTokenKey): number | null {
    const t = this.special[key];
    return t === undefined ? null : this.engine.tokenToId(t);
  }

  /** Sets (or with null clears) a special token; one the vocabulary lacks is added as a new token (e.g. a pad token for GPT-2). */
  setSpecialToken(key: SpecialTokenKey, token: string | null): void {
    if (!(SPECIAL_TOKEN_KEYS as readonly string[]).includes(key)) fail("Tokenizer.setSpecialToken", `unknown key ${JSON.stringify(key)}, expected one of ${SPECIAL_TOKEN_KEYS.join(", ")}`);
    if (token === null) { delete this.special[key]; return; }
    if (typeof token !== "string" || token === "") fail("Tokenizer.setSpecialToken", `expected a non-empty string for ${key}, got ${JSON.stringify(token)}`);
    if (this.engine.tokenToId(token) === null) this.addSpecial([token]);
    this.special[key] = token;
  }

  get padToken(): string | null { return this.specialToken("pad_token"); }
  set padToken(t: string | null) { this.setSpecialToken("pad_token", t); }
  get padTokenId(): number | null { return this.specialTokenId("pad_token"); }
  get unkToken(): string | null { return this.specialToken("unk_token"); }
  get unkTokenId(): number | null { return this.specialTokenId("unk_token"); }
  get clsToken(): string | null { return this.specialToken("cls_token"); }
  get clsTokenId(): number | null { return this.specialTokenId("cls_token"); }
  get sepToken(): string | null { return this.specialToken("sep_token"); }
  get sepTokenId(): number | null { return this.specialTokenId("sep_token"); }
  get maskToken(): string | null { return this.specialToken("mask_token"); }
  get maskTokenId(): number | null { return this.specialTokenId("mask_token"); }
  get bosToken(): string | null { return this.specialToken("bos_token"); }
  get bosTokenId(): number | null { return this.specialTokenId("bos_token"); }
  get eosToken(): string | null { return this.specialToken("eos_token"); }
  get eosTokenId(): number | null { return this.specialTokenId("eos_token"); }

  /** Every special token (the named ones, then additional_special_tokens), without repeats. */
  get allSpecialTokens(): string[] {
    return [...new Set([...SPECIAL_TOKEN_KEYS.flatMap((k) => (this.special[k] === undefined ? [] : [this.special[k]!])), ...this.additionalSpecial])];
  }

  get allSpecialIds(): number[] {
    return this.allSpecialTokens.map((t) => this.engine.tokenToId(t)!);
  }

  /** How many special tokens encoding adds to one sequence or to a pair ([CLS] A [SEP] B [SEP]: 2 and 3). */
  numSpecialTokensToAdd(pair = false): number {
    return pair ? this.numSpecial.pair : this.numSpecial.single;
  }

  // ------------------------------------------------------------ encoding

  /** Tokens of `text` without special tokens. */
  async tokenize(text: string): Promise<string[]> {
    if (typeof text !== "string") fail("Tokenizer.tokenize", `expected a string, got ${typeof text}`);
    return (await this.encode(text, null, { addSpecialTokens: false })).tokens;
  }

  /** Encodes one text (or one text pair). */
  async encode(text: TextInput, pair?: TextInput | null, options: EncodeOptions = {}): Promise<Encoding> {
    const o = options as BatchEncodeOptions;
    if (o.stride !== undefined || o.returnOverflowingTokens !== undefined) {
      fail("Tokenizer.encode", "stride / returnOverflowingTokens give several rows: use encodeBatch");
    }
    const batch = await this.encodeBatch([pair === undefined || pair === null ? text : [text, pair]] as BatchInput[], options);
    const row = {} as Record<string, unknown>;
    for (const k of ENCODING_KEYS) row[k] = batch[k][0];
    return row as unknown as Encoding;
  }

  /** Encodes texts, or [text, pair] pairs (QA: [question, context]), with truncation / padding / overflow windows. */
  async encodeBatch(inputs: string[] | [string, string][] | string[][] | [string[], string[]][] | BatchInput[],
                    options: BatchEncodeOptions = {}): Promise<BatchEncoding> {
    const where = "Tokenizer.encodeBatch";
    if (!Array.isArray(inputs)) fail(where, `expected an array of texts or [text, pair] pairs, got ${typeof inputs}`);
    const plan = this.plan(options, where);
    const items = (inputs as BatchInput[]).map((x, i) => this.checkInput(x, i, plan.splitWords, where));
    const hasPair = items.some((x) => x.b !== null);
    const hasSingle = items.some((x) => x.b === null);
    this.checkLengths(plan, hasSingle, hasPair, where);
    if (plan.truncation === "only_second" && hasSingle) {
      fail(where, `truncation "only_second" needs [text, pair] inputs; input ${items.findIndex((x) => x.b === null)} is a single text`);
    }

    // The engine encodes whole inputs (it is never given truncation, so it holds no per-call state);
    // truncation then keeps the right tokens of each sequence around the special tokens.
    let encodings: engine.Encoding[];
    try {
      encodings = plan.splitWords ? await this.encodeWords(items, plan) : await this.encodeTexts(items, hasPair, plan);
    } catch (e) {
      throw new TunekitError(`${where}: ${(e as Error).message}`);
    }

    const rows: Encoding[] = [];
    const sampleOf: number[] = [];
    encodings.forEach((enc, i) => {
      const row = this.toRow(enc, items[i].a, items[i].b);
      const windows = plan.truncation === null ? [row] : this.truncateRow(row, items[i].b !== null, plan, i, where);
      for (const w of plan.overflow ? windows : windows.slice(0, 1)) {
        rows.push(w);
        sampleOf.push(i);
      }
    });
    if (plan.padding !== null) this.padRows(rows, plan, where);
    const out = {} as Record<string, unknown>;
    for (const k of ENCODING_KEYS) out[k] = rows.map((r) => r[k]);
    if (plan.overflow) out.overflow_to_sample_mapping = sampleOf;
    return out as BatchEncoding;
  }

  /** Pads already-encoded rows (a data collator's dynamic padding): fields other rows lack are left out. */
  pad(features: (Partial<Encoding> & { input_ids: number[] })[], options: PadOptions = {}): BatchEncoding {
    const where = "Tokenizer.pad";
    if (!Array.isArray(features) || features.some((f) => !f || !Array.isArray(f.input_ids))) {
      fail(where, "expected an array of encodings, each with input_ids");
    }
    const plan = this.plan({ padding: options.padding ?? true, maxLength: options.maxLength, padToMultipleOf: options.padToMultipleOf, truncation: false }, where);
    const keys = ENCODING_KEYS.filter((k) => k === "attention_mask" || features.every((f) => f[k] !== undefined));
    const rows = features.map((f) => {
      const r = {} as Record<string, unknown[]>;
      for (const k of keys) {
        const v = k === "attention_mask" && f.attention_mask === undefined ? f.input_ids.map(() => 1) : f[k]!;
        if (v.length !== f.input_ids.length) fail(where, `${k} has ${v.length} entries but input_ids has ${f.input_ids.length}`);
        r[k] = [...v];
      }
      return r as unknown as Encoding;
    });
    if (plan.padding !== null) this.padRows(rows, plan, where, keys);
    const out = {} as Record<string, unknown>;
    for (const k of keys) out[k] = rows.map((r) => r[k]);
    return out as BatchEncoding;
  }

  // ------------------------------------------------------------ decoding

  async decode(ids: ArrayLike<number>, options: DecodeOptions = {}): Promise<string> {
    return (await this.decodeBatch([ids], options))[0];
  }

  async decodeBatch(batch: ArrayLike<number>[], options: DecodeOptions = {}): Promise<string[]> {
    const where = "Tokenizer.decode";
    if (!Array.isArray(batch)) fail(where, "expected an array of id lists");
    const n = this.vocabSize;
    const lists = batch.map((ids, r) => {
      if (!ids || typeof ids.length !== "number") fail(where, `row ${r}: expected an array of token ids`);
      const out = Array.from(ids);
      out.forEach((id, i) => {
        if (!isInt(id, 0) || id >= n) fail(where, `row ${r}, position ${i}: id ${id} is not a token id (expected an integer in [0, ${n}))`);
      });
      return out;
    });
    const texts = await this.engine.decodeBatch(lists, !!options.skipSpecialTokens);
    const cleanup = options.cleanUpTokenizationSpaces ?? this.config.clean_up_tokenization_spaces === true;
    return cleanup ? texts.map(cleanUpTokenization) : texts;
  }

  // ------------------------------------------------------------ saving

  /** Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and the vocabulary files (vocab.txt, or
   *  vocab.json + merges.txt) under their Hugging Face names, so transformers loads the folder. Returns the files written. */
  async save(dir: string): Promise<string[]> {
    if (typeof dir !== "string" || dir === "") fail("Tokenizer.save", `expected a directory path, got ${JSON.stringify(dir)}`);
    const out = path.resolve(dir);
    fs.mkdirSync(out, { recursive: true });
    const tjPath = path.join(out, "tokenizer.json");
    const tmp = `${tjPath}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    this.engine.save(tmp, true);
    const text = fs.readFileSync(tmp, "utf8");
    const fd = fs.openSync(tmp, "r+");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, tjPath);
    const saved = parseJson(text, tjPath) as TokenizerJson;
    const written = [tjPath];
    const put = (name: string, data: string) => { writeFileAtomic(path.join(out, name), data); written.push(path.join(out, name)); };

    const specialMap: Record<string, unknown> = {};
    for (const k of SPECIAL_TOKEN_KEYS) if (this.special[k] !== undefined) specialMap[k] = this.special[k];
    if (this.additionalSpecial.length > 0) specialMap.additional_special_tokens = [...this.additionalSpecial];
    const config: Record<string, unknown> = { ...this.config };
    for (const k of SPECIAL_TOKEN_KEYS) delete config[k];
    delete config.additional_special_tokens;
    Object.assign(config, specialMap);
    config.added_tokens_decoder = addedTokensDecoder(saved.added_tokens ?? []);
    // Keep the file's value (often HF's "no limit" 1e30) unless it was absent or changed here.
    if (config.model_max_length === undefined || this.maxLen !== this.loadedMaxLen) {
      config.model_max_length = Number.isFinite(this.maxLen) ? this.maxLen : NO_MAX_LENGTH;
    }
    config.padding_side = this.padSide;
    if (this.truncSide !== "right" || config.truncation_side !== undefined) config.truncation_side = this.truncSide;
    if (config.tokenizer_class === undefined && CLASS_FOR_FAMILY[this.family]) config.tokenizer_class = CLASS_FOR_FAMILY[this.family];
    if (config.clean_up_tokenization_spaces === undefined) config.clean_up_tokenization_spaces = false;
    // Stated, not left to defaults: it decides how GPT-2 / RoBERTa tokenize pre-split words.
    if (this.prefixSpace !== null) config.add_prefix_space = this.prefixSpace;
    put("tokenizer_config.json", toConfigJson(config));
    put("special_tokens_map.json", JSON.stringify(specialMap, null, 2) + "\n");
    for (const [name, data] of Object.entries(vocabularyFiles(saved))) put(name, data);
    return written;
  }

  // ------------------------------------------------------------ internals

  /** Adds tokens to every engine built so far, and remembers them for the engines built later. */
  private addSpecial(tokens: string[]): void {
    if (tokens.length === 0) return;
    this.added.push(...tokens);
    for (const e of this.engines.values()) for (const eng of [e.full, e.words]) eng?.addSpecialTokens(tokens);
  }

  /** The engines for one add_prefix_space value (built on first use from tokenizer.json with that value). */
  private enginesFor(prefixSpace: boolean | null, words: boolean): { full: engine.Tokenizer; words: engine.Tokenizer } {
    const key = prefixSpace ?? false;
    let e = this.engines.get(key);
    if (e && (e.words || !words)) return e as { full: engine.Tokenizer; words: engine.Tokenizer };
    const parsed = parseJson(this.json, "tokenizer.json") as TokenizerJson;
    const json = prefixSpace === null || prefixSpace === this.prefixSpace ? parsed : withAddPrefixSpace(parsed, prefixSpace);
    const build = (j: TokenizerJson) => {
      const eng = engine.Tokenizer.fromString(JSON.stringify(j));
      if (this.added.length > 0) eng.addSpecialTokens(this.added);
      return eng;
    };
    if (!e) {
      e = { full: build(json), words: null };
      this.engines.set(key, e);
    }
    if (words && !e.words) e.words = build({ ...json, post_processor: null });
    return e as { full: engine.Tokenizer; words: engine.Tokenizer };
  }

  private async encodeTexts(items: { a: Source; b: Source | null }[], hasPair: boolean, plan: Plan): Promise<engine.Encoding[]> {
    const eng = this.enginesFor(plan.prefixSpace, false).full;
    const opts = { addSpecialTokens: plan.addSpecialTokens };
    const text = (s: Source) => ("text" in s ? s.text : "");
    return hasPair
      ? Promise.all(items.map((x) => eng.encode(text(x.a), x.b === null ? null : text(x.b), opts)))
      : eng.encodeBatch(items.map((x) => text(x.a)), opts);
  }

  /**
   * Pre-split input as tokenizers encodes pre-tokenized sequences (`encode_single_sequence`): every word is normalized,
   * pre-tokenized and tokenized on its own (so BPE never merges across words, and ByteLevel adds "Ġ" to each word only
   * with add_prefix_space), the words' encodings are concatenated with offsets left relative to each word, and the
   * post-processor (special tokens; RoBERTa's offset trimming) runs once on the whole sequence. The npm binding cannot
   * take pre-tokenized input, so this runs those steps through its public calls.
   */
  private async encodeWords(items: { a: Source; b: Source | null }[], plan: Plan): Promise<engine.Encoding[]> {
    const { full, words } = this.enginesFor(plan.prefixSpace, true);
    const all = items.flatMap((x) => [x.a, ...(x.b ? [x.b] : [])].flatMap((s) => ("words" in s ? s.words : [])));
    const encoded = all.length > 0 ? await words.encodeBatch(all, { addSpecialTokens: false }) : [];
    let next = 0;
    const sequence = (s: Source) => {
      if (!("words" in s)) throw new Error("isSplitIntoWords input without words");
      const mine = encoded.slice(next, next += s.words.length);
      s.tokenWord = mine.flatMap((e, k) => new Array<number>(e.getLength()).fill(k));
      return engine.mergeEncodings(mine, false);
    };
    return items.map((x) => {
      const a = sequence(x.a);
      return full.postProcess(a, x.b === null ? null : sequence(x.b), plan.addSpecialTokens);
    });
  }

  private plan(o: BatchEncodeOptions, where: string): Plan {
    if (o === null || typeof o !== "object") fail(where, `options must be an object, got ${o === null ? "null" : typeof o}`);
    const known = ["addSpecialTokens", "truncation", "maxLength", "padding", "padToMultipleOf", "isSplitIntoWords", "addPrefixSpace", "stride", "returnOverflowingTokens"];
    for (const k of Object.keys(o)) if (!known.includes(k)) fail(where, `unknown option ${JSON.stringify(k)}, expected one of ${known.join(", ")}`);
    if (o.maxLength !== undefined && !isInt(o.maxLength, 1)) fail(where, `maxLength must be an integer >= 1, got ${o.maxLength}`);
    if (o.padToMultipleOf !== undefined && !isInt(o.padToMultipleOf, 1)) fail(where, `padToMultipleOf must be an integer >= 1, got ${o.padToMultipleOf}`);
    if (o.stride !== undefined && !isInt(o.stride, 0)) fail(where, `stride must be an integer >= 0, got ${o.stride}`);
    if (o.addPrefixSpace !== undefined) {
      if (typeof o.addPrefixSpace !== "boolean") fail(where, `addPrefixSpace must be true or false, got ${JSON.stringify(o.addPrefixSpace)}`);
      if (this.prefixSpace === null) fail(where, `addPrefixSpace applies to byte-level BPE tokenizers (GPT-2, RoBERTa); ${this.dir} has no ByteLevel pre-tokenizer`);
    }

    let padding: PaddingStrategy | null;
    if (o.padding === undefined || o.padding === false || o.padding === "do_not_pad") padding = null;
    else if (o.padding === true || o.padding === "longest") padding = "longest";
    else if (o.padding === "max_length") padding = "max_length";
    else fail(where, `padding must be true, false, "longest", "max_length" or "do_not_pad", got ${JSON.stringify(o.padding)}`);

    let truncation: TruncationStrategy | null;
    if (o.truncation === undefined) truncation = o.maxLength !== undefined && padding !== "max_length" ? "longest_first" : null;
    else if (o.truncation === false || o.truncation === "do_not_truncate") truncation = null;
    else if (o.truncation === true) truncation = "longest_first";
    else if (o.truncation === "longest_first" || o.truncation === "only_first" || o.truncation === "only_second") truncation = o.truncation;
    else fail(where, `truncation must be true, false, "longest_first", "only_first", "only_second" or "do_not_truncate", got ${JSON.stringify(o.truncation)}`);

    const needsLength = truncation !== null || padding === "max_length";
    const maxLength = o.maxLength ?? (needsLength && Number.isFinite(this.maxLen) ? this.maxLen : null);
    if (needsLength && maxLength === null) {
      fail(where, `${truncation !== null ? "truncation" : 'padding "max_length"'} needs maxLength: this tokenizer has no model_max_length`);
    }
    if (padding !== null && this.padTokenId === null) {
      fail(where, `asked to pad but the tokenizer has no pad token (${this.dir}); set one, e.g. tokenizer.padToken = tokenizer.eosToken`);
    }
    const overflow = !!o.returnOverflowingTokens;
    if (overflow && truncation === null) fail(where, "returnOverflowingTokens needs truncation (and maxLength)");
    if (o.stride !== undefined && o.stride > 0 && !overflow) fail(where, "stride is only used with returnOverflowingTokens: true");
    return {
      addSpecialTokens: o.addSpecialTokens === undefined ? true : !!o.addSpecialTokens,
      truncation, maxLength, padding, padToMultipleOf: o.padToMultipleOf ?? null,
      stride: o.stride ?? 0, overflow, splitWords: !!o.isSplitIntoWords,
      prefixSpace: this.prefixSpace === null ? null : o.addPrefixSpace ?? this.prefixSpace,
    };
  }

  /** Max length must leave room for text after the special tokens, and the stride must fit in it (the engine aborts otherwise). */
  private checkLengths(plan: Plan, single: boolean, pair: boolean, where: string): void {
    if (plan.truncation === null || plan.maxLength === null) return;
    for (const [present, isPair] of [[single, false], [pair, true]] as const) {
      if (!present) continue;
      const specials = plan.addSpecialTokens ? this.numSpecialTokensToAdd(isPair) : 0;
      const room = plan.maxLength - specials;
      const what = isPair ? "a pair" : "a single text";
      if (room < 1) fail(where, `maxLength ${plan.maxLength} leaves no room for text: ${specials} special tokens are added to ${what}`);
      if (plan.stride >= room) {
        fail(where, `stride ${plan.stride} must be smaller than maxLength minus the ${specials} special tokens of ${what} (${room})`);
      }
    }
  }

  private checkInput(x: BatchInput, i: number, splitWords: boolean, where: string): { a: Source; b: Source | null } {
    const isWords = (v: unknown): v is string[] => Array.isArray(v) && v.every((w) => typeof w === "string");
    const source = (v: unknown, what: string): Source => {
      if (splitWords) {
        if (!isWords(v)) fail(where, `input ${i}${what}: with isSplitIntoWords expected an array of words (strings)`);
        return { words: v, maps: v.map(codePointToUtf16), tokenWord: [] };
      }
      if (typeof v !== "string") fail(where, `input ${i}${what}: expected a string, got ${Array.isArray(v) ? "an array" : typeof v}`);
      return { text: v, map: codePointToUtf16(v) };
    };
    if (splitWords) {
      if (isWords(x)) return { a: source(x, ""), b: null };
      if (Array.isArray(x) && x.length === 2 && isWords(x[0]) && isWords(x[1])) return { a: source(x[0], ""), b: source(x[1], " (pair)") };
      fail(where, `input ${i}: with isSplitIntoWords expected an array of words or a pair [words, words]`);
    }
    if (typeof x === "string") return { a: source(x, ""), b: null };
    if (Array.isArray(x) && x.length === 2) return { a: source(x[0], ""), b: source(x[1], " (pair)") };
    fail(where, `input ${i}: expected a string or a [text, pair] array of two strings, got ${JSON.stringify(x)?.slice(0, 80)}`);
  }

  /** The main row and the overflow windows of one encoded input, as tokenizers' truncation makes them. */
  private truncateRow(row: Encoding, isPair: boolean, plan: Plan, index: number, where: string): Encoding[] {
    const pos: number[] = new Array(row.input_ids.length); // index within its own sequence; -1 for specials
    let lenA = 0;
    let lenB = 0;
    row.sequence_ids.forEach((s, p) => { pos[p] = s === 0 ? lenA++ : s === 1 ? lenB++ : -1; });
    const room = plan.maxLength! - (plan.addSpecialTokens ? this.numSpecialTokensToAdd(isPair) : 0);
    const how = `truncation "${plan.truncation}", maxLength ${plan.maxLength}`;
    const target = truncationTargets(lenA, isPair ? lenB : null, room, plan.truncation!);
    if (typeof target === "string") fail(where, `input ${index}: ${target} (${how})`);
    let winA: [number, number][];
    let winB: [number, number][];
    try {
      winA = windowRanges(lenA, target.a, plan.stride, this.truncSide);
      winB = windowRanges(lenB, target.b ?? lenB, plan.stride, this.truncSide);
    } catch (e) {
      fail(where, `input ${index}: ${(e as Error).message} of a sequence (${how}); lower the stride`);
    }
    return windowPairs(winA.length, winB.length).map(([i, j]) => {
      const keep = (p: number) => {
        const s = row.sequence_ids[p];
        const [lo, hi] = s === 0 ? winA[i] : s === 1 ? winB[j] : [0, 0];
        return s === null || (pos[p] >= lo && pos[p] < hi);
      };
      const out = {} as Record<string, unknown[]>;
      for (const k of ENCODING_KEYS) out[k] = (row[k] as unknown[]).filter((_, p) => keep(p));
      return out as unknown as Encoding;
    });
  }

  private toRow(enc: engine.Encoding, a: Source, b: Source | null): Encoding {
    const ids = enc.getIds();
    const seq = enc.getSequenceIds();
    const offsets = enc.getOffsets();
    const words = enc.getWordIds();
    const n = ids.length;
    const seen = [0, 0]; // tokens of each sequence so far
    const offset_mapping: [number, number][] = new Array(n);
    const word_ids: (number | null)[] = new Array(n);
    const sequence_ids: (number | null)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const s = seq[i] ?? null;
      sequence_ids[i] = s;
      const src = s === 1 ? b : s === 0 ? a : null;
      if (src === null) {
        offset_mapping[i] = [0, 0];
        word_ids[i] = null;
        continue;
      }
      const [start, end] = offsets[i];
      if ("text" in src) {
        offset_mapping[i] = [toUtf16(src.map, start), toUtf16(src.map, end)];
        word_ids[i] = words[i] ?? null;
        continue;
      }
      // Pre-split: the sequence's tokens are its words' tokens in order; offsets are already within the word.
      const k = src.tokenWord[seen[s!]++];
      offset_mapping[i] = [toUtf16(src.maps[k], start), toUtf16(src.maps[k], end)];
      word_ids[i] = k;
    }
    return {
      input_ids: ids,
      attention_mask: enc.getAttentionMask(),
      token_type_ids: enc.getTypeIds(),
      special_tokens_mask: enc.getSpecialTokensMask(),
      offset_mapping,
      word_ids,
      sequence_ids,
      tokens: enc.getTokens(),
    };
  }

  private padRows(rows: Encoding[], plan: Plan, where: string, keys: readonly (keyof Encoding)[] = ENCODING_KEYS): void {
    let target = plan.padding === "max_length" ? plan.maxLength! : Math.max(0, ...rows.map((r) => r.input_ids.length));
    if (plan.padToMultipleOf !== null) target = Math.ceil(target / plan.padToMultipleOf) * plan.padToMultipleOf;
    const padId = this.padTokenId;
    if (padId === null) fail(where, "asked to pad but the tokenizer has no pad token");
    const padToken = this.special.pad_token!;
    const fill: { [K in keyof Encoding]: Encoding[K][number] } = {
      input_ids: padId, attention_mask: 0, token_type_ids: 0, special_tokens_mask: 1, offset_mapping: [0, 0],
      word_ids: null, sequence_ids: null, tokens: padToken,
    };
    for (const r of rows) {
      const extra = target - r.input_ids.length;
      if (extra <= 0) continue;
      for (const k of keys) {
        const col = r[k] as unknown[];
        const pad: unknown[] = Array.from({ length: extra }, () => (k === "offset_mapping" ? [0, 0] : fill[k]));
        (r as unknown as Record<string, unknown[]>)[k] = this.padSide === "right" ? col.concat(pad) : pad.concat(col);
      }
    }
  }
}

/** `AutoTokenizer.fromPretrained(dir)`, as in transformers. */
export const AutoTokenizer = {
  fromPretrained(dir: string, options: TokenizerLoadOptions = {}): Promise<Tokenizer> {
    return Tokenizer.fromPretrained(dir, options);
  },
};
