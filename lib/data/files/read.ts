// Low-level pieces of the file readers: opening a file with a clear error, the CSV/TSV parser (own,
// so every row knows the line it starts on, embedded newlines included), the start lines of the
// elements of a JSON array, and the collector of malformed rows (skip with a record, or fail).
import * as fs from "fs";
import { DatasetError } from "../../errors";
import { parseJson } from "../../io/json_safe";
import { readUtf8 } from "./readers";

export interface BadRow {
  file: string;
  /** 1-based line the row starts on (Parquet: row index + 1). */
  line: number;
  reason: string;
}

export type OnBadRow = "skip" | "fail";

/** Malformed rows: "fail" throws `file:line: reason` at the first, "skip" keeps a record of each. */
export class BadRows {
  readonly rows: BadRow[] = [];
  constructor(readonly mode: OnBadRow) {}
  add(file: string, line: number, reason: string): void {
    if (this.mode === "fail") throw new DatasetError(`${file}:${line}: ${reason}`);
    this.rows.push({ file, line, reason });
  }
}

/** The error for a file all of whose rows were malformed (and skipped). */
export function noExamples(file: string, bad: BadRows): DatasetError {
  const skipped = bad.rows.filter((b) => b.file === file);
  return new DatasetError(`${file}: no usable examples: all ${skipped.length} rows were malformed and skipped (the first, line ${skipped[0]?.line}: ${skipped[0]?.reason}); expected at least one`);
}

/** Throws a DatasetError naming the file when it is missing or not a regular file. */
export function checkFile(file: string, what = "a data file"): void {
  if (typeof file !== "string" || file === "") throw new DatasetError(`expected the path of ${what}, got ${JSON.stringify(file)}`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === "ENOENT" ? `${file}: no such file, expected ${what}` : `${file}: cannot read (${code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new DatasetError(`${file}: is ${st.isDirectory() ? "a directory" : "not a regular file"}, expected ${what}`);
}

export function readText(file: string, what?: string): string {
  checkFile(file, what);
  return readUtf8(file);
}

/** Lines without their terminators (\n or \r\n); a final newline does not make an extra empty line. */
export function splitLines(text: string): string[] {
  const out = text.split("\n");
  if (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

export interface DelimitedRow {
  fields: string[];
  /** Line the row starts on (1-based). */
  line: number;
  /** Why the row is malformed (the caller reports it, in file order with its own checks). */
  error?: string;
}

/** A quoted field starting at `i` (on the opening quote): its value, the index after the closing quote
 *  and the newlines inside; or where it went wrong (never closed, or text right after the closing quote). */
function quotedField(text: string, i: number, delimiter: string): { value: string; end: number; newlines: number } | { unclosed: true } | { junkAt: number } {
  let value = "";
  let newlines = 0;
  for (i++; ;) {
    const q = text.indexOf('"', i);
    if (q < 0) return { unclosed: true };
    const chunk = text.slice(i, q);
    for (let k = chunk.indexOf("\n"); k >= 0; k = chunk.indexOf("\n", k + 1)) newlines++;
    value += chunk;
    if (text.charCodeAt(q + 1) === 34) {
      value += '"';
      i = q + 2;
      continue;
    }
    const c = text[q + 1];
    if (q + 1 < text.length && c !== delimiter && c !== "\n" && !(c === "\r" && text[q + 2] === "\n")) return { junkAt: q + 1 };
    return { value, end: q + 1, newlines };
  }
}

/**
 * RFC 4180 records: fields separated by `delimiter`, rows by \n or \r\n; a field that starts with `"`
 * is quoted (`""` inside is one quote; delimiters and newlines inside are kept verbatim). A quote
 * inside an unquoted field is an ordinary character (as Python's csv module reads it). Blank lines are
 * skipped. In CSV, text after a closing quote makes the row malformed (`error`) and a quote never
 * closed is fatal (it would swallow the rest of the file). In TSV such a field is read as unquoted
 * text instead: GLUE-style TSV files are written without quoting, and their sentences may start with
 * a quote character.
 */
export function parseDelimited(text: string, delimiter: "," | "\t", file: string): DelimitedRow[] {
  const rows: DelimitedRow[] = [];
  const n = text.length;
  const at = (k: number) => (k < 0 ? n : k);
  let nextDelim = -1;
  let nextNl = -1;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let error: string | undefined;
    let quotedAny = false;
    for (;;) {
      let field: string | undefined;
      if (text.charCodeAt(i) === 34 /* " */) {
        const q = quotedField(text, i, delimiter);
        if ("value" in q) {
          quotedAny = true;
          field = q.value;
          i = q.end;
          line += q.newlines;
        } else if (delimiter === ",") {
          if ("unclosed" in q) throw new DatasetError(`${file}:${line}: quoted field never closed, expected a closing " before the end of the file`);
          error = `unexpected ${JSON.stringify(text[q.junkAt])} after the closing quote of field ${fields.length + 1}, expected a comma or the end of the line`;
          const nl = at(text.indexOf("\n", q.junkAt));
          for (let k = text.indexOf("\n", i); k >= 0 && k < nl; k = text.indexOf("\n", k + 1)) line++; // inside the quotes
          i = nl;
          field = "";
        }
      }
      if (field === undefined) {
        // The next delimiter and newline are found with indexOf and remembered until passed.
        if (nextDelim < i) nextDelim = at(text.indexOf(delimiter, i));
        if (nextNl < i) nextNl = at(text.indexOf("\n", i));
        const j = nextDelim < nextNl ? nextDelim : nextNl;
        field = text.slice(i, j);
        if (j < n && text[j] === "\n" && field.endsWith("\r")) field = field.slice(0, -1);
        i = j;
      }
      fields.push(field);
      if (i < n && text[i] === delimiter) {
        i++;
        if (i < n) continue;
        fields.push(""); // a delimiter at the very end of the file ends an empty last field
      }
      if (i < n && text[i] === "\r") i++;
      if (i < n) {
        i++; // the \n
        line++;
      }
      break;
    }
    if (error !== undefined) rows.push({ fields, line: start, error });
    else if (!(fields.length === 1 && !quotedAny && fields[0].trim() === "")) rows.push({ fields, line: start });
  }
  return rows;
}

/**
 * Start offsets of the elements of the records array of a JSON text that parsed: the top-level array,
 * or (with `key`) the array under that key of the top-level object.
 */
export function jsonArrayElementOffsets(text: string, key?: string): number[] {
  const out: number[] = [];
  const n = text.length;
  const targetDepth = key === undefined ? 1 : 2;
  let depth = 0;
  let target = -1; // depth of the records array while inside it; -2 once left
  let expect = false; // the next value starts an element
  let lastString: string | null = null;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      const s = i;
      for (i++; text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92) i++;
      i++;
      if (expect) {
        out.push(s);
        expect = false;
      }
      if (key !== undefined && depth === 1 && target === -1) lastString = parseJson(text.slice(s, i), "a JSON key") as string;
      continue;
    }
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    if (expect && c !== 93) {
      out.push(i);
      expect = false;
    }
    if (c === 91 || c === 123) {
      depth++;
      if (target === -1 && c === 91 && depth === targetDepth && (key === undefined || lastString === key)) {
        target = depth;
        expect = true;
      }
    } else if (c === 93 || c === 125) {
      if (depth === target) target = -2;
      depth--;
      expect = false;
    } else if (c === 44 && depth === target) {
      expect = true;
    }
    i++;
  }
  return out;
}

/** 1-based line of each offset (offsets ascending). */
export function linesOfOffsets(text: string, offsets: number[]): number[] {
  const out: number[] = [];
  let line = 1;
  let at = 0;
  for (const off of offsets) {
    for (let k = text.indexOf("\n", at); k >= 0 && k < off; k = text.indexOf("\n", k + 1)) line++;
    at = off;
    out.push(line);
  }
  return out;
}

/** A value for a message: JSON, shortened. */
export function show(v: unknown, max = 60): string {
  const s = typeof v === "bigint" ? `${v}n` : v === undefined ? "undefined" : JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** Names in a message: `a, b, c` (the first `max`, then how many more). */
export function listNames(names: readonly string[], max = 20): string {
  const shown = names.slice(0, max).map((x) => JSON.stringify(x)).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}
