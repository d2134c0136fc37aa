// Tokenizer files: missing / malformed vocabularies, save -> load round trips in Hugging Face layout,
// vocab-only RoBERTa and config options, and tunekit's truncation rules against the engine's own. On the
// embedded models/brown-bert (WordPiece) and test/fixtures/models/gpt2-tiny-random (byte-level BPE); the
// ids of the real checkpoints against the Python reference are tokenizer.test.ts's.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as engine from "tokenizers";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { truncationTargets, windowRanges, windowPairs } from "../lib/data/tokenizer/truncation";
import { TunekitError } from "../lib/errors";
import { BROWN_BERT, fixtureModel } from "./helpers";

interface Fixture {
  singles: { text: string; bert: number[]; gpt2: number[] }[];
  pairs: { text: string; pair: string; bert: number[] }[];
}
const fixture: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "tokenizer_ids.json"), "utf8"));
const GPT2 = fixtureModel("gpt2-tiny-random");
const texts = fixture.singles.map((s) => s.text);

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-tokio-")); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function folder(name: string, files: Record<string, string>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, data] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), data);
  return dir;
}

async function expectLoadError(dir: string, ...parts: (string | RegExp)[]): Promise<void> {
  const p = AutoTokenizer.fromPretrained(dir);
  await expect(p).rejects.toThrow(TunekitError);
  for (const part of parts) await expect(p).rejects.toThrow(part);
}

describe("truncation rules (tokenizers' truncate_encodings and Encoding::truncate)", () => {
  test("longest_first splits the room as tokenizers' own test table says", () => {
    // Lengths 0, 2, 4, 8 (empty, short, medium, long) and max_length 7, from tokenizers/src/utils/truncation.rs.
    const table: [number, number, number, number][] = [
      [0, 0, 0, 0], [0, 2, 0, 2], [0, 4, 0, 4], [0, 8, 0, 7], [2, 0, 2, 0], [2, 2, 2, 2], [2, 4, 2, 4], [2, 8, 2, 5],
      [4, 0, 4, 0], [4, 2, 4, 2], [4, 4, 3, 4], [4, 8, 3, 4], [8, 0, 7, 0], [8, 2, 5, 2], [8, 4, 4, 3], [8, 8, 3, 4],
    ];
    for (const [a, b, na, nb] of table) {
      const t = truncationTargets(a, b, 7, "longest_first");
      expect({ a, b, t }).toEqual({ a, b, t: { a: Math.min(a, na), b: Math.min(b, nb) } });
    }
    expect(truncationTargets(10, null, 7, "longest_first")).toEqual({ a: 7, b: null });
    expect(truncationTargets(10, 3, 7, "only_first")).toEqual({ a: 4, b: 3 });
    expect(truncationTargets(3, 10, 7, "only_second")).toEqual({ a: 3, b: 4 });
    expect(truncationTargets(3, 10, 2, "only_second")).toMatch(/the pair has 10 tokens but 11 must go/);
    expect(truncationTargets(3, null, 2, "only_second")).toMatch(/needs a pair/);
  });

  test("windows equal the engine's Encoding.truncate, both sides, with and without stride", async () => {
    const tok = engine.Tokenizer.fromFile(path.join(BROWN_BERT, "tokenizer.json"));
    const text = Array.from({ length: 23 }, (_, i) => `w${i}`).join(" "); // w ##0 w ##1 ... w ##1 ##0 ...
    const n = (await tok.encode(text, null, { addSpecialTokens: false })).getIds().length;
    expect(n).toBeGreaterThan(40);
    for (const side of ["right", "left"] as const) {
      for (const [max, stride] of [[10, 0], [10, 3], [18, 4], [7, 6], [n - 1, 2], [n, 0], [1, 0]]) {
        const enc = await tok.encode(text, null, { addSpecialTokens: false });
        const ids = enc.getIds();
        enc.truncate(max, stride, side);
        const want = [enc, ...enc.getOverflowing()].map((e) => e.getIds());
        const got = windowRanges(ids.length, max, stride, side).map(([s, e]) => ids.slice(s, e));
        expect({ side, max, stride, got }).toEqual({ side, max, stride, got: want });
      }
    }
    expect(() => windowRanges(10, 4, 4, "right")).toThrow(/stride 4 must be smaller than the 4 tokens kept/);
    expect(windowPairs(1, 3)).toEqual([[0, 0], [0, 1], [0, 2]]);
    expect(windowPairs(2, 2)).toEqual([[0, 0], [1, 0], [1, 1], [0, 1]]);
  });
});

describe("tokenizer files", () => {
  test("truncated rows equal the engine's own truncation (main row), every strategy and side", async () => {
    // The engine's encode-time truncation is the reference here except where it departs from tokenizers' published
    // truncate_encodings (longest_first when both texts exceed half the room: its split then depends on the side);
    // there tunekit follows the published rule, checked against tokenizers' own test table above. See TOKENIZERS.md.
    const ref = engine.Tokenizer.fromFile(path.join(BROWN_BERT, "tokenizer.json"));
    const tok = await AutoTokenizer.fromPretrained(BROWN_BERT);
    const inputs: [string, string][] = [
      ...fixture.pairs.map((p) => [p.text, p.pair] as [string, string]),
      [fixture.pairs[0].pair, fixture.pairs[1].text], [texts[3], texts[30]], [texts[40], texts[41]], [texts[5], texts[6]],
    ];
    const len = async (t: string) => (await tok.encode(t, null, { addSpecialTokens: false })).input_ids.length;
    const strategies = { longest_first: "LongestFirst", only_first: "OnlyFirst", only_second: "OnlySecond" } as const;
    let compared = 0;
    let errors = 0;
    for (const side of ["right", "left"] as const) {
      tok.truncationSide = side;
      for (const [strategy, engineName] of Object.entries(strategies)) {
        for (const maxLength of [12, 33, 64]) {
          for (const [a, b] of inputs) {
            const room = maxLength - 3;
            if (strategy === "longest_first" && Math.min(await len(a), await len(b)) > room / 2) continue;
            ref.setTruncation(maxLength, { strategy: engineName as engine.TruncationStrategy, direction: side });
            let want: number[] | null = null;
            try { want = (await ref.encode(a, b)).getIds(); } catch { want = null; }
            const got = tok.encode(a, b, { truncation: strategy as "only_first", maxLength });
            if (want === null) { await expect(got).rejects.toThrow(/must go to fit/); errors++; }
            else { expect((await got).input_ids).toEqual(want); compared++; }
          }
          if (strategy !== "only_second") {
            ref.setTruncation(maxLength, { strategy: engineName as engine.TruncationStrategy, direction: side });
            for (const t of [texts[0], fixture.pairs[2].pair]) {
              expect((await tok.encode(t, null, { truncation: strategy as "only_first", maxLength })).input_ids).toEqual((await ref.encode(t)).getIds());
              compared++;
            }
          }
        }
      }
    }
    tok.truncationSide = "right";
    expect(compared).toBeGreaterThan(80);
    expect(errors).toBeGreaterThan(3);
  });

  test("a folder without tokenizer files gives one error naming it and the files looked for", async () => {
    const empty = folder("empty", { "config.json": "{}" });
    await expectLoadError(empty, `no tokenizer files in ${empty}: looked for tokenizer.json, vocab.txt (WordPiece), vocab.json + merges.txt (byte-level BPE)`);
    const half = folder("half", { "vocab.json": "{\"a\": 0}" });
    await expectLoadError(half, `no tokenizer files in ${half} (vocab.json is there but merges.txt is missing)`);
    await expectLoadError(path.join(tmp, "nope"), `${path.join(tmp, "nope")} is not a directory`);
    await expect(AutoTokenizer.fromPretrained("")).rejects.toThrow(/expected a checkpoint directory path/);
  });

  test("malformed files are refused with the file and the problem", async () => {
    const badJson = folder("bad-json", { "tokenizer.json": "{\"model\": {" });
    await expectLoadError(badJson, `${path.join(badJson, "tokenizer.json")}: not valid JSON (`);
    const badModel = folder("bad-model", { "tokenizer.json": JSON.stringify({ model: { type: "Nonsense" } }) });
    await expectLoadError(badModel, `cannot build a tokenizer from ${badModel} (tokenizer.json)`);
    const noModel = folder("no-model", { "tokenizer.json": "[1, 2]" });
    await expectLoadError(noModel, /tokenizer.json: expected an object with a "model" entry/);
    const badMerges = folder("bad-merges", { "vocab.json": JSON.stringify({ a: 0, b: 1, ab: 2 }), "merges.txt": "#version: 0.2\na b\nab c d\n" });
    await expectLoadError(badMerges, `${path.join(badMerges, "merges.txt")}: line 3 is "ab c d", expected two tokens separated by one space`);
    const unknownMerge = folder("unknown-merge", { "vocab.json": JSON.stringify({ a: 0, b: 1 }), "merges.txt": "a b\n" });
    // The engine would abort the process on this one (a Rust panic): it must be refused before.
    await expectLoadError(unknownMerge, `${path.join(unknownMerge, "merges.txt")}: merge 1 ("a" + "b") uses "ab", which is not in the vocabulary`);
    const jsonMerge = folder("json-merge", { "tokenizer.json": JSON.stringify({ model: { type: "BPE", vocab: { a: 0, b: 1 }, merges: [["a", "b"]] } }) });
    await expectLoadError(jsonMerge, `${path.join(jsonMerge, "tokenizer.json")}: merge 1 ("a" + "b") uses "ab", which is not in the vocabulary`);
    const badIds = folder("bad-ids", { "vocab.json": JSON.stringify({ a: 0, b: "one" }), "merges.txt": "" });
    await expectLoadError(badIds, /token "b" has id "one", expected an integer >= 0/);
    const badConfig = folder("bad-config", { "vocab.txt": "[PAD]\n[UNK]\n", "tokenizer_config.json": "{\"unk_token\": 5}" });
    await expectLoadError(badConfig, /tokenizer_config.json "unk_token": expected a string or \{"content": string\}, got 5/);
    const emptyVocab = folder("empty-vocab", { "vocab.txt": "" });
    await expectLoadError(emptyVocab, /vocab.txt: the vocabulary is empty/);
  });

  test("save -> load: BERT (tokenizer.json) writes HF files, vocab.txt byte-identical, same ids from either file", async () => {
    // brown-bert's files, with the model_max_length transformers writes for "no limit" (as bert-tiny ships it).
    const src = folder("src-bert", Object.fromEntries(fs.readdirSync(BROWN_BERT).filter((f) => /^(tokenizer|special|vocab)/.test(f))
      .map((f) => [f, fs.readFileSync(path.join(BROWN_BERT, f), "utf8")])));
    const srcCfg = path.join(src, "tokenizer_config.json");
    fs.writeFileSync(srcCfg, fs.readFileSync(srcCfg, "utf8").replace(/"model_max_length": 128/, '"model_max_length": 1000000000000000019884624838656'));
    const tok = await AutoTokenizer.fromPretrained(src);
    const pairs = fixture.pairs.map((p) => [p.text, p.pair] as [string, string]);
    const singleIds = (await tok.encodeBatch(texts)).input_ids, pairIds = (await tok.encodeBatch(pairs)).input_ids;
    const out = path.join(tmp, "saved-bert");
    const written = await tok.save(out);
    expect(written.map((f) => path.basename(f)).sort()).toEqual(["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]);
    expect(fs.readFileSync(path.join(out, "vocab.txt"))).toEqual(fs.readFileSync(path.join(src, "vocab.txt")));
    const cfgText = fs.readFileSync(path.join(out, "tokenizer_config.json"), "utf8");
    expect(cfgText).toContain("\"model_max_length\": 1000000000000000019884624838656"); // an int for Python, as it was
    const cfg = JSON.parse(cfgText);
    expect(cfg.tokenizer_class).toBe("BertTokenizer");
    expect(cfg.do_lower_case).toBe(true);
    expect(Object.keys(cfg.added_tokens_decoder)).toEqual(["0", "1", "2", "3", "4"]);
    expect(Object.keys(cfg.added_tokens_decoder["2"]).sort()).toEqual(["content", "lstrip", "normalized", "rstrip", "single_word", "special"]);
    expect(JSON.parse(fs.readFileSync(path.join(out, "special_tokens_map.json"), "utf8"))).toEqual(
      JSON.parse(fs.readFileSync(path.join(src, "special_tokens_map.json"), "utf8")));
    expect(fs.readdirSync(out).filter((f) => f.includes(".tmp-"))).toEqual([]);

    const again = await AutoTokenizer.fromPretrained(out);
    expect(again.modelMaxLength).toBe(tok.modelMaxLength);
    expect((await again.encodeBatch(texts)).input_ids).toEqual(singleIds);
    expect((await again.encodeBatch(pairs)).input_ids).toEqual(pairIds);
    fs.rmSync(path.join(out, "tokenizer.json"));
    const fromVocab = await AutoTokenizer.fromPretrained(out);
    expect(fromVocab.source).toBe("vocab.txt");
    expect((await fromVocab.encodeBatch(texts)).input_ids).toEqual(singleIds);
    expect((await fromVocab.encodeBatch(pairs)).input_ids).toEqual(pairIds);
  });

  test("save -> load: GPT-2 (vocab.json + merges.txt) writes tokenizer.json and the same merges; a new pad token survives", async () => {
    const src = GPT2;
    const tok = await AutoTokenizer.fromPretrained(src);
    const ids = (await tok.encodeBatch(texts)).input_ids, V = tok.vocabSize;
    tok.padToken = "[PAD]";
    const out = path.join(tmp, "saved-gpt2");
    await tok.save(out);
    expect(fs.readdirSync(out).sort()).toEqual(["merges.txt", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json"]);
    expect(JSON.parse(fs.readFileSync(path.join(out, "vocab.json"), "utf8"))).toEqual(JSON.parse(fs.readFileSync(path.join(src, "vocab.json"), "utf8")));
    const merges = fs.readFileSync(path.join(out, "merges.txt"), "utf8");
    expect(merges).toBe(fs.readFileSync(path.join(src, "merges.txt"), "utf8") + "\n"); // same lines; now with the final newline
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "tokenizer_config.json"), "utf8"));
    expect(cfg).toMatchObject({ tokenizer_class: "GPT2Tokenizer", model_max_length: 64, pad_token: "[PAD]", eos_token: "<|endoftext|>" });
    expect(cfg.added_tokens_decoder[String(V)]).toEqual({ content: "[PAD]", lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });

    for (const dir of [out, out]) {
      const again = await AutoTokenizer.fromPretrained(dir);
      expect(again.padTokenId).toBe(V);
      expect(again.vocabSize).toBe(V + 1);
      expect((await again.encodeBatch(texts)).input_ids).toEqual(ids);
      fs.rmSync(path.join(out, "tokenizer.json"), { force: true }); // second pass: from vocab.json + merges.txt + added_tokens_decoder
    }
  });

  test("vocab-only RoBERTa: <s> A </s></s> B </s>, trimmed offsets, <mask> takes the space before it", async () => {
    // A RoBERTa-layout vocabulary built from GPT-2's: 4 specials first, <mask> last (as roberta-base's vocab.json).
    const gpt2 = await AutoTokenizer.fromPretrained(GPT2);
    const gpt2Ids = async (t: string) => (await gpt2.encode(t)).input_ids;
    const gpt2Vocab: Record<string, number> = JSON.parse(fs.readFileSync(path.join(GPT2, "vocab.json"), "utf8"));
    const vocab: Record<string, number> = { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3 };
    for (const [t, id] of Object.entries(gpt2Vocab)) if (t !== "<|endoftext|>") vocab[t] = id + 4;
    const MASK = Object.keys(vocab).length;
    vocab["<mask>"] = MASK;
    const dir = folder("roberta", {
      "vocab.json": JSON.stringify(vocab),
      "merges.txt": fs.readFileSync(path.join(GPT2, "merges.txt"), "utf8"),
      "config.json": JSON.stringify({ model_type: "roberta", max_position_embeddings: 514 }),
    });
    const tok = await AutoTokenizer.fromPretrained(dir);
    expect(tok.family).toBe("roberta");
    expect(tok.modelMaxLength).toBe(512);
    expect([tok.bosTokenId, tok.padTokenId, tok.eosTokenId, tok.unkTokenId, tok.maskTokenId, tok.clsTokenId, tok.sepTokenId]).toEqual([0, 1, 2, 3, MASK, 0, 2]);
    expect(tok.modelInputNames).toEqual(["input_ids", "attention_mask"]);
    for (const t of texts) expect((await tok.encode(t)).input_ids).toEqual([0, ...(await gpt2Ids(t)).map((i) => i + 4), 2]);
    const [a, b] = [texts[0], texts[1]];
    const pair = await tok.encode(a, b);
    const ga = (await gpt2Ids(a)).map((i) => i + 4);
    const gb = (await gpt2Ids(b)).map((i) => i + 4);
    expect(pair.input_ids).toEqual([0, ...ga, 2, 2, ...gb, 2]);
    expect(pair.sequence_ids).toEqual([null, ...ga.map(() => 0), null, null, ...gb.map(() => 1), null]);
    // Offsets leave out the space a "Ġ" token carries (trim_offsets).
    const hello = await tok.encode("Hello world, again");
    expect(hello.tokens.filter((t) => t.startsWith("Ġ"))).toHaveLength(2);
    expect(hello.offset_mapping.map(([s, t]) => "Hello world, again".slice(s, t))).toEqual(["", ...hello.tokens.slice(1, -1).map((t) => t.replace(/^Ġ/, "")), ""]);
    const m = await tok.encode("The capital is <mask>.");
    const head = await gpt2.encode("The capital is");
    expect(m.input_ids).toEqual([0, ...head.input_ids.map((i) => i + 4), MASK, 13 + 4, 2]); // no separate "Ġ" before <mask>
    expect(m.tokens.slice(1, -3)).toEqual(head.tokens);
    expect(head.tokens[head.tokens.length - 1]).toBe("Ġis");
    expect(await tok.decode(m.input_ids, { skipSpecialTokens: true })).toBe("The capital is.");
  });

  test("tokenizer_config.json options reach the normalizer (cased, accents, Chinese chars), from vocab.txt and tokenizer.json", async () => {
    // Expected tokens from the Python reference (test/fixtures/golden_tokenizer.py, BertReference with these options)
    // on bert-tiny's vocabulary; this one holds just the pieces those tokens need, so they are the same here.
    const words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cr", "##eme", "br", "##ule", "##e", "東", "京", "##京", "paris"];
    const vocab = words.map((w) => `${w}\n`).join("");
    const json = JSON.parse(fs.readFileSync(path.join(BROWN_BERT, "tokenizer.json"), "utf8")); // same 5 specials at 0-4
    json.model.vocab = Object.fromEntries(words.map((w, i) => [w, i]));
    const text = "Crème Brûlée 東京 Paris";
    const variants: [Record<string, unknown>, string[]][] = [
      [{}, ["cr", "##eme", "br", "##ule", "##e", "東", "京", "paris"]],
      [{ do_lower_case: false }, ["[UNK]", "[UNK]", "東", "京", "[UNK]"]],
      [{ strip_accents: false }, ["[UNK]", "[UNK]", "東", "京", "paris"]],
      [{ tokenize_chinese_chars: false }, ["cr", "##eme", "br", "##ule", "##e", "東", "##京", "paris"]],
      [{ do_lower_case: false, strip_accents: true }, ["[UNK]", "[UNK]", "東", "京", "[UNK]"]],
    ];
    for (const [cfg, want] of variants) {
      const name = Object.keys(cfg).join("-") || "default";
      const fromVocab = await AutoTokenizer.fromPretrained(folder(`cfg-vocab-${name}`, { "vocab.txt": vocab, "tokenizer_config.json": JSON.stringify(cfg) }));
      const fromJson = await AutoTokenizer.fromPretrained(folder(`cfg-json-${name}`, {
        "tokenizer.json": JSON.stringify(json), "tokenizer_config.json": JSON.stringify(cfg),
      }));
      const wantNfc = want.map((t) => t.normalize("NFC"));
      expect({ cfg, tokens: (await fromVocab.tokenize(text)).map((t) => t.normalize("NFC")) }).toEqual({ cfg, tokens: wantNfc });
      expect({ cfg, tokens: (await fromJson.tokenize(text)).map((t) => t.normalize("NFC")) }).toEqual({ cfg, tokens: wantNfc });
    }
  });

  test("special tokens: special_tokens_map.json wins over tokenizer_config.json; unknown ones are added", async () => {
    const vocab = fs.readFileSync(path.join(BROWN_BERT, "vocab.txt"), "utf8");
    const dir = folder("specials", {
      "vocab.txt": vocab,
      "tokenizer_config.json": JSON.stringify({ mask_token: "[UNK]", pad_token: { content: "[PAD]", lstrip: false } }),
      "special_tokens_map.json": JSON.stringify({ mask_token: "[MASK]", additional_special_tokens: ["<ent>", "</ent>"] }),
    });
    const tok = await AutoTokenizer.fromPretrained(dir);
    expect(tok.maskTokenId).toBe(4);
    expect(tok.padTokenId).toBe(0);
    expect(tok.tokenToId("<ent>")).toBe(8192);
    expect(tok.tokenToId("</ent>")).toBe(8193);
    expect(tok.allSpecialTokens).toEqual(["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]", "<ent>", "</ent>"]);
    const e = await tok.encode("Paris <ent>France</ent>");
    expect(e.tokens).toEqual(["[CLS]", "paris", "<ent>", "france", "</ent>", "[SEP]"]);
    expect(await tok.decode(e.input_ids, { skipSpecialTokens: true })).toBe("paris france");
  });
});
