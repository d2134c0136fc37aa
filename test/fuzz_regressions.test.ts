// Regression tests for what fuzzing the parsers found (npm run fuzz; scripts/fuzz/). Each input is the
// minimal form of a finding: inline here, or gzipped in test/fixtures/fuzz/ (made by
// scripts/fuzz/make-regression-fixtures.mjs). Every one must be refused with a typed TunekitError that
// says what was wrong — not a RangeError, a process abort, a hang or a giant allocation.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { CheckpointError, ConfigError, TunekitError } from "../lib/errors";
import { parseTorchBin, readSafetensors, ZipArchive } from "../lib/io";
import { readConfig } from "../lib/models/config_json";
import { MAX_JSON_DEPTH } from "../lib/io/json_safe";
import { unpickle } from "../lib/io/pickle";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { loadTokenizerFiles } from "../lib/data/tokenizer/files";
import { loadDataset, loadQaDataset, readRecords } from "../lib/data/files";
import { DatasetError } from "../lib/errors";
import { buildLabelMap, labelId } from "../lib/data/features/labels";

const FIX = path.join(__dirname, "fixtures", "fuzz");
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-fuzzreg-")); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function folder(files: Record<string, string | Uint8Array>): string {
  const dir = path.join(tmp, `case${n++}`);
  fs.mkdirSync(dir);
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), data);
  return dir;
}
const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
const fixture = (name: string) => new Uint8Array(zlib.gunzipSync(fs.readFileSync(path.join(FIX, `${name}.gz`))));
/** Runs `fn`, returns what it threw (a finding was a throw of the wrong class, so the class is checked by the caller). */
async function thrown(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection, got none");
}

/** A tiny WordPiece tokenizer.json; `post` replaces its post-processor. */
function tokenizerJson(post: unknown = null): string {
  const vocab = { "[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, hello: 5, world: 6 };
  return JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: [],
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" }, post_processor: post, decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  });
}
const CLS = { SpecialToken: { id: "[CLS]", type_id: 0 } }, A = { Sequence: { id: "A", type_id: 0 } }, B = { Sequence: { id: "B", type_id: 1 } };
const CLS_DEF = { "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] } };

describe("deeply nested JSON is refused by every JSON reader, not a stack-overflow RangeError", () => {
  const tooDeep = deep(MAX_JSON_DEPTH + 1);

  test("config.json", () => {
    const dir = folder({ "config.json": `{"model_type":"bert","hidden_size":${deep(50000)}}` });
    const e = (() => { try { readConfig(dir); } catch (err) { return err; } })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(String((e as Error).message)).toMatch(/config\.json: JSON nests deeper than 512 levels \(at character \d+\); expected a flat document/);
  });

  test("safetensors header (the shape was quoted in the error with JSON.stringify)", () => {
    const header = Buffer.from(`{"w":{"dtype":"F32","shape":${deep(50000)},"data_offsets":[0,0]}}`);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const dir = folder({ "model.safetensors": Buffer.concat([len, header]) });
    expect(() => readSafetensors(path.join(dir, "model.safetensors"))).toThrow(CheckpointError);
    expect(() => readSafetensors(path.join(dir, "model.safetensors"))).toThrow(/header: JSON nests deeper than 512 levels/);
  });

  test("tokenizer.json and tokenizer_config.json", async () => {
    await expect(AutoTokenizer.fromPretrained(folder({ "tokenizer.json": `{"model":${tooDeep}}` }))).rejects.toThrow(/tokenizer\.json: JSON nests deeper than 512/);
    await expect(AutoTokenizer.fromPretrained(folder({ "tokenizer.json": tokenizerJson(), "tokenizer_config.json": `{"x":${tooDeep}}` })))
      .rejects.toThrow(/tokenizer_config\.json: JSON nests deeper/);
  });

  test("dataset files: a JSON array, a JSON-lines row (a bad row, skippable), SQuAD", async () => {
    const dir = folder({
      "data.json": `[{"text":"a","label":${deep(40000)}}]`,
      "data.jsonl": `{"text":"ok","label":"x"}\n{"text":${tooDeep}}\n`,
      "squad.json": `{"data":[{"paragraphs":${tooDeep}}]}`,
    });
    const e = await thrown(() => readRecords(path.join(dir, "data.json")));
    expect(e).toBeInstanceOf(DatasetError);
    expect((e as Error).message).toMatch(/data\.json: JSON nests deeper than 512 levels/);
    const r = await readRecords(path.join(dir, "data.jsonl"), { onBadRow: "skip" });
    expect(r.records).toEqual([{ text: "ok", label: "x" }]);
    expect(r.skipped).toEqual([expect.objectContaining({ line: 2, reason: expect.stringMatching(/JSON nests deeper than 512/) })]);
    await expect(loadQaDataset(path.join(dir, "squad.json"))).rejects.toThrow(/squad\.json: JSON nests deeper than 512/);
  });

  test("nesting up to the limit still parses", () => {
    const dir = folder({ "config.json": `{"model_type":"bert","extra":${deep(MAX_JSON_DEPTH - 1)}}` });
    expect(readConfig(dir).hiddenSize).toBe(768);
  });
});

describe("tokenizer.json post-processors the Rust engine would panic on (aborting the process) are refused first", () => {
  const load = (post: unknown) => AutoTokenizer.fromPretrained(folder({ "tokenizer.json": tokenizerJson(post) }));

  test("$B in the single template (the engine indexed a second sequence that a single text lacks)", async () => {
    const p = load({ type: "TemplateProcessing", single: [B, CLS], pair: [A, B], special_tokens: CLS_DEF });
    await expect(p).rejects.toThrow(TunekitError);
    await expect(p).rejects.toThrow(/post_processor TemplateProcessing single\[0\]: sequence "B"; expected "A" \(a single text has no "B"\)/);
  });

  test("a special token the template names but does not define", async () => {
    const p = load({ type: "TemplateProcessing", single: [{ SpecialToken: { id: "[NOPE]", type_id: 0 } }, A], pair: [A, B], special_tokens: CLS_DEF });
    await expect(p).rejects.toThrow(/single\[0\]: special token "\[NOPE\]" is not defined in special_tokens \("\[CLS\]"\)/);
  });

  test("a special token with ids and tokens of different lengths, inside a Sequence processor", async () => {
    const bad = { "[CLS]": { id: "[CLS]", ids: [], tokens: ["[CLS]"] } };
    const p = load({ type: "Sequence", processors: [{ type: "TemplateProcessing", single: [CLS, A], pair: [CLS, A, B], special_tokens: bad }] });
    await expect(p).rejects.toThrow(/TemplateProcessing special token "\[CLS\]": has 0 ids but 1 tokens; expected one id per token/);
  });

  test("a valid template still loads and adds its tokens", async () => {
    const tok = await load({ type: "TemplateProcessing", single: [CLS, A], pair: [CLS, A, B], special_tokens: CLS_DEF });
    expect((await tok.encode("hello world")).input_ids).toEqual([2, 5, 6]);
  });
});

describe("prototype names are ordinary keys in vocabularies and label maps", () => {
  test("vocab.json + merges.txt with a special token named 'constructor' (the lookup found Object's constructor)", async () => {
    const dir = folder({
      "vocab.json": JSON.stringify({ a: 0, b: 1, ab: 2, "<|endoftext|>": 3 }), "merges.txt": "#version: 0.2\na b\n",
      "special_tokens_map.json": JSON.stringify({ pad_token: "constructor" }),
    });
    const files = loadTokenizerFiles(dir);
    expect(files.parsed.added_tokens).toEqual(expect.arrayContaining([expect.objectContaining({ content: "constructor", id: 4, special: true })]));
    const tok = await AutoTokenizer.fromPretrained(dir);
    expect(tok.padTokenId).toBe(4);
  });

  test("labels '__proto__' and 'constructor' get ids; 'toString' is not a label", () => {
    const map = buildLabelMap(["constructor", "__proto__", "a"]);
    expect(Object.keys(map.label2id)).toEqual(["__proto__", "a", "constructor"]);
    expect(labelId(map, "__proto__", "t")).toBe(0);
    expect(labelId(map, "constructor", "t")).toBe(2);
    expect(() => labelId(map, "toString", "t")).toThrow(/t: label "toString" is not in label2id/);
  });

  test("a dataset whose labels are prototype names", async () => {
    const dir = folder({ "d.csv": "text,label\nx,__proto__\ny,constructor\nz,__proto__\nw,constructor\n" });
    const ds = await loadDataset(path.join(dir, "d.csv"), { validation: 0 });
    expect(ds.labelNames).toEqual(["__proto__", "constructor"]);
    expect(ds.train.map((e) => e.label)).toEqual(["__proto__", "constructor", "__proto__", "constructor"]);
  });
});

describe("sizes from the file are bounded before anything is allocated", () => {
  test("model_max_length 1e20 is 'no limit', not a 1e20-token padding target", async () => {
    const tok = await AutoTokenizer.fromPretrained(folder({ "tokenizer.json": tokenizerJson(), "tokenizer_config.json": JSON.stringify({ model_max_length: 1e20, pad_token: "[PAD]" }) }));
    expect(tok.modelMaxLength).toBe(Infinity);
    await expect(tok.encode("hello", null, { padding: "max_length" })).rejects.toThrow(/needs maxLength: this tokenizer has no model_max_length/);
  });

  test("num_labels 1e9 (a label map of a billion entries)", () => {
    const dir = folder({ "config.json": JSON.stringify({ model_type: "bert", num_labels: 1e9 }) });
    expect(() => readConfig(dir)).toThrow(ConfigError);
    expect(() => readConfig(dir)).toThrow(/num_labels must be at most 100000, got 1000000000/);
  });

  test("a stride-0 torch view of 10^8 elements over a 1-element storage", () => {
    expect(() => parseTorchBin(fixture("stride0_view.bin"), "x.bin")).toThrow(CheckpointError);
    expect(() => parseTorchBin(fixture("stride0_view.bin"), "x.bin"))
      .toThrow(/x\.bin: tensor 'w': size \[100000000\] stride \[0\] is a view of 100000000 elements over a storage of 1; expected at most \d+ \(4 × the file's \d+ bytes\)/);
  });

  test("a deflate entry claiming 100 MB from a few bytes (zip bomb)", () => {
    const zip = new ZipArchive(fixture("zip_bomb.bin"), "x.bin");
    expect(() => zip.read("archive/data.pkl")).toThrow(/x\.bin: zip entry 'archive\/data\.pkl' claims 100000000 bytes from \d+ compressed; expected at most 1032:1 .* \(a zip bomb\?\)/);
  });
});

describe("hostile pickles fail fast with a CheckpointError", () => {
  test("LONG4 of 300 000 bytes (was built into a BigInt byte by byte: quadratic)", () => {
    const t0 = Date.now();
    expect(() => parseTorchBin(fixture("long4_huge.bin"), "x.bin")).toThrow(/x\.bin: integer of 300000 bytes is too large \(pickle byte 2\)/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  test("LONG1 wider than 8 bytes: sign-extension bytes still decode, a value past 2^53 is refused", () => {
    const hooks = { checkGlobal: () => "no", reduce: () => null, build: () => undefined, persistentLoad: () => null };
    const long1 = (...b: number[]) => unpickle(new Uint8Array([0x80, 2, 0x8a, b.length, ...b, 0x2e]), hooks, "x");
    expect(long1(5, 0, 0, 0, 0, 0, 0, 0, 0, 0)).toBe(5);
    expect(long1(0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)).toBe(-5);
    expect(() => long1(0, 0, 0, 0, 0, 0, 0, 0x80, 0)).toThrow(/x: integer of 9 bytes is too large/);
    expect(() => long1(0, 0, 0, 0, 0, 0, 0x40, 0)).toThrow(/x: integer 18014398509481984 is too large/);
  });

  test("APPENDS of 150 000 items (list.push(...items) overflowed the stack)", () => {
    expect(() => parseTorchBin(fixture("appends_long.bin"), "x.bin")).toThrow(/x\.bin: the pickle does not hold a dict of tensors/);
  });
});

describe("Parquet page headers are checked before hyparquet decodes them", () => {
  test("a v2 data page without its level lengths (hyparquet's RLE decoder looped forever on a NaN offset)", async () => {
    const file = path.join(FIX, "v2_page_without_level_lengths.parquet");
    const e = await thrown(() => readRecords(file));
    expect(e).toBeInstanceOf(DatasetError);
    expect((e as Error).message).toMatch(/column 'score' \(row group 0\), page 0 at byte 170: a v2 data page needs definition\/repetition level lengths within its 66 bytes, got undefined and undefined$/);
  });
});

describe("added tokens are merged in linear time", () => {
  test("40 000 added_tokens_decoder entries + 40 000 added_tokens.json entries", () => {
    const decoder = Object.fromEntries(Array.from({ length: 40000 }, (_, i) => [String(10 + i), { content: `<d${i}>`, special: false }]));
    const legacy = Object.fromEntries(Array.from({ length: 40000 }, (_, i) => [`<l${i}>`, 40010 + i]));
    const dir = folder({
      "vocab.txt": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e"].join("\n") + "\n",
      "tokenizer_config.json": JSON.stringify({ added_tokens_decoder: decoder }), "added_tokens.json": JSON.stringify(legacy),
    });
    const t0 = Date.now();
    const files = loadTokenizerFiles(dir);
    expect(Date.now() - t0).toBeLessThan(5000); // quadratic: 1.6e9 string comparisons
    expect(files.parsed.added_tokens!.length).toBe(80000 + 5);
  });
});
