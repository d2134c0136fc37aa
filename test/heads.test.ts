// Task heads with HF's names on every architecture, their losses, the pipelines, and the strategies
// not covered by trainer.test.ts (gradual unfreezing, L2-SP). On the embedded models/brown-bert and the
// small random checkpoints of test/fixtures/models.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoModelForQuestionAnswering, AutoSentenceEncoder,
} from "../lib/models/auto";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { noGrad } from "../lib/tensor/autograd";
import { classify, extractEntities, answerQuestions, similarity } from "../lib/pipeline";
import { unfreezeTop, trainableCount } from "../lib/train/strategies";
import { Trainer } from "../lib/train/trainer";
import type { TaskBatch } from "../lib/models/heads";
import { BROWN_BERT, fixtureModel } from "./helpers";

const quiet = { warn: null };
const GPT2 = fixtureModel("gpt2-tiny-random");
const dirs: [string, string][] = [["bert", BROWN_BERT], ["distilbert", fixtureModel("distilbert-tiny-random")], ["roberta", fixtureModel("roberta-tiny-random")], ["gpt2", GPT2]];
const [CLS, SEP] = [2, 3]; // brown-bert's [CLS] and [SEP]
const HEADS: Record<string, string[]> = {
  bert: ["classifier.bias", "classifier.weight"],
  distilbert: ["classifier.bias", "classifier.weight", "pre_classifier.bias", "pre_classifier.weight"],
  roberta: ["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias", "classifier.out_proj.weight"],
  gpt2: ["score.weight"],
};
// brown-bert was saved from BertForMaskedLM, which has no pooler: transformers initialises it too.
const INITIALIZED: Record<string, string[]> = { ...HEADS, bert: ["bert.pooler.dense.bias", "bert.pooler.dense.weight", ...HEADS.bert] };
const ARCH: Record<string, string> = { bert: "BertForSequenceClassification", distilbert: "DistilBertForSequenceClassification", roberta: "RobertaForSequenceClassification", gpt2: "GPT2ForSequenceClassification" };

function batch(ids: number[][], pad: number): TaskBatch {
  const T = Math.max(...ids.map((r) => r.length)), B = ids.length;
  const inputIds = new Int32Array(B * T).fill(pad), attentionMask = new Uint8Array(B * T);
  ids.forEach((r, b) => r.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: B, seqLen: T };
}

describe("task heads on every architecture", () => {
  test.each(dirs)("%s: sequence classification has HF's head names, trains, saves and reloads", async (type, dir) => {
    const m = await AutoModelForSequenceClassification.fromPretrained(dir, { ...quiet, numLabels: 3 });
    const prefix = m.prefix + ".";
    expect([...m.namedParameters()].map(([n]) => n).filter((n) => !n.startsWith(prefix)).sort()).toEqual(HEADS[type]);
    expect(m.loadReport!.initialized.sort()).toEqual(INITIALIZED[type]);
    const b = { ...batch([[5, 6, 7, 8], [9, 10]], type === "roberta" ? 1 : 0), labels: Int32Array.from([2, 0]) };
    m.train();
    const out = m.forward(b);
    expect(out.logits.shape).toEqual([2, 3]);
    expect(Number.isFinite(out.loss!.item())).toBe(true);
    out.loss!.backward();
    expect([...m.namedParameters()].find(([n]) => n === HEADS[type][HEADS[type].length - 1])![1].grad).not.toBeNull();
    m.eval();
    const dirOut = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-head-"));
    m.savePretrained(dirOut);
    expect(JSON.parse(fs.readFileSync(path.join(dirOut, "config.json"), "utf8")).architectures).toEqual([ARCH[type]]);
    const again = await AutoModelForSequenceClassification.fromPretrained(dirOut, quiet);
    expect(again.loadReport!.initialized).toEqual([]);
    const [x, y] = noGrad(() => [m.forward(b).logits, again.forward(b).logits]);
    expect(Array.from(y.toHost())).toEqual(Array.from(x.toHost()));
  });

  test("GPT-2 classifies at the last real token: padding after it changes nothing", async () => {
    const m = await AutoModelForSequenceClassification.fromPretrained(GPT2, { ...quiet, numLabels: 2 });
    const eos = 556;
    const short = noGrad(() => m.forward(batch([[39, 68, 297]], eos)).logits.toArray());
    const padded = noGrad(() => m.forward(batch([[39, 68, 297], [1, 2, 3, 4, 5, 6]], eos)).logits.toArray().slice(0, 2));
    padded.forEach((v, i) => expect(v).toBeCloseTo(short[i], 5));
  });

  test("regression (MSE) and multi-label (BCE with logits) losses are PyTorch's", async () => {
    const reg = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 1 });
    const b = batch([[CLS, 600, SEP], [CLS, 601, 602, SEP]], 0);
    const r = noGrad(() => reg.forward({ ...b, labels: Float32Array.from([0.5, -1]) }));
    const p = r.logits.toArray();
    expect(r.loss!.item()).toBeCloseTo(((p[0] - 0.5) ** 2 + (p[1] + 1) ** 2) / 2, 5);
    const ml = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 3, problemType: "multi_label_classification" });
    const t = [1, 0, 1, 0, 0, 1];
    const o = noGrad(() => ml.forward({ ...b, labels: Float32Array.from(t) }));
    const z = o.logits.toArray();
    const bce = z.reduce((s, v, i) => s + Math.max(v, 0) - v * t[i] + Math.log1p(Math.exp(-Math.abs(v))), 0) / 6;
    expect(o.loss!.item()).toBeCloseTo(bce, 5);
  });

  test("token classification and QA heads: shapes and losses", async () => {
    const tc = await AutoModelForTokenClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 9 });
    const b = batch([[CLS, 600, 601, SEP], [CLS, 602, SEP]], 0);
    const o = noGrad(() => tc.forward({ ...b, labels: Int32Array.from([-100, 3, 4, -100, -100, 8, -100, -100]) }));
    expect(o.logits.shape).toEqual([2, 4, 9]);
    expect(Number.isFinite(o.loss!.item())).toBe(true);
    const qa = await AutoModelForQuestionAnswering.fromPretrained(BROWN_BERT, quiet);
    const q = noGrad(() => qa.forward({ ...b, startPositions: Int32Array.from([1, 1]), endPositions: Int32Array.from([2, 1]) }));
    expect(q.startLogits.shape).toEqual([2, 4]);
    expect(Number.isFinite(q.loss!.item())).toBe(true);
    expect([...qa.namedParameters()].map(([n]) => n).filter((n) => !n.startsWith("bert.")).sort()).toEqual(["qa_outputs.bias", "qa_outputs.weight"]);
  });

  test("pipelines: labels by name, entity spans and answers that are substrings of the input, similarities", async () => {
    const dir = BROWN_BERT;
    const tok = await AutoTokenizer.fromPretrained(dir);
    const cls = await AutoModelForSequenceClassification.fromPretrained(dir, { ...quiet, id2label: { 0: "negative", 1: "positive" } });
    const r = await classify(cls, tok, ["a gorgeous film", "a dull mess", "fine"], { batchSize: 2 });
    expect(r).toHaveLength(3);
    for (const x of r) {
      expect(["negative", "positive"]).toContain(x.label);
      expect(x.scores.reduce((s, v) => s + v.score, 0)).toBeCloseTo(1, 5);
    }
    const id2label = Object.fromEntries(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"].map((t, i) => [i, t]));
    const ner = await AutoModelForTokenClassification.fromPretrained(dir, { ...quiet, id2label });
    const text = "Angela Merkel visited Paris and Zürich 🇨🇭 yesterday.";
    const [ents] = await extractEntities(ner, tok, [text]);
    for (const e of ents) expect(text.slice(e.start, e.end)).toBe(e.text);
    const qa = await AutoModelForQuestionAnswering.fromPretrained(dir, quiet);
    const context = "The Eiffel Tower is in Paris. It was built in 1889 for the World's Fair.";
    const [a] = await answerQuestions(qa, tok, [{ question: "When was it built?", context }]);
    expect(context.slice(a.start, a.end)).toBe(a.answer);
    const enc = await AutoSentenceEncoder.fromPretrained(dir, { ...quiet, pooling: "mean" });
    const [same, other] = await similarity(enc, tok, [["a cat sat", "a cat sat"], ["a cat sat", "stock markets fell"]]);
    expect(same).toBeCloseTo(1, 5);
    expect(other).toBeLessThan(same);
  });
});

describe("gradual unfreezing and L2-SP", () => {
  test("unfreezeTop opens one more layer group from the top each epoch", async () => {
    const m = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2 });
    const L = m.body.numLayers;
    expect(L).toBe(4);
    const counts = Array.from({ length: L + 2 }, (_, k) => unfreezeTop(m, k)); // head, layers 3..0, embeddings
    expect(counts[0]).toBe(128 * 2 + 2 + 128 * 128 + 128); // head + pooler
    for (let k = 1; k <= L + 1; k++) expect(counts[k]).toBeGreaterThan(counts[k - 1]);
    expect(counts[L + 1]).toBe(trainableCount(m));
    expect(counts[L + 1]).toBe(m.parameters().reduce((n, p) => n + p.size, 0));
    const trainable = (k: number) => { unfreezeTop(m, k); return [...m.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n); };
    expect(trainable(1).some((n) => n.includes("layer.3."))).toBe(true);
    expect(trainable(1).some((n) => n.includes("layer.2."))).toBe(false);
    expect(trainable(L).some((n) => n.includes("layer.0."))).toBe(true);
    expect(trainable(L).some((n) => n.includes("embeddings."))).toBe(false);
  });

  test("L2-SP keeps the weights near the pre-trained ones", async () => {
    const dist = async (l2sp: number) => {
      const m = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2 });
      const w0 = Float32Array.from([...m.namedParameters()].find(([n]) => n === "bert.encoder.layer.0.output.dense.weight")![1].toHost());
      const train = Array.from({ length: 32 }, (_, i) => ({ ids: [CLS, 600 + i, 700 + (i % 7), SEP], label: i % 2 }));
      const collate = (f: typeof train): TaskBatch => ({ ...batch(f.map((e) => e.ids), 0), labels: Int32Array.from(f.map((e) => e.label)) });
      await new Trainer({ model: m, train, collate, learningRate: 1e-2, epochs: 3, batchSize: 8, l2sp, progress: false, maxGradNorm: 0 }).train();
      const w = [...m.namedParameters()].find(([n]) => n === "bert.encoder.layer.0.output.dense.weight")![1].toHost();
      let d = 0;
      for (let i = 0; i < w.length; i++) d += (w[i] - w0[i]) ** 2;
      return Math.sqrt(d);
    };
    const free = await dist(0), pulled = await dist(50);
    expect(pulled).toBeLessThan(free * 0.8);
  });
});
