// A labelled (or unlabelled) text-classification dataset from a file: the text / text-pair / label
// columns (named, or found), label names ↔ ids, the problem type, and the train / validation split.
import { DatasetError, TunekitError } from "../../errors";
import type { ProblemType } from "../../io/config";
import { tryParseJson } from "../../io/json_safe";
import type { ClassificationExample } from "./examples";
import { BadRows, checkFile, listNames, noExamples, show } from "./read";
import type { BadRow } from "./read";
import { checkReadOptions, detectFormat, readTable } from "./records";
import type { ReadOptions, Table } from "./records";
import { FixedLabels, asNumber, checkLabelList, labelName, sortedNames } from "./labels";
import { checkSeedOption, checkValidation, splitItems } from "./split";

export interface LoadDatasetOptions extends ReadOptions {
  /** Text column. Default: "text", else "sentence", else "sentence1" (with "sentence2" as the pair), else the only column of strings. */
  text?: string;
  /** Second text of a pair (NLI, paraphrase, similarity). */
  textPair?: string;
  /** Label column. Default "label" when there is one; without a label column the data is unlabelled. */
  label?: string;
  /** A fraction in [0, 1) of the file for a seeded stratified split (default 0.1; 0: none), a count >= 1,
   *  or the path of a validation file, read the same way. */
  validation?: number | string;
  /** Seed of the split (and of the `limit` sample). Default 42. */
  seed?: number;
  /** Label names in id order (e.g. a checkpoint's id2label). A value not among them is an error, except an
   *  integer id in range when no name is an integer. Default: the sorted set of labels in the data. */
  labels?: string[];
  /** Default: multi-label when labels are lists, regression when every label is a number and some are not
   *  integers, else single-label. */
  problemType?: ProblemType;
  /** Keep only this many training examples (after the split): a seeded sample stratified by class, in
   *  file order, for learning curves. */
  limit?: number;
}

export interface TextDataset {
  train: ClassificationExample[];
  validation: ClassificationExample[];
  /** Class names in id order; null for regression and for unlabelled data without `labels`. */
  labelNames: string[] | null;
  problemType: ProblemType;
  /** Malformed rows left out (onBadRow "skip"), of every file read. */
  skipped: BadRow[];
  /** Columns of the training file. */
  columns: string[];
  /** The columns used. */
  mapping: { text: string; textPair?: string; label?: string };
}

const PROBLEM_TYPES: ProblemType[] = ["single_label_classification", "regression", "multi_label_classification"];

const missing = (v: unknown) => v === undefined || v === null || (typeof v === "string" && v.trim() === "");

/** True when the column holds strings that are not all numbers (an id or a score column is not text). */
function isTextColumn(t: Table, c: string): boolean {
  let words = false;
  for (const r of t.records) {
    const v = r[c];
    if (missing(v)) continue;
    if (typeof v !== "string") return false;
    if (asNumber(v) === undefined) words = true;
  }
  return words;
}

function resolveColumns(t: Table, o: LoadDatasetOptions): TextDataset["mapping"] {
  const cols = t.columns;
  const need = (name: string, role: string) => {
    if (!cols.includes(name)) throw new DatasetError(`${t.file}: no column ${JSON.stringify(name)} for the ${role}; the columns are ${listNames(cols)}`);
  };
  let label = o.label;
  if (label !== undefined) need(label, "label");
  else if (cols.includes("label")) label = "label";
  let textPair = o.textPair;
  if (textPair !== undefined) need(textPair, "text pair");
  let text = o.text;
  if (text !== undefined) {
    need(text, "text");
  } else if (cols.includes("text") || cols.includes("sentence")) {
    text = cols.includes("text") ? "text" : "sentence";
  } else if (cols.includes("sentence1")) {
    text = "sentence1";
    if (textPair === undefined && cols.includes("sentence2")) textPair = "sentence2";
  } else {
    const candidates = cols.filter((c) => c !== label && c !== textPair && isTextColumn(t, c));
    if (candidates.length !== 1) {
      throw new DatasetError(`${t.file}: which column is the text? None is named "text" or "sentence", and ${candidates.length === 0 ? "no column holds text" : `${candidates.length} columns hold text (${listNames(candidates)})`}; pass text: "<column>" (the columns are ${listNames(cols)})`);
    }
    text = candidates[0];
  }
  if (text === label) throw new DatasetError(`${t.file}: column ${JSON.stringify(text)} cannot be both the text and the label`);
  if (textPair === text) throw new DatasetError(`${t.file}: column ${JSON.stringify(text)} cannot be both the text and the text pair`);
  return { text, ...(textPair !== undefined ? { textPair } : {}), ...(label !== undefined ? { label } : {}) };
}

interface Row {
  text: string;
  textPair?: string;
  raw: unknown;
  file: string;
  line: number;
}

/** Rows with their texts checked; a missing or empty text, or a missing label, is a bad row. */
function rowsOf(t: Table, m: TextDataset["mapping"], multi: boolean, bad: BadRows): Row[] {
  const out: Row[] = [];
  t.records.forEach((r, i) => {
    const line = t.lines[i];
    const texts: string[] = [];
    for (const [role, c] of [["text", m.text], ["text pair", m.textPair]] as const) {
      if (c === undefined) continue;
      const v = r[c];
      if (v === undefined || v === null) return bad.add(t.file, line, `missing value in column ${JSON.stringify(c)}, expected the ${role} (a non-empty string)`);
      if (typeof v !== "string") return bad.add(t.file, line, `column ${JSON.stringify(c)} holds ${show(v)}, expected the ${role} (a non-empty string)`);
      if (v.trim() === "") return bad.add(t.file, line, `empty ${role} in column ${JSON.stringify(c)}, expected a non-empty string`);
      texts.push(v);
    }
    let raw: unknown;
    if (m.label !== undefined) {
      raw = r[m.label];
      // An empty cell is "no label" for multi-label data (none of the classes applies), missing otherwise.
      if (raw === undefined || raw === null || (!multi && missing(raw))) {
        return bad.add(t.file, line, `missing value in column ${JSON.stringify(m.label)}, expected a label`);
      }
    }
    out.push({ text: texts[0], ...(m.textPair !== undefined ? { textPair: texts[1] } : {}), raw, file: t.file, line });
  });
  return out;
}

/** Multi-label values: a list, a JSON list in a string, or names separated by commas. */
function labelList(v: unknown): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  if (typeof v === "string") {
    const s = v.trim();
    if (s.startsWith("[")) {
      const r = tryParseJson(s);
      return "value" in r && Array.isArray(r.value) ? r.value : undefined;
    }
    return s === "" ? [] : s.split(",").map((x) => x.trim()).filter((x) => x !== "");
  }
  if (typeof v === "number" || typeof v === "boolean") return [v];
  return undefined;
}

function guessProblemType(rows: Row[], fixed: boolean): ProblemType {
  if (rows.some((r) => Array.isArray(r.raw))) return "multi_label_classification";
  if (fixed) return "single_label_classification";
  const nums = rows.map((r) => asNumber(r.raw));
  return nums.every((x) => x !== undefined) && nums.some((x) => !Number.isInteger(x)) ? "regression" : "single_label_classification";
}

function checkOptions(o: LoadDatasetOptions | undefined): void {
  const where = "loadDataset";
  for (const k of ["text", "textPair", "label"] as const) {
    if (o?.[k] !== undefined && (typeof o[k] !== "string" || o[k] === "")) throw new TunekitError(`${where}: ${k} must be a column name, got ${show(o[k])}`);
  }
  if (o?.problemType !== undefined && !PROBLEM_TYPES.includes(o.problemType)) {
    throw new TunekitError(`${where}: problemType must be one of ${PROBLEM_TYPES.map((p) => JSON.stringify(p)).join(", ")}, got ${show(o.problemType)}`);
  }
  if (o?.limit !== undefined && (!Number.isInteger(o.limit) || o.limit < 1)) throw new TunekitError(`${where}: limit must be an integer >= 1, got ${show(o.limit)}`);
}

/**
 * Reads a text-classification dataset (CSV/TSV, JSON lines, JSON, Parquet, or a .txt file of one text per
 * line): `train` and `validation` as ClassificationExample (label: the class name for single-label, a
 * number for regression, a list of class names for multi-label; absent when unlabelled).
 */
export async function loadDataset(file: string, o?: LoadDatasetOptions): Promise<TextDataset> {
  const where = "loadDataset";
  const { format, onBadRow } = checkReadOptions(o, where);
  checkOptions(o);
  const opts = o ?? {};
  const validation = checkValidation(opts.validation, where);
  const seed = checkSeedOption(opts.seed, where);
  const fixed = checkLabelList(opts.labels, where);
  checkFile(file);
  const bad = new BadRows(onBadRow);
  const trainTable = await readTable(file, format ?? detectFormat(file), bad);
  const mapping = resolveColumns(trainTable, opts);
  const tables = [trainTable];
  if (typeof validation === "string") {
    checkFile(validation, "a validation file");
    const v = await readTable(validation, format ?? detectFormat(validation), bad);
    for (const c of [mapping.text, mapping.textPair, mapping.label]) {
      if (c !== undefined && !v.columns.includes(c)) throw new DatasetError(`${validation}: no column ${JSON.stringify(c)} (the training file has it); the columns are ${listNames(v.columns)}`);
    }
    tables.push(v);
  }
  const multiAsked = opts.problemType === "multi_label_classification";
  const [trainRows, valRows = []] = tables.map((t) => rowsOf(t, mapping, multiAsked, bad));

  const labelled = mapping.label !== undefined;
  const problemType = opts.problemType ?? (labelled ? guessProblemType([...trainRows, ...valRows], fixed !== undefined) : "single_label_classification");
  const fixedLabels = fixed && problemType !== "regression" ? new FixedLabels(fixed) : undefined;
  const col = JSON.stringify(mapping.label);
  const toExample = (r: Row): ClassificationExample | undefined => {
    const ex: ClassificationExample = r.textPair !== undefined ? { text: r.text, textPair: r.textPair } : { text: r.text };
    if (!labelled) return ex;
    if (problemType === "regression") {
      const y = asNumber(r.raw);
      if (y === undefined) return void bad.add(r.file, r.line, `column ${col} holds ${show(r.raw)}, expected a number (regression)`);
      ex.label = y;
    } else if (problemType === "multi_label_classification") {
      const names = labelList(r.raw)?.map(labelName);
      if (names === undefined || names.some((n) => n === undefined)) {
        return void bad.add(r.file, r.line, `column ${col} holds ${show(r.raw)}, expected a list of labels (a JSON list, or names separated by commas)`);
      }
      ex.label = [...new Set(names.map((n) => (fixedLabels ? fixedLabels.resolve(n!, r.file, r.line) : n!)))];
    } else {
      const name = labelName(r.raw);
      if (name === undefined) {
        return void bad.add(r.file, r.line, `column ${col} holds ${show(r.raw)}, expected one label (a string or a number)${Array.isArray(r.raw) ? '; for several labels per example use problemType "multi_label_classification"' : ""}`);
      }
      ex.label = fixedLabels ? fixedLabels.resolve(name, r.file, r.line) : name;
    }
    return ex;
  };
  const defined = (e: ClassificationExample | undefined): e is ClassificationExample => e !== undefined;
  let train = trainRows.map(toExample).filter(defined);
  let val = valRows.map(toExample).filter(defined);
  if (train.length === 0) throw noExamples(file, bad);
  if (typeof validation === "string" && val.length === 0) throw noExamples(validation, bad);

  let labelNames: string[] | null = null;
  if (fixed && problemType !== "regression") labelNames = fixed;
  else if (labelled && problemType !== "regression") {
    const names = new Set<string>();
    for (const e of [train, val]) for (const x of e) for (const l of Array.isArray(x.label) ? x.label : [x.label]) names.add(String(l));
    labelNames = sortedNames(names);
  }

  // Stratified by class for single-label data; a plain seeded split otherwise (a score or a set of labels is no class).
  const classOf = (e: ClassificationExample) => (labelled && problemType === "single_label_classification" ? String(e.label) : "");
  if (typeof validation === "number") ({ train, validation: val } = splitItems(train, validation, seed, file, classOf));
  if (opts.limit !== undefined && opts.limit < train.length) {
    train = splitItems(train, opts.limit, seed, file, classOf).validation;
  }
  const skipped = [...bad.rows].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file === file ? -1 : 1));
  return { train, validation: val, labelNames, problemType, skipped, columns: trainTable.columns, mapping };
}
