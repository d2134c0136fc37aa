// Pre-training pieces: the masked-LM head on masked rows only (same loss and gradients), pretrain()
// learning on a small corpus, trainWordPiece's vocabulary, and the rule of --method auto.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForMaskedLM } from "../lib/models/auto";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { DataCollatorForLanguageModeling, languageModelingFeatures } from "../lib/data/features/lm";
import { trainWordPiece } from "../lib/data/tokenizer/trainer";
import { pretrain } from "../lib/train/pretrain";
import { chooseMethod, FROZEN_BELOW, LORA_BELOW } from "../lib/train/method";
import { maxAbsDiff } from "./helpers";

const ROBERTA = path.join(__dirname, "fixtures/models/roberta-tiny-random");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-pretrain-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const quiet = { warn: null };
const corpus = Array.from({ length: 120 }, (_, i) => `the ${["cat", "dog", "bird"][i % 3]} number ${i % 7} sat on the ${["mat", "log", "hat"][i % 3]} and looked around quietly`);

test("lossOnly: the MLM head on the masked rows gives the full head's loss and gradients", async () => {
  const model = await AutoModelForMaskedLM.fromPretrained(ROBERTA, quiet);
  const tok = await AutoTokenizer.fromPretrained(ROBERTA);
  model.eval(); // no dropout, so both passes see the same network
  const feats = await languageModelingFeatures(tok, corpus.slice(0, 20), { blockSize: 24 });
  const batch = new DataCollatorForLanguageModeling({ tokenizer: tok, seed: 5, mlmProbability: 0.3 }).collate(feats.slice(0, 4));
  const results = [false, true].map((lossOnly) => {
    model.zeroGrad();
    const out = model.forward(batch as typeof batch & { labels: Int32Array }, { lossOnly });
    out.loss!.backward();
    return { loss: out.loss!.item(), rows: out.logits.shape[0], grads: model.parameters().filter((p) => p.grad).map((p) => Float32Array.from(p.grad!.toHost())) };
  });
  const masked = Array.from(batch.labels!).filter((l) => l !== -100).length;
  expect(masked).toBeGreaterThan(0);
  expect(results[1].rows).toBe(masked);                     // logits of the masked rows only
  expect(results[1].loss).toBeCloseTo(results[0].loss, 5);
  expect(results[1].grads.length).toBe(results[0].grads.length);
  results[0].grads.forEach((g, i) => expect(maxAbsDiff(g, results[1].grads[i])).toBeLessThan(1e-5));
});

test("pretrain() lowers the held-out masked-LM loss of a random model on a small corpus", async () => {
  const tok = await AutoTokenizer.fromPretrained(ROBERTA);
  const model = await AutoModelForMaskedLM.fromPretrained(ROBERTA, quiet);
  model.initAll(3); // from scratch
  const r = await pretrain({ model, tokenizer: tok, texts: corpus, blockSize: 32, validation: 0.1, maxSteps: 40, batchSize: 8, learningRate: 3e-3, warmupSteps: 4, progress: false, seed: 1 });
  expect(r.steps).toBe(40);
  expect(r.blocks.validation).toBeGreaterThan(0);
  expect(r.validationLoss).toBeLessThan(Math.log(tok.vocabSize) - 1); // well under a uniform guess
  expect(r.perplexity).toBeCloseTo(Math.exp(r.validationLoss), 6);
});

test("trainWordPiece: BERT special tokens first, the size asked for, every character of the text covered", async () => {
  const a = await trainWordPiece(corpus, path.join(tmp, "a"), { vocabSize: 66, modelMaxLength: 64 });
  const b = await trainWordPiece(corpus, path.join(tmp, "b"), { vocabSize: 75 });
  const va = fs.readFileSync(path.join(tmp, "a", "vocab.txt"), "utf8").trim().split("\n");
  const vb = fs.readFileSync(path.join(tmp, "b", "vocab.txt"), "utf8").trim().split("\n");
  expect(va.slice(0, 5)).toEqual(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  expect(va).toHaveLength(66);
  expect(vb).toHaveLength(75);
  expect(new Set(va).size).toBe(va.length);
  for (const ch of new Set(corpus.join("").replace(/\s/g, ""))) expect(va).toContain(ch);
  expect(a.vocabSize).toBe(66);
  expect(a.modelMaxLength).toBe(64);
  const enc = await a.encode("The cat sat");
  expect(enc.input_ids[0]).toBe(2); // [CLS]
  expect(enc.input_ids[enc.input_ids.length - 1]).toBe(3); // [SEP]
  expect(await a.decode(enc.input_ids, { skipSpecialTokens: true })).toBe("the cat sat");
  await expect(trainWordPiece(corpus, path.join(tmp, "c"), { vocabSize: 20000 })).rejects.toThrow(/give only \d+ tokens/);
  await expect(trainWordPiece([], path.join(tmp, "d"))).rejects.toThrow(/non-empty array/);
});

test("chooseMethod: frozen body below 300 labelled examples, LoRA below 2,000, then full", () => {
  expect(chooseMethod(1).method).toBe("frozen");
  expect(chooseMethod(FROZEN_BELOW - 1).method).toBe("frozen");
  expect(chooseMethod(FROZEN_BELOW).method).toBe("lora");
  expect(chooseMethod(LORA_BELOW - 1).method).toBe("lora");
  expect(chooseMethod(LORA_BELOW).method).toBe("full");
  expect(chooseMethod(500).rule).toMatch(/300 <= 500 .* < 2000: LoRA/);
  expect(() => chooseMethod(0)).toThrow(/>= 1/);
});
