// Dataset readers on the full real files of ../shared/data (counts from shared/PROVENANCE.md), and the
// errors they give on malformed files (file and line named).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readSst2, readRottenTomatoes, readConll, readSquad, readStsb } from "../lib/data/files";
import { DatasetError } from "../lib/errors";
import { describeShared, sharedDir, timings } from "./shared";

const data = (...p: string[]) => path.join(sharedDir(), "data", ...p);
const count = <T>(xs: T[], key: (x: T) => string | number) => {
  const m: Record<string, number> = {};
  for (const x of xs) m[key(x)] = (m[key(x)] ?? 0) + 1;
  return m;
};

describeShared("dataset readers on the real files (../shared/data)", () => {
  const time = timings("tasks_readers");

  test("SST-2: train 67,349 rows (37,569 positive), dev 872, test 1,821 without labels", () => {
    const train = time("readSst2 train.tsv (67,349 rows)", () => readSst2(data("sst2", "train.tsv")));
    expect(train.length).toBe(67349);
    expect(count(train, (x) => x.label!)).toEqual({ 0: 29780, 1: 37569 });
    expect(train[0]).toEqual({ text: "hide new secretions from the parental units ", label: 0 });
    const dev = readSst2(data("sst2", "dev.tsv"));
    expect(dev.length).toBe(872);
    expect(count(dev, (x) => x.label!)).toEqual({ 0: 428, 1: 444 });
    expect(dev[0]).toEqual({ text: "it 's a charming and often affecting journey . ", label: 1 });
    const testSplit = readSst2(data("sst2", "test.tsv"));
    expect(testSplit.length).toBe(1821);
    expect(testSplit.every((x) => x.label === null)).toBe(true);
    // The slice other tests train on (test/fixtures/data/sst2_train_head.tsv) is the file's first 64 rows.
    expect(readSst2(path.join(__dirname, "fixtures", "data", "sst2_train_head.tsv"))).toEqual(train.slice(0, 64));
    expect(testSplit[0].text).toBe("uneasy mishmash of styles and genres .");
  });

  test("rotten tomatoes: 5,331 positive then 5,331 negative lines", () => {
    const rt = readRottenTomatoes(data("rotten_tomatoes"));
    expect(rt.length).toBe(10662);
    expect(count(rt, (x) => x.label!)).toEqual({ 0: 5331, 1: 5331 });
    expect(rt[0].label).toBe(1);
    expect(rt[0].text.startsWith("the rock is destined to be the 21st century's new \" conan \"")).toBe(true);
    expect(rt[5331]).toEqual({ text: "simplistic , silly and tedious . ", label: 0 });
  });

  test("CoNLL-2003: train 14,041 sentences / 203,621 tokens with the NER tag counts; valid 3,250 / 51,362", () => {
    const train = time("readConll train.txt (14,041 sentences)", () => readConll(data("conll2003", "train.txt")));
    expect(train.length).toBe(14041);
    const tags = train.flatMap((s) => s.ner);
    expect(tags.length).toBe(203621);
    expect(count(tags, (t) => t)).toEqual({
      O: 169578, "B-LOC": 7140, "B-PER": 6600, "B-ORG": 6321, "B-MISC": 3438, "I-PER": 4528, "I-ORG": 3704, "I-LOC": 1157, "I-MISC": 1155,
    });
    expect(train[0]).toEqual({
      tokens: ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
      pos: ["NNP", "VBZ", "JJ", "NN", "TO", "VB", "JJ", "NN", "."],
      chunk: ["B-NP", "B-VP", "B-NP", "I-NP", "B-VP", "I-VP", "B-NP", "I-NP", "O"],
      ner: ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"],
    });
    expect(train[1].tokens).toEqual(["Peter", "Blackburn"]);
    expect(train.every((s) => s.tokens.length === s.pos.length && s.tokens.length === s.chunk.length && !s.tokens.includes("-DOCSTART-"))).toBe(true);
    const valid = readConll(data("conll2003", "valid.txt"));
    expect(valid.length).toBe(3250);
    expect(valid.reduce((n, s) => n + s.tokens.length, 0)).toBe(51362);
  });

  test("SQuAD v1.1 part a: 5,696 questions over 24 articles, every answer at its answer_start", () => {
    const qa = time("readSquad dev-v1.1-part-a.json", () => readSquad(data("squad_v1.1", "dev-v1.1-part-a.json")));
    expect(qa.length).toBe(5696);
    expect(new Set(qa.map((q) => q.title)).size).toBe(24);
    expect(new Set(qa.map((q) => q.id)).size).toBe(5696);
    expect(qa[0]).toMatchObject({ id: "56be4db0acb8001400a502ec", title: "Super_Bowl_50", question: "Which NFL team represented the AFC at Super Bowl 50?" });
    expect(qa[0].answers[0]).toEqual({ text: "Denver Broncos", answerStart: 177 });
    const answers = qa.flatMap((q) => q.answers.map((a) => ({ q, a })));
    expect(qa.every((q) => q.answers.length > 0)).toBe(true);
    expect(answers.filter(({ q, a }) => q.context.slice(a.answerStart, a.answerStart + a.text.length) !== a.text)).toEqual([]);
  });

  test("STS-B: train 5,749 and dev 1,500 pairs, quoted fields with commas and doubled quotes", () => {
    const train = time("readStsb stsb-en-train.csv", () => readStsb(data("stsb", "stsb-en-train.csv")));
    expect(train.length).toBe(5749);
    expect(readStsb(data("stsb", "stsb-en-dev.csv")).length).toBe(1500);
    expect(train.every((x) => x.score >= 0 && x.score <= 5)).toBe(true);
    expect(train[0]).toEqual({ sentence1: "A plane is taking off.", sentence2: "An air plane is taking off.", score: 5 });
    // file lines 441 and 1524 (one record a line)
    expect(train[440]).toEqual({ sentence1: "A couple are running towards the ocean.", sentence2: "A man and and woman are running together, holding hands.", score: 2.818 });
    expect(train[1523]).toEqual({ sentence1: 'A dog in a "superman" shirt sleeps on a blanket.', sentence2: "A brown dog in a Superman shirt is laying on a blue blanket.", score: 4 });
  });
});

describe("dataset readers refuse malformed files, naming file and line", () => {
  let dir: string;
  beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-readers-")); });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string | Buffer) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const fails = (fn: () => unknown, msg: string) => {
    expect(fn).toThrow(DatasetError);
    expect(fn).toThrow(msg);
  };

  test("SST-2 TSV", () => {
    const ok = file("ok.tsv", "sentence\tlabel\r\na film \t1\r\nbad\t0\r\n");
    expect(readSst2(ok)).toEqual([{ text: "a film ", label: 1 }, { text: "bad", label: 0 }]);
    const p = file("cols.tsv", "sentence\tlabel\na\t1\nb\tc\t0\n");
    fails(() => readSst2(p), `${p}:3: expected 2 tab-separated fields (sentence, label), got 3`);
    const q = file("label.tsv", "sentence\tlabel\na\tpositive\n");
    fails(() => readSst2(q), `${q}:2: label must be a class id (0, 1, ...), got "positive"`);
    const h = file("header.tsv", "text\tlabel\na\t1\n");
    fails(() => readSst2(h), `${h}:1: expected a header with columns "sentence" and "label"`);
    fails(() => readSst2(path.join(dir, "missing.tsv")), `${path.join(dir, "missing.tsv")}: cannot read (ENOENT)`);
    const u = file("utf8.tsv", Buffer.concat([Buffer.from("sentence\tlabel\na\t1\nb"), Buffer.from([0xc3, 0x28]), Buffer.from("\t0\n")]));
    fails(() => readSst2(u), `${u}:3: not valid UTF-8`);
  });

  test("rotten tomatoes line files", () => {
    const d = path.join(dir, "rt");
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, "rt-polarity.pos"), "good .\nfine .\n");
    fs.writeFileSync(path.join(d, "rt-polarity.neg"), "bad .\n\nworse .\n");
    fails(() => readRottenTomatoes(d), `${path.join(d, "rt-polarity.neg")}:2: empty line, expected one sentence per line`);
    fs.writeFileSync(path.join(d, "rt-polarity.neg"), "bad .");
    expect(readRottenTomatoes(d)).toEqual([{ text: "good .", label: 1 }, { text: "fine .", label: 1 }, { text: "bad .", label: 0 }]);
  });

  test("CoNLL columns", () => {
    const ok = file("ok.conll", "-DOCSTART- -X- -X- O\n\nA DT B-NP O\nB NNP I-NP B-PER\n\n\nC NN B-NP O"); // no final newline
    expect(readConll(ok).map((s) => s.tokens)).toEqual([["A", "B"], ["C"]]);
    const p = file("bad.conll", "A DT B-NP O\nB NNP B-PER\n");
    fails(() => readConll(p), `${p}:2: expected 4 space-separated columns (token POS chunk NER), got 3: "B NNP B-PER"`);
  });

  test("SQuAD JSON", () => {
    const para = (answerStart: number) => ({ context: "Tunekit is written in TypeScript.", qas: [{ id: "q1", question: "In what?", answers: [{ text: "TypeScript", answer_start: answerStart }] }] });
    const ok = file("ok.json", JSON.stringify({ data: [{ title: "T", paragraphs: [para(22)] }] }));
    expect(readSquad(ok)).toEqual([{ id: "q1", title: "T", context: "Tunekit is written in TypeScript.", question: "In what?", answers: [{ text: "TypeScript", answerStart: 22 }] }]);
    const off = file("off.json", JSON.stringify({ data: [{ title: "T", paragraphs: [para(21)] }] }));
    fails(() => readSquad(off), `${off}: data[0].paragraphs[0].qas[0].answers[0]: expected the answer text at answer_start 21 of the context (found " TypeScrip")`);
    const syntax = file("syntax.json", '{"data": [\n  {"title": "T",\n   "paragraphs": [}\n]}');
    fails(() => readSquad(syntax), `${syntax}:3: not valid JSON`);
    const tail = file("tail.json", '{"data": [],\n "x": [1, 2,\n\n 3, ]}');
    fails(() => readSquad(tail), `${tail}:4: not valid JSON`);
    const str = file("str.json", '{"data": [],\n "x": "a\tb"}');
    fails(() => readSquad(str), `${str}:2: not valid JSON`);
    const noData = file("nodata.json", '{"version": "1.1"}');
    fails(() => readSquad(noData), `${noData}: top level: expected an object with a "data" array`);
    const dup = file("dup.json", JSON.stringify({ data: [{ title: "T", paragraphs: [para(22), para(22)] }] }));
    fails(() => readSquad(dup), `${dup}: data[0].paragraphs[1].qas[0].id: expected an id not used before, got "q1"`);
    // answer_start counts code points (Python); the reader converts to JS string indices.
    const emoji = file("emoji.json", JSON.stringify({ data: [{ title: "E", paragraphs: [{ context: "😀 smile here", qas: [{ id: "e", question: "?", answers: [{ text: "here", answer_start: 8 }] }] }] }] }));
    expect(readSquad(emoji)[0].answers[0]).toEqual({ text: "here", answerStart: 9 });
  });

  test("STS-B CSV", () => {
    const ok = file("ok.csv", 'a,"b, c",1.5\r\n"say ""hi""",d,0\n');
    expect(readStsb(ok)).toEqual([{ sentence1: "a", sentence2: "b, c", score: 1.5 }, { sentence1: 'say "hi"', sentence2: "d", score: 0 }]);
    const range = file("range.csv", "a,b,1\nc,d,7.5\n");
    fails(() => readStsb(range), `${range}:2: score must be a number in [0, 5], got "7.5"`);
    const nan = file("nan.csv", "a,b,1\nc,d,high\n");
    fails(() => readStsb(nan), `${nan}:2: score must be a number in [0, 5], got "high"`);
    const two = file("two.csv", "a,1\nc,2\n");
    fails(() => readStsb(two), `${two}:1: expected 3 fields (sentence1, sentence2, score), got 2`);
    const ragged = file("ragged.csv", "a,b,1\nc,d,e,2\n");
    fails(() => readStsb(ragged), `${ragged}:2: not valid CSV`);
    const quote = file("quote.csv", 'a,b,1\n"c,d,2\n');
    fails(() => readStsb(quote), `${quote}:`);
  });
});
