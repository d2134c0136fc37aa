// Dataset file readers (lib/data/files): formats, column mapping, labels, splits and the errors on
// bad files, on the small fixtures of test/fixtures/data (made by make_data.mjs there), on generated
// files (fast-check properties), and on the real datasets of ../shared/data.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import fc from "fast-check";
import {
  detectFormat, readRecords, loadDataset, loadTokenDataset, loadQaDataset, readTextCorpus,
} from "../lib/data/files";
import { DatasetError } from "../lib/errors";
import { TunekitError } from "../lib/errors";
import { describeShared, sharedDir } from "./shared";

const fx = (name: string) => path.join(__dirname, "fixtures", "data", name);
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-files-"));
afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));
let tmpCount = 0;
/** A new file in the temp dir with this content. */
const tmp = (name: string, content: string | Buffer): string => {
  const p = path.join(tmpDir, `${tmpCount++}`, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
};

/** The error a call throws (sync or async), to check its class and message. */
async function errorOf(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error, none was thrown");
}

const CONLL_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"];

describe("detectFormat", () => {
  test("from the extension, case-insensitive; a SQuAD-shaped .json is squad", () => {
    expect(detectFormat("a.csv")).toBe("csv");
    expect(detectFormat("dir/B.TSV")).toBe("tsv");
    expect(detectFormat("a.jsonl")).toBe("jsonl");
    expect(detectFormat("a.ndjson")).toBe("jsonl");
    expect(detectFormat("a.parquet")).toBe("parquet");
    expect(detectFormat("a.conll")).toBe("conll");
    expect(detectFormat("a.txt")).toBe("text");
    expect(detectFormat(fx("reviews.json"))).toBe("json");
    expect(detectFormat(fx("squad_small.json"))).toBe("squad");
    expect(detectFormat("missing.json")).toBe("json");
  });

  test("an unknown extension is a DatasetError listing the known ones", async () => {
    const e = await errorOf(() => detectFormat("data.xlsx"));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toBe('data.xlsx: unknown file extension ".xlsx"; expected one of .csv .tsv .jsonl .ndjson .json .parquet .conll .txt (or pass format: "csv" | "tsv" | "jsonl" | "json" | "parquet" | "conll" | "squad" | "text")');
    expect((await errorOf(() => detectFormat("README"))).message).toMatch(/^README: unknown file extension ""/);
  });
});

describe("readRecords", () => {
  test("CSV: BOM, CRLF, quoted commas, doubled quotes, embedded CRLF and LF newlines", async () => {
    const { columns, records, skipped } = await readRecords(fx("reviews.csv"));
    expect(columns).toEqual(["id", "text", "label"]);
    expect(records.length).toBe(12);
    expect(skipped).toEqual([]);
    expect(records[0]).toEqual({ id: "1", text: "Great movie, loved it", label: "positive" });
    expect(records[1].text).toBe('He said "wow" twice');
    expect(records[2].text).toBe("First line\r\nsecond line");
    expect(records[3]).toEqual({ id: "4", text: "Plain and simple", label: "negative" });
    expect(records[4].text).toBe('Commas, "quotes" and a\nbare newline');
    expect(records[11]).toEqual({ id: "12", text: "Superb", label: "positive" });
  });

  test("TSV: unquoted fields keep their quote characters and trailing spaces", async () => {
    const { columns, records } = await readRecords(fx("reviews.tsv"));
    expect(columns).toEqual(["sentence", "label"]);
    expect(records.length).toBe(10);
    expect(records[2]).toEqual({ sentence: 'the rock is destined to be the 21st century \'s new " conan " ', label: "1" });
  });

  test("JSON lines: types kept, blank lines skipped, columns in order of first appearance", async () => {
    const { columns, records } = await readRecords(fx("reviews.jsonl"));
    expect(columns).toEqual(["text", "label", "meta"]);
    expect(records.length).toBe(6);
    expect(records[0]).toEqual({ text: "I loved it", label: 1, meta: { source: "web" } });
    expect(records[4]).toEqual({ text: "Unicode: café 🎬", label: 1 });
  });

  test("JSON array of objects (pretty-printed) and the {\"data\": [...]} layout", async () => {
    const { columns, records } = await readRecords(fx("reviews.json"));
    expect(columns).toEqual(["review", "sentiment", "stars"]);
    expect(records.length).toBe(6);
    expect(records[1]).toEqual({ review: "Awful", sentiment: "neg", stars: 1 });
    const f = tmp("d.json", '{"version": "x", "data": [\n {"text": "a"},\n "oops",\n {"text": "b", "n": 2}\n]}');
    const r = await readRecords(f, { onBadRow: "skip" });
    expect(r.records).toEqual([{ text: "a" }, { text: "b", n: 2 }]);
    expect(r.columns).toEqual(["text", "n"]);
    expect(r.skipped).toEqual([{ file: f, line: 3, reason: 'record 1 of the array: expected a JSON object, got "oops"' }]);
  });

  test("Parquet (Snappy): strings, INT64 labels as numbers, doubles", async () => {
    const { columns, records, skipped } = await readRecords(fx("reviews.parquet"));
    expect(columns).toEqual(["text", "label", "score"]);
    expect(records.length).toBe(10);
    expect(records[0]).toEqual({ text: "good", label: 1, score: 0.9 });
    expect(records[9]).toEqual({ text: "weak", label: 0, score: 0.2 });
    expect(skipped).toEqual([]);
  });

  test("plain text: one record a non-empty line", async () => {
    const r = await readRecords(fx("corpus/sub/b.txt"));
    expect(r).toEqual({ columns: ["text"], records: [{ text: "One sentence a line." }, { text: "Another one." }, { text: "x" }], skipped: [] });
  });

  test("malformed CSV rows: fail names file:line, skip lists them (wrong field count, text after a closing quote)", async () => {
    const f = fx("bad_rows.csv");
    const e = await errorOf(() => readRecords(f));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toBe(`${f}:3: expected 2 comma-separated fields ("text", "label"), got 1`);
    const r = await readRecords(f, { onBadRow: "skip" });
    expect(r.skipped).toEqual([
      { file: f, line: 3, reason: 'expected 2 comma-separated fields ("text", "label"), got 1' },
      { file: f, line: 6, reason: 'expected 2 comma-separated fields ("text", "label"), got 3' },
      { file: f, line: 8, reason: "unexpected \" \" after the closing quote of field 1, expected a comma or the end of the line" },
    ]);
    expect(r.records.map((x) => x.text)).toEqual(["good row one", "", "missing label", 'ok "quoted"', "spans\ntwo lines", "last good"]);
  });

  test("malformed JSON lines: not JSON, not an object", async () => {
    const f = fx("bad_rows.jsonl");
    expect((await errorOf(() => readRecords(f))).message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2: not valid JSON \\(.+\\); expected one JSON object per line$`));
    const r = await readRecords(f, { onBadRow: "skip" });
    expect(r.skipped.map((b) => [b.line, b.reason.slice(0, 20)])).toEqual([[2, "not valid JSON (Unex"], [3, "expected a JSON obje"]]);
    expect(r.records.length).toBe(6);
  });

  test("fatal file errors: missing, a directory, empty, header only, unclosed quote, duplicate column, bad UTF-8, bad JSON", async () => {
    const msg = async (f: string, o?: object) => {
      const e = await errorOf(() => readRecords(f, o));
      expect(e).toBeInstanceOf(DatasetError);
      return e.message;
    };
    expect(await msg("nope/missing.csv")).toBe("nope/missing.csv: no such file, expected a data file");
    expect(await msg(tmpDir)).toBe(`${tmpDir}: is a directory, expected a data file`);
    const empty = tmp("empty.csv", "");
    expect(await msg(empty)).toBe(`${empty}: empty file, expected a header row naming the columns`);
    const header = tmp("header.csv", "text,label\r\n\r\n");
    expect(await msg(header)).toBe(`${header}: no records in the file; expected at least one`);
    const unclosed = tmp("unclosed.csv", 'text,label\nfine,1\n"never closed,0\nmore,1\n');
    expect(await msg(unclosed, { onBadRow: "skip" })).toBe(`${unclosed}:3: quoted field never closed, expected a closing " before the end of the file`);
    const dup = tmp("dup.tsv", "text\ttext\na\tb\n");
    expect(await msg(dup)).toBe(`${dup}:1: column "text" appears twice in the header; expected distinct column names`);
    const latin1 = tmp("latin1.csv", Buffer.concat([Buffer.from("text,label\nok,1\ncaf"), Buffer.from([0xe9]), Buffer.from(",0\n")]));
    expect(await msg(latin1)).toBe(`${latin1}:3: not valid UTF-8`);
    const badJson = tmp("bad.json", '[\n {"text": "a"},\n {"text": }\n]');
    expect(await msg(badJson)).toMatch(new RegExp(`:3: not valid JSON`));
    const obj = tmp("obj.json", '{"rows": []}');
    expect(await msg(obj)).toBe(`${obj}: expected a JSON array of objects (or an object with a "data" array of them), got an object with keys "rows"`);
    expect(await msg(fx("squad_small.json"))).toMatch(/SQuAD JSON holds questions nested in articles, not records; read it with loadQaDataset$/);
    expect(await msg(fx("ner.conll"))).toMatch(/read them with loadTokenDataset$/);
    expect(await msg(fx("reviews.csv"), { format: "parquet" })).toMatch(/reviews\.csv: cannot read as Parquet \(.+\); expected a Parquet file/);
  });

  test("line numbers after a malformed multi-line row stay right; TSV reads a malformed quoted field as plain text", async () => {
    const f = tmp("ml.csv", 'text,label\n"a\nb" junk,1\n"c\nd",2\n,\n');
    const r = await readRecords(f, { onBadRow: "skip" });
    expect(r.skipped.map((b) => b.line)).toEqual([2]);
    expect(r.records).toEqual([{ text: "c\nd", label: "2" }, { text: "", label: "" }]);
    const d = await loadDataset(f, { onBadRow: "skip", validation: 0 });
    expect(d.skipped.map((b) => b.line)).toEqual([2, 6]); // rows 2-3 (malformed), 4-5, 6
    expect(d.train).toEqual([{ text: "c\nd", label: "2" }]);
    const t = tmp("glue.tsv", 'sentence\tlabel\n"quoted" start\t1\n"never closed\t0\n"fine, ""quoted"""\t1\n');
    expect((await readRecords(t)).records).toEqual([
      { sentence: '"quoted" start', label: "1" }, { sentence: '"never closed', label: "0" }, { sentence: 'fine, "quoted"', label: "1" },
    ]);
  });

  test("a column without a header gets pandas' name; bad options are TunekitErrors", async () => {
    const f = tmp("index.csv", ",text\n0,a\n1,b\n");
    expect((await readRecords(f)).columns).toEqual(["Unnamed: 0", "text"]);
    const e = await errorOf(() => readRecords(f, { onBadRow: "maybe" as "skip" }));
    expect(e).toBeInstanceOf(TunekitError);
    expect(e.message).toBe('readRecords: onBadRow must be "skip" or "fail", got "maybe"');
    expect((await errorOf(() => readRecords(f, { format: "xlsx" as "csv" }))).message).toMatch(/^readRecords: format must be one of "csv", /);
  });

  test("property: random strings written with CSV/TSV quoting read back identical", async () => {
    // Any character, with the ones that need quoting (delimiters, quotes, CR, LF) made frequent.
    const cell = fc.string({ unit: fc.oneof(fc.constantFrom(",", "\t", '"', "\r", "\n", "\r\n", " ", "a", "é"), fc.string({ minLength: 1, maxLength: 1, unit: "grapheme" })), maxLength: 12 })
      .filter((s) => !s.includes("\uFEFF"));
    const table = fc.integer({ min: 1, max: 4 }).chain((ncols) => fc.record({
      header: fc.uniqueArray(cell.filter((h) => h.trim() !== ""), { minLength: ncols, maxLength: ncols }),
      rows: fc.array(fc.array(cell, { minLength: ncols, maxLength: ncols }), { minLength: 1, maxLength: 8 }),
      delimiter: fc.constantFrom(",", "\t"),
      crlf: fc.boolean(),
      bom: fc.boolean(),
    }));
    await fc.assert(fc.asyncProperty(table, async ({ header, rows, delimiter, crlf, bom }) => {
      // Quote a field when it holds a delimiter, quote or newline, starts with a quote, or is the only
      // field of a row and blank (a blank line is skipped), as csv writers do.
      const quote = (v: string, only: boolean) => (/[",\t\r\n]/.test(v) || (only && v.trim() === "") ? `"${v.replace(/"/g, '""')}"` : v);
      const line = (r: string[]) => r.map((v) => quote(v, r.length === 1)).join(delimiter);
      const eol = crlf ? "\r\n" : "\n";
      const text = (bom ? "\uFEFF" : "") + [header, ...rows].map(line).join(eol) + eol;
      const f = tmp(delimiter === "," ? "p.csv" : "p.tsv", text);
      const got = await readRecords(f);
      expect(got.columns).toEqual(header);
      expect(got.records).toEqual(rows.map((r) => Object.fromEntries(header.map((h, k) => [h, r[k]]))));
    }), { numRuns: 150 });
  });
});

describe("loadDataset", () => {
  test("CSV defaults: text/label columns, sorted label names, seeded stratified 10% split in file order", async () => {
    const d = await loadDataset(fx("reviews.csv"));
    expect(d.mapping).toEqual({ text: "text", label: "label" });
    expect(d.columns).toEqual(["id", "text", "label"]);
    expect(d.labelNames).toEqual(["negative", "positive"]);
    expect(d.problemType).toBe("single_label_classification");
    expect(d.skipped).toEqual([]);
    // 12 rows (7 positive, 5 negative): ceil(1.2) = 2 for validation, one of each class.
    expect(d.train.length).toBe(10);
    expect(d.validation.map((e) => e.label).sort()).toEqual(["negative", "positive"]);
    const all = (await readRecords(fx("reviews.csv"))).records.map((r) => r.text);
    const order = (xs: { text: string }[]) => xs.map((x) => all.indexOf(x.text));
    for (const part of [d.train, d.validation]) expect(order(part)).toEqual([...order(part)].sort((a, b) => a - b));
    expect(new Set([...d.train, ...d.validation].map((e) => e.text))).toEqual(new Set(all));
    expect(d.train.find((e) => e.text.startsWith("Great"))).toEqual({ text: "Great movie, loved it", label: "positive" });
    // Same seed, same split; the seeds give different splits.
    expect(await loadDataset(fx("reviews.csv"))).toEqual(d);
    const splits = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5]) splits.add(JSON.stringify((await loadDataset(fx("reviews.csv"), { seed })).validation));
    expect(splits.size).toBeGreaterThan(1);
  });

  test("TSV with 0/1 labels: names sorted numerically, labels as names; validation 0 keeps everything", async () => {
    const d = await loadDataset(fx("reviews.tsv"), { validation: 0 });
    expect(d.mapping).toEqual({ text: "sentence", label: "label" });
    expect(d.labelNames).toEqual(["0", "1"]);
    expect(d.train.length).toBe(10);
    expect(d.validation).toEqual([]);
    expect(d.train[0]).toEqual({ text: "it 's a charming and often affecting journey . ", label: "1" });
  });

  test("JSON lines with numeric labels; Parquet with INT64 labels", async () => {
    const j = await loadDataset(fx("reviews.jsonl"), { validation: 0 });
    expect(j.labelNames).toEqual(["0", "1", "2"]);
    expect(j.train.map((e) => e.label)).toEqual(["1", "0", "1", "0", "1", "2"]);
    const p = await loadDataset(fx("reviews.parquet"), { validation: 0.2 });
    expect(p.labelNames).toEqual(["0", "1"]);
    expect(p.train.length).toBe(8);
    expect(p.validation.map((e) => e.label).sort()).toEqual(["0", "1"]);
    expect(p.columns).toEqual(["text", "label", "score"]);
  });

  test("text column found as the only column of words; several candidates is an error naming them", async () => {
    const d = await loadDataset(fx("reviews.json"), { label: "sentiment", validation: 0 });
    expect(d.mapping).toEqual({ text: "review", label: "sentiment" });
    expect(d.train[0]).toEqual({ text: "Wonderful", label: "pos" });
    const e = await errorOf(() => loadDataset(fx("reviews.json")));
    expect(e).toBeInstanceOf(DatasetError);
    expect(e.message).toBe(`${fx("reviews.json")}: which column is the text? None is named "text" or "sentence", and 2 columns hold text ("review", "sentiment"); pass text: "<column>" (the columns are "review", "sentiment", "stars")`);
  });

  test("a column that does not exist is an error naming the columns", async () => {
    const f = fx("reviews.csv");
    expect((await errorOf(() => loadDataset(f, { text: "review" }))).message).toBe(`${f}: no column "review" for the text; the columns are "id", "text", "label"`);
    expect((await errorOf(() => loadDataset(f, { label: "stars" }))).message).toBe(`${f}: no column "stars" for the label; the columns are "id", "text", "label"`);
    expect((await errorOf(() => loadDataset(f, { text: "label" }))).message).toBe(`${f}: column "label" cannot be both the text and the label`);
  });

  test("sentence pairs: sentence1 / sentence2 by default, or named", async () => {
    const d = await loadDataset(fx("pairs.csv"), { validation: 0 });
    expect(d.mapping).toEqual({ text: "sentence1", textPair: "sentence2", label: "label" });
    expect(d.labelNames).toEqual(["contradiction", "entailment", "neutral"]);
    expect(d.train[0]).toEqual({ text: "A man is playing a guitar.", textPair: "A man plays an instrument.", label: "entailment" });
    const n = await loadDataset(fx("pairs.csv"), { text: "sentence2", textPair: "sentence1", validation: 0 });
    expect(n.train[1]).toEqual({ text: "A cat sleeps.", textPair: "A dog runs.", label: "contradiction" });
  });

  test("regression when the labels are numbers, some not integers; multi-label when they are lists", async () => {
    const r = await loadDataset(fx("scores.csv"), { validation: 0 });
    expect(r.problemType).toBe("regression");
    expect(r.labelNames).toBeNull();
    expect(r.train.map((e) => e.label)).toEqual([4.6, 2.25, 0, 5, 3.1]);
    const m = await loadDataset(fx("topics.jsonl"), { validation: 0 });
    expect(m.problemType).toBe("multi_label_classification");
    expect(m.labelNames).toEqual(["economy", "politics", "sports"]);
    expect(m.train.map((e) => e.label)).toEqual([["politics", "economy"], ["sports"], ["politics"], []]);
    // In CSV, lists are JSON or comma-separated names; an empty cell is "none of them".
    const csv = tmp("ml.csv", 'text,label\na,"x, y"\nb,"[""y""]"\nc,\n');
    const c = await loadDataset(csv, { problemType: "multi_label_classification", validation: 0 });
    expect(c.train.map((e) => e.label)).toEqual([["x", "y"], ["y"], []]);
    // Forced regression on words: each is a bad row.
    const e = await errorOf(() => loadDataset(fx("reviews.csv"), { problemType: "regression" }));
    expect(e.message).toBe(`${fx("reviews.csv")}:2: column "label" holds "positive", expected a number (regression)`);
  });

  test("fixed labels (a checkpoint's id2label): names kept in id order, integer ids mapped, others an error with file:line", async () => {
    const d = await loadDataset(fx("reviews.tsv"), { labels: ["NEGATIVE", "POSITIVE"], validation: 0 });
    expect(d.labelNames).toEqual(["NEGATIVE", "POSITIVE"]);
    expect(d.train.slice(0, 2).map((e) => e.label)).toEqual(["POSITIVE", "NEGATIVE"]);
    const c = await loadDataset(fx("reviews.csv"), { labels: ["positive", "negative"] });
    expect(c.labelNames).toEqual(["positive", "negative"]);
    const f = fx("reviews.jsonl");
    for (const onBadRow of ["fail", "skip"] as const) {
      const e = await errorOf(() => loadDataset(f, { labels: ["neg", "pos"], onBadRow }));
      expect(e).toBeInstanceOf(DatasetError);
      expect(e.message).toBe(`${f}:7: label "2" is not one of the 2 allowed labels ("neg", "pos") nor a label id 0..1`);
    }
    const g = fx("reviews.csv");
    expect((await errorOf(() => loadDataset(g, { labels: ["positive"] }))).message).toBe(`${g}:4: label "negative" is not one of the 1 allowed labels ("positive") nor a label id 0..0`);
    expect((await errorOf(() => loadDataset(g, { labels: ["a", "a"] }))).message).toBe('loadDataset: labels lists "a" twice; expected distinct names');
  });

  test("bad rows: fail stops at the first with file:line; skip lists every one, sorted, and keeps the rest", async () => {
    const f = fx("bad_rows.csv");
    expect((await errorOf(() => loadDataset(f))).message).toBe(`${f}:3: expected 2 comma-separated fields ("text", "label"), got 1`);
    const d = await loadDataset(f, { onBadRow: "skip", validation: 0 });
    expect(d.skipped.map((b) => [b.line, b.reason])).toEqual([
      [3, 'expected 2 comma-separated fields ("text", "label"), got 1'],
      [4, 'empty text in column "text", expected a non-empty string'],
      [5, 'missing value in column "label", expected a label'],
      [6, 'expected 2 comma-separated fields ("text", "label"), got 3'],
      [8, 'unexpected " " after the closing quote of field 1, expected a comma or the end of the line'],
    ]);
    expect(d.train).toEqual([
      { text: "good row one", label: "pos" }, { text: 'ok "quoted"', label: "neg" }, { text: "spans\ntwo lines", label: "neg" }, { text: "last good", label: "pos" },
    ]);
    const j = fx("bad_rows.jsonl");
    const dj = await loadDataset(j, { onBadRow: "skip", validation: 0 });
    expect(dj.skipped.map((b) => b.line)).toEqual([2, 3, 4, 5, 7, 8]);
    expect(dj.skipped.slice(2).map((b) => b.reason)).toEqual([
      'missing value in column "text", expected the text (a non-empty string)',
      'empty text in column "text", expected a non-empty string',
      'column "text" holds 42, expected the text (a non-empty string)',
      'missing value in column "label", expected a label',
    ]);
    expect(dj.train.map((e) => e.text)).toEqual(["fine", "also fine"]);
  });

  test("a validation file, read the same way; its errors name it", async () => {
    const dev = tmp("dev.tsv", "sentence\tlabel\ngood\t1\nbad\t0\nfine\t2\n");
    const d = await loadDataset(fx("reviews.tsv"), { validation: dev });
    expect(d.train.length).toBe(10);
    expect(d.validation).toEqual([{ text: "good", label: "1" }, { text: "bad", label: "0" }, { text: "fine", label: "2" }]);
    expect(d.labelNames).toEqual(["0", "1", "2"]);
    const other = tmp("dev2.tsv", "text\tlabel\na\t1\n");
    expect((await errorOf(() => loadDataset(fx("reviews.tsv"), { validation: other }))).message).toBe(`${other}: no column "sentence" (the training file has it); the columns are "text", "label"`);
    expect((await errorOf(() => loadDataset(fx("reviews.tsv"), { validation: "no/dev.tsv" }))).message).toBe("no/dev.tsv: no such file, expected a validation file");
  });

  test("limit: a seeded sample of the training examples, stratified, in file order", async () => {
    const d = await loadDataset(fx("reviews.csv"), { validation: 0, limit: 4 });
    expect(d.train.length).toBe(4);
    // 7 positive, 5 negative → 2.33 and 1.67 → 2 and 2 (the larger remainder gets the extra one).
    expect(d.train.map((e) => e.label).sort()).toEqual(["negative", "negative", "positive", "positive"]);
    expect(await loadDataset(fx("reviews.csv"), { validation: 0, limit: 4 })).toEqual(d);
    expect((await loadDataset(fx("reviews.csv"), { validation: 0, limit: 100 })).train.length).toBe(12);
  });

  test("a .txt file is unlabelled text, one example a line", async () => {
    const d = await loadDataset(fx("corpus/sub/b.txt"), { validation: 0 });
    expect(d).toEqual({
      train: [{ text: "One sentence a line." }, { text: "Another one." }, { text: "x" }], validation: [], labelNames: null,
      problemType: "single_label_classification", skipped: [], columns: ["text"], mapping: { text: "text" },
    });
  });

  test("empty results and bad options are clear errors", async () => {
    const allBad = tmp("allbad.csv", "text,label\n,1\n\"\",0\n");
    expect((await errorOf(() => loadDataset(allBad, { onBadRow: "skip" }))).message).toBe(`${allBad}: no usable examples: all 2 rows were malformed and skipped (the first, line 2: empty text in column "text", expected a non-empty string); expected at least one`);
    const one = tmp("one.csv", "text,label\nonly,1\n");
    expect((await errorOf(() => loadDataset(one))).message).toBe(`${one}: only 1 example, too few to split off a validation set; pass validation: 0 or a validation file`);
    const f = fx("reviews.csv");
    const opt = async (o: object) => {
      const e = await errorOf(() => loadDataset(f, o));
      expect(e).toBeInstanceOf(TunekitError);
      return e.message;
    };
    expect(await opt({ validation: 1.5 })).toBe("loadDataset: validation must be a fraction in [0, 1), a count >= 1 or the path of a validation file, got 1.5");
    expect(await opt({ validation: -0.1 })).toMatch(/^loadDataset: validation must be/);
    expect(await opt({ limit: 0 })).toBe("loadDataset: limit must be an integer >= 1, got 0");
    expect(await opt({ seed: 0.5 })).toBe("loadDataset: seed must be a safe integer, got 0.5");
    expect(await opt({ problemType: "ranking" })).toMatch(/^loadDataset: problemType must be one of "single_label_classification", "regression", "multi_label_classification", got "ranking"$/);
    expect(await opt({ validation: 12 })).toBe(`${f}: validation count 12 leaves no training examples (12 in all); expected a count below 12`);
  });

  test("property: the split is a partition, stratified by class, and the same for the same seed", async () => {
    const data = fc.record({
      labels: fc.array(fc.constantFrom("a", "b", "c", "d"), { minLength: 2, maxLength: 120 }),
      fraction: fc.double({ min: 0.01, max: 0.9, noNaN: true }),
      seed: fc.integer({ min: 0, max: 2 ** 31 }),
    });
    await fc.assert(fc.asyncProperty(data, async ({ labels, fraction, seed }) => {
      const f = tmp("split.jsonl", labels.map((l, i) => JSON.stringify({ text: `t${i}`, label: l })).join("\n"));
      const d = await loadDataset(f, { validation: fraction, seed });
      const ids = (xs: { text: string }[]) => xs.map((x) => Number(x.text.slice(1)));
      const tr = ids(d.train);
      const va = ids(d.validation);
      expect([...tr, ...va].sort((a, b) => a - b)).toEqual(labels.map((_, i) => i));
      const n = labels.length;
      const nVal = Math.min(Math.ceil(fraction * n), n - 1);
      expect(va.length).toBe(nVal);
      for (const c of new Set(labels)) {
        const nc = labels.filter((l) => l === c).length;
        const vc = va.filter((i) => labels[i] === c).length;
        expect(Math.abs(vc - (nc * nVal) / n)).toBeLessThan(1);
      }
      expect(d.validation.every((e) => e.label === labels[Number(e.text.slice(1))])).toBe(true);
      expect(await loadDataset(f, { validation: fraction, seed })).toEqual(d);
    }), { numRuns: 80 });
  });
});

describe("loadTokenDataset", () => {
  test("CoNLL: -DOCSTART- skipped, blank lines end sentences, last column as the tag, sorted tag names", async () => {
    const d = await loadTokenDataset(fx("ner.conll"), { validation: 0 });
    expect(d.train.length).toBe(6);
    expect(d.train[0]).toEqual({ words: ["EU", "rejects", "German", "call", "."], tags: ["B-ORG", "O", "B-MISC", "O", "O"] });
    expect(d.train[5]).toEqual({ words: ["Fischer", "proposed"], tags: ["B-PER", "O"] });
    expect(d.labelNames).toEqual(["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-ORG", "I-PER", "O"]);
    expect(d.skipped).toEqual([]);
    const pos = await loadTokenDataset(fx("ner.conll"), { validation: 0, tagColumn: 1 });
    expect(pos.train[1]).toEqual({ words: ["Peter", "Blackburn"], tags: ["NNP", "NNP"] });
    const split = await loadTokenDataset(fx("ner.conll"));
    expect([split.train.length, split.validation.length]).toEqual([5, 1]);
    expect(await loadTokenDataset(fx("ner.conll"))).toEqual(split);
  });

  test("CoNLL with labels: ids in the given order; an unknown tag names its line", async () => {
    const d = await loadTokenDataset(fx("ner.conll"), { validation: 0, labels: CONLL_NAMES });
    expect(d.labelNames).toEqual(CONLL_NAMES);
    const e = await errorOf(() => loadTokenDataset(fx("ner.conll"), { labels: ["O", "B-PER", "I-PER"] }));
    expect(e.message).toBe(`${fx("ner.conll")}:3: label "B-ORG" is not one of the 3 allowed labels ("O", "B-PER", "I-PER") nor a label id 0..2`);
  });

  test("CoNLL variants: tab-separated columns, tokens only (unlabelled), malformed lines", async () => {
    const tabs = tmp("tabs.tsv", "New York\tB-LOC\nis\tO\n\nHi\tO\n");
    expect((await loadTokenDataset(tabs, { validation: 0 })).train).toEqual([{ words: ["New York", "is"], tags: ["B-LOC", "O"] }, { words: ["Hi"], tags: ["O"] }]);
    const plain = tmp("words.txt", "Hello\nworld\n\nBye\n");
    expect(await loadTokenDataset(plain, { validation: 0 })).toEqual({ train: [{ words: ["Hello", "world"] }, { words: ["Bye"] }], validation: [], labelNames: [], skipped: [] });
    const bad = tmp("bad.conll", "a DT O\nb NN O\n\nc NN\nd NN O\n\ne NN B-X\n");
    expect((await errorOf(() => loadTokenDataset(bad))).message).toBe(`${bad}:4: expected 3 whitespace-separated columns (as on line 1), got 2: "c NN"`);
    const skipped = await loadTokenDataset(bad, { onBadRow: "skip", validation: 0 });
    expect(skipped.train).toEqual([{ words: ["a", "b"], tags: ["O", "O"] }, { words: ["e"], tags: ["B-X"] }]);
    expect(skipped.skipped).toEqual([{ file: bad, line: 4, reason: 'expected 3 whitespace-separated columns (as on line 1), got 2: "c NN"' }]);
    expect((await errorOf(() => loadTokenDataset(bad, { tagColumn: 5 }))).message).toBe(`${bad}:1: tagColumn 5 is out of range for the 3 columns of this file; expected -3..2`);
    const empty = tmp("empty.conll", "-DOCSTART- -X- -X- O\n\n");
    expect((await errorOf(() => loadTokenDataset(empty))).message).toBe(`${empty}: no sentences in the file; expected tokens one per line, sentences separated by blank lines`);
    expect((await errorOf(() => loadTokenDataset(fx("reviews.csv")))).message).toMatch(/token-classification data must be CoNLL .* got format "csv"$/);
  });

  test("JSON lines and Parquet with token lists and integer tags (names from labels)", async () => {
    for (const f of [fx("ner.jsonl"), fx("ner.parquet")]) {
      const ids = await loadTokenDataset(f, { validation: 0 });
      expect(ids.train[0]).toEqual({ words: ["EU", "rejects", "German", "call"], tags: ["3", "0", "7", "0"] });
      expect(ids.labelNames).toEqual(["0", "1", "2", "3", "5", "7"]);
      const named = await loadTokenDataset(f, { validation: 0, labels: CONLL_NAMES });
      expect(named.train.map((s) => s.tags)).toEqual([["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"], ["B-LOC", "O"]]);
    }
    const bad = tmp("bad.jsonl", '{"tokens": ["a", "b"], "tags": ["O"]}\n{"tokens": ["c"], "tags": ["O"]}\n');
    const d = await loadTokenDataset(bad, { onBadRow: "skip", validation: 0 });
    expect(d.skipped).toEqual([{ file: bad, line: 1, reason: 'column "tags" holds ["O"], expected a list of 2 tags (strings or integers), one per token' }]);
    expect(d.train).toEqual([{ words: ["c"], tags: ["O"] }]);
  });
});

describe("loadQaDataset", () => {
  test("SQuAD JSON; the split is by paragraph, so no context is on both sides", async () => {
    const all = await loadQaDataset(fx("squad_small.json"), { validation: 0 });
    expect(all.train.map((q) => q.id)).toEqual(["q1", "q2", "q3", "q4", "q5"]);
    expect(all.train[1].answers).toEqual([{ text: "6,650 km", answerStart: 43 }]);
    const d = await loadQaDataset(fx("squad_small.json"), { validation: 0.5, seed: 7 });
    expect(d.train.length + d.validation.length).toBe(5);
    const trainContexts = new Set(d.train.map((q) => q.context));
    expect(d.validation.some((q) => trainContexts.has(q.context))).toBe(false);
    expect(new Set(d.validation.map((q) => q.context)).size).toBe(2); // ceil(0.5 * 3 paragraphs)
    const v = await loadQaDataset(fx("squad_small.json"), { validation: fx("squad_small.json") });
    expect([v.train.length, v.validation.length]).toEqual([5, 5]);
    expect((await errorOf(() => loadQaDataset("no.json"))).message).toBe("no.json: no such file, expected a SQuAD JSON file");
    expect((await errorOf(() => loadQaDataset(fx("reviews.json")))).message).toMatch(/reviews\.json: top level: expected an object with a "data" array/);
  });
});

describe("readTextCorpus", () => {
  test("a directory: its .txt files recursively in sorted order; paragraphs joined, or one text a line", () => {
    expect(readTextCorpus(fx("corpus"))).toEqual([
      "First paragraph, wrapped over two lines.", "Second paragraph. Indented line.", "One sentence a line.", "Another one.", "x",
    ]);
    expect(readTextCorpus([fx("corpus/sub/b.txt"), fx("corpus/notes.md")], { minChars: 2 })).toEqual(["One sentence a line.", "Another one.", "# not part of the corpus"]);
  });

  test("errors: a missing path, a directory without .txt files, nothing left", async () => {
    expect((await errorOf(() => readTextCorpus("no/such/dir"))).message).toBe("no/such/dir: no such file, expected a text file or a directory of .txt files");
    const dir = path.dirname(tmp("only.md", "# x\n"));
    expect((await errorOf(() => readTextCorpus(dir))).message).toBe(`${dir}: no .txt files in this directory (searched recursively); expected plain-text files`);
    const short = tmp("short.txt", "a\n\nb\n");
    expect((await errorOf(() => readTextCorpus(short, { minChars: 5 }))).message).toBe(`${short}: no text of at least 5 characters (2 shorter ones dropped) in 1 file(s); expected non-empty text`);
    expect((await errorOf(() => readTextCorpus([]))).message).toMatch(/^readTextCorpus: expected a path or a non-empty array of paths/);
  });
});

describeShared("dataset files on the real data (../shared/data)", () => {
  // Wall-clock times of the real-data reads, printed together at the end.
  const times: string[] = [];
  afterAll(() => console.log(`files (this machine, one run each):\n${times.join("\n")}`));
  const time = async <T>(label: string, fn: () => T | Promise<T>): Promise<T> => {
    const t0 = process.hrtime.bigint();
    const out = await fn();
    times.push(`${label.padEnd(48)} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1).padStart(8)} ms`);
    return out;
  };
  const data = (...p: string[]) => path.join(sharedDir(), "data", ...p);

  test("SST-2 train.tsv: 67,349 rows, a stratified 10% split; dev.tsv as the validation file", async () => {
    const d = await time("loadDataset sst2/train.tsv (67,349 rows)", () => loadDataset(data("sst2", "train.tsv")));
    expect(d.labelNames).toEqual(["0", "1"]);
    expect(d.train.length + d.validation.length).toBe(67349);
    expect(d.validation.length).toBe(6735); // ceil(0.1 * 67,349)
    const pos = d.validation.filter((e) => e.label === "1").length;
    expect(Math.abs(pos - (37569 * 6735) / 67349)).toBeLessThan(1); // the class ratio of the file
    const dev = await loadDataset(data("sst2", "train.tsv"), { validation: data("sst2", "dev.tsv"), limit: 1000 });
    expect([dev.train.length, dev.validation.length]).toEqual([1000, 872]);
    expect(dev.validation[0]).toEqual({ text: "it 's a charming and often affecting journey . ", label: "1" });
    const testSplit = await loadDataset(data("sst2", "test.tsv"), { validation: 0 });
    expect(testSplit.labelNames).toBeNull();
    expect(testSplit.mapping).toEqual({ text: "sentence" });
    expect(testSplit.train.length).toBe(1821);
  });

  test("CoNLL-2003 via loadTokenDataset: 14,041 / 3,250 sentences, the 9 IOB2 tags", async () => {
    const d = await time("loadTokenDataset conll2003 train + valid", () => loadTokenDataset(data("conll2003", "train.txt"), { validation: data("conll2003", "valid.txt"), labels: CONLL_NAMES }));
    expect([d.train.length, d.validation.length]).toEqual([14041, 3250]);
    expect(d.train.reduce((n, s) => n + s.words.length, 0)).toBe(203621);
    expect(d.validation.reduce((n, s) => n + s.words.length, 0)).toBe(51362);
    expect(d.train[1]).toEqual({ words: ["Peter", "Blackburn"], tags: ["B-PER", "I-PER"] });
    const sorted = await loadTokenDataset(data("conll2003", "valid.txt"), { validation: 0 });
    expect(sorted.labelNames).toEqual(["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER", "O"]);
  });

  test("SQuAD part a via loadQaDataset: 5,696 questions split by paragraph", async () => {
    const f = data("squad_v1.1", "dev-v1.1-part-a.json");
    expect(detectFormat(f)).toBe("squad");
    const d = await time("loadQaDataset squad part a", () => loadQaDataset(f));
    expect(d.train.length + d.validation.length).toBe(5696);
    const trainContexts = new Set(d.train.map((q) => q.context));
    expect(d.validation.some((q) => trainContexts.has(q.context))).toBe(false);
    const paragraphs = new Set([...d.train, ...d.validation].map((q) => q.context)).size;
    expect(new Set(d.validation.map((q) => q.context)).size).toBe(Math.ceil(0.1 * paragraphs));
  });

  test("rotten tomatoes as a text corpus: one text a line", async () => {
    const texts = await time("readTextCorpus rotten tomatoes", () => readTextCorpus([data("rotten_tomatoes", "rt-polarity.pos"), data("rotten_tomatoes", "rt-polarity.neg")]));
    expect(texts.length).toBe(10662);
    expect(texts[5331]).toBe("simplistic , silly and tedious .");
  });
});
