// Language-modelling data (MLM masking, causal labels, blocks) on real text (Brown corpus sentences) with
// the embedded brown-bert's tokenizer and a small GPT-2 BPE; seeded batch order; stratified splits, on
// SST-2 and rotten tomatoes (../shared) and on made-up labels.
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { readSst2, readRottenTomatoes, stratifiedSplit } from "../lib/data/files";
import {
  DataCollatorForLanguageModeling, maskTokens, causalLmLabels, groupTexts, languageModelingFeatures, batches,
  batchOrder, numBatches, collate, IGNORE_INDEX,
} from "../lib/data/features";
import type { Batch, Feature } from "../lib/data/features";
import { Rng, mixSeed } from "../lib/data/rng";
import { TunekitError } from "../lib/errors";
import { sharedDir, testShared } from "./shared";
import { BROWN_BERT, brownSentences, fixtureModel } from "./helpers";

const data = (...p: string[]) => path.join(sharedDir(), "data", ...p);

describe("language-modelling data on real text", () => {
  let bert: Tokenizer;
  let gpt2: Tokenizer;
  let texts: string[];
  let blocks: Feature[];
  const notes: string[] = [];
  afterAll(() => console.log(`tasks_lm (this machine, one run):\n${notes.join("\n")}`));

  beforeAll(async () => {
    bert = await AutoTokenizer.fromPretrained(BROWN_BERT);
    gpt2 = await AutoTokenizer.fromPretrained(fixtureModel("gpt2-tiny-random"));
    texts = brownSentences(1500);
    const t0 = Date.now();
    blocks = await languageModelingFeatures(bert, texts, { blockSize: 128 });
    notes.push(`languageModelingFeatures: ${texts.length} Brown corpus sentences → ${blocks.length} blocks of 128 in ${Date.now() - t0} ms`);
  });

  test("blocks: the texts' ids ([CLS] text [SEP] each) concatenated and cut, the remainder dropped", async () => {
    const enc = await bert.encodeBatch(texts, {});
    const all = enc.input_ids.flat();
    expect(blocks.length).toBe(Math.floor(all.length / 128));
    expect(blocks.flatMap((b) => Array.from(b.inputIds))).toEqual(all.slice(0, blocks.length * 128));
    expect(groupTexts([[1, 2, 3], [4, 5], [6, 7, 8, 9]], 4).map((f) => f.inputIds)).toEqual([[1, 2, 3, 4], [5, 6, 7, 8]]);
    expect(() => groupTexts([[1]], 0)).toThrow("groupTexts: blockSize must be an integer >= 1, got 0");
  });

  test("MLM: 15% of the non-special tokens chosen, 80% [MASK] / 10% random / 10% kept, labels -100 elsewhere", () => {
    const collator = new DataCollatorForLanguageModeling({ tokenizer: bert, seed: 1234 });
    const special = new Set(bert.allSpecialIds);
    let eligible = 0;
    let chosen = 0;
    let masked = 0;
    let random = 0;
    let kept = 0;
    let wrong = 0;
    for (let s = 0; s < blocks.length; s += 32) {
      const feats = blocks.slice(s, s + 32);
      const orig = collate(feats, { padId: 0 });
      const b = collator.collate(feats);
      expect(b.labelKind).toBe("token");
      for (let i = 0; i < b.inputIds.length; i++) {
        const o = orig.inputIds[i];
        const y = b.labels![i];
        if (special.has(o)) {
          if (y !== IGNORE_INDEX || b.inputIds[i] !== o) wrong++;
          continue;
        }
        eligible++;
        if (y === IGNORE_INDEX) {
          if (b.inputIds[i] !== o) wrong++; // changed but not chosen
          continue;
        }
        if (y !== o) wrong++;
        chosen++;
        if (b.inputIds[i] === bert.maskTokenId) masked++;
        else if (b.inputIds[i] === o) kept++;
        else random++;
      }
    }
    expect(wrong).toBe(0);
    const p = chosen / eligible;
    // Binomial: 3 standard deviations.
    expect(Math.abs(p - 0.15)).toBeLessThan(3 * Math.sqrt((0.15 * 0.85) / eligible));
    expect(Math.abs(masked / chosen - 0.8)).toBeLessThan(3 * Math.sqrt((0.8 * 0.2) / chosen));
    expect(Math.abs(random / chosen - 0.1)).toBeLessThan(3 * Math.sqrt((0.1 * 0.9) / chosen));
    expect(Math.abs(kept / chosen - 0.1)).toBeLessThan(3 * Math.sqrt((0.1 * 0.9) / chosen) + 1e-3); // a random draw may give the token back
    notes.push(`MLM on ${eligible} eligible tokens: chosen ${(100 * p).toFixed(2)}%; of those [MASK] ${(100 * masked / chosen).toFixed(2)}%, random ${(100 * random / chosen).toFixed(2)}%, kept ${(100 * kept / chosen).toFixed(2)}%`);
    expect(collator.step).toBe(Math.ceil(blocks.length / 32));
  });

  test("MLM masks are deterministic by seed and step, differ across steps and seeds, and never touch padding", () => {
    const feats = [blocks[0], { inputIds: Array.from(blocks[1].inputIds).slice(0, 40) }];
    const a = new DataCollatorForLanguageModeling({ tokenizer: bert, seed: 5 });
    const b = new DataCollatorForLanguageModeling({ tokenizer: bert, seed: 5 });
    const a0 = a.collate(feats);
    const a1 = a.collate(feats);
    expect(b.collate(feats)).toEqual(a0);
    expect(Array.from(a1.inputIds)).not.toEqual(Array.from(a0.inputIds)); // the next step draws other masks
    const resumed = new DataCollatorForLanguageModeling({ tokenizer: bert, seed: 5 });
    resumed.step = 1;
    expect(resumed.collate(feats)).toEqual(a1);
    const other = new DataCollatorForLanguageModeling({ tokenizer: bert, seed: 6 }).collate(feats);
    expect(Array.from(other.labels!)).not.toEqual(Array.from(a0.labels!));
    // Row 1 is padded from 40 to 128: nothing chosen there.
    for (let t = 40; t < 128; t++) expect([a0.inputIds[128 + t], a0.labels![128 + t], a0.attentionMask[128 + t]]).toEqual([0, IGNORE_INDEX, 0]);
    // Labels a feature brings are replaced.
    const withLabels = a.collate([{ inputIds: [2, 600, 3], labels: 1, labelKind: "single_label_classification" }]);
    expect(withLabels.labels!.length).toBe(3);
    // maskTokens with probability 1 picks every non-special token.
    const base = collate([blocks[2]], { padId: 0 });
    const all = maskTokens(base, { maskId: bert.maskTokenId!, vocabSize: bert.vocabSize, specialIds: bert.allSpecialIds, probability: 1, seed: 0 });
    const nonSpecial = Array.from(base.inputIds).filter((id) => !bert.allSpecialIds.includes(id)).length;
    expect(Array.from(all.labels!).filter((y) => y !== IGNORE_INDEX).length).toBe(nonSpecial);
    expect(Array.from(base.inputIds)).toEqual(Array.from(blocks[2].inputIds)); // the input batch is not changed
    expect(() => maskTokens(base, { maskId: 1e6, vocabSize: 10, specialIds: [], seed: 0 })).toThrow("maskTokens: maskId 1000000 is not a token id of the vocabulary (size 10)");
    expect(() => new DataCollatorForLanguageModeling({ tokenizer: gpt2 })).toThrow(/no pad token/);
  });

  test("causal LM: labels = input ids, -100 on padding only (GPT-2 with pad = eos keeps a real end-of-text)", async () => {
    gpt2.padToken = gpt2.eosToken;
    const eos = gpt2.eosTokenId!;
    const enc = await gpt2.encodeBatch(texts.slice(0, 6), {});
    const feats: Feature[] = enc.input_ids.map((ids) => ({ inputIds: [...ids, eos] }));
    const collator = new DataCollatorForLanguageModeling({ tokenizer: gpt2, mlm: false });
    const b = collator.collate(feats);
    feats.forEach((f, i) => {
      const row = Array.from(b.labels!.subarray(i * b.seqLen, (i + 1) * b.seqLen));
      expect(row).toEqual([...(f.inputIds as number[]), ...Array(b.seqLen - f.inputIds.length).fill(IGNORE_INDEX)]);
    });
    expect(Array.from(b.inputIds)).toEqual(Array.from(collate(feats, { padId: eos }).inputIds));
    const plain: Batch = collate(feats, { padId: eos });
    expect(causalLmLabels(plain)).toEqual(b.labels);
    gpt2.padToken = null;
  });
});

describe("seeded batches and stratified splits", () => {
  test("batches: every item once per epoch, same order for the same seed and epoch, dropLast, ranks", () => {
    const items = Array.from({ length: 103 }, (_, i) => i);
    const epoch0 = [...batches(items, 10, { shuffle: true, seed: 42 })];
    expect(epoch0.length).toBe(11);
    expect(epoch0.map((b) => b.length)).toEqual([...Array(10).fill(10), 3]);
    expect(epoch0.flat().sort((a, b) => a - b)).toEqual(items);
    expect(epoch0.flat()).not.toEqual(items);
    expect([...batches(items, 10, { shuffle: true, seed: 42 })]).toEqual(epoch0);
    expect([...batches(items, 10, { shuffle: true, seed: 42, epoch: 1 })].flat()).not.toEqual(epoch0.flat());
    expect([...batches(items, 10, { shuffle: true, seed: 43 })].flat()).not.toEqual(epoch0.flat());
    expect([...batches(items, 10)].flat()).toEqual(items);
    const dropped = [...batches(items, 10, { shuffle: true, seed: 42, dropLast: true })];
    expect(dropped).toEqual(epoch0.slice(0, 10));
    expect([numBatches(103, 10), numBatches(103, 10, { dropLast: true })]).toEqual([11, 10]);
    // Four ranks: equal shares (103 → 104 by wrapping one item), disjoint apart from the wrap, covering all.
    const shares = [0, 1, 2, 3].map((rank) => batchOrder(103, { shuffle: true, seed: 42, rank, worldSize: 4 }));
    expect(shares.map((s) => s.length)).toEqual([26, 26, 26, 26]);
    expect(new Set(shares.flat()).size).toBe(103);
    expect(shares.flat().length).toBe(104);
    expect(() => [...batches(items, 0)]).toThrow("batches: batchSize must be an integer >= 1, got 0");
    expect(() => batchOrder(5, { rank: 2, worldSize: 2 })).toThrow("batches: rank must be an integer in [0, 2), got 2");
    expect(() => batchOrder(5, { shuffle: true, seed: 1.5 })).toThrow("batches: seed must be a safe integer, got 1.5");
  });

  test("Rng: the same numbers for the same seed, uniform integers", () => {
    const r = new Rng(2024);
    const xs = Array.from({ length: 5 }, () => r.nextU32());
    expect(new Rng(2024).nextU32()).toBe(xs[0]);
    expect(new Rng(2025).nextU32()).not.toBe(xs[0]);
    expect(mixSeed(1, 2)).not.toBe(mixSeed(2, 1));
    const counts = new Array(10).fill(0);
    const n = 100000;
    for (let i = 0; i < n; i++) counts[r.int(10)]++;
    for (const c of counts) expect(Math.abs(c - n / 10)).toBeLessThan(4 * Math.sqrt(n * 0.1 * 0.9));
  });

  testShared("stratified split of SST-2 train (../shared/data) keeps the label ratio; seeded; disjoint; rotten tomatoes by count", () => {
    const sst = readSst2(data("sst2", "train.tsv"));
    const t0 = Date.now();
    const { train, validation } = stratifiedSplit(sst, { validation: 0.1, seed: 3, labelOf: (x) => x.label! });
    const ms = Date.now() - t0;
    expect(validation.length).toBe(6735); // ceil(0.1 × 67,349)
    expect(train.length + validation.length).toBe(67349);
    const pos = (xs: typeof sst) => xs.filter((x) => x.label === 1).length;
    // 37,569 positives × 6,735 / 67,349 = 3,756.9: 3,756 or 3,757
    expect(Math.abs(pos(validation) - (37569 * 6735) / 67349)).toBeLessThan(1);
    expect(pos(train) + pos(validation)).toBe(37569);
    expect(new Set([...train, ...validation]).size).toBe(67349); // each row in exactly one part
    // Order within each part is the original order.
    const index = new Map(sst.map((x, i) => [x, i]));
    expect(validation.map((x) => index.get(x)!).every((v, i, a) => i === 0 || v > a[i - 1])).toBe(true);
    expect(stratifiedSplit(sst, { validation: 0.1, seed: 3, labelOf: (x) => x.label! }).validation).toEqual(validation);
    expect(stratifiedSplit(sst, { validation: 0.1, seed: 4, labelOf: (x) => x.label! }).validation).not.toEqual(validation);
    const rt = readRottenTomatoes(data("rotten_tomatoes"));
    const s = stratifiedSplit(rt, { validation: 1066, seed: 0, labelOf: (x) => x.label! });
    expect([s.validation.length, pos(s.validation)]).toEqual([1066, 533]);
    console.log(`stratifiedSplit of 67,349 SST-2 rows: ${ms} ms`);
  });

  test("stratified split of three unbalanced classes: the quotas add up, each within one of its share; bad options", () => {
    // Three unbalanced classes: the quotas add up and each is within one of its share.
    const three = Array.from({ length: 101 }, (_, i) => ({ y: i < 70 ? "a" : i < 95 ? "b" : "c" }));
    const t = stratifiedSplit(three, { validation: 0.3, seed: 1, labelOf: (x) => x.y });
    const share = (y: string) => t.validation.filter((x) => x.y === y).length;
    expect(t.validation.length).toBe(31);
    expect([share("a"), share("b"), share("c")].map((c, i) => Math.abs(c - ([70, 25, 6][i] * 31) / 101) < 1)).toEqual([true, true, true]);
    expect(() => stratifiedSplit(three, { validation: 1.5, labelOf: (x) => x.y })).toThrow("stratifiedSplit: validation must be a fraction in (0, 1) or a count in [1, 100], got 1.5");
    expect(() => stratifiedSplit(three, { validation: 0.1, labelOf: () => null as never })).toThrow(TunekitError);
  });
});
