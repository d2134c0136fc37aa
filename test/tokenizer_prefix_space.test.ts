// Pre-split words (isSplitIntoWords) with byte-level BPE, as the Rust tokenizers engine encodes pre-tokenized input:
// each word on its own, "Ġ" before each word only with add_prefix_space (GPT-2's and RoBERTa's default is false).
// Expected ids / word ids / offsets: test/fixtures/golden_prefix_space.py (independent reference), hand-checked
// against gpt2-small-random/vocab.json: "SO" 15821, "ĠSO" 12809, "-" 12, "Ġ-" 532, "J" 41, "ĠJ" 449. The RoBERTa
// (test/fixtures/models/roberta-tiny-random) and WordPiece (the embedded brown-bert) cases run without ../shared;
// the GPT-2 ones need its real vocabulary (../shared/models/gpt2-small-random).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { tokenClassificationFeatures } from "../lib/data/features/token_classification";
import { IGNORE_INDEX } from "../lib/data/features/collate";
import { TunekitError } from "../lib/errors";
import { describeShared, modelDir } from "./shared";
import { BROWN_BERT } from "./helpers";

type Expect = { input_ids: number[]; word_ids: (number | null)[]; offset_mapping: [number, number][] };
type BySetting = { false: Expect; true: Expect };
interface Fixture {
  cases: { words: string[]; gpt2: BySetting; roberta: BySetting }[];
  pair: { words: [string[], string[]]; roberta: BySetting };
}
const fixture: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "tokenizer_prefix_space.json"), "utf8"));
const ROBERTA = path.join(__dirname, "fixtures", "models", "roberta-tiny-random");
const pick = (e: Expect) => ({ input_ids: e.input_ids, word_ids: e.word_ids, offset_mapping: e.offset_mapping });

/** Ids, word ids and offsets of every reference case in both settings, by load option and by call option. */
async function expectReference(name: "gpt2" | "roberta", own: Tokenizer, spaced: Tokenizer): Promise<void> {
  for (const c of fixture.cases) {
    const want = c[name];
    const at = (e: Expect) => ({ words: c.words, ...pick(e) });
    expect(at(await own.encode(c.words, null, { isSplitIntoWords: true }))).toEqual({ words: c.words, ...pick(want.false) });
    expect(at(await spaced.encode(c.words, null, { isSplitIntoWords: true }))).toEqual({ words: c.words, ...pick(want.true) });
    // The per-call option (transformers' add_prefix_space call argument) gives the same as loading with it.
    expect(at(await own.encode(c.words, null, { isSplitIntoWords: true, addPrefixSpace: true }))).toEqual({ words: c.words, ...pick(want.true) });
    expect(at(await spaced.encode(c.words, null, { isSplitIntoWords: true, addPrefixSpace: false }))).toEqual({ words: c.words, ...pick(want.false) });
  }
  // A batch gives each row what it gives alone.
  const batch = await own.encodeBatch(fixture.cases.map((c) => c.words), { isSplitIntoWords: true });
  expect(batch.input_ids).toEqual(fixture.cases.map((c) => c[name].false.input_ids));
  expect(batch.word_ids).toEqual(fixture.cases.map((c) => c[name].false.word_ids));
}

/** Token classification features of the first reference case: add_prefix_space by default (run_ner), off on request. */
async function expectTokenClassification(name: "gpt2" | "roberta", tok: Tokenizer): Promise<void> {
  const c = fixture.cases[0];
  const tags = c.words.map((w) => (w === "JAPAN" || w === "CHINA" ? "B-LOC" : "O"));
  const d = await tokenClassificationFeatures(tok, [{ words: c.words, tags }], { label2id: { O: 0, "B-LOC": 1 } });
  expect(d.features[0].inputIds).toEqual(c[name].true.input_ids);
  expect(d.features[0].wordIds).toEqual(c[name].true.word_ids);
  // The first sub-token of each word carries its tag; the rest and the specials are ignored.
  const wordIds = c[name].true.word_ids;
  expect(d.features[0].labels).toEqual(wordIds.map((w, t) => (w === null || (t > 0 && wordIds[t - 1] === w) ? IGNORE_INDEX : tags[w] === "O" ? 0 : 1)));
  const off = await tokenClassificationFeatures(tok, [{ words: c.words, tags }], { label2id: { O: 0, "B-LOC": 1 }, addPrefixSpace: false });
  expect(off.features[0].inputIds).toEqual(c[name].false.input_ids);
}

describe("RoBERTa and WordPiece, pre-split words (add_prefix_space)", () => {
  let roberta: Tokenizer, robertaSpace: Tokenizer, bert: Tokenizer;
  beforeAll(async () => {
    roberta = await AutoTokenizer.fromPretrained(ROBERTA);
    robertaSpace = await AutoTokenizer.fromPretrained(ROBERTA, { addPrefixSpace: true });
    bert = await AutoTokenizer.fromPretrained(BROWN_BERT);
  });

  test("the tokenizer's own setting: false for RoBERTa, the load option overrides it, none for WordPiece", () => {
    expect([roberta.addPrefixSpace, robertaSpace.addPrefixSpace, bert.addPrefixSpace]).toEqual([false, true, null]);
  });

  test("roberta: ids, word ids and offsets equal the reference in both settings", () => expectReference("roberta", roberta, robertaSpace));

  test("RoBERTa pairs of word lists: <s> A </s></s> B </s>, word ids restart in the second sequence", async () => {
    const [a, b] = fixture.pair.words;
    for (const [tok, want] of [[roberta, fixture.pair.roberta.false], [robertaSpace, fixture.pair.roberta.true]] as const) {
      const e = await tok.encode(a, b, { isSplitIntoWords: true });
      expect(pick(e as unknown as Expect)).toEqual(pick(want));
      const firstSep = want.word_ids.indexOf(null, 1);
      expect(e.sequence_ids).toEqual(want.word_ids.map((w, i) => (w === null ? null : i < firstSep ? 0 : 1)));
    }
  });

  test("RoBERTa's offset trimming knows the space was added: each word's first token keeps its first character", async () => {
    // roberta-tiny-random's post-processor says add_prefix_space false; the override sets it with the pre-tokenizer's
    // (as RobertaTokenizer builds both), else "ĠS" and "Ġ-" would be trimmed to empty spans.
    const r = await robertaSpace.encode(["SOCCER", "-"], null, { isSplitIntoWords: true });
    expect(r.tokens).toEqual(["<s>", "ĠS", "O", "C", "C", "ER", "Ġ-", "</s>"]);
    expect(r.offset_mapping).toEqual([[0, 0], [0, 1], [1, 2], [2, 3], [3, 4], [4, 6], [0, 1], [0, 0]]);
  });

  test("token classification encodes byte-level words with add_prefix_space (run_ner), unless told otherwise; WordPiece has no such setting", async () => {
    await expectTokenClassification("roberta", roberta);
    const c = fixture.cases[0];
    const tags = c.words.map((w) => (w === "JAPAN" || w === "CHINA" ? "B-LOC" : "O"));
    // WordPiece has no such setting: the option changes nothing there.
    const b1 = await tokenClassificationFeatures(bert, [{ words: c.words, tags }], { label2id: { O: 0, "B-LOC": 1 } });
    const b2 = await tokenClassificationFeatures(bert, [{ words: c.words, tags }], { label2id: { O: 0, "B-LOC": 1 }, addPrefixSpace: false });
    expect(b1.features[0].inputIds).toEqual(b2.features[0].inputIds);
  });

  test("addPrefixSpace is refused where it means nothing, or is not a boolean", async () => {
    await expect(AutoTokenizer.fromPretrained(BROWN_BERT, { addPrefixSpace: true })).rejects.toThrow(/addPrefixSpace applies to byte-level BPE tokenizers/);
    await expect(bert.encode(["a"], null, { isSplitIntoWords: true, addPrefixSpace: true })).rejects.toThrow(TunekitError);
    await expect(bert.encode("a", null, { addPrefixSpace: false })).rejects.toThrow(/addPrefixSpace applies to byte-level BPE tokenizers/);
    await expect(roberta.encode("a", null, { addPrefixSpace: "yes" as unknown as boolean })).rejects.toThrow(/addPrefixSpace must be true or false, got "yes"/);
    await expect(AutoTokenizer.fromPretrained(ROBERTA, { addPrefixSpace: 1 as unknown as boolean })).rejects.toThrow(/addPrefixSpace must be true or false, got 1/);
    await expect(tokenClassificationFeatures(roberta, [{ words: ["a"], tags: ["O"] }], { addPrefixSpace: "no" as unknown as boolean })).rejects.toThrow(/addPrefixSpace must be true or false/);
  });
});

describeShared("GPT-2 (the real vocabulary of ../shared/models/gpt2-small-random), pre-split words (add_prefix_space)", () => {
  let gpt2: Tokenizer, gpt2Space: Tokenizer;
  let tmp: string;
  beforeAll(async () => {
    gpt2 = await AutoTokenizer.fromPretrained(modelDir("gpt2-small-random"));
    gpt2Space = await AutoTokenizer.fromPretrained(modelDir("gpt2-small-random"), { addPrefixSpace: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-prefix-"));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("the tokenizer's own setting: false for GPT-2, the load option overrides it", () => {
    expect([gpt2.addPrefixSpace, gpt2Space.addPrefixSpace]).toEqual([false, true]);
  });

  test("gpt2: ids, word ids and offsets equal the reference in both settings", () => expectReference("gpt2", gpt2, gpt2Space));

  test("token classification encodes GPT-2's byte-level words with add_prefix_space (run_ner), unless told otherwise", () => expectTokenClassification("gpt2", gpt2));

  test("SOCCER - JAPAN: no word gets a space by default; every word does with add_prefix_space", async () => {
    const words = ["SOCCER", "-", "JAPAN"];
    const plain = await gpt2.encode(words, null, { isSplitIntoWords: true });
    expect(plain.tokens).toEqual(["SO", "CC", "ER", "-", "J", "AP", "AN"]);
    expect(plain.input_ids).toEqual([15821, 4093, 1137, 12, 41, 2969, 1565]);
    expect(plain.word_ids).toEqual([0, 0, 0, 1, 2, 2, 2]);
    const spaced = await gpt2Space.encode(words, null, { isSplitIntoWords: true });
    expect(spaced.tokens).toEqual(["ĠSO", "CC", "ER", "Ġ-", "ĠJ", "AP", "AN"]);
    expect(spaced.input_ids).toEqual([12809, 4093, 1137, 532, 449, 2969, 1565]);
    // Offsets index into each word; the added space is no character of it.
    expect(spaced.offset_mapping).toEqual([[0, 2], [2, 4], [4, 6], [0, 1], [0, 1], [1, 3], [3, 5]]);
  });

  test("plain text follows the same setting: the first word gets Ġ only with add_prefix_space", async () => {
    expect((await gpt2.encode("SOCCER - JAPAN", null, {})).tokens).toEqual(["SO", "CC", "ER", "Ġ-", "ĠJ", "AP", "AN"]);
    expect((await gpt2Space.encode("SOCCER - JAPAN", null, {})).tokens).toEqual(["ĠSO", "CC", "ER", "Ġ-", "ĠJ", "AP", "AN"]);
    expect((await gpt2.encode("SOCCER", null, { addPrefixSpace: true })).input_ids).toEqual([12809, 4093, 1137]);
  });

  test("tokenizer_config.json and tokenizer.json decide as transformers does; saving states the setting", async () => {
    const copy = (name: string, files: Record<string, string>, from = modelDir("gpt2-small-random")) => {
      const dir = path.join(tmp, name);
      fs.mkdirSync(dir, { recursive: true });
      for (const f of ["vocab.json", "merges.txt"]) fs.copyFileSync(path.join(from, f), path.join(dir, f));
      for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
      return dir;
    };
    const first = async (dir: string) => (await AutoTokenizer.fromPretrained(dir)).encode(["SOCCER"], null, { isSplitIntoWords: true }).then((e) => e.tokens[0]);
    expect(await first(copy("cfg-true", { "tokenizer_config.json": JSON.stringify({ add_prefix_space: true }) }))).toBe("ĠSO");
    // Saved with the setting, the files reload with it.
    const saved = path.join(tmp, "saved");
    await gpt2Space.save(saved);
    expect(JSON.parse(fs.readFileSync(path.join(saved, "tokenizer_config.json"), "utf8")).add_prefix_space).toBe(true);
    const tj = JSON.parse(fs.readFileSync(path.join(saved, "tokenizer.json"), "utf8"));
    expect(tj.pre_tokenizer.add_prefix_space).toBe(true);
    expect((await AutoTokenizer.fromPretrained(saved)).addPrefixSpace).toBe(true);
    expect(await first(saved)).toBe("ĠSO");
    // tokenizer.json alone: GPT2Tokenizer rebuilds its pre-tokenizer from add_prefix_space (default false) ...
    fs.rmSync(path.join(saved, "tokenizer_config.json"));
    fs.writeFileSync(path.join(saved, "config.json"), JSON.stringify({ model_type: "gpt2" }));
    expect(await first(saved)).toBe("SO");
    // ... a generic fast tokenizer keeps what tokenizer.json says.
    fs.writeFileSync(path.join(saved, "tokenizer_config.json"), JSON.stringify({ tokenizer_class: "PreTrainedTokenizerFast" }));
    expect(await first(saved)).toBe("ĠSO");
  });

  test("tokens added after loading reach the engines built for the other setting, with the same ids", async () => {
    const tok = await AutoTokenizer.fromPretrained(modelDir("gpt2-small-random"));
    tok.padToken = "<pad>";
    expect(tok.padTokenId).toBe(50257);
    const e = await tok.encodeBatch([["SOCCER", "<pad>"], ["-"]], { isSplitIntoWords: true, addPrefixSpace: true, padding: true });
    expect(e.input_ids).toEqual([[12809, 4093, 1137, 50257], [532, 50257, 50257, 50257]]);
    expect(e.word_ids).toEqual([[0, 0, 0, 1], [0, null, null, null]]);
  });

});
