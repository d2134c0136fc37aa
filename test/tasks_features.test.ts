// Task features: label maps and multi-label rows with the embedded brown-bert's tokenizer; on real data
// (../shared) with the real bert-tiny-mlm tokenizer: sequence classification (SST-2, STS-B as regression),
// token classification (all of CoNLL-2003 train), bi-encoder pairs (STS-B dev); their collation into
// padded batches.
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { readSst2, readConll, readStsb } from "../lib/data/files";
import type { NerSentence } from "../lib/data/files";
import {
  classificationFeatures, tokenClassificationFeatures, wordPredictions, sentencePairFeatures, buildLabelMap,
  collate, IGNORE_INDEX,
} from "../lib/data/features";
import type { TokenFeature, Batch, Feature } from "../lib/data/features";
import type { ModelInputs } from "../lib/models/inputs";
import { TunekitError } from "../lib/errors";
import { describeShared, sharedDir, modelDir } from "./shared";
import { BROWN_BERT, sst2Head } from "./helpers";

const data = (...p: string[]) => path.join(sharedDir(), "data", ...p);

describe("task features: label maps", () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(BROWN_BERT);
  });

  test("label maps from the data: string labels sorted, a given label2id kept, unknown labels refused", async () => {
    const rt = sst2Head(); // 64 SST-2 sentences, labels 0 / 1
    const named = rt.map((x) => ({ text: x.text, label: x.label === 1 ? "pos" : "neg" }));
    const r = await classificationFeatures(tok, named, { maxLength: 64 });
    expect(r.label2id).toEqual({ neg: 0, pos: 1 });
    expect(r.features.map((f) => f.labels)).toEqual(rt.map((x) => x.label));
    const given = await classificationFeatures(tok, named, { maxLength: 64, label2id: { pos: 0, neg: 1 } });
    expect(given.features.map((f) => f.labels)).toEqual(rt.map((x) => 1 - x.label!));
    await expect(classificationFeatures(tok, [...named, { text: "meh", label: "neutral" }], { label2id: { pos: 0, neg: 1 } }))
      .rejects.toThrow(`classificationFeatures: example ${named.length}: label "neutral" is not in label2id (pos, neg)`);
    await expect(classificationFeatures(tok, named, { label2id: { pos: 0, neg: 2 } })).rejects.toThrow(/label2id must map its 2 labels to the ids 0..1/);
    expect(buildLabelMap([10, 9, 100, 9]).label2id).toEqual({ 9: 0, 10: 1, 100: 2 }); // numeric order, not text order
    expect(() => buildLabelMap(["a", 1])).toThrow("buildLabelMap: labels mix strings and numbers (1); use one type");
    // Unlabelled data (prediction): features without labels.
    const bare = await classificationFeatures(tok, [{ text: "fine" }, { text: "bad" }]);
    expect(bare.features.every((f) => f.labels === undefined)).toBe(true);
    await expect(classificationFeatures(tok, [{ text: "a", label: 1 }, { text: "b" }])).rejects.toThrow("example 1 has no label but example 0 has one");
  });

  test("multi-label: label lists → multi-hot rows of numLabels", async () => {
    const ex = [
      { text: "a tense and funny thriller", label: ["funny", "tense"] },
      { text: "just funny", label: ["funny"] },
      { text: "nothing at all", label: [] },
      { text: "sad and tense", label: ["sad", "tense"] },
    ];
    const r = await classificationFeatures(tok, ex, { problemType: "multi_label_classification" });
    expect(r.label2id).toEqual({ funny: 0, sad: 1, tense: 2 });
    expect(r.features.map((f) => f.labels)).toEqual([[1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 1, 1]]);
    const b = collate(r.features, { padId: 0 });
    expect([b.numLabels, b.labels!.length, b.labels instanceof Float32Array]).toEqual([3, 12, true]);
    expect(Array.from(b.labels!)).toEqual([1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
  });
});

describeShared("task features on real data (SST-2, STS-B, CoNLL-2003 of ../shared, bert-tiny-mlm's tokenizer)", () => {
  let tok: Tokenizer;
  const notes: string[] = [];
  afterAll(() => console.log(`tasks_features (this machine, one run):\n${notes.join("\n")}`));
  const timed = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const out = await fn();
    notes.push(`${label}: ${Date.now() - t0} ms`);
    return out;
  };

  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(modelDir("bert-tiny-mlm"));
  });

  test("SST-2 (every 20th of the 67,349 train rows): ids as the tokenizer gives them, label ids, truncation", async () => {
    const rows = readSst2(data("sst2", "train.tsv")).filter((_, i) => i % 20 === 0);
    const r = await timed(`classificationFeatures, ${rows.length} SST-2 sentences`, () =>
      classificationFeatures(tok, rows.map((x) => ({ text: x.text, label: x.label })), { maxLength: 32 }));
    expect(r.problemType).toBe("single_label_classification");
    expect(r.numLabels).toBe(2);
    expect(r.label2id).toEqual({ 0: 0, 1: 1 });
    expect(r.id2label).toEqual({ 0: "0", 1: "1" });
    expect(r.features.length).toBe(rows.length);
    const ref = await tok.encodeBatch(rows.slice(0, 200).map((x) => x.text), { truncation: true, maxLength: 32 });
    expect(r.features.slice(0, 200).map((f) => f.inputIds)).toEqual(ref.input_ids);
    expect(r.features.map((f) => f.labels)).toEqual(rows.map((x) => x.label));
    expect(r.features.every((f) => f.labelKind === "single_label_classification" && f.inputIds.length <= 32 && f.inputIds[0] === 101
      && f.inputIds[f.inputIds.length - 1] === 102 && f.tokenTypeIds!.every((t) => t === 0))).toBe(true);
    const truncated = r.features.filter((f) => f.inputIds.length === 32).length;
    expect(truncated).toBeGreaterThan(0);
    notes.push(`  of which truncated to 32 tokens: ${truncated}`);
    const b = collate(r.features.slice(0, 16), { padId: tok.padTokenId! });
    expect(b.labels).toBeInstanceOf(Int32Array);
    expect(Array.from(b.labels!)).toEqual(rows.slice(0, 16).map((x) => x.label));
    expect(b.labelKind).toBe("single_label_classification");
  });

  test("STS-B as a cross-encoder: pairs with token types, float labels (regression)", async () => {
    const rows = readStsb(data("stsb", "stsb-en-dev.csv")).slice(0, 300);
    const r = await classificationFeatures(tok, rows.map((x) => ({ text: x.sentence1, textPair: x.sentence2, label: x.score })), { problemType: "regression", maxLength: 128 });
    expect(r.numLabels).toBe(1);
    expect(r.label2id).toBeUndefined();
    const ref = await tok.encodeBatch(rows.slice(0, 50).map((x) => [x.sentence1, x.sentence2] as [string, string]), { truncation: true, maxLength: 128 });
    expect(r.features.slice(0, 50).map((f) => f.inputIds)).toEqual(ref.input_ids);
    expect(r.features.slice(0, 50).map((f) => f.tokenTypeIds)).toEqual(ref.token_type_ids);
    expect(r.features[0].tokenTypeIds).toContain(1);
    const b = collate(r.features.slice(0, 8), { padId: 0 });
    expect(b.labels).toBeInstanceOf(Float32Array);
    expect(Array.from(b.labels!)).toEqual(rows.slice(0, 8).map((x) => Math.fround(x.score)));
    await expect(classificationFeatures(tok, [{ text: "a", label: "x" }], { problemType: "regression" })).rejects.toThrow('example 0: a regression label must be a finite number, got "x"');
  });

  describe("token classification on all of CoNLL-2003 train", () => {
    let sentences: NerSentence[];
    let feats: TokenFeature[];
    let label2id: Record<string, number>;

    beforeAll(async () => {
      sentences = readConll(data("conll2003", "train.txt"));
      const r = await timed(`tokenClassificationFeatures, all ${sentences.length} CoNLL train sentences`, () =>
        tokenClassificationFeatures(tok, sentences.map((s) => ({ words: s.tokens, tags: s.ner })), { maxLength: 512 }));
      feats = r.features;
      label2id = r.label2id;
    });

    test("the first sub-token of each word gets its label, the others and the specials -100; no word lost", async () => {
      expect(label2id).toEqual({ "B-LOC": 0, "B-MISC": 1, "B-ORG": 2, "B-PER": 3, "I-LOC": 4, "I-MISC": 5, "I-ORG": 6, "I-PER": 7, O: 8 });
      expect(feats.length).toBe(14041);
      let words = 0;
      let multiPiece = 0;
      const problems: string[] = [];
      feats.forEach((f, i) => {
        const s = sentences[i];
        const labels = f.labels as number[];
        const expected = f.wordIds.map((w, t) => (w === null ? IGNORE_INDEX : t > 0 && f.wordIds[t - 1] === w ? IGNORE_INDEX : label2id[s.ner[w]]));
        if (f.numWords !== s.tokens.length || labels.join() !== expected.join()) problems.push(`sentence ${i}`);
        // word ids run 0, 0, 1, 2, 2, ... with specials (null) only at both ends
        const ws = f.wordIds.slice(1, -1);
        if (f.wordIds[0] !== null || f.wordIds[f.wordIds.length - 1] !== null || ws.some((w, t) => w === null || w !== (t === 0 ? 0 : ws[t - 1]! + (w === ws[t - 1] ? 0 : 1)))) problems.push(`sentence ${i}: word ids`);
        words += labels.filter((y) => y !== IGNORE_INDEX).length;
        multiPiece += f.wordIds.filter((w, t) => w !== null && t > 0 && f.wordIds[t - 1] === w).length;
      });
      expect(problems).toEqual([]);
      expect(words).toBe(203621); // every word labelled exactly once
      expect(multiPiece).toBeGreaterThan(10000);
      notes.push(`  ${words} words labelled, ${multiPiece} later sub-tokens at -100, longest ${Math.max(...feats.map((f) => f.inputIds.length))} tokens`);
    });

    test("a word's sub-tokens are the tokenizer's pieces of that word alone (first 300 sentences)", async () => {
      const vocab = [...new Set(sentences.slice(0, 300).flatMap((s) => s.tokens))];
      const alone = await tok.encodeBatch(vocab, { addSpecialTokens: false });
      const pieces = new Map(vocab.map((w, i) => [w, alone.input_ids[i]]));
      sentences.slice(0, 300).forEach((s, i) => {
        const f = feats[i];
        const got = s.tokens.map((_, w) => f.inputIds.filter((_, t) => f.wordIds[t] === w));
        expect(got).toEqual(s.tokens.map((w) => pieces.get(w)));
      });
    });

    test("word predictions read back from the first sub-tokens; labelAllTokens; truncation; errors", async () => {
      // Gold token labels as predictions (and as one-hot logits) give back every word's tag.
      const names = Object.keys(label2id);
      for (let i = 0; i < feats.length; i += 7) {
        const f = feats[i];
        const gold = (f.labels as number[]).map((y) => (y === IGNORE_INDEX ? 0 : y));
        const want = sentences[i].ner.map((t) => label2id[t]);
        expect(wordPredictions(f, { predictions: gold })).toEqual(want);
        const logits = new Float32Array(f.inputIds.length * names.length);
        gold.forEach((y, t) => { logits[t * names.length + y] = 1; });
        expect(wordPredictions(f, { logits, numLabels: names.length })).toEqual(want);
      }
      // "Rabinovich" B-PER is several pieces: with labelAllTokens the later ones get I-PER.
      const words = ["Itamar", "Rabinovich", "said"];
      const all = await tokenClassificationFeatures(tok, [{ words, tags: ["B-PER", "I-PER", "O"] }, { words: ["Rabinovich"], tags: ["B-PER"] }], { labelAllTokens: true, label2id });
      const first = await tokenClassificationFeatures(tok, [{ words: ["Rabinovich"], tags: ["B-PER"] }], { label2id });
      const n = all.features[1].inputIds.length - 2;
      expect(n).toBeGreaterThan(1);
      expect(all.features[1].labels).toEqual([-100, label2id["B-PER"], ...Array(n - 1).fill(label2id["I-PER"]), -100]);
      expect(first.features[0].labels).toEqual([-100, label2id["B-PER"], ...Array(n - 1).fill(-100), -100]);
      // Truncation drops the words past maxLength; the covered ones keep their labels.
      const long = sentences.findIndex((s) => s.tokens.length > 40);
      const cut = await tokenClassificationFeatures(tok, [{ words: sentences[long].tokens, tags: sentences[long].ner }], { maxLength: 16, label2id });
      const c = cut.features[0];
      expect(c.inputIds.length).toBe(16);
      expect(c.numWords).toBeLessThan(sentences[long].tokens.length);
      expect(wordPredictions(c, { predictions: (c.labels as number[]).map((y) => Math.max(y, 0)) })).toEqual(sentences[long].ner.slice(0, c.numWords).map((t) => label2id[t]));
      // Token labels collate as (B, T) with -100 on padding.
      const b = collate(feats.slice(0, 4), { padId: 0 });
      expect(b.labels).toBeInstanceOf(Int32Array);
      expect(b.labelKind).toBe("token");
      for (let i = 0; i < 4; i++) {
        const row = Array.from(b.labels!.subarray(i * b.seqLen, (i + 1) * b.seqLen));
        expect(row).toEqual([...(feats[i].labels as number[]), ...Array(b.seqLen - feats[i].inputIds.length).fill(-100)]);
      }
      await expect(tokenClassificationFeatures(tok, [{ words: ["a", "b"], tags: ["O"] }])).rejects.toThrow("tokenClassificationFeatures: example 0: 2 words but 1 tags");
      await expect(tokenClassificationFeatures(tok, [{ words: ["a"], tags: ["X-FOO"] }], { label2id })).rejects.toThrow('tokenClassificationFeatures: example 0: label "X-FOO" is not in label2id');
      await expect(tokenClassificationFeatures(tok, [{ words: ["a"] }])).rejects.toThrow("unlabelled examples need label2id");
    });
  });

  test("bi-encoder pairs (all of STS-B dev): each side tokenized alone, label = score / 5, raw score kept", async () => {
    const rows = readStsb(data("stsb", "stsb-en-dev.csv"));
    const pf = await timed(`sentencePairFeatures, all ${rows.length} STS-B dev pairs`, () => sentencePairFeatures(tok, rows, { maxLength: 128 }));
    expect(pf.length).toBe(1500);
    const ref1 = await tok.encodeBatch(rows.map((x) => x.sentence1), { truncation: true, maxLength: 128 });
    const ref2 = await tok.encodeBatch(rows.map((x) => x.sentence2), { truncation: true, maxLength: 128 });
    expect(pf.map((p) => p.a.inputIds)).toEqual(ref1.input_ids);
    expect(pf.map((p) => p.b.inputIds)).toEqual(ref2.input_ids);
    expect(pf.map((p) => p.score)).toEqual(rows.map((x) => x.score));
    expect(pf.every((p, i) => Math.abs(p.labels - rows[i].score / 5) < 1e-12 && p.labels >= 0 && p.labels <= 1)).toBe(true);
    const b = collate(pf.slice(0, 5), { padId: 0 });
    expect(b.batchSize).toBe(5);
    expect(b.a.seqLen).toBe(Math.max(...pf.slice(0, 5).map((p) => p.a.inputIds.length)));
    expect(b.b.seqLen).toBe(Math.max(...pf.slice(0, 5).map((p) => p.b.inputIds.length)));
    expect(Array.from(b.labels)).toEqual(pf.slice(0, 5).map((p) => Math.fround(p.labels)));
    expect(Array.from(b.scores)).toEqual(pf.slice(0, 5).map((p) => Math.fround(p.score)));
    expect(b.a.labels).toBeUndefined();
  });
});

describe("collate: dynamic padding and its checks", () => {
  const rows: Feature[] = [
    { inputIds: [101, 5, 6, 102], tokenTypeIds: [0, 0, 0, 0], labels: [-100, 1, 2, -100], labelKind: "token" },
    { inputIds: [101, 7, 102], tokenTypeIds: [0, 0, 0], labels: [-100, 3, -100], labelKind: "token" },
    { inputIds: [101, 8, 9, 10, 11, 102], attentionMask: [1, 1, 1, 1, 1, 1], tokenTypeIds: [0, 0, 0, 1, 1, 1], labels: [-100, 0, 0, 1, 1, -100], labelKind: "token" },
  ];

  test("pads to the longest row (and to a multiple); masks, types and labels padded", () => {
    const b: Batch = collate(rows, { padId: 0 });
    const asModelInputs: ModelInputs = b; // a Batch is what the models take
    expect(asModelInputs.seqLen).toBe(6);
    expect([b.batchSize, b.seqLen]).toEqual([3, 6]);
    expect(Array.from(b.inputIds)).toEqual([101, 5, 6, 102, 0, 0, 101, 7, 102, 0, 0, 0, 101, 8, 9, 10, 11, 102]);
    expect(Array.from(b.attentionMask)).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    expect(b.attentionMask).toBeInstanceOf(Uint8Array);
    expect(Array.from(b.tokenTypeIds!)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(b.labels!)).toEqual([-100, 1, 2, -100, -100, -100, -100, 3, -100, -100, -100, -100, -100, 0, 0, 1, 1, -100]);
    const m = collate(rows, { padId: 0, padToMultipleOf: 8 });
    expect([m.seqLen, m.inputIds.length, m.labels!.length]).toEqual([8, 24, 24]);
    expect(Array.from(m.inputIds.subarray(16))).toEqual([101, 8, 9, 10, 11, 102, 0, 0]);
  });

  test("left padding moves tokens, labels and answer positions together", () => {
    const qa: Feature[] = [
      { inputIds: [101, 5, 102, 6, 7, 102], startPosition: 3, endPosition: 4 },
      { inputIds: [101, 5, 102, 8, 102], startPosition: 0, endPosition: 0 },
    ];
    const r = collate(qa, { padId: 0 });
    expect([Array.from(r.startPositions!), Array.from(r.endPositions!)]).toEqual([[3, 0], [4, 0]]);
    const l = collate(qa, { padId: 0, paddingSide: "left" });
    expect(Array.from(l.inputIds)).toEqual([101, 5, 102, 6, 7, 102, 0, 101, 5, 102, 8, 102]);
    expect(Array.from(l.attentionMask)).toEqual([1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1]);
    expect([Array.from(l.startPositions!), Array.from(l.endPositions!)]).toEqual([[3, 1], [4, 1]]); // CLS moved to 1
    const t = collate(rows.slice(0, 2), { padId: 0, paddingSide: "left" });
    expect(Array.from(t.labels!.subarray(4))).toEqual([-100, -100, 3, -100]);
  });

  test("refuses what a model must not get", () => {
    const bad = (features: Feature[], msg: string, padId = 0) => {
      expect(() => collate(features, { padId })).toThrow(TunekitError);
      expect(() => collate(features, { padId })).toThrow(msg);
    };
    bad([], "collate: expected a non-empty array of features");
    bad([{ inputIds: [] }], "collate: feature 0: inputIds is empty");
    bad([{ inputIds: [1, -2] }], "collate: feature 0: inputIds[1] = -2 is not a token id");
    bad([{ inputIds: [1, 2.5] }], "collate: feature 0: inputIds[1] = 2.5 is not a token id");
    bad([{ inputIds: [1, 2], attentionMask: [1] }], "collate: feature 0: attentionMask must have one entry per token (2), got 1");
    bad([rows[0], { inputIds: [1, 2] }], "collate: feature 1 lacks tokenTypeIds but feature 0 does not");
    bad([{ inputIds: [1], labels: 1 }], 'collate: feature 0: labels need labelKind ("single_label_classification", "regression", "multi_label_classification" or "token"), got undefined');
    bad([{ inputIds: [1], labels: 1, labelKind: "single_label_classification" }, { inputIds: [1], labels: 0.5, labelKind: "regression" }],
      'collate: feature 1 has labels of kind "regression" but feature 0 has "single_label_classification": one batch holds one kind');
    bad([{ inputIds: [1], labels: 1.5, labelKind: "single_label_classification" }], "a single_label_classification label must be a class id (integer >= 0), got 1.5");
    bad([{ inputIds: [1, 2], labels: [0], labelKind: "token" }], "collate: feature 0: token labels must have one entry per token (2), got 1");
    bad([{ inputIds: [1, 2], labels: [0, -7], labelKind: "token" }], "collate: feature 0: labels[1] = -7 is neither a class id nor -100");
    bad([{ inputIds: [1], labels: [1, 0], labelKind: "multi_label_classification" }, { inputIds: [1], labels: [1], labelKind: "multi_label_classification" }],
      "collate: feature 1: multi-hot labels must have 2 entries (as feature 0), got 1");
    bad([{ inputIds: [1, 2], startPosition: 2, endPosition: 1 }], "collate: feature 0: startPosition 2 is not a token index in [0, 2)");
    bad([{ inputIds: [1, 2], startPosition: 0, endPosition: 1 }, { inputIds: [1] }], "collate: feature 1: startPosition/endPosition must be given for every feature of a batch or for none");
    bad([{ inputIds: [1] }], "collate: padId must be an integer >= 0, got -1", -1);
    expect(() => collate([{ inputIds: [1] }], { padId: 0, padToMultipleOf: 0 })).toThrow("collate: padToMultipleOf must be an integer >= 1, got 0");
    expect(() => collate([{ a: { inputIds: [1] }, b: { inputIds: [1] }, labels: 1, score: 5 }, { inputIds: [1] }] as never, { padId: 0 }))
      .toThrow("collate: feature 0 is a pair (a, b) but feature 1 is not");
    expect(() => collate([{ a: { inputIds: [1] }, b: { inputIds: [] }, labels: 1, score: 5 }], { padId: 0 })).toThrow("collate: feature 0 (side b): inputIds is empty");
  });
});
