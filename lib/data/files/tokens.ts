// Token-classification datasets (NER, POS) from CoNLL-style files or from records holding token
// lists, and question-answering datasets from SQuAD JSON; each with the seeded train / validation split.
import * as path from "path";
import { DatasetError, TunekitError } from "../../errors";
import { readSquad } from "./readers";
import type { QaExample, TokenClassificationExample } from "./examples";
import { BadRows, checkFile, listNames, noExamples, readText, show, splitLines } from "./read";
import type { BadRow } from "./read";
import { checkReadOptions, detectFormat, readTable } from "./records";
import type { FileFormat, Table } from "./records";
import { FixedLabels, checkLabelList, labelName, sortedNames } from "./labels";
import { checkSeedOption, checkValidation, splitItems } from "./split";

export interface TokenDatasetOptions {
  /** Default: "conll" for .conll/.txt/.tsv/.iob/.bio, else from the extension (jsonl, json, parquet). */
  format?: FileFormat;
  /** CoNLL column of the token (negative: from the end). Default 0. */
  tokenColumn?: number;
  /** CoNLL column of the tag. Default -1 (the last). A file of one column (tokens only) is unlabelled
   *  unless tagColumn is given. */
  tagColumn?: number;
  /** Fraction in [0, 1) (default 0.1) of the sentences for a seeded split, a count, or a validation file. */
  validation?: number | string;
  seed?: number;
  /** Tag names in id order; a tag not among them is an error (integer tags are taken as ids into it). */
  labels?: string[];
  onBadRow?: "skip" | "fail";
}

export interface TokenDataset {
  train: TokenClassificationExample[];
  validation: TokenClassificationExample[];
  /** Tag names in id order (sorted set of the tags seen, or `labels`); empty for unlabelled data. */
  labelNames: string[];
  skipped: BadRow[];
}

interface Sentence {
  words: string[];
  tags?: string[];
  /** Line of each tag, for the error on an unknown tag. */
  lines: number[];
  file: string;
}

const CONLL_EXTENSIONS = [".conll", ".txt", ".tsv", ".iob", ".bio"];

function tokenFormat(file: string, format: FileFormat | undefined): FileFormat {
  const f = format ?? (CONLL_EXTENSIONS.includes(path.extname(file).toLowerCase()) ? "conll" : detectFormat(file));
  if (!["conll", "jsonl", "json", "parquet"].includes(f)) {
    throw new DatasetError(`${file}: token-classification data must be CoNLL (token and tag columns) or JSON lines / JSON / Parquet records with token lists, got format ${JSON.stringify(f)}`);
  }
  return f;
}

/**
 * CoNLL: one token a line with whitespace-separated columns (tab-separated when the line has a tab),
 * a blank line between sentences, `-DOCSTART-` lines skipped. Every token line must have as many
 * columns as the first; a sentence with a malformed line is skipped whole under "skip".
 */
function readConllFile(file: string, tokenColumn: number, tagColumn: number | undefined, bad: BadRows): Sentence[] {
  const out: Sentence[] = [];
  let ncols = 0;
  let ncolsLine = 0;
  let tokAt = 0;
  let tagAt = -1;
  let cur: Sentence & { broken: boolean } = { words: [], lines: [], file, broken: false };
  const flush = () => {
    if (cur.words.length > 0 && !cur.broken) out.push(cur);
    cur = { words: [], lines: [], file, broken: false };
  };
  splitLines(readText(file)).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return flush();
    const f = line.includes("\t") ? line.split("\t") : line.split(/\s+/);
    if (f[0] === "-DOCSTART-") return flush();
    if (ncols === 0) {
      ncols = f.length;
      ncolsLine = i + 1;
      tokAt = tokenColumn < 0 ? ncols + tokenColumn : tokenColumn;
      tagAt = tagColumn === undefined ? (ncols === 1 ? -1 : ncols - 1) : tagColumn < 0 ? ncols + tagColumn : tagColumn;
      const range = (what: string, v: number, at: number) => {
        if (at < 0 || at >= ncols) throw new DatasetError(`${file}:${i + 1}: ${what} ${v} is out of range for the ${ncols} columns of this file; expected -${ncols}..${ncols - 1}`);
      };
      range("tokenColumn", tokenColumn, tokAt);
      if (tagColumn !== undefined) range("tagColumn", tagColumn, tagAt);
      if (tagAt === tokAt) throw new DatasetError(`${file}: tokenColumn and tagColumn are the same column (${tokAt}); expected different columns`);
    }
    if (f.length !== ncols) {
      cur.broken = true;
      return bad.add(file, i + 1, `expected ${ncols} whitespace-separated columns (as on line ${ncolsLine}), got ${f.length}: ${show(line)}`);
    }
    cur.words.push(f[tokAt]);
    if (tagAt >= 0) (cur.tags ??= []).push(f[tagAt]);
    cur.lines.push(i + 1);
  });
  flush();
  return out;
}

/** Records with a "tokens" (or "words") list and, when labelled, a "ner_tags" (or "tags") list of the same length. */
function sentencesOfRecords(t: Table, bad: BadRows): Sentence[] {
  const tokKey = ["tokens", "words"].find((k) => t.columns.includes(k));
  if (tokKey === undefined) throw new DatasetError(`${t.file}: no "tokens" or "words" column with the token lists; the columns are ${listNames(t.columns)}`);
  const tagKey = ["ner_tags", "tags"].find((k) => t.columns.includes(k));
  const out: Sentence[] = [];
  t.records.forEach((r, i) => {
    const line = t.lines[i];
    const words = r[tokKey];
    if (!Array.isArray(words) || words.length === 0 || words.some((w) => typeof w !== "string" || w === "")) {
      return bad.add(t.file, line, `column "${tokKey}" holds ${show(words)}, expected a non-empty list of non-empty strings`);
    }
    const s: Sentence = { words: words as string[], lines: words.map(() => line), file: t.file };
    if (tagKey !== undefined) {
      const tags = r[tagKey];
      const names = Array.isArray(tags) ? tags.map(labelName) : undefined;
      if (names === undefined || names.length !== words.length || names.some((n) => n === undefined)) {
        return bad.add(t.file, line, `column "${tagKey}" holds ${show(tags)}, expected a list of ${words.length} tags (strings or integers), one per token`);
      }
      s.tags = names as string[];
    }
    out.push(s);
  });
  return out;
}

async function readSentences(file: string, o: TokenDatasetOptions, format: FileFormat | undefined, bad: BadRows): Promise<Sentence[]> {
  checkFile(file);
  const f = tokenFormat(file, format);
  if (f === "conll") return readConllFile(file, o.tokenColumn ?? 0, o.tagColumn, bad);
  return sentencesOfRecords(await readTable(file, f, bad), bad);
}

/**
 * Reads a token-classification dataset: CoNLL (token and tag columns, `-DOCSTART-` skipped, a blank line
 * ends a sentence) or JSON lines / JSON / Parquet records with "tokens"/"words" and "ner_tags"/"tags" lists.
 * Tags are returned as names (integer tags become "0", "1", ... or, with `labels`, the names they index).
 */
export async function loadTokenDataset(file: string, o?: TokenDatasetOptions): Promise<TokenDataset> {
  const where = "loadTokenDataset";
  const { format, onBadRow } = checkReadOptions(o, where);
  const opts = o ?? {};
  for (const k of ["tokenColumn", "tagColumn"] as const) {
    if (opts[k] !== undefined && !Number.isInteger(opts[k])) throw new TunekitError(`${where}: ${k} must be an integer (negative counts from the last column), got ${show(opts[k])}`);
  }
  const validation = checkValidation(opts.validation, where);
  const seed = checkSeedOption(opts.seed, where);
  const fixed = checkLabelList(opts.labels, where);
  const bad = new BadRows(onBadRow);
  let train = await readSentences(file, opts, format, bad);
  let val = typeof validation === "string" ? await readSentences(validation, opts, format, bad) : [];
  if (train.length === 0) throw emptyTokens(file, bad);
  if (typeof validation === "string" && val.length === 0) throw emptyTokens(validation, bad);
  const labelled = train[0].tags !== undefined;
  for (const s of [...train, ...val]) {
    if ((s.tags !== undefined) !== labelled) throw new DatasetError(`${s.file}:${s.lines[0]}: this sentence ${labelled ? "has no tags" : "has tags"} but the first of ${file} ${labelled ? "has" : "has none"}; expected one layout`);
  }
  let labelNames: string[] = fixed ?? [];
  if (labelled) {
    if (fixed) {
      const map = new FixedLabels(fixed);
      for (const s of [...train, ...val]) s.tags = s.tags!.map((t, k) => map.resolve(t, s.file, s.lines[k]));
    } else {
      labelNames = sortedNames([...train, ...val].flatMap((s) => s.tags!));
    }
  }
  if (typeof validation === "number") ({ train, validation: val } = splitItems(train, validation, seed, file, () => ""));
  const plain = (s: Sentence): TokenClassificationExample => (s.tags ? { words: s.words, tags: s.tags } : { words: s.words });
  return { train: train.map(plain), validation: val.map(plain), labelNames, skipped: bad.rows };
}

function emptyTokens(file: string, bad: BadRows): DatasetError {
  return bad.rows.some((b) => b.file === file) ? noExamples(file, bad) : new DatasetError(`${file}: no sentences in the file; expected tokens one per line, sentences separated by blank lines`);
}

export interface QaDatasetOptions {
  /** Fraction in [0, 1) (default 0.1) or a count of the paragraphs for a seeded split, or a validation file. */
  validation?: number | string;
  seed?: number;
}

export interface QaDataset {
  train: QaExample[];
  validation: QaExample[];
}

/**
 * Reads SQuAD v1.1-style JSON. Without a validation file the split is by paragraph (all questions on
 * one context go to the same side), so no validation context was seen in training.
 */
export async function loadQaDataset(file: string, o?: QaDatasetOptions): Promise<QaDataset> {
  const where = "loadQaDataset";
  if (o !== undefined && (o === null || typeof o !== "object")) throw new TunekitError(`${where}: options must be an object, got ${show(o)}`);
  const validation = checkValidation(o?.validation, where);
  const seed = checkSeedOption(o?.seed, where);
  const read = (f: string, what: string) => {
    checkFile(f, what);
    const qa = readSquad(f);
    if (qa.length === 0) throw new DatasetError(`${f}: no questions in the file; expected SQuAD JSON with at least one question`);
    return qa;
  };
  const train = read(file, "a SQuAD JSON file");
  if (typeof validation === "string") return { train, validation: read(validation, "a SQuAD JSON validation file") };
  const contexts = [...new Set(train.map((q) => q.context))];
  const split = splitItems(contexts, validation, seed, file, () => "");
  const inVal = new Set(split.validation);
  return { train: train.filter((q) => !inVal.has(q.context)), validation: train.filter((q) => inVal.has(q.context)) };
}

