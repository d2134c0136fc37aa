// Tokenizers: truncation, padding, decoding and bad input on the embedded models/brown-bert (WordPiece) and
// test/fixtures/models/gpt2-tiny-random (byte-level BPE); on the real checkpoints of ../shared/models, ids
// against an independent Python reference (test/fixtures/golden_tokenizer.py), pairs, offsets, word ids of
// CoNLL words and overflow windows over a SQuAD context.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { TunekitError } from "../lib/errors";
import { describeShared, sharedDir } from "./shared";
import { BROWN_BERT, fixtureModel } from "./helpers";

interface Fixture {
  singles: { group: string; text: string; bert: number[]; gpt2: number[] }[];
  pairs: { text: string; pair: string; bert: number[]; bert_type_ids: number[] }[];
}
const fixture: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "tokenizer_ids.json"), "utf8"));
const models = () => path.join(sharedDir(), "models");
const GPT2 = fixtureModel("gpt2-tiny-random");

/** What BERT's normalizer does to text (uncased): lowercase, NFD, drop combining marks. */
const bertNorm = (s: string) => s.toLowerCase().normalize("NFD").replace(/\p{Mn}/gu, "");

/** GPT-2's byte <-> printable-character table, inverted: token string -> its UTF-8 bytes. */
function gpt2Bytes(token: string): number[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const inv = new Map(cs.map((c, i) => [String.fromCodePoint(c), bs[i]]));
  return [...token].map((c) => inv.get(c)!);
}

function conllSentences(n: number): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  for (const line of fs.readFileSync(path.join(sharedDir(), "data", "conll2003", "valid.txt"), "utf8").split("\n")) {
    const t = line.trim();
    if (t === "") { if (cur.length) out.push(cur); cur = []; if (out.length >= n) break; }
    else if (!t.startsWith("-DOCSTART-")) cur.push(t.split(" ")[0]);
  }
  return out;
}

function squadLongest(): { question: string; context: string; answer: { answer_start: number; text: string } } {
  const d = JSON.parse(fs.readFileSync(path.join(sharedDir(), "data", "squad_v1.1", "dev-v1.1-part-a.json"), "utf8"));
  let best: { context: string; qas: { question: string; answers: { answer_start: number; text: string }[] }[] } | null = null;
  for (const a of d.data) for (const p of a.paragraphs) if (!best || p.context.length > best.context.length) best = p;
  return { question: best!.qas[0].question, context: best!.context, answer: best!.qas[0].answers[0] };
}

describe("tokenizers on the embedded BERT and a small byte-level BPE", () => {
  let bert: Tokenizer;
  let gpt2: Tokenizer;

  beforeAll(async () => {
    bert = await AutoTokenizer.fromPretrained(BROWN_BERT);
    gpt2 = await AutoTokenizer.fromPretrained(GPT2);
  });

  test("the files give the special tokens, length limits and vocabulary sizes", () => {
    expect([bert.source, bert.family, bert.vocabSize, bert.modelMaxLength]).toEqual(["tokenizer.json", "bert", 8192, 128]);
    expect([bert.clsTokenId, bert.sepTokenId, bert.padTokenId, bert.unkTokenId, bert.maskTokenId]).toEqual([2, 3, 0, 1, 4]);
    expect([gpt2.source, gpt2.family, gpt2.vocabSize, gpt2.modelMaxLength]).toEqual(["vocab.json+merges.txt", "gpt2", 557, 64]);
    expect([gpt2.bosToken, gpt2.eosTokenId, gpt2.unkTokenId, gpt2.padToken]).toEqual(["<|endoftext|>", 556, 556, null]);
    expect(bert.modelInputNames).toEqual(["input_ids", "token_type_ids", "attention_mask"]);
    expect([bert.numSpecialTokensToAdd(false), bert.numSpecialTokensToAdd(true), gpt2.numSpecialTokensToAdd(true)]).toEqual([2, 3, 0]);
  });

  test("literal special tokens in text are the special tokens; empty input", async () => {
    const e = await bert.encode("Paris is the [MASK] of France.");
    expect(e.input_ids).toContain(4);
    expect(e.tokens).toEqual(["[CLS]", "paris", "is", "the", "[MASK]", "of", "france", ".", "[SEP]"]);
    expect((await bert.encode("")).input_ids).toEqual([2, 3]);
    expect((await gpt2.encode("")).input_ids).toEqual([]);
  });

  test("truncation: longest_first trims the longer text, only_second only the pair, true uses modelMaxLength", async () => {
    const [a, b] = ["a short question here", fixture.pairs[0].pair];
    const full = await bert.encode(a, b);
    const lf = await bert.encode(a, b, { truncation: true, maxLength: 40 });
    expect(lf.input_ids.length).toBe(40);
    const firstLen = (await bert.tokenize(a)).length;
    expect(lf.sequence_ids.filter((s) => s === 0).length).toBe(firstLen); // the short one is untouched
    expect(lf.input_ids.slice(0, 40 - 1)).toEqual(full.input_ids.slice(0, 40 - 1));
    expect(lf.input_ids[39]).toBe(3);

    // longest_first takes from whichever is longer, one token at a time, until they meet.
    const x = "one two three four five six seven eight nine ten";
    const y = "red green blue black white brown yellow gray gold silver orange pink"; // 12 words, 12 tokens
    const both = await bert.encode(x, y, { truncation: "longest_first", maxLength: 15 });
    expect(both.sequence_ids.filter((s) => s === 0).length).toBe(6);
    expect(both.sequence_ids.filter((s) => s === 1).length).toBe(6);

    const os2 = await bert.encode(x, y, { truncation: "only_second", maxLength: 15 });
    expect(os2.sequence_ids.filter((s) => s === 0).length).toBe(10);
    expect(os2.sequence_ids.filter((s) => s === 1).length).toBe(2);
    const yLen = (await bert.tokenize(y)).length;
    const of = await bert.encode(x, y, { truncation: "only_first", maxLength: 18 });
    expect(of.sequence_ids.filter((s) => s === 0).length).toBe(18 - 3 - yLen);
    expect(of.sequence_ids.filter((s) => s === 1).length).toBe(yLen);

    const long = Array.from({ length: 700 }, (_, i) => `word${i % 10}`).join(" ");
    expect((await bert.encode(long, null, { truncation: true })).input_ids.length).toBe(128);
    expect((await gpt2.encode(long, null, { truncation: true })).input_ids.length).toBe(64);
    expect((await bert.encode(long, null, { maxLength: 20 })).input_ids.length).toBe(20); // maxLength alone truncates
    const gl = await gpt2.encode(long, null, { truncation: true, maxLength: 10 });
    expect(gl.input_ids).toEqual((await gpt2.encode(long)).input_ids.slice(0, 10));

    bert.truncationSide = "left";
    try {
      const left = await bert.encode(x, null, { truncation: true, maxLength: 5 });
      expect(left.tokens).toEqual(["[CLS]", "eight", "nine", "ten", "[SEP]"]);
    } finally {
      bert.truncationSide = "right";
    }
  });

  test("padding: longest, max_length, padToMultipleOf, left side; pad fields", async () => {
    const texts = ["short", "a somewhat longer sentence here", ""];
    const b = await bert.encodeBatch(texts, { padding: true });
    const lens = [3, 7, 2];
    for (let i = 0; i < 3; i++) {
      expect(b.input_ids[i].length).toBe(7);
      expect(b.attention_mask[i]).toEqual(Array.from({ length: 7 }, (_, j) => (j < lens[i] ? 1 : 0)));
      expect(b.input_ids[i].slice(lens[i])).toEqual(Array(7 - lens[i]).fill(0));
      expect(b.word_ids[i].slice(lens[i]).every((w) => w === null)).toBe(true);
      expect(b.offset_mapping[i].slice(lens[i])).toEqual(Array(7 - lens[i]).fill([0, 0]));
      expect(b.special_tokens_mask[i].slice(lens[i]).every((m) => m === 1)).toBe(true);
    }
    const m = await bert.encodeBatch(texts, { padding: "max_length", maxLength: 12 });
    expect(m.input_ids.map((r) => r.length)).toEqual([12, 12, 12]);
    const mult = await bert.encodeBatch(texts, { padding: "longest", padToMultipleOf: 8 });
    expect(mult.input_ids.map((r) => r.length)).toEqual([8, 8, 8]);
    const both = await bert.encodeBatch(["x", "one two three four five six seven eight"], { padding: "max_length", truncation: true, maxLength: 6 });
    expect(both.input_ids.map((r) => r.length)).toEqual([6, 6]);

    bert.paddingSide = "left";
    try {
      const l = await bert.encodeBatch(texts, { padding: true });
      expect(l.input_ids[0]).toEqual([0, 0, 0, 0, ...b.input_ids[0].slice(0, 3)]);
      expect(l.attention_mask[0]).toEqual([0, 0, 0, 0, 1, 1, 1]);
    } finally {
      bert.paddingSide = "right";
    }

    // tokenizer.pad: dynamic padding of rows encoded earlier (a collator).
    const rows = await Promise.all(texts.map((t) => bert.encode(t)));
    const padded = bert.pad(rows);
    expect(padded.input_ids).toEqual(b.input_ids);
    expect(padded.attention_mask).toEqual(b.attention_mask);
    const idsOnly = bert.pad(rows.map((r) => ({ input_ids: r.input_ids })), { padToMultipleOf: 4 });
    expect(Object.keys(idsOnly).sort()).toEqual(["attention_mask", "input_ids"]);
    expect(idsOnly.input_ids[0]).toEqual([...b.input_ids[0].slice(0, 3), 0, 0, 0, 0, 0]);
  });

  test("decode: skips specials, cleans spaces as the checkpoint says; byte-level is lossless", async () => {
    const e = await bert.encode("Hello, World! Don't stop.");
    // brown-bert's tokenizer_config.json says clean_up_tokenization_spaces: false (bert-tiny's says true).
    expect(await bert.decode(e.input_ids, { skipSpecialTokens: true })).toBe("hello, world! don ' t stop.");
    expect(await bert.decode(e.input_ids)).toBe("[CLS] hello, world! don ' t stop. [SEP]");
    expect(await bert.decode(e.input_ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: true })).toBe("hello, world! don't stop.");
    for (const s of fixture.singles) expect(await gpt2.decode((await gpt2.encode(s.text)).input_ids)).toBe(s.text);
    expect(await gpt2.decodeBatch([(await gpt2.encode("Hello world")).input_ids, Int32Array.from([556])])).toEqual(["Hello world", "<|endoftext|>"]);
  });

  test("concurrent calls each get their own truncation", async () => {
    const long = fixture.pairs[0].pair;
    const [a, b, c] = await Promise.all([
      bert.encode(long, null, { truncation: true, maxLength: 10 }),
      bert.encode(long),
      bert.encode(long, null, { truncation: true, maxLength: 20 }),
    ]);
    expect([a.input_ids.length, c.input_ids.length]).toEqual([10, 20]);
    expect(b.input_ids.length).toBeGreaterThan(100);
  });

  test("bad input is refused with a clear TunekitError (and never reaches the engine)", async () => {
    const bad = async (p: Promise<unknown>, msg: RegExp) => {
      await expect(p).rejects.toThrow(TunekitError);
      await expect(p).rejects.toThrow(msg);
    };
    await bad(bert.encode(42 as unknown as string), /input 0: expected a string or a \[text, pair\] array of two strings, got 42/);
    await bad(bert.encodeBatch("text" as unknown as string[]), /expected an array of texts/);
    await bad(bert.encodeBatch([["a", "b", "c"]] as unknown as string[]), /input 0: expected a string or a \[text, pair\]/);
    await bad(bert.encode("x", null, { truncation: "sideways" as "only_first" }), /truncation must be/);
    await bad(bert.encode("x", null, { padding: "most" as "longest" }), /padding must be/);
    await bad(bert.encode("x", null, { maxLength: 0 }), /maxLength must be an integer >= 1, got 0/);
    await bad(bert.encode("x", null, { maxLenght: 5 } as unknown as object), /unknown option "maxLenght"/);
    await bad(bert.encode("x", null, { truncation: true, maxLength: 2 }), /maxLength 2 leaves no room for text: 2 special tokens/);
    await bad(bert.encodeBatch(["x"], { truncation: "only_second", maxLength: 8 }), /"only_second" needs \[text, pair\] inputs; input 0/);
    await bad(bert.encode("a", "b c d", { truncation: "only_first", maxLength: 6 }),
      /input 0: the first text has 1 tokens but 1 must go to fit 3 \(maxLength minus special tokens\) \(truncation "only_first", maxLength 6\)/);
    await bad(bert.encodeBatch([["one two three four five six seven eight nine ten", "red green blue black white brown yellow gray gold"]],
      { truncation: true, maxLength: 20, stride: 10, returnOverflowingTokens: true }), /input 0: stride 10 must be smaller than the 9 tokens kept of a sequence/);
    // The engine aborts the whole process on stride >= room; tunekit stops it before.
    await bad(bert.encodeBatch([["q", "c"]], { truncation: "only_second", maxLength: 20, stride: 17, returnOverflowingTokens: true }),
      /stride 17 must be smaller than maxLength minus the 3 special tokens of a pair \(17\)/);
    await bad(bert.encodeBatch(["x"], { returnOverflowingTokens: true }), /returnOverflowingTokens needs truncation/);
    await bad(bert.encode("x", null, { stride: 4 } as object), /use encodeBatch/);
    await bad(bert.encode(["a", 1] as unknown as string[], null, { isSplitIntoWords: true }), /array of words/);
    await bad(gpt2.encodeBatch(["a", "b c"], { padding: true }), /no pad token .*tokenizer.padToken = tokenizer.eosToken/);
    await bad(bert.decode([2, 8192]), /position 1: id 8192 is not a token id \(expected an integer in \[0, 8192\)\)/);
    await bad(bert.decode([1.5]), /id 1.5 is not a token id/);
    expect(() => { bert.paddingSide = "middle" as "left"; }).toThrow(/expected "right" or "left"/);
    // Still usable afterwards.
    expect((await bert.encode("ok")).input_ids).toEqual([2, 1816, 3]);
  });

  test("a pad token can be given to GPT-2 (eos, or a new token)", async () => {
    const g = await AutoTokenizer.fromPretrained(GPT2);
    g.padToken = g.eosToken;
    const b = await g.encodeBatch(["Hello world", "Hi"], { padding: true });
    expect(b.input_ids).toEqual([[39, 68, 297, 78, 476, 335], [39, 72, 556, 556, 556, 556]]); // "H e ll o Ġwor ld", "H i"
    expect(b.attention_mask).toEqual([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]);
    g.padToken = "[PAD]";
    expect(g.padTokenId).toBe(557);
    expect(g.vocabSize).toBe(558);
    expect((await g.encodeBatch(["Hello world", "Hi"], { padding: true })).input_ids[1]).toEqual([39, 72, 557, 557, 557, 557]);
    expect(await g.decode([39, 72, 557], { skipSpecialTokens: true })).toBe("Hi");
  });
});

describeShared("tokenizers on real checkpoints (ids against the Python reference, CoNLL and SQuAD text)", () => {
  let bert: Tokenizer;
  let gpt2: Tokenizer;
  let tmp: string;

  beforeAll(async () => {
    bert = await AutoTokenizer.fromPretrained(path.join(models(), "bert-tiny-mlm"));
    gpt2 = await AutoTokenizer.fromPretrained(path.join(models(), "gpt2-small-random"));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-tok-"));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("loads what each checkpoint has, with its special tokens and length limit", () => {
    expect(bert.source).toBe("tokenizer.json");
    expect(bert.family).toBe("bert");
    expect([bert.clsTokenId, bert.sepTokenId, bert.padTokenId, bert.unkTokenId, bert.maskTokenId]).toEqual([101, 102, 0, 100, 103]);
    expect(bert.modelMaxLength).toBe(512); // tokenizer_config says 1e30 (no limit): config.json's position table
    expect(bert.modelInputNames).toEqual(["input_ids", "token_type_ids", "attention_mask"]);
    expect(bert.vocabSize).toBe(30522);
    expect(gpt2.source).toBe("vocab.json+merges.txt");
    expect(gpt2.family).toBe("gpt2");
    expect([gpt2.bosToken, gpt2.eosTokenId, gpt2.unkTokenId, gpt2.padToken]).toEqual(["<|endoftext|>", 50256, 50256, null]);
    expect(gpt2.modelMaxLength).toBe(256);
    expect(gpt2.vocabSize).toBe(50257);
    expect(bert.numSpecialTokensToAdd(false)).toBe(2);
    expect(bert.numSpecialTokensToAdd(true)).toBe(3);
    expect(gpt2.numSpecialTokensToAdd(true)).toBe(0);
  });

  test("ids match the Python reference: WordPiece (tokenizer.json) and byte-level BPE (vocab.json + merges.txt)", async () => {
    expect(fixture.singles.length).toBeGreaterThan(50);
    for (const s of fixture.singles) {
      expect({ text: s.text, ids: (await bert.encode(s.text)).input_ids }).toEqual({ text: s.text, ids: s.bert });
      expect({ text: s.text, ids: (await gpt2.encode(s.text)).input_ids }).toEqual({ text: s.text, ids: s.gpt2 });
    }
    // The last line of merges.txt (no final newline) is a real merge: " gazed" is one token.
    expect(await gpt2.tokenize(" gazed")).toEqual(["Ġgazed"]);
  });

  test("vocab.txt alone, and the other WordPiece checkpoints, give the same ids as tokenizer.json", async () => {
    const only = path.join(tmp, "vocab-only");
    fs.mkdirSync(only);
    for (const f of ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]) {
      fs.copyFileSync(path.join(models(), "bert-tiny-mlm", f), path.join(only, f));
    }
    const fromVocab = await AutoTokenizer.fromPretrained(only);
    expect(fromVocab.source).toBe("vocab.txt");
    const texts = fixture.singles.map((s) => s.text);
    const want = fixture.singles.map((s) => s.bert);
    expect((await fromVocab.encodeBatch(texts)).input_ids).toEqual(want);
    for (const name of ["bert-mini-random", "distilbert-small-random"]) {
      const tok = await AutoTokenizer.fromPretrained(path.join(models(), name));
      expect((await tok.encodeBatch(texts)).input_ids).toEqual(want);
    }
    // Batch encoding equals one-by-one encoding, offsets included.
    const batch = await bert.encodeBatch(texts);
    for (let i = 0; i < texts.length; i += 7) {
      const one = await bert.encode(texts[i]);
      expect(batch.offset_mapping[i]).toEqual(one.offset_mapping);
      expect(batch.word_ids[i]).toEqual(one.word_ids);
    }
  });

  test("pairs: ids and token_type_ids match the reference; sequence ids and special mask", async () => {
    for (const p of fixture.pairs) {
      const e = await bert.encode(p.text, p.pair);
      expect(e.input_ids).toEqual(p.bert);
      expect(e.token_type_ids).toEqual(p.bert_type_ids);
      const sep = e.input_ids.indexOf(102);
      const n = e.input_ids.length;
      expect(e.sequence_ids[0]).toBeNull();
      expect(e.sequence_ids[sep]).toBeNull();
      expect(e.sequence_ids[n - 1]).toBeNull();
      expect(e.sequence_ids.slice(1, sep).every((s) => s === 0)).toBe(true);
      expect(e.sequence_ids.slice(sep + 1, n - 1).every((s) => s === 1)).toBe(true);
      expect(e.special_tokens_mask).toEqual(e.input_ids.map((_, i) => (i === 0 || i === sep || i === n - 1 ? 1 : 0)));
      expect(e.attention_mask.every((m) => m === 1)).toBe(true);
    }
    const b = await bert.encodeBatch(fixture.pairs.map((p) => [p.text, p.pair] as [string, string]));
    expect(b.input_ids).toEqual(fixture.pairs.map((p) => p.bert));
  });

  test("offsets are JS string indices that slice back to each token's text (accents, case, emoji, CJK)", async () => {
    const texts = [...fixture.singles.map((s) => s.text), ...fixture.pairs.map((p) => p.pair)];
    let checked = 0;
    for (const text of texts) {
      const e = await bert.encode(text);
      e.tokens.forEach((tok, i) => {
        const [s, t] = e.offset_mapping[i];
        if (e.special_tokens_mask[i]) { expect([s, t]).toEqual([0, 0]); return; }
        const piece = text.slice(s, t);
        if (tok !== "[UNK]") expect({ text, tok, piece: bertNorm(piece) }).toEqual({ text, tok, piece: tok.replace(/^##/, "") });
        checked++;
      });
      const g = await gpt2.encode(text);
      g.tokens.forEach((tok, i) => {
        const piece = text.slice(...g.offset_mapping[i]);
        const bytes = Buffer.from(piece, "utf8");
        const own = Buffer.from(gpt2Bytes(tok));
        // A token holding part of a multi-byte character points at the whole character.
        expect({ text, tok, ok: bytes.includes(own) }).toEqual({ text, tok, ok: true });
        if (own.toString("utf8") === piece) checked++;
      });
    }
    expect(checked).toBeGreaterThan(1000);

    const emoji = "I love 🤗 and 😀😀, 𝐁𝐨𝐥𝐝!";
    const e = await bert.encode(emoji);
    const pieces = e.offset_mapping.map(([s, t]) => emoji.slice(s, t));
    expect(pieces).toEqual(["", "I", "love", "🤗", "and", "😀😀", ",", "𝐁𝐨𝐥𝐝", "!", ""]);
    const g = await gpt2.encode(emoji);
    expect(g.offset_mapping[g.offset_mapping.length - 1]).toEqual([emoji.length - 1, emoji.length]);
    // Byte-level tokens split astral characters into bytes; their offsets still cover whole characters.
    const covered = new Array(emoji.length).fill(false);
    for (const [s, t] of g.offset_mapping) {
      const piece = emoji.slice(s, t);
      expect(piece.length).toBeGreaterThan(0);
      expect(Buffer.from(piece, "utf8").toString("utf8")).toBe(piece); // no half surrogate pair
      for (let k = s; k < t; k++) covered[k] = true;
    }
    expect(covered.every((c) => c)).toBe(true);

    const acc = "Crème brûlée à São Paulo";
    const a = await bert.encode(acc);
    expect(a.tokens.slice(1, -1)).toEqual(["cr", "##eme", "br", "##ule", "##e", "a", "sao", "paulo"]);
    expect(a.offset_mapping.slice(1, -1).map(([s, t]) => acc.slice(s, t))).toEqual(["Cr", "ème", "br", "ûlé", "e", "à", "São", "Paulo"]);
    const comb = "e\u0301 x";
    const c = await bert.encode(comb);
    expect(c.tokens[1]).toBe("e");
    expect(comb.slice(...c.offset_mapping[1])).toBe("e"); // the dropped combining mark belongs to no token (as in Python)

    // Pair offsets index into the pair text.
    const p = fixture.pairs[0];
    const pe = await bert.encode(p.text, p.pair);
    pe.tokens.forEach((tok, i) => {
      if (pe.sequence_ids[i] === null || tok === "[UNK]") return;
      const src = pe.sequence_ids[i] === 1 ? p.pair : p.text;
      expect(bertNorm(src.slice(...pe.offset_mapping[i]))).toBe(tok.replace(/^##/, ""));
    });
  });

  test("word ids: CoNLL words given pre-split map every sub-token to its word index", async () => {
    const sentences = conllSentences(40);
    const withPunct = sentences.find((s) => s.some((w) => /^\d{4}-\d\d-\d\d$/.test(w)))!;
    expect(withPunct).toBeDefined();
    for (const words of [...sentences.slice(0, 20), withPunct]) {
      for (const tok of [bert, gpt2]) {
        const e = await tok.encode(words, null, { isSplitIntoWords: true });
        const perWord: number[][] = words.map(() => []);
        e.word_ids.forEach((w, i) => {
          if (e.special_tokens_mask[i]) { expect(w).toBeNull(); return; }
          expect(w).not.toBeNull();
          perWord[w!].push(e.input_ids[i]);
          // Offsets of pre-split input index into the word.
          const [s, t] = e.offset_mapping[i];
          expect(t).toBeLessThanOrEqual(words[w!].length);
          expect(s).toBeLessThan(t);
        });
        // Word ids never go back, and each word's tokens are that word tokenized alone (as transformers does).
        const seq = e.word_ids.filter((w) => w !== null) as number[];
        expect(seq).toEqual([...seq].sort((x, y) => x - y));
        for (let k = 0; k < words.length; k++) {
          // (GPT-2's add_prefix_space is false: a pre-split word gets no leading space; test/tokenizer_prefix_space.test.ts)
          const alone = (await tok.encode(words[k], null, { addSpecialTokens: false })).input_ids;
          expect({ word: words[k], ids: perWord[k] }).toEqual({ word: words[k], ids: alone });
        }
      }
    }
    // "1996-08-30" is one CoNLL word but five BERT pre-tokenizer words: only pre-split input keeps CoNLL's numbering.
    const joined = withPunct.join(" ");
    const plain = await bert.encode(joined);
    const split = await bert.encode(withPunct, null, { isSplitIntoWords: true });
    expect(plain.input_ids).toEqual(split.input_ids);
    expect(Math.max(...(plain.word_ids.filter((w) => w !== null) as number[]))).toBeGreaterThan(withPunct.length - 1);
    expect(Math.max(...(split.word_ids.filter((w) => w !== null) as number[]))).toBe(withPunct.length - 1);
    // On the joined string, offsets give the CoNLL word of each token just as well.
    const starts: number[] = [];
    withPunct.reduce((pos, w) => { starts.push(pos); return pos + w.length + 1; }, 0);
    plain.offset_mapping.forEach(([s], i) => {
      if (plain.special_tokens_mask[i]) return;
      const k = starts.filter((x) => x <= s).length - 1;
      expect(k).toBe(split.word_ids[i]);
    });
  });

  test("overflow windows with stride cover a long SQuAD context and keep the answer findable", async () => {
    const { question, context, answer } = squadLongest();
    const maxLength = 96;
    const stride = 24;
    const b = await bert.encodeBatch([[question, context], [question, "Short context."]], {
      truncation: "only_second", maxLength, stride, returnOverflowingTokens: true, padding: "max_length",
    });
    const rows = b.input_ids.length;
    expect(rows).toBeGreaterThan(8);
    expect(b.overflow_to_sample_mapping).toEqual([...Array(rows - 1).fill(0), 1]);
    expect(b.input_ids.every((r) => r.length === maxLength)).toBe(true);

    const q = (await bert.encode(question, null, { addSpecialTokens: false })).input_ids;
    const ctxIds = (await bert.encode(context, null, { addSpecialTokens: false })).input_ids;
    const windows: number[][] = [];
    for (let r = 0; r < rows - 1; r++) {
      expect(b.input_ids[r].slice(0, q.length + 2)).toEqual([101, ...q, 102]); // the whole question in every window
      windows.push(b.input_ids[r].filter((_, i) => b.sequence_ids[r][i] === 1));
    }
    for (let r = 0; r + 1 < windows.length; r++) {
      expect(windows[r].length).toBe(maxLength - q.length - 3);
      expect(windows[r + 1].slice(0, stride)).toEqual(windows[r].slice(-stride)); // consecutive windows share `stride` tokens
    }
    expect([...windows[0], ...windows.slice(1).flatMap((w) => w.slice(stride))]).toEqual(ctxIds);

    // QA labelling: find the window whose context tokens cover the answer characters.
    const start = answer.answer_start;
    const end = start + answer.text.length;
    let found = 0;
    for (let r = 0; r < rows - 1; r++) {
      const offs = b.offset_mapping[r];
      const seq = b.sequence_ids[r];
      const i0 = offs.findIndex(([s, t], i) => seq[i] === 1 && s <= start && start < t);
      const i1 = offs.findIndex(([s, t], i) => seq[i] === 1 && s < end && end <= t);
      if (i0 >= 0 && i1 >= i0) {
        expect(context.slice(offs[i0][0], offs[i1][1])).toBe(answer.text);
        found++;
      }
    }
    expect(found).toBeGreaterThanOrEqual(1);
  });

});
