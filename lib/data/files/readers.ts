// Readers for the datasets of the evidence runs (GLUE SST-2, rotten tomatoes, CoNLL-2003, SQuAD v1.1,
// STS-B). Each refuses a malformed file with a DatasetError naming the file and the line (or, for
// JSON, the path inside it) and what was expected there. Text is returned as the file has it.
import * as fs from "fs";
import * as path from "path";
import { parse as parseCsv, CsvError } from "csv-parse/sync";
import { DatasetError } from "../../errors";
import { parseJson } from "../../io/json_safe";
import type { TextExample, NerSentence, QaExample, SentencePairExample } from "./examples";

/** The file's text (UTF-8, a leading BOM dropped); a line that does not decode is named. */
export function readUtf8(file: string): string {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new DatasetError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    // Name the first line that does not decode.
    let line = 1;
    let start = 0;
    for (let i = 0; i <= buf.length; i++) {
      if (i === buf.length || buf[i] === 0x0a) {
        try {
          new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(start, i));
        } catch {
          break;
        }
        line++;
        start = i + 1;
      }
    }
    throw new DatasetError(`${file}:${line}: not valid UTF-8`);
  }
}

/** Lines without their terminators (\n or \r\n); a final newline does not make an extra empty line. */
function lines(text: string): string[] {
  const out = text.split("\n");
  if (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

/** GLUE SST-2 TSV: header `sentence\tlabel` (train, dev) or `index\tsentence` (test, no labels). Fields are
 *  not quoted (GLUE files are read with quoting off). */
export function readSst2(file: string): TextExample[] {
  const rows = lines(readUtf8(file));
  if (rows.length === 0) throw new DatasetError(`${file}: empty file, expected a header "sentence\\tlabel"`);
  const header = rows[0].split("\t");
  const si = header.indexOf("sentence");
  const li = header.indexOf("label");
  if (si < 0 || (li < 0 && header.indexOf("index") < 0)) {
    throw new DatasetError(`${file}:1: expected a header with columns "sentence" and "label" (or "index" and "sentence"), got ${JSON.stringify(rows[0])}`);
  }
  const out: TextExample[] = [];
  for (let r = 1; r < rows.length; r++) {
    const f = rows[r].split("\t");
    if (f.length !== header.length) {
      throw new DatasetError(`${file}:${r + 1}: expected ${header.length} tab-separated fields (${header.join(", ")}), got ${f.length}`);
    }
    let label: number | null = null;
    if (li >= 0) {
      if (!/^\d+$/.test(f[li])) throw new DatasetError(`${file}:${r + 1}: label must be a class id (0, 1, ...), got ${JSON.stringify(f[li])}`);
      label = Number(f[li]);
    }
    out.push({ text: f[si], label });
  }
  return out;
}

/** Sentence polarity v1.0 (rotten tomatoes): one sentence a line in `rt-polarity.pos` (label 1) and
 *  `rt-polarity.neg` (label 0) in `dir`. Returns the positives then the negatives, in file order. */
export function readRottenTomatoes(dir: string): TextExample[] {
  const out: TextExample[] = [];
  for (const [name, label] of [["rt-polarity.pos", 1], ["rt-polarity.neg", 0]] as const) {
    const file = path.join(dir, name);
    lines(readUtf8(file)).forEach((text, i) => {
      if (text.trim() === "") throw new DatasetError(`${file}:${i + 1}: empty line, expected one sentence per line`);
      out.push({ text, label });
    });
  }
  return out;
}

/** CoNLL-2003: `token POS chunk NER` a line, a blank line between sentences, `-DOCSTART-` lines skipped. */
export function readConll(file: string): NerSentence[] {
  const out: NerSentence[] = [];
  let cur: NerSentence = { tokens: [], pos: [], chunk: [], ner: [] };
  const flush = () => {
    if (cur.tokens.length > 0) out.push(cur);
    cur = { tokens: [], pos: [], chunk: [], ner: [] };
  };
  lines(readUtf8(file)).forEach((line, i) => {
    let f = line.split(" "); // the usual layout; anything else goes through the general split
    if (f.length !== 4 || f[0] === "" || f[3] === "") {
      if (line.trim() === "") return flush();
      f = line.trim().split(/\s+/);
    }
    if (f[0] === "-DOCSTART-") return flush();
    if (f.length !== 4) throw new DatasetError(`${file}:${i + 1}: expected 4 space-separated columns (token POS chunk NER), got ${f.length}: ${JSON.stringify(line)}`);
    cur.tokens.push(f[0]);
    cur.pos.push(f[1]);
    cur.chunk.push(f[2]);
    cur.ner.push(f[3]);
  });
  flush();
  return out;
}

/** Code-point index → UTF-16 index of `s` (they differ after an astral character). */
function codePointIndex(s: string, cp: number): number {
  let i = 0;
  for (let k = 0; k < cp && i < s.length; k++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  return i;
}

/** SQuAD v1.1 JSON: {data: [{title, paragraphs: [{context, qas: [{id, question, answers: [{text, answer_start}]}]}]}]}.
 *  Every answer must sit at its answer_start in the context. */
export function readSquad(file: string): QaExample[] {
  const doc = parseJson(readUtf8(file), file, DatasetError);
  function bad(where: string, expected: string, got: unknown): never {
    throw new DatasetError(`${file}: ${where}: expected ${expected}, got ${JSON.stringify(got)?.slice(0, 60)}`);
  }
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObj(doc) || !Array.isArray(doc.data)) bad("top level", 'an object with a "data" array', isObj(doc) ? Object.keys(doc) : doc);
  const out: QaExample[] = [];
  const ids = new Set<string>();
  (doc as { data: unknown[] }).data.forEach((article, ai) => {
    const aw = `data[${ai}]`;
    if (!isObj(article) || !Array.isArray(article.paragraphs)) bad(aw, 'an article with a "paragraphs" array', article);
    const title = typeof article.title === "string" ? article.title : "";
    (article.paragraphs as unknown[]).forEach((para, pi) => {
      const pw = `${aw}.paragraphs[${pi}]`;
      if (!isObj(para) || typeof para.context !== "string" || !Array.isArray(para.qas)) bad(pw, 'a paragraph with a string "context" and a "qas" array', para);
      const context = para.context as string;
      (para.qas as unknown[]).forEach((qa, qi) => {
        const qw = `${pw}.qas[${qi}]`;
        if (!isObj(qa) || typeof qa.id !== "string" || typeof qa.question !== "string" || !Array.isArray(qa.answers)) {
          bad(qw, 'a question with string "id", string "question" and an "answers" array', qa);
        }
        if (ids.has(qa.id as string)) bad(`${qw}.id`, "an id not used before", qa.id);
        ids.add(qa.id as string);
        const answers = (qa.answers as unknown[]).map((a, k) => {
          const w = `${qw}.answers[${k}]`;
          if (!isObj(a) || typeof a.text !== "string" || !Number.isInteger(a.answer_start) || (a.answer_start as number) < 0) {
            bad(w, 'an answer with string "text" and integer "answer_start" >= 0', a);
          }
          const answerStart = codePointIndex(context, a.answer_start as number);
          if (context.slice(answerStart, answerStart + (a.text as string).length) !== a.text) {
            bad(w, `the answer text at answer_start ${a.answer_start} of the context (found ${JSON.stringify(context.slice(answerStart, answerStart + (a.text as string).length))})`, a.text);
          }
          return { text: a.text as string, answerStart };
        });
        out.push({ id: qa.id as string, title, context, question: qa.question as string, answers });
      });
    });
  });
  return out;
}

/** STS Benchmark CSV without header: `sentence1,sentence2,score` (RFC 4180 quoting), score in [0, 5]. */
export function readStsb(file: string): SentencePairExample[] {
  const text = readUtf8(file);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, { info: true, relax_column_count: false, skip_empty_lines: true }) as unknown as typeof records;
  } catch (e) {
    const line = e instanceof CsvError ? (e as CsvError & { lines?: number }).lines : undefined;
    throw new DatasetError(`${file}${line === undefined ? "" : `:${line}`}: not valid CSV (${(e as Error).message})`);
  }
  return records.map(({ record, info }) => {
    if (record.length !== 3) throw new DatasetError(`${file}:${info.lines}: expected 3 fields (sentence1, sentence2, score), got ${record.length}`);
    const score = Number(record[2]);
    if (record[2].trim() === "" || !Number.isFinite(score) || score < 0 || score > 5) {
      throw new DatasetError(`${file}:${info.lines}: score must be a number in [0, 5], got ${JSON.stringify(record[2])}`);
    }
    return { sentence1: record[0], sentence2: record[1], score };
  });
}
