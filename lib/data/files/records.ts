// Tabular files → records (one object per row, column name → value): CSV/TSV with a header row,
// JSON lines, a JSON array of objects, Parquet (hyparquet), and plain text (one record per line).
// Every record keeps the line it came from, so later checks (a missing label, an unknown class)
// can name file:line too.
import * as fs from "fs";
import * as path from "path";
import { DatasetError, TunekitError } from "../../errors";
import { parseJson, tryParseJson } from "../../io/json_safe";
import {
  BadRows, checkFile, readText, splitLines, parseDelimited, jsonArrayElementOffsets, linesOfOffsets, show, listNames,
} from "./read";
import type { BadRow, OnBadRow } from "./read";
import { checkParquetPages } from "./parquet";
import type { ReadPageHeader } from "./parquet";

export type { BadRow } from "./read";

export type FileFormat = "csv" | "tsv" | "jsonl" | "json" | "parquet" | "conll" | "squad" | "text";
export const FILE_FORMATS: readonly FileFormat[] = ["csv", "tsv", "jsonl", "json", "parquet", "conll", "squad", "text"];

export interface ReadOptions {
  /** Default: from the extension (see detectFormat). */
  format?: FileFormat;
  /** What a malformed row does: "fail" (default) throws `file:line: ...`; "skip" leaves it out and lists it in `skipped`. */
  onBadRow?: "skip" | "fail";
}

const EXTENSIONS: Record<string, FileFormat> = {
  ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
  ".conll": "conll", ".txt": "text",
};

/**
 * The format of a file from its extension: .csv, .tsv, .jsonl / .ndjson, .json, .parquet, .conll, .txt
 * (plain text). A .json file whose top level is an object with "paragraphs" inside (looked for in the
 * first 64 KiB) is "squad". CoNLL data in a .txt file needs format "conll" (loadTokenDataset assumes it).
 */
export function detectFormat(file: string): FileFormat {
  if (typeof file !== "string") throw new TunekitError(`detectFormat: expected a file path, got ${show(file)}`);
  const ext = path.extname(file).toLowerCase();
  const format = EXTENSIONS[ext];
  if (format === undefined) {
    throw new DatasetError(`${file}: unknown file extension ${JSON.stringify(ext)}; expected one of ${Object.keys(EXTENSIONS).join(" ")} (or pass format: ${FILE_FORMATS.map((f) => JSON.stringify(f)).join(" | ")})`);
  }
  if (format === "json" && looksLikeSquad(file)) return "squad";
  return format;
}

function looksLikeSquad(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, "r");
    const buf = Buffer.alloc(65536);
    const head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString("utf8").replace(/^\uFEFF/, "");
    return /^\s*\{/.test(head) && /"paragraphs"\s*:/.test(head);
  } catch {
    return false; // a missing file is reported by the reader
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function checkReadOptions(o: ReadOptions | undefined, where: string): { format?: FileFormat; onBadRow: OnBadRow } {
  if (o !== undefined && (o === null || typeof o !== "object")) throw new TunekitError(`${where}: options must be an object, got ${show(o)}`);
  const onBadRow = o?.onBadRow ?? "fail";
  if (onBadRow !== "skip" && onBadRow !== "fail") throw new TunekitError(`${where}: onBadRow must be "skip" or "fail", got ${show(onBadRow)}`);
  if (o?.format !== undefined && !FILE_FORMATS.includes(o.format)) {
    throw new TunekitError(`${where}: format must be one of ${FILE_FORMATS.map((f) => JSON.stringify(f)).join(", ")}, got ${show(o.format)}`);
  }
  return { format: o?.format, onBadRow };
}

/** Records with the line each starts on. */
export interface Table {
  file: string;
  format: FileFormat;
  columns: string[];
  records: Record<string, unknown>[];
  lines: number[];
}

/** readRecords with the line of each record; malformed rows go to `bad`. */
export async function readTable(file: string, format: FileFormat, bad: BadRows): Promise<Table> {
  checkFile(file);
  const t: Table = { file, format, columns: [], records: [], lines: [] };
  switch (format) {
    case "csv":
    case "tsv":
      readDelimited(t, format === "csv" ? "," : "\t", bad);
      break;
    case "jsonl":
      readJsonLines(t, bad);
      break;
    case "json":
      readJsonArray(t, bad);
      break;
    case "parquet":
      await readParquet(t);
      break;
    case "text":
      splitLines(readText(file)).forEach((line, i) => {
        if (line.trim() === "") return;
        t.records.push({ text: line });
        t.lines.push(i + 1);
      });
      t.columns = ["text"];
      break;
    case "conll":
      throw new DatasetError(`${file}: CoNLL files hold sentences of tagged tokens, not records; read them with loadTokenDataset`);
    case "squad":
      throw new DatasetError(`${file}: SQuAD JSON holds questions nested in articles, not records; read it with loadQaDataset`);
  }
  if (t.records.length === 0) {
    const skipped = bad.rows.filter((r) => r.file === file).length;
    throw new DatasetError(`${file}: no ${format === "text" ? "non-empty lines" : "records"} in the file${skipped ? ` (${skipped} malformed rows skipped)` : ""}; expected at least one`);
  }
  return t;
}

/**
 * Reads a CSV/TSV (header row; quoted fields, embedded newlines, BOM and CRLF handled), JSON lines
 * (one object a line), a JSON array of objects (or {"data": [...]}), a Parquet file, or a text file
 * (one record {text} per non-empty line). CSV/TSV values are strings; JSON and Parquet keep their
 * types (Parquet INT64 → number when exact, else string). `columns` are in file order (JSON lines:
 * in order of first appearance).
 */
export async function readRecords(file: string, o?: ReadOptions): Promise<{ columns: string[]; records: Record<string, unknown>[]; skipped: BadRow[] }> {
  const opts = checkReadOptions(o, "readRecords");
  checkFile(file);
  const bad = new BadRows(opts.onBadRow);
  const t = await readTable(file, opts.format ?? detectFormat(file), bad);
  return { columns: t.columns, records: t.records, skipped: bad.rows };
}

function readDelimited(t: Table, delimiter: "," | "\t", bad: BadRows): void {
  const rows = parseDelimited(readText(t.file), delimiter, t.file);
  if (rows.length === 0) throw new DatasetError(`${t.file}: empty file, expected a header row naming the columns`);
  if (rows[0].error) throw new DatasetError(`${t.file}:${rows[0].line}: in the header row: ${rows[0].error}`);
  const header = rows[0].fields;
  const seen = new Set<string>();
  t.columns = header.map((h, i) => {
    const name = h.trim() === "" ? `Unnamed: ${i}` : h; // pandas' name for a column without a header (e.g. a saved index)
    if (seen.has(name)) throw new DatasetError(`${t.file}:${rows[0].line}: column ${JSON.stringify(name)} appears twice in the header; expected distinct column names`);
    seen.add(name);
    return name;
  });
  const sep = delimiter === "," ? "comma" : "tab";
  for (let r = 1; r < rows.length; r++) {
    const { fields, line, error } = rows[r];
    if (error !== undefined) {
      bad.add(t.file, line, error);
      continue;
    }
    if (fields.length !== header.length) {
      bad.add(t.file, line, `expected ${header.length} ${sep}-separated fields (${listNames(t.columns, 8)}), got ${fields.length}`);
      continue;
    }
    const rec: Record<string, unknown> = {};
    for (let k = 0; k < fields.length; k++) {
      // A column named "__proto__" is an own field, as JSON.parse makes it, not the object's prototype.
      if (t.columns[k] === "__proto__") Object.defineProperty(rec, "__proto__", { value: fields[k], enumerable: true, writable: true, configurable: true });
      else rec[t.columns[k]] = fields[k];
    }
    t.records.push(rec);
    t.lines.push(line);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

function addColumns(t: Table, seen: Set<string>, rec: Record<string, unknown>): void {
  for (const k of Object.keys(rec)) {
    if (!seen.has(k)) {
      seen.add(k);
      t.columns.push(k);
    }
  }
}

function readJsonLines(t: Table, bad: BadRows): void {
  const seen = new Set<string>();
  splitLines(readText(t.file)).forEach((line, i) => {
    if (line.trim() === "") return;
    const r = tryParseJson(line);
    if (!("value" in r)) return bad.add(t.file, i + 1, r.at < 0 ? r.problem : `${r.problem}; expected one JSON object per line`);
    const v = r.value;
    if (!isRecord(v)) return bad.add(t.file, i + 1, `expected a JSON object per line, got ${show(v)}`);
    addColumns(t, seen, v);
    t.records.push(v);
    t.lines.push(i + 1);
  });
}

function readJsonArray(t: Table, bad: BadRows): void {
  const text = readText(t.file);
  const doc = parseJson(text, t.file, DatasetError);
  let items: unknown[];
  let key: string | undefined;
  if (Array.isArray(doc)) {
    items = doc;
  } else if (isRecord(doc) && Array.isArray(doc.data)) {
    if (doc.data.some((a) => isRecord(a) && Array.isArray(a.paragraphs))) {
      throw new DatasetError(`${t.file}: this is SQuAD JSON (articles with "paragraphs"), not records; read it with loadQaDataset (format "squad")`);
    }
    items = doc.data;
    key = "data";
  } else {
    throw new DatasetError(`${t.file}: expected a JSON array of objects (or an object with a "data" array of them), got ${isRecord(doc) ? `an object with keys ${listNames(Object.keys(doc), 8)}` : show(doc)}`);
  }
  const lines = linesOfOffsets(text, jsonArrayElementOffsets(text, key));
  const seen = new Set<string>();
  items.forEach((v, i) => {
    const line = lines[i] ?? 1;
    if (!isRecord(v)) return bad.add(t.file, line, `record ${i} of the array: expected a JSON object, got ${show(v)}`);
    addColumns(t, seen, v);
    t.records.push(v);
    t.lines.push(line);
  });
}

// ---- Parquet ----

/** The part of hyparquet used here (kept local so tunekit's .d.ts files do not depend on its types). */
interface Hyparquet {
  parquetMetadata(buf: ArrayBuffer): unknown;
  parquetSchema(meta: unknown): { children: { element: { name: string } }[] };
  parquetReadObjects(o: { file: ArrayBuffer; metadata?: unknown; rowFormat?: "object" }): Promise<Record<string, unknown>[]>;
  /** Page-header reader, from hyparquet's column module (see parquet.ts). */
  parquetHeader: ReadPageHeader;
}

let hyparquet: Hyparquet | undefined;

async function loadHyparquet(): Promise<Hyparquet> {
  if (hyparquet) return hyparquet;
  try {
    // An ES module: require() loads it on Node >= 20.19 (and under jest, which transforms it).
    hyparquet = { ...require("hyparquet"), parquetHeader: require("hyparquet/src/column.js").parquetHeader } as Hyparquet;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ERR_REQUIRE_ESM") throw e;
    // Older Node: a real dynamic import (tsc would turn `import()` into require()).
    const importEsm = new Function("s", "return import(s)") as (s: string) => Promise<Record<string, unknown>>;
    hyparquet = { ...(await importEsm("hyparquet")), parquetHeader: (await importEsm("hyparquet/src/column.js")).parquetHeader } as Hyparquet;
  }
  return hyparquet;
}

/** Parquet values as JSON would have them: INT64 (bigint) → number when exact, else its decimal string. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (isRecord(v) && !(v instanceof Date) && !(v instanceof Uint8Array)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(o, k, { value: plain(x), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
}

async function readParquet(t: Table): Promise<void> {
  const buf = fs.readFileSync(t.file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  const hp = await loadHyparquet();
  let rows: Record<string, unknown>[];
  try {
    const metadata = hp.parquetMetadata(ab);
    checkParquetPages(ab, metadata, t.file, hp.parquetHeader);
    t.columns = hp.parquetSchema(metadata).children.map((c) => c.element.name);
    rows = await hp.parquetReadObjects({ file: ab, metadata, rowFormat: "object" });
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError(`${t.file}: cannot read as Parquet (${(e as Error).message}); expected a Parquet file (uncompressed or Snappy-compressed pages)`);
  }
  rows.forEach((r, i) => {
    t.records.push(plain(r) as Record<string, unknown>);
    t.lines.push(i + 1);
  });
}
